"""The speech Task: digit corpus, split by voice, the CTC model, the DTW baseline, the report,
and the loaded Transcriber.

A run directory holds, besides the Trainer's files: `speech.json` (the characters, the
feature spec, frame stacking and the scaler), `results.json` and `report.html`.

The model is a ManyToMany (frames -> per-step logits over blank + characters) whose training
loss is CTC; it is saved and reloaded as the plain ManyToMany it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data import audio
from ...data.archives import pad_sequences
from ...data.scaling import StandardScaler
from ...data.speech import (
    DIGITS,
    DigitSpec,
    VoiceCorpus,
    digit_corpus,
    generation_bar,
    split_by_voice,
)
from ...data.text import DataError
from ...models import ManyToMany
from ...models.base import Batch, StepOutput
from .. import driver
from ..task import Fitted, Task
from . import dtw
from .decode import collapse, edit_distance, error_rates, greedy, prefix_beam
from .options import NAME, SpeechOptions

SPEECH_FILE = "speech.json"
HEADER = ["decoder", "CER", "WER", "strings right"]
CHARS = "".join(sorted(set("".join(DIGITS)) | {" "}))


@dataclass(frozen=True)
class Units:
    """What the CTC outputs are: characters (label k+1 is tokens[k]; 0 is the blank) or the
    words of the fixed vocabulary."""

    kind: str  # "chars" | "words"
    tokens: tuple[str, ...]

    @classmethod
    def of(cls, kind: str) -> Units:
        return cls(kind, tuple(CHARS) if kind == "chars" else DIGITS)

    def encode(self, text: str) -> list[int]:
        pieces = text if self.kind == "chars" else text.split()
        return [self.tokens.index(p) + 1 for p in pieces]

    def decode(self, labels: list[int]) -> str:
        return ("" if self.kind == "chars" else " ").join(self.tokens[k - 1] for k in labels)


class CTCModel(ManyToMany):
    """A ManyToMany trained with CTC: targets (B, S) label ids padded with 0, target_lengths.

    `kind` is ManyToMany's, so a run reloads it as a ManyToMany (the forward pass is the same).
    Stats: the greedy token error rate ("ter": edits per reference character or word)."""

    def loss(self, batch: Any, state: Any = None) -> StepOutput:
        b = Batch.of(batch)
        out, _ = self(b.inputs, None, b.lengths)  # (B, T, V)
        lp = out.log_softmax(-1)
        loss = torch.nn.functional.ctc_loss(
            lp.transpose(0, 1), b.targets, b.lengths, b.target_lengths, blank=0,
            reduction="sum", zero_infinity=True,
        )  # fmt: skip
        errors, total = 0, 0
        best = lp.detach().argmax(-1)
        for i in range(b.size):
            hyp = collapse(best[i, : int(b.lengths[i])].tolist())
            ref = b.targets[i, : int(b.target_lengths[i])].tolist()
            errors, total = errors + edit_distance(ref, hyp), total + len(ref)
        return StepOutput(loss / b.size, b.size, None, {"ter": (errors, total)}, "utterances")


@dataclass
class SpeechData:
    corpus: VoiceCorpus
    split: dict[str, list[int]]  # train / val / test -> connected-utterance indices
    words: list[int]  # isolated-digit recordings of the training voices
    scaler: StandardScaler
    X: list[np.ndarray]
    units: Units
    summary: dict[str, Any]


def prepare(options: SpeechOptions, progress: bool = True) -> SpeechData:
    spec = DigitSpec(n=options.utterances, per_sex=options.voices_per_sex)
    corpus = digit_corpus(spec, progress=generation_bar() if progress else None)
    of = split_by_voice(corpus.labels("voice"), corpus.labels("sex"), options.seed)
    split: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    words = []
    for i, m in enumerate(corpus.meta):
        part = of[m["voice"]]
        if m["isolated"]:
            if part == "train":
                words.append(i)
        else:
            split[part].append(i)
    scaler = StandardScaler.fit(np.concatenate([corpus.frames[i] for i in split["train"]]))
    X = [audio.stack_frames(scaler.transform(f).astype(np.float32), options.stack)
         for f in corpus.frames]  # fmt: skip
    voices = {s: sorted({corpus.meta[i]["voice"] for i in idx}) for s, idx in split.items()}
    summary = {
        "source": "espeak-ng connected digit strings (2-5 digits), noise at 15-35 dB SNR",
        "corpus": corpus.path, "sizes": {s: len(v) for s, v in split.items()},
        "isolated_words": len(words), "voices": voices,
        "split": "by voice variant: test voices never heard in training",
        "feature": spec.feature.to_dict(), "units": options.units,
    }  # fmt: skip
    return SpeechData(corpus, split, words, scaler, X, Units.of(options.units), summary)


def batch_of(data: SpeechData, idx: list[int]) -> tuple:
    x, L = pad_sequences([data.X[i] for i in idx])
    labels = [data.units.encode(data.corpus.meta[i]["text"]) for i in idx]
    tgt = torch.zeros(len(idx), max(len(s) for s in labels), dtype=torch.long)
    for k, s in enumerate(labels):
        tgt[k, : len(s)] = torch.tensor(s)
    return (torch.from_numpy(x), tgt, torch.from_numpy(L),
            torch.tensor([len(s) for s in labels]))  # fmt: skip


@torch.no_grad()
def log_probs(model, X: list[np.ndarray], size: int = 64) -> list[np.ndarray]:
    """Per-step log-probabilities (T_i, V) of each stacked frame sequence."""
    model.eval()
    out = []
    for i in range(0, len(X), size):
        x, L = pad_sequences(X[i : i + size])
        lp = model(torch.from_numpy(x), lengths=torch.from_numpy(L))[0].log_softmax(-1)
        out += [lp[k, : int(n)].numpy() for k, n in enumerate(L)]
    return out


def dtw_baseline(data: SpeechData, options: SpeechOptions) -> tuple[list[str], dict]:
    """One-pass DTW over `dtw_templates` isolated recordings per digit (training voices); the
    word insertion penalty chosen on up to 30 validation utterances. -> (test transcripts,
    info)."""
    n_mels = data.corpus.spec["feature"]["n_mels"]

    def prep(i: int) -> np.ndarray:  # every 2nd 10 ms frame, mean-normalised log-mel
        return dtw.normalise(data.corpus.frames[i][::2, :n_mels])

    templates, quiet = [], []
    per_word: dict[str, int] = {}
    for i in data.words:
        word = data.corpus.meta[i]["text"]
        if per_word.get(word, 0) >= options.dtw_templates:
            continue
        per_word[word] = per_word.get(word, 0) + 1
        raw = data.corpus.frames[i][::2, :n_mels]
        lo, hi = dtw.loud_range(raw)
        templates.append((prep(i)[lo:hi], word))
        quiet.append(prep(i))
    templates.append((dtw.silence_template(quiet), ""))
    ts = dtw.TemplateSet.build(templates)
    val = data.split["val"][:30] or data.split["train"][:30]
    refs = [data.corpus.meta[i]["text"] for i in val]
    scores = {}
    for pen in (0.0, 5.0, 10.0, 20.0, 40.0):
        hyps = [" ".join(dtw.match(prep(i), ts, pen)) for i in val]
        scores[pen] = error_rates(refs, hyps)["wer"]
    pen = min(scores, key=lambda p: (scores[p], p))
    hyps = [" ".join(dtw.match(prep(i), ts, pen)) for i in data.split["test"]]
    return hyps, {"penalty": pen, "val_wer_by_penalty": {str(k): v for k, v in scores.items()},
                  "templates": len(templates) - 1}  # fmt: skip


class SpeechTask(Task):
    name = NAME
    title = "Speech recognition"
    options = SpeechOptions
    requires = ("librosa",)

    def __init__(self) -> None:
        self.progress = True

    def prepare(self, options: SpeechOptions) -> SpeechData:
        return prepare(options, self.progress)

    def build(self, options: SpeechOptions, data: SpeechData):
        from ...config import HeadConfig, InputConfig, ManyToManyConfig, RNNConfig

        return CTCModel(ManyToManyConfig(
            InputConfig("frames", features=int(data.X[0].shape[1])),
            HeadConfig("softmax", len(data.units.tokens) + 1, dropout=options.dropout),
            RNNConfig(options.cell, options.hidden, options.layers, bidirectional=True,
                      dropout=options.dropout if options.layers > 1 else 0.0),
        ))  # fmt: skip

    def files(self, options: SpeechOptions, data: SpeechData) -> dict[str, Any]:
        return {SPEECH_FILE: {"units": options.units, "stack": options.stack,
                              "feature": data.summary["feature"],
                              "scaler": data.scaler.to_dict()}}  # fmt: skip

    def train_config(self, options: SpeechOptions, data: SpeechData):
        from ...config import TrainConfig

        n = len(data.split["train"]) + len(data.words)
        batch = min(options.batch, n)
        steps = options.total_steps(-(-n // batch))
        return TrainConfig(
            steps=steps, time_minutes=options.minutes, batch_size=batch, lr=options.lr,
            schedule="cosine", min_lr_ratio=0.05, warmup_steps=min(50, steps // 10),
            clip="norm", clip_value=5.0, eval_every=max(1, steps // 10),
            log_every=max(1, steps // 20), monitor="ter", monitor_mode="min", seed=options.seed,
        )  # fmt: skip

    def batches(self, options: SpeechOptions, data: SpeechData):
        train = data.split["train"] + data.words
        B = min(options.batch, len(train))

        def make(step: int, gen: torch.Generator):
            return batch_of(data, [train[int(i)] for i in
                                   torch.randint(0, len(train), (B,), generator=gen)])  # fmt: skip

        val_idx = data.split["val"] or data.split["train"]
        return make, [batch_of(data, val_idx[k : k + 64]) for k in range(0, len(val_idx), 64)]

    def evaluate(self, options: SpeechOptions, data: SpeechData, fitted: Fitted) -> dict[str, Any]:
        te = data.split["test"]
        refs = [data.corpus.meta[i]["text"] for i in te]
        lps = log_probs(fitted.model, [data.X[i] for i in te])
        greedy_hyps = [data.units.decode(greedy(lp)) for lp in lps]
        beam_hyps = [data.units.decode(prefix_beam(lp, options.beam)) for lp in lps]
        dtw_hyps, info = dtw_baseline(data, options)
        return {
            "greedy": error_rates(refs, greedy_hyps), "beam": error_rates(refs, beam_hyps),
            "baseline": {"name": "one-pass DTW, isolated digits of the training voices",
                         **error_rates(refs, dtw_hyps), **info},
            "examples": [{"ref": r, "beam": b, "dtw": d, "voice": data.corpus.meta[i]["voice"]}
                         for r, b, d, i in list(zip(refs, beam_hyps, dtw_hyps, te,
                                                    strict=True))[:10]],
            "alignments": [alignment(data, i, lp) for i, lp in list(zip(te, lps,
                                                                       strict=True))[:3]],
            "beam_width": options.beam,
        }  # fmt: skip

    def test_metrics(self, results):
        return {"cer": results["beam"]["cer"], "wer": results["beam"]["wer"],
                "greedy_wer": results["greedy"]["wer"],
                "baseline_wer": results["baseline"]["wer"]}  # fmt: skip

    def summary(self, results):
        title = f"test split ({results['beam']['n']} digit strings, unseen voices)"
        return title, HEADER, rows(results)

    def report(self, r, run, results) -> None:
        data = results["data"]
        r.paragraph(f"{data['source']}; split {data['split']}; sizes {data['sizes']}; "
                    f"{data['isolated_words']} isolated digits of the training voices.")
        r.paragraph(f"test voices: {', '.join(data['voices']['test'])}", muted=True)
        r.heading("Test split: CTC model vs DTW baseline")
        r.table(rows(results), header=HEADER)
        b = results["baseline"]
        r.paragraph(f"DTW: {b['templates']} templates, word insertion penalty {b['penalty']} "
                    "chosen on validation voices.", muted=True)  # fmt: skip
        r.heading("CTC alignments (test utterances)")
        for a in results["alignments"]:
            r.figure(alignment_plot(a), f"{a['ref']!r}: log-mel frames and the per-step "
                     "probability of each output unit (word or character; blank not drawn)")
        r.heading("Examples (test split)")
        r.table([[e["voice"], e["ref"], e["beam"], e["dtw"]] for e in results["examples"]],
                header=["voice", "reference", "CTC (beam)", "DTW"])  # fmt: skip

    def load(self, run) -> Transcriber:
        from ...training import RunError

        info = run.read_json(SPEECH_FILE)
        try:
            return Transcriber(run.model, Units.of(str(info["units"])), int(info["stack"]),
                               audio.FeatureSpec.from_dict(info["feature"]),
                               StandardScaler.from_dict(info["scaler"]))  # fmt: skip
        except (KeyError, TypeError, ValueError) as err:
            raise RunError(f"{run.path}/{SPEECH_FILE}: malformed ({err})") from None


def alignment(data: SpeechData, i: int, lp: np.ndarray) -> dict:
    """What the report draws for one utterance: its log-mel frames (every 2nd, rounded) and
    the per-step probabilities of the characters that peak somewhere."""
    p = np.exp(lp)
    shown = [k for k in range(1, p.shape[1]) if p[:, k].max() > 0.3]
    return {"ref": data.corpus.meta[i]["text"], "stack": int(data.X[i].shape[1] //
            data.corpus.frames[i].shape[1]),
            "frames": np.round(data.corpus.frames[i][::2], 2).T.tolist(),
            "probs": {data.units.tokens[k - 1]: np.round(p[:, k], 3).tolist()
                      for k in shown}}  # fmt: skip


def alignment_plot(a: dict):
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True)
    frames = np.array(a["frames"])  # (D, T/2) at 20 ms
    step_s = 0.01 * a["stack"]
    top.imshow(frames, aspect="auto", origin="lower", cmap="magma",
               extent=(0, frames.shape[1] * 0.02, 0, frames.shape[0]))  # fmt: skip
    top.set_ylabel("mel channel")
    for ch, probs in a["probs"].items():
        t = np.arange(len(probs)) * step_s
        line = bottom.plot(t, probs, lw=1)[0]
        for k in np.flatnonzero(np.array(probs) > 0.5):
            if k == 0 or probs[k - 1] <= 0.5:
                bottom.text(t[k], min(1.02, probs[k] + 0.02), "_" if ch == " " else ch,
                            color=line.get_color(), fontsize=9)  # fmt: skip
    bottom.set_ylim(0, 1.12)
    bottom.set_xlabel("seconds")
    bottom.set_ylabel("p(output)")
    fig.tight_layout()
    return fig


def rows(results) -> list[list[Any]]:
    out = []
    for key, name in (("beam", f"CTC, prefix beam {results['beam_width']}"),
                      ("greedy", "CTC, greedy"), ("baseline", "one-pass DTW (templates)")):
        m = results[key]
        out.append([name, m["cer"], m["wer"], m["sentence_accuracy"]])
    return out


@dataclass
class Transcriber:
    """A trained speech run, loaded for transcription of WAV files."""

    model: Any
    units: Units
    stack: int
    feature: audio.FeatureSpec
    scaler: StandardScaler

    def transcribe_samples(self, y: np.ndarray, sr: int, beam: int = 8) -> dict:
        frames = audio.features(y, sr, self.feature)
        x = audio.stack_frames(self.scaler.transform(frames).astype(np.float32), self.stack)
        lp = log_probs(self.model, [x])[0]
        labels = prefix_beam(lp, beam) if beam > 1 else greedy(lp)
        return {"text": self.units.decode(labels), "greedy": self.units.decode(greedy(lp)),
                "seconds": len(y) / sr}

    def transcribe_file(self, path: str | Path, beam: int = 8) -> dict:
        """Any WAV (any rate; stereo mixed down) -> {"text", "greedy", "seconds"}."""
        y, sr = audio.read_wav(path)
        if not np.any(y):
            raise DataError(f"{path}: the recording is silent")
        return self.transcribe_samples(y, sr, beam)


TASK = SpeechTask()


def train(options: SpeechOptions, out: str | Path, **kwargs: Any):
    """Generate (or reuse) the corpus, train the CTC model and the DTW baseline."""
    return driver.train(TASK, options, out, **kwargs)


def load(run_dir: str | Path) -> Transcriber:
    """A `train speech` run, loaded for `transcribe_file`."""
    return driver.load(run_dir, NAME)
