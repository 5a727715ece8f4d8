#!/usr/bin/env bash
# Set up, then run the main job on the embedded default (synthetic data on first run).
# Extra arguments go to `cecl run`, e.g. --first 2022Q1 --last 2022Q4.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/cecl run "$@"
