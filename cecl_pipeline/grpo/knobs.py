"""Every training knob, once: its default, what it means, what it accepts, and the training-job field it sets.

The Dagster config of ``grpo_policy``, the CLI's ``--set`` (and its help), ``PolicyJob`` and the
trainer's config classes all read this table, so a knob cannot have two defaults. Pure Python:
the CLI and the web UI's code location import it without JAX.
"""

from __future__ import annotations

from dataclasses import dataclass

from cecl_pipeline.envs.registry import ENVS

AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "constant")
ADVANTAGE_SCALES = ("std", "none")
ERROR_UNITS = ("series", "pp")
MAX_TRAIN_QUARTERS = 12
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class KnobError(ValueError):
    """A knob name or value that cannot be used; the message names the knob and what it accepts."""


@dataclass(frozen=True)
class Knob:
    name: str
    default: object
    meaning: str
    field: str  # where it lands in the training job: "steps", "grpo.group_size", "grpo.loss.beta", "sft.steps", …
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    above_minimum: bool = False  # the minimum itself is refused (> instead of ≥)

    @property
    def kind(self) -> type:
        return type(self.default)

    def accepts(self) -> str:
        """What a value must be, in words."""
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        if self.kind is bool:
            return "true or false"
        words = "an integer" if self.kind is int else "a number"
        low = "" if self.minimum is None else f" {'>' if self.above_minimum else '≥'} {self.minimum:g}"
        high = "" if self.maximum is None else f" and ≤ {self.maximum:g}"
        return words + low + high

    def check(self, value: object) -> object:
        """``value`` when it is acceptable (an int is a fine float), else a KnobError naming the knob."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        wrong_type = type(value) is not self.kind
        out_of_range = not wrong_type and not self.choices and self.kind is not bool and (
            (self.minimum is not None and (value <= self.minimum if self.above_minimum else value < self.minimum))
            or (self.maximum is not None and value > self.maximum))
        if wrong_type or out_of_range or (self.choices and value not in self.choices):
            raise KnobError(f"{self.name}: expected {self.accepts()}, got {value!r}")
        return value

    def parse(self, text: str) -> object:
        """A command-line value (``--set name=text``) of the knob's type, checked."""
        cleaned = text.strip()
        if self.kind is bool:
            if cleaned.lower() not in _TRUE + _FALSE:
                raise KnobError(f"{self.name}: expected {self.accepts()}, got {text!r}")
            return cleaned.lower() in _TRUE
        if self.kind is str:
            return self.check(cleaned)
        try:
            value = self.kind(cleaned)
        except ValueError:
            raise KnobError(f"{self.name}: expected {self.accepts()}, got {text!r}") from None
        return self.check(value)


KNOBS: tuple[Knob, ...] = (
    Knob("env", "nco_adjust", "prompt environment (nco_adjust: the change to the challengers' combination; benchmarks/RESULTS.md)", "grpo.env",
         choices=tuple(ENVS)),
    Knob("members", 1, "ensemble size: K policies with seeds seed … seed+K−1", "members", minimum=1),
    Knob("steps", 16, "GRPO steps per member", "steps", minimum=1),
    Knob("checkpoint_every", 4, "GRPO steps between train checkpoints (the last step is always saved)", "checkpoint_every", minimum=1),
    Knob("train_quarters", 8, "prompt quarters before Q to train on", "train_quarters", minimum=1, maximum=MAX_TRAIN_QUARTERS),
    Knob("groups_per_batch", 2, "prompts per GRPO step", "grpo.groups_per_batch", minimum=1),
    Knob("group_size", 8, "completions per prompt (G)", "grpo.group_size", minimum=2),
    Knob("ppo_minibatch", 16, "completions per update; groups_per_batch × group_size must be a multiple", "grpo.ppo_minibatch", minimum=1),
    Knob("ppo_epochs", 1, "passes of updates over each rollout", "grpo.ppo_epochs", minimum=1),
    Knob("num_generation_tokens", 24, "longest completion, in tokens", "grpo.num_generation_tokens", minimum=1),
    Knob("inference_batch_per_device", 16, "completions sampled per sampler call", "grpo.inference_batch_per_device", minimum=1),
    Knob("prompt_length", 1024, "longest prompt, in tokens (a longer one is refused)", "grpo.prompt_length", minimum=1),
    Knob("temperature", 1.0, "sampling temperature of the rollouts", "grpo.temperature", minimum=0.0, above_minimum=True),
    Knob("seed", 0, "seed of member 0 (member k uses seed+k)", "grpo.seed", minimum=0),
    Knob("learning_rate", 1e-4, "peak GRPO learning rate (2e-4 collapsed the tiny default once; benchmarks/RESULTS.md)",
         "grpo.optimizer.learning_rate", minimum=0.0, above_minimum=True),
    Knob("warmup_steps", 2, "linear warm-up steps of the GRPO learning rate", "grpo.optimizer.warmup_steps", minimum=0),
    Knob("beta", 0.0, "k3 KL coefficient to the starting policy (0: no reference pass)", "grpo.loss.beta", minimum=0.0),
    Knob("epsilon_low", 0.2, "PPO ratio floor 1 − epsilon_low", "grpo.loss.epsilon_low", minimum=0.0, maximum=0.999),
    Knob("epsilon_high", 0.28, "PPO ratio ceiling 1 + epsilon_high (DAPO clip-higher)", "grpo.loss.epsilon_high", minimum=0.0),
    Knob("aggregation", "token_mean", "how token losses are averaged", "grpo.loss.aggregation", choices=AGGREGATIONS),
    Knob("advantage_scale", "std", "group advantages divided by the group's std, or not (Dr.GRPO)", "grpo.loss.advantage_scale",
         choices=ADVANTAGE_SCALES),
    Knob("drop_zero_advantage_groups", False, "leave groups whose rewards all tie out of the loss", "grpo.loss.drop_zero_advantage_groups"),
    Knob("accuracy_scale", 1.0, "error (in error_unit) at which the accuracy reward falls to 1/e", "grpo.rewards.accuracy_scale",
         minimum=0.0, above_minimum=True),
    Knob("error_unit", "series", "reward errors in the series' own scale (mean |quarterly change|, scale-free) or in pp",
         "grpo.rewards.error_unit", choices=ERROR_UNITS),
    Knob("penalty", 1.0, "reward lost for a missing, unparseable or implausible answer", "grpo.rewards.penalty", minimum=0.0),
    Knob("sft_steps", 200, "supervised warm-start steps on a cold start (0: none)", "sft.steps", minimum=0),
    Knob("sft_batch_size", 16, "prompts per warm-start step", "sft.batch_size", minimum=1),
    Knob("sft_learning_rate", 1e-3, "peak warm-start learning rate", "sft.learning_rate", minimum=0.0, above_minimum=True),
    Knob("sft_stop_loss", 0.01, "end the warm start once the mean answer-token loss of its last 10 steps is below this (0: run every step)",
         "sft.stop_loss", minimum=0.0),
    Knob("mesh_data", 1, "devices along the mesh's data axis, over which parameters are replicated", "mesh_data", minimum=1),
    Knob("mesh_fsdp", 0, "devices along the mesh's fsdp axis, over which parameters and optimizer state are sharded "
         "(0: every local device the data axis leaves)", "mesh_fsdp", minimum=0),
    Knob("wandb", True, "log to W&B (offline under results/wandb unless WANDB_API_KEY and WANDB_PROJECT are set)", "wandb"),
)
BY_NAME = {knob.name: knob for knob in KNOBS}
BY_FIELD = {knob.field: knob for knob in KNOBS}


def default(field: str) -> object:
    """The default of the knob that sets training-job ``field`` (for the config classes' own defaults)."""
    return BY_FIELD[field].default


def knob(name: str) -> Knob:
    if name not in BY_NAME:
        raise KnobError(f"unknown knob {name!r}: choose from {', '.join(BY_NAME)}")
    return BY_NAME[name]


def parse_assignments(items: list[str]) -> dict[str, object]:
    """``["steps=40", "wandb=false"]`` → checked values of the right types."""
    values = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise KnobError(f"{item!r}: expected KNOB=VALUE, e.g. steps=40 (knobs: {', '.join(BY_NAME)})")
        values[name.strip()] = knob(name.strip()).parse(text)
    return values


def resolve(values: dict[str, object]) -> dict[str, object]:
    """Every knob's value: the defaults, overridden by ``values`` (each checked; unknown names refused)."""
    return {**{k.name: k.default for k in KNOBS}, **{name: knob(name).check(value) for name, value in values.items()}}


def nested(values: dict[str, object]) -> dict:
    """Resolved knob values arranged by their fields: {"steps": 16, "grpo": {"group_size": 8, "loss": {…}}, "sft": {…}}."""
    tree: dict = {}
    for name, value in resolve(values).items():
        *parents, leaf = BY_NAME[name].field.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def help_text() -> str:
    """One line per knob, for ``--help``."""
    width = max(len(k.name) for k in KNOBS)
    return "\n".join(f"  {k.name:<{width}}  {k.meaning} (default {_shown(k.default)}; {k.accepts()})" for k in KNOBS)


def _shown(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)
