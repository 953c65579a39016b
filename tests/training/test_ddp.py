"""The Trainer on DistributedDataParallel (2 gloo processes, float64, fused kernels):

- many-to-one: 2 ranks × batch b step exactly as one process × batch 2b (20 steps);
- the stateful truncated-BPTT language model: 2 ranks × b streams equal 1 process × 2b
  streams (20 steps), each rank carrying its own streams' state;
- a checkpoint resumes with another number of processes, both ways (the global batch is
  kept, the carried streams are split anew), ending where the uninterrupted run ends;
- rank 0 alone writes the run directory.
"""

import json
import shutil
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from _tasks import sign_of_sum
from rnnkit.algorithms import BPTT, TBPTT
from rnnkit.config import (
    HeadConfig,
    InputConfig,
    ManyToManyConfig,
    ManyToOneConfig,
    RNNConfig,
    TrainConfig,
)
from rnnkit.layers.recurrent import Recurrent
from rnnkit.models import build_model
from rnnkit.training import Trainer, load_run, stream_batches

B, STEPS, T, V = 8, 20, 6, 7  # b rows per rank; 2 ranks
CONFIG = TrainConfig(steps=STEPS, lr=1e-2, clip="norm", clip_value=0.5, log_every=5,
                     progress=False, seed=0)  # fmt: skip
TOKENS = torch.arange(2 * B * T * STEPS + 1) * 5 % V  # 20 steps of 2b streams × T


def classifier():
    torch.manual_seed(0)
    cfg = ManyToOneConfig(InputConfig("frames", features=1), HeadConfig("softmax", 2),
                          RNNConfig("gru", 12, impl="fused"))  # fmt: skip
    return build_model(cfg).double()


def language_model():
    torch.manual_seed(0)
    cfg = ManyToManyConfig(InputConfig("tokens", V, 5), HeadConfig("softmax", V),
                           RNNConfig("lstm", 10, impl="fused"))  # fmt: skip
    return build_model(cfg).double()


def global_batches(step, gen):  # the whole batch of 2b: every rank draws the same one
    x, y, lengths = sign_of_sum(2 * B, gen)
    return x.double(), y, lengths


STREAMS = stream_batches(TOKENS, batch_size=2 * B, seq_len=T)


def fit(model, batches, run_dir=None, steps=STEPS, resume=False, algorithm=None):
    config = TrainConfig(**{**CONFIG.__dict__, "steps": steps, "checkpoint_every": 10})
    trainer = Trainer(model, algorithm or BPTT(), config, run_dir=run_dir, overwrite=True)
    trainer.fit(batches, resume=resume)
    return trainer


def params(trainer):
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters()}


def fused(trainer) -> bool:
    return all(m.impl_used == "fused" for m in trainer.model.modules() if isinstance(m, Recurrent))


def worker(rank: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        results = {}
        t = fit(DistributedDataParallel(classifier()), global_batches, f"{out}/m2o")
        results["m2o"], results["m2o_fused"] = params(t), fused(t)
        t = fit(DistributedDataParallel(language_model()), STREAMS, algorithm=TBPTT(T))
        results["lm"], results["lm_fused"] = params(t), fused(t)
        # 10 steps on 2 ranks (resumed by 1 process in the test), and 1 process's 10 steps
        # resumed here on 2 ranks
        fit(DistributedDataParallel(language_model()), STREAMS, f"{out}/two", 10,
            algorithm=TBPTT(T))  # fmt: skip
        t = fit(DistributedDataParallel(language_model()), STREAMS, f"{out}/one", resume=True,
                algorithm=TBPTT(T))  # fmt: skip
        results["one_then_two"] = params(t)
        torch.save(results, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def close(a, b, atol=1e-6):
    for name, p in b.items():
        assert torch.allclose(a[name], p, atol=atol, rtol=0), name


def test_two_ranks_step_as_one_process_with_the_whole_batch(tmp_path):
    single = fit(language_model(), STREAMS, tmp_path / "one", 10, algorithm=TBPTT(T))
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
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert all(r["m2o_fused"] and r["lm_fused"] for r in ranks)  # the fused kernels ran

    single = fit(classifier(), global_batches)
    assert fused(single)
    for r in ranks:
        close(r["m2o"], params(single))
    start = classifier().state_dict()
    assert any((p - start[n]).abs().max() > 1e-3 for n, p in params(single).items())  # it trained

    straight = params(fit(language_model(), STREAMS, algorithm=TBPTT(T)))
    for r in ranks:
        close(r["lm"], straight)  # 2 × b streams = 1 × 2b streams
        close(r["one_then_two"], straight)  # 1 process for 10 steps, then 2 ranks
    shutil.copytree(tmp_path / "two", tmp_path / "two_then_one")
    resumed = fit(language_model(), STREAMS, tmp_path / "two_then_one", resume=True,
                  algorithm=TBPTT(T))  # fmt: skip
    close(params(resumed), straight)  # 2 ranks for 10 steps, then 1 process

    events = [json.loads(x).get("event") for x in (tmp_path / "m2o" / "metrics.jsonl").open()]
    assert events.count("completed") == 1  # one writer
    loaded = dict(load_run(tmp_path / "m2o").model.named_parameters())
    for name, p in ranks[0]["m2o"].items():  # the run holds the trained weights (float32 on load)
        assert torch.allclose(loaded[name].detach().double(), p, atol=1e-6), name
