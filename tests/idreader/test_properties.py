"""Property-based tests: the parser and the driver raise only their own error types."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.idreader import protocol as p
from hardware.idreader.reader import receive_reply
from hardware.idreader.simulator import IdReaderSimulator, load_deck
from kiosk.devices.idreader import CardType, IdReaderError
from tests.idreader.conftest import PEOPLE_FILE, TODAY, make_reader

DECK = load_deck(PEOPLE_FILE)
GOOD_FRAMES = [
    p.build_reply(p.Sw3.SUCCESS, p.build_read_data(card.text_block, card.photo, card.fingerprint))
    for card in DECK.values()
]


class BytesLink:
    """An in-memory serial link that returns the given bytes in random-sized pieces."""

    def __init__(self, data: bytes, seed: int) -> None:
        self.data = bytearray(data)
        self.rng = random.Random(seed)

    def reset_input_buffer(self) -> None:
        return None

    def write(self, data: bytes) -> int:
        return len(data)

    def read(self, size: int = 1) -> bytes:
        n = min(size, self.rng.randint(1, 64))
        out = bytes(self.data[:n])
        del self.data[:n]
        return out

    def close(self) -> None:
        return None


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    frame = bytearray(draw(st.sampled_from(GOOD_FRAMES)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "length", "text"]))
        if not frame:
            break
        at = draw(st.integers(0, len(frame) - 1))
        if kind == "flip":
            frame[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del frame[at:]
        elif kind == "insert":
            frame[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "length" and len(frame) > 7:
            frame[5:7] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
        elif kind == "text" and len(frame) > 270:
            # Rewrite part of the text block and fix the checksum: the parser itself must cope.
            off = 14 + draw(st.integers(0, 255))
            frame[off : off + 8] = draw(st.binary(min_size=8, max_size=8))
            frame = bytearray(frame[:-1] + bytes([p.xor_checksum(bytes(frame[5:-1]))]))
    return bytes(frame)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=3000), mutated_frames()))
def test_decode_raises_only_id_reader_errors(frame: bytes) -> None:
    try:
        card = p.decode_read_frame(frame, today=TODAY)
    except IdReaderError:
        return
    assert card.card_type in CardType and len(card.photo) >= 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(GOOD_FRAMES), st.integers(0, 2**32))
def test_receive_reply_finds_a_frame_after_garbage_without_a_preamble(
    garbage: bytes, frame: bytes, seed: int
) -> None:
    garbage = garbage.replace(b"\xaa", b"\x55")  # no (partial) preamble in the noise
    reply = receive_reply(BytesLink(garbage + frame, seed), bytearray(), 1.0)
    assert reply.sw3 == p.Sw3.SUCCESS and p.split_read_data(reply.data).text in {
        card.text_block for card in DECK.values()
    }


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=400), mutated_frames()), st.integers(0, 2**32))
def test_receive_reply_on_noise_raises_only_its_errors(data: bytes, seed: int) -> None:
    try:
        receive_reply(BytesLink(data, seed), bytearray(), 0.02, inter_byte_timeout_s=0.01)
    except IdReaderError:
        pass


CARD_TYPES = list(CardType)
_text = st.text(st.characters(codec="utf-8", exclude_characters=" \x00"), max_size=7).map(str.strip)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(CARD_TYPES),
    _text,
    st.sampled_from(["0", "1", "2", "9", "5"]),
    st.dates().map(lambda d: d.isoformat().replace("-", "")),
    st.text("0123456789", min_size=17, max_size=17),
    st.one_of(st.just(p.LONG_TERM), st.dates().map(lambda d: d.isoformat().replace("-", ""))),
)
def test_text_block_round_trip(
    card_type: CardType, name: str, sex: str, birth: str, digits: str, end: str
) -> None:
    id_number = digits + p.id_check_character(digits)
    if card_type is CardType.FOREIGN_PERMANENT_2017:
        id_number = "ABC" + digits[:12]
    text = p.CardText(card_type, name, sex, birth, id_number, birth, end, ethnicity_code="01",
                      address=name, issuer="1100", name_en=name, nationality="CHN")  # fmt: skip
    card = p.parse_identity(p.build_text_block(text), today=TODAY)
    assert card.card_type is card_type and card.name == name and card.sex_code == sex
    assert card.id_number == id_number and card.long_term == (end == p.LONG_TERM)
    assert card.birth_date is not None and card.birth_date.isoformat().replace("-", "") == birth
    assert card.id_number_valid is (None if card_type is CardType.FOREIGN_PERMANENT_2017 else True)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 300), st.sampled_from(["find", "select", "read"]), st.sampled_from(sorted(DECK)))
def test_driver_over_the_pty_survives_random_garbage(length: int, command: str, key: str) -> None:
    with IdReaderSimulator(PEOPLE_FILE, card_delay_s=0.0, seed=length) as sim:
        sim.place(key)
        sim.inject("garbage_bytes", count=1, command=command, length=length)
        with make_reader(sim.path) as driver:
            assert driver.read_identity().name == DECK[key].text.name
