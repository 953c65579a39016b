"""The voice Task: corpus, split by voice, model, baselines, report, and the loaded Classifier.

A run directory holds, besides the Trainer's files: `voice.json` (labels, the feature spec,
frame stacking and the scaler, so `classify-audio` computes the same inputs), `results.json`
and `report.html`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data import audio
from ...data.archives import pad_sequences
from ...data.audio import band_limit, freq_mask, stack_frames, warp_channels
from ...data.scaling import StandardScaler
from ...data.speech import VoiceCorpus, VoiceSpec, generation_bar, split_by_voice, voice_corpus
from ...data.text import DataError
from .. import driver
from ..metrics import blas_threads, classification_metrics, training_labels
from ..task import Fitted, Task
from .options import NAME, VoiceOptions

VOICE_FILE = "voice.json"


def balanced_accuracy(confusion: list[list[int]]) -> float:
    """The mean over true classes (that occur) of the share predicted right (recall)."""
    recalls = [row[c] / sum(row) for c, row in enumerate(confusion) if sum(row)]
    return sum(recalls) / len(recalls)


def metrics(y_true, y_pred, n: int) -> dict:
    m = classification_metrics(list(y_true), list(y_pred), n)
    return {**m, "balanced_accuracy": balanced_accuracy(m["confusion"])}


@dataclass
class VoiceData:
    corpus: VoiceCorpus
    split: dict[str, list[int]]  # train / val / test -> utterance indices
    labels: list[str]
    y: np.ndarray  # (N,) label ids of every utterance
    scaler: StandardScaler
    X: list[np.ndarray]  # standardised, stacked frames of every utterance
    summary: dict[str, Any]


def split_indices(corpus: VoiceCorpus, label: str, seed: int) -> dict[str, list[int]]:
    """By voice variant (test voices unheard in training) for sex and language; for speaker
    the labels are the voices, so each voice's utterances are split 70/10/20 instead."""
    if label == "speaker":
        part = ["test" if i % 5 == 0 else "val" if i % 10 == 1 else "train"
                for i in range(len(corpus.meta))]  # fmt: skip
    else:
        of = split_by_voice(corpus.labels("voice"), corpus.labels("sex"), seed)
        part = [of[v] for v in corpus.labels("voice")]
    return {s: [i for i, p in enumerate(part) if p == s] for s in ("train", "val", "test")}


def prepare(options: VoiceOptions, progress: bool = True) -> VoiceData:
    spec = VoiceSpec(n=options.utterances, per_sex=options.voices_per_sex, seed=0)
    corpus = voice_corpus(spec, progress=generation_bar() if progress else None)
    split = split_indices(corpus, options.label, options.seed)
    names = corpus.labels("voice" if options.label == "speaker" else options.label)
    labels = training_labels(f"voice corpus ({options.label})",
                             [names[i] for i in split["train"]],
                             val=[names[i] for i in split["val"]],
                             test=[names[i] for i in split["test"]])  # fmt: skip
    index = {lab: k for k, lab in enumerate(labels)}
    y = np.array([index[n] for n in names])
    scaler = StandardScaler.fit(np.concatenate([corpus.frames[i] for i in split["train"]]))
    X = [stack_frames(scaler.transform(f).astype(np.float32), options.stack)
         for f in corpus.frames]  # fmt: skip
    voices = {s: sorted({corpus.meta[i]["voice"] for i in idx}) for s, idx in split.items()}
    summary = {
        "source": "espeak-ng speech (Shakespeare lines), noise at 10-30 dB SNR",
        "corpus": corpus.path, "label": options.label, "labels": labels,
        "sizes": {s: len(idx) for s, idx in split.items()}, "voices": voices,
        "split": "by utterance (each voice in every split)" if options.label == "speaker"
        else "by voice variant: test voices never heard in training",
        "seconds": round(sum(len(f) for f in corpus.frames) * spec.feature.hop
                         / spec.feature.rate, 1),
        "feature": spec.feature.to_dict(),
    }  # fmt: skip
    return VoiceData(corpus, split, labels, y, scaler, X, summary)


def tensors(X: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    x, lengths = pad_sequences(X)
    return torch.from_numpy(x), torch.from_numpy(lengths)


@torch.no_grad()
def predict_proba(model, X: list[np.ndarray], size: int = 128) -> np.ndarray:
    """(N, C) class probabilities for stacked, standardised frame sequences."""
    model.eval()
    out = []
    for i in range(0, len(X), size):
        x, L = tensors(X[i : i + size])
        out.append(torch.softmax(model(x, lengths=L)[0].float(), -1).numpy())
    return np.concatenate(out)


def mfcc_baseline(data: VoiceData) -> tuple[np.ndarray, dict]:
    """Logistic regression on mean+std of 13 MFCCs (standardised), C chosen on validation
    voices. Returns (test predictions, info)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler as SkScaler

    n_mels = int(data.corpus.spec["feature"]["n_mels"])  # the log-mel channels (not log F0)
    feats = np.stack([audio.mfcc_stats(f[:, :n_mels]) for f in data.corpus.frames])
    tr, va, te = (data.split[s] for s in ("train", "val", "test"))
    best: tuple[float, float, Any] | None = None
    for C in (0.01, 0.1, 1.0, 10.0):
        pipe = make_pipeline(SkScaler(), LogisticRegression(C=C, max_iter=3000))
        pipe.fit(feats[tr], data.y[tr])
        score = float((pipe.predict(feats[va]) == data.y[va]).mean()) if va else 0.0
        if best is None or score > best[0]:
            best = (score, C, pipe)
    assert best is not None
    return best[2].predict(feats[te]), {"C": best[1], "val_accuracy": best[0]}


def pitch_threshold(f0: np.ndarray, is_female: np.ndarray) -> float:
    """The median-F0 threshold (Hz) that classifies the most training utterances right
    (female above it); candidates are midpoints between sorted F0s."""
    ok = ~np.isnan(f0)
    f, y = f0[ok], is_female[ok]
    s = np.sort(np.unique(f))
    cands = np.concatenate([[s[0] - 1], (s[1:] + s[:-1]) / 2, [s[-1] + 1]])
    accs = [((f > c) == y).mean() for c in cands]
    return float(cands[int(np.argmax(accs))])


def pitch_baseline(data: VoiceData) -> tuple[np.ndarray, dict]:
    """Sex from median F0 (YIN) above a threshold chosen on the training voices; an unvoiced
    utterance (NaN) gets the training majority."""
    female = data.labels.index("female")
    f0 = data.corpus.f0
    tr, te = np.array(data.split["train"]), np.array(data.split["test"])
    thr = pitch_threshold(f0[tr], data.y[tr] == female)
    majority = int(np.bincount(data.y[tr]).argmax())
    pred = np.where(np.isnan(f0[te]), majority, np.where(f0[te] > thr, female, 1 - female))
    return pred, {"threshold_hz": thr}


class VoiceTask(Task):
    name = NAME
    title = "Voice classification"
    options = VoiceOptions
    requires = ("sklearn", "librosa")

    def __init__(self) -> None:
        self.progress = True

    def prepare(self, options: VoiceOptions) -> VoiceData:
        return prepare(options, self.progress)

    def build(self, options: VoiceOptions, data: VoiceData):
        from ...config import HeadConfig, InputConfig, ManyToOneConfig, RNNConfig
        from ...models import build_model

        return build_model(ManyToOneConfig(
            InputConfig("frames", features=int(data.X[0].shape[1])),
            HeadConfig("softmax", len(data.labels), dropout=options.dropout),
            RNNConfig(options.cell, options.hidden, options.layers, bidirectional=True),
            readout="attention",
        ))  # fmt: skip

    def files(self, options: VoiceOptions, data: VoiceData) -> dict[str, Any]:
        return {VOICE_FILE: {"label": options.label, "labels": data.labels,
                             "stack": options.stack, "feature": data.summary["feature"],
                             "scaler": data.scaler.to_dict()}}  # fmt: skip

    def train_config(self, options: VoiceOptions, data: VoiceData):
        from ...config import TrainConfig

        n = len(data.split["train"])
        batch = min(options.batch, n)
        steps = options.total_steps(-(-n // batch))
        return TrainConfig(
            steps=steps, time_minutes=options.minutes, batch_size=batch, lr=options.lr,
            schedule="cosine", min_lr_ratio=0.05, warmup_steps=min(20, steps // 10),
            clip="norm", clip_value=1.0, eval_every=max(1, steps // 10),
            log_every=max(1, steps // 20), monitor="accuracy", monitor_mode="max",
            seed=options.seed,
        )  # fmt: skip

    def batches(self, options: VoiceOptions, data: VoiceData):
        train = data.split["train"]
        y = torch.from_numpy(data.y)
        B = min(options.batch, len(train))

        n_mels, width = int(data.corpus.spec["feature"]["n_mels"]), options.freq_mask

        def make(step: int, gen: torch.Generator):
            pick = [train[int(i)] for i in torch.randint(0, len(train), (B,), generator=gen)]
            x, L = tensors([data.X[i] for i in pick])
            if options.warp_amount():
                x = warp_channels(x, options.stack, n_mels, options.warp_amount(), gen)
            if width:
                x = freq_mask(x, options.stack, n_mels, width, gen)
            if options.band_limit:
                x = band_limit(x, options.stack, n_mels, options.band_limit, gen)
            return x, y[pick], L

        val_idx = data.split["val"] or train
        val = []
        for k in range(0, len(val_idx), 128):
            part = val_idx[k : k + 128]
            x, L = tensors([data.X[i] for i in part])
            val.append((x, y[part], L))
        return make, val

    def evaluate(self, options: VoiceOptions, data: VoiceData, fitted: Fitted) -> dict[str, Any]:
        te, C = data.split["test"], len(data.labels)
        y_true = data.y[te]
        pred = predict_proba(fitted.model, [data.X[i] for i in te]).argmax(1)
        with blas_threads(options.threads):
            base, info = mfcc_baseline(data)
        out: dict[str, Any] = {
            "model": metrics(y_true, pred, C),
            "baselines": {"mfcc_logistic": {"name": "logistic regression, mean+std of 13 MFCCs",
                                            **metrics(y_true, base, C), **info}},
            "labels": data.labels,
        }  # fmt: skip
        if options.label == "sex":
            p, pinfo = pitch_baseline(data)
            out["baselines"]["pitch"] = {"name": "median F0 (YIN) threshold",
                                         **metrics(y_true, p, C), **pinfo}  # fmt: skip
        per_voice: dict[str, list[int]] = {}
        for i, p in zip(te, pred, strict=True):
            per_voice.setdefault(data.corpus.meta[i]["voice"], []).append(int(p == data.y[i]))
        out["per_voice_accuracy"] = {v: sum(h) / len(h) for v, h in sorted(per_voice.items())}
        return out

    def test_metrics(self, results):
        m = results["model"]
        flat = {"accuracy": m["accuracy"], "balanced_accuracy": m["balanced_accuracy"]}
        for name, b in results["baselines"].items():
            flat[f"{name}_accuracy"] = b["accuracy"]
        return flat

    def summary(self, results):
        m = results["model"]
        title = f"test split ({m['n']} utterances, {results['data']['split']})"
        return title, ["model", "accuracy", "balanced accuracy"], rows(results)

    def report(self, r, run, results) -> None:
        from ..report import bar_plot

        data, labels = results["data"], results["labels"]
        r.paragraph(f"{data['source']}; {data['seconds']} s of speech; label: {data['label']}; "
                    f"split {data['split']}; sizes {data['sizes']}.")  # fmt: skip
        r.paragraph(f"test voices: {', '.join(data['voices']['test'])}", muted=True)
        r.heading("Test split: model vs baselines")
        r.table(rows(results), header=["model", "accuracy", "balanced accuracy"])
        r.figure(bar_plot({row[0]: row[1] for row in rows(results)}, "test accuracy"),
                 "test accuracy on unseen voices, model vs baselines (same split)")
        r.heading("Confusion matrix of the RNN (rows: true, columns: predicted)")
        r.table([[f"true {lab}", *row] for lab, row in
                 zip(labels, results["model"]["confusion"], strict=True)],
                header=["", *[f"pred {lab}" for lab in labels]])  # fmt: skip
        r.heading("Accuracy per test voice")
        r.table([[v, a] for v, a in results["per_voice_accuracy"].items()],
                header=["voice", "accuracy"])  # fmt: skip

    def load(self, run) -> Classifier:
        from ...training import RunError

        info = run.read_json(VOICE_FILE)
        try:
            return Classifier(run.model, list(info["labels"]), int(info["stack"]),
                              audio.FeatureSpec.from_dict(info["feature"]),
                              StandardScaler.from_dict(info["scaler"]))  # fmt: skip
        except (KeyError, TypeError, ValueError) as err:
            raise RunError(f"{run.path}/{VOICE_FILE}: malformed ({err})") from None


def rows(results) -> list[list[Any]]:
    m = results["model"]
    out = [["bidirectional RNN + attention pooling", m["accuracy"], m["balanced_accuracy"]]]
    for b in results["baselines"].values():
        extra = f" ({b['threshold_hz']:.0f} Hz)" if "threshold_hz" in b else ""
        out.append([b["name"] + extra, b["accuracy"], b["balanced_accuracy"]])
    return out


@dataclass
class Classifier:
    """A trained voice run, loaded for prediction on WAV files."""

    model: Any
    labels: list[str]
    stack: int
    feature: audio.FeatureSpec
    scaler: StandardScaler

    def classify_samples(self, y: np.ndarray, sr: int) -> dict:
        """Mono samples at rate sr -> {"prediction", "probability", "probabilities", ...}."""
        frames = audio.features(y, sr, self.feature)
        frames = audio.fill_missing_bands(frames, sr, self.feature, self.scaler.mean)
        x = stack_frames(self.scaler.transform(frames).astype(np.float32), self.stack)
        probs = predict_proba(self.model, [x])[0]
        best = int(probs.argmax())
        f0 = audio.median_f0(audio.resample(y, sr, audio.ESPEAK_RATE), audio.ESPEAK_RATE)
        return {"prediction": self.labels[best], "probability": float(probs[best]),
                "probabilities": dict(zip(self.labels, map(float, probs), strict=True)),
                "seconds": len(y) / sr, "median_f0_hz": None if math.isnan(f0) else f0}  # fmt: skip

    def classify_file(self, path: str | Path) -> dict:
        """Any WAV (any rate; stereo mixed down) -> the prediction; DataError for bad files."""
        y, sr = audio.read_wav(path)
        if not np.any(y):
            raise DataError(f"{path}: the recording is silent")
        return self.classify_samples(y, sr)


TASK = VoiceTask()


def train(options: VoiceOptions, out: str | Path, **kwargs: Any):
    """Generate (or reuse) the corpus, train the model and the baselines; see driver.train."""
    return driver.train(TASK, options, out, **kwargs)


def load(run_dir: str | Path) -> Classifier:
    """A `train voice` run, loaded for `classify_file`."""
    return driver.load(run_dir, NAME)
