"""``kiosk doctor [--json]``: each configured device and dependency, one line each, ok or fault
with the fix. It does not start the kiosk; it looks at what the kiosk would need."""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

from kiosk.commands._common import print_error, print_json
from kiosk.config import ConfigError, KioskConfig, load_config


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("doctor", help="check devices and dependencies, one line each with the fix")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.profile)
    except ConfigError as exc:
        return print_error("config.invalid", str(exc))
    checks = diagnose(config)
    if args.json:
        print_json({"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]})
    else:
        for c in checks:
            line = f"{'ok   ' if c.ok else 'FAULT'} {c.name:22s} {c.detail}"
            if not c.ok and c.fix:
                line += f"  → {c.fix}"
            print(line)
    return 0 if all(c.ok for c in checks) else 1


def diagnose(config: KioskConfig) -> list[Check]:
    checks = [
        _font(config),
        _state_dir(config),
        _python_module("kivy", "the UI toolkit", "make setup"),
        _python_module("smartcard", "pyscard (PC/SC)", "apt-get install libpcsclite-dev, then make setup"),
        _python_module("serial", "pyserial", "make setup"),
        _python_module("face_recognition", "face matching", "make setup (dlib-bin wheel)"),
        _pcscd(config),
        _serial("idreader", config.idreader.simulate, config.idreader.port),
        _serial("pinpad", config.pinpad.simulate, config.pinpad.port),
        _camera(config),
        _backend(config),
    ]
    return checks


def _font(config: KioskConfig) -> Check:
    path = config.kiosk.font_path
    if path.exists():
        return Check("font", True, f"CJK font {path}")
    return Check("font", False, f"CJK font missing: {path}", "apt-get install fonts-wqy-microhei")


def _state_dir(config: KioskConfig) -> Check:
    path = config.resolve(config.kiosk.state_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".doctor"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return Check("state directory", False, f"{path}: {exc.strerror}", f"create {path} writable by the kiosk user")
    free = shutil.disk_usage(path).free / 2**30
    if free < 1:
        return Check("state directory", False, f"{path}: only {free:.2f} GiB free", "free disk space")
    return Check("state directory", True, f"{path} ({free:.0f} GiB free)")


def _python_module(module: str, what: str, fix: str) -> Check:
    if importlib.util.find_spec(module) is None:
        return Check(module, False, f"{what} not installed", fix)
    return Check(module, True, what)


def _pcscd(config: KioskConfig) -> Check:
    if not shutil.which("pcscd"):
        return Check("pcscd", False, "pcscd not installed", "apt-get install pcscd libccid")
    running = subprocess.run(["pgrep", "-x", "pcscd"], capture_output=True).returncode == 0
    if running:
        return Check("pcscd", True, "running")
    if config.smartcard.simulate:
        return Check("pcscd", True, "not running; the simulator starts it")
    return Check("pcscd", False, "not running", "systemctl enable --now pcscd.socket")


def _serial(name: str, simulate: bool, port: str) -> Check:
    if simulate:
        return Check(name, True, "simulated on a pseudo-terminal")
    if not os.path.exists(port):
        return Check(name, False, f"{port} does not exist", f"plug the {name} in, check udev rules (systemd/99-kiosk.rules)")
    if not os.access(port, os.R_OK | os.W_OK):
        return Check(name, False, f"{port} not readable/writable", "add the kiosk user to the dialout group")
    return Check(name, True, port)


def _camera(config: KioskConfig) -> Check:
    if config.camera.simulate:
        return Check("camera", True, "simulated from image/video files")
    if not Path(config.camera.device).exists():
        return Check("camera", False, f"{config.camera.device} does not exist", "plug the camera in; check `v4l2-ctl --list-devices`")
    return Check("camera", True, config.camera.device)


def _backend(config: KioskConfig) -> Check:
    if config.backend.simulate:
        return Check("back end", True, "simulated on 127.0.0.1")
    url = urlparse(config.backend.base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=config.backend.connect_timeout_s):
            pass
    except OSError as exc:
        return Check("back end", False, f"{url.hostname}:{port} unreachable ({exc.strerror or exc})",
                     "check the network and backend.base_url; the offline queue keeps working")
    return Check("back end", True, f"{url.hostname}:{port} reachable")
