"""Frame sources (取景): the OpenCV V4L2 driver and the simulated camera.

:class:`OpenCVCamera` opens ``/dev/videoN`` (or a video file, as the fake camera of
research/deps.md §3) with ``cv2.CAP_V4L2``, asks for MJPG *before* the resolution (the order
V4L2 needs, research/hardware.md §4) and a one-frame buffer so a frame is never stale; a second
IR camera is optional and read in step with the RGB one.

:class:`SimulatedCamera` plays image files, video files or frames handed to it (a script) at a
frame rate, loops or stops at the end, can add sensor grain, and offers the simulators' fault
surface (``fault_names``/``inject``/``clear_faults``): ``unplugged``, ``black``, ``frozen``,
``slow``, ``ir_blank``.
"""

from __future__ import annotations

import logging
import threading
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

import cv2
import numpy as np

from kiosk.devices import DeviceState, DeviceStatus
from kiosk.devices.camera import CameraUnavailable, CapturedFrame, UnreadableImage

log = logging.getLogger(__name__)

DEVICE = "camera"


def read_image_rgb(path: Path | str) -> np.ndarray:
    """An image file as RGB; raises UnreadableImage (never a cv2 error) when it cannot be decoded."""
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else np.empty(0, np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise UnreadableImage(f"not a readable image: {Path(path).name}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class OpenCVCamera:
    """USB/UVC camera through OpenCV's V4L2 back end; ``ir_device`` for a binocular RGB+IR module."""

    def __init__(
        self,
        device: str | int = "/dev/video0",
        *,
        width: int = 640,
        height: int = 480,
        fps: int = 30,
        buffer_size: int = 1,
        ir_device: str | int | None = None,
        fourcc: str = "MJPG",
    ) -> None:
        self.device = device
        self.width = width
        self.height = height
        self.fps = fps
        self.buffer_size = buffer_size
        self.ir_device = ir_device or None
        self.fourcc = fourcc
        self._rgb: cv2.VideoCapture | None = None
        self._ir: cv2.VideoCapture | None = None
        self._index = 0
        self._last_error = ""
        self.refused_settings: tuple[str, ...] = ()

    @property
    def has_ir(self) -> bool:
        return self.ir_device is not None

    def _open_one(self, device: str | int) -> cv2.VideoCapture:
        target: str | int = device
        is_file = isinstance(device, str) and not device.startswith("/dev/") and Path(device).is_file()
        capture = cv2.VideoCapture(target) if is_file else cv2.VideoCapture(target, cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise CameraUnavailable(f"cannot open camera {device}", retryable=True)
        refused: list[str] = []
        if not is_file:
            # FOURCC first: some UVC cameras only offer 640×480 and up in MJPG (research/hardware.md §4).
            settings = (
                ("fourcc", cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc)),
                ("width", cv2.CAP_PROP_FRAME_WIDTH, self.width),
                ("height", cv2.CAP_PROP_FRAME_HEIGHT, self.height),
                ("fps", cv2.CAP_PROP_FPS, self.fps),
                ("buffer_size", cv2.CAP_PROP_BUFFERSIZE, self.buffer_size),
            )
            for name, prop, value in settings:
                if not capture.set(prop, value):
                    refused.append(name)
        self.refused_settings = tuple(refused)
        if refused:
            log.warning("camera.settings_refused", extra={"device": str(device), "settings": refused})
        return capture

    def open(self) -> None:
        self.close()
        self._rgb = self._open_one(self.device)
        if self.ir_device is not None:
            self._ir = self._open_one(self.ir_device)

    def read(self, timeout_s: float = 1.0) -> CapturedFrame | None:
        if self._rgb is None:
            raise CameraUnavailable("camera not open")
        ok, bgr = self._rgb.read()
        if not ok or bgr is None:
            self._last_error = "read failed"
            return None
        self._last_error = ""
        ir = None
        if self._ir is not None:
            ok_ir, ir_bgr = self._ir.read()
            ir = cv2.cvtColor(ir_bgr, cv2.COLOR_BGR2GRAY) if ok_ir and ir_bgr is not None else None
        self._index += 1
        return CapturedFrame(self._index, time.monotonic(), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), ir)

    def close(self) -> None:
        for capture in (self._rgb, self._ir):
            if capture is not None:
                capture.release()
        self._rgb = self._ir = None

    def status(self) -> DeviceStatus:
        if self._rgb is None:
            # Closed between visits (the face step opens it): present if its device node is.
            node = self.device if isinstance(self.device, str) else f"/dev/video{self.device}"
            if os.path.exists(node):
                return DeviceStatus(DEVICE, DeviceState.READY, "camera.idle", "device.ready", node)
            return DeviceStatus(DEVICE, DeviceState.OFFLINE, "camera.unavailable", "camera.unavailable", node)
        if not self._rgb.isOpened():
            return DeviceStatus(DEVICE, DeviceState.OFFLINE, "camera.unavailable", "camera.unavailable")
        if self._last_error:
            return DeviceStatus(
                DEVICE, DeviceState.FAULT, "camera.read_failed", "camera.error", self._last_error
            )
        return DeviceStatus.ready(DEVICE)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


FrameOrPath = np.ndarray | Path | str


class SimulatedCamera:
    """A camera simulator: plays stills, video files or scripted frames as RGB frames at ``fps``.

    ``sources``: image paths (each shown for ``still_frames`` frames), video paths (every frame),
    or RGB arrays (one frame each). ``loop``: start again at the end, else :meth:`read` returns
    None. ``realtime``: pace frames at ``fps`` (off in tests that just want the sequence).
    ``noise_sigma``: Gaussian sensor grain so consecutive frames differ as on a real sensor.
    ``ir``: ``None`` (no IR camera), ``"face"`` (an IR view of the same scene: grey copy) or
    ``"blank"`` (the IR camera sees no face: a screen replay).
    """

    FAULTS = ("unplugged", "black", "frozen", "slow", "ir_blank")

    def __init__(
        self,
        sources: Sequence[FrameOrPath] = (),
        *,
        fps: float = 30.0,
        loop: bool = True,
        realtime: bool = True,
        still_frames: int = 1,
        noise_sigma: float = 0.0,
        ir: str | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ir not in (None, "face", "blank"):
            raise ValueError("ir must be None, 'face' or 'blank'")
        self.fps = fps
        self.loop = loop
        self.realtime = realtime
        self.still_frames = still_frames
        self.noise_sigma = noise_sigma
        self.ir_mode = ir
        self._clock = clock
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._frames: list[np.ndarray] = []
        self._position = 0
        self._index = 0
        self._opened = False
        self._next_due = 0.0
        self._faults: dict[str, int | None] = {}
        self._fault_params: dict[str, dict[str, object]] = {}
        self._last: np.ndarray | None = None
        self._noise_bank: list[np.ndarray] | None = None
        self._noise_pick = 0
        self.play(sources)

    # ----------------------------------------------------------------- script

    def play(self, sources: Sequence[FrameOrPath]) -> None:
        """Replaces what the camera shows (a new scene); starts from its first frame."""
        frames: list[np.ndarray] = []
        for source in sources:
            if isinstance(source, np.ndarray):
                frames.append(np.ascontiguousarray(source))
            else:
                frames.extend(self._load(Path(source)))
        with self._lock:
            self._frames = frames
            self._position = 0

    def _load(self, path: Path) -> list[np.ndarray]:
        if path.suffix.lower() in (".avi", ".mp4", ".mkv", ".mov", ".webm"):
            capture = cv2.VideoCapture(str(path))
            frames = []
            try:
                while True:
                    ok, bgr = capture.read()
                    if not ok:
                        break
                    frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            finally:
                capture.release()
            if not frames:
                raise UnreadableImage(f"no frames in video {path.name}")
            return frames
        return [read_image_rgb(path)] * self.still_frames

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._frames) - self._position

    # ----------------------------------------------------------------- FrameSource

    @property
    def has_ir(self) -> bool:
        return self.ir_mode is not None

    def open(self) -> None:
        if self._take_fault("unplugged", consume=False):
            raise CameraUnavailable("simulated camera unplugged", retryable=True)
        self._opened = True
        self._next_due = self._clock()

    def read(self, timeout_s: float = 1.0) -> CapturedFrame | None:
        if not self._opened or self._take_fault("unplugged", consume=False):
            raise CameraUnavailable("simulated camera not open or unplugged", retryable=True)
        if self.realtime:
            delay = (
                float(self._fault_params.get("slow", {}).get("delay_s", 0.5))
                if "slow" in self._faults
                else 0.0
            )
            if delay and self._take_fault("slow"):
                if delay > timeout_s:
                    time.sleep(timeout_s)
                    return None
                time.sleep(delay)
            wait = self._next_due - self._clock()
            if wait > timeout_s:
                return None
            if wait > 0:
                time.sleep(wait)
            self._next_due = max(self._next_due + 1.0 / self.fps, self._clock())
        with self._lock:
            if not self._frames:
                return None
            if self._position >= len(self._frames):
                if not self.loop:
                    return None
                self._position = 0
            frame = self._frames[self._position]
            self._position += 1
        if self._take_fault("frozen") and self._last is not None:
            # A hung pipeline repeats the last buffer bit for bit (no grain): what "frozen" means.
            rgb = self._last
        else:
            if self._take_fault("black"):
                frame = np.zeros_like(frame)
            rgb = self._grain(frame)
        self._last = rgb
        ir = None
        if self.ir_mode is not None:
            blank = self.ir_mode == "blank" or self._take_fault("ir_blank")
            grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            ir = np.full_like(grey, 12) if blank else grey
        self._index += 1
        return CapturedFrame(self._index, self._clock(), rgb, ir)

    def _grain(self, frame: np.ndarray) -> np.ndarray:
        if self.noise_sigma <= 0:
            return frame
        # Drawing 0.9 M normal samples costs ~13 ms a frame here, which the preview would feel; a
        # bank of 8 precomputed patterns, never the same twice in a row, costs ~0.3 ms.
        if self._noise_bank is None or self._noise_bank[0].shape != frame.shape:
            self._noise_bank = [
                np.rint(self._rng.normal(0.0, self.noise_sigma, frame.shape)).astype(np.int16)
                for _ in range(8)
            ]
            self._noise_pick = 0
        self._noise_pick = (self._noise_pick + 1 + int(self._rng.integers(0, 7))) % 8
        return np.clip(frame.astype(np.int16) + self._noise_bank[self._noise_pick], 0, 255).astype(np.uint8)

    def close(self) -> None:
        self._opened = False

    def status(self) -> DeviceStatus:
        if "unplugged" in self._faults:
            return DeviceStatus(
                DEVICE, DeviceState.OFFLINE, "camera.unavailable", "camera.unavailable", "simulated"
            )
        if not self._opened:
            # Closed between visits (the face step opens it): a simulated camera is always there.
            return DeviceStatus(DEVICE, DeviceState.READY, "camera.idle", "device.ready", "simulated")
        return DeviceStatus(DEVICE, DeviceState.READY, detail="simulated")

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- faults

    def fault_names(self) -> list[str]:
        return list(self.FAULTS)

    def inject(self, name: str, count: int | None = None, **params: object) -> None:
        """``count`` frames affected (None: until cleared). ``slow`` takes ``delay_s``."""
        if name not in self.FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(self.FAULTS)}")
        with self._lock:
            self._faults[name] = count
            self._fault_params[name] = dict(params)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._fault_params.clear()

    def _take_fault(self, name: str, *, consume: bool = True) -> bool:
        with self._lock:
            if name not in self._faults:
                return False
            remaining = self._faults[name]
            if consume and remaining is not None:
                if remaining <= 1:
                    del self._faults[name]
                else:
                    self._faults[name] = remaining - 1
            return True


def write_fake_video(path: Path, frames: Sequence[np.ndarray], fps: float = 30.0) -> Path:
    """Writes RGB frames to an MJPG AVI that :class:`OpenCVCamera` can open as a camera."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path
