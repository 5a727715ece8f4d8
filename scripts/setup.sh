#!/usr/bin/env bash
# Create or update .venv exactly as uv.lock says. Needs only python3 (3.11) and pip.
#   --test-reference   also install PyTorch (CPU), the numerical reference the tests compare against
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
TORCH_VERSION=2.13.0
TOOLS=.cache/tools
if ! "$TOOLS/bin/uv" --version 2>/dev/null | grep -q "^uv $UV_VERSION"; then
  echo "setup: installing uv $UV_VERSION into $TOOLS" >&2
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
# Never download an interpreter: use the machine's python3. --inexact keeps the test reference below.
export UV_PYTHON_DOWNLOADS=never
"$TOOLS/bin/uv" sync --frozen --inexact --quiet --python "$(python3 -c "import sys; print(sys.executable)")"

has_torch() { .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; }
if [ "${1:-}" = "--test-reference" ] && ! has_torch; then
  # Installed with pip, not locked: our machines carry a local CPU wheel that pip finds and uv does
  # not; any other torch requirement would pull gigabytes of CUDA packages.
  echo "setup: installing torch $TORCH_VERSION (CPU) as the tests' reference" >&2
  "$TOOLS/bin/python" -m pip --python .venv/bin/python install --quiet --disable-pip-version-check "torch==$TORCH_VERSION" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  has_torch || { echo "setup: torch $TORCH_VERSION did not install; see pip's output above" >&2; exit 1; }
fi
