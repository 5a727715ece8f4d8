"""The code location Dagster loads (``-m cecl_pipeline.definitions``, workspace.yaml): the graph built in ``defs/graph.py``."""

from cecl_pipeline.defs.graph import defs

__all__ = ["defs"]
