#!/usr/bin/env bash
# Set up, then run the whole test suite (slow cases included). Extra arguments go to pytest,
# e.g. -m "not slow" for a quick local loop.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test-reference
exec .venv/bin/python -m pytest -n 2 "$@"
