import pytest
import torch
from torch import nn

from rnnkit.models import beam_search, filter_logits, greedy, sample
from rnnkit.models.decoding import check_sampling, stream_tokens


class Table(nn.Module):
    """A fake generator: next-token log-probs depend only on the previous token."""

    eos_token, max_length = 3, 6

    def __init__(self, table):
        super().__init__()
        self.table = torch.log(torch.tensor(table))  # (V, V) rows: previous token

    def decode_start(self, context, lengths=None):
        return self.table[context], context.clone()

    def decode_step(self, tokens, state):
        return self.table[tokens], tokens

    def reorder_state(self, state, index):
        return state[index]


# from the start token 0: greedy takes 1 (0.5) then 1 -> eos only 0.3 likely;
# the best whole sequence is 2 (0.4) -> eos (0.9) = 0.36 > 0.5 * 0.3
TABLE = [
    [0.0, 0.5, 0.4, 0.1],
    [0.0, 0.0, 0.7, 0.3],
    [0.0, 0.05, 0.05, 0.9],
    [0.0, 0.0, 0.0, 1.0],
]


def test_beam_search_finds_the_better_sequence_greedy_misses():
    model = Table(TABLE)
    start = torch.tensor([0, 0])
    g = greedy(model, start)
    assert g.to_lists()[0][:2] == [1, 2]
    b = beam_search(model, start, beam_width=2, length_penalty=0.0)
    assert b.to_lists() == [[2], [2]]
    assert torch.allclose(b.scores, torch.log(torch.tensor([0.36, 0.36])))
    assert beam_search(model, start, beam_width=1).to_lists()[0] == g.to_lists()[0]


def test_greedy_stops_at_the_end_token_and_pads():
    out = greedy(Table(TABLE), torch.tensor([2, 0]))
    assert out.lengths.tolist() == [0, 2]
    assert out.tokens[0].tolist() == [3, 3, 3]  # padded with the end token


def test_sampling_filters():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2))[0].tolist() == [False, False, True, True]
    kept = ~torch.isinf(filter_logits(logits, top_p=0.7))[0]
    assert kept.tolist() == [True, True, False, False]
    assert (~torch.isinf(filter_logits(logits, top_p=0.01))).sum() == 1
    model = Table(TABLE)
    runs = [sample(model, torch.zeros(64, dtype=torch.long), top_k=1).to_lists() for _ in range(2)]
    assert runs[0] == runs[1] == greedy(model, torch.zeros(64, dtype=torch.long)).to_lists()
    gen = torch.Generator().manual_seed(0)
    hot = sample(model, torch.zeros(400, dtype=torch.long), temperature=1.0, generator=gen)
    first = hot.tokens[:, 0].float()
    assert 0.4 < (first == 1).float().mean() < 0.6  # P(1 | 0) = 0.5


class LastToken(Table):
    """Table as a language model: decode_start reads a (B, T) context, its last token counts."""

    def decode_start(self, context, lengths=None):
        return super().decode_start(context[:, -1])


def test_stream_tokens_samples_each_row_at_its_own_temperature():
    model = LastToken(TABLE).train()
    context = torch.tensor([[2, 0], [2, 0]])  # (B, T)
    steps = list(stream_tokens(model, context, 4, [0.0, 1.0], generator=torch.Generator()))
    assert len(steps) == 4 and all(len(toks) == 2 for toks in steps)
    assert [toks[0] for toks in steps] == [1, 2, 3, 3]  # the greedy row: the argmax path
    assert model.training  # eval mode only while streaming

    # a greedy row draws no random numbers: the sampled row is what it would be alone
    def sampled(temps, seed):
        gen = torch.Generator().manual_seed(seed)
        rows = list(stream_tokens(model, context[: len(temps)], 12, temps, generator=gen))
        return [toks[-1] for toks in rows]

    for seed in range(3):
        assert sampled([0.0, 1.0], seed) == sampled([1.0], seed)
    assert len({tuple(sampled([1.0], s)) for s in range(6)}) > 1  # and it does sample
    with pytest.raises(ValueError, match="2 temperatures for 1 rows"):
        next(stream_tokens(model, context[:1], 3, [0.0, 1.0]))


def test_check_sampling_names_the_argument():
    check_sampling(0.0, None, None)
    check_sampling(0.7, 5, 0.9)
    for args, needle in [
        ((-1.0,), "temperature must be >= 0"),
        ((float("inf"),), "temperature"),
        ((float("nan"),), "temperature"),
        ((1.0, 0), "top_k must be >= 1"),
        ((1.0, None, 1.5), r"top_p must be in \(0, 1\]"),
        ((1.0, None, 0.0), "top_p"),
    ]:
        with pytest.raises(ValueError, match=needle):
            check_sampling(*args)
