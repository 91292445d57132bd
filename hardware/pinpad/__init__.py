"""Encrypted PIN pad (EPP, 密码键盘): command sets, pyserial driver, PIN block arithmetic, simulator.

- ``commandset.py`` — the :class:`CommandSet` base and the registry chosen by name
  (``[pinpad] command_set``); ``kmy3501.py`` — the KMY3501 family (frames, BCC, status codes).
- ``driver.py`` — :class:`EncryptedPinPad`, the driver (implements ``kiosk.devices.pinpad.PinPad``).
- ``pinblock.py`` — ISO 9564 format 0 and its SM4 variant, check values (pure, known-answer tested).
- ``simulator.py`` — :class:`PinPadSimulator`, a KMY3501 on a pseudo-terminal.
"""
