"""What an allowance was booked on: the hashes of its portfolio, overlay and scenario-weights files (light: no JAX, no pandas)."""

from cecl_pipeline.files import sha256_file
from cecl_pipeline.settings import DataLayout


def booking_inputs(layout: DataLayout, quarter: str) -> dict[str, str]:
    """The sha256 of the portfolio, overlay and scenario-weights files at ``quarter`` ("none" for a missing file)."""
    files = (("portfolio", layout.portfolio_csv(quarter)), ("overlays", layout.overlays_csv(quarter)),
             ("scenario_weights", layout.scenario_weights_csv(quarter)))
    return {f"{name}_sha256": sha256_file(path) if path.is_file() else "none" for name, path in files}
