"""The CUDA install comes from the lock: the `cuda` extra pins JAX's CUDA plugin to the locked JAX, and setup takes --cuda."""

import subprocess
import tomllib

from cecl_pipeline.settings import PROJECT_ROOT


def locked() -> dict[str, dict]:
    return {p["name"]: p for p in tomllib.loads((PROJECT_ROOT / "uv.lock").read_text())["package"]}


def test_the_cuda_extra_locks_the_cuda_plugin_at_the_locked_jax_version():
    packages = locked()
    jax = packages["jax"]["version"]
    extra = packages["cecl-pipeline"]["optional-dependencies"]["cuda"]
    assert [(e["name"], e.get("extra")) for e in extra] == [("jax", ["cuda12"])]
    assert packages["jax-cuda12-plugin"]["version"] == packages["jax-cuda12-pjrt"]["version"] == packages["jaxlib"]["version"] == jax
    # the CUDA libraries come with it, from pip: nothing but a driver is needed on the machine
    assert {"nvidia-cudnn-cu12", "nvidia-cublas-cu12", "nvidia-cuda-runtime-cu12"} <= set(packages)
    cpu_only = {d["name"] for d in packages["cecl-pipeline"]["dependencies"]}
    assert "jax-cuda12-plugin" not in cpu_only  # the default install stays on the CPU


def test_setup_refuses_an_option_it_does_not_know_before_installing_anything():
    done = subprocess.run(["bash", str(PROJECT_ROOT / "scripts" / "setup.sh"), "--gpu"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown option --gpu (expected --test-reference, --bench-reference or --cuda)" in done.stderr
