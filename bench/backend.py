"""Back-end round trip on loopback (client + simulator) and the SM2 signing cost per request."""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

DESCRIPTION = (
    "back end: roundtrip_ms per call (client + simulator on loopback), sign_ms per request (target ≤ 5)"
)

REPO = Path(__file__).resolve().parents[1]
ACTIVE = "11010119751010001X"
FIRST_ISSUE = "110101195503120048"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, default=200, help="query round trips to time")
    parser.add_argument("--signs", type=int, default=300, help="signatures to time")


def _ms(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "median": round(statistics.median(samples), 3),
        "p95": round(samples[int(len(samples) * 0.95) - 1], 3),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from gmssl import sm2 as gmssl_sm2

    from kiosk.backend.api import Business, idempotency_key
    from kiosk.backend.client import BackendClient
    from kiosk.backend.signing import Sm2PrivateKey, canonical_request, sign, verify
    from kiosk.backend.simulator import BackendSimulator

    key = Sm2PrivateKey.generate()
    message = canonical_request(
        "POST",
        "/api/v1/applications",
        "2026-11-23T02:00:00.000Z",
        secrets.token_hex(16),
        "V20261123-bench.submit",
        b'{"id_number":"110101195503120048"}' * 4,
    )
    sign(key, message)  # builds the fixed-base table once (~30 ms at start-up)
    sign_samples = []
    for _ in range(args.signs):
        t = time.perf_counter()
        sig = sign(key, message)
        sign_samples.append((time.perf_counter() - t) * 1000)
    verify_samples = []
    for _ in range(max(20, args.signs // 5)):
        t = time.perf_counter()
        verify(key.public_key, message, sig)
        verify_samples.append((time.perf_counter() - t) * 1000)
    theirs = gmssl_sm2.CryptSM2(private_key=key.hex(), public_key=key.public_key.hex())
    gmssl_samples = []
    for _ in range(30):
        t = time.perf_counter()
        theirs.sign_with_sm3(message, secrets.token_hex(32))
        gmssl_samples.append((time.perf_counter() - t) * 1000)

    with tempfile.TemporaryDirectory() as tmp:
        sim = BackendSimulator(
            Path(tmp), REPO / "config" / "demo-people.json", kiosk_keys={"BENCH": key.public_key}
        )
        sim.start()
        client = BackendClient(sim.base_url, "BENCH", key, retries=0)
        try:
            for _ in range(5):
                client.query_person(ACTIVE)
            query_samples = []
            for _ in range(args.calls):
                t = time.perf_counter()
                client.query_person(ACTIVE)
                query_samples.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            client.submit_application(
                idempotency_key("V20261123-bench", "submit"),
                id_number=FIRST_ISSUE,
                business=Business.FIRST_ISSUE,
                reason=None,
                mobile="13800138000",
                bank_code="B01",
                photo_jpeg=b"\xff\xd8" + bytes(20_000),
            )
            submit_ms = (time.perf_counter() - t) * 1000
        finally:
            client.close()
            sim.close()

    sign_ms = _ms(sign_samples)
    return {
        "roundtrip_ms": _ms(query_samples)["median"],
        "roundtrip_ms_p95": _ms(query_samples)["p95"],
        "submit_with_20kB_photo_ms": round(submit_ms, 2),
        "sign_ms": sign_ms["median"],
        "sign_ms_p95": sign_ms["p95"],
        "sign_target_ms": 5.0,
        "sign_ratio_to_target": round(sign_ms["median"] / 5.0, 3),
        "verify_ms": _ms(verify_samples)["median"],
        "gmssl_sign_ms_for_comparison": _ms(gmssl_samples)["median"],
        "calls": args.calls,
    }
