.PHONY: setup run test lint lock bench
setup:
	@scripts/bootstrap.sh

# Starts the kiosk with every device simulated. Without a display it runs under Xvfb and says so.
run: setup
	@.venv/bin/kiosk demo

test: setup
	@.venv/bin/python -m pytest $(PYTEST_ARGS)

lint: setup
	@.venv/bin/lint-imports
	@.venv/bin/ruff check --select F,E9 kiosk screens hardware printer camera offline bench tests

lock:
	.venv/bin/uv pip compile -q -p 3.11 --generate-hashes --override overrides.txt requirements.in -o requirements.lock

bench: setup
	@.venv/bin/python -m bench --list
