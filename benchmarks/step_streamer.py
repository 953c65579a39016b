"""`KernelStreamer.step` against torch's RNNCell/GRUCell/LSTMCell at B=1 (issue 11's streamer
rows): µs a step, one thread, process CPU time; the streamer (2000 steps) and torch's cell
(500 steps) take turns, median of 7 turns each; prints JSON {"<cell> <H>": [streamer µs,
torch cell µs, ratio]}. A/B two trees by running it under each tree's src in turn:

    for t in /work/main /tmp/wt/kstream; do
        PYTHONPATH=$t/src python benchmarks/step_streamer.py; done
"""

import json
import statistics
import time

import torch

import rnnkit


def per_step(fn, args, steps: int) -> float:
    """µs a call of fn(*args) over `steps` calls, by process CPU time."""
    t = time.process_time()
    for _ in range(steps):
        fn(*args)
    return (time.process_time() - t) / steps * 1e6


if __name__ == "__main__":
    torch.set_num_threads(1)
    out = {}
    cells = {rnnkit.RNN: torch.nn.RNNCell, rnnkit.GRU: torch.nn.GRUCell,
             rnnkit.LSTM: torch.nn.LSTMCell}  # fmt: skip
    for H in (64, 128):
        for make, cell_type in cells.items():
            streamer, x = make(H, H).eval().streamer(1), torch.randn(1, H)
            cell, h = cell_type(H, H), torch.zeros(1, H)
            state = (h, h.clone()) if cell_type is torch.nn.LSTMCell else h
            ours, theirs = [], []
            with torch.no_grad():
                for _ in range(7):
                    ours.append(per_step(streamer.step, (x,), 2000))
                    theirs.append(per_step(cell, (x, state), 500))
            a, b = statistics.median(ours), statistics.median(theirs)
            out[f"{make.__name__} {H}"] = [round(a, 3), round(b, 3), round(b / a, 2)]
    print(json.dumps(out))
