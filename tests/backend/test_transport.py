"""TLS against the province's CA, and the `kiosk backend-sim` command."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk.backend.api import BackendTransient
from kiosk.backend.client import BackendClient
from kiosk.backend.signing import Sm2PrivateKey
from kiosk.cli import main

from .conftest import ACTIVE, KIOSK_ID, REPO_ROOT, make_simulator


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "simulated province CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_tls_with_the_configured_ca_and_refusal_without_it(
    tmp_path: Path, people_file, clock, hsm, rules, kiosk_key: Sm2PrivateKey
) -> None:
    cert, key = _self_signed(tmp_path)
    sim = make_simulator(
        tmp_path / "tls", people_file, clock, hsm, rules, kiosk_key, tls_certfile=cert, tls_keyfile=key
    )
    try:
        assert sim.base_url.startswith("https://")
        trusted = BackendClient(sim.base_url, KIOSK_ID, kiosk_key, ca_file=cert, retries=0)
        assert trusted.query_person(ACTIVE).card is not None
        untrusted = BackendClient(sim.base_url, KIOSK_ID, kiosk_key, retries=0)
        with pytest.raises(BackendTransient) as info:
            untrusted.query_person(ACTIVE)
        assert info.value.code == "backend.unreachable"
        trusted.close()
        untrusted.close()
    finally:
        sim.close()


def test_backend_sim_command_serves_until_sigterm(tmp_path: Path) -> None:
    env = dict(os.environ, KIOSK_CONFIG=str(tmp_path / "none.toml"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "backend-sim", "--port", "0", "--state", str(tmp_path / "state")],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        info = json.loads(line)
        assert info["url"].startswith("http://127.0.0.1:") and Path(info["kiosk_key_file"]).is_file()
        assert requests.get(info["url"] + "/health", timeout=5).json()["status"] == "up"
        key = Sm2PrivateKey.from_hex(Path(info["kiosk_key_file"]).read_text().strip())
        client = BackendClient(info["url"], info["kiosk_id"], key, retries=0)
        assert client.query_person(ACTIVE).card is not None  # seeded from config/demo-people.json
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_backend_sim_command_bad_input_is_a_json_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["backend-sim", "--port", "70000", "--state", str(tmp_path)]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "backend.bad_port"
    assert main(["backend-sim", "--people", str(tmp_path / "nope.json"), "--state", str(tmp_path)]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "backend.people_file_missing"
