"""A plain torch.nn character model, written as a new user would (issue 15): embedding ->
nn.LSTM -> Linear, Adam, clip 1, random 64-character windows; then its validation loss on
the same held-out split `rnnkit train text` uses. A peer for the default text run, at equal
wall time (--minutes) or equal steps (--steps).

    python benchmarks/torch_char_lm.py --minutes 4 --threads 2
"""

import argparse
import math
import time

import torch
from torch import nn

from rnnkit.tasks.text.options import TextOptions
from rnnkit.tasks.text.task import prepare_data

ap = argparse.ArgumentParser()
ap.add_argument("--minutes", type=float, default=4.0)
ap.add_argument("--steps", type=int, default=10**9)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--data", default=None, help="a text data set or file (default: Shakespeare)")
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
data = prepare_data(TextOptions(data=args.data))  # the text run's tokenizer and train/val split
train, val, V = data.train, data.val, len(data.tokenizer)


class CharLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.rnn = nn.Embedding(V, 64), nn.LSTM(64, 256, batch_first=True)
        self.out = nn.Linear(256, V)

    def forward(self, x, state=None):
        h, state = self.rnn(self.emb(x), state)
        return self.out(h), state


model = CharLM()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
t0, step = time.perf_counter(), 0
while step < args.steps and time.perf_counter() - t0 < args.minutes * 60:
    i = torch.randint(0, len(train) - 65, (32,))
    x = torch.stack([train[j : j + 65] for j in i.tolist()])
    logits, _ = model(x[:, :-1])
    loss = nn.functional.cross_entropy(logits.reshape(-1, V), x[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    step += 1
seconds = time.perf_counter() - t0
with torch.no_grad():  # the whole validation split, read as one stream in 256-char chunks
    model.eval()
    total, state = 0.0, None
    for k in range(0, len(val) - 1, 256):
        x, y = val[k : k + 256][None], val[k + 1 : k + 257][None]
        x = x[:, : y.shape[1]]
        logits, state = model(x, state)
        total += float(nn.functional.cross_entropy(logits[0], y[0], reduction="sum"))
nats = total / (len(val) - 1)
print(f"torch.nn LSTM: {step} steps in {seconds:.0f} s, validation {nats:.4f} nats/char "
      f"({nats / math.log(2):.4f} bits/char)")
