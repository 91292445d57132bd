"""Personalization (个人化) of the SSSE application as a script of steps run fail-fast.

Each :class:`Step` is an APDU (or a function building it from what earlier steps returned —
challenges, for MACs), the status words it may answer, and an optional check of the reply. The
whole script runs in ONE exclusive card session: UKSSSE external authentication, EF05/EF06
records by UPDATE RECORD with secure messaging (CLA 04 + MAC under an STKSSSE session key),
EF08 photo by chunked UPDATE BINARY, then RKSSSE external authentication and a read-back of
every item compared with what was meant. The first wrong status word or reply stops the script
with :class:`PersonalizationError` (step name and SW), and the card is to be rejected; nothing
half-written is ever reported as good. The result is the 回盘 data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hardware.smartcard.apdu import CardChannel, CommandApdu, ResponseApdu
from hardware.smartcard.keys import CardKeyContext, KeyBackend
from hardware.smartcard.layout import (
    DATA_ITEMS,
    FACTORY_TAGS,
    ITEMS_BY_TAG,
    PHOTO_SIZE,
    Encoding,
    SsseKey,
    an,
    bcd,
    bcd_date,
    card_number_valid,
    split_name,
    tlv,
)
from hardware.smartcard.pboc import read_bank_account
from hardware.smartcard.sscard import (
    external_authenticate,
    internal_authenticate,
    open_ssse,
    select_ef,
)
from kiosk.devices.smartcard import (
    CardData,
    CardDataError,
    CardNotBlankError,
    ChipAlgorithm,
    PersonalizationError,
    PersonalizationResult,
    ReadBackMismatchError,
    SmartCardError,
)

log = logging.getLogger(__name__)


@dataclass
class ScriptState:
    """What the running script has learned (challenges from the card)."""

    ctx: CardKeyContext
    challenge: bytes = b""
    replies: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One script step: APDU (or builder), accepted SWs, optional reply check, optional action.

    ``action`` replaces the APDU for steps that are a small exchange of their own (external
    authentication through the key back end). ``check`` raises or returns normally.
    """

    name: str
    command: CommandApdu | Callable[[ScriptState], CommandApdu] | None = None
    expect: tuple[int, ...] = (0x9000,)
    check: Callable[[ResponseApdu], bool] | None = None
    keep: bool = False  # store the reply data as the current challenge
    action: Callable[[CardChannel, ScriptState], None] | None = None
    readback: bool = False


def encode_card_data(card: CardData) -> dict[int, bytes]:
    """CardData → the value of every item the kiosk writes (tag → value of the item's length)."""
    if not card_number_valid(card.card_number):
        raise CardDataError("card number check character wrong", code="smartcard.card_number_invalid")
    if len(card.ssn) != 18 or not card.ssn.isascii():
        raise CardDataError("SSN must be 18 characters", code="smartcard.ssn_invalid")
    if card.sex not in ("1", "2", "9"):
        raise CardDataError("sex must be 1, 2 or 9", code="smartcard.sex_invalid")
    try:
        first, rest = split_name(card.name)
    except (UnicodeEncodeError, ValueError) as exc:
        raise CardDataError(
            "name not encodable in 50 GBK bytes", code="smartcard.name_not_encodable"
        ) from exc
    birth_place = card.birth_place or card.ssn[:6]
    try:
        raw = {
            0x02: card.card_category.encode("ascii"),
            0x03: card.spec_version.encode("ascii"),
            0x05: bcd_date(card.issue_date),
            0x06: bcd_date(card.expiry_date),
            0x07: card.card_number.encode("ascii"),
            0x08: card.ssn.encode("ascii"),
            0x09: first,
            0x4E: rest,
            0x0A: card.sex.encode("ascii"),
            0x0B: bcd(card.ethnicity_code, 1),
            0x0C: bcd(birth_place, 3),
            0x0D: bcd_date(card.birth_date),
        }
        values = {}
        for tag, value in raw.items():
            item = ITEMS_BY_TAG[tag]
            values[tag] = value if item.encoding is Encoding.CN else an(value, item.length)
            if len(values[tag]) != item.length:
                raise ValueError(f"item {tag:02X} has the wrong length")
    except (UnicodeEncodeError, ValueError) as exc:
        raise CardDataError(f"card data cannot be encoded: {exc}") from exc
    if card.photo_jpeg is not None and len(card.photo_jpeg) > PHOTO_SIZE:
        raise CardDataError("photo larger than EF08 (4096 bytes)", code="smartcard.photo_too_large")
    return values


def _write_record_builder(
    ef_tag: int, value: bytes, backend: KeyBackend
) -> Callable[[ScriptState], CommandApdu]:
    def build(state: ScriptState) -> CommandApdu:
        record = tlv(ef_tag, value)
        header = bytes((0x04, 0xDC, ef_tag, 0x00, len(record) + 4))
        mac = backend.mac(state.ctx, SsseKey.STKSSSE, state.challenge, header + record)
        return CommandApdu(0x04, 0xDC, ef_tag, 0x00, record + mac)

    return build


def build_script(
    card: CardData, values: dict[int, bytes], backend: KeyBackend, *, photo_chunk: int = 0xF0
) -> list[Step]:
    """The personalization script for one card (without the opening reads)."""
    steps: list[Step] = [
        Step(
            "external_auth.UKSSSE",
            action=lambda ch, st: external_authenticate(ch, backend, st.ctx, SsseKey.UKSSSE),
        ),
    ]
    for ef in (0xEF05, 0xEF06):
        steps.append(Step(f"select.{ef:04X}", CommandApdu(0x00, 0xA4, 0x02, 0x00, ef.to_bytes(2, "big"))))
        for item in (i for i in DATA_ITEMS if i.ef == ef and i.tag not in FACTORY_TAGS):
            steps.append(Step("get_challenge", CommandApdu(0x00, 0x84, 0x00, 0x00, le=8), keep=True))
            steps.append(
                Step(
                    f"write.{ef:04X}.{item.tag:02X}",
                    _write_record_builder(item.tag, values[item.tag], backend),
                )
            )
    photo = card.photo_jpeg or b""
    if photo:
        steps.append(Step("select.EF08", CommandApdu(0x00, 0xA4, 0x02, 0x00, b"\xef\x08")))
        for offset in range(0, len(photo), photo_chunk):
            chunk = photo[offset : offset + photo_chunk]
            steps.append(
                Step(f"write.EF08.{offset:04X}", CommandApdu(0x00, 0xD6, offset >> 8, offset & 0xFF, chunk))
            )
    # Read-back (回读校验): everything written, compared byte for byte.
    steps.append(
        Step(
            "external_auth.RKSSSE",
            readback=True,
            action=lambda ch, st: external_authenticate(ch, backend, st.ctx, SsseKey.RKSSSE),
        )
    )
    for ef in (0xEF05, 0xEF06):
        steps.append(
            Step(
                f"readback.select.{ef:04X}",
                CommandApdu(0x00, 0xA4, 0x02, 0x00, ef.to_bytes(2, "big")),
                readback=True,
            )
        )
        for item in (i for i in DATA_ITEMS if i.ef == ef and i.tag not in FACTORY_TAGS):
            expected = tlv(item.tag, values[item.tag])
            steps.append(
                Step(
                    f"readback.{ef:04X}.{item.tag:02X}",
                    CommandApdu(0x00, 0xB2, item.tag, 0x00, le=len(expected)),
                    check=lambda r, e=expected: r.data == e,
                    readback=True,
                )
            )
    if photo:
        steps.append(
            Step("readback.select.EF08", CommandApdu(0x00, 0xA4, 0x02, 0x00, b"\xef\x08"), readback=True)
        )
        for offset in range(0, len(photo), photo_chunk):
            chunk = photo[offset : offset + photo_chunk]
            steps.append(
                Step(
                    f"readback.EF08.{offset:04X}",
                    CommandApdu(0x00, 0xB0, offset >> 8, offset & 0xFF, le=len(chunk)),
                    check=lambda r, c=chunk: r.data == c,
                    readback=True,
                )
            )
    return steps


def run_script(
    channel: CardChannel, steps: list[Step], state: ScriptState, deadline: float | None = None
) -> int:
    """Runs ``steps`` fail-fast; returns the number of steps run. ``deadline`` (time.monotonic)
    stops a card that is too slow between two steps (a PC/SC transmit itself cannot be cut)."""
    for index, step in enumerate(steps):
        if deadline is not None and time.monotonic() > deadline:
            raise PersonalizationError(
                f"step {index} {step.name}: personalization took too long",
                code="smartcard.card_too_slow",
                step=step.name,
                reject_card=True,
            )
        try:
            if step.action is not None:
                step.action(channel, state)
                continue
            command = step.command(state) if callable(step.command) else step.command
            assert command is not None
            response = channel.transmit(command)
        except PersonalizationError:
            raise
        except SmartCardError as exc:
            raise PersonalizationError(
                f"step {index} {step.name} failed: {exc.code}",
                code=exc.code,
                step=step.name,
                sw=exc.sw,
                reject_card=True,
            ) from exc
        if response.sw not in step.expect:
            raise PersonalizationError(
                f"step {index} {step.name} answered {response.sw:04X}",
                step=step.name,
                sw=response.sw,
                reject_card=True,
            )
        if step.check is not None and not step.check(response):
            raise ReadBackMismatchError(
                f"step {index} {step.name}: reply differs from what was written",
                step=step.name,
                sw=response.sw,
                reject_card=True,
            )
        if step.keep:
            state.challenge = response.data
    return len(steps)


def personalize_card(
    reader: str,
    card: CardData,
    backend: KeyBackend,
    *,
    photo_chunk: int = 0xF0,
    deadline_s: float | None = None,
) -> PersonalizationResult:
    """Personalizes the blank card in ``reader``; returns the 回盘 data or raises (card rejected)."""
    values = encode_card_data(card)
    started = time.monotonic()
    channel = CardChannel(reader, exclusive=True)
    try:
        channel.open()
        try:
            # The bank account is read before anything is written (as the S2 kiosk does).
            bank_account = read_bank_account(channel)
            session = open_ssse(channel)
            ctx = session.key_context(card.application_id)
            select_ef(channel, 0xEF05)
            number = (
                channel.transmit(CommandApdu(0x00, 0xB2, 0x07, 0x00, le=11)).expect(step="ef05.read_07").data
            )
            if number[2:].strip(b"\x00"):
                raise CardNotBlankError(
                    "card already carries a card number", reject_card=True, step="ef05.read_07"
                )
            internal_authenticate(channel, backend, ctx)
        except PersonalizationError:
            raise
        except SmartCardError as exc:
            raise PersonalizationError(
                f"before the script: {exc}",
                code=exc.code,
                step=exc.step or "prepare",
                sw=exc.sw,
                reject_card=True,
            ) from exc
        steps = build_script(card, values, backend, photo_chunk=photo_chunk)
        deadline = started + deadline_s if deadline_s else None
        count = run_script(channel, steps, ScriptState(ctx), deadline)
    finally:
        channel.close()
    seconds = time.monotonic() - started
    log.info("smartcard.personalized steps=%d apdus=%d seconds=%.3f", count, channel.apdu_count, seconds)
    return PersonalizationResult(
        card_number=card.card_number,
        card_identification_code=session.card_identification_code.hex().upper(),
        atr=session.atr.hex().upper(),
        bank_account=bank_account,
        algorithm=ChipAlgorithm(session.algorithm.value),
        steps=count,
        seconds=round(seconds, 3),
    )
