"""Ensemble members trained at once, each in its own process (driver.fit_members, jobs > 1).

    member_plan(requested, n, threads)  -> (members at once, torch threads of each)
    fit_parallel(task, ctx, n, fit, jobs, threads)
        `jobs` fresh 'spawn' processes (never fork: torch's thread pool has started), each
        with torch.set_num_threads(threads), take member indices in order 0, 1, .. and train
        member k exactly as the sequential path does: seeded member_seed(--seed, k), built by
        task.build, trained by `fit` into member_dir(out, k). A member's weights therefore do
        not depend on the path at the same thread count. The parent loads the members back.

Signals: the workers sit in their own process group, so a terminal's Ctrl-C reaches the
parent alone; its first SIGINT / SIGTERM is forwarded as one SIGTERM to each worker (each
Trainer then stops after its step and saves a checkpoint, as a sequential member would) and no
further member starts; a second one terminates the workers. A worker whose parent has died
stops the same way. An error in a member stops the others and is raised in the parent as one
line, "member k of n: ...", of the member's own exception type (its traceback chained).
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import queue
import signal
import threading
import time
import traceback
from typing import Any


def member_plan(requested: int | None, n: int, threads: int) -> tuple[int, int]:
    """(members trained at once, torch threads of each) for an n-member ensemble on `threads`
    torch threads: `requested` at once (None: one member per thread), at most n; each member
    an equal share of the threads (at least 1). Several torchrun ranks: one at a time."""
    from ..training import distributed

    if distributed.World.of().size > 1:
        return 1, threads
    jobs = max(1, min(n, threads if requested is None else requested))
    return jobs, max(1, threads // jobs)


class RemoteTraceback(Exception):
    """The traceback of an error raised in a member's process (chained to the parent's)."""

    def __str__(self) -> str:
        return self.args[0]


def _portable(err: Exception) -> Exception:
    """`err` if it survives pickling, else a RuntimeError with its type and message."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")


def _raised(err: Exception, where: str) -> Exception:
    """`err` again, of its type where its type allows, its message prefixed by `where`."""
    try:
        return type(err)(f"{where}: {err}")
    except Exception:
        return RuntimeError(f"{where}: {type(err).__name__}: {err}")


def _watch_parent(parent: int) -> None:
    """Stop this worker (a SIGTERM to itself: a checkpoint, then out) if its parent dies."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def _worker(payload: bytes, todo, done, stopping, threads: int, parent: int) -> None:
    """One worker process: train the members it takes from `todo` until None (or a stop)."""
    os.setpgrp()  # the terminal's Ctrl-C goes to the parent, which forwards one SIGTERM
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # between members (fit has its own)
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    _watch_parent(parent)
    import torch

    torch.set_num_threads(threads)
    from ..training import seed_everything
    from .driver import Context, member_dir, member_seed

    task, fields, fit = pickle.loads(payload)
    config, out = fields.pop("config"), fields.pop("out")
    while not (stop.is_set() or stopping.is_set()):
        k = todo.get()
        if k is None:
            return
        seed = member_seed(fields["options"].seed, k)
        done.put(("start", k, seed))
        try:
            seed_everything(seed)  # as the sequential path: seed, then build (member 0 too)
            model = task.build(fields["options"], fields["data"])
            member = Context(
                **fields, model=model, out=member_dir(out, k), console=None,
                say=lambda text, k=k: done.put(("say", k, text)), member=k,
                config=dataclasses.replace(config, seed=seed, progress=False),
            )  # fmt: skip
            fitted = fit(member)
        except Exception as err:
            done.put(("error", k, (_portable(err), traceback.format_exc())))
            return
        done.put(("end", k, fitted.result))


def fit_parallel(task: Any, ctx: Any, n: int, fit: Any, jobs: int, threads: int):
    """driver.fit_members with `jobs` members at once, `threads` torch threads each (see the
    module's docstring). `fit` (a Context -> Fitted) must pickle: a task's bound method.
    -> (the members' Fitted, in member order, of those that ran; the result the run ends
    with: the first interrupted member's, else member 0's)."""
    import multiprocessing

    from ..training import Trainer, load_run
    from ..training.progress import StopSignals
    from .driver import member_dir, member_seed
    from .task import Fitted

    mp = multiprocessing.get_context("spawn")
    fields = {"options": ctx.options, "data": ctx.data, "config": ctx.config, "extra": ctx.extra,
              "resume": ctx.resume, "resume_command": ctx.resume_command}  # fmt: skip
    payload = pickle.dumps((task, {**fields, "out": ctx.out}, fit))
    todo, done, stopping = mp.Queue(), mp.Queue(), mp.Event()
    for k in [*range(n), *[None] * jobs]:
        todo.put(k)
    ctx.say(f"training {n} members {jobs} at a time, {threads} torch thread(s) each")
    workers = [mp.Process(target=_worker, args=(payload, todo, done, stopping, threads,
                                                os.getpid()), daemon=True)
               for _ in range(jobs)]  # fmt: skip
    results: dict[int, Any] = {}
    running: set[int] = set()
    failure = None
    stopped = False

    def stop_all() -> None:
        stopping.set()
        for w in workers:
            if w.is_alive():
                os.kill(w.pid, signal.SIGTERM)

    try:
        with StopSignals() as stop:
            for w in workers:
                w.start()
            while any(w.is_alive() for w in workers) or not done.empty():
                if stop.requested and not stopped:
                    stopped = True
                    stop_all()
                try:
                    what, k, value = done.get(timeout=0.2)
                except queue.Empty:
                    continue
                if what == "start":
                    running.add(k)
                    ctx.say(f"member {k + 1} of {n} (seed {value}) started")
                elif what == "say":
                    ctx.say(value)
                elif what == "end":
                    running.discard(k)
                    results[k] = value
                    ctx.say(f"member {k + 1} of {n}: {value.status}, {value.step} steps in "
                            f"{value.elapsed:.0f} s")  # fmt: skip
                elif failure is None:  # "error": stop the others, raise it once they stopped
                    running.discard(k)
                    failure = (k, *value)
                    stop_all()
    finally:
        for w in workers:  # a second signal, or an error here: no worker outlives the parent
            w.join(timeout=None if failure or stopped else 0)
            if w.is_alive():
                w.terminate()
                w.join(5)
                if w.is_alive():
                    w.kill()
    if failure is not None:
        k, err, tb = failure
        raise _raised(err, f"member {k + 1} of {n}") from RemoteTraceback(tb)
    lost = sorted(running)
    if lost and not stopped:
        codes = {w.exitcode for w in workers}
        raise RuntimeError(f"member {lost[0] + 1} of {n}: its process ended without a result "
                           f"(exit codes {sorted(c for c in codes if c is not None)})")
    fits = []
    for k in sorted(results):
        result, out = results[k], member_dir(ctx.out, k)
        model = load_run(out).model
        config = dataclasses.replace(ctx.config, seed=member_seed(ctx.options.seed, k))
        # on the CPU, whatever --device: it trains nothing, and its model is the one evaluated
        # (members train at once on the CPU alone: sequence_classify.ensemble_plan)
        trainer = Trainer(model, task.algorithm(ctx.options), config, run_dir=out,
                          extra=ctx.extra, overwrite=True, console=ctx.console,
                          resume_command=ctx.resume_command)  # fmt: skip
        # the finished member's place, as its own Trainer ended (the test metrics are logged
        # at it)
        trainer.state.step, trainer.state.elapsed = result.step, result.elapsed
        fits.append(Fitted(model, trainer, result))
    if not fits:
        raise KeyboardInterrupt  # stopped before any member trained a step
    if stopped:
        ctx.say(f"stopped: {len(fits)} of {n} members ran")
    interrupted = [f.result for f in fits if f.result.status == "interrupted"]
    return fits, interrupted[0] if interrupted else fits[0].result
