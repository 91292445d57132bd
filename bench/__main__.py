from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path


def _names() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        m.name.replace("_", "-")
        for m in pkgutil.iter_modules([str(here)])
        if not m.name.startswith("_")
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("--list", "-l"):
        for name in _names():
            module = importlib.import_module(f"bench.{name.replace('-', '_')}")
            print(f"{name:20s} {getattr(module, 'DESCRIPTION', '')}")
        return 0
    if argv[0] in ("-h", "--help"):
        print("usage: python -m bench NAME [--json] [options] | --list")
        return 0
    name = argv.pop(0)
    if name not in _names():
        print(f"unknown benchmark {name!r}; known: {', '.join(_names())}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bench.{name.replace('-', '_')}")
    parser = argparse.ArgumentParser(prog=f"python -m bench {name}", description=module.DESCRIPTION)
    parser.add_argument("--json", action="store_true", help="print one JSON object of the figures")
    if hasattr(module, "add_arguments"):
        module.add_arguments(parser)
    args = parser.parse_args(argv)
    figures = module.run(args)
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    else:
        for key, value in figures.items():
            print(f"{key:28s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
