"""``kiosk run`` (the full-screen app with the configured devices) and ``kiosk demo`` (the app
with every device simulated). Without a display they run under Xvfb (or SDL offscreen when
xvfb-run is missing), say so, and save screenshots where they print."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from kiosk.commands._common import print_error
from kiosk.config import ConfigError, KioskConfig, load_config

_STARTED = time.monotonic()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser("run", help="start the full-screen kiosk with the configured devices")
    _common_arguments(run)
    run.set_defaults(func=lambda args: start(args, profile=args.profile))
    demo = sub.add_parser("demo", help="start the kiosk with every device simulated (pty, pcscd+vpcd, loopback)")
    _common_arguments(demo)
    demo.add_argument("--headless", action="store_true", help="run without a display (SDL offscreen)")
    demo.add_argument("--scenario", help="run one scripted visit (see --list-scenarios) and quit")
    demo.add_argument("--list-scenarios", action="store_true", help="list the scripted visits")
    demo.add_argument("--json", action="store_true", help="print the scenario's report as one JSON object")
    demo.add_argument("--fast", action="store_true", help="no simulated delays, no think time")
    demo.add_argument("--state-dir", type=Path, help="state directory for the scenario (default: a fresh temporary one)")
    demo.add_argument("--lang", help="the citizen switches to this language first (zh_CN, en)")
    demo.add_argument("--elder", action="store_true", help="the citizen switches elder mode on first")
    demo.add_argument("--cut-power", action="store_true", help=argparse.SUPPRESS)
    demo.set_defaults(func=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    if args.list_scenarios:
        from kiosk.commands.scenarios import SCENARIOS

        if args.json:
            print(json.dumps([{"name": s.name, "business": s.business, "expect": s.expect, "description": s.description}
                              for s in SCENARIOS.values()], ensure_ascii=False, indent=1))
        else:
            for s in SCENARIOS.values():
                print(f"{s.name:36} {s.expect:20} {s.description}")
        return 0
    if args.scenario:
        return scenario_command(args)
    return start(args, profile="demo")


def scenario_command(args: argparse.Namespace) -> int:
    from kiosk.commands.scenarios import SCENARIOS, run_scenario, run_visit, scenario_config

    if args.scenario not in SCENARIOS:
        return print_error("unknown_scenario", f"no scenario {args.scenario!r}; see kiosk demo --list-scenarios")
    ensure_display(True)
    if args.cut_power:
        # The first half of a power-cut scenario: this process is killed (SIGKILL) mid-production.
        config = scenario_config(args.scenario, args.state_dir, fast=args.fast)
        run_visit(args.scenario, config, fast=args.fast, screenshots=None, cut_power=True)
        return 3  # not reached when the power cut happens
    report = run_scenario(args.scenario, fast=args.fast, state_dir=args.state_dir, screenshots=args.screenshots,
                          lang=args.lang, elder=args.elder)
    if args.json:
        print(json.dumps(report, ensure_ascii=False), flush=True)
    else:
        print(json.dumps(report, ensure_ascii=False, indent=1), flush=True)
    return 0 if report["passed"] else 1


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--screenshots", type=Path, help="directory for screenshots (default: from configuration)")
    parser.add_argument("--exit-after", type=float, help="quit after this many seconds")
    parser.add_argument("--tour", action="store_true", help="screenshot the home screen in zh, en and elder mode, then quit")
    parser.add_argument(
        "--report-startup", action="store_true",
        help="print {cold_start_s, rss_mb} as JSON at the first drawn frame of the home screen, then quit",
    )


def ensure_display(headless: bool) -> str:
    """Re-executes under xvfb-run when there is no display; returns how the app will draw."""
    if os.environ.get("DISPLAY"):
        return f"display {os.environ['DISPLAY']}"
    if os.environ.get("SDL_VIDEODRIVER") == "offscreen" or headless:
        os.environ["SDL_VIDEODRIVER"] = "offscreen"
        return "offscreen (SDL, no X server)"
    xvfb = shutil.which("xvfb-run")
    if xvfb and not os.environ.get("KIOSK_UNDER_XVFB"):
        env = dict(os.environ, KIOSK_UNDER_XVFB="1", LP_NUM_THREADS=os.environ.get("LP_NUM_THREADS", "0"))
        argv = [xvfb, "-a", "-s", "-screen 0 1280x1024x24", sys.executable, "-m", "kiosk", *sys.argv[1:]]
        print("kiosk: no display: running under Xvfb (xvfb-run)", file=sys.stderr, flush=True)
        os.execvpe(xvfb, argv, env)
    os.environ["SDL_VIDEODRIVER"] = "offscreen"
    return "offscreen (SDL, no X server: xvfb-run not found)"


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start(args: argparse.Namespace, profile: str | None) -> int:
    try:
        config = load_config(profile)
    except ConfigError as exc:
        return print_error("config.invalid", str(exc))
    drawing = ensure_display(getattr(args, "headless", False) or args.report_startup)
    from kiosk.app import build_kiosk, prepare_kivy_environment, run_ui

    prepare_kivy_environment(config, headless=False)
    shots = args.screenshots or config.resolve(config.kiosk.screenshot_dir)
    if not args.report_startup:
        print(f"kiosk: drawing on {drawing}; screenshots in {shots}", file=sys.stderr, flush=True)
    kiosk = build_kiosk(config, console_log=not args.report_startup)
    actions: list[tuple[float, Any]] = []
    exit_after = args.exit_after
    on_first_frame = None
    if args.report_startup:
        def on_first_frame() -> None:
            print(json.dumps({"cold_start_s": round(time.monotonic() - _STARTED, 3), "rss_mb": round(rss_mb(), 1)}), flush=True)
            os._exit(0)
        shots = None
    elif args.tour:
        actions = tour_actions(config, kiosk.simulators)
        exit_after = actions[-1][0] + 1.5
    try:
        run_ui(kiosk, screenshot_dir=shots, on_first_frame=on_first_frame, exit_after_s=exit_after, actions=actions)
    finally:
        kiosk.close()
    return 0


def tour_actions(config: KioskConfig, simulators: dict[str, Any]) -> list[tuple[float, Any]]:
    """Home in every language, then in elder mode, each screenshotted; with the simulated ID
    reader, a card placed on it (the home screen shows the identity, masked)."""
    steps: list[tuple[float, Any]] = []
    t = 1.5
    reader = simulators.get("idreader")
    if reader is not None:
        steps.append((0.5, lambda ui: reader.place("first_issue")))
    for lang in config.kiosk.languages:
        steps.append((t, lambda ui, lang=lang: (ui.switch_language(lang), ui.toggle_elder(False))))
        steps.append((t + 1.0, lambda ui: ui.take_screenshot("home")))
        t += 2.0
    steps.append((t, lambda ui: (ui.switch_language(config.kiosk.language), ui.toggle_elder(True))))
    steps.append((t + 1.0, lambda ui: ui.take_screenshot("home")))
    return steps
