from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kiosk.storage import StorageError, connect, migrate, open_state_db, schema_versions


def test_state_database_is_wal_with_full_sync(tmp_path: Path) -> None:
    conn = connect(tmp_path / "s.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_migrations_apply_once_per_component_and_record_versions(tmp_path: Path) -> None:
    scripts = ("CREATE TABLE a (x INTEGER);", "ALTER TABLE a ADD COLUMN y TEXT;\nCREATE INDEX a_y ON a(y);")
    conn = open_state_db(tmp_path, {"alpha": scripts, "beta": ("CREATE TABLE b (z TEXT);",)})
    assert schema_versions(conn) == {"alpha": 2, "beta": 1}
    conn.close()
    conn = open_state_db(tmp_path, {"alpha": scripts, "beta": ("CREATE TABLE b (z TEXT);",)})
    assert [r[1] for r in conn.execute("PRAGMA table_info(a)")] == ["x", "y"]


def test_a_failed_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    conn = connect(tmp_path / "s.sqlite3")
    migrate(conn, "alpha", ("CREATE TABLE a (x INTEGER);",))
    with pytest.raises(StorageError):
        migrate(conn, "alpha", ("CREATE TABLE a (x INTEGER);", "CREATE TABLE c (q);\nSELECT * FROM nowhere;"))
    assert schema_versions(conn)["alpha"] == 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'c'").fetchone() is None


def test_a_database_newer_than_the_software_is_refused(tmp_path: Path) -> None:
    conn = connect(tmp_path / "s.sqlite3")
    migrate(conn, "alpha", ("CREATE TABLE a (x INTEGER);", "CREATE TABLE b (x INTEGER);"))
    with pytest.raises(StorageError, match="knows 1"):
        migrate(conn, "alpha", ("CREATE TABLE a (x INTEGER);",))


def test_a_corrupt_state_file_is_refused_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.sqlite3"
    conn = open_state_db(tmp_path, {"alpha": ("CREATE TABLE a (x INTEGER);",)})
    conn.execute("INSERT INTO a VALUES (1)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    data[0:16] = b"not a database!!"
    path.write_bytes(bytes(data))
    with pytest.raises((StorageError, sqlite3.DatabaseError)):
        open_state_db(tmp_path, {"alpha": ("CREATE TABLE a (x INTEGER);",)})
    assert path.read_bytes()[:16] == b"not a database!!"
