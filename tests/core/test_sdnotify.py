import socket
from pathlib import Path

from kiosk.sdnotify import notify


def test_notify_sends_to_the_systemd_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        assert notify("READY=1", {"NOTIFY_SOCKET": str(path)})
        assert server.recv(64) == b"READY=1"


def test_notify_is_silent_outside_systemd() -> None:
    assert notify("WATCHDOG=1", {}) is False
