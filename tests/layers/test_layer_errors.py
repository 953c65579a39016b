"""Bad input: a ValueError or TypeError naming the expected and the actual value."""

import pytest
import torch

import rnnkit
from rnnkit import ElmanCell, GRUCell, JordanCell, LSTMCell, Recurrent


@pytest.fixture
def lstm():
    return rnnkit.LSTM(3, 4, num_layers=2)


def test_wrong_feature_size(lstm):
    with pytest.raises(
        ValueError, match=r"expected 3 features per step, got x of shape \(2, 5, 7\)"
    ):
        lstm(torch.randn(2, 5, 7))


def test_two_d_input(lstm):
    with pytest.raises(ValueError, match=r"expected x of shape \(B, T, 3\).*2-D shape \(5, 3\)"):
        lstm(torch.randn(5, 3))


def test_not_a_tensor(lstm):
    with pytest.raises(TypeError, match="must be a Tensor"):
        lstm([[1.0, 2.0, 3.0]])


@pytest.mark.parametrize(
    "lengths,msg",
    [
        ([6, 2], r"lengths must be in \[1, T=5\], got values from 2 to 6"),
        ([0, 2], r"lengths must be in \[1, T=5\], got values from 0 to 2"),
        ([-1, 2], r"got values from -1"),
        ([2, 2, 2], r"lengths must have shape \(2,\)"),
        ([[2, 2]], r"lengths must have shape \(2,\)"),
    ],
)
def test_bad_lengths(lstm, lengths, msg):
    with pytest.raises(ValueError, match=msg):
        lstm(torch.randn(2, 5, 3), lengths=torch.tensor(lengths))


def test_float_lengths(lstm):
    with pytest.raises(TypeError, match="lengths must be integers"):
        lstm(torch.randn(2, 5, 3), lengths=torch.tensor([2.0, 3.0]))


def test_mismatched_state(lstm):
    h, c = torch.zeros(2, 2, 4), torch.zeros(2, 2, 4)
    with pytest.raises(ValueError, match=r"expected state of shape \(2, 3, 4\), got \(2, 2, 4\)"):
        lstm(torch.randn(3, 5, 3), (h, c))
    with pytest.raises(ValueError, match="expected a state of 2 tensor"):
        lstm(torch.randn(2, 5, 3), torch.zeros(2, 2, 4))
    gru = rnnkit.GRU(3, 4)
    with pytest.raises(ValueError, match=r"expected state of shape \(1, 2, 4\), got \(1, 2, 5\)"):
        gru(torch.randn(2, 5, 3), torch.zeros(1, 2, 5))


def test_cell_step_errors():
    cell = LSTMCell(3, 4)
    with pytest.raises(ValueError, match=r"expected x_t of shape \(B, 3\), got \(2, 5\)"):
        cell(torch.randn(2, 5), cell.init_state(2))
    with pytest.raises(ValueError, match=r"expected state c of shape \(2, 4\), got \(2, 3\)"):
        cell(torch.randn(2, 3), (torch.zeros(2, 4), torch.zeros(2, 3)))
    with pytest.raises(ValueError, match="state must be a tuple"):
        cell(torch.randn(2, 3), torch.zeros(2, 4))


@pytest.mark.parametrize(
    "make,msg",
    [
        (lambda: ElmanCell(3, 0), "hidden_size must be a positive integer, got 0"),
        (lambda: GRUCell(-1, 4), "input_size must be a positive integer, got -1"),
        (lambda: ElmanCell(3, 4, activation="softmax"), "activation must be one of"),
        (lambda: ElmanCell(3, 4, init="xavier"), "init must be one of"),
        (lambda: LSTMCell(3, 4, proj_size=4), "proj_size must be smaller than hidden_size"),
        (lambda: JordanCell(3, 4, output_size=2, init="identity"), "needs output_size == hidden"),
        (lambda: rnnkit.LSTM(3, 4, dropout=1.5), r"dropout must be in \[0, 1\)"),
        (lambda: rnnkit.GRU(3, 4, impl="cuda"), "impl must be one of"),
        (lambda: rnnkit.GRU(3, 4, num_layers=0), "num_layers must be >= 1"),
        (lambda: Recurrent([]), "list of cells is empty"),
        (lambda: Recurrent(torch.nn.Linear(3, 4)), "expected a cell"),
    ],
)
def test_bad_construction(make, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        make()


def test_from_torch_rejects_other_modules():
    with pytest.raises(TypeError, match="expected torch.nn.RNN, LSTM or GRU, got Linear"):
        rnnkit.from_torch(torch.nn.Linear(3, 4))
