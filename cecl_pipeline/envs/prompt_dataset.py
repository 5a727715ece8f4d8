"""Build and store the prompt dataset for one target quarter from accepted panel files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from cecl_pipeline.envs.registry import ENVS, get_env
from cecl_pipeline.panel.prompts import PlainTemplate, build_prompts
from cecl_pipeline.panel.store import read_panel, read_panels, write_parquet
from cecl_pipeline.panel.windows import build_windows, history_quarters
from cecl_pipeline.settings import DEFAULT_LOOKBACK, DataLayout


@dataclass(frozen=True)
class PromptRequest:
    quarter: str
    envs: tuple[str, ...] = tuple(ENVS)
    tokenizer_dir: str | None = None
    enable_thinking: bool = False
    lookback: int = DEFAULT_LOOKBACK


@dataclass
class PromptDatasetResult:
    path: Path
    history_quarters: list[str]
    examples: int
    rows: int
    gaps: pd.DataFrame
    without_target: int
    template_name: str
    sample_prompt: str
    warnings: list[str] = field(default_factory=list)


def load_template(request: PromptRequest):
    if not request.tokenizer_dir:
        return PlainTemplate()
    from cecl_pipeline.llm.chat_template import ChatTemplate

    return ChatTemplate(request.tokenizer_dir, request.enable_thinking)


def build_prompt_dataset(layout: DataLayout, request: PromptRequest) -> PromptDatasetResult:
    envs = [get_env(name) for name in request.envs]
    target_path = layout.panel_parquet(request.quarter)
    if not target_path.exists():
        raise FileNotFoundError(f"no accepted nco_panel for {request.quarter} at {target_path}: "
                                f"materialize nco_panel for {request.quarter} and fix any failed checks")
    quarters = history_quarters(request.quarter, request.lookback)
    present = [q for q in quarters if layout.panel_parquet(q).exists()]
    warnings = []
    if missing := sorted(set(quarters) - set(present)):
        warnings.append(f"no accepted nco_panel for {', '.join(missing)}: series needing those quarters count as gaps")
    windows = build_windows(read_panels([layout.panel_parquet(q) for q in present]), read_panel(target_path), request.quarter, request.lookback)
    if len(windows.gaps):
        warnings.append(f"{len(windows.gaps)} series have gaps in {quarters[0]}–{quarters[-1]} and get no prompt (listed in the metadata)")
    macro = load_macro(layout, envs)
    template = load_template(request)
    table = build_prompts(windows, envs, macro, template)
    path = write_parquet(table, layout.prompts_parquet(request.quarter))
    return PromptDatasetResult(
        path=path,
        history_quarters=quarters,
        examples=len(windows),
        rows=table.num_rows,
        gaps=windows.gaps,
        without_target=windows.without_target,
        template_name=template.name,
        sample_prompt=table.column("prompt")[0].as_py() if table.num_rows else "(no examples)",
        warnings=warnings,
    )


def load_macro(layout: DataLayout, envs) -> pd.DataFrame | None:
    """The macro table when one of ``envs`` reads it, else None; a FileNotFoundError names the envs and the missing file."""
    readers = [env.name for env in envs if env.needs_macro]
    if not readers:
        return None
    if not layout.macro_parquet.exists():
        raise FileNotFoundError(f"{', '.join(readers)} needs the macro table: materialize macro_history first (expected {layout.macro_parquet})")
    return pq.read_table(layout.macro_parquet).to_pandas()
