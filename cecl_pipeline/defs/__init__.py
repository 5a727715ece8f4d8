"""The Dagster layer: assets, checks and resources that wire the pure packages into the graph."""
