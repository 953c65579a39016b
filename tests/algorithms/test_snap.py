"""SnAp: exact where the recurrent Jacobian is diagonal; SnAp-2 is RTRL for a dense Elman."""

from __future__ import annotations

import pytest
import torch

from rnnkit.algorithms.rtrl import RTRL
from rnnkit.algorithms.snap import SnAp
from rnnkit.cells import ElmanCell, GRUCell, LSTMCell

D, H, B, T = 3, 4, 2, 6


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids contention on a shared 2-core machine (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def diagonal_recurrence(cell):
    """Zero every off-diagonal recurrent weight (per gate block): D_t becomes diagonal."""
    with torch.no_grad():
        w = cell.weight_hh
        blocks = w.shape[0] // w.shape[1]
        mask = torch.eye(w.shape[1], dtype=w.dtype).repeat(blocks, 1)
        w.mul_(mask).add_(0.5 * mask)  # diagonal entries large enough to matter
    return cell


def run(alg, x, c):
    for p in alg.params:
        p.grad = None
    alg.reset(x.shape[0])
    for t in range(x.shape[1]):
        y = alg.step(x[:, t])
        alg.backward((y * c[:, t]).sum())
    return [p.grad.clone() for p in alg.params]


CELLS = {
    "elman-tanh": lambda: ElmanCell(D, H),
    "elman-relu": lambda: ElmanCell(D, H, activation="relu"),
    "gru": lambda: GRUCell(D, H),
    "gru-reset-before": lambda: GRUCell(D, H, reset_after=False),
    "lstm": lambda: LSTMCell(D, H),
}


@pytest.mark.parametrize("name", sorted(CELLS))
def test_snap1_equals_rtrl_for_diagonal_recurrence(name):
    torch.manual_seed(0)
    cell = diagonal_recurrence(CELLS[name]().double())
    x = torch.randn(B, T, D, dtype=torch.float64)
    c = torch.randn(B, T, H, dtype=torch.float64)
    snap = SnAp(cell, level=1)
    got = run(snap, x, c)
    want = run(RTRL(cell), x, c)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-8, atol=1e-10)
    # An LSTM unit is (h_i, c_i); a reset-before GRU's reset gate reaches every unit.
    m = {"lstm": 2, "gru-reset-before": H}.get(name, 1)
    assert snap.rows.shape == (snap.fn.P, m) and snap.n_colours == m


def test_snap1_keeps_own_unit_of_dense_elman_and_differs_from_rtrl():
    torch.manual_seed(0)
    cell = ElmanCell(D, H).double()
    x = torch.randn(B, T, D, dtype=torch.float64)
    c = torch.randn(B, T, H, dtype=torch.float64)
    snap, rtrl = SnAp(cell, level=1), RTRL(cell)
    got, want = run(snap, x, c), run(rtrl, x, c)
    # Row i of weight_hh belongs to unit i.
    unit_of_whh = snap.rows[H * D : H * D + H * H, 0].view(H, H)
    assert torch.equal(unit_of_whh, torch.arange(H)[:, None].expand(H, H))
    assert not torch.allclose(got[1], want[1])
    # The kept entries are RTRL's entries restricted to the pattern after one step.
    snap.reset(B), rtrl.reset(B)
    snap.step(x[:, 0]), rtrl.step(x[:, 0])
    torch.testing.assert_close(snap.dense_influence(), rtrl.influence * snap.pattern)


def test_snap2_is_rtrl_for_dense_elman():
    torch.manual_seed(0)
    cell = ElmanCell(D, H).double()
    x = torch.randn(B, T, D, dtype=torch.float64)
    c = torch.randn(B, T, H, dtype=torch.float64)
    snap = SnAp(cell, level=2)
    assert snap.pattern.all()
    for g, w in zip(run(snap, x, c), run(RTRL(cell), x, c), strict=True):
        torch.testing.assert_close(g, w, rtol=1e-8, atol=1e-10)


def test_snap_level_is_checked():
    with pytest.raises(ValueError, match="level"):
        SnAp(ElmanCell(D, H), level=0)


def test_snap_pattern_is_structural_not_read_from_current_weights():
    """An IRNN starts with W_hh = I: SnAp-2 must still keep the dense pattern."""
    cell = ElmanCell(D, H, activation="relu", init="identity")
    assert SnAp(cell, level=2).pattern.all()
    assert SnAp(cell, level=1).rows.shape[1] == 1
