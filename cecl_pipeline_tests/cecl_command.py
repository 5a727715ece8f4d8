"""The installed `cecl` console script, run as its own process.

Commands that run JAX in a Dagster run are tested this way rather than through ``main()`` under
capsys: in process, pytest's own output capture was found closed afterwards, and later tests on the
same worker failed.
"""

import subprocess
import sys
from pathlib import Path

CECL = str(Path(sys.executable).with_name("cecl"))


def cecl(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``cecl ARGS`` in this test's environment (DAGSTER_HOME, data and checkpoint folders); output as text."""
    return subprocess.run([CECL, *args], capture_output=True, text=True, timeout=timeout)
