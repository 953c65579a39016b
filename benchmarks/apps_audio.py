"""Quality figures of the audio applications: voice classification and speech recognition.

Runs the default trainings through the real CLI (unless --collect-only) and gathers their
results.json files into benchmarks/results/apps_audio.json. The corpora are generated once
(espeak-ng, seeded) and cached in $RNNKIT_DATA; later runs reuse them.

    python benchmarks/apps_audio.py --runs runs/bench-audio --seeds 0 1 2 3 4   # train + collect
    python benchmarks/apps_audio.py --runs runs/bench-audio --seeds 0 1 2 3 4 --collect-only

Each run (`<name>-s<seed>`) is an ordinary run directory with report.html. Figures are
test-split metrics on voices never heard in training (speaker: on held-out utterances of the
known voices), measured in the same process as the baselines they are compared with; the
summary gives each figure's mean and worst over the seeds (the seed also draws the split).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

RUNS = {
    "voice-sex": ["train", "voice", "--label", "sex"],
    "voice-language": ["train", "voice", "--label", "language"],
    "voice-speaker": ["train", "voice", "--label", "speaker"],
    "speech-digits": ["train", "speech"],
}
RNNKIT = [sys.executable, "-m", "rnnkit"]
KEYS = ("accuracy", "balanced_accuracy", "cer", "wer", "sentence_accuracy", "threshold_hz",
        "penalty", "templates", "C", "order", "weight", "bonus")  # fmt: skip


def run_name(name: str, seed: int) -> str:
    return f"{name}-s{seed}"


def train(runs: Path, names: list[str], seeds: list[int], extra: list[str]) -> dict[str, float]:
    seconds = {}
    for name in names:
        for seed in seeds:
            out = runs / run_name(name, seed)
            cmd = [*RNNKIT, *RUNS[name], "--seed", str(seed), "--out", str(out), "--overwrite",
                   "--quiet", *extra]  # fmt: skip
            print("$", " ".join(cmd[2:]), flush=True)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True)
            seconds[out.name] = time.perf_counter() - t0
    return seconds


def pick(metrics: dict) -> dict:
    return {k: metrics[k] for k in KEYS if k in metrics}


def entry_of(path: Path) -> dict:
    res = json.loads((path / "results.json").read_text())
    cfg = json.loads((path / "config.json").read_text())["extra"]
    entry = {"options": cfg["options"], "sizes": res["data"]["sizes"],
             "split": res["data"]["split"], "train_seconds": res["fit"]["seconds"],
             "steps": res["fit"]["steps"], "best_step": res["fit"]["best_step"]}  # fmt: skip
    if "model" in res:
        entry["model"] = pick(res["model"])
        entry["confusion"] = res["model"]["confusion"]
        entry["baselines"] = {k: {"name": b["name"], **pick(b)}
                              for k, b in res["baselines"].items()}  # fmt: skip
    else:
        for d in ("greedy", "beam", "beam_lm"):
            entry[d] = pick(res[d])
        entry["by_kind"] = {k: {d: pick(m) for d, m in v.items()}
                            for k, v in res["by_kind"].items()}  # fmt: skip
        entry["lm"] = pick(res["lm"])
        entry["baseline"] = {"name": res["baseline"]["name"], **pick(res["baseline"])}
    return entry


def figures(entry: dict) -> dict[str, float]:
    """The headline figures of one run: balanced accuracy (voice) or WER (speech)."""
    if "model" in entry:
        return {"model": entry["model"]["balanced_accuracy"],
                **{k: b["balanced_accuracy"] for k, b in entry["baselines"].items()}}
    out = {d: entry[d]["wer"] for d in ("greedy", "beam", "beam_lm")}
    for kind, table in entry["by_kind"].items():
        out.update({f"{kind}_{d}": m["wer"] for d, m in table.items()})
    return {**out, "digits_dtw": entry["baseline"]["wer"]}


def collect(runs: Path, seeds: list[int], seconds: dict[str, float] | None = None) -> dict:
    import torch

    out: dict = {"machine": {"python": platform.python_version(), "torch": torch.__version__},
                 "runs": {}, "summary": {}}  # fmt: skip
    for name in RUNS:
        per_seed = {}
        for seed in seeds:
            path = runs / run_name(name, seed)
            if (path / "results.json").is_file():
                entry = entry_of(path)
                if seconds and path.name in seconds:
                    entry["wall_seconds"] = seconds[path.name]
                out["runs"][path.name] = per_seed[seed] = entry
        if not per_seed:
            continue
        figs = [figures(e) for e in per_seed.values()]
        lower_better = "model" not in next(iter(per_seed.values()))
        worst = max if lower_better else min
        out["summary"][name] = {"seeds": sorted(per_seed), **{
            k: {"mean": sum(f[k] for f in figs) / len(figs), "worst": worst(f[k] for f in figs)}
            for k in figs[0]}}  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs/bench-audio"))
    ap.add_argument("--only", nargs="*", choices=list(RUNS), default=list(RUNS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--collect-only", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results/apps_audio.json"))
    args = ap.parse_args()
    seconds = None
    if not args.collect_only:
        seconds = train(args.runs, args.only, args.seeds, ["--threads", str(args.threads)])
    data = collect(args.runs, args.seeds, seconds)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(data["summary"], indent=2))


if __name__ == "__main__":
    main()
