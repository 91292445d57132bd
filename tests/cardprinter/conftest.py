"""Card printer fixtures: the simulator on a real loopback socket and the driver connected to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from kiosk.devices.cardprinter import CardFace, Sex
from printer.cardface import CardFaceRenderer, FaceLayout
from printer.cardprinter.driver import EvolisCardPrinter
from printer.cardprinter.simulator import CardPrinterSimulator, RecordingChipStation
from printer.cardprinter.transport import TcpTransport

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
NUMBERS = [f"A{n:08d}" for n in range(1, 6)]


class FakeClock:
    """Monotonic clock that only moves when the driver sleeps (no real waiting in tests)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def renderer() -> CardFaceRenderer:
    if not FONT.is_file():
        pytest.fail(f"CJK font missing: {FONT} (fonts-wqy-microhei)")
    return CardFaceRenderer(FaceLayout(), FONT)


@pytest.fixture(scope="session")
def photo(faces_dir: Path) -> bytes:
    return (faces_dir / "obama.jpg").read_bytes()


@pytest.fixture
def face(photo: bytes) -> CardFace:
    return CardFace(
        name="张三丰",
        sex=Sex.MALE,
        ssn="110101199003078888",
        card_number="A00000001",
        issue_date=date(2026, 11, 23),
        photo=photo,
        name_latin="ZHANG SANFENG",
    )


@pytest.fixture
def chip_station() -> RecordingChipStation:
    return RecordingChipStation()


@pytest.fixture
def make_sim(
    tmp_path: Path, chip_station: RecordingChipStation
) -> Iterator[Callable[..., CardPrinterSimulator]]:
    started: list[CardPrinterSimulator] = []

    def make(numbers: list[str] | None = None, **kwargs: object) -> CardPrinterSimulator:
        kwargs.setdefault("chip_station", chip_station)
        kwargs.setdefault("output_dir", tmp_path / "faces")
        sim = CardPrinterSimulator(NUMBERS if numbers is None else numbers, **kwargs)  # type: ignore[arg-type]
        sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def connect(renderer: CardFaceRenderer, clock: FakeClock) -> Iterator[Callable[..., EvolisCardPrinter]]:
    opened: list[EvolisCardPrinter] = []

    def make(sim: CardPrinterSimulator, **kwargs: object) -> EvolisCardPrinter:
        kwargs.setdefault("take_card_timeout_s", 30.0)
        kwargs.setdefault("poll_interval_s", 0.5)
        kwargs.setdefault("reply_timeout_s", 1.0)
        printer = EvolisCardPrinter(
            TcpTransport.from_address(sim.address),
            renderer=renderer,
            clock=clock,
            sleep=clock.sleep,
            **kwargs,
        )  # type: ignore[arg-type]
        printer.open()
        opened.append(printer)
        return printer

    yield make
    for printer in opened:
        printer.close()


@pytest.fixture
def sim(make_sim: Callable[..., CardPrinterSimulator]) -> CardPrinterSimulator:
    return make_sim()


@pytest.fixture
def printer(sim: CardPrinterSimulator, connect: Callable[..., EvolisCardPrinter]) -> EvolisCardPrinter:
    return connect(sim)
