"""The bad-input corpus, second part: the files an allowance is booked on (issue 17, item 9).

A template is built once per module: 8 synthetic banks up to 2019Q2, a baseline and a severely
adverse scenario from 2019Q3, grpo_policy[2019Q3] trained small on the macro env, forward_forecasts[2019Q2]
under both scenarios, and cecl_allowance[2019Q2] booked on a good portfolio, overlay and weights file.
Each case copies the data folder, replaces one of those files with a malformed one
and runs ``cecl_allowance[2019Q2]`` as one real Dagster run. Then, whatever the case:

* the step fails with a ``dg.Failure`` whose description names the file, the row (CSV line, header
  on line 1) and the column, and says what is wrong;
* every file of the booking already accepted for 2019Q2 is byte-identical (sha256).

The rows are known by construction: each case writes its bad row after the good ones.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from cecl_pipeline.defs.runs import run_assets
from cecl_pipeline.files import sha256_file
from cecl_pipeline.settings import DataLayout
from cecl_pipeline_tests.defs.policy_inputs import MACRO_ENV, build_inputs, run_log, run_policy, store_scenarios_after, use_inputs

QUARTER = "2019Q2"
FORWARD = {"ops": {"forward_forecasts": {"config": {"samples": 2, "horizon": 2}}}}
PORTFOLIO_HEADER = "entity_id,segment,amortized_cost,remaining_life_quarters,prepayment_rate"
OVERLAY_HEADER = "segment,adjustment_bp,reason,approver"
WEIGHTS_HEADER = "scenario,weight"


@dataclass(frozen=True)
class Template:
    data: Path
    pools: pd.DataFrame  # the good portfolio's entity_id and segment
    scenarios: list[str]  # the forecast's scenario keys, sorted
    hashes: dict[str, str]  # the accepted booking's files → sha256


def _hashes(directory: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Template:
    root = tmp_path_factory.mktemp("booked")
    (root / "home").mkdir()
    with pytest.MonkeyPatch.context() as mp, dg.instance_for_test(temp_dir=str(root / "home")) as instance:
        inputs = build_inputs(root / "inputs", ["2019Q1", QUARTER])
        use_inputs(inputs, root / "checkpoints", mp)
        mp.setenv("CECL_RESULTS_DIR", str(root / "results"))
        layout = DataLayout(inputs / "data")
        scenarios = sorted(s.key for s in store_scenarios_after(layout, QUARTER))
        assert run_policy("2019Q3", instance, **MACRO_ENV).success
        made = run_assets(["forward_forecasts"], QUARTER, instance, run_config=FORWARD)
        assert made.success, run_log(instance, made)[-3000:]
        pools = pd.read_parquet(layout.forward_parquet(QUARTER))[["entity_id", "segment"]].drop_duplicates().head(4)
        write_rows(layout.portfolio_csv(QUARTER), PORTFOLIO_HEADER, [f"{e},{s},1000,6,0.05" for e, s in pools.itertuples(index=False)])
        write_rows(layout.overlays_csv(QUARTER), OVERLAY_HEADER, [f"{pools['segment'].iloc[0]},25,model limitation,CRO"])
        write_rows(layout.scenario_weights_csv(QUARTER), WEIGHTS_HEADER, [f"{scenarios[0]},0.7", f"{scenarios[1]},0.3"])
        booked = run_assets(["cecl_allowance"], QUARTER, instance)
        assert booked.success, run_log(instance, booked)[-3000:]
        return Template(layout.root, pools.reset_index(drop=True), scenarios, _hashes(layout.allowance_dir(QUARTER)))


@pytest.fixture
def layout(template, tmp_path, monkeypatch) -> DataLayout:
    """A copy of the template's data folder, with CECL_DATA_DIR pointing at it."""
    root = tmp_path / "data"
    shutil.copytree(template.data, root)
    monkeypatch.setenv("CECL_DATA_DIR", str(root))
    return DataLayout(root)


def write_rows(path: Path, header: str, rows: list[str]) -> int:
    """Write a CSV; returns the line of its last row (the header is line 1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return len(rows) + 1


@dataclass(frozen=True)
class Expect:
    path: Path
    row: int | None  # None: a whole-file problem (a missing column), named without a row
    column: str
    reason: str


def good_pools(template: Template) -> list[str]:
    return [f"{e},{s},1000,6,0.05" for e, s in template.pools.itertuples(index=False)]


Case = Callable[[DataLayout, Template], Expect]


def portfolio_case(row: str, column: str, reason: str) -> Case:
    """The good portfolio with ``row`` appended ({e} and {s}: the first pool's entity and segment)."""
    def case(layout: DataLayout, template: Template) -> Expect:
        entity, segment = template.pools.iloc[0]
        line = write_rows(layout.portfolio_csv(QUARTER), PORTFOLIO_HEADER, [*good_pools(template), row.format(e=entity, s=segment)])
        return Expect(layout.portfolio_csv(QUARTER), line, column, reason)
    return case


def overlay_case(row: str, column: str, reason: str) -> Case:
    """The good overlay file with ``row`` appended ({s}: the first pool's segment)."""
    def case(layout: DataLayout, template: Template) -> Expect:
        segment = template.pools["segment"].iloc[0]
        line = write_rows(layout.overlays_csv(QUARTER), OVERLAY_HEADER, [f"{segment},25,model limitation,CRO", row.format(s=segment)])
        return Expect(layout.overlays_csv(QUARTER), line, column, reason)
    return case


def weights_case(weights: tuple[str, str], column: str, reason: str, row: int | None = 3) -> Case:
    """A weights file giving the two scenarios ``weights`` (text, so bad values can be written)."""
    def case(layout: DataLayout, template: Template) -> Expect:
        write_rows(layout.scenario_weights_csv(QUARTER), WEIGHTS_HEADER, [f"{s},{w}" for s, w in zip(template.scenarios, weights, strict=True)])
        return Expect(layout.scenario_weights_csv(QUARTER), row, column, reason)
    return case


def weights_for_an_unknown_scenario(layout: DataLayout, template: Template) -> Expect:
    write_rows(layout.scenario_weights_csv(QUARTER), WEIGHTS_HEADER, [f"{template.scenarios[0]},0.7", "upside,0.3"])
    return Expect(layout.scenario_weights_csv(QUARTER), 3, "scenario", "not a scenario of this forecast")


def portfolio_without_life(layout: DataLayout, template: Template) -> Expect:
    rows = [",".join(r.split(",")[:3]) for r in good_pools(template)]
    write_rows(layout.portfolio_csv(QUARTER), "entity_id,segment,amortized_cost", rows)
    return Expect(layout.portfolio_csv(QUARTER), None, "remaining_life_quarters", "missing required column")


CASES: dict[str, Case] = {
    "negative_balance": portfolio_case("NEW_BANK,{s},-250,6,", "amortized_cost", "≥ 0"),
    "text_in_balance": portfolio_case("NEW_BANK,{s},1.2m,6,", "amortized_cost", "not a number"),
    "unknown_segment": portfolio_case("{e},auto_loans,500,6,", "segment", "unknown segment"),
    "missing_remaining_life": portfolio_case("NEW_BANK,{s},500,,", "remaining_life_quarters", "missing value"),
    "zero_remaining_life": portfolio_case("NEW_BANK,{s},500,0,", "remaining_life_quarters", "> 0"),
    "negative_remaining_life": portfolio_case("NEW_BANK,{s},500,-3,", "remaining_life_quarters", "> 0"),
    "duplicate_pool": portfolio_case("{e},{s},500,6,", "segment", "duplicate pool: the same entity and segment as row 2"),
    "prepayment_as_percent": portfolio_case("NEW_BANK,{s},500,6,8", "prepayment_rate", "[0, 1)"),
    "blank_entity": portfolio_case(",{s},500,6,", "entity_id", "missing value"),
    "no_remaining_life_column": portfolio_without_life,
    "overlay_without_approver": overlay_case("{s},10,late data,", "approver", "missing value"),
    "overlay_without_reason": overlay_case("{s},10,,CFO", "reason", "missing value"),
    "overlay_unknown_segment": overlay_case("auto_loans,10,new product,CFO", "segment", "unknown segment"),
    "overlay_text_in_bp": overlay_case("{s},ten,late data,CFO", "adjustment_bp", "not a number"),
    "weights_not_summing_to_one": weights_case(("0.7", "0.2"), "weight", "sum to 0.9, not 1", row=None),
    "negative_weight": weights_case(("1.3", "-0.3"), "weight", "≥ 0"),
    "weight_as_percent_text": weights_case(("70%", "30%"), "weight", "not a number", row=2),
    "weights_for_an_unknown_scenario": weights_for_an_unknown_scenario,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_bad_booking_file_is_refused_naming_file_row_and_column_and_nothing_booked_changes(name, template, layout, instance):
    expect = CASES[name](layout, template)
    result = run_assets(["cecl_allowance"], QUARTER, instance)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    description = failure.step_failure_data.user_failure_data.description
    where = f"row {expect.row}, column {expect.column!r}" if expect.row else expect.column
    assert str(expect.path) in description and where in description and expect.reason in description, description
    assert _hashes(layout.allowance_dir(QUARTER)) == template.hashes
    assert not result.asset_materializations_for_node("cecl_allowance")
