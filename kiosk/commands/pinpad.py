"""``kiosk pinpad info`` and ``kiosk pinpad load-key``: the PIN pad for installers and engineers.

``info`` prints model, serial number, firmware, status and the loaded keys by check value only.
``load-key`` reads key components (密钥分量, one hex line each, XORed into the key) from a file or
from stdin (echo off on a terminal) and loads a master key, or loads a working key delivered
encrypted under a master key. Key material is never printed, logged or put in an error message.

Errors print ``{"error": {"code", "message"}}``: exit 2 for bad input, exit 1 for a pad failure.
Without ``--port`` and with ``[pinpad] simulate = true`` both commands talk to a throwaway
simulated pad (keys loaded there are gone when the command ends).
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack
from typing import Any

from kiosk.commands._common import print_error, print_json
from kiosk.devices.pinpad import KeyAlgorithm, KeySlot, PinPadError, wipe
from kiosk.pins import KeyComponentError, install_master_key, key_components_from_text

MAX_COMPONENT_TEXT = 4096


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("pinpad", help="encrypted PIN pad (密码键盘): info, key loading")
    inner = parser.add_subparsers(dest="pinpad_command", metavar="ACTION", required=True)
    info = inner.add_parser("info", help="model, serial, firmware, loaded keys (check values only)")
    info.add_argument("--port", help="serial port of the pad (default: configuration)")
    info.add_argument("--json", action="store_true", help="JSON output (the only format)")
    info.set_defaults(func=run_info)
    load = inner.add_parser("load-key", help="load a master key from components, or a working key")
    load.add_argument("--port", help="serial port of the pad (default: configuration)")
    load.add_argument("--kind", choices=("master", "working"), default="master")
    load.add_argument("--master", type=int, required=True, help="master key index (0–15)")
    load.add_argument("--index", type=int, help="working key index (working keys only)")
    load.add_argument("--algorithm", choices=[a.value for a in KeyAlgorithm], required=True)
    load.add_argument(
        "--components",
        default="-",
        help="file of hex key components, one per line ('-': stdin, the default); for a working "
        "key: one line, the key encrypted under the master key",
    )
    load.add_argument("--check-value", help="expected check value (8 hex digits); refused if different")
    load.set_defaults(func=run_load_key)


def _slot_json(slot: KeySlot) -> dict[str, Any]:
    return {
        "kind": slot.kind,
        "master_index": slot.master_index,
        "working_index": slot.working_index,
        "algorithm": slot.algorithm.value,
        "check_value": slot.check_value,
    }


def _open_pad(args: argparse.Namespace, stack: ExitStack) -> tuple[Any, bool]:
    """The driver on the configured port or a throwaway simulator; raises ValueError on bad config."""
    from hardware.pinpad.driver import EncryptedPinPad
    from hardware.pinpad.simulator import PinPadSimulator
    from kiosk.config import ConfigError, load_config

    try:
        section = load_config(args.profile).pinpad
    except ConfigError as exc:
        raise ValueError(str(exc)) from exc
    port = args.port or section.port
    simulated = args.port is None and section.simulate
    if simulated:
        port = stack.enter_context(PinPadSimulator()).path
    pad = EncryptedPinPad(
        port, baud=section.baud, command_set=section.command_set, reply_timeout_s=section.reply_timeout_s
    )
    stack.enter_context(pad)
    return pad, simulated


def run_info(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        try:
            pad, simulated = _open_pad(args, stack)
        except ValueError as exc:
            return print_error("config.invalid", str(exc))
        except PinPadError as exc:
            return print_error(exc.code, str(exc), 1)
        status = pad.status()
        try:
            info = pad.info()
        except PinPadError as exc:
            return print_error(exc.code, str(exc), 1)
    print_json(
        {
            "model": info.model,
            "serial": info.serial,
            "firmware": info.firmware,
            "command_set": info.command_set,
            "simulated": simulated,
            "status": {"state": status.state.value, "code": status.code},
            "keys": None if info.keys is None else [_slot_json(s) for s in info.keys],
        }
    )
    return 0


def _read_component_text(source: str) -> bytearray:
    """Reads at most MAX_COMPONENT_TEXT bytes into a bytearray (no immutable copy of the key text)."""
    buffer = bytearray(MAX_COMPONENT_TEXT)
    view = memoryview(buffer)
    if source == "-":
        fd = sys.stdin.fileno()
        restore = _echo_off(fd)
        try:
            count = 0
            while count < MAX_COMPONENT_TEXT:
                n = os.readv(fd, [view[count:]])
                # (checked in place: slicing would leave an unwiped copy of a key line)
                if n == 0 or (restore is not None and all(b in b" \t\r\n" for b in view[count : count + n])):
                    break  # EOF, or an empty line typed at the terminal
                count += n
        finally:
            if restore is not None:
                restore()
                sys.stderr.write("\n")
    else:
        with open(source, "rb", buffering=0) as f:
            count = f.readinto(view) or 0
    view.release()
    del buffer[count:]
    return buffer


def _echo_off(fd: int) -> Any:
    """Turns terminal echo off; returns the function that restores it (None if not a terminal)."""
    if not os.isatty(fd):
        return None
    import termios

    old = termios.tcgetattr(fd)
    new = termios.tcgetattr(fd)
    new[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSADRAIN, new)
    sys.stderr.write("key components, one hex line each; an empty line ends (not echoed):\n")
    return lambda: termios.tcsetattr(fd, termios.TCSADRAIN, old)


def run_load_key(args: argparse.Namespace) -> int:
    algorithm = KeyAlgorithm(args.algorithm)
    if not 0 <= args.master <= 15:
        return print_error("pinpad.bad_option", "--master must be 0 to 15")
    if args.kind == "working" and (args.index is None or not 0 <= args.index <= 254):
        return print_error("pinpad.bad_option", "--index (0 to 254) is needed for a working key")
    if args.check_value is not None and (len(args.check_value) != 8 or not _is_hex(args.check_value)):
        return print_error("pinpad.bad_option", "--check-value must be 8 hex digits")
    try:
        raw = _read_component_text(args.components)
    except OSError as exc:
        return print_error("pinpad.components_unreadable", f"cannot read the components: {exc.strerror}")
    try:
        components = key_components_from_text(raw)
    except KeyComponentError as exc:
        return print_error("pinpad.bad_components", str(exc))
    if args.kind == "working" and len(components) != 1:
        for c in components:
            wipe(c)
        return print_error("pinpad.bad_components", "a working key is one line: the key under the master key")
    with ExitStack() as stack:
        stack.callback(lambda: [wipe(c) for c in components])
        try:
            pad, simulated = _open_pad(args, stack)
            if args.kind == "master":
                kcv = install_master_key(pad, args.master, algorithm, components, args.check_value)
            else:
                kcv = pad.load_working_key(
                    args.master, args.index, bytes(components[0]), algorithm, args.check_value
                )
        except ValueError as exc:
            return print_error("config.invalid", str(exc))
        except PinPadError as exc:
            return print_error(exc.code, str(exc), 1)
    print_json(
        {
            "kind": args.kind,
            "master_index": args.master,
            "working_index": args.index if args.kind == "working" else None,
            "algorithm": algorithm.value,
            "check_value": kcv,
            "simulated": simulated,
        }
    )
    return 0


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)
