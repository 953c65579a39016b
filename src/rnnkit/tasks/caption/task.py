"""The caption Task: data, model, beam-search evaluation, baselines, report, the Captioner.

A run directory holds, besides the Trainer's files: `vocab.json` (the caption words),
`results.json` (test metrics of the model and the baselines, examples) and `report.html`
(with attention maps).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...data.images import ImageSplits, digit_splits, emoji_splits, read_image
from ...data.text import DataError
from ...data.vocab import SPECIALS, Vocab
from ...models import Captioner, CaptionerConfig
from .. import driver
from ..metrics import translation_metrics
from ..options import OptionError
from ..task import Fitted, Task
from .baselines import nearest_captions, oracle_digits
from .options import MAX_BEAM, NAME, CaptionOptions

VOCAB_FILE = "vocab.json"
ROWS = {"model": "captioner, beam {beam}", "model_greedy": "captioner, greedy",
        "nn_pixels": "nearest picture, pixels", "nn_features": "nearest picture, CNN features",
        "oracle": "oracle digits + logistic regression"}  # results key -> summary row


@dataclass
class CaptionData:
    splits: ImageSplits
    vocab: Vocab
    summary: dict[str, Any]


def load_splits(data: str, n_train: int, n_val: int, n_test: int,
                max_digits: int) -> ImageSplits:  # fmt: skip
    if data == "emoji":
        return emoji_splits(n_train, n_val, n_test)
    return digit_splits(n_train, n_val, n_test, max_digits)


def pictures(images: np.ndarray) -> Tensor:
    """uint8 (B, C, H, W) -> floats in 0..1."""
    return torch.from_numpy(np.ascontiguousarray(images)).float() / 255


def make_batch(data: CaptionData, images: np.ndarray, captions: Sequence[Sequence[str]]):
    """(pictures, caption ids + <eos> padded with <pad>, None, target lengths)."""
    ids = [data.vocab.encode(c) + [data.vocab.eos] for c in captions]
    T = max(len(s) for s in ids)
    tgt = torch.full((len(ids), T), data.vocab.pad, dtype=torch.long)
    for i, s in enumerate(ids):
        tgt[i, : len(s)] = torch.tensor(s)
    return pictures(images), tgt, None, torch.tensor([len(s) for s in ids])


def batch_fn(data: CaptionData, size: int) -> Callable[[int, torch.Generator], tuple]:
    train = data.splits.train

    def make(step: int, gen: torch.Generator) -> tuple:
        pick = torch.randint(0, len(train), (size,), generator=gen).numpy()
        return make_batch(data, train.images[pick], [train.captions[i] for i in pick])

    return make


@torch.no_grad()
def decode(model: Captioner, vocab: Vocab, images: np.ndarray, beam: int = 4,
           size: int = 256) -> list[str]:  # fmt: skip
    """Pictures (N, C, H, W) uint8 -> captions (beam search; beam 1 is greedy)."""
    from ...models import beam_search, greedy

    model.eval()
    out: list[str] = []
    for i in range(0, len(images), size):
        x = pictures(images[i : i + size])
        dec = beam_search(model, x, beam_width=beam) if beam > 1 else greedy(model, x)
        out.extend(" ".join(vocab.tokens_of(ids)) for ids in dec.to_lists())
    return out


def scores(hyps: Sequence[str], refs: Sequence[str], seen: Sequence[bool]) -> dict[str, Any]:
    """Exact match, BLEU, chrF; and exact match on test captions seen / unseen in training."""
    m = translation_metrics(hyps, refs)
    for name, want in (("seen", True), ("unseen", False)):
        pick = [h == r for h, r, s in zip(hyps, refs, seen, strict=True) if s == want]
        m[f"exact_match_{name}"] = sum(pick) / len(pick) if pick else None
    return m


class CaptionTask(Task):
    name = NAME
    title = "Image captioning"
    options = CaptionOptions
    requires = ("sacrebleu", "sklearn", "PIL")  # emoji also needs fontTools (checked there)

    def run_name(self, options: CaptionOptions) -> str:
        return f"{NAME}-{options.data}"

    def prepare(self, options: CaptionOptions) -> CaptionData:
        splits = load_splits(options.data, options.train_images, options.val_images,
                             options.test_images, options.max_digits)  # fmt: skip
        words = sorted({w for c in splits.train.captions for w in c})
        vocab = Vocab(list(SPECIALS) + words, specials=SPECIALS)
        seen = {" ".join(c) for c in splits.train.captions}
        unseen = sum(" ".join(c) not in seen for c in splits.test.captions)
        longest = max(len(c) for part in (splits.train, splits.val, splits.test)
                      for c in part.captions)  # fmt: skip
        _, _, H, W = splits.train.images.shape
        summary = {"name": options.data, "source": splits.source, "split": splits.describe(),
                   "sizes": {"train": len(splits.train), "val": len(splits.val),
                             "test": len(splits.test)},
                   "scans": splits.scans, "vocab": len(vocab), "longest_caption": longest,
                   "test_unseen_captions": unseen, "channels": int(splits.train.images.shape[1]),
                   "height": int(H), "width": int(W)}  # fmt: skip
        return CaptionData(splits, vocab, summary)

    def build(self, options: CaptionOptions, data: CaptionData) -> Captioner:
        d, v = data.summary, data.vocab
        return Captioner(CaptionerConfig(
            vocab_size=len(v), bos_token=v.bos, eos_token=v.eos, pad_token=v.pad,
            channels=d["channels"], height=d["height"], width=d["width"],
            filters=options.filters, cell=options.cell, hidden=options.hidden,
            embedding=options.embedding, attention=options.attention, dropout=options.dropout,
            max_length=d["longest_caption"] + 3,
        ))  # fmt: skip

    def files(self, options, data: CaptionData) -> dict[str, Any]:
        return {VOCAB_FILE: data.vocab.to_dict()}

    def train_config(self, options: CaptionOptions, data: CaptionData):
        from ...config import TrainConfig

        steps = options.train_steps(-(-len(data.splits.train) // options.batch))
        return TrainConfig(
            steps=steps, time_minutes=options.minutes, batch_size=options.batch, lr=options.lr,
            schedule="cosine", min_lr_ratio=0.05, clip="norm", clip_value=1.0,
            eval_every=min(options.eval_every, steps), monitor="loss", log_every=10,
            seed=options.seed,
        )  # fmt: skip

    def batches(self, options: CaptionOptions, data: CaptionData):
        val = data.splits.val
        batches = [make_batch(data, val.images[i : i + 256], val.captions[i : i + 256])
                   for i in range(0, len(val), 256)]  # fmt: skip
        return batch_fn(data, options.batch), batches

    def evaluate(self, options, data: CaptionData, fitted: Fitted) -> dict[str, Any]:
        model, train, test = fitted.model, data.splits.train, data.splits.test
        refs = [" ".join(c) for c in test.captions]
        known = {" ".join(c) for c in train.captions}
        seen = [r in known for r in refs]
        t0 = time.perf_counter()
        beam_out = decode(model, data.vocab, test.images, options.beam)
        seconds = time.perf_counter() - t0
        greedy_out = decode(model, data.vocab, test.images, 1)
        pixels = nearest_captions(train, test, lambda x: x.flatten(1))
        features = nearest_captions(train, test, model.features)
        out = {
            "model": {**scores(beam_out, refs, seen), "beam": options.beam,
                      "seconds_decode": seconds},
            "model_greedy": scores(greedy_out, refs, seen),
            "nn_pixels": {"name": "nearest training picture (pixels)",
                          **scores(pixels, refs, seen)},
            "nn_features": {"name": "nearest training picture (CNN features)",
                            **scores(features, refs, seen)},
            "examples": [{"reference": r, "model": m, "nn_pixels": p, "nn_features": f}
                         for r, m, p, f in list(zip(refs, beam_out, pixels, features,
                                                    strict=True))[:12]],
        }  # fmt: skip
        if options.data == "digits":
            oracle = oracle_digits(train, test)
            out["oracle"] = {
                "name": "logistic regression on oracle-segmented digits (upper bound)",
                "digit_accuracy": oracle["digit_accuracy"], "fitted_on": oracle["fitted_on"],
                **scores(oracle["captions"], refs, seen),
            }  # fmt: skip
        return out

    def test_metrics(self, results):
        return {f"{k}_{m}": results[k][m] for k in ROWS if k in results
                for m in ("bleu", "chrf", "exact_match")}  # fmt: skip

    def summary(self, results):
        rows = []
        for key, name in ROWS.items():
            if key not in results:
                continue
            m = results[key]
            name = name.format(beam=results["model"]["beam"])
            unseen = "n/a" if m["exact_match_unseen"] is None else f"{m['exact_match_unseen']:.3f}"
            rows.append([name, f"{m['exact_match']:.3f}", unseen, f"{m['bleu']:.1f}",
                         f"{m['chrf']:.1f}"])  # fmt: skip
        title = f"test split ({results['model']['n']:,} pictures, {results['data']['name']})"
        return title, ["model", "exact match", "unseen captions", "BLEU", "chrF"], rows

    def report(self, r, run, results) -> None:
        from ..report import bar_plot

        opts, d = driver.run_record(run.extra)["options"], results["data"]
        r.paragraph(f"{d['source']}: {d['split']}. {d['test_unseen_captions']:,} test captions "
                    "never appear in training (nearest-neighbour captions cannot be right on "
                    "those).")  # fmt: skip
        r.heading("Test split: captioner vs baselines")
        title, header, rows = self.summary(results)
        r.table(rows, header=header)
        r.paragraph(f"Captioner: {opts['filters']}-filter CNN, {opts['cell'].upper()} "
                    f"{opts['hidden']} decoder with soft attention (Xu et al. 2015).")
        if "oracle" in results:
            r.paragraph(f"The oracle reads each digit at its true box "
                        f"({results['oracle']['digit_accuracy']:.3f} digit accuracy): an upper "
                        "bound, the captioner gets no boxes.")  # fmt: skip
        r.paragraph(f"sacrebleu: {results['model']['bleu_signature']}", muted=True)
        for key, label in (("exact_match", "exact match"), ("bleu", "BLEU")):
            r.figure(bar_plot({n: results[k][key] for n, k in (
                ("captioner", "model"), ("NN pixels", "nn_pixels"),
                ("NN features", "nn_features"), ("oracle", "oracle")) if k in results},
                f"test {label}"), f"test {label}, same run")  # fmt: skip
        r.heading("Examples (test split)")
        r.table([[e["reference"], e["model"], e["nn_pixels"], e["nn_features"]]
                 for e in results["examples"]],
                header=["reference", "captioner", "NN pixels", "NN features"])  # fmt: skip
        captioner = self.load(run)
        test = load_splits(opts["data"], 2, 1, 4, opts["max_digits"]).test
        r.figure(captioner.attention_figure(test.images[:4]),
                 "attention of each word (greedy decoding) on test pictures")

    def load(self, run) -> CaptionPredictor:
        from ...training import RunError

        try:
            vocab = Vocab.from_dict(run.read_json(VOCAB_FILE))
        except (KeyError, TypeError, DataError) as err:
            raise RunError(f"{run.path}/{VOCAB_FILE}: malformed ({err})") from None
        return CaptionPredictor(run.model, vocab)


@dataclass
class CaptionPredictor:
    """A trained captioning run, loaded for prediction."""

    model: Captioner
    vocab: Vocab

    def read(self, path: str | Path) -> np.ndarray:
        c = self.model.config
        return read_image(path, c.channels, c.height, c.width)

    def caption(self, path: str | Path, beam: int = 4) -> dict:
        """{"caption", "words"} of an image file (any PNG/JPEG, letterboxed to the canvas)."""
        if isinstance(beam, bool) or not isinstance(beam, int) or not 1 <= beam <= MAX_BEAM:
            raise OptionError("beam", f"an integer in 1..{MAX_BEAM}", beam)
        text = decode(self.model, self.vocab, self.read(path)[None], beam)[0]
        return {"caption": text, "words": text.split()}

    def attention_figure(self, images: np.ndarray):
        """Each picture (a row) and, per word of its greedy caption, the attention map."""
        import matplotlib.pyplot as plt

        tokens, alphas = self.model.attend(pictures(images))
        rows, cols = self.model.config.grid
        width = max(len(t) for t in tokens) + 2
        fig, axes = plt.subplots(len(images), width, figsize=(1.6 * width, 0.8 * len(images)),
                                 squeeze=False)  # fmt: skip
        for i, toks in enumerate(tokens):
            pic = images[i].transpose(1, 2, 0).squeeze(-1) if images.shape[1] == 1 \
                else images[i].transpose(1, 2, 0)  # fmt: skip
            words = [*self.vocab.tokens_of(toks), "<eos>"][: alphas.shape[1]]
            for j, ax in enumerate(axes[i]):
                ax.axis("off")
                if j == 0:
                    ax.imshow(pic, cmap="gray")
                    ax.set_title("picture", fontsize=7)
                elif j - 1 < len(words):
                    ax.imshow(pic, cmap="gray")
                    a = alphas[i, j - 1].reshape(rows, cols).numpy()
                    ax.imshow(a, cmap="jet", alpha=0.5, interpolation="bilinear",
                              extent=(0, pic.shape[1], pic.shape[0], 0))  # fmt: skip
                    ax.set_title(words[j - 1], fontsize=7)
        fig.tight_layout()
        return fig


TASK = CaptionTask()


def train(options: CaptionOptions, out: str | Path, **kwargs: Any):
    """Train the captioner, score it and the baselines on the test split; see driver.train."""
    return driver.train(TASK, options, out, **kwargs)


def load(run_dir: str | Path) -> CaptionPredictor:
    """A `train caption` run, loaded for `caption`."""
    return driver.load(run_dir, NAME)
