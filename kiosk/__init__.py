"""The kiosk core: business flows, the visit engine and journal, back-end client, ledger, audit,
privacy, staff and engineer services, configuration, and the composition root (app.py).

The core never imports kivy, serial, smartcard or cv2 (see the import-linter contracts in
pyproject.toml)."""

__version__ = "0.1.0"
