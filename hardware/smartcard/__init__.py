"""Social security card chip and PSAM over PC/SC (社保卡芯片与PSAM, pyscard).

Modules: ``apdu`` (APDU layer, status words, reader watching), ``layout`` (SSSE files and data
items), ``crypto`` (3DES/SM4 MAC, session keys, diversification), ``keys`` (PSAM and HSM key
back ends), ``sscard`` (SSSE application and the chip-station driver), ``personalize`` (the
personalization script), ``pboc`` (bank account, read-only), ``pcscd`` (dev/test pcscd) and
``virtual`` (SIMULATORS: virtual cards and PSAM on vsmartcard-vpcd).
"""
