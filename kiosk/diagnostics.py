"""The diagnostics bundle (诊断包) an engineer exports to a file or a USB stick.

A ``.tar.gz`` with: ``manifest.json``, ``versions.json`` (Python, platform, the kiosk's commit
and the libraries that matter), ``config.toml`` (the running configuration without the keys that
lead to secrets), ``devices.json`` (the self-check: every device's state, code and detail),
``outbox.json`` (counts per state, the oldest waiting message's age), ``visits.json`` (the last
visits: business, outcome, reason — no person) and ``logs/`` (the last lines of the kiosk's log).

Everything written passes through the log redaction (:func:`kiosk.logs.redact`); log lines also
lose any Chinese text (log events are English by convention, so Chinese in a log line can only
be data, e.g. a name); the key material of the site key files is removed wherever it appears;
and the finished bundle is read back and refused if a key or a full ID number is still in it.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import logging
import os
import platform
import re
import sys
import tarfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.config import REPO_ROOT, KioskConfig
from kiosk.config.loader import dump_toml
from kiosk.journal import utc_now
from kiosk.logs import redact
from kiosk.siteconfig import redacted_tree

log = logging.getLogger(__name__)

LIBRARIES = (
    "sscard-kiosk", "kivy", "pyscard", "pyserial", "python-escpos", "opencv-python-headless",
    "face-recognition", "dlib-bin", "cryptography", "gmssl", "requests", "numpy", "pillow",
)
DEFAULT_LOG_LINES = 500
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+")
_ID18 = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
_TOKEN = re.compile(r"[0-9A-Za-z+/=_-]{16,}")


class DiagnosticsError(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class Bundle:
    path: Path
    files: tuple[str, ...]
    size: int


def secret_values(paths: Iterable[Path | None]) -> list[str]:
    """The key material in key files (``<id> <hex>`` lines, PEM bodies, hex keys): every token of
    16 characters or more, so it can be scrubbed from whatever the bundle holds."""
    found: list[str] = []
    for path in paths:
        if path is None or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            log.warning("diagnostics.key_file_unreadable path=%s error=%s", path, exc.strerror)
            continue
        found += [t for t in _TOKEN.findall(text) if not t.startswith("-----")]
    return sorted(set(found), key=len, reverse=True)


def key_files(config: KioskConfig) -> list[Path]:
    """The files holding the kiosk's secrets: the site key file, the signing key, client key."""
    state_dir = config.resolve(config.kiosk.state_dir)
    paths = [config.resolve(config.outbox.key_file) if config.outbox.key_file else state_dir / "outbox.key"]
    for path in (config.backend.signing_key_file, config.backend.client_key):
        if path is not None:
            paths.append(config.resolve(path))
    return paths


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Personal data and secrets out of ``text`` (the log redaction, then the given secrets)."""
    for secret in secrets:
        text = text.replace(secret, "<secret>")
    return redact(text)


def scrub_log_line(line: str, secrets: Iterable[str] = ()) -> str:
    return _CJK.sub("<text>", scrub(line, secrets))


def versions(repo: Path = REPO_ROOT) -> dict[str, Any]:
    libraries: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            libraries[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            libraries[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "commit": _commit(repo),
        "libraries": libraries,
    }


def _commit(repo: Path) -> str | None:
    """The checked-out commit, read from ``.git`` (no git process is run)."""
    git = repo / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        ref_file = git / ref
        if ref_file.exists():
            return ref_file.read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        return None
    return None


def tail_lines(log_dir: Path, base_name: str, limit: int) -> dict[str, list[str]]:
    """The last ``limit`` lines of the log, newest file first (``kiosk.log``, ``kiosk.log.1`` …)."""
    out: dict[str, list[str]] = {}
    left = limit
    candidates = [log_dir / base_name] + [log_dir / f"{base_name}.{i}" for i in range(1, 50)]
    for path in candidates:
        if left <= 0 or not path.is_file():
            continue
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            log.warning("diagnostics.log_unreadable path=%s error=%s", path, exc.strerror)
            continue
        out[path.name] = lines[-left:]
        left -= len(out[path.name])
    return out


def build_bundle(
    out: Path,
    config: KioskConfig,
    *,
    devices: Mapping[str, Any] | None = None,
    outbox: Mapping[str, Any] | None = None,
    visits: list[Mapping[str, Any]] | None = None,
    log_lines: int = DEFAULT_LOG_LINES,
    secrets: Iterable[str] = (),
    clock: Callable[[], datetime] = utc_now,
) -> Bundle:
    """Writes the bundle to ``out`` (atomically) and returns what it holds.

    ``devices``: a self-check report as a dict (``SelfCheckReport.as_dict``); ``outbox``: the
    outbox status as a dict; ``visits``: recent visits as dicts; ``secrets``: key material to
    scrub (by default read from the configured key files).
    """
    secrets = list(secrets) or secret_values(key_files(config))
    now = clock().astimezone(UTC)
    members: dict[str, str] = {}

    def add_json(name: str, obj: Any) -> None:
        members[name] = scrub(json.dumps(obj, ensure_ascii=False, indent=1, default=str), secrets)

    add_json("versions.json", versions())
    members["config.toml"] = scrub(dump_toml(redacted_tree(config)), secrets)
    add_json("devices.json", devices if devices is not None else {"note": "device states not checked"})
    add_json("outbox.json", outbox if outbox is not None else {"note": "outbox not available"})
    add_json("visits.json", visits or [])
    log_dir = config.resolve(config.kiosk.log_dir)
    if config.logging.file:
        for name, lines in tail_lines(log_dir, config.logging.file, log_lines).items():
            members[f"logs/{name}"] = "\n".join(scrub_log_line(line, secrets) for line in lines) + "\n"
    manifest = {
        "created_at": now.isoformat(),
        "kiosk_id": config.kiosk.kiosk_id,
        "files": sorted(members),
        "redaction": "kiosk.logs.redact; Chinese text removed from log lines; key material removed",
    }
    members = {"manifest.json": json.dumps(manifest, ensure_ascii=False, indent=1), **members}
    _refuse_leaks(members, secrets)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"diagnostics/{name}")
            info.size = len(data)
            info.mtime = int(now.timestamp())
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, out)
    log.info("diagnostics.exported files=%d size=%d", len(members), out.stat().st_size)
    return Bundle(out, tuple(members), out.stat().st_size)


def _refuse_leaks(members: Mapping[str, str], secrets: Iterable[str]) -> None:
    """The last line of defence: nothing leaves with a key or a full ID number in it."""
    for name, text in members.items():
        if _ID18.search(text):
            raise DiagnosticsError("diagnostics.leak", f"{name} holds an ID number")
        for secret in secrets:
            if secret in text:
                raise DiagnosticsError("diagnostics.leak", f"{name} holds key material")


def bundle_name(config: KioskConfig, clock: Callable[[], datetime] = utc_now) -> str:
    stamp = clock().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    kiosk_id = re.sub(r"[^A-Za-z0-9_-]", "_", config.kiosk.kiosk_id)
    return f"diagnostics-{kiosk_id}-{stamp}.tar.gz"


def export_destinations(default_dir: Path, roots: Iterable[Path] = (Path("/media"), Path("/run/media"))) -> list[Path]:
    """Where a bundle can go: the kiosk's own export directory, then each mounted USB stick
    (``/media/<stick>``, ``/media/<user>/<stick>``, ``/run/media/<user>/<stick>``) that is writable."""
    found = [default_dir]
    for root in roots:
        if not root.is_dir():
            continue
        for first in sorted(root.iterdir()):
            for candidate in [first, *(sorted(first.iterdir()) if first.is_dir() and not os.path.ismount(first) else [])]:
                try:
                    if os.path.ismount(candidate) and os.access(candidate, os.W_OK):
                        found.append(candidate)
                except OSError:
                    continue
    return found


def recent_visits(journal: Any, limit: int = 50) -> list[dict[str, Any]]:
    """The last visits as the bundle shows them: no person, only what happened."""
    return [
        {
            "visit_id": v.visit_id, "business": v.business, "state": v.state, "outcome": v.outcome,
            "reason": v.reason, "started_at": v.started_at.isoformat(),
            "ended_at": v.ended_at.isoformat() if v.ended_at else None,
        }
        for v in journal.recent_visits(limit)
    ]
