import pytest
import torch

from _tasks import delayed_echo
from rnnkit.algorithms import BPTT, TBPTT, build_algorithm
from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig
from rnnkit.models import build_model


def lm(cell="lstm"):
    cfg = ManyToManyConfig(
        InputConfig("tokens", 8, 6), HeadConfig("softmax", 8), RNNConfig(cell, 10, impl="reference")
    )
    return build_model(cfg).double()


def grads_of(model, algorithm, batches):
    """Gradients each update would apply (collected instead of an optimiser step)."""
    seen = []

    def update():
        seen.append({n: p.grad.clone() for n, p in model.named_parameters()})
        model.zero_grad(set_to_none=True)
        return True

    for b in batches:
        algorithm.train_batch(model, b, update)
    return seen


@pytest.mark.parametrize("cell", ["lstm", "gru", "elman"])
def test_tbptt_with_k1_k2_equal_T_gives_bptt_gradients(cell):
    model = lm(cell)
    x, y = delayed_echo(4, torch.Generator().manual_seed(0), T=12)
    full = grads_of(model, BPTT(), [(x, y)])
    trunc = grads_of(model, TBPTT(12, 12), [(x, y)])
    assert len(full) == len(trunc) == 1
    for name, g in full[0].items():
        torch.testing.assert_close(trunc[0][name], g, msg=name)


def test_tbptt_carries_state_across_chunks_and_batches():
    model = lm()
    x, y = delayed_echo(3, torch.Generator().manual_seed(1), T=12)
    algo = TBPTT(4)
    losses = []
    algo.train_batch(model, (x[:, :8], y[:, :8]), lambda: model.zero_grad() or True)
    carried = algo.carry_state()
    assert carried is not None and not carried[0].requires_grad
    # the carried state is exactly the state after the first 8 steps
    _, s8 = model(x[:, :8])
    torch.testing.assert_close(carried[0], s8[0])
    # and the next batch's loss is the loss of steps 8..12 continuing from it
    out = algo.train_batch(model, (x[:, 8:], y[:, 8:]), lambda: model.zero_grad() or True)
    want = model.loss((x[:, 8:], y[:, 8:]), s8)
    assert out.loss == pytest.approx(float(want.loss.detach()))
    losses.append(out.loss)
    algo.reset()
    assert algo.carry_state() is None


def test_tbptt_k2_longer_than_k1_backprops_further():
    """Chunk 2's gradient with k2 = 8 equals BPTT of chunk 2's loss through all 8 steps."""
    model = lm("gru")
    x, y = delayed_echo(2, torch.Generator().manual_seed(2), T=8)
    got = grads_of(model, TBPTT(4, 8), [(x, y)])
    assert len(got) == 2
    model.zero_grad()
    _, s4 = model(x[:, :4])
    model.loss((x[:, 4:], y[:, 4:]), s4).loss.backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(got[1][name], p.grad, msg=name)


def test_bad_tbptt_settings_fail_early():
    with pytest.raises(ValueError, match="k1 must be a positive integer"):
        TBPTT(0)
    with pytest.raises(ValueError, match="k2 .* must be >= k1"):
        TBPTT(8, 4)
    with pytest.raises(ValueError, match="unknown gradient algorithm"):
        build_algorithm({"name": "nope"})
    assert build_algorithm(TBPTT(5, 7).config()).k2 == 7
