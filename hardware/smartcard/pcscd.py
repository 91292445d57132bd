"""Start/stop a pcscd for tests and the demo (DEVELOPMENT ONLY: with the vsmartcard-vpcd reader).

pcscd 1.9 allows one instance per machine (/run/pcscd/pcscd.comm), so :class:`PcscDaemon`
reuses one already running and only stops the one it started. ``start()`` returns once the
vpcd readers ("Virtual PCD 00 00"/"00 01") are listed and vpcd accepts connections.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

from hardware.smartcard.apdu import list_readers
from kiosk.devices.smartcard import ReaderUnavailableError

log = logging.getLogger(__name__)

PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
VPCD_READERS = ("Virtual PCD 00 00", "Virtual PCD 00 01")


def pcscd_running() -> bool:
    """True when a pcscd answers on its socket."""
    if not PCSCD_SOCKET.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(PCSCD_SOCKET))
        except OSError:
            return False
    return True


class PcscDaemon:
    """A pcscd for tests/demo: ``start()`` (reuse or spawn), ``stop()`` (only if we spawned it)."""

    def __init__(
        self,
        *,
        binary: str = "pcscd",
        log_path: Path | None = None,
        readers: tuple[str, ...] = VPCD_READERS,
        debug: bool = False,
    ) -> None:
        self.binary = binary
        self.debug = debug
        self.log_path = log_path
        self.readers = readers
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file = None
        self.reused = False

    @property
    def started_here(self) -> bool:
        return self._process is not None

    def start(self, timeout: float = 10.0) -> Self:
        if pcscd_running():
            self.reused = True
            log.info("pcscd.reused")
        else:
            path = shutil.which(self.binary) or shutil.which(self.binary, path="/usr/sbin:/sbin")
            if path is None:
                raise ReaderUnavailableError(
                    "pcscd not installed (apt-get install pcscd vsmartcard-vpcd)",
                    code="smartcard.pcscd_missing",
                )
            if PCSCD_SOCKET.exists():
                PCSCD_SOCKET.unlink()  # stale socket of a killed pcscd: nobody answers on it
            # Kept open for the daemon's life, closed in stop().
            self._log_file = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
            args = [path, "--foreground"] + (["--debug"] if self.debug else [])
            setpriv = shutil.which("setpriv")
            if setpriv:
                # SIGTERM to pcscd when the process that started it dies: a killed test run must not
                # leave a pcscd behind (the next run could not start its own).
                args = [setpriv, "--pdeathsig", "TERM", *args]
            self._process = subprocess.Popen(
                args, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
            log.info("pcscd.started pid=%d", self._process.pid)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise ReaderUnavailableError(
                    f"pcscd exited with {self._process.returncode}", code="smartcard.pcscd_failed"
                )
            found = list_readers()
            # Listed readers mean the vpcd driver is loaded and listening; a probe connection would
            # look like a card to vpcd, so none is made.
            if all(r in found for r in self.readers):
                return
            if time.monotonic() > deadline:
                raise ReaderUnavailableError(
                    f"vpcd readers did not appear (have {found})", code="smartcard.vpcd_missing"
                )
            time.sleep(delay)  # polling pcscd: it has no readiness notification for us
            delay = min(delay * 2, 0.2)

    def stop(self, timeout: float = 5.0) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout)
        log.info("pcscd.stopped rc=%s", self._process.returncode)
        self._process = None
        if self._log_file not in (None, subprocess.DEVNULL):
            self._log_file.close()  # type: ignore[union-attr]
        self._log_file = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["VPCD_READERS", "PcscDaemon", "pcscd_running"]
