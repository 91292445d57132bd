"""Helpers shared by the command modules: JSON output and typed error reporting."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=None, default=str) + "\n")
    sys.stdout.flush()


def print_error(code: str, message: str, exit_code: int = 2) -> int:
    """Prints ``{"error": {"code": ..., "message": ...}}`` and returns the exit code (2)."""
    print_json({"error": {"code": code, "message": message}})
    return exit_code
