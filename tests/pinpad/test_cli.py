"""``kiosk pinpad info`` / ``kiosk pinpad load-key`` against the simulated pad on a pty."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardware.pinpad import pinblock
from hardware.pinpad.simulator import PinPadSimulator
from kiosk.cli import main
from kiosk.devices.pinpad import KeyAlgorithm
from tests.pinpad.conftest import MASTER_SM4, PIN_KEY, SECRETS

COMPONENT_A = bytes.fromhex("0F1E2D3C4B5A69788796A5B4C3D2E1F0")
COMPONENT_B = bytes.fromhex("F0E1D2C3B4A5968778695A4B3C2D1E0F")
SECRETS.update({COMPONENT_A.hex(), COMPONENT_B.hex()})


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["pinpad", *argv])
    out, err = capsys.readouterr()
    for secret in (COMPONENT_A.hex(), COMPONENT_B.hex(), PIN_KEY.hex()):
        assert secret not in (out + err).lower()
    return code, json.loads(out)


def test_load_master_key_from_components_then_info(
    sim: PinPadSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    combined = bytes(a ^ b for a, b in zip(COMPONENT_A, COMPONENT_B))
    SECRETS.add(combined.hex())
    components = tmp_path / "components.txt"
    components.write_text(f"# custodian A\n{COMPONENT_A.hex()}\n\n{COMPONENT_B.hex().upper()}\n")
    expected = pinblock.check_value(combined, KeyAlgorithm.SM4)
    code, result = run(
        capsys, "load-key", "--port", sim.path, "--master", "2", "--algorithm", "sm4",
        "--components", str(components), "--check-value", expected,
    )  # fmt: skip
    assert code == 0
    assert result == {
        "kind": "master", "master_index": 2, "working_index": None, "algorithm": "sm4",
        "check_value": expected, "simulated": False,
    }  # fmt: skip

    encrypted = tmp_path / "wk.txt"
    encrypted.write_text(pinblock.encrypt_ecb(combined, KeyAlgorithm.SM4, PIN_KEY).hex() + "\n")
    code, result = run(
        capsys, "load-key", "--port", sim.path, "--kind", "working", "--master", "2", "--index", "7",
        "--algorithm", "sm4", "--components", str(encrypted),
    )  # fmt: skip
    assert code == 0 and result["check_value"] == pinblock.check_value(PIN_KEY, KeyAlgorithm.SM4)

    code, info = run(capsys, "info", "--json", "--port", sim.path)
    assert code == 0
    assert info["model"] == "KMY3501B" and info["serial"] == "SIM00003501"
    assert info["status"]["state"] == "ready"
    assert [(k["kind"], k["master_index"], k["working_index"], k["check_value"]) for k in info["keys"]] == [
        ("master", 2, None, expected),
        ("working", 2, 7, pinblock.check_value(PIN_KEY, KeyAlgorithm.SM4)),
    ]


def test_wrong_check_value_is_a_pad_error(
    sim: PinPadSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    SECRETS.add(MASTER_SM4.hex())
    components = tmp_path / "c.txt"
    components.write_text(MASTER_SM4.hex())
    code, result = run(
        capsys, "load-key", "--port", sim.path, "--master", "1", "--algorithm", "sm4",
        "--components", str(components), "--check-value", "00000000",
    )  # fmt: skip
    assert code == 1 and result["error"]["code"] == "pinpad.check_value_mismatch"


@pytest.mark.parametrize(
    "text", ["0F1E2D3C", "zz" * 16, "0F1E2D3C4B5A69788796A5B4C3D2E1F", "# only a comment\n"]
)
def test_bad_components_are_refused_without_quoting_them(
    sim: PinPadSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    components = tmp_path / "c.txt"
    components.write_text(text)
    code, result = run(
        capsys, "load-key", "--port", sim.path, "--master", "1", "--algorithm", "3des",
        "--components", str(components),
    )  # fmt: skip
    assert code == 2 and result["error"]["code"] == "pinpad.bad_components"
    assert text.strip("# \n")[:8].lower() not in result["error"]["message"].lower()
    assert 0x32 not in sim.commands_seen  # nothing was sent to the pad


def test_unreadable_components_file(
    sim: PinPadSimulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = run(
        capsys, "load-key", "--port", sim.path, "--master", "1", "--algorithm", "3des",
        "--components", str(tmp_path / "missing"),
    )  # fmt: skip
    assert code == 2 and result["error"]["code"] == "pinpad.components_unreadable"


def test_info_on_a_port_with_no_pad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run(capsys, "info", "--port", str(tmp_path / "ttyNONE"))
    assert code == 1 and result["error"]["code"] == "pinpad.no_reply"


def test_components_from_stdin(
    sim: PinPadSimulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import os

    read_fd, write_fd = os.pipe()
    os.write(write_fd, f"{COMPONENT_A.hex()}\n{COMPONENT_B.hex()}\n".encode())
    os.close(write_fd)
    with open(read_fd, "rb") as pipe:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(pipe))
        code, result = run(capsys, "load-key", "--port", sim.path, "--master", "4", "--algorithm", "3des")
    combined = bytes(a ^ b for a, b in zip(COMPONENT_A, COMPONENT_B))
    assert code == 0 and result["check_value"] == pinblock.check_value(combined, KeyAlgorithm.TDES)
