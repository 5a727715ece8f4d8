"""Stage 1: the HF model directory and its conversion to a JAX (orbax) checkpoint.

JAX, orbax and transformers are imported inside the asset bodies so the code location loads fast.
"""

import time
from pathlib import Path

import dagster as dg

from cecl_pipeline.defs.metadata import refuse
from cecl_pipeline.settings import checkpoint_dir


class ModelCheckpoints(dg.ConfigurableResource):
    """Where the HF model comes from and where its JAX conversion goes.

    ``hf_dir`` empty means the embedded default: a random ``model``-shaped Qwen3 written by our code.
    """

    hf_dir: str = ""
    model: str = "tiny"
    seed: int = 0
    dtype: str = "float32"

    def hf_path(self) -> Path:
        return Path(self.hf_dir).resolve() if self.hf_dir else checkpoint_dir() / "hf" / f"cecl-{self.model}-seed{self.seed}"

    def jax_path(self) -> Path:
        return checkpoint_dir() / "jax" / f"{self.hf_path().name}-{self.dtype}"


@dg.asset(group_name="model", kinds={"safetensors"},
          description="The HF Qwen3 directory (by default a random-initialised tiny Qwen3 with a locally trained tokenizer).")
def hf_checkpoint(context: dg.AssetExecutionContext, models: ModelCheckpoints) -> dg.MaterializeResult:
    from cecl_pipeline.bootstrap.default_model import default_recipe, is_current, write_default_hf_checkpoint
    from cecl_pipeline.llm.config import ConfigError, Qwen3Config
    from cecl_pipeline.llm.convert import ConversionError, describe_hf_dir

    started = time.perf_counter()
    path = models.hf_path()
    if not models.hf_dir and not is_current(path, default_recipe(models.model, models.seed, models.dtype)):
        context.log.info(f"writing the embedded default model ({models.model}, seed {models.seed}) to {path}")
        write_default_hf_checkpoint(path, models.model, models.seed, models.dtype)
    try:
        config = Qwen3Config.from_file(path / "config.json")
        described = describe_hf_dir(path)
    except (ConfigError, ConversionError) as error:
        raise refuse(error) from None
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "source": "embedded default (random weights)" if not models.hf_dir else "configured hf_dir",
            "parameters": config.param_count(),
            "dtype": described["dtype"],
            "bytes": described["bytes"],
            "source_sha256": described["sha256"],
            "seconds": round(time.perf_counter() - started, 2),
            "shape": dg.MetadataValue.json({k: v for k, v in config.to_hf().items() if isinstance(v, int | float) and not isinstance(v, bool)}),
        }
    )


@dg.asset(group_name="model", kinds={"jax", "orbax"}, deps=[hf_checkpoint], description="hf_checkpoint converted to Flax parameters, saved with orbax.")
def jax_checkpoint(context: dg.AssetExecutionContext, models: ModelCheckpoints) -> dg.MaterializeResult:
    from cecl_pipeline.llm.config import ConfigError
    from cecl_pipeline.llm.convert import ConversionError, hf_to_jax

    try:
        report = hf_to_jax(models.hf_path(), models.jax_path(), dtype=models.dtype)
    except (ConfigError, ConversionError) as error:
        raise refuse(error) from None
    context.log.info(f"converted {report.parameters:,} parameters to {report.dtype} in {report.seconds:.1f} s → {report.out_dir}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(report.out_dir)),
            "parameters": report.parameters,
            "dtype": report.dtype,
            "bytes": report.bytes_written,
            "seconds": round(report.seconds, 2),
            "source_sha256": report.source_sha256,
        }
    )
