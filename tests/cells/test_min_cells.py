"""minGRU, minLSTM and the LRU: the parallel scan equals the step loop, and RTRL equals BPTT.

The scan (impl "scan", which impl="auto" picks) must compute what the cells' step loop
(impl="reference") computes: outputs, final states and gradients, with lengths and an initial
state, to 1e-5 in float32 and 1e-10 in float64.
"""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from rnnkit import LRUCell, MinGRUCell, MinLSTMCell, Recurrent, RNNConfig
from rnnkit.algorithms.rtrl import RTRL
from rnnkit.cells import scan
from rnnkit.config import from_json, to_json
from rnnkit.layers.state import leaves, tree_map

FAMILIES = {
    "mingru": {},
    "minlstm": {},
    "lru": {"state_size": 5, "r_min": 0.5, "r_max": 0.99},
}
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def close(a: torch.Tensor, b: torch.Tensor, tol: float) -> None:
    """|a - b| <= tol relative to b's scale (a gradient summed over many steps is ~100, and
    float32 keeps ~1e-7 of it: the step loop itself is 1e-5 off float64 there)."""
    torch.testing.assert_close(a, b, rtol=0, atol=tol * max(1.0, float(b.detach().abs().max())))

# torch.func's jvp scripts a decomposition once, which warns on torch 2.13; not ours.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


def pair(kind: str, dtype: torch.dtype, **layer) -> tuple[Recurrent, Recurrent]:
    """(layer by impl="auto", the same weights by impl="reference")."""
    options = FAMILIES[kind]
    fast = Recurrent.from_config(RNNConfig(kind, 4, options=options, **layer), 3).to(dtype)
    ref = Recurrent.from_config(
        RNNConfig(kind, 4, impl="reference", options=options, **layer), 3
    ).to(dtype)
    ref.load_state_dict(fast.state_dict())
    return fast, ref


def random_state(layer: Recurrent, batch: int, dtype: torch.dtype):
    return tree_map(torch.randn_like, layer.init_state(batch, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_scan_equals_step_loop_outputs_and_gradients(kind, dtype):
    torch.manual_seed(0)
    fast, ref = pair(kind, dtype, num_layers=2, bidirectional=True)
    x, lengths = torch.randn(3, 40, 3, dtype=dtype), torch.tensor([40, 17, 1])
    state = random_state(fast, 3, dtype)
    results = []
    for layer in (fast, ref):
        xs = x.clone().requires_grad_()
        h0 = tuple(t.clone().requires_grad_() for t in leaves(state))
        out, final = layer(xs, h0 if isinstance(state, tuple) else h0[0], lengths)
        loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=dtype)).square().sum()
        loss = loss + sum((t * t.shape[-1]).sum() for t in leaves(final))
        # the LRU's y_0 is in its state but never read: its gradient is zero
        grads = torch.autograd.grad(
            loss, [xs, *h0, *layer.parameters()], allow_unused=True, materialize_grads=True
        )
        results.append((out, leaves(final), grads))
    assert fast.impl_used == "scan" and ref.impl_used == "reference"
    tol = TOLERANCE[dtype]
    (out, final, grads), (out_ref, final_ref, grads_ref) = results
    close(out, out_ref, tol)
    assert (out[1, 17:] == 0).all() and (out[2, 1:] == 0).all()
    for a, b in zip(final + grads, final_ref + grads_ref, strict=True):
        close(a, b, tol)


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_log_scan_keeps_float32_precision_over_a_long_sequence(kind):
    """Unchunked, the log-space scan's float32 error grows with |Σ log a| (1e-4 by T = 400);
    chunked it stays at the step loop's level."""
    torch.manual_seed(5)
    fast, ref = pair(kind, torch.float64)
    x = torch.randn(2, 1000, 3, dtype=torch.float64)
    with torch.no_grad():
        want = ref(x)[0]
        got = fast.float()(x.float())[0]
    assert fast.impl_used == "scan"
    close(got.double(), want, 1e-5)


@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_padding_never_reaches_the_final_state(kind):
    """A sequence's final state is read at its own last step, whatever the padding holds."""
    torch.manual_seed(1)
    layer, _ = pair(kind, torch.float64)
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    noisy = x.clone()
    noisy[0, 4:] = 1e3 * torch.randn(5, 3, dtype=torch.float64)
    lengths = torch.tensor([4, 9])
    out, final = layer(noisy, lengths=lengths)
    _, alone = layer(x[:1, :4])
    for t, a in zip(leaves(final), leaves(alone), strict=True):
        torch.testing.assert_close(t[:, :1], a)
    torch.testing.assert_close(out[1], layer(x[1:])[0][0])


@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_gradcheck_through_the_scan(kind):
    torch.manual_seed(2)
    layer, _ = pair(kind, torch.float64)
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]

    def f(x, *params):
        out, final = functional_call(layer, dict(zip(names, params, strict=True)), (x,), {
            "lengths": torch.tensor([6, 3])
        })
        return out, *leaves(final)

    assert torch.autograd.gradcheck(f, (x, *params))
    assert layer.impl_used == "scan"


def cells(kind: str) -> torch.nn.Module:
    return {"mingru": lambda: MinGRUCell(3, 4), "minlstm": lambda: MinLSTMCell(3, 4),
            "lru": lambda: LRUCell(3, 4, **FAMILIES["lru"])}[kind]().double()


@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_rtrl_equals_bptt_and_the_influence_is_diagonal_per_unit(kind):
    """RTRL's influence matrix ∂s_t/∂θ: each unit's recurrent state depends on that unit's
    parameters only (zero elsewhere, exactly), which is why exact RTRL is cheap here."""
    torch.manual_seed(3)
    cell = cells(kind)
    B, T = 2, 7
    x = torch.randn(B, T, 3, dtype=torch.float64)
    c = torch.randn(B, T, 4, dtype=torch.float64)
    state, loss = cell.init_state(B, dtype=torch.float64), 0.0
    for t in range(T):
        y, state = cell(x[:, t], state)
        loss = loss + (y * c[:, t]).sum()
    want = torch.autograd.grad(loss, list(cell.parameters()))
    alg = RTRL(cell)
    alg.reset(B)
    for t in range(T):
        alg.backward((alg.step(x[:, t]) * c[:, t]).sum())
    for p, w in zip(alg.params, want, strict=True):
        torch.testing.assert_close(p.grad, w, rtol=1e-10, atol=1e-12)
    # the recurrent part of the state and, per parameter, the unit it belongs to
    N = cell.state_size if kind == "lru" else cell.hidden_size
    rows = torch.arange(N) + (4 if kind == "lru" else 0)  # the LRU's state starts with y (H=4)
    owner = []  # unit of each flat parameter entry, -1 for the readout (shared by all units)
    for name, p in cell.named_parameters():
        if name in ("C_re", "C_im", "D"):
            owner.append(torch.full((p.numel(),), -1))
        else:
            unit = torch.arange(p.shape[0]) % N  # stacked gate blocks of N rows each
            owner.append(unit[:, None].expand(p.shape[0], p[0].numel()).reshape(-1))
    owner = torch.cat(owner)
    units = [rows] if kind != "lru" else [rows, rows + N]  # h, or (h_re, h_im)
    for r in units:
        block = alg.influence[:, r][..., owner >= 0]  # (B, N, P_recurrent)
        own = owner[owner >= 0][None, :] == torch.arange(N)[:, None]  # (N, P_recurrent)
        assert (block[:, ~own] == 0).all() and (block[:, own] != 0).any()
        assert (alg.influence[:, r][..., owner < 0] == 0).all()


@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_streaming_steps_the_cells_and_the_config_round_trips(kind):
    torch.manual_seed(4)
    layer, _ = pair(kind, torch.float32, num_layers=2)
    layer.eval()
    x = torch.randn(2, 5, 3)
    out, final = layer(x)
    state, ys = None, []
    with torch.no_grad():
        for t in range(5):
            y, state = layer.step(x[:, t], state)
            ys.append(y)
    assert layer.impl_used == "reference"  # no single-step kernel: the cells step, explicitly
    torch.testing.assert_close(torch.stack(ys, 1), out)
    for a, b in zip(leaves(state), leaves(final), strict=True):
        torch.testing.assert_close(a, b)
    streamer = layer.streamer(batch=2)  # no kernels for the family: the cells, in Python
    streamed = torch.stack([streamer.step(x[:, t]) for t in range(5)], 1)
    assert streamer.impl_used == "reference"
    torch.testing.assert_close(streamed, out)
    cfg = from_json(RNNConfig, to_json(layer.config()))
    again = Recurrent.from_config(cfg)
    again.load_state_dict(layer.state_dict())
    torch.testing.assert_close(again.eval()(x)[0], out)


def test_recurrent_dropout_has_no_recurrent_weights_to_drop():
    layer = Recurrent.from_config(RNNConfig("mingru", 4, recurrent_dropout=0.3), 3).train()
    with pytest.raises(ValueError, match="no recurrent weights"):
        layer(torch.randn(2, 3, 3))



@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_scan_in_blocks_equals_step_loop(kind, dtype, monkeypatch):
    # 192 numbers per block: 16 steps at B = 3, H = 4 (or the LRU's N = 5), so T = 40 runs as
    # three blocks, the last one short, each carrying the state (and in backward the adjoint)
    monkeypatch.setattr(scan, "BLOCK_ELEMENTS", 3 * 4 * 16)
    assert scan.block_steps(3, 4) == scan.block_steps(3, 5) == 16
    test_scan_equals_step_loop_outputs_and_gradients(kind, dtype)
