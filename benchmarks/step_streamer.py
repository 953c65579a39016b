"""`KernelStreamer.step` µs a step at B=1 (issue 11's streamer rows), one thread, process CPU
time over 2000 steps, median of 7; prints JSON {"<cell> <H>": µs}. A/B two trees by running it
under each tree's src in turn:

    for t in /work/main /tmp/wt/kstep; do PYTHONPATH=$t/src python benchmarks/step_streamer.py; done
"""

import json
import statistics
import time

import torch

import rnnkit

if __name__ == "__main__":
    torch.set_num_threads(1)
    out = {}
    for H in (64, 128):
        for make in (rnnkit.RNN, rnnkit.GRU, rnnkit.LSTM):
            streamer, x = make(H, H).eval().streamer(1), torch.randn(1, H)
            times = []
            with torch.no_grad():
                for _ in range(7):
                    t = time.process_time()
                    for _ in range(2000):
                        streamer.step(x)
                    times.append((time.process_time() - t) / 2000 * 1e6)
            out[f"{make.__name__} {H}"] = round(statistics.median(times), 3)
    print(json.dumps(out))
