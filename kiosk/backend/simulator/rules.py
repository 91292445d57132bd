"""The simulated card-management system's state (SQLite) and business rules (业务规则).

:class:`CardManagementState` keeps people, cards, applications, loss reports, bank accounts and
the idempotency records in one SQLite file (WAL, synchronous=FULL), so the simulator survives a
restart. Each public ``op_*`` method takes a request body that already passed the contract's
schema and returns the reply body, or raises :class:`Refusal` with a contract error code. The HTTP
layer (:mod:`kiosk.backend.simulator.server`) runs each mutating call and its idempotency record
in one transaction.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from kiosk.backend.api import CardState
from kiosk.backend.signing import SignatureError, Sm2PrivateKey, Sm2PublicKey, sign

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SHANGHAI = timezone(timedelta(hours=8))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS persons (
    id_number TEXT PRIMARY KEY, name TEXT NOT NULL, sex TEXT NOT NULL, ethnicity_code TEXT NOT NULL,
    birth_date TEXT NOT NULL, temporary_card TEXT NOT NULL DEFAULT 'none',
    temporary_card_number TEXT, photo_file TEXT, photo BLOB, mobile TEXT);
CREATE TABLE IF NOT EXISTS cards (
    card_number TEXT PRIMARY KEY, id_number TEXT NOT NULL, state TEXT NOT NULL,
    state_before_loss TEXT, issued_on TEXT NOT NULL, expires_on TEXT NOT NULL, bank_code TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 3, atr TEXT, card_identification_code TEXT,
    bank_account TEXT, account_state TEXT NOT NULL DEFAULT 'not_opened', account_state_before_freeze TEXT,
    account_ready_at TEXT, optional_services TEXT NOT NULL DEFAULT '[]', pin_set INTEGER NOT NULL DEFAULT 0,
    seq INTEGER);
CREATE TABLE IF NOT EXISTS applications (
    application_id TEXT PRIMARY KEY, id_number TEXT NOT NULL, business TEXT NOT NULL, reason TEXT,
    state TEXT NOT NULL, fee_fen INTEGER NOT NULL, submitted_at TEXT NOT NULL, old_card_number TEXT,
    card_number TEXT, central INTEGER NOT NULL DEFAULT 0, delivery TEXT, branch TEXT, collected INTEGER NOT NULL DEFAULT 0,
    bank_code TEXT NOT NULL, failures INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS loss_reports (
    report_id TEXT PRIMARY KEY, card_number TEXT NOT NULL, kind TEXT NOT NULL, reported_at TEXT NOT NULL,
    cancelled_at TEXT);
CREATE TABLE IF NOT EXISTS requests (
    idempotency_key TEXT PRIMARY KEY, kiosk_id TEXT NOT NULL, operation TEXT NOT NULL, body_hash TEXT NOT NULL,
    http_status INTEGER NOT NULL, response TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kiosk_records (
    reference TEXT PRIMARY KEY, kind TEXT NOT NULL, record TEXT NOT NULL, received_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kiosks (kiosk_id TEXT PRIMARY KEY, public_key TEXT NOT NULL);
"""

# GB 3304 codes for the nationalities that appear in the demo people (others: 97 其他).
ETHNICITY_CODES = {
    "汉": "01",
    "蒙古": "02",
    "回": "03",
    "藏": "04",
    "维吾尔": "05",
    "苗": "06",
    "彝": "07",
    "壮": "08",
    "布依": "09",
    "朝鲜": "10",
    "满": "11",
    "侗": "12",
    "瑶": "13",
    "白": "14",
    "土家": "15",
    "哈尼": "16",
    "哈萨克": "17",
    "傣": "18",
    "黎": "19",
}
SEX_CODES = {"male": "1", "female": "2", "男": "1", "女": "2"}

_CARD_NUMBER_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def card_number_check(first8: str) -> str:
    """Check character of a 社保卡号 (V2.0 附录A): C9 = 11 − (Σ Ci·Wi mod 11); 10 → 'X', 11 → '0'.
    Letters count as A=10, B=11, … (the spec's example D2143569 → X holds with D = 13)."""
    total = sum(int(ch, 36) * w for ch, w in zip(first8, _CARD_NUMBER_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


class Refusal(Exception):
    """A business refusal: contract error ``code`` with HTTP ``status``."""

    def __init__(self, code: str, message: str = "", status: int = 409) -> None:
        super().__init__(code)
        self.code = code
        self.message = message or code
        self.status = status


class BackendHsm(Protocol):
    """The back end's HSM (加密机) as the simulator calls it for key work. Keys never leave it.

    ``operation`` is ``external_authenticate`` | ``mac`` | ``encrypt``; ``key_name`` one of the
    SSSE keys (UKSSSE, RKSSSE, IRK, PUK, STKSSSE); ``diversifier`` the card's diversification
    data (e.g. the card identification code or card number); ``data`` the input block.
    """

    def compute(self, operation: str, key_name: str, diversifier: bytes, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class SimulatorRules:
    """Regional rules the simulator enforces (mapped from ``[region]`` by the composition root)."""

    region_code: str = "110100"
    renewal_window_days: int = 60
    card_validity_years: int = 10
    quality_defect_free_days: int = 365
    fee_first_issue: int = 0
    fee_replacement: int = 0
    fee_renewal: int = 0
    fee_temporary_card_lost: int = 2000
    central_production_days: int = 30
    central_production_working_days: bool = True
    loss_modes: tuple[str, ...] = ("temporary", "formal")
    third_generation: bool = True
    card_prefix: str = "A"
    # 0: the bank activates the account at once; > 0: "pending" for that many seconds.
    bank_activation_delay_s: float = 0.0
    default_bank_code: str = "示例银行"
    pickup_branch: str = "示例银行示例支行"


def _iso(d: date) -> str:
    return d.isoformat()


def _ts(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def add_working_days(start: date, days: int) -> date:
    current = start
    added = 0
    while added < days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            added += 1
    return current


def _mask_mobile(mobile: str | None) -> str | None:
    return f"{mobile[:3]}****{mobile[-4:]}" if mobile else None


def _luhn_complete(digits: str) -> str:
    """``digits`` with the Luhn check digit appended (bank card numbers)."""
    total = 0
    for n, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if n % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return digits + str((10 - total % 10) % 10)


def _pin_verification(card_number: str, pin: bytes | bytearray) -> str:
    """What the simulated bank keeps of a financial PIN (a PIN verification value; never the PIN)."""
    return hashlib.sha256(card_number.encode() + b":" + bytes(pin)).hexdigest()


def body_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class PinBlockDecoder(Protocol):
    """Decrypts a financial PIN block bound to an account (the bank HSM's job): returns the PIN
    digits (ASCII) or raises ValueError for a block that is not well formed."""

    def decode(self, pin_block: bytes, account_number: str, key_index: int) -> bytes: ...


class CardManagementState:
    """SQLite-backed state of the simulated card-management system and bank host."""

    def __init__(
        self,
        db_path: Path,
        *,
        rules: SimulatorRules,
        hsm: BackendHsm | None,
        clock: Callable[[], datetime],
        ca_key: Sm2PrivateKey,
        photos_dir: Path | None = None,
    ) -> None:
        self.rules = rules
        self.hsm = hsm
        # The bank's PIN decryption (an HSM in reality); None accepts any well-formed request.
        self.pin_decoder: PinBlockDecoder | None = None
        self.clock = clock
        self.ca_key = ca_key
        self.photos_dir = photos_dir
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(persons)")}
        if "mobile" not in columns:  # a simulator state made before the mobile number was kept
            self._conn.execute("ALTER TABLE persons ADD COLUMN mobile TEXT")
        card_columns = {row[1] for row in self._conn.execute("PRAGMA table_info(cards)")}
        if "pin_verification" not in card_columns:  # made before the bank checked a current PIN
            self._conn.execute("ALTER TABLE cards ADD COLUMN pin_verification TEXT")
        self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('card_serial', '0')")
        self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('id_serial', '0')")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------ plumbing

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One serialised write transaction (the simulator is small; a lock keeps it simple)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cur = self._conn.execute(sql, params)
            cur.row_factory = sqlite3.Row
            return cur.fetchall()

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def today(self) -> date:
        return self.clock().astimezone(SHANGHAI).date()

    def _next(self, name: str) -> int:
        value = int(self._one("SELECT value FROM meta WHERE key = ?", (name,))["value"]) + 1  # type: ignore[index]
        self._conn.execute("UPDATE meta SET value = ? WHERE key = ?", (str(value), name))
        return value

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{self.today():%Y%m%d}{self._next('id_serial'):06d}"

    def _new_card_number(self) -> str:
        serial = self._next("card_serial")
        first8 = f"{self.rules.card_prefix}{serial:07d}"[-8:]
        return first8 + card_number_check(first8)

    # ------------------------------------------------------------ kiosks, nonces, idempotency

    def register_kiosk(self, kiosk_id: str, public_key: Sm2PublicKey) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO kiosks VALUES (?, ?)", (kiosk_id, public_key.hex()))

    def kiosk_key(self, kiosk_id: str) -> Sm2PublicKey | None:
        row = self._one("SELECT public_key FROM kiosks WHERE kiosk_id = ?", (kiosk_id,))
        return Sm2PublicKey.from_hex(row["public_key"]) if row else None

    def stored_request(self, key: str) -> sqlite3.Row | None:
        return self._one("SELECT * FROM requests WHERE idempotency_key = ?", (key,))

    def store_request(
        self, key: str, kiosk_id: str, operation: str, digest: str, status: int, reply: Any
    ) -> None:
        self._conn.execute(
            "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                kiosk_id,
                operation,
                digest,
                status,
                json.dumps(reply, ensure_ascii=False),
                _ts(self.clock()),
            ),
        )

    # ------------------------------------------------------------ seeding

    def seed(self, people_file: Path) -> int:
        """Adds the people of ``demo-people.json`` not yet known (a restart keeps what changed)."""
        data = json.loads(Path(people_file).read_text(encoding="utf-8"))
        added = 0
        with self.transaction() as c:
            for person in data["people"]:
                idn = person["id_number"]
                if c.execute("SELECT 1 FROM persons WHERE id_number = ?", (idn,)).fetchone():
                    continue
                added += 1
                backend = person.get("backend") or {}
                temp = backend.get("temporary_card") or "none"
                c.execute(
                    "INSERT INTO persons (id_number, name, sex, ethnicity_code, birth_date, temporary_card,"
                    " temporary_card_number, photo_file, mobile) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        idn,
                        person["name"],
                        SEX_CODES.get(person.get("sex", ""), "9"),
                        ETHNICITY_CODES.get(person.get("ethnicity", ""), "97"),
                        person["birth_date"],
                        temp,
                        f"T{idn[-6:]}" if temp != "none" else None,
                        person.get("photo"),
                        backend.get("mobile"),
                    ),
                )
                state = backend.get("card_state")
                if state:
                    self._seed_card(c, idn, CardState.from_chinese(state), backend)
        return added

    def _seed_card(
        self, c: sqlite3.Connection, idn: str, state: CardState, backend: Mapping[str, Any]
    ) -> None:
        today = self.today()
        expires = today + timedelta(days=int(backend.get("card_expires_in_days", 3650)))
        issued = expires.replace(year=expires.year - self.rules.card_validity_years)
        number = self._new_card_number()
        active = state in (CardState.NORMAL, CardState.TEMPORARY_LOSS, CardState.LOST)
        # A UnionPay debit account (tag 5A on the card): digits only (an ID number may end in X),
        # with its Luhn check digit, as the kiosk checks it when it reads the chip.
        account = _luhn_complete(("6217" + idn[-7:-1] + f"{self._next('id_serial'):09d}")[:18])
        account_state = "active" if active else "opened"
        if state in (CardState.TEMPORARY_LOSS, CardState.LOST):
            account_state = "frozen"
        c.execute(
            "INSERT INTO cards (card_number, id_number, state, state_before_loss, issued_on, expires_on, bank_code,"
            " generation, bank_account, account_state, account_state_before_freeze, pin_set)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                number,
                idn,
                state.value,
                "normal" if account_state == "frozen" else None,
                _iso(issued),
                _iso(expires),
                self.rules.default_bank_code,
                int(backend.get("generation", 3)),
                account,
                account_state,
                "active" if account_state == "frozen" else None,
                1 if active else 0,
            ),
        )
        if backend.get("financial_pin"):
            # The bank knows the holder's financial PIN only as a verification value.
            c.execute("UPDATE cards SET pin_verification = ? WHERE card_number = ?",
                      (_pin_verification(number, backend["financial_pin"].encode()), number))
        if state in (CardState.TEMPORARY_LOSS, CardState.LOST):
            kind = "temporary" if state is CardState.TEMPORARY_LOSS else "formal"
            c.execute(
                "INSERT INTO loss_reports VALUES (?, ?, ?, ?, NULL)",
                (self._new_id("L"), number, kind, _ts(self.clock() - timedelta(days=3))),
            )
        if state is CardState.NOT_ACTIVATED or backend.get("central_application"):
            # A centrally produced card (集中制卡): its application and progress.
            central = backend.get("central_application") or {}
            days_ago = int(central.get("submitted_days_ago", self.rules.central_production_days + 5))
            c.execute(
                "INSERT INTO applications (application_id, id_number, business, reason, state, fee_fen, submitted_at,"
                " card_number, central, delivery, branch, bank_code) VALUES (?, ?, ?, NULL, 'central', 0, ?, ?, 1, ?, ?, ?)",
                (
                    self._new_id("C"),
                    idn,
                    central.get("business", "first_issue"),
                    _ts(self.clock() - timedelta(days=days_ago)),
                    number,
                    central.get("delivery", "pickup"),
                    self.rules.pickup_branch,
                    self.rules.default_bank_code,
                ),
            )

        if backend.get("replacement_application"):
            # A replacement applied for after the formal loss report (at a counter): the new card is
            # in central production, so the loss report can no longer be cancelled (解挂).
            replacement = backend["replacement_application"]
            c.execute(
                "INSERT INTO applications (application_id, id_number, business, reason, state, fee_fen, submitted_at,"
                " old_card_number, central, delivery, branch, bank_code) VALUES (?, ?, 'replacement', 'lost', 'central',"
                " 0, ?, ?, 1, ?, ?, ?)",
                (
                    self._new_id("C"),
                    idn,
                    _ts(self.clock() - timedelta(days=int(replacement.get("submitted_days_ago", 2)))),
                    number,
                    replacement.get("delivery", "pickup"),
                    self.rules.pickup_branch,
                    self.rules.default_bank_code,
                ),
            )

    # ------------------------------------------------------------ lookups

    def _person(self, idn: str) -> sqlite3.Row:
        row = self._one("SELECT * FROM persons WHERE id_number = ?", (idn,))
        if row is None:
            raise Refusal("person_not_found", "no such person in the base information library", 404)
        return row

    def _current_card(self, idn: str) -> sqlite3.Row | None:
        """The holder's live card: the newest one not cancelled (注销)."""
        return self._one(
            "SELECT * FROM cards WHERE id_number = ? AND state != 'cancelled' ORDER BY rowid DESC LIMIT 1",
            (idn,),
        )

    def _open_application(self, idn: str) -> sqlite3.Row | None:
        """An application whose card is still being made (one card in production per person)."""
        return self._one(
            "SELECT * FROM applications WHERE id_number = ? AND (state IN ('submitted', 'marked')"
            " OR (state = 'central' AND collected = 0)) ORDER BY rowid DESC LIMIT 1",
            (idn,),
        )

    def _card(self, number: str) -> sqlite3.Row:
        row = self._one("SELECT * FROM cards WHERE card_number = ?", (number,))
        if row is None:
            raise Refusal("no_card", "unknown card number", 404)
        return row

    def _application(self, application_id: str) -> sqlite3.Row:
        row = self._one("SELECT * FROM applications WHERE application_id = ?", (application_id,))
        if row is None:
            raise Refusal("application_not_found", "unknown application", 404)
        return row

    @staticmethod
    def _card_json(card: sqlite3.Row) -> dict[str, Any]:
        return {
            "card_number": card["card_number"],
            "state": card["state"],
            "issued_on": card["issued_on"],
            "expires_on": card["expires_on"],
            "bank_code": card["bank_code"],
            "generation": card["generation"],
        }

    def _photo(self, person: sqlite3.Row) -> bytes | None:
        if person["photo"] is not None:
            return bytes(person["photo"])
        if self.photos_dir is not None and person["photo_file"]:
            path = self.photos_dir / person["photo_file"]
            if path.is_file():
                return path.read_bytes()
        return None

    # ------------------------------------------------------------ rules

    def _fee(self, business: str, reason: str | None, card: sqlite3.Row | None) -> tuple[int, str | None]:
        r = self.rules
        if business == "first_issue":
            return r.fee_first_issue, "first_card_free" if r.fee_first_issue == 0 else None
        if reason == "quality_defect" and card is not None:
            issued = date.fromisoformat(card["issued_on"])
            if (self.today() - issued).days <= r.quality_defect_free_days:
                return 0, "quality_defect_within_free_period"
        return (r.fee_replacement if business == "replacement" else r.fee_renewal), None

    def _eligibility(self, idn: str, business: str, reason: str | None) -> dict[str, Any]:
        """Checks every rule of a business; raises :class:`Refusal` with the first failed one."""
        person = self._person(idn)
        card = self._current_card(idn)
        if card is not None and card["state"] == "sealed":
            raise Refusal("card_sealed", "the card is sealed (封存): counter only")
        if self._open_application(idn) is not None:
            raise Refusal("application_in_progress", "a card is already in production for this person")
        if person["temporary_card"] == "held":
            raise Refusal("temporary_card_not_recalled", "the temporary card must be recalled first")
        if person["temporary_card"] == "lost":
            raise Refusal("temporary_card_lost_fee_due", "temporary card lost: fee at the counter")
        opens_on = None
        if business == "first_issue":
            if card is not None:
                raise Refusal("card_already_held", "a live card exists: replacement or renewal")
        elif card is None:
            raise Refusal("no_card", "no card to replace or renew")
        elif business == "replacement":
            if card["state"] != "lost":
                raise Refusal(
                    "replacement_needs_loss_report", "replacement needs a formal loss report (挂失)"
                )
        elif business == "renewal":
            expires = date.fromisoformat(card["expires_on"])
            opens_on = expires - timedelta(days=self.rules.renewal_window_days)
            if card["state"] not in ("normal", "lost") or (
                card["state"] == "lost" and reason != "bank_change"
            ):
                raise Refusal("card_state_invalid", f"renewal not possible in state {card['state']}")
            listed = reason in (
                "damaged",
                "quality_defect",
                "data_changed",
                "third_generation_upgrade",
                "bank_change",
            )
            if not listed and self.today() < opens_on:
                raise Refusal("renewal_not_due", f"renewal window opens on {opens_on.isoformat()}")
        fee, _ = self._fee(business, reason, card)
        return {
            "fee_fen": fee,
            "old_card_number": card["card_number"]
            if card is not None and business != "first_issue"
            else None,
            "renewal_window_opens_on": _iso(opens_on) if opens_on else None,
        }

    # ------------------------------------------------------------ operations (queries)

    def op_queryPerson(self, body: Mapping[str, Any]) -> dict[str, Any]:
        person = self._person(body["id_number"])
        card = self._current_card(person["id_number"])
        open_app = self._open_application(person["id_number"])
        return {
            "id_number": person["id_number"],
            "name": person["name"],
            "sex": person["sex"],
            "ethnicity_code": person["ethnicity_code"],
            "birth_date": person["birth_date"],
            "card": self._card_json(card) if card is not None else None,
            "temporary_card": person["temporary_card"],
            "photo_on_record": self._photo(person) is not None,
            "open_application": open_app["application_id"] if open_app is not None else None,
            "mobile_masked": _mask_mobile(person["mobile"]),
        }

    def op_queryPersonPhoto(self, body: Mapping[str, Any]) -> dict[str, Any]:
        photo = self._photo(self._person(body["id_number"]))
        if photo is None:
            raise Refusal("photo_not_on_record", "no photo on record", 404)
        return {"photo_jpeg_base64": base64.b64encode(photo).decode()}

    def op_checkEligibility(self, body: Mapping[str, Any]) -> dict[str, Any]:
        business = body["business"]
        try:
            found = self._eligibility(body["id_number"], business, body.get("reason"))
        except Refusal as refusal:
            if refusal.status == 404:
                raise
            card = self._current_card(body["id_number"])
            fee, _ = self._fee(business, body.get("reason"), card)
            return {
                "business": business,
                "eligible": False,
                "refusal": refusal.code,
                "fee_fen": fee,
                "old_card_number": None,
                "renewal_window_opens_on": None,
            }
        return {"business": business, "eligible": True, "refusal": None, **found}

    def op_queryFee(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self._person(body["id_number"])
        fee, waived = self._fee(body["business"], body.get("reason"), self._current_card(body["id_number"]))
        return {"business": body["business"], "fee_fen": fee, "waived_reason": waived}

    def op_queryTemporaryCard(self, body: Mapping[str, Any]) -> dict[str, Any]:
        person = self._person(body["id_number"])
        status = person["temporary_card"]
        return {
            "status": status,
            "card_number": person["temporary_card_number"],
            "fee_fen": self.rules.fee_temporary_card_lost if status == "lost" else 0,
        }

    def op_queryBankAccount(self, body: Mapping[str, Any]) -> dict[str, Any]:
        card = self._card(body["card_number"])
        ready_at = card["account_ready_at"]
        if (
            card["account_state"] == "pending"
            and ready_at
            and self.clock() >= datetime.fromisoformat(ready_at)
        ):
            # The bank's answer arrived (模拟银行异步激活).
            with self.transaction() as c:
                c.execute(
                    "UPDATE cards SET account_state = 'active' WHERE card_number = ?", (card["card_number"],)
                )
            card = self._card(body["card_number"])
        return self._account_json(card)

    def op_queryProgress(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self._person(body["id_number"])
        apps = self.query(
            "SELECT * FROM applications WHERE id_number = ? ORDER BY rowid", (body["id_number"],)
        )
        if not apps:
            raise Refusal("no_application", "no application for this person", 404)
        return {"items": [self._progress_item(a) for a in apps]}

    def _progress_item(self, app: sqlite3.Row) -> dict[str, Any]:
        submitted = datetime.fromisoformat(app["submitted_at"]).astimezone(SHANGHAI).date()
        expected: date | None = None
        branch = None
        if app["central"]:
            r = self.rules
            expected = (
                add_working_days(submitted, r.central_production_days)
                if r.central_production_working_days
                else submitted + timedelta(days=r.central_production_days)
            )
            today = self.today()
            if app["collected"]:
                stage = "collected"
            elif today >= expected:
                stage = "mailed" if app["delivery"] == "mail" else "ready_for_pickup"
                branch = app["branch"] if stage == "ready_for_pickup" else None
            elif (today - submitted).days < 1:
                stage = "submitted"
            else:
                stage = "in_production"
        else:
            stage = {"submitted": "submitted", "marked": "in_production", "issued": "issued"}.get(
                app["state"], "failed"
            )
            expected = submitted
        return {
            "application_id": app["application_id"],
            "business": app["business"],
            "stage": stage,
            "submitted_on": _iso(submitted),
            "expected_ready_on": _iso(expected) if expected else None,
            "branch": branch,
            "card_number": app["card_number"],
        }

    def op_hsmKeyWork(self, body: Mapping[str, Any]) -> dict[str, Any]:
        app = self._application(body["application_id"])
        if app["state"] != "marked":
            raise Refusal("application_state_invalid", "key work only for a card being personalized")
        if self.hsm is None:
            raise Refusal("service_unavailable", "no HSM attached", 503)
        output = self.hsm.compute(
            body["operation"],
            body["key_name"],
            bytes.fromhex(body["diversifier"]),
            bytes.fromhex(body["data"]),
        )
        return {"operation": body["operation"], "output": output.hex().upper()}

    # ------------------------------------------------------------ operations (mutating; inside a transaction)

    def op_recallTemporaryCard(self, body: Mapping[str, Any]) -> dict[str, Any]:
        person = self._person(body["id_number"])
        if person["temporary_card"] != "held":
            raise Refusal("card_state_invalid", "no temporary card held")
        if body["temporary_card_number"] != person["temporary_card_number"]:
            raise Refusal("data_mismatch", "not this person's temporary card")
        self._conn.execute(
            "UPDATE persons SET temporary_card = 'recalled' WHERE id_number = ?", (person["id_number"],)
        )
        return {"status": "recalled", "card_number": person["temporary_card_number"], "fee_fen": 0}

    def op_submitApplication(self, body: Mapping[str, Any]) -> dict[str, Any]:
        idn = body["id_number"]
        found = self._eligibility(idn, body["business"], body.get("reason"))
        if body["fee_paid_fen"] < found["fee_fen"]:
            raise Refusal("fee_not_paid", f"fee {found['fee_fen']} fen not paid")
        person = self._person(idn)
        if "photo_jpeg_base64" in body:
            try:
                photo = base64.b64decode(body["photo_jpeg_base64"], validate=True)
            except ValueError as exc:
                raise Refusal("request_invalid", "photo is not base64", 400) from exc
            self._conn.execute("UPDATE persons SET photo = ? WHERE id_number = ?", (photo, idn))
        elif self._photo(person) is None:
            raise Refusal("photo_not_on_record", "no photo sent and none on record", 422)
        if body.get("mobile"):
            self._conn.execute("UPDATE persons SET mobile = ? WHERE id_number = ?", (body["mobile"], idn))
        elif not person["mobile"]:
            raise Refusal("request_invalid", "no mobile number sent and none on record", 422)
        now = self.clock()
        app_id = self._new_id("S")
        self._conn.execute(
            "INSERT INTO applications (application_id, id_number, business, reason, state, fee_fen, submitted_at,"
            " old_card_number, bank_code) VALUES (?, ?, ?, ?, 'submitted', ?, ?, ?, ?)",
            (
                app_id,
                idn,
                body["business"],
                body.get("reason"),
                found["fee_fen"],
                _ts(now),
                found["old_card_number"],
                body["bank_code"],
            ),
        )
        return {
            "application_id": app_id,
            "business": body["business"],
            "state": "submitted",
            "fee_fen": found["fee_fen"],
            "submitted_at": _ts(now),
            "old_card_number": found["old_card_number"],
        }

    def op_markInstantIssue(self, body: Mapping[str, Any]) -> dict[str, Any]:
        app = self._application(body["application_id"])
        if app["state"] != "submitted" or app["central"]:
            raise Refusal("application_state_invalid", f"cannot mark an application in state {app['state']}")
        person = self._person(app["id_number"])
        number = self._new_card_number()
        issue = self.today()
        valid = issue.replace(year=issue.year + self.rules.card_validity_years)
        self._conn.execute(
            "INSERT INTO cards (card_number, id_number, state, issued_on, expires_on, bank_code, generation)"
            " VALUES (?, ?, 'in_production', ?, ?, ?, ?)",
            (
                number,
                app["id_number"],
                _iso(issue),
                _iso(valid),
                app["bank_code"],
                3 if self.rules.third_generation else 2,
            ),
        )
        self._conn.execute(
            "UPDATE applications SET state = 'marked', card_number = ? WHERE application_id = ?",
            (number, app["application_id"]),
        )
        photo = self._photo(person)
        return {
            "application_id": app["application_id"],
            "card_number": number,
            "id_number": person["id_number"],
            "name": person["name"],
            "sex": person["sex"],
            "ethnicity_code": person["ethnicity_code"],
            "birth_date": person["birth_date"],
            "issue_date": _iso(issue),
            "valid_until": _iso(valid),
            "region_code": self.rules.region_code,
            "card_category": "3",
            "spec_version": "3.00" if self.rules.third_generation else "2.00",
            "bank_code": app["bank_code"],
            "photo_jpeg_base64": base64.b64encode(photo).decode() if photo else None,
        }

    def op_reportResult(self, body: Mapping[str, Any]) -> dict[str, Any]:
        app = self._application(body["application_id"])
        if app["state"] != "marked" or app["card_number"] != body["card_number"]:
            raise Refusal("application_state_invalid", "no personalization of this card is running")
        number = body["card_number"]
        old_state = None
        if body["success"]:
            missing = [k for k in ("atr", "card_identification_code", "bank_account") if k not in body]
            if missing:
                raise Refusal("request_invalid", f"success report needs {', '.join(missing)}", 400)
            self._conn.execute(
                "UPDATE cards SET state = 'not_activated', atr = ?, card_identification_code = ?, bank_account = ?"
                " WHERE card_number = ?",
                (body["atr"], body["card_identification_code"], body["bank_account"], number),
            )
            self._conn.execute(
                "UPDATE applications SET state = 'issued' WHERE application_id = ?", (app["application_id"],)
            )
            if app["old_card_number"]:
                # The old card is cancelled (注销 / 挂失后注销) once the new one exists.
                self._conn.execute(
                    "UPDATE cards SET state = 'cancelled' WHERE card_number = ?", (app["old_card_number"],)
                )
                old_state = "cancelled"
            return {
                "application_id": app["application_id"],
                "card_number": number,
                "success": True,
                "card_state": "not_activated",
                "old_card_state": old_state,
            }
        # Failure (废卡): the card number is voided; the application may be marked again with a new blank.
        self._conn.execute("UPDATE cards SET state = 'cancelled' WHERE card_number = ?", (number,))
        self._conn.execute(
            "UPDATE applications SET state = 'submitted', card_number = NULL, failures = failures + 1"
            " WHERE application_id = ?",
            (app["application_id"],),
        )
        if app["old_card_number"]:
            old_state = self._card(app["old_card_number"])["state"]
        return {
            "application_id": app["application_id"],
            "card_number": number,
            "success": False,
            "card_state": "cancelled",
            "old_card_state": old_state,
        }

    def op_activateSocialSecurity(self, body: Mapping[str, Any]) -> dict[str, Any]:
        card = self._card(body["card_number"])
        if card["id_number"] != body["id_number"]:
            raise Refusal("data_mismatch", "card does not belong to this person")
        if card["state"] == "sealed":
            raise Refusal("card_sealed", "card sealed")
        if card["state"] == "cancelled":
            raise Refusal("card_cancelled", "the card is cancelled (注销)")
        if card["state"] != "not_activated":
            raise Refusal("card_state_invalid", f"cannot activate a card in state {card['state']}")
        self._conn.execute("UPDATE cards SET state = 'normal' WHERE card_number = ?", (card["card_number"],))
        self._conn.execute(
            "UPDATE applications SET collected = 1 WHERE card_number = ? AND central = 1",
            (card["card_number"],),
        )
        return {"card_number": card["card_number"], "card_state": "normal"}

    @staticmethod
    def _account_json(card: sqlite3.Row) -> dict[str, Any]:
        account = card["bank_account"] or ""
        masked = f"{account[:4]}{'*' * (len(account) - 8)}{account[-4:]}" if len(account) >= 12 else ""
        return {"card_number": card["card_number"], "account_masked": masked, "state": card["account_state"]}

    def _pin_block_acceptable(self, card: sqlite3.Row, body: Mapping[str, Any]) -> bool:
        """What the bank's HSM does: decrypt the block bound to the account, and refuse a weak PIN
        (the same policy as the kiosk's; the birth date from the base information library)."""
        from kiosk.pins import PinPolicy

        assert self.pin_decoder is not None
        person = self._conn.execute("SELECT birth_date FROM persons WHERE id_number = ?", (card["id_number"],)).fetchone()
        try:
            pin = bytearray(self.pin_decoder.decode(bytes.fromhex(body["pin_block"]), card["bank_account"] or "", int(body.get("key_index", 1))))
        except ValueError:
            return False
        try:
            birth = date.fromisoformat(person[0]) if person else None
            return PinPolicy().refusal(pin, birth) is None
        finally:
            for i in range(len(pin)):
                pin[i] = 0

    def _live_card(self, number: str) -> sqlite3.Row:
        card = self._card(number)
        if card["state"] == "cancelled":
            raise Refusal("card_cancelled", "the card is cancelled (注销)")
        if card["state"] == "sealed":
            raise Refusal("card_sealed", "the card is sealed (封存)")
        if card["state"] == "in_production":
            raise Refusal("card_state_invalid", f"card state {card['state']}")
        return card

    def op_openBankAccount(self, body: Mapping[str, Any]) -> dict[str, Any]:
        card = self._live_card(body["card_number"])
        if card["account_state"] != "not_opened":
            raise Refusal("card_state_invalid", f"account already {card['account_state']}")
        self._conn.execute(
            "UPDATE cards SET bank_account = ?, account_state = 'opened', optional_services = ? WHERE card_number = ?",
            (body["bank_account"], json.dumps(sorted(body["optional_services"])), card["card_number"]),
        )
        return self._account_json(self._card(card["card_number"]))

    def op_setFinancialPin(self, body: Mapping[str, Any]) -> dict[str, Any]:
        card = self._live_card(body["card_number"])
        if card["account_state"] == "not_opened":
            raise Refusal("bank_account_not_opened", "open the account first")
        if card["account_state"] == "frozen":
            raise Refusal("card_state_invalid", "account frozen by a loss report")
        if self.pin_decoder is not None and not self._pin_block_acceptable(card, body):
            return {"card_number": card["card_number"], "accepted": False}
        self._conn.execute(
            "UPDATE cards SET pin_set = 1, pin_verification = ? WHERE card_number = ?",
            (self._verification_of(card, body["pin_block"], int(body.get("key_index", 1))), card["card_number"]),
        )
        return {"card_number": card["card_number"], "accepted": True}

    def _verification_of(self, card: sqlite3.Row, pin_block_hex: str, key_index: int) -> str | None:
        """The PIN verification value of a PIN block (None without the bank's PIN decryption)."""
        if self.pin_decoder is None:
            return None
        try:
            pin = bytearray(self.pin_decoder.decode(bytes.fromhex(pin_block_hex), card["bank_account"] or "", key_index))
        except ValueError:
            return None
        try:
            return _pin_verification(card["card_number"], pin)
        finally:
            for i in range(len(pin)):
                pin[i] = 0

    def op_changeFinancialPin(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """金融密码修改: the bank checks the current PIN's block against what it keeps, then the new
        PIN's block as for setting it (weak PINs refused)."""
        card = self._live_card(body["card_number"])
        if card["account_state"] == "frozen":
            raise Refusal("card_state_invalid", "account frozen by a loss report")
        if not card["pin_set"]:
            raise Refusal("financial_pin_not_set", "no financial PIN to change")
        number, key_index = card["card_number"], int(body.get("key_index", 1))
        if self.pin_decoder is not None:
            old = self._verification_of(card, body["old_pin_block"], key_index)
            if old is None or old != card["pin_verification"]:
                return {"card_number": number, "accepted": False, "old_pin_correct": False}
            if not self._pin_block_acceptable(card, body):
                return {"card_number": number, "accepted": False, "old_pin_correct": True}
        self._conn.execute(
            "UPDATE cards SET pin_verification = ? WHERE card_number = ?",
            (self._verification_of(card, body["pin_block"], key_index), number),
        )
        return {"card_number": number, "accepted": True, "old_pin_correct": True}

    def op_activateBankAccount(self, body: Mapping[str, Any], *, pending: bool = False) -> dict[str, Any]:
        card = self._live_card(body["card_number"])
        if card["account_state"] == "not_opened":
            raise Refusal("bank_account_not_opened", "open the account first")
        if card["account_state"] != "opened":
            raise Refusal("card_state_invalid", f"account {card['account_state']}")
        if not card["pin_set"]:
            raise Refusal("financial_pin_not_set", "the financial PIN is needed to activate the account")
        delay = self.rules.bank_activation_delay_s
        if pending or delay > 0:
            ready = self.clock() + timedelta(seconds=delay if delay > 0 else 3600)
            self._conn.execute(
                "UPDATE cards SET account_state = 'pending', account_ready_at = ? WHERE card_number = ?",
                (ready.isoformat(), card["card_number"]),
            )
        else:
            self._conn.execute(
                "UPDATE cards SET account_state = 'active' WHERE card_number = ?", (card["card_number"],)
            )
        return self._account_json(self._card(card["card_number"]))

    def op_confirmBankActivation(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """金融账户激活结果确认: the bank's late answer to a ``pending`` activation, recorded with the
        card-management system. While the bank has not answered, 503: nothing is recorded and the
        kiosk's outbox sends the same request again later."""
        card = self._live_card(body["card_number"])
        state = card["account_state"]
        if state == "pending":
            ready_at = card["account_ready_at"]
            if not ready_at or self.clock() < datetime.fromisoformat(ready_at):
                raise Refusal("service_unavailable", "the bank has not answered the activation yet", 503)
            self._conn.execute("UPDATE cards SET account_state = 'active' WHERE card_number = ?", (card["card_number"],))
        elif state != "active":
            raise Refusal("card_state_invalid", f"no activation to confirm: account {state}")
        return self._account_json(self._card(card["card_number"]))

    def op_reportLoss(self, body: Mapping[str, Any]) -> dict[str, Any]:
        idn = body["id_number"]
        self._person(idn)
        kind = body["kind"]
        if kind not in self.rules.loss_modes:
            raise Refusal("loss_mode_not_allowed", f"{kind} loss reports are not taken here")
        card = self._current_card(idn)
        if card is None:
            raise Refusal("no_card", "no card to report")
        state = card["state"]
        if state == "sealed":
            raise Refusal("card_sealed", "card sealed")
        if state == "lost" or (state == "temporary_loss" and kind == "temporary"):
            raise Refusal("card_already_reported_lost", "already reported")
        if state not in ("normal", "not_activated", "temporary_loss"):
            raise Refusal("card_state_invalid", f"cannot report a card in state {state}")
        new_state = "lost" if kind == "formal" else "temporary_loss"
        before = card["state_before_loss"] if state == "temporary_loss" else state
        account_before = (
            card["account_state_before_freeze"]
            if card["account_state"] == "frozen"
            else card["account_state"]
        )
        # The fund account is frozen at once (挂失即冻结).
        self._conn.execute(
            "UPDATE cards SET state = ?, state_before_loss = ?, account_state = 'frozen',"
            " account_state_before_freeze = ? WHERE card_number = ?",
            (new_state, before, account_before, card["card_number"]),
        )
        now = self.clock()
        report_id = self._new_id("L")
        self._conn.execute(
            "INSERT INTO loss_reports VALUES (?, ?, ?, ?, NULL)",
            (report_id, card["card_number"], kind, _ts(now)),
        )
        return {
            "report_id": report_id,
            "card_number": card["card_number"],
            "kind": kind,
            "card_state": new_state,
            "reported_at": _ts(now),
        }

    def op_cancelLoss(self, body: Mapping[str, Any]) -> dict[str, Any]:
        idn = body["id_number"]
        self._person(idn)
        card = self._current_card(idn)
        if card is None:
            raise Refusal("no_card", "no card")
        if card["state"] not in ("temporary_loss", "lost"):
            raise Refusal("card_not_reported_lost", "the card is not reported lost")
        if self._one(
            "SELECT 1 FROM applications WHERE old_card_number = ? AND business = 'replacement'",
            (card["card_number"],),
        ):
            raise Refusal(
                "replacement_already_applied", "a replacement was applied for: cancel is no longer possible"
            )
        now = self.clock()
        restored = card["state_before_loss"] or "normal"
        self._conn.execute(
            "UPDATE cards SET state = ?, state_before_loss = NULL, account_state = COALESCE(account_state_before_freeze,"
            " 'not_opened'), account_state_before_freeze = NULL WHERE card_number = ?",
            (restored, card["card_number"]),
        )
        self._conn.execute(
            "UPDATE loss_reports SET cancelled_at = ? WHERE card_number = ? AND cancelled_at IS NULL",
            (_ts(now), card["card_number"]),
        )
        return {"card_number": card["card_number"], "card_state": restored, "cancelled_at": _ts(now)}

    def op_requestCertificate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        card = self._live_card(body["card_number"])
        if not self.rules.third_generation or card["generation"] != 3:
            raise Refusal("certificate_not_available", "certificates are for third-generation cards")
        try:
            key = Sm2PublicKey.from_hex(body["public_key"])
        except SignatureError as exc:
            raise Refusal("request_invalid", "public key is not on the SM2 curve", 400) from exc
        valid = date.fromisoformat(card["expires_on"])
        serial = self._new_id("Z")
        # Not X.509: a signed JSON statement by the simulator's CA key (the real CA service is not public).
        tbs = json.dumps(
            {
                "subject": card["card_number"],
                "public_key": key.hex(),
                "serial": serial,
                "valid_until": _iso(valid),
                "issuer": "SIMULATED-SSCARD-CA",
            },
            sort_keys=True,
        ).encode()
        blob = tbs + b"\n" + sign(self.ca_key, tbs).encode()
        return {
            "card_number": card["card_number"],
            "certificate_base64": base64.b64encode(blob).decode(),
            "ca_name": "SIMULATED-SSCARD-CA",
            "serial": serial,
            "valid_until": _iso(valid),
        }

    def op_submitKioskRecord(self, body: Mapping[str, Any]) -> dict[str, Any]:
        reference = self._new_id("R")
        self._conn.execute(
            "INSERT INTO kiosk_records VALUES (?, ?, ?, ?)",
            (reference, body["kind"], json.dumps(body["record"], ensure_ascii=False), _ts(self.clock())),
        )
        return {"reference": reference}

    # ------------------------------------------------------------ inspection for tests and the engineer menu

    def count(self, table: str, where: str = "1=1", params: tuple[Any, ...] = ()) -> int:
        if table not in ("persons", "cards", "applications", "loss_reports", "requests", "kiosk_records"):
            raise ValueError(table)
        return int(self.query(f"SELECT COUNT(*) AS n FROM {table} WHERE {where}", params)[0]["n"])
