#!/usr/bin/env bash
# Installs what is missing for development, tests and the simulated kiosk; quick when nothing changed.
#   apt packages (Debian 12) -> .venv (python3 -m venv) -> uv -> requirements.lock (pinned, hashed, --no-deps)
# dlib is never built: the dlib-bin wheel provides the module (overrides.txt keeps dlib out of the lock).
set -euo pipefail
cd "$(dirname "$0")/.."
APT_PKGS="libpcsclite-dev pcscd vsmartcard-vpcd fonts-wqy-microhei libmtdev1 xvfb espeak-ng"
missing=""
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "bootstrap: installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ] || [ ! -f .venv/.installed ] || [ requirements.lock -nt .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  echo "bootstrap: building .venv from requirements.lock"
  rm -rf .venv
  "$PY" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check uv==0.13.9
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps --require-hashes -r requirements.lock \
    || .venv/bin/pip install -q --disable-pip-version-check --no-deps --require-hashes -r requirements.lock
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e . \
    || .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
  touch .venv/.installed
fi
# Voice prompts are generated from the message catalogs (espeak-ng, Mandarin and English) when missing.
.venv/bin/python -m kiosk.voice --build-missing >/dev/null 2>&1 || echo "bootstrap: voice prompts not built (kiosk.voice)"
