"""The kiosk's state database (状态库): one SQLite file in the state directory.

WAL journal, ``synchronous=FULL`` (a commit that lets anything be discarded elsewhere must
survive a power cut: research/anchors.md §2.1), foreign keys on, and versioned migrations per
component. A component (``journal``, ``ledger``, ``outbox``, ``audit`` …) owns a tuple of SQL
scripts; script *i* takes the component from version *i* to *i + 1*. Components register their
scripts with :func:`open_state_db`; the versions applied are kept in ``schema_version``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

STATE_DB_NAME = "kiosk.sqlite3"


class StorageError(Exception):
    """The state database cannot be opened or migrated."""


def connect(path: Path, *, timeout_s: float = 10.0) -> sqlite3.Connection:
    """Opens a connection with the durability settings every writer must use.

    ``isolation_level=None``: the caller opens transactions explicitly (``BEGIN IMMEDIATE`` for
    writers) so nothing is committed implicitly half-way through a step.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=timeout_s, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
    return conn


def migrate(conn: sqlite3.Connection, component: str, scripts: Sequence[str]) -> int:
    """Applies the scripts of ``component`` not applied yet, each in its own transaction.

    Returns the component's version afterwards. A database newer than the code (a downgrade)
    is refused rather than guessed at.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    row = conn.execute("SELECT version FROM schema_version WHERE component = ?", (component,)).fetchone()
    current = row[0] if row else 0
    if current > len(scripts):
        raise StorageError(
            f"state database has {component} schema version {current}, this software knows {len(scripts)}"
        )
    for version in range(current, len(scripts)):
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _statements(scripts[version]):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version(component, version) VALUES (?, ?)"
                " ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                (component, version + 1),
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StorageError(f"migration {component} {version} → {version + 1} failed: {exc}") from exc
    return len(scripts)


def _statements(script: str) -> list[str]:
    """Splits a migration script into statements (``sqlite3.complete_statement`` aware)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise StorageError(f"incomplete SQL statement in migration: {buffer.strip()[:60]}")
    return statements


def open_state_db(state_dir: Path, components: Mapping[str, Sequence[str]]) -> sqlite3.Connection:
    """Opens (creating if needed) the state database and migrates every component."""
    conn = connect(state_dir / STATE_DB_NAME)
    try:
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"state database is not readable: {exc}") from exc
    if check != "ok":
        raise StorageError(f"state database failed its integrity check: {check}")
    for component, scripts in components.items():
        migrate(conn, component, scripts)
    return conn


def schema_versions(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT component, version FROM schema_version").fetchall())
