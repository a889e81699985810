import pytest
import torch

from netpress import ui
from netpress.data import load_split


@pytest.fixture(scope="session")
def digits():
    return load_split("digits")


@pytest.fixture(autouse=True)
def _quiet_and_threads():
    ui.set_quiet(True)
    torch.set_num_threads(2)
    yield
