"""Resources: where data lives. Values come from the environment unless a run overrides them."""

import dagster as dg

from cecl_pipeline.settings import DataLayout, data_layout


class DataPaths(dg.ConfigurableResource):
    """The data folder (raw drop files and processed outputs); empty means CECL_DATA_DIR or ``data/``."""

    data_dir: str = ""

    def layout(self) -> DataLayout:
        return data_layout(self.data_dir or None)
