"""Card printer: host-side seconds per card (render the face, pack the panels, drive feed →
chip station → print → eject over the real loopback link), simulator mechanics at zero.
Target: host_s_per_card ≤ 0.3.

The simulator runs in this process on the same CPU; its own time per card (decoding the panels,
writing the PNG) is measured inside it and reported as ``sim_s_per_card``. ``host_s_per_card``
is the wall time minus that; ``wall_s_per_card`` is both together."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from kiosk.devices.cardprinter import CardFace, Sex
from printer.cardface import CardFaceRenderer, FaceLayout
from printer.cardprinter.driver import EvolisCardPrinter
from printer.cardprinter.simulator import CardPrinterSimulator
from printer.cardprinter.transport import TcpTransport

DESCRIPTION = "card printer host time per card: render + protocol over loopback (host_s_per_card ≤ 0.3)"
FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
PHOTO = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "faces" / "obama.jpg"
TARGET_S = 0.3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cards", type=int, default=10)
    parser.add_argument("--colour-levels", type=int, default=32, choices=(32, 64, 128))


def run(args: argparse.Namespace) -> dict:
    photo = PHOTO.read_bytes() if PHOTO.is_file() else b""
    renderer = CardFaceRenderer(FaceLayout(), FONT)
    numbers = [f"A{n:08d}" for n in range(1, args.cards + 2)]
    per_card: list[float] = []
    render_s: list[float] = []
    walls: list[float] = []
    sims: list[float] = []
    with (
        tempfile.TemporaryDirectory() as out,
        CardPrinterSimulator(
            numbers, output_dir=Path(out), mechanics_s=0.0, reject_bin_capacity=args.cards + 1
        ) as sim,
    ):
        printer = EvolisCardPrinter(
            TcpTransport.from_address(sim.address),
            renderer=renderer,
            colour_levels=args.colour_levels,
            poll_interval_s=0.01,
        )
        printer.open()
        try:
            for i in range(args.cards + 1):
                face = CardFace(
                    name="张三丰",
                    sex=Sex.MALE,
                    ssn="110101199003078888",
                    card_number=numbers[i],
                    issue_date=date(2026, 11, 23),
                    photo=photo,
                )
                started, sim_before = time.perf_counter(), sim.busy_s
                printer.feed_to_chip_station()
                printer.print_face(face)
                result = printer.eject_to_citizen()
                elapsed = time.perf_counter() - started
                sim_spent = sim.busy_s - sim_before
                t0 = time.perf_counter()
                renderer.render(face).panels(args.colour_levels)
                render_only = time.perf_counter() - t0
                if i == 0:
                    continue  # warm-up: font cache, first connection
                assert result.outcome.value == "taken", result
                per_card.append(elapsed - sim_spent)
                walls.append(elapsed)
                sims.append(sim_spent)
                render_s.append(render_only)
        finally:
            printer.close()
    median = statistics.median(per_card)
    return {
        "cards": len(per_card),
        "host_s_per_card": round(median, 4),
        "host_s_per_card_max": round(max(per_card), 4),
        "render_and_pack_s": round(statistics.median(render_s), 4),
        "sim_s_per_card": round(statistics.median(sims), 4),
        "wall_s_per_card": round(statistics.median(walls), 4),
        "target_s": TARGET_S,
        "target_ratio": round(median / TARGET_S, 2),
    }
