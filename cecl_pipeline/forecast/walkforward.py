"""One quarter of the walk-forward: the policy's sampled forecasts and the baselines for every series of nco_prompts[Q].

The policy's point forecast for a series is the median of its parsed samples, and for an ensemble
the median across members' medians; its 10/50/90 quantiles and CRPS come from all parsed samples
pooled. Two Parquet files are written, each atomically:

- ``completions.parquet``, the audit trail: every prompt as the model read it, every raw completion,
  its parsed value, the member, model id and checkpoint hash;
- ``forecasts.parquet``, written last: one row per series and model (the long table of
  ``forecast.metrics``), with the policy's parse rate.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from cecl_pipeline.challengers.names import CHALLENGERS
from cecl_pipeline.forecast.baselines import baseline_forecasts
from cecl_pipeline.forecast.metrics import crps_from_samples, forecast_rows, metrics_table
from cecl_pipeline.forecast.policy_samples import SampleSettings, checkpoint_hash, sample_checkpoint
from cecl_pipeline.grpo.provenance import assert_not_trained_on
from cecl_pipeline.panel.store import write_frame, write_parquet

POLICY_MODEL = "grpo_policy"
EXAMPLE_COLUMNS = ["prompt_id", "env", "entity_id", "segment", "target_quarter", "history_quarters", "history", "target", "system", "user"]


@dataclass(frozen=True)
class Checkpoint:
    """One policy to sample from: a directory ``load_jax_checkpoint`` reads, and the id reports show for it."""

    path: Path
    model_id: str


@dataclass
class QuarterForecast:
    quarter: str
    forecasts: pd.DataFrame
    forecasts_path: Path
    completions_path: Path
    completions: int
    parse_rate: float
    seconds: float

    def metrics(self) -> pd.DataFrame:
        return metrics_table(self.forecasts)


def load_examples(prompts_path: Path, env: str, quarter: str) -> pd.DataFrame:
    """The ``env`` rows of nco_prompts[Q]; every one must target Q."""
    if not prompts_path.is_file():
        raise FileNotFoundError(f"no nco_prompts for {quarter} at {prompts_path}: materialize nco_prompts for {quarter} first")
    examples = pd.read_parquet(prompts_path, columns=EXAMPLE_COLUMNS)
    examples = examples[examples["env"] == env].sort_values("prompt_id", kind="stable").reset_index(drop=True)
    if examples.empty:
        raise ValueError(f"{prompts_path}: no {env} prompts; rebuild nco_prompts for {quarter} with env {env}")
    wrong = examples.loc[examples["target_quarter"] != quarter, "prompt_id"]
    if len(wrong):
        raise ValueError(f"{prompts_path}: row {wrong.iloc[0]} targets {examples.loc[wrong.index[0], 'target_quarter']}, not {quarter}")
    return examples


def forecast_quarter(quarter: str, prompts_path: Path, checkpoints: list[Checkpoint], env: str, settings: SampleSettings,
                     forecasts_path: Path, completions_path: Path, baselines: tuple[str, ...] = CHALLENGERS,
                     log: Callable[[str], None] = print) -> QuarterForecast:
    """Sample every checkpoint on nco_prompts[Q], add the baselines, write both Parquet files."""
    if not checkpoints:
        raise ValueError(f"no policy checkpoints to forecast {quarter} with")
    for checkpoint in checkpoints:
        assert_not_trained_on(checkpoint.path, [quarter])
    started = time.perf_counter()
    examples = load_examples(prompts_path, env, quarter)
    log(f"{quarter}: {len(examples)} {env} prompts × {settings.samples} samples × {len(checkpoints)} member(s)")
    samples = pd.concat([_member_samples(c, k, examples, env, quarter, settings, log) for k, c in enumerate(checkpoints)], ignore_index=True)
    forecasts = pd.concat([policy_forecasts(examples, samples, quarter), baseline_forecasts(examples, quarter, baselines)], ignore_index=True)
    write_parquet(audit_table(examples, samples, quarter), completions_path)
    write_frame(forecasts, forecasts_path)
    return QuarterForecast(quarter, forecasts, forecasts_path, completions_path, len(samples), float(samples["parsed"].notna().mean()),
                           time.perf_counter() - started)


def _member_samples(checkpoint: Checkpoint, member: int, examples: pd.DataFrame, env: str, quarter: str, settings: SampleSettings,
                    log: Callable[[str], None]) -> pd.DataFrame:
    frame = sample_checkpoint(checkpoint.path, examples, env, quarter, settings, member, log)
    return frame.assign(member=member, model_id=checkpoint.model_id, checkpoint_hash=checkpoint_hash(checkpoint.path))


def policy_forecasts(examples: pd.DataFrame, samples: pd.DataFrame, quarter: str) -> pd.DataFrame:
    """The policy's rows of the long forecasts table, from its samples (NaN point where none parsed)."""
    member_medians = samples.groupby(["prompt_id", "member"])["parsed"].median().groupby("prompt_id").median()
    pooled = samples.pivot(index="prompt_id", columns=["member", "sample"], values="parsed").reindex(examples["prompt_id"])
    values = pooled.to_numpy(float)
    actual = examples["target"].to_numpy(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows where nothing parsed are NaN by design
        q10, q50, q90 = np.nanquantile(values, [0.1, 0.5, 0.9], axis=1)
    point = member_medians.reindex(examples["prompt_id"]).to_numpy(float)
    return forecast_rows(examples, quarter, POLICY_MODEL, point, (q10, q50, q90), crps_from_samples(values, actual), fallback=False,
                         parse_rate=(~np.isnan(values)).mean(axis=1))


def audit_table(examples: pd.DataFrame, samples: pd.DataFrame, quarter: str) -> pa.Table:
    """Every completion beside its prompt, the realised target and which checkpoint wrote it."""
    keys = examples[["prompt_id", "env", "entity_id", "segment", "history", "target"]]
    audit = samples.merge(keys, on="prompt_id", how="left", validate="many_to_one").assign(quarter=quarter)
    columns = ["quarter", "prompt_id", "env", "entity_id", "segment", "history", "target", "model_id", "checkpoint_hash", "member",
               "sample", "model_input", "completion", "completion_tokens", "parsed"]
    return pa.Table.from_pandas(audit[columns], preserve_index=False).replace_schema_metadata(None)
