"""Run directories: everything needed to reload a model and continue training it.

    run/
      config.json          {"format", "model": {"kind", "config"}, "train", "algorithm", "extra"}
      model.safetensors    ready weights (best on validation if there was one, else the latest)
      metrics.jsonl        one JSON object per line: train logs, evaluations, events
      checkpoint/
        latest.json        {"step": N, "dir": "step-0000000N-xxxxxx"}: the checkpoint to resume
        step-.../          model.safetensors + trainer.pt (optimiser, scheduler, RNG, step, ...)
      <name>.json          task files (vocabulary, tokenizer, scaler): `write_run_json`

Every file is written atomically (rnnkit.atomic). A checkpoint is written into a fresh
directory and only then named in latest.json, so a crash while writing one leaves the previous
checkpoint loadable. Nothing is unpickled: weights are safetensors, trainer.pt is read with
`torch.load(weights_only=True)` (tensors and plain containers only).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from ..atomic import atomic_write_bytes, atomic_write_json, fsync_dir, read_jsonl
from ..config import TrainConfig, from_dict, to_dict
from ..models import model_from_dict, model_to_dict

FORMAT = "rnnkit-run/1"
CONFIG, WEIGHTS, METRICS, CHECKPOINT = (
    "config.json",
    "model.safetensors",
    "metrics.jsonl",
    "checkpoint",
)
LATEST, TRAINER_STATE = "latest.json", "trainer.pt"


class RunError(ValueError):
    """A path that is not a usable run directory: missing, incomplete or corrupted files."""


MAX_CONFIG_BYTES = 16 << 20  # config.json and task files: far more than any real one
MAX_WEIGHTS_BYTES = 64 << 30
MAX_METRICS_BYTES = 1 << 30  # ~5M log lines: a run of 50M steps at one line per 10


def regular_size(path: Path, limit: int, what: str) -> int:
    """The size of a regular file of at most `limit` bytes. RunError for a device, a FIFO or a
    directory (a symlink to /dev/zero would be read forever) and for an oversized file; only
    FileNotFoundError passes through."""
    import stat

    st = path.stat()  # follows symlinks: what matters is what would be read
    if not stat.S_ISREG(st.st_mode):
        raise RunError(f"{path}: the {what} is not a regular file")
    if st.st_size > limit:
        raise RunError(f"{path}: the {what} is {st.st_size:,} bytes, more than {limit:,}")
    return st.st_size


def read_regular(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (see regular_size)."""
    regular_size(path, limit, what)
    return path.read_bytes()


# ---- weights ----------------------------------------------------------------------------


LOCK = ".lock"


def check_out_dir(out: str | os.PathLike, overwrite: bool) -> list[Path]:
    """The one overwrite policy of every training command, checked without writing anything:
    an existing, non-empty `out` is refused unless `overwrite`. Returns its entries."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} exists and is not a directory; choose another run directory")
    entries = [p for p in out.iterdir() if p.name != LOCK] if out.is_dir() else []
    if entries and not overwrite:
        raise RunError(f"{out} already exists; pass --overwrite or choose another --out")
    return entries


def prepare_out_dir(out: str | os.PathLike, overwrite: bool) -> None:
    """Apply the overwrite policy (check_out_dir) and create `out`. With `overwrite`, an old run
    (config.json or checkpoint/) is removed whole, so no report or analysis of it is left beside
    the new weights; in a directory that is not a run, other files are left alone."""
    out = Path(out)
    entries = check_out_dir(out, overwrite)
    if (out / CONFIG).exists() or (out / CHECKPOINT).exists():
        for p in entries:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)


class RunLock:
    """An exclusive lock on a run directory for the life of a training command (flock on
    RUN/.lock, released by the kernel if the process dies). A second writer gets one line
    naming the holder's pid.

    Example:
        >>> with RunLock("runs/x"):
        ...     train()
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunError(
                f"{self.path.parent} is in use by another rnnkit process (pid {holder}); "
                "wait for it to finish or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None


def clean_debris(run_dir: str | os.PathLike) -> list[Path]:
    """Remove what a crash can leave behind: temp files of atomic writes (.NAME.*.tmp) and
    half-written checkpoint directories (checkpoint/.step-*). Returns what was removed."""
    run_dir = Path(run_dir)
    removed = [p for p in run_dir.glob(".*.tmp") if p.is_file()]
    removed += [p for p in (run_dir / CHECKPOINT).glob(".step-*") if p.is_dir()]
    for p in removed:
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    return removed


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with tied tensors stored once (safetensors refuses shared memory)."""
    tensors, seen = {}, set()
    for name, t in model.state_dict().items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if t.numel() and key in seen:
            continue
        seen.add(key)
        tensors[name] = t.detach().cpu().contiguous().clone()
    return tensors


def weights_bytes(model: nn.Module) -> bytes:
    return st_save(model_tensors(model))


MAX_HEADER_BYTES = 1 << 20  # ~10k tensors; a 64-layer bidirectional seq2seq needs ~1k
FLOAT_DTYPES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}
OTHER_DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "I32": 4, "U32": 4, "I64": 8,
                "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}  # fmt: skip
Header = dict[str, tuple[str, tuple[int, ...]]]  # tensor name -> (safetensors dtype, shape)


def parse_header(head: bytes, size: int, path: Path) -> Header:
    """The tensors a safetensors file declares, checked against the file's `size` in bytes:
    every tensor's bytes are its shape times its dtype's width and lie inside the file, so the
    shapes bound what loading it can allocate. `head` is the file's first bytes (at least
    8 + the header length). RunError for anything else."""
    import struct

    bad = f"{path}: weights are corrupted or not safetensors"
    if size < 8 or len(head) < 8:
        raise RunError(f"{bad} (only {size} bytes)")
    (n,) = struct.unpack("<Q", head[:8])
    if n > MAX_HEADER_BYTES or 8 + n > size or len(head) < 8 + n:
        raise RunError(f"{bad} (a header of {n:,} bytes in a file of {size:,})")
    try:
        entries = json.loads(head[8 : 8 + n].decode("utf-8"))
    except (ValueError, RecursionError) as err:
        raise RunError(f"{bad} (header: {err})") from None
    if not isinstance(entries, dict):
        raise RunError(f"{bad} (the header is not a JSON object)")
    header, data_bytes = {}, size - 8 - n
    for name, e in entries.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (lo, hi) = e["dtype"], tuple(e["shape"]), e["data_offsets"]
            width = FLOAT_DTYPES.get(dtype) or OTHER_DTYPES[dtype]
            ints = (lo, hi, *shape)
            if not all(type(x) is int and x >= 0 for x in ints):
                raise TypeError
        except (TypeError, KeyError, ValueError):
            raise RunError(f"{bad} (tensor {name!r}: {str(e)[:80]})") from None
        if hi > data_bytes or hi - lo != math.prod(shape) * width:
            raise RunError(f"{bad} (tensor {name!r} of shape {shape} does not fit the file)")
        header[name] = (dtype, shape)
    return header


def read_header(path: str | os.PathLike) -> Header:
    """The tensors a safetensors file declares (parse_header), read without its data."""
    path = Path(path)
    try:
        size = regular_size(path, MAX_WEIGHTS_BYTES, "weights file")
        with open(path, "rb") as f:
            head = f.read(8 + MAX_HEADER_BYTES)
    except FileNotFoundError as err:
        raise RunError(f"{path}: weights file is missing") from err
    return parse_header(head, size, path)


def check_header(model: nn.Module, header: Header, path: Path) -> None:
    """RunError unless `header` holds exactly `model`'s tensors, with their shapes, as floating
    point. `model` may live on the meta device: nothing is allocated, so a config.json that
    does not match its weights is refused before its model is built."""
    tensors = model.state_dict(keep_vars=True)
    stored_once: dict[int, str] = {}  # tied tensors (one Parameter, two names) are stored once
    for name, t in tensors.items():
        stored_once.setdefault(id(t), name)
    expected = {name: tensors[name] for name in stored_once.values()}
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(tensors))
    if missing or unexpected:
        raise RunError(
            f"{path}: weights do not match the model in config.json "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    for name, (dtype, shape) in header.items():
        want = tensors[name]
        if (dtype in FLOAT_DTYPES) != want.is_floating_point():
            # float64 weights load into a float32 model (a cast); integers never pass as weights
            stored = _TORCH_DTYPES.get(dtype, dtype.lower())
            raise RunError(f"{path}: {name} is {stored}, the model expects {want.dtype}")
        if shape != tuple(want.shape):
            raise RunError(
                f"{path}: {name} has shape {shape}, the model expects {tuple(want.shape)}"
            )


_TORCH_DTYPES = {"I8": "int8", "I16": "int16", "I32": "int32", "I64": "int64", "U8": "uint8",
                 "F16": "float16", "BF16": "bfloat16", "F32": "float32",
                 "F64": "float64"}  # fmt: skip


def load_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Load safetensors weights into `model`, raising RunError for a bad or mismatched file."""
    path = Path(path)
    try:
        raw = read_regular(path, MAX_WEIGHTS_BYTES, "weights file")
    except FileNotFoundError as err:
        raise RunError(f"{path}: weights file is missing") from err
    check_header(model, parse_header(raw[: 8 + MAX_HEADER_BYTES], len(raw), path), path)
    try:
        tensors = st_load(raw)
    except Exception as err:  # safetensors raises its own error types for corrupt files
        raise RunError(f"{path}: weights are corrupted or not safetensors ({err})") from err
    model.load_state_dict(tensors, strict=False)


def build_checked(model_dict: Any, weights: Path, where: Path) -> nn.Module:
    """The model `model_dict` (config.json["model"]) describes, built only once the weights'
    header is known to fit it: the config is first checked against the header's tensor count
    (a stack of 10^6 layers would need 10^6 tensors) and built on the meta device, which
    allocates nothing, then compared tensor by tensor (check_header). RunError otherwise."""
    header = read_header(weights)
    layers = max_layers(model_dict)
    if layers > len(header):
        raise RunError(f"{where}: the config has {layers:,} recurrent layers but the weights "
                       f"hold only {len(header)} tensors")  # fmt: skip
    try:
        with torch.device("meta"):
            shape_only = model_from_dict(model_dict)
    except UNTRUSTED_CONFIG_ERRORS as err:
        raise RunError(f"{where}: invalid configuration ({type(err).__name__}: {err})") from err
    check_header(shape_only, header, weights)
    return model_from_dict(model_dict)  # what built on the meta device builds here


# what building a model from a config.json of unknown origin may raise (from_dict checks
# values, not every nested type: a number where a section belongs fails in the builder; a
# size too large for torch's arithmetic is a RuntimeError even on the meta device)
UNTRUSTED_CONFIG_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError,
                           OverflowError, RecursionError, RuntimeError)  # fmt: skip


def max_layers(config: Any, depth: int = 0) -> int:
    """The most recurrent layers any stack in a JSON model config asks for (num_layers, twice
    if bidirectional): what multiplies the modules a config builds."""
    if depth > 32 or not isinstance(config, dict | list):
        return 0
    values = config.values() if isinstance(config, dict) else config
    most = max((max_layers(v, depth + 1) for v in values), default=0)
    if isinstance(config, dict) and type(config.get("num_layers")) is int:
        most = max(most, config["num_layers"] * (2 if config.get("bidirectional") is True else 1))
    return most


def save_weights(model: nn.Module, path: str | os.PathLike) -> None:
    atomic_write_bytes(path, weights_bytes(model))


# ---- config.json and task files ---------------------------------------------------------


def run_config(
    model: nn.Module,
    train: TrainConfig | None = None,
    algorithm: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "model": model_to_dict(model),
        "train": None if train is None else to_dict(train),
        "algorithm": algorithm,
        "extra": extra or {},
    }


def write_run_json(run_dir: str | os.PathLike, name: str, obj: Any) -> Path:
    """Store a task's JSON file (vocabulary, tokenizer, scaler) in a run directory.

    Example:
        >>> write_run_json("runs/shakespeare", "vocab", {"chars": chars})
    """
    if not name or "/" in name or name.startswith(".") or name in ("config", "config.json"):
        raise ValueError(f"write_run_json: bad file name {name!r}")
    path = Path(run_dir) / (name if name.endswith(".json") else name + ".json")
    atomic_write_json(path, obj)
    return path


def save_model(
    run_dir: str | os.PathLike,
    model: nn.Module,
    train: TrainConfig | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write config.json + model.safetensors: a loadable run without training state."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / CONFIG, run_config(model, train, None, extra))
    save_weights(model, run_dir / WEIGHTS)
    return run_dir


# ---- checkpoints ------------------------------------------------------------------------


def save_checkpoint(
    run_dir: str | os.PathLike, step: int, model: nn.Module, state: dict[str, Any], keep: int = 2
) -> Path:
    """Write checkpoint/step-N-*/ then point latest.json at it; keep the `keep` newest."""
    ckpt_root = Path(run_dir) / CHECKPOINT
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:09d}-{uuid.uuid4().hex[:6]}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=ckpt_root))
    try:
        atomic_write_bytes(tmp / WEIGHTS, weights_bytes(model))
        buf = _torch_bytes(state)
        atomic_write_bytes(tmp / TRAINER_STATE, buf)
        os.replace(tmp, ckpt_root / name)
        fsync_dir(ckpt_root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_json(ckpt_root / LATEST, {"step": step, "dir": name})
    # older checkpoints go only after latest.json names the new one
    dirs = sorted(p for p in ckpt_root.glob("step-*") if p.is_dir())
    for old in dirs[:-keep] if keep > 0 else []:
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return ckpt_root / name


def _torch_bytes(obj: Any) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The directory latest.json names; if it is unreadable, the newest complete one. Only a
    real directory checkpoint/step-* counts: a name with a slash, or a symlink, could lead
    out of the run directory."""
    ckpt_root = Path(run_dir) / CHECKPOINT

    def complete(p: Path) -> bool:
        return (p.name.startswith("step-") and "/" not in p.name and p.is_dir()
                and not p.is_symlink() and (p / TRAINER_STATE).exists()
                and (p / WEIGHTS).exists())  # fmt: skip

    try:
        info = json.loads(read_regular(ckpt_root / LATEST, MAX_CONFIG_BYTES, LATEST))
        name = info["dir"]
        if isinstance(name, str) and os.sep not in name and complete(ckpt_root / name):
            return ckpt_root / name
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        pass
    dirs = sorted(p for p in ckpt_root.glob("step-*") if complete(p))
    return dirs[-1] if dirs else None


def load_checkpoint(path: str | os.PathLike, model: nn.Module) -> dict[str, Any]:
    """Load weights into `model` and return the trainer state dict."""
    import io

    path = Path(path)
    load_weights(model, path / WEIGHTS)
    try:
        raw = read_regular(path / TRAINER_STATE, MAX_WEIGHTS_BYTES, "checkpoint state")
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except RunError:
        raise
    except Exception as err:
        raise RunError(f"{path / TRAINER_STATE}: checkpoint state is corrupted ({err})") from err


# ---- loading a run ----------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """A loaded run directory. `model` is rebuilt from config.json and in eval mode."""

    path: Path
    model: nn.Module
    model_config: Any
    train_config: TrainConfig | None
    algorithm: dict[str, Any] | None
    extra: dict[str, Any]
    metrics: list[dict[str, Any]]
    checkpoint: Path | None

    @property
    def step(self) -> int | None:
        """The step of the latest checkpoint (None if there is none)."""
        if self.checkpoint is None:
            return None
        return int(self.checkpoint.name.split("-")[1])

    @property
    def task(self) -> str | None:
        """Which application made the run (None: a plain Trainer run); see training.record."""
        from ..record import run_record

        return run_record(self.extra)["task"]

    def read_json(self, name: str) -> Any:
        """A task file written with `write_run_json` (RunError if missing or broken)."""
        path = self.path / (name if name.endswith(".json") else name + ".json")
        try:
            return json.loads(read_regular(path, MAX_CONFIG_BYTES, path.name).decode("utf-8"))
        except FileNotFoundError as err:
            raise RunError(f"{self.path}: no {path.name} in this run directory") from err
        except RunError:
            raise
        except (ValueError, RecursionError) as err:
            raise RunError(f"{path}: not valid JSON ({err})") from err

    def evals(self, split: str = "val") -> list[dict[str, Any]]:
        return [m for m in self.metrics if m.get("split") == split]


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of RUN/metrics.jsonl ([] if there is none); RunError if it is not a regular
    file (a FIFO would block forever) or is larger than MAX_METRICS_BYTES."""
    path = Path(run_dir) / METRICS
    try:
        regular_size(path, MAX_METRICS_BYTES, "metrics log")
    except FileNotFoundError:
        return []
    return read_jsonl(path)


def read_run_config(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path}: not a directory (expected a run directory with {CONFIG})")
    cfg_path = path / CONFIG
    try:
        data = json.loads(read_regular(cfg_path, MAX_CONFIG_BYTES, CONFIG).decode("utf-8"))
    except FileNotFoundError as err:
        raise RunError(f"{path}: not a run directory (no {CONFIG})") from err
    except RunError:
        raise
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        raise RunError(f"{cfg_path}: not valid JSON ({err})") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT or "model" not in data:
        raise RunError(f"{cfg_path}: not an rnnkit run config (format {FORMAT!r} expected)")
    return data


def load_run(
    path: str | os.PathLike, device: str | torch.device = "cpu", weights: str = "model"
) -> Run:
    """Rebuild a run's model from config.json and its weights; nothing is unpickled.

    Args:
        path: the run directory.
        device: where to put the model.
        weights: "model" (model.safetensors: the best/final weights) or "checkpoint" (the
            latest checkpoint's weights).

    Raises:
        RunError: the path is not a run directory, or a file is missing or corrupted.

    Example:
        >>> run = load_run("runs/shakespeare")
        >>> logits, state = run.model(tokens)
        >>> vocab = run.read_json("vocab")
    """
    if weights not in ("model", "checkpoint"):
        raise ValueError(f"load_run: weights must be 'model' or 'checkpoint', got {weights!r}")
    path = Path(path)
    data = read_run_config(path)
    try:
        train = None if data.get("train") is None else from_dict(TrainConfig, data["train"])
    except (ValueError, TypeError, KeyError, RecursionError) as err:
        raise RunError(f"{path / CONFIG}: invalid configuration ({err})") from err
    ckpt = latest_checkpoint(path)
    if weights == "checkpoint":
        if ckpt is None:
            raise RunError(f"{path}: no checkpoint to load")
        weights_path = ckpt / WEIGHTS
    else:
        weights_path = path / WEIGHTS
        if not weights_path.exists() and ckpt is not None:
            weights_path = ckpt / WEIGHTS  # stopped before any final save: use the checkpoint
        elif not weights_path.exists():
            raise RunError(f"{path}: no weights saved yet (it stopped before its first "
                           "checkpoint); train it again")  # fmt: skip
    if not isinstance(data.get("extra") or {}, dict):
        raise RunError(f"{path / CONFIG}: invalid configuration (extra is not an object)")
    model = build_checked(data["model"], weights_path, path / CONFIG)
    load_weights(model, weights_path)
    model.to(device).eval()
    return Run(
        path=path,
        model=model,
        model_config=model.config,
        train_config=train,
        algorithm=data.get("algorithm"),
        extra=data.get("extra") or {},
        metrics=read_metrics(path),
        checkpoint=ckpt,
    )
