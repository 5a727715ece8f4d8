#!/usr/bin/env bash
# Set up (the Python packages, then the Debian servers the end-to-end tests use), then run the whole
# test suite, slow cases included. Extra arguments go to pytest, e.g. -m "not slow" for a quick loop.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test-reference
bash scripts/system-deps.sh
exec .venv/bin/python -m pytest -n 2 "$@"
