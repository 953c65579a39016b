"""The training loop. Nothing in it knows about the model beyond `model.loss(batch, state)`.

Per step: take a batch, let the gradient algorithm turn it into updates (it calls `update`,
which clips, steps the optimiser and zeroes gradients), set the schedule's learning rate, log,
evaluate, checkpoint. Stop on the step/epoch/time budget, early stopping, a non-finite loss
(the last good checkpoint is kept), a callback, or Ctrl-C / SIGTERM (a checkpoint is saved
first). Where training stands is one `TrainerState`, saved in every checkpoint.

With a DistributedDataParallel model each rank trains on its rows of the same global batches,
the gradients are averaged before clipping, the ranks agree after every step on the loss, the
stop decisions and the clock, and checkpoints hold the global state (rnnkit.training.distributed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..algorithms import BPTT, GradientAlgorithm, build_algorithm
from ..atomic import append_jsonl, atomic_write_json, atomic_write_text
from ..config import TrainConfig, from_dict
from ..models.base import Batch
from . import distributed
from .callbacks import Callback
from .optim import Schedule, build_optimizer
from .progress import ProgressBar, StopSignals
from .run import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    WEIGHTS,
    RunError,
    build_checked,
    clean_debris,
    latest_checkpoint,
    load_checkpoint,
    read_metrics,
    read_run_config,
    run_config,
    save_checkpoint,
    save_weights,
)

BatchFn = Callable[[int, torch.Generator], Any]


@dataclasses.dataclass
class FitResult:
    """How `fit` ended.

    status: "completed" (budget reached), "early_stopped", "time_budget", "diverged"
    (non-finite loss or gradient; parameters of the bad step were not applied), "interrupted"
    (Ctrl-C or SIGTERM; a checkpoint was saved), or "stopped" (a callback set `should_stop`).
    """

    status: str
    message: str
    step: int
    train_loss: float | None
    val: dict[str, float] | None
    best: float | None
    best_step: int | None
    elapsed: float
    run_dir: Path | None

    @property
    def ok(self) -> bool:
        return self.status not in ("diverged",)


@dataclasses.dataclass
class TrainerState:
    """Where training stands: saved in every checkpoint (one key each in trainer.pt, beside the
    optimiser's, schedule's, RNG and algorithm states) and restored on resume."""

    step: int = 0  # optimiser steps taken
    epoch: int = 0  # passes completed over an iterable training set
    batch_in_epoch: int = 0  # batches of the current pass already used
    epoch_rng: torch.Tensor | None = None  # torch's RNG state when the current pass began
    elapsed: float = 0.0  # seconds of fit(), evaluations included (the time budget's clock)
    items: int = 0  # samples or tokens trained on
    best: float | None = None  # best value of the monitored validation metric
    best_step: int | None = None
    bad_evals: int = 0  # evaluations since the best one (early stopping)
    last_val: dict[str, float] | None = None  # the latest validation metrics

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TrainerState:
        """From a checkpoint's state dict (other keys ignored)."""
        return cls(**{f.name: state[f.name] for f in dataclasses.fields(cls)})


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (call before building the model for reproducible init)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Trains any model with the loss contract, with a pluggable gradient algorithm.

    Args:
        model: an nn.Module with `loss(batch, state=None) -> StepOutput` (rnnkit.models), or
            one wrapped in DistributedDataParallel: every rank is given the same global
            batches and trains on its rows of each (see `shard`), gradients are averaged
            across ranks before clipping (so N ranks × batch b step as one process × batch
            N·b), the ranks agree on every stop decision, and rank 0 alone writes `run_dir`
            (see rnnkit.training.distributed).
        algorithm: how gradients are computed (default BPTT()).
        config: a TrainConfig (budget, optimiser, schedule, clipping, eval, checkpoints).
        run_dir: where config.json, model.safetensors, metrics.jsonl and checkpoint/ go
            (None: train in memory only; nothing can be resumed).
        callbacks: Callback instances.
        extra: JSON-ready task metadata stored in config.json under "extra" (vocabulary...).
        optimizer: optional `fn(params) -> torch.optim.Optimizer` replacing config's choice.
        scheduler: optional `fn(optimizer) -> torch LR scheduler`, stepped once per step,
            replacing config's schedule.
        device: where the model and batches go.
        overwrite: allow a fresh run in a directory that already holds one (its checkpoints
            and metrics are deleted).
        console: a rich Console for the progress bar and messages.
        resume_command: the command that continues this run, named in the message of an
            interrupted fit (default: the `rnnkit.training.resume` call).
        shard: with a DDP model, take this rank's rows of each batch (the data gives global
            batches); False when each rank's data is already its own (a DistributedSampler).
        flush_denormal: flush subnormal floats to zero during `fit` (torch.set_flush_denormal;
            the setting before fit is restored after it). Gradients that fade over long
            sequences reach subnormals, which x86 computes ~10x slower (benchmarks/README.md
            "Per-call overhead ..."); flushing only changes values below ~1e-38.

    Where training stands (step, epoch, elapsed time, best value...) is `trainer.state`, a
    TrainerState saved in every checkpoint; `step`, `epoch`, `elapsed` and `items` read it.

    Data: `fit(train, val)` takes either a batch function `fn(step, generator) -> batch`
    (fresh batches forever; the generator is the Trainer's, saved in checkpoints, so resuming
    replays the same batches) or a re-iterable (a list, a DataLoader): one pass is an epoch.
    A batch is a `Batch` or a tuple (inputs, targets[, lengths[, target_lengths]]).

    Example:
        >>> trainer = Trainer(model, TBPTT(50), TrainConfig(steps=2000, eval_every=200),
        ...                   run_dir="runs/lm", extra={"vocab": chars})
        >>> result = trainer.fit(train_batches, val_batches)
        >>> result.status, result.best
    """

    def __init__(
        self,
        model: nn.Module,
        algorithm: GradientAlgorithm | None = None,
        config: TrainConfig | None = None,
        run_dir: str | Path | None = None,
        callbacks: Sequence[Callback] = (),
        extra: dict[str, Any] | None = None,
        optimizer: Callable[[Any], torch.optim.Optimizer] | None = None,
        scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
        device: str | torch.device = "cpu",
        overwrite: bool = False,
        console: Any = None,
        resume_command: str | None = None,
        shard: bool = True,
        flush_denormal: bool = True,
    ):
        self.ddp = model if isinstance(model, DistributedDataParallel) else None
        self.world = distributed.World()
        # every rank reads the run directory (to resume); rank 0 alone writes it
        self.source_dir = None if run_dir is None else Path(run_dir)
        if self.ddp is not None:
            # the loss contract is the wrapped model's: the algorithms call model.loss, which
            # DDP's forward-driven reducer never sees, so `_update` averages the gradients
            model = self.ddp.module
            self.world = distributed.World.of(self.ddp.process_group)
            if not self.world.writer:
                run_dir = None
        self.shard = shard and self.world.size > 1
        self.flush_denormal = flush_denormal
        if not hasattr(model, "loss"):
            raise TypeError(
                f"Trainer: {type(model).__name__} has no loss(batch, state) method "
                "(see rnnkit.models.base)"
            )
        self.config = config if config is not None else TrainConfig()
        if not isinstance(self.config, TrainConfig):
            raise TypeError(f"Trainer: config must be a TrainConfig, got {type(config).__name__}")
        self.algorithm = algorithm if algorithm is not None else BPTT()
        if not hasattr(self.algorithm, "train_batch"):
            raise TypeError("Trainer: algorithm must follow rnnkit.algorithms.GradientAlgorithm")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.callbacks = list(callbacks)
        self.extra = dict(extra or {})
        self.overwrite = overwrite
        self.optimizer = (optimizer or (lambda ps: build_optimizer(ps, self.config)))(
            list(model.parameters())
        )
        self.scheduler = scheduler(self.optimizer) if scheduler is not None else None
        self.schedule = Schedule(self.config)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.console = console
        self.resume_command = resume_command
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.state = TrainerState()
        self.should_stop = False
        self.window = _Window()

    # read-outs for callbacks and progress displays; the loop writes self.state

    @property
    def step(self) -> int:
        return self.state.step

    @property
    def epoch(self) -> int:
        return self.state.epoch

    @property
    def elapsed(self) -> float:
        return self.state.elapsed

    @property
    def items(self) -> int:
        return self.state.items

    # ---- construction from a run directory ----------------------------------------------

    @classmethod
    def from_run(cls, run_dir: str | Path, **overrides: Any) -> Trainer:
        """A Trainer that continues a run: model, TrainConfig and algorithm from config.json.

        Keyword arguments replace TrainConfig fields (e.g. steps=...) or are passed to the
        constructor (callbacks, device, optimizer, scheduler, console). Call
        `fit(train, val, resume=True)` next.
        """
        data = read_run_config(run_dir)
        ckpt = latest_checkpoint(run_dir)
        weights = (ckpt if ckpt is not None else Path(run_dir)) / WEIGHTS
        model = build_checked(data["model"], weights, Path(run_dir) / CONFIG)
        try:
            cfg = from_dict(TrainConfig, data["train"]) if data.get("train") else TrainConfig()
            algo = build_algorithm(data["algorithm"]) if data.get("algorithm") else BPTT()
        except (ValueError, TypeError, KeyError) as err:
            raise RunError(f"{run_dir}: invalid {CONFIG} ({err})") from err
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        cfg_over = {k: overrides.pop(k) for k in list(overrides) if k in fields}
        if cfg_over:
            cfg = dataclasses.replace(cfg, **cfg_over)
        overrides.setdefault("extra", data.get("extra"))
        return cls(model, algo, cfg, run_dir=run_dir, **overrides)

    # ---- the loop -----------------------------------------------------------------------

    def fit(
        self,
        train: BatchFn | Iterable[Any],
        val: BatchFn | Iterable[Any] | None = None,
        resume: bool = False,
    ) -> FitResult:
        """Train until a budget or a stop condition; see FitResult for how it can end.

        Args:
            train: a batch function `fn(step, generator)` or a re-iterable of batches.
            val: the same kinds, for evaluation (`eval_every`, early stopping, best weights).
            resume: continue from run_dir's latest checkpoint (a fresh start only into an
                empty or new run_dir: a run without a checkpoint is refused, so its metrics
                and saved weights are never mixed with or replaced by a new start's).
        """
        with _denormals_flushed(self.flush_denormal):
            return self._fit(train, val, resume)

    def _fit(self, train, val, resume: bool) -> FitResult:
        cfg = self.config
        if (resume and self.source_dir is not None
                and latest_checkpoint(self.source_dir) is None):  # fmt: skip
            kept = [n for n in (CONFIG, WEIGHTS, METRICS) if (self.source_dir / n).exists()]
            if kept:
                raise RunError(
                    f"{self.source_dir}: has no checkpoint to resume (it stopped before its "
                    f"first); its {', '.join(kept)} are kept: train anew with overwrite=True "
                    "or into another directory"
                )
        self._prepare_run_dir(resume)
        ckpt = None
        if resume and self.source_dir is not None:  # rank 0's choice, once it has prepared
            ckpt = self._broadcast(latest_checkpoint(self.source_dir))
        rng = None
        if ckpt is not None:
            rng = self._restore(ckpt)
        else:
            seed_everything(distributed.rank_seed(cfg.seed, self.world.rank))
            self.generator.manual_seed(cfg.seed)  # the same global batches on every rank
        resumed = rng is not None
        st = self.state
        batches = _Batches(train, self, resumed)
        progress = ProgressBar(self, cfg.progress and self.world.writer)
        for cb in self.callbacks:
            cb.on_fit_start(self)
        if resumed:  # last: replaying the epoch's batches and the callbacks may draw from it
            _set_rng_state(rng, self.generator)
            if not self.world.writer:  # the RNGs saved are rank 0's; dropout masks differ per rank
                torch.manual_seed(distributed.rank_seed(cfg.seed + self.state.step,
                                                        self.world.rank))  # fmt: skip
        if resumed:
            self.log({"event": "resumed"})
        status, message = "completed", f"trained {cfg.steps} steps"
        start = time.perf_counter() - st.elapsed
        with StopSignals() as stop, progress:
            while True:
                if st.step >= cfg.steps:
                    break
                if cfg.time_minutes is not None and st.elapsed >= cfg.time_minutes * 60:
                    status, message = "time_budget", f"time budget of {cfg.time_minutes} min used"
                    break
                batch = batches.next()
                if batch is None:
                    message = f"trained {cfg.epochs} epochs"
                    break
                t0 = time.perf_counter()
                result = self._train_step(batch)
                st.elapsed = time.perf_counter() - start
                agreed_stop = None
                if self.ddp is not None:  # one decision for all ranks, on rank 0's clock
                    result, st.elapsed, agreed_stop = self._agree(result, stop.requested)
                if not result.finite or self._exploded(result.loss):
                    status, message = "diverged", self._diverged_message(result)
                    self.log({"event": "diverged", "message": message})
                    break
                st.step += 1
                st.items += result.count
                self.window.add(result, time.perf_counter() - t0)
                logs = {"step": st.step, "loss": result.loss, "lr": self.lr}
                for cb in self.callbacks:
                    cb.on_step_end(self, logs)
                if (cfg.log_every and st.step % cfg.log_every == 0) or st.step == cfg.steps:
                    self._log_train()
                progress.update(result)
                if val is not None and cfg.eval_every and st.step % cfg.eval_every == 0:
                    if self._evaluate_and_track(val):
                        status = "early_stopped"
                        message = f"no improvement of val {cfg.monitor} in {cfg.patience} evals"
                        self.should_stop = True
                if cfg.checkpoint_every and st.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                # alone, a signal during this step's callbacks, evaluation or checkpoint counts;
                # with DDP only the one all ranks agreed on (a later one stops the next step)
                if stop.requested if agreed_stop is None else agreed_stop:
                    status = "interrupted"
                    message = f"interrupted by {stop.name} at step {st.step}"
                    break
                if self.should_stop:
                    if status == "completed":
                        status, message = "stopped", f"stopped by a callback at step {st.step}"
                    break
            st.elapsed = time.perf_counter() - start
            if status != "diverged":
                self._finish(val, status)
        if status == "interrupted" and self.run_dir is not None:
            how = self.resume_command or f"rnnkit.resume({str(self.run_dir)!r}, train, val)"
            message += f"; checkpoint saved in {self.run_dir / CHECKPOINT}; resume with: {how}"
        if status != "diverged":
            self.log({"event": status, "message": message})
        result = FitResult(
            status,
            message,
            st.step,
            self.window.last_loss,
            st.last_val,
            st.best,
            st.best_step,
            st.elapsed,
            self.run_dir,
        )
        progress.message(message, error=(status == "diverged"))
        for cb in self.callbacks:
            cb.on_fit_end(self, result)
        return result

    def _train_step(self, batch: Any):
        self.model.train()
        for g, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            if self.scheduler is None:
                g["lr"] = base * self.schedule.factor(self.state.step, self.state.elapsed)
        self.optimizer.zero_grad(set_to_none=True)
        batch = Batch.of(batch)
        if self.shard:
            batch = distributed.shard(batch, self.world)
        batch = batch.to(self.device)
        result = self.algorithm.train_batch(self.model, batch, self._update)
        if result.finite and self.scheduler is not None:
            self.scheduler.step()
        return result

    def _agree(self, result, stop: bool):
        """(the step's result over all ranks, rank 0's elapsed time, whether any rank was
        asked to stop): the same on every rank, so all take the same decisions."""
        a = distributed.agree(result.loss, result.count, result.stats, result.finite, stop,
                              self.state.elapsed, self.ddp.process_group)  # fmt: skip
        agreed = dataclasses.replace(result, loss=a.loss, count=a.count, stats=a.stats,
                                     finite=a.finite)  # fmt: skip
        return agreed, a.elapsed, a.stop

    def _broadcast(self, obj: Any) -> Any:
        if self.ddp is None:
            return obj
        distributed.barrier(self.ddp.process_group)  # rank 0 has prepared the run directory
        return distributed.broadcast(obj, self.ddp.process_group)

    def _update(self) -> bool:
        """Clip, check, step the optimiser, zero gradients. False if gradients are not finite."""
        cfg = self.config
        if self.ddp is not None:
            with distributed.collective("training"):
                _average_gradients(self.optimizer, self.ddp.process_group)
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        if cfg.clip == "norm":
            norm = nn.utils.clip_grad_norm_(params, cfg.clip_value)
        else:
            norm = nn.utils.clip_grad_norm_(params, float("inf"))
            if cfg.clip == "value":
                nn.utils.clip_grad_value_(params, cfg.clip_value)
        if not torch.isfinite(norm):
            self._nonfinite_grad = True
            self.optimizer.zero_grad(set_to_none=True)
            return False
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return True

    EXPLOSION = 100.0  # a loss this many times its first value (at least 1) has diverged

    def _exploded(self, loss: float) -> bool:
        """True once the loss exceeds EXPLOSION × max(|its first value in this process|, 1): no
        working run climbs that far, and a finite loss of 317,251 nats/char is no result."""
        if not hasattr(self, "_first_loss"):
            self._first_loss = loss
        return loss > self.EXPLOSION * max(abs(self._first_loss), 1.0)

    def _diverged_message(self, result) -> str:
        if result.finite:  # the update of this step has been applied: stop, save nothing
            cause = f"loss exploded to {result.loss:.4g} (it started at {self._first_loss:.4g})"
        else:
            what = "gradient norm" if getattr(self, "_nonfinite_grad", False) else "loss"
            cause = f"{what} became non-finite ({result.loss}); the update was not applied"
        where = "nothing was saved"
        if self.run_dir is not None:
            ckpt = latest_checkpoint(self.run_dir)
            where = (
                f"the last good checkpoint (step {_step_of(ckpt)}) is intact in {ckpt.parent}"
                if ckpt is not None
                else "no checkpoint had been saved yet"
            )
        return (
            f"{cause} at step {self.step + 1}; training stopped; {where}. "
            "Lower the learning rate or clip harder."
        )

    # ---- evaluation ---------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(
        self, data: BatchFn | Iterable[Any], max_batches: int | None = None
    ) -> dict[str, float]:
        """Mean loss and metrics over `data` in eval mode; RNG states are left untouched.

        A batch function is called with a generator seeded from config.seed, so every
        evaluation sees the same batches (`max_batches` of them, default eval_batches or 10).
        """
        max_batches = max_batches or self.config.eval_batches
        was_training = self.model.training
        rng = _rng_state(self.generator)
        self.model.eval()
        loss_sum, count, stats = 0.0, 0, {}
        try:
            if callable(data) and not hasattr(data, "__iter__"):
                gen = torch.Generator().manual_seed(self.config.seed + 1_000_003)
                source = (data(i, gen) for i in range(max_batches or 10))
            else:
                source = iter(data)
            for i, batch in enumerate(source):
                if max_batches is not None and i >= max_batches:
                    break
                out = self.model.loss(Batch.of(batch).to(self.device))
                loss_sum += float(out.loss) * out.count
                count += out.count
                for k, (s, n) in out.stats.items():
                    s0, n0 = stats.get(k, (0.0, 0.0))
                    stats[k] = (s0 + s, n0 + n)
        finally:
            _set_rng_state(rng, self.generator)
            self.model.train(was_training)
        if count == 0:
            raise ValueError("evaluate: the validation data gave no batches")
        result = {"loss": loss_sum / count}
        result.update({k: s / max(n, 1) for k, (s, n) in stats.items()})
        return result

    def _evaluate_and_track(self, val) -> bool:
        """Evaluate, log, keep the best weights; True when early stopping should stop."""
        cfg, st = self.config, self.state
        metrics = self.evaluate(val)
        if cfg.monitor not in metrics:
            raise ValueError(
                f"Trainer: monitor {cfg.monitor!r} is not among the metrics {sorted(metrics)}"
            )
        value = metrics[cfg.monitor]
        better = st.best is None or (
            value < st.best if cfg.monitor_mode == "min" else value > st.best
        )
        self.schedule.observe(value, better)
        if better:
            st.best, st.best_step, st.bad_evals = value, st.step, 0
            if self.run_dir is not None:
                save_weights(self.model, self.run_dir / WEIGHTS)
        else:
            st.bad_evals += 1
        st.last_val = metrics
        record = {"split": "val", **metrics, "best": better}
        for cb in self.callbacks:
            cb.on_eval_end(self, record)
        self.log(record)
        return bool(cfg.patience) and st.bad_evals >= cfg.patience

    def _finish(self, val, status: str) -> None:
        """Final evaluation, weights and checkpoint (not after divergence)."""
        cfg, st = self.config, self.state
        if (
            val is not None
            and status in ("completed", "time_budget")
            and st.step > 0
            and (cfg.eval_every == 0 or st.step % cfg.eval_every != 0)
        ):
            self._evaluate_and_track(val)
        rd = self.run_dir
        if rd is not None and (st.best_step is None or not (rd / WEIGHTS).exists()):
            save_weights(self.model, rd / WEIGHTS)
        self.save_checkpoint()  # on every rank: the carried state is gathered from all

    # ---- logging ------------------------------------------------------------------------

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def log(self, record: dict[str, Any]) -> None:
        """Append a record (with step and time) to metrics.jsonl when there is a run_dir."""
        record = {"step": self.state.step, "time": round(self.state.elapsed, 3), **record}
        if self.run_dir is not None:
            append_jsonl(self.run_dir / METRICS, _jsonable(record))

    def _log_train(self) -> None:
        w = self.window
        if not w.count:
            return
        record = {
            "split": "train",
            "epoch": self.state.epoch,
            "loss": w.loss,
            "lr": self.lr,
            f"{w.unit}_per_s": w.throughput,
            **w.metrics,
        }
        w.clear()
        for cb in self.callbacks:
            cb.on_log(self, record)
        self.log(record)

    # ---- run directory and checkpoints --------------------------------------------------

    def _prepare_run_dir(self, resume: bool) -> None:
        if self.source_dir is None and resume:
            raise ValueError("Trainer: resume=True needs a run_dir")
        if self.run_dir is None:
            return
        rd = self.run_dir
        if rd.exists() and not rd.is_dir():
            raise RunError(f"{rd}: exists and is not a directory")
        if rd.is_dir():
            clean_debris(rd)  # temp files and half-written checkpoints of a crashed process
        has_run = (rd / CONFIG).exists() or (rd / CHECKPOINT).exists()
        if has_run and not resume:
            if not self.overwrite:
                raise RunError(
                    f"{rd}: already holds a run; resume it (resume=True) or pass "
                    "overwrite=True / choose another directory"
                )
            for name in (CHECKPOINT,):
                shutil.rmtree(rd / name, ignore_errors=True)
            for name in (METRICS, WEIGHTS):
                (rd / name).unlink(missing_ok=True)
        rd.mkdir(parents=True, exist_ok=True)
        algo_cfg = self.algorithm.config() if hasattr(self.algorithm, "config") else None
        atomic_write_json(rd / CONFIG, run_config(self.model, self.config, algo_cfg, self.extra))

    def save_checkpoint(self) -> Path | None:
        """Save model, optimiser, schedule, RNG states and the TrainerState (atomically).
        With DDP every rank calls it (the carried state of all streams is gathered); rank 0
        writes."""
        carry = self.algorithm.carry_state()
        if self.ddp is not None:
            carry = distributed.gather_state(carry, self.ddp.process_group)
        if self.run_dir is None:
            return None
        state = {
            **self.state.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "schedule": self.schedule.state_dict(),
            "rng": _rng_state(self.generator),
            "carry": carry,
            "window": self.window.state_dict(),
        }
        path = save_checkpoint(self.run_dir, self.state.step, self.model, state)
        for cb in self.callbacks:
            cb.on_checkpoint(self, path)
        return path

    def _restore(self, path: Path) -> dict[str, Any]:
        """Restore everything from the checkpoint at `path` but the RNG states, which are
        returned, for `fit` to set once nothing else can draw from them."""
        state = load_checkpoint(path, self.model)
        self.model.to(self.device)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            self.schedule.load_state_dict(state["schedule"])
        except (ValueError, KeyError) as err:
            raise RunError(f"{path}: checkpoint does not fit this optimiser ({err})") from err
        self.state = TrainerState.from_dict(state)
        try:  # the global state of the streams, whatever number of ranks saved it (read onto
            # the CPU, whatever device saved it: moved to this one, as the model was)
            carry = distributed.split_state(state["carry"], self.world)
            self.algorithm.load_carry(distributed._map(lambda t: t.to(self.device), carry))
        except ValueError as err:
            raise RunError(f"{path}: {err}") from None
        self.window.load_state_dict(state["window"])
        if not self.world.writer:  # rank 0 alone trims the metrics
            return state["rng"]
        # metrics logged after this checkpoint belong to the abandoned future: drop them
        records = read_metrics(self.run_dir)
        kept = [r for r in records if r.get("step", 0) <= self.state.step]
        if len(kept) != len(records):
            text = "".join(_json_line(r) for r in kept)
            atomic_write_text(self.run_dir / METRICS, text)
        return state["rng"]


# ---- helpers ------------------------------------------------------------------------------


class _Batches:
    """Batches from a batch function or a re-iterable, replayable after a resume."""

    def __init__(self, source: Any, trainer: Trainer, resumed: bool):
        self.source, self.t = source, trainer
        self.is_fn = callable(source) and not hasattr(source, "__iter__")
        if not self.is_fn and not hasattr(source, "__iter__"):
            raise TypeError("fit: train must be a batch function fn(step, generator) or iterable")
        if not self.is_fn and isinstance(source, Iterator):  # iter() of a DataLoader draws
            raise TypeError(
                "fit: train must be re-iterable (a list, a DataLoader), not an "
                "iterator; wrap a generator in a function fn(step, generator)"
            )
        self.it = None
        if resumed and not self.is_fn:
            self._replay()

    def _replay(self) -> None:
        """Re-create the current epoch's iterator as it was, and skip the batches used (this
        draws from torch's RNG: `fit` restores the checkpoint's RNG states after it)."""
        st = self.t.state
        if st.epoch_rng is not None:
            torch.set_rng_state(st.epoch_rng)
        self.it = iter(self.source)
        for _ in range(st.batch_in_epoch):
            next(self.it)

    def next(self) -> Any:
        t, st = self.t, self.t.state
        if self.is_fn:
            return self.source(st.step, t.generator)
        while True:
            if self.it is None:
                if t.config.epochs is not None and st.epoch >= t.config.epochs:
                    return None
                st.epoch_rng = torch.get_rng_state()
                st.batch_in_epoch = 0
                self.it = iter(self.source)
            try:
                batch = next(self.it)
            except StopIteration:
                self.it = None
                st.epoch += 1
                t.algorithm.reset()  # streams restart with the epoch
                if st.batch_in_epoch == 0:
                    raise ValueError("fit: the training data gave no batches") from None
                continue
            st.batch_in_epoch += 1
            return batch


class _Window:
    """Sums since the last train log line."""

    def __init__(self) -> None:
        self.clear()
        self.last_loss: float | None = None
        self.unit = "samples"

    def clear(self) -> None:
        self.loss_sum, self.count, self.seconds, self.stats = 0.0, 0, 0.0, {}

    def add(self, result, seconds: float) -> None:
        self.loss_sum += result.loss * result.count
        self.count += result.count
        self.seconds += seconds
        self.unit = result.unit
        self.last_loss = result.loss
        for k, (s, n) in result.stats.items():
            s0, n0 = self.stats.get(k, (0.0, 0.0))
            self.stats[k] = (s0 + s, n0 + n)

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.count, 1)

    @property
    def throughput(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    @property
    def metrics(self) -> dict[str, float]:
        return {k: s / max(n, 1) for k, (s, n) in self.stats.items()}

    def state_dict(self) -> dict:
        return {
            "loss_sum": self.loss_sum,
            "count": self.count,
            "seconds": self.seconds,
            "stats": {k: list(v) for k, v in self.stats.items()},
            "last_loss": self.last_loss,
            "unit": self.unit,
        }

    def load_state_dict(self, s: dict) -> None:
        self.loss_sum, self.count, self.seconds = s["loss_sum"], s["count"], s["seconds"]
        self.stats = {k: tuple(v) for k, v in s["stats"].items()}
        self.last_loss, self.unit = s["last_loss"], s["unit"]


def _average_gradients(optimizer: torch.optim.Optimizer, group: Any) -> None:
    """Mean of every parameter's gradient over the ranks, in one all-reduce (a parameter
    without a gradient on this rank counts as zero, so every rank sends the same tensors)."""
    params = [p for g in optimizer.param_groups for p in g["params"]]
    grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, group=group)
    flat /= dist.get_world_size(group)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "data": generator.get_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["data"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _step_of(ckpt: Path) -> int:
    return int(ckpt.name.split("-")[1])


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in record.items():
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = str(v)
        out[k] = v
    return out


def _json_line(record: dict[str, Any]) -> str:
    import json

    return json.dumps(record, sort_keys=True) + "\n"


def resume(
    run_dir: str | Path,
    train: BatchFn | Iterable[Any],
    val: BatchFn | Iterable[Any] | None = None,
    **overrides: Any,
) -> FitResult:
    """Continue a run from its latest checkpoint, exactly where it stopped.

    Example:
        >>> result = resume("runs/lm", train_batches, val_batches, steps=4000)
    """
    return Trainer.from_run(run_dir, **overrides).fit(train, val, resume=True)


def _flushing_denormals() -> bool:
    """Whether subnormal floats are flushed now (torch has no getter: a subnormal times one
    is zero when they are)."""
    return torch.tensor([1e-39]).mul(1.0).item() == 0.0


@contextlib.contextmanager
def _denormals_flushed(on: bool) -> Iterator[None]:
    """Subnormals flushed to zero inside (when `on`), the previous setting restored after."""
    if not on:
        yield
        return
    was = _flushing_denormals()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was)
