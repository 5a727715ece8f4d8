#!/usr/bin/env bash
# Set up (the Python packages, then the Debian servers the end-to-end tests use), check the code
# (ruff, and the import-layer contracts in pyproject.toml), then run the whole test suite, slow cases
# included. Extra arguments go to pytest, e.g. -m "not slow" for a quick loop.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test-reference
bash scripts/system-deps.sh
echo "ruff check" >&2
.venv/bin/ruff check .
echo "lint-imports" >&2
.venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest -n 2 "$@"
