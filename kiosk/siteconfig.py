"""The engineer's view and edit of the configuration (配置查看与修改).

The running kiosk's configuration is shown as dotted keys (``pinpad.port``) with their values.
An edit changes one key in the **site file** (``/etc/kiosk/kiosk.toml`` or ``$KIOSK_CONFIG``):
the new value is validated with the configuration's own loader against the whole effective
configuration (types, allowed values, combinations), refused with a message naming the key, and
only then written — after a timestamped copy of the old file. The kiosk reads configuration
once at start: an edit takes effect at the next start.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.config import SITE_FILE, ConfigError, KioskConfig, as_tree
from kiosk.config.loader import build, dump_toml, read_toml
from kiosk.journal import utc_now

# Names of keys that lead to secrets (key files, certificates, passwords): shown in the menu (a
# path is not a secret) but left out of a diagnostics bundle.
SECRET_KEY = re.compile(r"(secret|password|passwd|token|private|credential|signing|cert|(^|_)keys?$|key_file)", re.IGNORECASE)


def is_secret_key(dotted: str) -> bool:
    return bool(SECRET_KEY.search(dotted.rsplit(".", 1)[-1]))


def site_file_path(env: Mapping[str, str] | None = None) -> Path:
    """The site file the loader reads (the same rule as :func:`kiosk.config.load_config`)."""
    env = os.environ if env is None else env
    return Path(env.get("KIOSK_CONFIG", str(SITE_FILE)))


@dataclass(frozen=True)
class ConfigEntry:
    key: str  # dotted
    value: str  # as TOML would write it
    secret: bool


class ConfigEditRefused(Exception):
    """An edit that was not written. ``key`` names the key, ``problem`` says why."""

    def __init__(self, code: str, key: str, problem: str) -> None:
        self.code = code
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


@dataclass(frozen=True)
class ConfigEdit:
    key: str
    old: str
    new: str
    site_file: Path
    backup: Path | None


def _toml_value(value: Any) -> str:
    if value is None:
        return "(unset)"
    line = dump_toml({"v": value}).strip()
    return line.split("=", 1)[1].strip()


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.extend(_flatten(value, dotted + "."))
        else:
            out.append((dotted, value))
    return out


def entries(config: KioskConfig) -> list[ConfigEntry]:
    """Every setting of the running configuration, as dotted keys, in schema order."""
    return [ConfigEntry(k, _toml_value(v), is_secret_key(k)) for k, v in _flatten(as_tree(config))]


def parse_value(raw: str, current: Any) -> Any:
    """The typed value of ``raw`` as an engineer types it: a TOML value (``true``, ``3``,
    ``[1, 2]``, ``"x"``), or the plain text for a text setting (``/dev/ttyS3``)."""
    raw = raw.strip()
    try:
        value: Any = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    if isinstance(current, str) and not isinstance(value, str):
        value = raw  # a text setting keeps the text as typed ("0011" stays "0011")
    if current is None and raw in ("", "(unset)"):
        value = None
    return value


def _lookup(tree: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _set(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigEditRefused("config.not_a_table", key, f"{part} is not a table")
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def validate_edit(config: KioskConfig, key: str, raw: str) -> tuple[Any, KioskConfig]:
    """The typed value and the configuration it would give; :class:`ConfigEditRefused` naming
    the key when the loader refuses it (wrong type, refused value, unknown key)."""
    key = key.strip()
    tree = as_tree(config)
    found, current = _lookup(tree, key)
    if not found:
        raise ConfigEditRefused("config.unknown_key", key, "unknown key")
    if isinstance(current, Mapping):
        raise ConfigEditRefused("config.not_a_setting", key, "a table: edit one of its keys")
    value = parse_value(raw, current)
    _set(tree, key, value)
    try:
        new_config = build(KioskConfig, tree, {key: "engineer menu"})
    except ConfigError as exc:
        # A section's own rule names the section: the engineer edited one key of it, name that.
        named = key if exc.key in ("", "(root)", key) or key.startswith(exc.key + ".") else exc.key
        raise ConfigEditRefused("config.invalid_value", named, exc.problem) from exc
    return value, new_config


def edit_site_file(
    config: KioskConfig,
    site_file: Path,
    key: str,
    raw: str,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> ConfigEdit:
    """Validates ``key = raw`` and writes it to ``site_file`` (kept otherwise as it was), after
    copying the old file to ``<name>.<UTC time>.bak`` beside it."""
    key = key.strip()
    value, _ = validate_edit(config, key, raw)
    _, old = _lookup(as_tree(config), key)
    try:
        site_tree = read_toml(site_file) if site_file.exists() else {}
    except ConfigError as exc:
        raise ConfigEditRefused("config.site_file_invalid", key, exc.problem) from exc
    _set(site_tree, key, value)
    # The site file on its own must stay loadable over the defaults.
    text = dump_toml(site_tree)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # the writer cannot express this value
        raise ConfigEditRefused("config.not_writable", key, str(exc)) from exc
    backup = None
    try:
        site_file.parent.mkdir(parents=True, exist_ok=True)
        if site_file.exists():
            stamp = clock().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            backup = site_file.with_name(f"{site_file.name}.{stamp}.bak")
            shutil.copy2(site_file, backup)
        tmp = site_file.with_name(site_file.name + ".tmp")
        tmp.write_text(
            "# Site configuration (written by the engineer menu; the previous version is kept as .bak)\n" + text,
            encoding="utf-8",
        )
        if backup is not None:
            shutil.copymode(backup, tmp)
        os.replace(tmp, site_file)
    except OSError as exc:
        raise ConfigEditRefused("config.site_file_unwritable", key, f"{site_file}: {exc.strerror}") from exc
    return ConfigEdit(key, _toml_value(old), _toml_value(value), site_file, backup)


def redacted_tree(config: KioskConfig) -> dict[str, Any]:
    """The configuration without the keys that lead to secrets (for a diagnostics bundle)."""

    def strip(node: Any, prefix: str) -> Any:
        if isinstance(node, Mapping):
            return {
                k: strip(v, f"{prefix}{k}.")
                for k, v in node.items()
                if not is_secret_key(f"{prefix}{k}")
            }
        return node

    return strip(as_tree(config), "")
