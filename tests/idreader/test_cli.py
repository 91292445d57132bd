"""``kiosk idcard decode`` and ``kiosk idcard read``: the JSON contract of issue 4."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardware.idreader import protocol as p
from hardware.idreader.simulator import IdReaderSimulator, load_deck
from kiosk.cli import main
from tests.idreader.conftest import PEOPLE_FILE

DECK = load_deck(PEOPLE_FILE)
KEYS = {"card_type", "name", "name_en", "sex", "ethnicity", "birth_date", "address", "id_number", "issuer",
        "valid_from", "valid_until", "nationality", "id_number_valid", "photo_bytes", "fingerprint_bytes"}  # fmt: skip


def _frame_file(tmp_path: Path, key: str, fingerprint: bool = False) -> Path:
    card = DECK[key]
    data = p.build_read_data(card.text_block, card.photo, (card.fingerprint or b"") if fingerprint else None)
    path = tmp_path / f"{key}.bin"
    path.write_bytes(p.build_reply(p.Sw3.SUCCESS, data))
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_decode_resident_card_masks_the_id_number(tmp_path: Path, capsys) -> None:
    code, out = _run(capsys, "idcard", "decode", str(_frame_file(tmp_path, "replacement")))
    assert code == 0 and KEYS <= set(out)
    assert out["card_type"] == "resident" and out["name"] == "李秀英" and out["sex"] == "female"
    assert out["ethnicity"] == "回" and out["birth_date"] == "1948-07-21" and out["valid_until"] is None
    assert out["id_number"] == "110101********0021" and out["id_number_valid"] is True
    assert (out["name_en"], out["nationality"], out["photo_bytes"], out["fingerprint_bytes"]) == (
        None,
        None,
        1024,
        0,
    )


def test_decode_reveal_and_fingerprint_frame(tmp_path: Path, capsys) -> None:
    code, out = _run(
        capsys, "idcard", "decode", "--reveal", str(_frame_file(tmp_path, "with_fingerprint", True))
    )
    assert code == 0 and out["id_number"] == DECK["with_fingerprint"].text.id_number
    assert out["fingerprint_bytes"] == 1024


@pytest.mark.parametrize(
    "key,card_type,nationality",
    [("hk_macau_taiwan", "hk_macau_taiwan", None), ("foreign_permanent_2017", "foreign_permanent_2017", "USA"),
     ("foreign_permanent_2023", "foreign_permanent_2023", "GBR")],
)  # fmt: skip
def test_decode_other_layouts(
    tmp_path: Path, capsys, key: str, card_type: str, nationality: str | None
) -> None:
    code, out = _run(capsys, "idcard", "decode", str(_frame_file(tmp_path, key)))
    assert code == 0 and out["card_type"] == card_type and out["nationality"] == nationality
    assert out["ethnicity"] is None
    assert (out["name_en"] is not None) == card_type.startswith("foreign")


def test_decode_expiry_against_the_given_day(tmp_path: Path, capsys) -> None:
    frame = str(_frame_file(tmp_path, "expired_id"))
    assert _run(capsys, "idcard", "decode", "--today", "2026-08-08", frame)[1]["validity"] == "valid"
    assert _run(capsys, "idcard", "decode", "--today", "2026-08-09", frame)[1]["validity"] == "expired"


@pytest.mark.parametrize(
    "mangle,code",
    [
        (lambda f: f[:-1] + bytes([f[-1] ^ 1]), "idreader.bad_checksum"),
        (lambda f: f[:600], "idreader.truncated_frame"),
        (lambda f: b"garbage" + f, "idreader.bad_frame"),
        (lambda f: p.build_reply(p.Sw3.READ_FAILED), "idreader.card_removed"),
        (lambda f: b"", "idreader.truncated_frame"),
    ],
)
def test_decode_invalid_frame_prints_an_error_and_exits_2(tmp_path: Path, capsys, mangle, code: str) -> None:
    path = _frame_file(tmp_path, "renewal")
    path.write_bytes(mangle(path.read_bytes()))
    exit_code, out = _run(capsys, "idcard", "decode", str(path))
    assert exit_code == 2 and out["error"]["code"] == code and out["error"]["message"]


def test_decode_missing_file(tmp_path: Path, capsys) -> None:
    exit_code, out = _run(capsys, "idcard", "decode", str(tmp_path / "none.bin"))
    assert exit_code == 2 and out["error"]["code"] == "idcard.file_unreadable"


def test_read_from_a_given_port(capsys) -> None:
    with IdReaderSimulator(PEOPLE_FILE, card_delay_s=0.0) as sim:
        sim.place("active_card")
        code, out = _run(capsys, "idcard", "read", "--port", sim.path)
    assert code == 0 and out["name"] == "周国华" and out["id_number"] == "110101********001X"


def test_read_with_no_card_reports_no_card(capsys) -> None:
    with IdReaderSimulator(PEOPLE_FILE, card_delay_s=0.0) as sim:
        code, out = _run(capsys, "idcard", "read", "--port", sim.path, "--wait", "0.1")
    assert code == 1 and out["error"]["code"] == "idreader.no_card"


def test_read_on_the_simulated_reader_of_the_demo_profile(capsys) -> None:
    code, out = _run(capsys, "--profile", "demo", "idcard", "read", "--card", "rare_characters", "--reveal")
    assert code == 0 and out["name"] == "王𠮷" and out["id_number"] == "110101199001010082"
