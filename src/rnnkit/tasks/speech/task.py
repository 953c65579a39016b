"""The speech Task: digit corpus, split by voice, the CTC model, the DTW baseline, the report,
and the loaded Transcriber.

A run directory holds, besides the Trainer's files: `speech.json` (the output units, the
feature spec, frame stacking, the scaler, and the n-gram language model: the training
transcripts, its order and the weight and length bonus chosen on validation voices),
`results.json` and `report.html`.

The model is a ManyToMany (frames -> per-step logits over blank + characters) whose training
loss is CTC; it is saved and reloaded as the plain ManyToMany it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data import audio
from ...data.archives import pad_sequences
from ...data.scaling import StandardScaler
from ...data.speech import (
    VOCABULARY,
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
from .decode import NgramLM, collapse, edit_distance, error_rates, greedy, prefix_beam
from .options import NAME, SpeechOptions

SPEECH_FILE = "speech.json"
HEADER = ["decoder", "CER", "WER", "strings right"]
KINDS = ("digits", "sentence")
CHARS = "".join(sorted(set("".join(VOCABULARY)) | {" "}))
DECODERS = ("greedy", "beam", "beam_lm")


@dataclass(frozen=True)
class Units:
    """What the CTC outputs are: characters (label k+1 is tokens[k]; 0 is the blank) or the
    words of the fixed vocabulary."""

    kind: str  # "chars" | "words"
    tokens: tuple[str, ...]

    @classmethod
    def of(cls, kind: str) -> Units:
        return cls(kind, tuple(CHARS) if kind == "chars" else VOCABULARY)

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
    lm: dict[str, Any]  # {"order", "texts"}: the n-gram LM of the training transcripts
    summary: dict[str, Any]


def language_model(units: Units, texts: list[str], order: int) -> NgramLM:
    return NgramLM([units.encode(t) for t in texts], order, len(units.tokens) + 1)


def choose_order(units: Units, train: list[str], val: list[str]) -> dict[str, Any]:
    """The n-gram order (1-3 for words, 1-6 for characters) with the lowest perplexity on
    the validation transcripts, the LM fitted on the training transcripts (1 without any)."""
    if not val:
        return {"order": 1, "val_perplexity": {}}
    orders = range(1, 4 if units.kind == "words" else 7)
    ppl = {n: language_model(units, train, n).perplexity([units.encode(t) for t in val])
           for n in orders}  # fmt: skip
    best = min(ppl, key=lambda n: (ppl[n], n))
    return {"order": best, "val_perplexity": {str(n): p for n, p in ppl.items()}}


def prepare(options: SpeechOptions, progress: bool = True) -> SpeechData:
    spec = DigitSpec(n=options.utterances, sentences=options.sentences,
                     per_sex=options.voices_per_sex)
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
    units = Units.of(options.units)
    texts = {s: [corpus.meta[i]["text"] for i in idx] for s, idx in split.items()}
    lm = {**choose_order(units, texts["train"], texts["val"]), "texts": texts["train"]}
    kinds = {s: {k: sum(corpus.meta[i]["kind"] == k for i in idx) for k in KINDS}
             for s, idx in split.items()}  # fmt: skip
    summary = {
        "source": "espeak-ng connected digit strings (2-5 digits) and GRID-style command "
        "sentences (26 words), half in a synthetic room (RT60 0.2-0.8 s), noise at 15-35 dB SNR",
        "corpus": corpus.path, "sizes": {s: len(v) for s, v in split.items()}, "kinds": kinds,
        "isolated_words": len(words), "voices": voices,
        "split": "by voice variant: test voices never heard in training",
        "feature": spec.feature.to_dict(), "units": options.units,
        "lm_order": lm["order"], "lm_val_perplexity": lm["val_perplexity"],
    }  # fmt: skip
    return SpeechData(corpus, split, words, scaler, X, units, lm, summary)


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


def is_digits(data: SpeechData, i: int) -> bool:
    return data.corpus.meta[i]["kind"] == "digits"


LM_WEIGHTS = (0.0, 0.5, 1.0, 2.0)
LM_BONUSES = (0.0, 1.0, 2.0, 3.0)


def tune_lm(model, data: SpeechData, lm: NgramLM, beam: int, most: int = 60) -> dict[str, Any]:
    """The LM weight and length bonus with the lowest WER on (up to `most`, evenly spaced)
    validation utterances; weight 0 and bonus 0 is the plain beam, so the tuned decoder is
    never worse than it on these utterances."""
    val = data.split["val"] or data.split["train"]
    val = val[:: max(1, len(val) // most)][:most]
    refs = [data.corpus.meta[i]["text"] for i in val]
    lps = log_probs(model, [data.X[i] for i in val])
    wer = {}
    for w in LM_WEIGHTS:
        for b in LM_BONUSES if w else (0.0,):
            hyps = [data.units.decode(prefix_beam(lp, beam, lm=lm, weight=w, bonus=b))
                    for lp in lps]  # fmt: skip
            wer[(w, b)] = error_rates(refs, hyps)["wer"]
    weight, bonus = min(wer, key=lambda k: (wer[k], k))
    return {"order": lm.order, "weight": weight, "bonus": bonus, "val_utterances": len(val),
            "val_wer": {f"{w}/{b}": v for (w, b), v in wer.items()}}  # fmt: skip


def dtw_baseline(data: SpeechData, options: SpeechOptions,
                 test: list[int]) -> tuple[list[str], dict]:  # fmt: skip
    """One-pass DTW over `dtw_templates` isolated recordings per digit (training voices); the
    word insertion penalty chosen on up to 30 validation digit strings. -> (transcripts of
    the `test` utterances, info)."""
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
    val = [i for i in data.split["val"] or data.split["train"] if is_digits(data, i)][:30]
    refs = [data.corpus.meta[i]["text"] for i in val]
    scores = {}
    for pen in (0.0, 5.0, 10.0, 20.0, 40.0):
        hyps = [" ".join(dtw.match(prep(i), ts, pen)) for i in val]
        scores[pen] = error_rates(refs, hyps)["wer"]
    pen = min(scores, key=lambda p: (scores[p], p))
    hyps = [" ".join(dtw.match(prep(i), ts, pen)) for i in test]
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
        return {SPEECH_FILE: {"units": options.units, "tokens": list(data.units.tokens),
                              "stack": options.stack, "feature": data.summary["feature"],
                              "scaler": data.scaler.to_dict(), "lm": data.lm}}  # fmt: skip

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

        n_mels = int(data.corpus.spec["feature"]["n_mels"])

        def make(step: int, gen: torch.Generator):
            x, *rest = batch_of(data, [train[int(i)] for i in
                                       torch.randint(0, len(train), (B,), generator=gen)])
            if options.band_limit:
                x = audio.band_limit(x, options.stack, n_mels, options.band_limit, gen)
            return (x, *rest)

        val_idx = data.split["val"] or data.split["train"]
        return make, [batch_of(data, val_idx[k : k + 64]) for k in range(0, len(val_idx), 64)]

    def evaluate(self, options: SpeechOptions, data: SpeechData, fitted: Fitted) -> dict[str, Any]:
        te = data.split["test"]
        refs = [data.corpus.meta[i]["text"] for i in te]
        lps = log_probs(fitted.model, [data.X[i] for i in te])
        lm = language_model(data.units, data.lm["texts"], data.lm["order"])
        tuned = tune_lm(fitted.model, data, lm, options.beam)
        hyps = {
            "greedy": [data.units.decode(greedy(lp)) for lp in lps],
            "beam": [data.units.decode(prefix_beam(lp, options.beam)) for lp in lps],
            "beam_lm": [data.units.decode(prefix_beam(lp, options.beam, lm=lm,
                                                      weight=tuned["weight"],
                                                      bonus=tuned["bonus"])) for lp in lps],
        }  # fmt: skip
        by_kind = {}
        for kind in KINDS:
            sel = [j for j, i in enumerate(te) if data.corpus.meta[i]["kind"] == kind]
            if sel:
                by_kind[kind] = {d: error_rates([refs[j] for j in sel], [h[j] for j in sel])
                                 for d, h in hyps.items()}  # fmt: skip
        digit_te = [i for i in te if is_digits(data, i)]
        dtw_hyps, info = dtw_baseline(data, options, digit_te)
        dtw_of = dict(zip(digit_te, dtw_hyps, strict=True))
        return {
            **{d: error_rates(refs, h) for d, h in hyps.items()}, "by_kind": by_kind,
            "lm": {**tuned, "val_perplexity": data.lm["val_perplexity"]},
            "baseline": {"name": "one-pass DTW, isolated digits of the training voices",
                         **error_rates([data.corpus.meta[i]["text"] for i in digit_te],
                                       dtw_hyps), **info},
            "examples": [{"ref": refs[j], "beam": hyps["beam"][j], "beam_lm": hyps["beam_lm"][j],
                          "dtw": dtw_of.get(i, ""), "voice": data.corpus.meta[i]["voice"]}
                         for j, i in enumerate(te) if j % max(1, len(te) // 12) == 0][:12],
            "alignments": [alignment(data, i, lp) for i, lp in list(zip(te, lps,
                                                                       strict=True))[:3]],
            "beam_width": options.beam,
        }  # fmt: skip

    def test_metrics(self, results):
        out = {"cer": results["beam"]["cer"], "wer": results["beam"]["wer"],
               "greedy_wer": results["greedy"]["wer"], "lm_wer": results["beam_lm"]["wer"],
               "baseline_wer": results["baseline"]["wer"]}  # fmt: skip
        if "digits" in results["by_kind"]:
            out["digits_wer"] = results["by_kind"]["digits"]["beam_lm"]["wer"]
        return out

    def summary(self, results):
        title = f"test split ({results['beam']['n']} utterances, unseen voices)"
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
                    "chosen on validation voices; digit strings only.", muted=True)  # fmt: skip
        lm = results["lm"]
        r.paragraph(f"LM: {lm['order']}-gram over {data['units']} of the training transcripts "
                    f"(order by validation perplexity), weight {lm['weight']} and length bonus "
                    f"{lm['bonus']} chosen on {lm['val_utterances']} validation utterances.",
                    muted=True)  # fmt: skip
        r.heading("CTC alignments (test utterances)")
        for a in results["alignments"]:
            r.figure(alignment_plot(a), f"{a['ref']!r}: log-mel frames and the per-step "
                     "probability of each output unit (word or character; blank not drawn)")
        r.heading("Examples (test split)")
        r.table([[e["voice"], e["ref"], e["beam"], e["beam_lm"], e["dtw"]]
                 for e in results["examples"]],
                header=["voice", "reference", "CTC (beam)", "CTC (beam + LM)", "DTW"])  # fmt: skip

    def load(self, run) -> Transcriber:
        from ...training import RunError

        info = run.read_json(SPEECH_FILE)
        try:
            units = Units(str(info["units"]), tuple(map(str, info["tokens"])))
            lm = language_model(units, list(info["lm"]["texts"]), int(info["lm"]["order"]))
            return Transcriber(run.model, units, int(info["stack"]),
                               audio.FeatureSpec.from_dict(info["feature"]),
                               StandardScaler.from_dict(info["scaler"]), lm,
                               run.path / self.results_file)  # fmt: skip
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
    """One row per decoder over all test utterances, then per kind, then DTW (digits)."""
    names = {"greedy": "CTC, greedy", "beam": f"CTC, prefix beam {results['beam_width']}",
             "beam_lm": f"CTC, prefix beam + {results['lm']['order']}-gram LM"}  # fmt: skip
    out = []
    for scope, table in [("all", results), *results["by_kind"].items()]:
        for d, name in names.items():
            m = table[d]
            out.append([f"{name} ({scope})", m["cer"], m["wer"], m["sentence_accuracy"]])
    b = results["baseline"]
    out.append(["one-pass DTW, templates (digits)", b["cer"], b["wer"], b["sentence_accuracy"]])
    return out


@dataclass
class Transcriber:
    """A trained speech run, loaded for transcription of WAV files."""

    model: Any
    units: Units
    stack: int
    feature: audio.FeatureSpec
    scaler: StandardScaler
    lm: NgramLM
    results: Path  # results.json: the LM weight and bonus chosen on validation

    def lm_setting(self) -> tuple[float, float]:
        """(weight, bonus) the run chose on validation; RunError if it has no results yet."""
        from ...training import RunError

        try:
            tuned = json.loads(self.results.read_text())["lm"]
            return float(tuned["weight"]), float(tuned["bonus"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise RunError(f"{self.results}: no language-model setting ({err}); the run "
                           "has not been evaluated, transcribe without --lm") from None

    def transcribe_samples(self, y: np.ndarray, sr: int, beam: int = 8,
                           use_lm: bool = False) -> dict:  # fmt: skip
        """Mono samples at rate sr -> {"text", "greedy", "seconds"}; the text from the
        prefix beam (greedy if beam is 1), with the run's LM when use_lm."""
        frames = audio.features(y, sr, self.feature)
        frames = audio.fill_missing_bands(frames, sr, self.feature, self.scaler.mean)
        x = audio.stack_frames(self.scaler.transform(frames).astype(np.float32), self.stack)
        lp = log_probs(self.model, [x])[0]
        if use_lm:
            weight, bonus = self.lm_setting()
            labels = prefix_beam(lp, beam, lm=self.lm, weight=weight, bonus=bonus)
        else:
            labels = prefix_beam(lp, beam) if beam > 1 else greedy(lp)
        return {"text": self.units.decode(labels), "greedy": self.units.decode(greedy(lp)),
                "seconds": len(y) / sr}

    def transcribe_file(self, path: str | Path, beam: int = 8, use_lm: bool = False) -> dict:
        """Any WAV (any rate; stereo mixed down) -> {"text", "greedy", "seconds"}."""
        y, sr = audio.read_wav(path)
        if not np.any(y):
            raise DataError(f"{path}: the recording is silent")
        return self.transcribe_samples(y, sr, beam, use_lm)


TASK = SpeechTask()


def train(options: SpeechOptions, out: str | Path, **kwargs: Any):
    """Generate (or reuse) the corpus, train the CTC model and the DTW baseline."""
    return driver.train(TASK, options, out, **kwargs)


def load(run_dir: str | Path) -> Transcriber:
    """A `train speech` run, loaded for `transcribe_file`."""
    return driver.load(run_dir, NAME)
