"""What loads without JAX: the code location, the CLI, and the modules that only read files or knobs."""

import subprocess
import sys

import pytest

NO_JAX = [
    "cecl_pipeline.definitions",  # the web UI loads it; JAX is imported inside asset bodies
    "cecl_pipeline.cli",
    "cecl_pipeline.grpo.knobs",
    "cecl_pipeline.grpo.policy_store",
    "cecl_pipeline.grpo.monitor",
    "cecl_pipeline.grpo.metrics_log",
    "cecl_pipeline.llm.prompt_tokens",
    "cecl_pipeline.envs.registry",
]


@pytest.mark.parametrize("module", NO_JAX)
def test_importing_does_not_load_jax(module):
    check = f"import sys, {module}; heavy = sorted(m for m in ('jax', 'flax', 'optax', 'orbax') if m in sys.modules); print(heavy)"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"{module} loads {result.stdout.strip()}"
