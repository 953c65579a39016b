"""Data-parallel training on torch.distributed: the process group of a torchrun launch, and
what the ranks of one run must agree on.

    torchrun --nproc-per-node 2 -m rnnkit train text ...   (or `rnnkit train text --nproc 2`)

Every rank runs the whole command. `session()` joins the process group from torchrun's
environment (gloo for CPU training, NCCL for CUDA), with a timeout on every collective;
without a launcher, or with one process, nothing changes. The semantics:

- The data gives *global* batches, the same on every rank (the Trainer's data generator has
  the same seed everywhere); rank r trains on rows [r·b, (r+1)·b) of each (`shard`), so N
  ranks × b rows step exactly as one process × N·b. In the stateful truncated-BPTT language
  model the rows are streams: rank r owns streams r·b .. (r+1)·b - 1 and carries their state.
- A checkpoint holds the global state (the carried state of all streams, gathered in rank
  order), so a run resumes with another number of processes: the global batch is kept and
  the streams are split anew.
- Rank 0 alone writes the run directory; the others train, then wait for it (`wait_for_writer`).
- The global RNGs (dropout) are seeded per rank; the data generator is not.
- A rank that dies makes the collectives of the others fail (`PeerFailure`, one line); the
  launcher stops the rest. The run directory keeps its last complete checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

LAUNCHED_ENV = "RNNKIT_LAUNCHED"  # set by `launch`: it says what failed, not each rank
TIMEOUT_ENV = "RNNKIT_DDP_TIMEOUT"  # seconds a collective may wait for the other ranks
TIMEOUT_S = 300.0  # long enough for a slow evaluation or checkpoint on one rank
WRITER_TIMEOUT = timedelta(hours=24)  # the others wait this long for rank 0's report

_writer_group: Any = None  # a gloo group with a long timeout, for waiting on rank 0


class PeerFailure(RuntimeError):
    """A collective failed: another process of the run stopped or hung."""


class ShardError(ValueError):
    """A batch cannot be split evenly over the processes."""


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place in the run: rank in 0..size-1 (size 1 without a process group)."""

    rank: int = 0
    size: int = 1

    @classmethod
    def of(cls, group: Any = None) -> World:
        if not (dist.is_available() and dist.is_initialized()):
            return cls()
        return cls(dist.get_rank(group), dist.get_world_size(group))

    @property
    def writer(self) -> bool:
        """Rank 0: the one process that writes the run directory and prints."""
        return self.rank == 0


def launched() -> bool:
    """Whether torchrun started this process as one of several (WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def backend_for(device: str | torch.device) -> str:
    """NCCL for CUDA tensors, gloo for CPU ones."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def timeout() -> timedelta:
    return timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, TIMEOUT_S)))


@contextmanager
def session(device: str | torch.device = "cpu") -> Iterator[World]:
    """Join torchrun's process group for the body (no-op when not launched or already in
    one); the group is left at the end."""
    global _writer_group
    if not launched() or dist.is_initialized():
        yield World.of()
        return
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend_for(device), timeout=timeout())
    _writer_group = dist.new_group(backend="gloo", timeout=WRITER_TIMEOUT)
    try:
        yield World.of()
    finally:
        _writer_group = None
        dist.destroy_process_group()


def wrap(model: nn.Module) -> nn.Module:
    """`model` in DistributedDataParallel when there are several ranks (rank 0's parameters
    are broadcast to all), else `model` itself."""
    if World.of().size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    with collective("wrapping the model"):
        return DistributedDataParallel(model)


@contextmanager
def collective(what: str) -> Iterator[None]:
    """Turn a failed collective (a rank died, or the timeout passed) into PeerFailure."""
    try:
        yield
    except (RuntimeError, dist.DistError) as err:
        if isinstance(err, PeerFailure):
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PeerFailure(
            f"rank {World.of().rank}: another process of this run stopped while {what} "
            f"({first[:160]})"
        ) from None


def broadcast(obj: Any, group: Any = None) -> Any:
    """Rank 0's `obj` on every rank (itself without a process group)."""
    if World.of(group).size == 1:
        return obj
    box = [obj]
    with collective("agreeing on the run"):
        dist.broadcast_object_list(box, src=0, group=group)
    return box[0]


def barrier(group: Any = None) -> None:
    """Wait for every rank (a no-op alone)."""
    if World.of(group).size > 1:
        with collective("waiting for the other ranks"):
            dist.barrier(group=group)


def wait_for_writer() -> None:
    """Ranks > 0: wait until rank 0 has written the run (evaluation, report); rank 0 joins
    when it is done. On a long-timeout gloo group, since the report can take minutes."""
    if World.of().size > 1 and _writer_group is not None:
        with collective("waiting for rank 0 to write the run"):
            dist.barrier(group=_writer_group)


def rank_seed(seed: int, rank: int) -> int:
    """The seed of the global RNGs (dropout masks) of `rank`: the run's seed on rank 0."""
    return seed + 1_000_003 * rank


# ---- sharding ---------------------------------------------------------------------------


def shard(batch: Any, world: World) -> Any:
    """Rank r's rows [r·b, (r+1)·b) of every tensor of a global batch (B = N·b rows); a
    per-sequence length tensor is cut with its rows. ValueError unless N divides B."""
    fields = dataclasses.fields(batch)
    B = batch.size
    if B % world.size:
        raise ShardError(
            f"a batch of {B} cannot be split evenly over {world.size} processes; "
            f"use a batch divisible by {world.size}"
        )
    b = B // world.size
    rows = slice(world.rank * b, (world.rank + 1) * b)
    parts = {f.name: getattr(batch, f.name) for f in fields}
    return type(batch)(**{k: None if v is None else v[rows] for k, v in parts.items()})


def _batch_dim(t: Tensor) -> int:
    # recurrent states are (layers, B, H) or (B, H) (see rnnkit.algorithms.tbptt._batch_of)
    return 1 if t.dim() == 3 else 0


def _map(fn, state: Any) -> Any:
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, tuple | list):
        return type(state)(_map(fn, s) for s in state)
    if isinstance(state, dict):
        return {k: _map(fn, v) for k, v in state.items()}
    return state


def gather_state(state: Any, group: Any = None) -> Any:
    """The carried state of every rank's streams, joined in rank order (the global state a
    checkpoint keeps). Every rank calls it; every rank gets the whole."""
    world = World.of(group)
    if world.size == 1 or state is None:
        return state

    def join(t: Tensor) -> Tensor:
        parts = [torch.empty_like(t) for _ in range(world.size)]
        with collective("saving a checkpoint"):
            dist.all_gather(parts, t.contiguous(), group=group)
        return torch.cat(parts, dim=_batch_dim(t))

    return _map(join, state)


def split_state(state: Any, world: World) -> Any:
    """This rank's streams of a global carried state (any number of ranks wrote it)."""
    if world.size == 1 or state is None:
        return state

    def part(t: Tensor) -> Tensor:
        dim = _batch_dim(t)
        B = t.shape[dim]
        if B % world.size:
            raise ValueError(f"{B} streams cannot be split evenly over {world.size} processes")
        b = B // world.size
        return t.narrow(dim, world.rank * b, b).clone()

    return _map(part, state)


# ---- what the ranks agree on after each step ----------------------------------------------


@dataclasses.dataclass(frozen=True)
class Agreed:
    """One step's outcome over all ranks: the global mean loss and item count, metric sums,
    whether any rank saw a non-finite value or a stop signal, and rank 0's clock."""

    loss: float
    count: int
    stats: dict[str, tuple[float, float]]
    finite: bool
    stop: bool
    elapsed: float


def agree(
    loss: float, count: int, stats: dict[str, tuple[float, float]], finite: bool, stop: bool,
    elapsed: float, group: Any = None,
) -> Agreed:  # fmt: skip
    """Sum the step's figures over the ranks in one all-reduce, so every rank takes the same
    decisions (divergence, stop, time budget, the schedule's clock)."""
    world = World.of(group)
    keys: Sequence[str] = sorted(stats)
    values = [loss * count, count, 0.0 if finite else 1.0, float(stop),
              elapsed if world.writer else 0.0]  # fmt: skip
    for k in keys:
        values += list(stats[k])
    flat = torch.tensor(values, dtype=torch.float64)
    with collective("training"):
        dist.all_reduce(flat, group=group)
    v = flat.tolist()
    total = int(round(v[1]))
    sums = {k: (v[5 + 2 * i], v[6 + 2 * i]) for i, k in enumerate(keys)}
    return Agreed(v[0] / max(total, 1), total, sums, v[2] == 0, v[3] > 0, v[4])


# ---- launching ----------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


INTERRUPTED = 130  # a rank's exit code after Ctrl-C / SIGTERM: it saved a checkpoint


def launch(nproc: int, args: Sequence[str], threads: int | None = None) -> int:
    """Run `python -m rnnkit *args` as `nproc` ranks on this machine with torchrun's elastic
    agent (rendezvous on a free loopback port, no restarts). Returns 0, or 130 when the run
    was interrupted;
    raises PeerFailure, in one line, when a rank failed (the agent has stopped the others).

    Ctrl-C or SIGTERM goes to the agent, which forwards one SIGTERM to the ranks: they agree on
    a step, save a checkpoint, and rank 0 prints the command that resumes the run."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args, parse_args

    # the agent's own lines (progress, its OMP_NUM_THREADS notice, the failure it reports)
    # are not the user's: PeerFailure says what failed, in one line
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    env = {LAUNCHED_ENV: "1",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads or 1))}  # fmt: skip
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the ranks inherit the agent's environment
    port = free_port()
    argv = ["--nnodes", "1", "--nproc-per-node", str(nproc), "--max-restarts", "0",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
            "--master-port", str(port), "--monitor-interval", "0.5", "-m", "rnnkit", *args]
    try:
        config, cmd, cmd_args = config_from_args(parse_args(argv))
        elastic_launch(config, cmd)(*cmd_args)
        return 0
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()
        if failure.exitcode == INTERRUPTED:
            return INTERRUPTED
        how = (f"was killed by signal {-failure.exitcode}" if failure.exitcode < 0
               else f"exited with code {failure.exitcode}")  # fmt: skip
        raise PeerFailure(f"rank {rank} (pid {failure.pid}) {how}; every rank stopped") from None
    except SignalException:
        # Ctrl-C / SIGTERM reached the agent (the ranks run in their own session): it has
        # sent them one SIGTERM, on which they stop together and save a checkpoint
        return INTERRUPTED
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
