#!/usr/bin/env bash
# Create or update .venv exactly as uv.lock says. Needs only python3 (3.11) and pip.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
TOOLS=.cache/tools
if ! "$TOOLS/bin/uv" --version 2>/dev/null | grep -q "^uv $UV_VERSION"; then
  echo "setup: installing uv $UV_VERSION into $TOOLS" >&2
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
# Never download an interpreter: use the machine's python3.
export UV_PYTHON_DOWNLOADS=never
"$TOOLS/bin/uv" sync --frozen --quiet --python "$(command -v python3)"
