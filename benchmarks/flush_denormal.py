"""Subnormal floats and the Trainer's flush_denormal default: step time and loss, on and off.

1. A training step at (B, T, H) = (32, 200, 64), the loss on the last step only (the gradient
   fades back over 200 steps into subnormals), each cell, rnnkit's fused layer and torch.nn,
   flushing off and on alternated; CPU ms, one thread, median of 5, two rounds.
2. A character LM on a text file, 150 steps of Trainer.fit with flush_denormal True and False
   from the same seed: the validation loss of each.

    PYTHONPATH=src python benchmarks/flush_denormal.py README.md benchmarks/README.md
"""

import sys
import time

import torch

import rnnkit
from rnnkit.algorithms import BPTT
from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig, TrainConfig
from rnnkit.models import build_model
from rnnkit.training import Trainer


def step_times() -> None:
    B, T, H = 32, 200, 64
    x = torch.randn(B, T, 2)
    for cell in ("RNN", "GRU", "LSTM"):
        for impl in ("fused", "torch"):
            m = getattr(rnnkit, cell)(2, H, impl=impl)
            head = torch.nn.Linear(H, 1)
            params = list(m.parameters()) + list(head.parameters())

            def step(m=m, head=head, params=params):
                for p in params:
                    p.grad = None
                out, _ = m(x)
                head(out[:, -1]).square().mean().backward()

            ms = {False: [], True: []}
            for flush in (False, True, False, True):
                torch.set_flush_denormal(flush)
                step()
                ts = []
                for _ in range(5):
                    t = time.process_time()
                    step()
                    ts.append(time.process_time() - t)
                ms[flush].append(round(sorted(ts)[2] * 1e3, 1))
            torch.set_flush_denormal(False)
            print(f"{cell} {impl}: kept {ms[False]} ms, flushed {ms[True]} ms")


def text_losses(paths: list[str]) -> None:
    text = "".join(open(p, encoding="utf-8").read() for p in paths)[:200_000]
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([index[c] for c in text])
    V, T, B = len(chars), 100, 16

    def batches(step, g):
        s = torch.randint(0, len(data) - T - 1, (B,), generator=g)
        x = torch.stack([data[i : i + T] for i in s])
        return x, torch.stack([data[i + 1 : i + T + 1] for i in s])

    for cell in ("gru", "lstm"):
        for flush in (True, False):
            torch.manual_seed(0)
            rnn = RNNConfig(cell, 128, impl="fused")
            model = build_model(ManyToManyConfig(InputConfig("tokens", V, 32),
                                                 HeadConfig("softmax", V), rnn))  # fmt: skip
            cfg = TrainConfig(steps=150, lr=3e-3, progress=False, seed=0, eval_every=150)
            trainer = Trainer(model, BPTT(), cfg, flush_denormal=flush)
            t = time.process_time()
            trainer.fit(batches, batches)
            loss = trainer.evaluate(batches)["loss"]
            print(f"text {cell} flush_denormal={flush}: val loss {loss!r}, "
                  f"{time.process_time() - t:.1f} CPU s")  # fmt: skip


if __name__ == "__main__":
    torch.set_num_threads(1)
    step_times()
    text_losses(sys.argv[1:] or ["README.md"])
