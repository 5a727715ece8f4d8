# Short commands for the pipeline's tasks. `just --list` shows them.
# Runs go to the Dagster instance in .dagster_home/, so they show up in the web UI.

set dotenv-load := false

cecl := ".venv/bin/cecl"

# create or update .venv from uv.lock
setup:
    bash scripts/setup.sh

# the main job on the embedded default
run *args:
    {{cecl}} run {{args}}

# the test suite (slow cases included)
test *args:
    bash scripts/test.sh {{args}}

# the web UI and daemon on 127.0.0.1:3000
ui port="3000":
    {{cecl}} ui --port {{port}}

# HF → JAX: the embedded default model, or an HF Qwen3 directory (just convert-model --hf-dir DIR)
convert-model *args:
    {{cecl}} convert-model {{args}}

# split a history file (long, FRED or macro CSV) into quarterly drop files
import-history file *args:
    {{cecl}} import-history {{file}} {{args}}

# check a Fed supervisory scenario table and store it by name under data/raw/scenarios/
import-scenario file:
    {{cecl}} import-scenario {{file}}

# ingest and validate one quarter or a range, e.g. just ingest 2019Q1 2019Q4
ingest first last="":
    {{cecl}} materialize --select nco_panel --first {{first}} {{ if last != "" { "--last " + last } else { "" } }}

# build the prompt datasets for a quarter or a range
prompts first last="":
    {{cecl}} materialize --select nco_panel,nco_prompts --first {{first}} {{ if last != "" { "--last " + last } else { "" } }}

# train grpo_policy for a quarter or a range, e.g. just train 2023Q1 2023Q4 --set members=3
train first last="" *args:
    {{cecl}} train --first {{first}} {{ if last != "" { "--last " + last } else { "" } }} {{args}}

# one training task per env (and the ensemble), e.g. just train-nco 2023Q1 2023Q4, just train-nco-ensemble 2023Q1 "" --set members=5
train-nco first last="" *args:
    {{cecl}} train-nco --first {{first}} {{ if last != "" { "--last " + last } else { "" } }} {{args}}

train-nco-enhanced first last="" *args:
    {{cecl}} train-nco-enhanced --first {{first}} {{ if last != "" { "--last " + last } else { "" } }} {{args}}

train-nco-single first last="" *args:
    {{cecl}} train-nco-single --first {{first}} {{ if last != "" { "--last " + last } else { "" } }} {{args}}

train-nco-combined first last="" *args:
    {{cecl}} train-nco-combined --first {{first}} {{ if last != "" { "--last " + last } else { "" } }} {{args}}

train-nco-adjust first last="" *args:
    {{cecl}} train-nco-adjust --first {{first}} {{ if last != "" { "--last " + last } else { "" } }} {{args}}

train-nco-ensemble first last="" *args:
    {{cecl}} train-nco-ensemble --first {{first}} {{ if last != "" { "--last " + last } else { "" } }} {{args}}

# continue an interrupted training from its newest train checkpoints
resume-training first last="" *args:
    {{cecl}} resume-training --first {{first}} {{ if last != "" { "--last " + last } else { "" } }} {{args}}

# follow the running training's steps
monitor *args:
    {{cecl}} monitor {{args}}

# JAX devices and memory
gpu-status:
    {{cecl}} gpu-status

# keep the newest N quarters of policies (dry run unless --yes), e.g. just clean-old-checkpoints 4 --yes
clean-old-checkpoints keep="4" *args:
    {{cecl}} clean-old-checkpoints --keep {{keep}} {{args}}

# walk-forward forecasts for a quarter or a range, then the report, e.g. just eval-nco 2023Q1 2023Q4
eval-nco first last="":
    {{cecl}} eval-nco --first {{first}} {{ if last != "" { "--last " + last } else { "" } }}

# forecast the quarters after a quarter-end (no actuals needed), e.g. just forecast 2024Q4 --horizon 8
forecast origin *args:
    {{cecl}} forecast --origin {{origin}} {{args}}

# book the CECL allowance at a quarter-end, e.g. just allowance 2024Q4 --reversion-quarters 0
allowance quarter *args:
    {{cecl}} allowance --quarter {{quarter}} {{args}}

# what the policy serving a quarter answers to its first prompts, with rewards, e.g. just debug-nco 2023Q1 --samples 4
debug-nco quarter *args:
    {{cecl}} debug-nco --first {{quarter}} {{args}}

# one checkpoint over a quarter range, e.g. just validate-nco checkpoints/grpo/…/2019Q1/member-0 2019Q1 2023Q4
validate-nco checkpoint start_date end_date *args:
    {{cecl}} validate-nco {{checkpoint}} --start-date {{start_date}} --end-date {{end_date}} {{args}}

# the real-data walk-forward (Fed charge-off rates, 2010Q1–2015Q4) end to end on CPU
walkforward-real *args:
    .venv/bin/python benchmarks/walkforward_real.py {{args}}

# SFT warm-start then GRPO on the default, with a held-out learning curve
learning-curve *args:
    .venv/bin/python benchmarks/learning_curve.py {{args}}

# the ingestion benchmark (5,000 banks × 4 segments × 60 quarters)
bench-ingest *args:
    .venv/bin/python benchmarks/ingest.py {{args}}

# one GRPO step, ours vs TRL's GRPOTrainer side by side (TRL: bash scripts/setup.sh --bench-reference)
bench-grpo *args:
    .venv/bin/python benchmarks/grpo_step.py {{args}}
