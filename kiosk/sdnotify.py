"""systemd notification (``sd_notify``) without a dependency: READY=1 once the home screen is
drawn, WATCHDOG=1 from the UI loop (so a frozen UI is restarted by systemd), STATUS= text.
Does nothing when the kiosk is not started by systemd (no ``$NOTIFY_SOCKET``)."""

from __future__ import annotations

import os
import socket


def notify(message: str, environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode("utf-8"))
    return True
