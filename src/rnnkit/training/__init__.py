"""Training: the Trainer loop, run directories, checkpoints, callbacks, streaming inference.

    trainer    Trainer, TrainerState (what a checkpoint restores), FitResult, resume,
               seed_everything
    run        run directories: load_run -> Run, RunError, save_model, write_run_json,
               checkpoints (atomic via rnnkit.atomic; the previous one survives a failed write)
    progress   ProgressBar, StopSignals (SIGINT / SIGTERM: checkpoint, then stop)
    callbacks  Callback, LambdaCallback
    report     Report: a run's self-contained report.html (sections, inline plots)
    stream     Streamer (stateful step/chunk inference), stream_batches (stateful batching)
    machine    machine_info(): CPU, threads, load average, versions (recorded in every run);
               auto_threads(): the cores other work leaves idle

The loop knows nothing about the model: it calls the gradient algorithm
(rnnkit.algorithms: BPTT, TBPTT, ...), which calls `model.loss(batch, state)`.
Imports: config, atomic, kernels (machine info), models, algorithms; imported by tasks and cli.

Example (a character language model, truncated BPTT over B parallel streams):

    from rnnkit.config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig, TrainConfig
    from rnnkit.models import build_model
    from rnnkit.algorithms import TBPTT
    from rnnkit.training import Trainer, load_run, stream_batches

    V = len(chars)
    model = build_model(ManyToManyConfig(InputConfig("tokens", V, 64),
                                         HeadConfig("softmax", V), RNNConfig("lstm", 256)))
    train = stream_batches(train_ids, batch_size=32, seq_len=128)    # re-iterable
    val = stream_batches(val_ids, batch_size=32, seq_len=128)
    cfg = TrainConfig(steps=2000, lr=2e-3, eval_every=200, checkpoint_every=200, patience=5)
    result = Trainer(model, TBPTT(k1=64, k2=128), cfg, run_dir="runs/lm",
                     extra={"vocab": chars}).fit(train, val)
    print(result.status, result.message)          # "completed", "diverged", "interrupted"...

    run = load_run("runs/lm")                      # RunError if not a run / corrupted
    logits, state = run.model(ids)                 # (B, T) -> (B, T, V), eval mode
    chars = run.extra["vocab"]

    resume("runs/lm", train, val, steps=4000)      # continue exactly where it stopped
"""

from __future__ import annotations

from .callbacks import Callback, LambdaCallback
from .machine import auto_threads, load_average, machine_info, set_auto_threads
from .progress import ProgressBar, StopSignals, TimeProgress
from .run import Run, RunError, load_run, prepare_out_dir, save_model, write_run_json
from .stream import Streamer, stream_batches
from .trainer import FitResult, Trainer, TrainerState, resume, seed_everything

__all__ = [
    "Callback",
    "FitResult",
    "LambdaCallback",
    "ProgressBar",
    "Run",
    "RunError",
    "StopSignals",
    "TimeProgress",
    "Streamer",
    "Trainer",
    "TrainerState",
    "auto_threads",
    "load_average",
    "load_run",
    "machine_info",
    "prepare_out_dir",
    "resume",
    "save_model",
    "seed_everything",
    "set_auto_threads",
    "stream_batches",
    "write_run_json",
]
