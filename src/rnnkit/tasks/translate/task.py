"""The translate Task: data, model, beam-search evaluation, baseline, report, the Translator.

A run directory holds, besides the Trainer's files: `vocab.json` (source and target
vocabularies), `results.json` (test metrics of model and baseline, examples), `baseline.json`
(the word lexicon) and `report.html`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ...data.batching import pad_ids
from ...data.text import DataError
from ...data.translation import (
    JOIN,
    PairSplits,
    build_lexicon,
    fit_vocab,
    number_pairs,
    number_tokens,
    phrase_pairs,
    tokenize,
    word_by_word,
)
from ...data.vocab import Vocab
from .. import driver, entry_points, malformed
from ..metrics import translation_metrics
from ..options import OptionError
from ..task import Fitted, Task
from .options import MAX_BEAM, NAME, TranslateOptions

VOCAB_FILE = "vocab.json"
LEXICON_FILE = "baseline.json"


@dataclass
class TranslationData:
    splits: PairSplits
    source: Vocab
    target: Vocab
    summary: dict[str, Any]


def load_pairs(options: TranslateOptions) -> PairSplits:
    if options.data == "numbers":
        splits = number_pairs(options.low, options.high)
    else:
        splits = phrase_pairs(options.min_words, options.max_words, options.vocab_limit)
    if options.limit is not None:
        n = options.limit
        splits = PairSplits(splits.train[:n], splits.val[:n], splits.test[:n], splits.source)
    if not splits.train or not splits.test:
        raise DataError(f"{splits.source}: no training or test pairs ({splits.describe()})")
    return splits


def make_batch(data: TranslationData, pairs: Sequence[tuple[list[str], list[str]]]) -> tuple:
    """(source ids, target ids + <eos>, source lengths, target lengths) for Seq2Seq.loss."""
    src, src_len = pad_ids([data.source.encode(s) for s, _ in pairs])
    tgt, tgt_len = pad_ids([data.target.encode(t) + [data.target.eos] for _, t in pairs])
    return src, tgt, src_len, tgt_len


def batch_fn(data: TranslationData, size: int) -> Callable[[int, torch.Generator], tuple]:
    train = data.splits.train

    def make(step: int, gen: torch.Generator) -> tuple:
        pick = torch.randint(0, len(train), (min(size, len(train)),), generator=gen).tolist()
        return make_batch(data, [train[i] for i in pick])

    return make


def build_translator(options: TranslateOptions, data: TranslationData):
    from ...config import InputConfig, RNNConfig, Seq2SeqConfig
    from ...models import build_model

    drop = options.dropout if options.layers > 1 else 0.0
    cfg = Seq2SeqConfig(
        source=InputConfig("tokens", len(data.source), options.embedding, padding_idx=0),
        target_vocab_size=len(data.target),
        bos_token=data.target.bos,
        eos_token=data.target.eos,
        target_embedding_dim=options.embedding,
        encoder=RNNConfig(options.cell, options.hidden // 2 or 1, options.layers, True, drop),
        decoder=RNNConfig(options.cell, options.hidden, options.layers, False, drop),
        attention=options.attention,
        teacher_forcing=1.0,
        max_length=data.summary["longest_target"] + 8,
        pad_token=data.target.pad,
    )
    return build_model(cfg)


@torch.no_grad()
def decode(
    model, source: Vocab, target: Vocab, sources: Sequence[Sequence[str]], beam: int = 4,
    size: int = 64,
) -> list[list[str]]:  # fmt: skip
    """Token lists -> translated token lists (beam search; beam 1 is greedy)."""
    from ...models import beam_search, greedy

    model.eval()
    out: list[list[str]] = []
    for i in range(0, len(sources), size):
        src, lengths = pad_ids([source.encode(s) or [source.unk] for s in sources[i : i + size]])
        if beam > 1:
            dec = beam_search(model, src, lengths=lengths, beam_width=beam)
        else:
            dec = greedy(model, src, lengths=lengths)
        out.extend(target.tokens_of(ids) for ids in dec.to_lists())
    return out


class TranslateTask(Task):
    name = NAME
    title = "Translation"
    options = TranslateOptions
    requires = ("sacrebleu",)

    def run_name(self, options: TranslateOptions) -> str:
        return f"{NAME}-{options.data}"

    def prepare(self, options: TranslateOptions) -> TranslationData:
        splits = load_pairs(options)
        source = fit_vocab(s for s, _ in splits.train)
        target = fit_vocab(t for _, t in splits.train)
        longest = max(len(t) for part in (splits.train, splits.val, splits.test) for _, t in part)
        summary = {"name": options.data, "source": splits.source, "split": splits.describe(),
                   "sizes": {"train": len(splits.train), "val": len(splits.val),
                             "test": len(splits.test)},
                   "source_vocab": len(source), "target_vocab": len(target),
                   "longest_target": longest}  # fmt: skip
        return TranslationData(splits, source, target, summary)

    def build(self, options: TranslateOptions, data: TranslationData):
        return build_translator(options, data)

    def files(self, options, data: TranslationData) -> dict[str, Any]:
        return {VOCAB_FILE: {"source": data.source.to_dict(), "target": data.target.to_dict()}}

    def train_config(self, options: TranslateOptions, data: TranslationData):
        steps = options.train_steps(-(-len(data.splits.train) // options.batch))
        return options.train_config(
            steps, schedule="cosine", min_lr_ratio=0.05, clip="norm", clip_value=1.0,
            eval_every=min(options.eval_every, steps), monitor="loss", log_every=10,
        )  # fmt: skip

    def batches(self, options: TranslateOptions, data: TranslationData):
        pairs = data.splits.val or data.splits.train[:256]
        val = [make_batch(data, pairs[i : i + 256]) for i in range(0, len(pairs), 256)]
        return batch_fn(data, options.batch), val

    def evaluate(self, options, data: TranslationData, fitted: Fitted) -> dict[str, Any]:
        join, test = JOIN[options.data], data.splits.test
        refs, sources = [join.join(t) for _, t in test], [s for s, _ in test]
        t0 = time.perf_counter()
        beam_out = [join.join(h) for h in decode(fitted.model, data.source, data.target,
                                                  sources, options.beam)]  # fmt: skip
        seconds = time.perf_counter() - t0
        greedy_out = [join.join(h) for h in decode(fitted.model, data.source, data.target,
                                                    sources, 1)]  # fmt: skip
        use_bleu = options.data != "numbers"
        lexicon = build_lexicon(options.data, data.splits)
        from ...training import write_run_json

        write_run_json(fitted.trainer.run_dir, LEXICON_FILE, {"lexicon": lexicon})
        base_out = [word_by_word(lexicon, s, options.data) for s in sources]
        return {
            "model": {**translation_metrics(beam_out, refs, use_bleu), "beam": options.beam,
                      "seconds_decode": seconds},
            "model_greedy": translation_metrics(greedy_out, refs, use_bleu),
            "baseline": {"name": "word-by-word dictionary (most frequent translation of each "
                                 "word)", "lexicon_size": len(lexicon),
                         **translation_metrics(base_out, refs, use_bleu)},
            "examples": [{"source": " ".join(s), "reference": r, "model": m, "baseline": b}
                         for s, r, m, b in list(zip(sources, refs, beam_out, base_out,
                                                    strict=True))[:12]],
        }  # fmt: skip

    def test_metrics(self, results):
        return {f"{k}_{m}": results[k][m] for k in ("model", "baseline")
                for m in ("bleu", "chrf", "exact_match")}  # fmt: skip

    def summary(self, results):
        rows = []
        for name, key in ((f"seq2seq, beam {results['model']['beam']}", "model"),
                          ("seq2seq, greedy", "model_greedy"),
                          ("word-by-word dictionary", "baseline")):  # fmt: skip
            m = results[key]
            bleu = "n/a" if m["bleu"] is None else f"{m['bleu']:.1f}"
            rows.append([name, bleu, f"{m['chrf']:.1f}", f"{m['exact_match']:.3f}"])
        title = f"test split ({results['model']['n']:,} pairs, {results['data']['name']})"
        return title, ["model", "BLEU", "chrF", "exact match"], rows

    def report(self, r, run, results) -> None:
        from ...training.report import bar_plot, line_plot

        opts, d = driver.run_record(run.extra)["options"], results["data"]
        m, g, b = results["model"], results["model_greedy"], results["baseline"]
        r.paragraph(f"{opts['data']}: {d['split']}. Vocabularies from the training split only: "
                    f"{d['source_vocab']:,} source and {d['target_vocab']:,} target tokens.")
        r.heading("Test split: model vs baseline")
        name = f"{opts['cell'].upper()} {opts['hidden']} encoder-decoder, {opts['attention']} " \
               "attention"  # fmt: skip
        r.table([[f"{name}, beam {m['beam']}", m["bleu"], m["chrf"], m["exact_match"]],
                 [f"{name}, greedy", g["bleu"], g["chrf"], g["exact_match"]],
                 [f"word-by-word dictionary ({b['lexicon_size']:,} words)", b["bleu"], b["chrf"],
                  b["exact_match"]]], header=["model", "BLEU", "chrF", "exact match"])  # fmt: skip
        if m["bleu_signature"]:
            r.paragraph(f"sacrebleu: {m['bleu_signature']}", muted=True)
        else:
            r.paragraph("BLEU: not applicable (every output is a single word)", muted=True)
        key, label = ("bleu", "BLEU") if m["bleu"] is not None else ("chrf", "chrF")
        r.figure(bar_plot({"seq2seq": m[key], "word-by-word": b[key]}, f"test {label}"),
                 f"test {label}, model (beam) vs baseline, same run")  # fmt: skip
        r.figure(bar_plot({"seq2seq": m["exact_match"], "word-by-word": b["exact_match"]},
                          "test exact match"), "test exact match, model (beam) vs baseline")
        r.heading("Examples (test split)")
        r.table([[e["source"], e["reference"], e["model"], e["baseline"]]
                 for e in results["examples"]],
                header=["source", "reference", "model", "baseline"])  # fmt: skip
        val = [x for x in run.evals("val") if "exact_match" in x]
        if val:
            r.figure(line_plot({"val exact match (teacher forcing)": (
                [x["step"] for x in val], [x["exact_match"] for x in val])},
                xlabel="step", ylabel="exact match", markers=True),
                "validation exact match, teacher-forced")  # fmt: skip
        translator = self.load(run)
        fig = translator.attention_figure(results["examples"][0]["source"].split(" ")) \
            if results["examples"] else None  # fmt: skip
        if fig is not None:
            r.figure(fig, "attention weights of the first test example (rows: output tokens)")

    def load(self, run) -> Translator:
        data = run.read_json(VOCAB_FILE)
        with malformed(run, VOCAB_FILE):
            source, target = Vocab.from_dict(data["source"]), Vocab.from_dict(data["target"])
        data_set = driver.run_record(run.extra)["options"]["data"]
        return Translator(run.model, source, target, data_set)


@dataclass
class Translator:
    """A trained translation run, loaded for prediction."""

    model: Any
    source: Vocab
    target: Vocab
    data: str  # de-en or numbers: how text is tokenised and output tokens joined

    def tokens(self, text: str) -> list[str]:
        if not text or not text.strip():
            raise DataError("the sentence is empty; pass some text to translate")
        toks = number_tokens(text) if self.data == "numbers" else tokenize(text)
        if not toks:
            raise DataError(f"{text!r} has no words to translate")
        return toks

    def translate(self, text: str, beam: int = 4) -> dict:
        """{"translation", "unknown": words the model has never seen, "tokens"}."""
        if isinstance(beam, bool) or not isinstance(beam, int) or not 1 <= beam <= MAX_BEAM:
            raise OptionError("beam", f"an integer in 1..{MAX_BEAM}", beam)
        toks = self.tokens(text)
        if self.data == "de-en":
            # a sentence-initial capital that the vocabulary only knows in lower case
            if toks[0] not in self.source and toks[0].lower() in self.source:
                toks[0] = toks[0].lower()
        unknown = [t for t in toks if t not in self.source]
        out = decode(self.model, self.source, self.target, [toks], beam)[0]
        return {"translation": JOIN[self.data].join(out), "unknown": unknown, "tokens": toks}

    @torch.no_grad()
    def attention_figure(self, toks: list[str]):
        """Heat map of the decoder's attention over `toks` for their greedy translation."""
        if self.model.config.attention == "none":
            return None
        import matplotlib.pyplot as plt

        hyp = decode(self.model, self.source, self.target, [toks], beam=1)[0]
        src, lengths = pad_ids([self.source.encode(toks)])
        self.model.eval()
        self.model(src, torch.tensor([[self.target.bos, *self.target.encode(hyp)]]), lengths)
        w = self.model.attention_weights[0].numpy()  # (T, S)
        fig, ax = plt.subplots(figsize=(0.5 * len(toks) + 2, 0.3 * len(hyp) + 1.5))
        ax.imshow(w, cmap="Blues", aspect="auto", vmin=0, vmax=1)
        ax.set_xticks(range(len(toks)), toks, rotation=45, ha="right")
        ax.set_yticks(range(len(hyp) + 1), [*hyp, "<eos>"])
        fig.tight_layout()
        return fig


TASK = TranslateTask()
train, load = entry_points(TASK)
