#!/usr/bin/env bash
# Create or update .venv exactly as uv.lock says. Needs only python3 (3.11) and pip.
#   --test-reference   also install PyTorch (CPU), the numerical reference the tests compare against
#   --bench-reference  as --test-reference, plus TRL (scripts/bench-reference.txt) for benchmarks/grpo_step.py
#   --cuda             also install CUDA JAX (the lock's `cuda` extra: JAX's CUDA 12 plugin and CUDA libraries from pip)
set -euo pipefail
cd "$(dirname "$0")/.."

REFERENCE=""
EXTRAS=()
for arg in "$@"; do
  case "$arg" in
    --test-reference|--bench-reference) REFERENCE="$arg" ;;
    --cuda) EXTRAS=(--extra cuda) ;;
    *) echo "setup: unknown option $arg (expected --test-reference, --bench-reference or --cuda)" >&2; exit 2 ;;
  esac
done

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
"$TOOLS/bin/uv" sync --frozen --inexact --quiet "${EXTRAS[@]}" --python "$(python3 -c "import sys; print(sys.executable)")"
if [ ${#EXTRAS[@]} -eq 0 ] && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  echo "setup: an NVIDIA GPU is present but JAX was installed for the CPU; bash scripts/setup.sh --cuda installs CUDA JAX" >&2
fi

has_torch() { .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; }
if { [ "$REFERENCE" = "--test-reference" ] || [ "$REFERENCE" = "--bench-reference" ]; } && ! has_torch; then
  # Installed with pip, not locked: our machines carry a local CPU wheel that pip finds and uv does
  # not; any other torch requirement would pull gigabytes of CUDA packages.
  echo "setup: installing torch $TORCH_VERSION (CPU) as the tests' reference" >&2
  "$TOOLS/bin/python" -m pip --python .venv/bin/python install --quiet --disable-pip-version-check "torch==$TORCH_VERSION" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  has_torch || { echo "setup: torch $TORCH_VERSION did not install; see pip's output above" >&2; exit 1; }
fi

if [ "$REFERENCE" = "--bench-reference" ]; then
  # Pinned in scripts/bench-reference.txt and installed with pip after torch, for the same reason as
  # torch. The lock (and torch) are pip constraints here, so nothing that uv.lock pins can move.
  echo "setup: installing TRL from scripts/bench-reference.txt as the benchmarks' reference" >&2
  constraints=.cache/bench-reference-constraints.txt
  { "$TOOLS/bin/uv" export --frozen --no-hashes --no-emit-project --quiet; echo "torch==$TORCH_VERSION"; } > "$constraints"
  "$TOOLS/bin/python" -m pip --python .venv/bin/python install --quiet --disable-pip-version-check -r scripts/bench-reference.txt -c "$constraints" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import trl" 2>/dev/null || { echo "setup: TRL did not install; see pip's output above" >&2; exit 1; }
  has_torch || { echo "setup: installing TRL changed torch from $TORCH_VERSION" >&2; exit 1; }
fi
