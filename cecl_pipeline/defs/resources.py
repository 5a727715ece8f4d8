"""Resources: where data lives and how JAX runs. Values come from the environment unless a run overrides them."""

import os

import dagster as dg

from cecl_pipeline.settings import PROJECT_ROOT, DataLayout, data_layout


class DataPaths(dg.ConfigurableResource):
    """The data folder (raw drop files and processed outputs); empty means CECL_DATA_DIR or ``data/``."""

    data_dir: str = ""

    def layout(self) -> DataLayout:
        return data_layout(self.data_dir or None)


class JaxRuntime(dg.ConfigurableResource):
    """How JAX runs (in the training process, or in process for sampling): platform, no GPU memory preallocation,
    deterministic ops, a compilation cache."""

    platform: str = ""  # "" lets JAX pick (GPU when there is one); "cpu", "cuda" or "tpu" to force
    preallocate: bool = False  # JAX would otherwise grab 75% of GPU memory up front
    deterministic: bool = True
    compilation_cache_dir: str = ""  # empty: .cache/jax in the project

    def env(self) -> dict[str, str]:
        env = {
            "XLA_PYTHON_CLIENT_PREALLOCATE": "true" if self.preallocate else "false",
            "JAX_COMPILATION_CACHE_DIR": self.compilation_cache_dir or str(PROJECT_ROOT / ".cache" / "jax"),
        }
        if self.platform:
            env["JAX_PLATFORMS"] = self.platform
        if self.deterministic:
            env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_gpu_deterministic_ops=true".strip()
        return env

    def apply_in_process(self) -> None:
        """For assets that run JAX in the run's own process: set what JAX reads at import, unless the user already has."""
        for name, value in self.env().items():
            os.environ.setdefault(name, value)
