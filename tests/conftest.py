import atexit
import os
import shutil
import tempfile

# Tools write caches and telemetry ids into the home folder (matplotlib's font cache,
# OpenVINO's ~/intel, Hugging Face's ~/.cache): give the test run a throwaway home.
_HOME = tempfile.mkdtemp(prefix="netpress-test-home-")
os.environ["HOME"] = _HOME
os.environ["MPLCONFIGDIR"] = os.path.join(_HOME, "mpl")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["NETPRESS_RUNS"] = os.path.join(_HOME, "runs")  # default run folders of commands
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)

import pytest  # noqa: E402
import torch  # noqa: E402

from netpress import ui  # noqa: E402
from netpress.data import load_split  # noqa: E402


@pytest.fixture(scope="session")
def digits():
    return load_split("digits")


@pytest.fixture(autouse=True)
def _quiet_and_threads():
    ui.set_quiet(True)
    torch.set_num_threads(2)
    yield
