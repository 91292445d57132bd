"""Reads configuration once at start into typed, frozen objects (配置).

Layers, later wins: ``config/default.toml`` → an optional profile (``config/demo.toml``) →
the site file ``/etc/kiosk/kiosk.toml`` (or ``$KIOSK_CONFIG``) → ``KIOSK_<SECTION>__<KEY>``
environment variables. A value of the wrong type, a value a section refuses, or an unknown key
(a typo) raises :class:`ConfigError` naming the key and the file it came from.
"""

from __future__ import annotations

import dataclasses
import enum
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ENV_PREFIX = "KIOSK_"


class ConfigError(Exception):
    """A configuration value cannot be used. ``key`` is dotted (``pinpad.port``)."""

    def __init__(self, key: str, source: str, problem: str) -> None:
        self.key = key
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {key}: {problem}")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", str(path), f"not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError("(file)", str(path), f"cannot be read: {exc.strerror}") from exc


def env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    """``KIOSK_PINPAD__PORT=/dev/ttyS3`` → ``{"pinpad": {"port": "/dev/ttyS3"}}``.

    The value is read as a TOML value when it parses as one (``true``, ``3``, ``[1, 2]``,
    ``"x"``), else taken as a plain string. ``KIOSK_CONFIG`` and ``KIOSK_PROFILE`` name files,
    not keys, and are skipped here.
    """
    layer: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = layer
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return layer


def merge_layers(layers: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Deep-merges the layers; returns the merged tree and, per dotted key, the layer it came from."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}

    def walk(dst: dict[str, Any], src: dict[str, Any], source: str, prefix: str) -> None:
        for key, value in src.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, dict) and isinstance(dst.get(key), dict):
                walk(dst[key], value, source, dotted + ".")
            else:
                dst[key] = _copy(value)
                origin[dotted] = source
                if isinstance(value, dict):
                    for sub in _dotted_keys(value, dotted + "."):
                        origin[sub] = source

    for source, layer in layers:
        walk(merged, layer, source, "")
    return merged, origin


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _dotted_keys(tree: dict[str, Any], prefix: str) -> list[str]:
    keys = []
    for key, value in tree.items():
        keys.append(prefix + key)
        if isinstance(value, dict):
            keys.extend(_dotted_keys(value, prefix + key + "."))
    return keys


def build(cls: type[T], tree: Mapping[str, Any], origin: Mapping[str, str], prefix: str = "") -> T:
    """Builds the dataclass ``cls`` from ``tree``, checking every key and type."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(dotted, origin.get(dotted, "?"), f"unknown key (known keys here: {known})")
        kwargs[key] = _convert(hints[key], value, dotted, origin)
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{prefix}{name}", "(all files)", "is required and missing")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        # A section's __post_init__ refuses a combination; name the section and where it was set.
        raise ConfigError(prefix.rstrip(".") or "(root)", _section_origin(prefix, origin), str(exc)) from exc


def _section_origin(prefix: str, origin: Mapping[str, str]) -> str:
    sources = sorted({src for key, src in origin.items() if key.startswith(prefix)})
    return ", ".join(sources) or "(defaults)"


def _convert(hint: Any, value: Any, key: str, origin: Mapping[str, str]) -> Any:
    source = origin.get(key, "?")

    def bad(expected: str) -> ConfigError:
        return ConfigError(key, source, f"expected {expected}, got {value!r}")

    org = typing.get_origin(hint)
    args = typing.get_args(hint)
    if org in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value == "" and type(None) in args):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, key, origin)
            except ConfigError as exc:
                errors.append(exc.problem)
        raise bad(" or ".join(_type_name(a) for a in args))
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise bad(f"a table [{key}]")
        return build(hint, value, origin, key + ".")
    if org in (tuple, list):
        if not isinstance(value, list):
            raise bad("a list")
        inner = args[0] if args else Any
        if org is tuple and len(args) == 2 and args[1] is Ellipsis or org is list:
            return tuple(_convert(inner, v, f"{key}[{i}]", origin) for i, v in enumerate(value))
        if len(args) != len(value):
            raise bad(f"a list of {len(args)} values")
        return tuple(_convert(a, v, f"{key}[{i}]", origin) for i, (a, v) in enumerate(zip(args, value)))
    if org in (dict, Mapping) or hint is dict:
        if not isinstance(value, dict):
            raise bad("a table")
        kt, vt = args if args else (str, Any)
        return types.MappingProxyType({k: _convert(vt, v, f"{key}.{k}", origin) for k, v in value.items()})
    if hint is Any:
        return value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in hint)
            raise bad(f"one of {choices}") from None
    if hint is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("a whole number")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if hint is Path:
        if not isinstance(value, str):
            raise bad("a path string")
        return Path(value)
    raise ConfigError(key, source, f"unsupported type {hint!r} in the schema")


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def to_toml_tree(obj: Any) -> Any:
    """The inverse of :func:`build`, for writing defaults and showing configuration."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_toml_tree(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (tuple, list)):
        return [to_toml_tree(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_toml_tree(v) for k, v in obj.items()}
    return obj


def dump_toml(tree: Mapping[str, Any]) -> str:
    """A small TOML writer for the shapes the schema uses (tables, scalars, lists of scalars)."""
    lines: list[str] = []

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{_key(k)} = {scalar(x)}" for k, x in v.items()) + " }"
        raise TypeError(f"cannot write {v!r} as TOML")

    def table(path: str, t: Mapping[str, Any]) -> None:
        plain = {k: v for k, v in t.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in t.items() if isinstance(v, dict)}
        if path:
            lines.append(f"\n[{path}]")
        for k, v in plain.items():
            # TOML has no null: an unset optional value is shown as a comment.
            lines.append(f"# {_key(k)} = (unset)" if v is None else f"{_key(k)} = {scalar(v)}")
        for k, v in nested.items():
            table(f"{path}.{_key(k)}" if path else _key(k), v)

    table("", tree)
    return "\n".join(lines).lstrip("\n") + "\n"


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else f'"{k}"'
