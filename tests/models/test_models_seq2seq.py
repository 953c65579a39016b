import pytest
import torch

from _tasks import reverse_strings
from rnnkit.algorithms import BPTT
from rnnkit.config import InputConfig, RNNConfig, Seq2SeqConfig, TrainConfig
from rnnkit.models import Seq2Seq, beam_search, greedy
from rnnkit.training import Trainer


def config(attention, hidden=64, teacher_forcing=1.0):
    return Seq2SeqConfig(
        InputConfig("tokens", 8, 32),
        target_vocab_size=10,
        bos_token=8,
        eos_token=9,
        encoder=RNNConfig("gru", hidden, impl="torch"),
        decoder=RNNConfig("gru", hidden, impl="torch"),
        attention=attention,
        teacher_forcing=teacher_forcing,
        max_length=14,
    )


def exact_match(decoded, tgt, lengths):
    want = [tgt[i, :n].tolist() for i, n in enumerate(lengths.tolist())]
    return sum(a == b for a, b in zip(decoded.to_lists(), want, strict=True)) / len(want)


def test_reverses_strings_with_attention_and_beam_is_at_least_greedy():
    # strings of 4-8 symbols and 200 steps (was 5-12 and 400): still a task that needs the
    # attention, since with attention="none" the same budget reaches only ~0.5 exact match
    # (measured: 0.49 greedy, 0.53 beam), with "dot" 1.0
    torch.manual_seed(0)
    model = Seq2Seq(config("dot"))
    cfg = TrainConfig(steps=200, lr=1e-2, schedule="cosine", clip_value=5.0, progress=False)
    Trainer(model, BPTT(), cfg).fit(lambda step, g: reverse_strings(64, g, low=4, high=8))
    src, tgt, lengths, _ = reverse_strings(300, torch.Generator().manual_seed(123), low=4, high=8)
    g = exact_match(greedy(model, src, lengths=lengths), tgt, lengths)
    b = exact_match(beam_search(model, src, lengths=lengths, beam_width=3), tgt, lengths)
    assert g >= 0.95, g
    assert b >= g, (b, g)


@pytest.mark.parametrize("attention", ["none", "additive", "dot"])
def test_step_by_step_decoding_matches_teacher_forced_forward(attention):
    model = Seq2Seq(config(attention, hidden=16)).eval()
    src, tgt, lengths, _ = reverse_strings(4, torch.Generator().manual_seed(1))
    tokens_in = torch.cat([torch.full((4, 1), 8), tgt[:, :-1]], dim=1)
    whole = model(src, tokens_in, lengths)
    logits, state = model.decode_start(src, lengths)
    steps = [logits]
    for t in range(1, tokens_in.shape[1]):
        logits, state = model.decode_step(tokens_in[:, t], state)
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), whole, atol=1e-5, rtol=1e-4)
    if attention != "none":  # padding in the source gets no attention
        w = model.attention_weights
        assert float(w[0, :, lengths[0] :].abs().sum()) == 0.0


def test_teacher_forcing_ratio_below_one_trains():
    model = Seq2Seq(config("additive", hidden=16, teacher_forcing=0.5))
    src, tgt, lengths, tlen = reverse_strings(8, torch.Generator().manual_seed(2))
    out = model.loss((src, tgt, lengths, tlen))
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.count == int(tlen.sum())
