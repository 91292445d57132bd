"""`kiosk card info` JSON contract."""

from __future__ import annotations

import json

import pytest
from chip_helpers import next_serial

from hardware.smartcard.crypto import Algorithm
from hardware.smartcard.virtual import personalized_card
from kiosk.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.pcsc
@pytest.mark.parametrize("algorithm", [Algorithm.TDES, Algorithm.SM4], ids=lambda a: a.value)
def test_card_info_prints_the_contract_fields_with_masked_numbers(rig, capsys, algorithm: Algorithm) -> None:
    card = rig.insert(personalized_card(next_serial(), algorithm=algorithm, name="李四"))
    code, out = run_cli(
        capsys, "card", "info", "--reader", rig.sim.card_reader, "--psam-reader", rig.sim.psam_reader
    )
    assert code == 0
    assert set(out) == {
        "atr",
        "algorithm",
        "spec_version",
        "card_number",
        "card_identification_code",
        "ssn",
        "name",
        "issue_date",
        "expiry_date",
        "pan",
        "pin_tries_left",
    }
    assert out["algorithm"] == algorithm.value and out["atr"] == card.atr.hex().upper()
    assert out["ssn"] == "**************0018" and out["name"] == "李四"
    assert out["pan"].startswith(card.pan[:6]) and out["pan"].endswith(card.pan[-4:]) and "*" in out["pan"]
    assert out["pin_tries_left"] == 6 and out["issue_date"] == "2024-01-01"


@pytest.mark.pcsc
def test_a_protected_card_without_psam_is_a_json_error(rig, capsys) -> None:
    rig.insert(personalized_card(next_serial(), algorithm=Algorithm.SM4))
    code, out = run_cli(capsys, "card", "info", "--reader", rig.sim.card_reader)
    assert code == 2 and out["error"]["code"] == "smartcard.key_backend_unavailable"


@pytest.mark.pcsc
def test_empty_chip_station_and_unknown_reader_are_json_errors(rig, capsys) -> None:
    code, out = run_cli(capsys, "card", "info", "--reader", "No Such Reader")
    assert code == 2 and out["error"]["code"] == "smartcard.reader_unavailable"
    code, out = run_cli(
        capsys, "card", "info", "--reader", rig.sim.card_reader, "--psam-reader", rig.sim.psam_reader
    )
    assert code == 2 and out["error"]["code"] == "smartcard.no_card"
