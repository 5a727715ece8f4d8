"""Training checkpoints for GRPO: params, optimizer state, RNG and step as a pytree, data cursor and config as JSON.

Each step is one orbax step directory ``<directory>/<step>/{state,meta}``. Orbax writes it under a
``<step>.orbax-checkpoint-tmp*`` name and renames it into place when complete, so a process killed
mid-save leaves only a temporary directory, which is never listed as a step and which the next
writer on the directory sweeps away before its first save. Saves are synchronous: when ``save`` returns, the step is on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

STATE, META = "state", "meta"


class TrainCheckpoints:
    """``save(step, state, meta)`` / ``restore(template_state, step=None) -> (state, meta)`` over an orbax CheckpointManager.

    ``state`` is any pytree of arrays (typically ``{"params", "opt_state", "rng", "step"}``); typed PRNG
    keys in it are stored as their raw key data and rewrapped on restore. ``meta`` is a JSON-able dict
    (data cursor, training config).
    """

    def __init__(self, directory: Path | str, max_to_keep: int | None = 3, save_every: int = 1, read_only: bool = False):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            create=not read_only,
            read_only=read_only,
            # A writer sweeps the tmp dirs of saves that were killed; a reader must not touch them.
            cleanup_tmp_directories=not read_only,
            # Synchronous: a step that save() returned from is committed, so a kill after it loses nothing.
            enable_async_checkpointing=False,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)
        self.save_every = save_every

    def save(self, step: int, state: Any, meta: dict, force: bool = False) -> bool:
        """Save ``state`` and ``meta`` as ``step`` if ``save_every`` (or ``force``) says so; True if saved."""
        # We decide ourselves: orbax's own interval policy also saves whatever step comes first (e.g. step 1).
        if not (force or step % self.save_every == 0):
            return False
        args = ocp.args.Composite(**{STATE: ocp.args.StandardSave(_keys_to_data(state)), META: ocp.args.JsonSave(meta)})
        saved = self._manager.save(step, args=args, force=True)
        self._manager.wait_until_finished()
        return saved

    def latest_step(self) -> int | None:
        """The newest committed step, or None when there is none."""
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """Every committed step on disk, oldest first."""
        return sorted(self._manager.all_steps())

    def restore(self, template_state: Any, step: int | None = None) -> tuple[Any, dict]:
        """(state, meta) of ``step`` (default: the latest), shaped and typed like ``template_state``."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"{self.directory}: no committed checkpoint to restore")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _keys_to_data(template_state))
        args = ocp.args.Composite(**{STATE: ocp.args.StandardRestore(abstract), META: ocp.args.JsonRestore()})
        restored = self._manager.restore(step, args=args)
        return _data_to_keys(restored[STATE], template_state), dict(restored[META])

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> TrainCheckpoints:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_typed_key(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _keys_to_data(tree: Any) -> Any:
    # Orbax cannot serialise the opaque key dtype; its uint32 key data round-trips exactly.
    return jax.tree.map(lambda leaf: jax.random.key_data(leaf) if _is_typed_key(leaf) else leaf, tree)


def _data_to_keys(tree: Any, template: Any) -> Any:
    """Rewrap raw key data as typed keys wherever the template holds a typed key, with the template's impl."""
    return jax.tree.map(
        lambda leaf, like: jax.random.wrap_key_data(leaf, impl=jax.random.key_impl(like)) if _is_typed_key(like) else leaf,
        tree, template)
