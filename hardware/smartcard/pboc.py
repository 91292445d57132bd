"""Financial (PBOC debit) application of the co-branded card: read the bank account number.

The blank cards arrive with the bank's application already personalized (预制卡). The kiosk reads
tag 5A (PAN) through the UnionPay debit AID and never writes to this application.
"""

from __future__ import annotations

from hardware.smartcard.apdu import CardChannel, CommandApdu
from hardware.smartcard.layout import UNIONPAY_DEBIT_AID, find_tlv, luhn_valid
from kiosk.devices.smartcard import CardNotSupportedError, CardStatusError

# Records are looked for in SFI 1–3, records 1–4 (SSCReaderFuncs.cpp reads SFI 1/2/3).
_SFIS = (1, 2, 3)
_RECORDS = (1, 2, 3, 4)


def read_bank_account(channel: CardChannel) -> str:
    """Selects the UnionPay debit application and returns the PAN (tag 5A), Luhn-checked."""
    channel.transmit(CommandApdu(0x00, 0xA4, 0x04, 0x00, UNIONPAY_DEBIT_AID, le=0x00)).expect(
        step="pboc.select"
    )
    for sfi in _SFIS:
        for record in _RECORDS:
            response = channel.transmit(CommandApdu(0x00, 0xB2, record, (sfi << 3) | 0x04, le=0x00))
            if response.sw == 0x6A83:
                break  # no more records in this SFI
            if response.sw in (0x6A82, 0x6A86):
                break
            response.expect(step="pboc.read_record")
            value = find_tlv(response.data, 0x5A)
            if value is not None:
                pan = value.hex().upper().rstrip("F")
                if not luhn_valid(pan):
                    raise CardNotSupportedError(
                        "bank account number fails the Luhn check",
                        code="smartcard.pan_invalid",
                        reject_card=True,
                    )
                return pan
    raise CardStatusError(
        "no tag 5A in the debit application",
        code="smartcard.pan_missing",
        reject_card=True,
        step="pboc.read_record",
    )
