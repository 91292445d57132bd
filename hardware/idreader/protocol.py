"""GA/T 467 业务终端接口: the ID reader's wire format, as pure functions over bytes.

Host → module: ``AA AA AA 96 69 | Len(2, big-endian) | CMD PARA [data] | CHK``;
module → host: ``AA AA AA 96 69 | Len | SW1 SW2 SW3 [data] | CHK``. ``Len`` counts the bytes
after itself, checksum included; ``CHK`` is the XOR of every byte after the preamble
(``research/idcard.md`` §1). The 256-byte text block of a read (30 01 / 30 10) has four layouts
(§3, §4), told apart by the type flag at offset 248.

Nothing here does I/O or reads a clock: the day a card's validity is checked against is a
parameter (:func:`shanghai_today` gives the default).
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from kiosk.devices import Audience
from kiosk.devices.idreader import (
    BadChecksumError,
    CardRemovedError,
    CardType,
    FrameError,
    IdentityCard,
    NoCardError,
    ReaderStatusError,
    SamNotAuthorizedError,
    SelfTestFailedError,
    Sex,
    TextBlockError,
    TruncatedFrameError,
    validity_on,
)

log = logging.getLogger(__name__)

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
HEADER_LEN = 7  # preamble + Len1 Len2
# The longest legitimate frame is the 30 10 reply (Len 0x090A); anything much longer is noise.
MAX_LEN = 0x0C00
TEXT_LEN = 256
PHOTO_LEN = 1024
FINGERPRINT_LEN = 1024
SHANGHAI = ZoneInfo("Asia/Shanghai")


# --------------------------------------------------------------------------- commands


class Command(enum.Enum):
    """Command (CMD, PARA) pairs of the SAM_V module."""

    RESET_SAM = (0x10, 0xFF)  # 复位SAM (慎用: never retried automatically)
    SAM_STATUS = (0x11, 0xFF)  # SAM状态检测
    SAM_ID = (0x12, 0xFF)  # 读SAM管理信息 (module number)
    FIND_CARD = (0x20, 0x01)  # 寻找证/卡
    SELECT_CARD = (0x20, 0x02)  # 选取证/卡
    READ_TEXT_PHOTO = (0x30, 0x01)  # 读固定信息 (文字+照片)
    READ_NEW_ADDRESS = (0x30, 0x03)  # 读追加住址
    READ_WITH_FINGERPRINT = (0x30, 0x10)  # 读文字+照片+指纹
    SET_MAX_RF_BYTES = (0x61, 0xFF)

    @property
    def cmd(self) -> int:
        return self.value[0]

    @property
    def para(self) -> int:
        return self.value[1]


SET_BAUD_CMD = 0x60
BAUD_CODES = {115200: 0x00, 57600: 0x01, 38400: 0x02, 19200: 0x03, 9600: 0x04}


def xor_checksum(data: bytes) -> int:
    """XOR of every byte of ``data`` (folds the bytes as one big integer: fast on 2 KB frames)."""
    n = len(data)
    if n == 0:
        return 0
    width = 1
    while width < n:
        width *= 2
    value = int.from_bytes(data, "big")
    bits = width * 8
    while bits > 8:
        bits //= 2
        value = (value >> bits) ^ (value & ((1 << bits) - 1))
    return value


def _frame(body: bytes) -> bytes:
    """Preamble + Len + body + checksum, where Len counts body + checksum."""
    length = len(body) + 1
    head = length.to_bytes(2, "big")
    return PREAMBLE + head + body + bytes([xor_checksum(head + body)])


def build_command(command: Command, data: bytes = b"") -> bytes:
    """The host frame for ``command`` (e.g. find card → ``AA AA AA 96 69 00 03 20 01 22``)."""
    return _frame(bytes([command.cmd, command.para]) + data)


def build_set_baud(baud: int) -> bytes:
    """Set the module's UART speed (60 00..04). Raises ``ValueError`` for an unsupported speed."""
    if baud not in BAUD_CODES:
        raise ValueError(f"unsupported baud rate {baud}; one of {sorted(BAUD_CODES)}")
    return _frame(bytes([SET_BAUD_CMD, BAUD_CODES[baud]]))


def build_reply(sw3: int, data: bytes = b"", sw1: int = 0, sw2: int = 0) -> bytes:
    """A module reply frame (used by the simulator and the tests)."""
    return _frame(bytes([sw1, sw2, sw3]) + data)


# --------------------------------------------------------------------------- status codes


class Sw3(enum.IntEnum):
    """SW3, the module's own status byte (research/idcard.md §2, W1 table)."""

    SUCCESS = 0x90
    FIND_SUCCESS = 0x9F
    NO_CONTENT = 0x91
    FIND_FAILED = 0x80
    SELECT_FAILED = 0x81
    HOST_CHECKSUM_ERROR = 0x10
    HOST_LENGTH_ERROR = 0x11
    COMMAND_ERROR = 0x21
    UNAUTHORIZED_OPERATION = 0x23
    UNRECOGNIZED_ERROR = 0x24
    CARD_AUTH_READER_FAILED = 0x31
    READER_AUTH_CARD_FAILED = 0x32
    VERIFICATION_ERROR = 0x33
    CARD_NOT_FOUND = 0x34
    WRONG_CARD_TYPE = 0x40
    READ_FAILED = 0x41
    RANDOM_FAILED = 0x47
    WRITE_FAILED = 0x50
    SELF_TEST_FAILED = 0x60
    USER_LOGIN_FAILED = 0x61
    SAM_NOT_AUTHORIZED = 0x66

    @property
    def code(self) -> str:
        """Stable machine code, e.g. ``idreader.sw3.read_failed``."""
        return _SW3_CODES.get(self, f"idreader.sw3.{self.name.lower()}")

    @property
    def message_key(self) -> str:
        return _SW3_MESSAGE_KEYS.get(self, "idreader.read_failed")

    @property
    def is_success(self) -> bool:
        return self in (Sw3.SUCCESS, Sw3.FIND_SUCCESS)


_SW3_CODES = {
    Sw3.FIND_FAILED: "idreader.no_card",
    Sw3.SELECT_FAILED: "idreader.no_card",
    Sw3.READ_FAILED: "idreader.card_removed",
    Sw3.SAM_NOT_AUTHORIZED: "idreader.sam_not_authorized",
    Sw3.SELF_TEST_FAILED: "idreader.self_test_failed",
}
_SW3_MESSAGE_KEYS = {
    Sw3.SUCCESS: "idreader.ready",
    Sw3.FIND_SUCCESS: "idreader.ready",
    Sw3.NO_CONTENT: "idreader.no_content",
    Sw3.FIND_FAILED: "idreader.no_card",
    Sw3.SELECT_FAILED: "idreader.no_card",
    Sw3.CARD_NOT_FOUND: "idreader.no_card",
    Sw3.READ_FAILED: "idreader.card_removed",
    Sw3.WRONG_CARD_TYPE: "idreader.wrong_card",
    Sw3.CARD_AUTH_READER_FAILED: "idreader.card_auth_failed",
    Sw3.READER_AUTH_CARD_FAILED: "idreader.card_auth_failed",
    Sw3.VERIFICATION_ERROR: "idreader.card_auth_failed",
    Sw3.SELF_TEST_FAILED: "idreader.self_test_failed",
    Sw3.SAM_NOT_AUTHORIZED: "idreader.sam_not_authorized",
}
# Statuses after which asking again is harmless and may succeed (card moved, RF noise, frame noise).
RETRYABLE_SW3 = frozenset(
    {
        Sw3.HOST_CHECKSUM_ERROR,
        Sw3.HOST_LENGTH_ERROR,
        Sw3.UNRECOGNIZED_ERROR,
        Sw3.CARD_AUTH_READER_FAILED,
        Sw3.READER_AUTH_CARD_FAILED,
        Sw3.VERIFICATION_ERROR,
        Sw3.READ_FAILED,
        Sw3.RANDOM_FAILED,
    }
)


def status_error(sw3: int, context: str = "") -> ReaderStatusError:
    """The typed error for a non-success SW3 (unknown bytes give a generic, flagged error)."""
    try:
        status = Sw3(sw3)
    except ValueError:
        return ReaderStatusError(
            f"unknown SW3 0x{sw3:02X} {context}".strip(),
            sw3=sw3,
            code="idreader.sw3.unknown",
            message_key="idreader.read_failed",
        )
    text = f"SW3 0x{sw3:02X} {status.name} {context}".strip()
    retryable = status in RETRYABLE_SW3
    if status in (Sw3.FIND_FAILED, Sw3.SELECT_FAILED, Sw3.CARD_NOT_FOUND):
        return NoCardError(text, sw3=sw3)
    if status is Sw3.READ_FAILED:
        return CardRemovedError(text, sw3=sw3, retryable=True)
    if status is Sw3.SAM_NOT_AUTHORIZED:
        return SamNotAuthorizedError(text, sw3=sw3)
    if status is Sw3.SELF_TEST_FAILED:
        return SelfTestFailedError(text, sw3=sw3)
    audience = Audience.CITIZEN if status in _CITIZEN_STATUSES else Audience.ENGINEER
    return ReaderStatusError(
        text,
        sw3=sw3,
        code=status.code,
        message_key=status.message_key,
        audience=audience,
        retryable=retryable,
    )


_CITIZEN_STATUSES = frozenset(
    {Sw3.WRONG_CARD_TYPE, Sw3.CARD_AUTH_READER_FAILED, Sw3.READER_AUTH_CARD_FAILED, Sw3.VERIFICATION_ERROR}
)


# --------------------------------------------------------------------------- reply frames


@dataclass(frozen=True)
class Reply:
    """One module reply: SW1 SW2 (card APDU status, informative) and SW3 (module status)."""

    sw1: int
    sw2: int
    sw3: int
    data: bytes

    @property
    def status(self) -> Sw3 | None:
        try:
            return Sw3(self.sw3)
        except ValueError:
            return None


@dataclass(frozen=True)
class HostCommand:
    """One host frame as the module sees it (the simulator's parser)."""

    cmd: int
    para: int
    data: bytes


def frame_length(header: bytes) -> int:
    """Total frame length from the first 7 bytes; raises :class:`FrameError` when they are not a header."""
    if len(header) < HEADER_LEN:
        raise TruncatedFrameError(f"header of {len(header)} bytes")
    if header[:5] != PREAMBLE:
        raise FrameError("no preamble")
    length = int.from_bytes(header[5:7], "big")
    if length < 2 or length > MAX_LEN:
        raise FrameError(f"implausible length {length}")
    return HEADER_LEN + length


def _check_frame(frame: bytes) -> bytes:
    """The body between Len and the checksum of a complete frame, after every check."""
    total = frame_length(frame[:HEADER_LEN])
    if len(frame) < total:
        raise TruncatedFrameError(f"frame of {len(frame)} bytes, header says {total}")
    if len(frame) > total:
        raise FrameError(f"{len(frame) - total} bytes after the frame")
    if xor_checksum(frame[5:-1]) != frame[-1]:
        raise BadChecksumError("checksum mismatch")
    return frame[HEADER_LEN:-1]


def parse_reply(frame: bytes) -> Reply:
    """Parses one complete module reply frame (preamble to checksum)."""
    body = _check_frame(bytes(frame))
    if len(body) < 3:
        raise FrameError(f"reply body of {len(body)} bytes has no SW1 SW2 SW3")
    return Reply(body[0], body[1], body[2], body[3:])


def parse_command(frame: bytes) -> HostCommand:
    """Parses one complete host frame (CMD PARA [data])."""
    body = _check_frame(bytes(frame))
    if len(body) < 2:
        raise FrameError(f"command body of {len(body)} bytes")
    return HostCommand(body[0], body[1], body[2:])


def take_frame(buffer: bytearray) -> tuple[bytes | None, int]:
    """Takes the first complete frame out of a receive buffer; resynchronizes on garbage.

    Bytes before the next preamble are discarded, and so is a preamble whose length field is
    implausible. Returns ``(frame, discarded)``; ``frame`` is ``None`` while more bytes are needed
    (the incomplete tail stays in ``buffer``). The checksum is not checked here.
    """
    discarded = 0
    while True:
        start = buffer.find(PREAMBLE)
        if start < 0:
            # Keep a tail that may be the start of a preamble split across reads.
            keep = 0
            for k in range(min(len(PREAMBLE) - 1, len(buffer)), 0, -1):
                if buffer.endswith(PREAMBLE[:k]):
                    keep = k
                    break
            drop = len(buffer) - keep
            del buffer[:drop]
            return None, discarded + drop
        if start:
            del buffer[:start]
            discarded += start
        if len(buffer) < HEADER_LEN:
            return None, discarded
        try:
            total = frame_length(bytes(buffer[:HEADER_LEN]))
        except FrameError:
            # A false preamble (noise that looks like one): skip one byte and look again.
            del buffer[:1]
            discarded += 1
            continue
        if len(buffer) < total:
            return None, discarded
        frame = bytes(buffer[:total])
        del buffer[:total]
        return frame, discarded


# --------------------------------------------------------------------------- read replies


@dataclass(frozen=True)
class CardRecord:
    """The data of a successful 30 01 / 30 10 reply: text block, raw photo, fingerprint."""

    text: bytes
    photo: bytes
    fingerprint: bytes


def split_read_data(data: bytes) -> CardRecord:
    """Splits the data of a read reply: ``textLen photoLen [fpLen] text photo [fp]``.

    The layout with fingerprint length is tried when the two-length one does not add up, so a
    30 10 reply from a card without fingerprints (module answers with the 30 01 layout, or with
    ``fpLen`` 0) parses either way.
    """
    if len(data) >= 4:
        text_len = int.from_bytes(data[0:2], "big")
        photo_len = int.from_bytes(data[2:4], "big")
        if 4 + text_len + photo_len == len(data):
            return CardRecord(data[4 : 4 + text_len], data[4 + text_len :], b"")
        if len(data) >= 6:
            fp_len = int.from_bytes(data[4:6], "big")
            if 6 + text_len + photo_len + fp_len == len(data):
                start = 6 + text_len
                return CardRecord(data[6:start], data[start : start + photo_len], data[start + photo_len :])
    raise FrameError(f"read data of {len(data)} bytes does not match its length fields")


def build_read_data(text: bytes, photo: bytes, fingerprint: bytes | None = None) -> bytes:
    """The inverse of :func:`split_read_data` (``fingerprint`` None → the 30 01 layout)."""
    head = len(text).to_bytes(2, "big") + len(photo).to_bytes(2, "big")
    if fingerprint is None:
        return head + text + photo
    return head + len(fingerprint).to_bytes(2, "big") + text + photo + fingerprint


def check_reply(reply: Reply, context: str = "", accept: tuple[int, ...] = (Sw3.SUCCESS,)) -> Reply:
    """Returns ``reply`` when its SW3 is one of ``accept``; raises the typed status error otherwise."""
    if reply.sw3 in accept:
        return reply
    raise status_error(reply.sw3, context)


def decode_read_frame(frame: bytes, today: date | None = None) -> IdentityCard:
    """A complete 30 01 / 30 10 reply frame → :class:`IdentityCard` (``kiosk idcard decode``)."""
    reply = check_reply(parse_reply(frame), "read")
    record = split_read_data(reply.data)
    return parse_identity(record.text, record.photo, record.fingerprint, today=today)


def format_sam_id(data: bytes) -> str:
    """SAM management number from the 12 FF reply (U1/U3 format: ``05.01-20080808-0000123456-...``)."""
    if len(data) < 16:
        raise FrameError(f"SAM ID of {len(data)} bytes")
    u32 = [int.from_bytes(data[i : i + 4], "little") for i in (4, 8, 12)]
    return f"{data[0]:02X}.{data[2]:02X}-{u32[0]}-{u32[1]:010d}-{u32[2]:010d}"


def parse_new_address(data: bytes) -> str:
    """The appended address (追加住址) of a 30 03 reply: 70 bytes UCS-2, space padded."""
    text, _ = _text(data[:70])
    return text


# --------------------------------------------------------------------------- text block

SEX_CODES = {"0": Sex.UNKNOWN, "1": Sex.MALE, "2": Sex.FEMALE, "9": Sex.UNSPECIFIED}
SEX_TO_CODE = {v: k for k, v in SEX_CODES.items()}

# GB 3304 as used by the readers (research/idcard.md §3), current names (毛南, 德昂).
ETHNICITIES = {
    "01": "汉", "02": "蒙古", "03": "回", "04": "藏", "05": "维吾尔", "06": "苗", "07": "彝", "08": "壮",
    "09": "布依", "10": "朝鲜", "11": "满", "12": "侗", "13": "瑶", "14": "白", "15": "土家", "16": "哈尼",
    "17": "哈萨克", "18": "傣", "19": "黎", "20": "傈僳", "21": "佤", "22": "畲", "23": "高山", "24": "拉祜",
    "25": "水", "26": "东乡", "27": "纳西", "28": "景颇", "29": "柯尔克孜", "30": "土", "31": "达斡尔",
    "32": "仫佬", "33": "羌", "34": "布朗", "35": "撒拉", "36": "毛南", "37": "仡佬", "38": "锡伯", "39": "阿昌",
    "40": "普米", "41": "塔吉克", "42": "怒", "43": "乌孜别克", "44": "俄罗斯", "45": "鄂温克", "46": "德昂",
    "47": "保安", "48": "裕固", "49": "京", "50": "塔塔尔", "51": "独龙", "52": "鄂伦春", "53": "赫哲",
    "54": "门巴", "55": "珞巴", "56": "基诺", "97": "其他", "98": "外国血统中国籍人士",
}  # fmt: skip
ETHNICITY_CODES = {v: k for k, v in ETHNICITIES.items()}

LONG_TERM = "长期"
_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]
_CHECK = "10X98765432"
_FOREIGN_2017 = re.compile(r"^[A-Z]{3}\d{12}$")


def id_check_character(first17: str) -> str:
    """GB 11643 (ISO 7064 MOD 11-2) check character for the first 17 digits."""
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS)) % 11]


def id_number_check_digit_ok(id_number: str) -> bool:
    """True when ``id_number`` is 17 digits plus a matching check character (``x`` read as ``X``)."""
    number = id_number.upper()
    if len(number) != 18 or not number.isascii():
        return False
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        return False
    return id_check_character(number[:17]) == number[17]


def shanghai_today(now: Callable[[], datetime] | None = None) -> date:
    """Today's date in Asia/Shanghai (the day a card's validity is judged on)."""
    moment = now() if now is not None else datetime.now(tz=SHANGHAI)
    return moment.astimezone(SHANGHAI).date()


def _text(raw: bytes) -> tuple[str, bool]:
    """UCS-2/UTF-16LE field → text with trailing padding trimmed; ``True`` if some bytes were not text.

    Only trailing spaces (and NULs) are trimmed: English names on foreign cards hold inner spaces.
    Characters outside the BMP (rare characters such as 𠮷) arrive as surrogate pairs and decode.
    """
    if len(raw) % 2:
        raw = raw[:-1]
    try:
        text = raw.decode("utf-16-le")
        bad = False
    except UnicodeDecodeError:
        text = raw.decode("utf-16-le", errors="replace")
        bad = True
    return text.rstrip(" \x00"), bad


def _date(raw: str) -> date | None:
    if len(raw) != 8 or not raw.isascii() or not raw.isdigit():
        return None
    try:
        return date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
    except ValueError:
        return None


_TYPE_FLAGS = {
    " ": CardType.RESIDENT,
    "J": CardType.HK_MACAU_TAIWAN,
    "I": CardType.FOREIGN_PERMANENT_2017,
    "Y": CardType.FOREIGN_PERMANENT_2023,
}
TYPE_FLAG_OF = {v: k for k, v in _TYPE_FLAGS.items()}


def parse_identity(
    text: bytes,
    photo: bytes = b"",
    fingerprint: bytes = b"",
    *,
    today: date | None = None,
) -> IdentityCard:
    """The 256-byte text block (+ raw photo/fingerprint) → :class:`IdentityCard`.

    Never guesses: a sex or ethnicity code outside its table, an unreadable date, an unknown type
    flag or bytes that are not UTF-16 are kept raw and named in ``flags``. Only a block of the
    wrong size raises (:class:`TextBlockError`). ``today`` (Asia/Shanghai) defaults to
    :func:`shanghai_today`.
    """
    if len(text) != TEXT_LEN:
        raise TextBlockError(f"text block of {len(text)} bytes, expected {TEXT_LEN}")
    checked_on = today if today is not None else shanghai_today()
    flags: list[str] = []

    def field_(name: str, off: int, size: int) -> str:
        value, bad = _text(text[off : off + size])
        if bad:
            flags.append(f"undecodable:{name}")
        return value

    flag, _ = _text(text[248:250])
    flag = flag or " "  # the resident flag is a space, trimmed as padding
    card_type = _TYPE_FLAGS.get(flag)
    if card_type is None:
        flags.append("card_type_flag")
        log.warning("idreader.unknown_card_type_flag", extra={"flag": flag.encode("unicode_escape").decode()})
        card_type = CardType.RESIDENT

    name_en: str | None = None
    nationality: str | None = None
    ethnicity_code: str | None = None
    permit_number: str | None = None
    issue_count: str | None = None
    if card_type is CardType.FOREIGN_PERMANENT_2017:
        name_en = field_("name_en", 0, 120)
        sex_code = field_("sex", 120, 2)
        id_number = field_("id_number", 122, 30)
        nationality = field_("nationality", 152, 6)
        name = field_("name", 158, 30)
        start, end, birth = (
            field_("valid_from", 188, 16),
            field_("valid_until", 204, 16),
            field_("birth", 220, 16),
        )
        address = ""
        issuer = field_("issuer", 240, 8)  # 受理机关代码 (accepting-authority code)
    else:
        name = field_("name", 0, 30)
        sex_code = field_("sex", 30, 2)
        birth = field_("birth", 36, 16)
        id_number = field_("id_number", 122, 36)
        start, end = field_("valid_from", 188, 16), field_("valid_until", 204, 16)
        address = ""
        issuer = ""
        if card_type is CardType.FOREIGN_PERMANENT_2023:
            # Offsets 52 (English name) and 242 (nationality) agree in both sources; 158 and 220
            # are disputed (research §4), so 220 is read only as the name's continuation.
            name_en = (field_("name_en", 52, 70) + field_("name_en", 220, 22)).rstrip(" ")
            nationality = field_("nationality", 242, 6)
        else:
            address = field_("address", 52, 70)
            issuer = field_("issuer", 158, 30)
        if card_type is CardType.RESIDENT:
            ethnicity_code = field_("ethnicity", 32, 4)
        if card_type is CardType.HK_MACAU_TAIWAN:
            permit_number = field_("permit_number", 220, 18)
            issue_count = field_("issue_count", 238, 4)

    sex = SEX_CODES.get(sex_code)
    if sex is None:
        flags.append("sex_code")
    ethnicity: str | None = None
    if ethnicity_code is not None:
        ethnicity = ETHNICITIES.get(ethnicity_code)
        if ethnicity is None:
            flags.append("ethnicity_code")

    birth_date = _date(birth)
    if birth_date is None:
        flags.append("birth_date")
    valid_from = _date(start)
    if valid_from is None:
        flags.append("valid_from")
    long_term = end == LONG_TERM
    valid_until = None if long_term else _date(end)
    if valid_until is None and not long_term:
        flags.append("valid_until")

    id_number_valid: bool | None
    if card_type is CardType.FOREIGN_PERMANENT_2017:
        id_number_valid = None
        if not _FOREIGN_2017.match(id_number):
            flags.append("id_number_format")
    else:
        id_number_valid = id_number_check_digit_ok(id_number)
        if id_number_valid:
            id_number = id_number.upper()
            # GB 11643: the 17th digit (order code) is odd for men, even for women.
            if sex in (Sex.MALE, Sex.FEMALE) and (int(id_number[16]) % 2 == 1) != (sex is Sex.MALE):
                flags.append("sex_disagrees_with_id_number")
            foreign = card_type is CardType.FOREIGN_PERMANENT_2023
            if birth_date is not None and not foreign and id_number[6:14] != birth_date.strftime("%Y%m%d"):
                flags.append("birth_date_disagrees_with_id_number")

    if flags:
        log.info("idreader.text_flags", extra={"flags": ",".join(flags)})
    return IdentityCard(
        card_type=card_type,
        name=name,
        name_en=name_en,
        sex=sex,
        sex_code=sex_code,
        ethnicity=ethnicity,
        ethnicity_code=ethnicity_code,
        birth_date=birth_date,
        address=address,
        id_number=id_number,
        issuer=issuer,
        valid_from=valid_from,
        valid_until=valid_until,
        long_term=long_term,
        nationality=nationality,
        id_number_valid=id_number_valid,
        validity=validity_on(valid_from, valid_until, long_term, checked_on),
        checked_on=checked_on,
        photo=bytes(photo),
        fingerprint=bytes(fingerprint),
        permit_number=permit_number,
        issue_count=issue_count,
        flags=tuple(flags),
    )


# --------------------------------------------------------------------------- building text blocks


def _put(block: bytearray, off: int, size: int, value: str) -> None:
    raw = value.encode("utf-16-le")
    if len(raw) > size:
        raise ValueError(f"{len(raw)} bytes do not fit a {size}-byte field")
    block[off : off + size] = raw + " ".encode("utf-16-le") * ((size - len(raw)) // 2)


@dataclass(frozen=True)
class CardText:
    """The fields of one text block, as strings as they sit on the card (simulator, tests, fuzz).

    ``sex_code`` / ``ethnicity_code`` are the raw codes; dates ``YYYYMMDD`` (``valid_until`` may
    be 长期). Fields that a layout does not have are ignored when building it.
    """

    card_type: CardType
    name: str
    sex_code: str
    birth: str
    id_number: str
    valid_from: str
    valid_until: str
    ethnicity_code: str = ""
    address: str = ""
    issuer: str = ""
    name_en: str = ""
    nationality: str = ""
    permit_number: str = ""
    issue_count: str = ""


def build_text_block(card: CardText) -> bytes:
    """The 256-byte text block for ``card`` (the inverse of :func:`parse_identity`)."""
    block = bytearray(" ".encode("utf-16-le") * (TEXT_LEN // 2))
    t = card.card_type
    if t is CardType.FOREIGN_PERMANENT_2017:
        _put(block, 0, 120, card.name_en)
        _put(block, 120, 2, card.sex_code)
        _put(block, 122, 30, card.id_number)
        _put(block, 152, 6, card.nationality)
        _put(block, 158, 30, card.name)
        _put(block, 188, 16, card.valid_from)
        _put(block, 204, 16, card.valid_until)
        _put(block, 220, 16, card.birth)
        _put(block, 236, 4, "01")  # card version
        _put(block, 240, 8, card.issuer)
    else:
        _put(block, 0, 30, card.name)
        _put(block, 30, 2, card.sex_code)
        _put(block, 36, 16, card.birth)
        _put(block, 122, 36, card.id_number)
        _put(block, 188, 16, card.valid_from)
        _put(block, 204, 16, card.valid_until)
        if t is CardType.FOREIGN_PERMANENT_2023:
            _put(block, 52, 70, card.name_en[:35])
            _put(block, 220, 22, card.name_en[35:46])
            _put(block, 242, 6, card.nationality)
        else:
            _put(block, 52, 70, card.address)
            _put(block, 158, 30, card.issuer)
        if t is CardType.RESIDENT:
            _put(block, 32, 4, card.ethnicity_code)
        if t is CardType.HK_MACAU_TAIWAN:
            _put(block, 220, 18, card.permit_number)
            _put(block, 238, 4, card.issue_count)
    _put(block, 248, 2, TYPE_FLAG_OF[t])
    return bytes(block)
