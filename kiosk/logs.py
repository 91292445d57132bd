"""Logging with redaction (日志脱敏).

:func:`install_redaction` replaces the log-record factory, so *every* record — from our code,
third-party libraries, warnings, and tracebacks — is redacted when it is created, before any
handler (file, console, journald, test capture) sees it. Redaction covers:

- ID numbers (18- and 15-digit, and foreign permanent residence numbers): last 4 kept;
- mobile numbers: last 4 kept;
- digits following a PIN label (``pin=123456``): removed;
- long hex runs (PIN blocks, keys, MACs: ≥ 16 hex digits) and long base64 runs (photos);
- byte strings (``b'...'``) and long float vectors (face templates, numpy arrays);
- values registered at run time with :func:`register_sensitive` (a citizen's name, address,
  phone as the visit learns them), replaced by ``<redacted>``.

Redaction is a safety net: code must still never log personal data on purpose.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import threading
import traceback
from collections import OrderedDict
from pathlib import Path

_ID18 = re.compile(r"(?<![0-9A-Za-z])(\d{14})(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_ID15 = re.compile(r"(?<![0-9A-Za-z])(\d{11})(\d{4})(?![0-9A-Za-z])")
_FOREIGN = re.compile(r"(?<![0-9A-Za-z])([A-Z]{3}\d{8})(\d{4})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d{5})(\d{4})(?!\d)")
_PIN = re.compile(r"(?i)(\b\w*pin\w*\b[\"']?\s*[:=]?\s*[\"']?)(\d{4,12})")
_HEX = re.compile(r"(?<![0-9A-Za-z])(?:[0-9A-Fa-f]{2}[ :]?){8,}[0-9A-Fa-f]*(?![0-9A-Za-z])")
_B64 = re.compile(r"[A-Za-z0-9+/]{64,}={0,2}")
_BYTES = re.compile(r"""b(['"])(?:\\.|(?!\1).){8,}?\1""")
_VECTOR = re.compile(r"(?:array\()?\[\s*(?:-?\d+\.\d+(?:e[-+]?\d+)?,?\s*){8,}[^\]]*\]\)?")

_MAX_REGISTERED = 512
_registered: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()


def register_sensitive(*values: str | None) -> None:
    """Marks values (a name, an address, a phone) to be replaced wherever they appear in a log."""
    with _lock:
        for value in values:
            if value and len(value.strip()) >= 2:
                _registered[value.strip()] = None
                _registered.move_to_end(value.strip())
        while len(_registered) > _MAX_REGISTERED:
            _registered.popitem(last=False)


def forget_sensitive(*values: str | None) -> None:
    with _lock:
        for value in values:
            if value:
                _registered.pop(value.strip(), None)


def redact(text: str) -> str:
    """Returns ``text`` with personal data and secrets removed (see the module docstring)."""
    if not text:
        return text
    with _lock:
        registered = sorted(_registered, key=len, reverse=True)
    for value in registered:
        if value in text:
            text = text.replace(value, "<redacted>")
    text = _VECTOR.sub("<vector>", text)
    text = _BYTES.sub("<bytes>", text)
    text = _B64.sub("<base64>", text)
    text = _ID18.sub(lambda m: "*" * 14 + m.group(2), text)
    text = _FOREIGN.sub(lambda m: "*" * 11 + m.group(2), text)
    text = _PIN.sub(lambda m: m.group(1) + "<pin>", text)
    text = _HEX.sub(lambda m: f"<hex:{len(re.sub('[ :]', '', m.group(0)))}>", text)
    text = _MOBILE.sub(lambda m: "*" * 7 + m.group(2), text)
    text = _ID15.sub(lambda m: "*" * 11 + m.group(2), text)
    return text


_base_factory = logging.getLogRecordFactory()
_installed = False


def _redacting_factory(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)  # type: ignore[arg-type]
    try:
        message = record.getMessage()
    except Exception as exc:  # a bad format string must not crash the caller; log it redacted
        message = f"{record.msg!r} (unformattable: {type(exc).__name__})"
    record.msg = redact(message)
    record.args = None
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info))
        record.exc_text = redact(text.rstrip("\n"))
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def install_redaction() -> None:
    """Makes every log record redacted at creation. Idempotent."""
    global _installed
    if not _installed:
        logging.setLogRecordFactory(_redacting_factory)
        _installed = True


def configure_logging(level: str = "INFO", log_file: Path | None = None, *, console: bool = True) -> None:
    """Sets up the kiosk's handlers (console and a rotating file) behind the redaction factory."""
    install_redaction()
    root = logging.getLogger()
    root.setLevel(level)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    for handler in list(root.handlers):
        if getattr(handler, "_kiosk", False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = []
    if console:
        handlers.append(logging.StreamHandler())
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(log_file, maxBytes=5_000_000, backupCount=20, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler._kiosk = True  # type: ignore[attr-defined]
        root.addHandler(handler)
