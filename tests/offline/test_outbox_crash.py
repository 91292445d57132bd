"""kill -9 of the enqueuer and the sync worker at random moments (a few runs of
``python -m bench outbox-crash``; the benchmark does 200): nothing lost, nothing duplicated,
nothing left in flight, every personal payload purged with its destruction record."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import outbox_crash


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    args = argparse.Namespace(runs=10, seed=20261123, min_items=6, max_items=14, dir=tmp_path)
    figures = outbox_crash.run(args)
    assert figures["runs"] == 10 and figures["enqueued"] > 0
    assert sum(figures["faults_hit"].values()) > 0, (
        "the receiver must have dropped or timed out some requests"
    )
    assert figures["kills"] >= 10, "every run kills at least the worker once"
    problems = {
        k: figures[k]
        for k in (
            "lost",
            "duplicated",
            "left_in_flight",
            "quarantined",
            "out_of_order",
            "missing_destruction_records",
            "unpurged_after_ack",
            "not_drained",
            "corrupt_bodies",
        )
        if figures[k]
    }
    assert problems == {}
    assert figures["delivered"] == figures["enqueued"]
