"""Back end (卡管系统 card-management system and the cooperating bank's host).

- :mod:`kiosk.backend.api` — what the core calls: the ``CardManagementBackend`` protocol, the
  frozen result types and the typed errors (transient / ambiguous / refused);
- :mod:`kiosk.backend.notices` — every error code → its one-time notice (一次性告知) reason;
- :mod:`kiosk.backend.client` — the signed HTTPS client (requests) checked against
  ``docs/api/openapi.yaml``;
- :mod:`kiosk.backend.signing` — SM2 over SM3 with a CSPRNG nonce;
- :mod:`kiosk.backend.simulator` — a real HTTP server on 127.0.0.1 with the business rules.
"""
