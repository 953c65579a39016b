"""The Trainer on DistributedDataParallel: 2 gloo processes × batch b step exactly as one
process × batch 2b (float64, 20 steps), and rank 0 alone writes the run directory."""

import json
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from _tasks import sign_of_sum
from rnnkit.algorithms import BPTT
from rnnkit.config import HeadConfig, InputConfig, ManyToOneConfig, RNNConfig, TrainConfig
from rnnkit.models import build_model
from rnnkit.training import Trainer, load_run

B, STEPS = 8, 20
CONFIG = TrainConfig(steps=STEPS, lr=1e-2, clip="norm", clip_value=0.5, log_every=5,
                     progress=False, seed=0)  # fmt: skip


def new_model():
    torch.manual_seed(0)
    cfg = ManyToOneConfig(InputConfig("frames", features=1), HeadConfig("softmax", 2),
                          RNNConfig("gru", 12))
    return build_model(cfg).double()


def batches(rows: slice):
    def make(step, gen):
        x, y, lengths = sign_of_sum(2 * B, gen)
        return x[rows].double(), y[rows], lengths[rows]

    return make


def worker(rank: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        model = DistributedDataParallel(new_model())
        trainer = Trainer(model, BPTT(), CONFIG, run_dir=f"{out}/run", overwrite=True)
        trainer.fit(batches(slice(rank * B, (rank + 1) * B)))  # this rank's shard
        torch.save({n: p.detach() for n, p in trainer.model.named_parameters()},
                   f"{out}/rank{rank}.pt")  # fmt: skip
    finally:
        dist.destroy_process_group()


def test_two_ranks_step_as_one_process_with_the_whole_batch(tmp_path):
    # spawn, not fork: a fork of a process whose OpenMP pool has run can deadlock in the
    # child (it did, once in a full-suite run); a bounded join keeps a hang from stalling CI
    procs = mp.start_processes(worker, args=(f"file://{tmp_path}/rendezvous", str(tmp_path)),
                               nprocs=2, start_method="spawn", join=False)  # fmt: skip
    deadline = time.monotonic() + 120
    while not procs.join(timeout=2):
        if time.monotonic() > deadline:
            for p in procs.processes:
                p.kill()
            raise AssertionError("the 2 DDP ranks did not finish within 120 s")
    single = Trainer(new_model(), BPTT(), CONFIG)
    single.fit(batches(slice(0, 2 * B)))
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for name, p in single.model.named_parameters():
        for params in ranks:
            assert torch.allclose(params[name], p.detach(), atol=1e-10, rtol=0), name
    start = new_model().state_dict()
    assert any((p.detach() - start[n]).abs().max() > 1e-3
               for n, p in single.model.named_parameters())  # fmt: skip  (it did train)
    events = [json.loads(x).get("event") for x in (tmp_path / "run" / "metrics.jsonl").open()]
    assert events.count("completed") == 1  # one writer
    loaded = dict(load_run(tmp_path / "run").model.named_parameters())
    for name, p in ranks[0].items():  # the run holds the trained weights (float32 on load)
        assert torch.allclose(loaded[name].detach().double(), p, atol=1e-6), name
