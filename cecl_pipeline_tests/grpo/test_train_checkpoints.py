"""TrainCheckpoints: exact resume of a tiny real training loop, retention, and survival of a SIGKILL mid-save."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cecl_pipeline.grpo.train_checkpoints import TrainCheckpoints
from cecl_pipeline.llm.config import NAMED_CONFIGS
from cecl_pipeline.llm.model import Qwen3, init_params

CONFIG = NAMED_CONFIGS["tiny"].replace(num_hidden_layers=1, vocab_size=256)
OPTIMIZER = optax.adamw(1e-3)
N_ROWS, BATCH, SEQ = 8, 2, 8  # 4 batches an epoch, so 6 steps cross an epoch boundary
TRAIN_CONFIG = {"model": "tiny-1layer", "learning_rate": 1e-3, "batch": BATCH}


def dataset(order_seed: int, epoch: int) -> np.ndarray:
    """The token rows in this epoch's shuffled order."""
    rows = np.random.default_rng(order_seed).integers(0, CONFIG.vocab_size, (N_ROWS, SEQ), dtype=np.int32)
    return rows[np.random.default_rng([order_seed, epoch]).permutation(N_ROWS)]


def next_batch(cursor: dict) -> tuple[np.ndarray, dict]:
    """The batch at the cursor and the advanced cursor."""
    rows = dataset(cursor["order_seed"], cursor["epoch"])[cursor["position"]:cursor["position"] + BATCH]
    position = cursor["position"] + BATCH
    if position >= N_ROWS:
        return rows, {**cursor, "epoch": cursor["epoch"] + 1, "position": 0}
    return rows, {**cursor, "position": position}


@jax.jit
def train_step(state: dict, rows: jax.Array) -> dict:
    """One adamw step on the mean logit of the batch, with 1/4 of its tokens replaced at random by the step's key."""
    rng, noise_key = jax.random.split(state["rng"])
    replace_key, token_key = jax.random.split(noise_key)
    random_tokens = jax.random.randint(token_key, rows.shape, 0, CONFIG.vocab_size, jnp.int32)
    tokens = jnp.where(jax.random.bernoulli(replace_key, 0.25, rows.shape), random_tokens, rows)
    positions = jnp.broadcast_to(jnp.arange(SEQ, dtype=jnp.int32), tokens.shape)

    def loss(params):
        logits, _ = Qwen3(CONFIG).apply({"params": params}, tokens, positions, jnp.ones(tokens.shape, bool))
        return logits.mean()

    grads = jax.grad(loss)(state["params"])
    updates, opt_state = OPTIMIZER.update(grads, state["opt_state"], state["params"])
    return {"params": optax.apply_updates(state["params"], updates), "opt_state": opt_state, "rng": rng, "step": state["step"] + 1}


def fresh_state() -> tuple[dict, dict]:
    params = init_params(CONFIG, seed=0)
    state = {"params": params, "opt_state": OPTIMIZER.init(params), "rng": jax.random.key(42), "step": 0}
    return state, {"epoch": 0, "position": 0, "order_seed": 7}


def train(state: dict, cursor: dict, steps: int) -> tuple[dict, dict]:
    for _ in range(steps):
        rows, cursor = next_batch(cursor)
        state = train_step(state, rows)
    return state, cursor


def leaves_equal(a, b) -> bool:
    """Same tree structure and every leaf bitwise equal (typed keys compared by their key data)."""
    a, b = jax.tree.map(_raw, a), jax.tree.map(_raw, b)
    if jax.tree.structure(a) != jax.tree.structure(b):
        return False
    return all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=False))


def _raw(leaf) -> np.ndarray:
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
    return np.asarray(leaf)


@pytest.fixture(scope="module")
def straight_run():
    """Six steps without stopping: the reference every resume must reproduce bit for bit."""
    return train(*fresh_state(), steps=6)


def save_after_three(directory: Path) -> None:
    state, cursor = train(*fresh_state(), steps=3)
    with TrainCheckpoints(directory) as checkpoints:
        checkpoints.save(int(state["step"]), state, {"cursor": cursor, "config": TRAIN_CONFIG})


def restore_fresh(directory: Path) -> tuple[dict, dict, dict]:
    """(state, cursor, config) restored from disk into templates built from scratch, as a new process would."""
    template, _ = fresh_state()
    with TrainCheckpoints(directory) as checkpoints:
        state, meta = checkpoints.restore(template)
    return state, meta["cursor"], meta["config"]


def test_resume_is_bitwise_exact(tmp_path, straight_run):
    save_after_three(tmp_path)
    state, cursor, config = restore_fresh(tmp_path)
    assert state["step"] == 3 and config == TRAIN_CONFIG
    assert cursor == {"epoch": 0, "position": 6, "order_seed": 7}
    assert jax.random.key_impl(state["rng"]) == jax.random.key_impl(jax.random.key(0))  # a typed key again

    resumed_state, resumed_cursor = train(state, cursor, steps=3)
    expected_state, expected_cursor = straight_run
    assert resumed_cursor == expected_cursor == {"epoch": 1, "position": 4, "order_seed": 7}
    assert leaves_equal(resumed_state["params"], expected_state["params"])
    assert leaves_equal(resumed_state["opt_state"], expected_state["opt_state"])
    assert leaves_equal(resumed_state["rng"], expected_state["rng"])
    assert resumed_state["step"] == expected_state["step"] == 6


@pytest.mark.parametrize("perturb", ["rng", "cursor", "opt_state"])
def test_resume_with_a_perturbed_piece_diverges(tmp_path, straight_run, perturb):
    """The exactness test has teeth: lose any one saved piece and the params come out different."""
    save_after_three(tmp_path)
    state, cursor, _ = restore_fresh(tmp_path)
    if perturb == "rng":
        state["rng"] = jax.random.key(43)
    elif perturb == "cursor":
        cursor = {**cursor, "position": cursor["position"] - BATCH}
    else:
        state["opt_state"] = OPTIMIZER.init(state["params"])
    resumed_state, _ = train(state, cursor, steps=3)
    assert not leaves_equal(resumed_state["params"], straight_run[0]["params"])


def test_max_to_keep_leaves_only_the_newest(tmp_path):
    with TrainCheckpoints(tmp_path, max_to_keep=2) as checkpoints:
        for step in range(1, 6):
            checkpoints.save(step, {"x": np.full(3, step, np.float32)}, {"step": step})
        assert checkpoints.all_steps() == [4, 5]
    assert sorted(os.listdir(tmp_path)) == ["4", "5"]
    with TrainCheckpoints(tmp_path) as checkpoints:
        state, meta = checkpoints.restore({"x": np.zeros(3, np.float32)}, step=4)
    assert np.array_equal(state["x"], np.full(3, 4, np.float32)) and meta == {"step": 4}


def test_save_every_skips_steps_between(tmp_path):
    with TrainCheckpoints(tmp_path, save_every=2) as checkpoints:
        saved = [checkpoints.save(step, {"x": np.zeros(1)}, {}) for step in range(1, 6)]
        assert checkpoints.all_steps() == [2, 4]
    assert saved == [False, True, False, True, False]


def test_restore_from_an_empty_directory_says_so(tmp_path):
    with TrainCheckpoints(tmp_path) as checkpoints:
        assert checkpoints.latest_step() is None
        with pytest.raises(FileNotFoundError, match="no committed checkpoint"):
            checkpoints.restore({"x": np.zeros(1)})


# The child saves step 1, then saves a ~300 MB step 2 (about 2 s on this disk); the
# parent kills it once orbax's temporary step-2 directory exists, i.e. while step 2 is being written.
KILLED_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    import jax, numpy as np
    from cecl_pipeline.grpo.train_checkpoints import TrainCheckpoints

    directory = Path(sys.argv[1])
    checkpoints = TrainCheckpoints(directory)
    small = {"w": np.arange(6, dtype=np.float32), "rng": jax.random.key(5), "step": 1}
    checkpoints.save(1, small, {"cursor": {"epoch": 0, "position": 2, "order_seed": 7}})
    big = {**small, "w": np.random.default_rng(0).standard_normal(75_000_000, dtype=np.float32), "step": 2}
    checkpoints.save(2, big, {"cursor": {"epoch": 0, "position": 4, "order_seed": 7}})
""")


def kill_mid_save(directory: Path, script: Path) -> bool:
    """Run the child and SIGKILL it during the step-2 save; True if it died with step 2 uncommitted."""
    root = str(Path(__file__).parents[2])  # so the child imports this checkout even where it is not installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, str(script), str(directory)], cwd=root, env=env)
    try:
        deadline = time.monotonic() + 60
        while not list(directory.glob("2.orbax-checkpoint-tmp*")):
            assert child.poll() is None, "child exited before the step-2 save began"
            assert time.monotonic() < deadline, "step-2 temporary directory never appeared"
            time.sleep(0.005)
        time.sleep(0.2)  # let it get well into writing the array data
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    return child.returncode == -signal.SIGKILL and not (directory / "2").exists()


def test_sigkill_during_save_leaves_previous_checkpoint_loadable(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(KILLED_CHILD)
    # A slow machine could only make the kill land earlier in the save, never after it; retries guard the odd case.
    for attempt in range(3):
        directory = tmp_path / f"run{attempt}"
        if kill_mid_save(directory, script):
            break
    else:
        pytest.fail("the child finished its step-2 save before every SIGKILL")
    assert list(directory.glob("2.orbax-checkpoint-tmp*")), "the kill should leave the half-written step behind"

    template = {"w": np.zeros(6, np.float32), "rng": jax.random.key(0), "step": 0}
    with TrainCheckpoints(directory, read_only=True) as reader:
        assert reader.latest_step() == 1 and reader.all_steps() == [1]
        state, meta = reader.restore(template)
    assert np.array_equal(state["w"], np.arange(6, dtype=np.float32)) and state["step"] == 1
    assert leaves_equal(state["rng"], jax.random.key(5))
    assert meta == {"cursor": {"epoch": 0, "position": 2, "order_seed": 7}}

    # A writer reopening the directory can save step 2 again, and the partial step is gone by then.
    with TrainCheckpoints(directory) as writer:
        writer.save(2, {**template, "step": 2}, {})
        assert writer.all_steps() == [1, 2]
    assert not list(directory.glob("*.orbax-checkpoint-tmp*"))
