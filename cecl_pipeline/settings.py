"""Where the pipeline reads and writes, resolved from the environment with project-local defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The embedded default: target quarters the main command builds, and the synthetic panel behind them.
# The synthetic panel's last three quarters (three, not four, for main.sh's 10-minute budget); the forward forecast starts after them.
DEFAULT_TARGET_QUARTERS = ("2024Q2", "2024Q4")
DEFAULT_LOOKBACK = 12
DEFAULT_TRAIN_QUARTERS = 8  # prompt quarters before Q that grpo_policy[Q] trains on
DEFAULT_HORIZON = 4  # quarters the forward forecast reaches past its origin (the reasonable-and-supportable horizon)
DEFAULT_PATHS = 8  # sampled forward paths per series and policy member
DEFAULT_REVERSION_QUARTERS = 4  # after the horizon, straight-line reversion to the long-run mean over this many quarters


@dataclass(frozen=True)
class DataLayout:
    """The on-disk layout under CECL_DATA_DIR: raw drop files in, processed Parquet out."""

    root: Path

    @property
    def raw_nco_dir(self) -> Path:
        return self.root / "raw" / "nco"

    @property
    def macro_csv(self) -> Path:
        return self.root / "raw" / "macro.csv"

    @property
    def scenarios_dir(self) -> Path:
        """Imported macro scenarios, one ``<key>.csv`` each (``cecl import-scenario``)."""
        return self.root / "raw" / "scenarios"

    def portfolio_csv(self, quarter: str) -> Path:
        """The pools the allowance at quarter-end Q is booked on (``panel.portfolio``)."""
        return self.root / "raw" / "portfolio" / f"{quarter}.csv"

    def scenario_weights_csv(self, quarter: str) -> Path:
        """The probability weight of each scenario forecast at quarter-end Q (``panel.scenario_weights``)."""
        return self.root / "raw" / "scenario_weights" / f"{quarter}.csv"

    def overlays_csv(self, quarter: str) -> Path:
        """Qualitative adjustments at quarter-end Q (``panel.overlays``); optional."""
        return self.root / "raw" / "overlays" / f"{quarter}.csv"

    def allowance_dir(self, quarter: str) -> Path:
        """cecl_allowance[Q]: pools.parquet, overlays.parquet, paths.parquet, the roll-forward's input next quarter."""
        return self.processed_dir / "allowance" / quarter

    @property
    def processed_dir(self) -> Path:
        return self.root / "processed"

    @property
    def rejected_dir(self) -> Path:
        return self.processed_dir / "rejected"

    def panel_parquet(self, quarter: str) -> Path:
        return self.processed_dir / "nco_panel" / f"{quarter}.parquet"

    def rejected_panel_parquet(self, quarter: str) -> Path:
        return self.rejected_dir / "nco_panel" / f"{quarter}.parquet"

    def prompts_parquet(self, quarter: str) -> Path:
        return self.processed_dir / "nco_prompts" / f"{quarter}.parquet"

    def forecasts_parquet(self, quarter: str) -> Path:
        """walkforward_forecasts[Q]: one row per series and model (the policy and each baseline)."""
        return self.processed_dir / "walkforward" / quarter / "forecasts.parquet"

    def completions_parquet(self, quarter: str) -> Path:
        """The audit trail of walkforward_forecasts[Q]: every prompt, completion and parsed value."""
        return self.processed_dir / "walkforward" / quarter / "completions.parquet"

    def forecast_files(self) -> list[Path]:
        """forecasts.parquet of every quarter evaluated so far."""
        return sorted((self.processed_dir / "walkforward").glob("*/forecasts.parquet"))

    def forward_parquet(self, origin: str) -> Path:
        """forward_forecasts[Q]: per series, model and quarter Q+1 … Q+H, the forecast made at origin Q."""
        return self.processed_dir / "forward" / origin / "forecasts.parquet"

    def forward_paths_parquet(self, origin: str) -> Path:
        """The audit trail of forward_forecasts[Q]: every sampled path, step by step, with its prompt and completion."""
        return self.processed_dir / "forward" / origin / "paths.parquet"

    def forward_files(self) -> list[Path]:
        """forecasts.parquet of every forward forecast made so far."""
        return sorted((self.processed_dir / "forward").glob("*/forecasts.parquet"))

    @property
    def macro_parquet(self) -> Path:
        return self.processed_dir / "macro_history.parquet"


def data_dir() -> Path:
    return Path(os.environ.get("CECL_DATA_DIR") or PROJECT_ROOT / "data").resolve()


def checkpoint_dir() -> Path:
    return Path(os.environ.get("CECL_CHECKPOINT_DIR") or PROJECT_ROOT / "checkpoints").resolve()


def results_dir() -> Path:
    """Reports and run logs (W&B's offline files among them)."""
    return Path(os.environ.get("CECL_RESULTS_DIR") or PROJECT_ROOT / "results").resolve()


def default_dagster_home() -> Path:
    return PROJECT_ROOT / ".dagster_home"


def instance_yaml() -> Path:
    """The project's instance settings for this environment: on PostgreSQL when DAGSTER_PG_URL is set, else SQLite."""
    return PROJECT_ROOT / ("dagster-postgres.yaml" if os.environ.get("DAGSTER_PG_URL") else "dagster.yaml")


def data_layout(root: Path | str | None = None) -> DataLayout:
    return DataLayout(Path(root).resolve() if root else data_dir())
