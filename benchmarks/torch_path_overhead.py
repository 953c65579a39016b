"""What rnnkit's impl "torch" adds to a call of torch.nn's own module, per call.

impl "torch" is what impl="auto" runs on a GPU (cuDNN). There, a small model's step is bound by
the host's Python and launch time. This times the layer against `layer.to_torch()` (the same
weights in a torch.nn module) on the CPU at a size where the op itself is cheap (B=1, T=2, H=8).
It reports the difference in microseconds, forward alone (no_grad) and forward + backward
(grad). Interleaved, the median of 7 rounds of 500 calls, 1 thread, process CPU time.

    PYTHONPATH=src python benchmarks/torch_path_overhead.py
    PYTHONPATH=/other/src python benchmarks/torch_path_overhead.py     # another tree, to compare
"""

from __future__ import annotations

import json
import statistics
import time

import torch

from rnnkit import RNNConfig
from rnnkit.layers import Recurrent


def per_call_us(fn, calls: int = 500) -> float:
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls * 1e6


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(1, 2, 8)
    rows = []
    for cell in ("elman", "gru", "lstm"):
        layer = Recurrent.from_config(RNNConfig(cell, 8, impl="torch"), 8)
        peer = layer.to_torch()
        for grad in (False, True):

            def call(module, grad=grad):
                if grad:
                    module.zero_grad(set_to_none=True)
                    module(x)[0].sum().backward()
                else:
                    with torch.no_grad():
                        module(x)

            for _ in range(200):
                call(layer), call(peer)
            ours, theirs = [], []
            for _ in range(7):
                ours.append(per_call_us(lambda m=layer: call(m)))
                theirs.append(per_call_us(lambda m=peer: call(m)))
            a, b = statistics.median(ours), statistics.median(theirs)
            rows.append({"cell": cell, "mode": "grad" if grad else "no_grad",
                         "rnnkit_us": round(a, 1), "torch_nn_us": round(b, 1),
                         "extra_us": round(a - b, 1)})  # fmt: skip
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
