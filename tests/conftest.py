import pytest
import torch

# The tests use small models, for which one thread is fastest and least sensitive to a busy box.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
