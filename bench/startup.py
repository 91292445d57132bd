"""Start-up: seconds from launching ``kiosk demo`` to the first drawn frame of the home screen,
and the resident memory then. Targets: cold_start_s ≤ 3, rss_mb ≤ 350."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

DESCRIPTION = "kiosk start to first drawn home frame (cold_start_s ≤ 3) and resident memory (rss_mb ≤ 350)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=3)


def run(args: argparse.Namespace) -> dict:
    walls: list[float] = []
    inside: list[float] = []
    rss: list[float] = []
    env = dict(os.environ)
    if not env.get("DISPLAY"):
        env["SDL_VIDEODRIVER"] = "offscreen"
    for _ in range(args.runs):
        started = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "kiosk", "demo", "--report-startup"],
            capture_output=True, text=True, env=env, timeout=120,
        )
        wall = time.monotonic() - started
        line = next((l for l in out.stdout.splitlines() if l.startswith("{")), None)
        if line is None:
            raise SystemExit(f"kiosk demo did not report its start-up:\n{out.stdout}\n{out.stderr[-2000:]}")
        figures = json.loads(line)
        walls.append(wall)
        inside.append(figures["cold_start_s"])
        rss.append(figures["rss_mb"])
    cold = statistics.median(walls)
    memory = statistics.median(rss)
    return {
        "runs": args.runs,
        "cold_start_s": round(cold, 3),
        "cold_start_in_process_s": round(statistics.median(inside), 3),
        "rss_mb": round(memory, 1),
        "cold_start_target_s": 3.0,
        "cold_start_ratio_to_target": round(cold / 3.0, 3),
        "rss_target_mb": 350,
        "rss_ratio_to_target": round(memory / 350, 3),
    }
