"""Translation: an encoder-decoder with attention, against a word-by-word dictionary baseline.

Two tasks:
    de-en    German -> English phrases from the Ding dictionary (Debian trans-de-en), word
             tokens on both sides (rnnkit.data.translation.phrase_pairs)
    numbers  English number words -> German number words (num2words), word tokens in,
             characters out (German number words are single compounds)

    pairs -> hash split train/val/test -> vocabularies from the training split only
    -> Seq2Seq: embedding -> bidirectional encoder -> decoder with additive/dot attention,
       teacher forcing -> Trainer (BPTT, best weights on validation loss)
    -> beam search on the test split: sacrebleu BLEU and chrF, exact match
    -> the same metrics for a word-by-word dictionary translation -> report.html

A run directory holds, besides the Trainer's files: `vocab.json` (source and target
vocabularies), `results.json` (test metrics of model and baseline, examples), `baseline.json`
(the word lexicon) and `report.html`.

Imports: config, models, training, data, tasks.report; sacrebleu for BLEU/chrF.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.text import DataError
from ..data.translation import (
    PairSplits,
    fit_vocab,
    load_dictionary_pairs,
    number_pairs,
    number_tokens,
    phrase_pairs,
    tokenize,
)
from ..data.vocab import Vocab
from ..training.run import prepare_out_dir
from .common import TaskRun, fit_and_reload

TASK = "translate"
TASKS = ("de-en", "numbers")
VOCAB_FILE = "vocab.json"
LEXICON_FILE = "baseline.json"
RESULTS_FILE = "results.json"
REPORT_FILE = "report.html"
SACREBLEU_INSTALL = "pip install sacrebleu"
# how target tokens join into a string: words with spaces, characters without
JOIN = {"de-en": " ", "numbers": ""}
# words the number baseline leaves out: German writes no "and", hyphen or comma
_NUMBER_SKIP = {"and", "-", ","}


@dataclass(frozen=True)
class TranslateOptions:
    """What `rnnkit train translate` was asked to do (stored in config.json).

    The defaults are the measured default runs (benchmarks/README.md, "Applications: text").
    """

    task: str = "de-en"
    cell: str = "gru"
    hidden: int = 256
    embedding: int = 128
    layers: int = 1
    attention: str = "additive"
    dropout: float = 0.0
    batch: int = 64
    lr: float = 2e-3
    steps: int | None = None  # None: the task's default (DEFAULT_STEPS)
    minutes: float | None = None
    eval_every: int = 250
    beam: int = 4
    seed: int = 0
    limit: int | None = None  # first N pairs of each split (tiny runs)
    threads: int | None = None
    # de-en data
    min_words: int = 2
    max_words: int = 5
    vocab_limit: int = 8000
    # numbers data
    low: int = 0
    high: int = 9999

    def check(self) -> None:
        if self.task not in TASKS:
            raise DataError(f"--task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.cell not in ("gru", "lstm"):
            raise DataError(f"--cell must be gru or lstm, got {self.cell!r}")
        if self.attention not in ("additive", "dot", "none"):
            raise DataError(f"--attention must be additive, dot or none, got {self.attention!r}")
        for name in ("hidden", "embedding", "layers", "batch", "eval_every", "beam"):
            if getattr(self, name) < 1:
                raise DataError(f"--{name} must be >= 1")
        if self.steps is not None and self.steps < 1:
            raise DataError("--steps must be >= 1")
        if not self.lr > 0:
            raise DataError("--lr must be > 0")
        if not 0 <= self.dropout < 1:
            raise DataError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.limit is not None and self.limit < 2:
            raise DataError("--limit must be >= 2")
        if self.threads is not None and self.threads < 1:
            raise DataError("--threads must be >= 1")


DEFAULT_STEPS = {"de-en": 1500, "numbers": 600}


# ---- data ---------------------------------------------------------------------------------


@dataclass
class TranslationData:
    splits: PairSplits
    source: Vocab
    target: Vocab
    summary: dict[str, Any]


def load_pairs(options: TranslateOptions) -> PairSplits:
    if options.task == "numbers":
        splits = number_pairs(options.low, options.high)
    else:
        splits = phrase_pairs(options.min_words, options.max_words, options.vocab_limit)
    if options.limit is not None:
        n = options.limit
        splits = PairSplits(splits.train[:n], splits.val[:n], splits.test[:n], splits.source)
    if not splits.train or not splits.test:
        raise DataError(f"{splits.source}: no training or test pairs ({splits.describe()})")
    return splits


def prepare_data(options: TranslateOptions) -> TranslationData:
    splits = load_pairs(options)
    source = fit_vocab(s for s, _ in splits.train)
    target = fit_vocab(t for _, t in splits.train)
    longest = max(len(t) for part in (splits.train, splits.val, splits.test) for _, t in part)
    summary = {
        "task": options.task,
        "source": splits.source,
        "split": splits.describe(),
        "sizes": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
        "source_vocab": len(source),
        "target_vocab": len(target),
        "longest_target": longest,
    }
    return TranslationData(splits, source, target, summary)


def pad(seqs: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Id lists -> (ids (B, T) padded with 0 = <pad>, lengths (B,))."""
    T = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
    return ids, torch.tensor([len(s) for s in seqs])


def make_batch(data: TranslationData, pairs: Sequence[tuple[list[str], list[str]]]) -> tuple:
    """(source ids, target ids + <eos>, source lengths, target lengths) for Seq2Seq.loss."""
    src, src_len = pad([data.source.encode(s) for s, _ in pairs])
    tgt, tgt_len = pad([data.target.encode(t) + [data.target.eos] for _, t in pairs])
    return src, tgt, src_len, tgt_len


def batch_fn(data: TranslationData, size: int) -> Callable[[int, torch.Generator], tuple]:
    train = data.splits.train

    def make(step: int, gen: torch.Generator) -> tuple:
        pick = torch.randint(0, len(train), (min(size, len(train)),), generator=gen).tolist()
        return make_batch(data, [train[i] for i in pick])

    return make


# ---- model --------------------------------------------------------------------------------


def build_translator(options: TranslateOptions, data: TranslationData):
    from ..config import InputConfig, RNNConfig, Seq2SeqConfig
    from ..models import build_model

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
    model,
    data_source: Vocab,
    data_target: Vocab,
    sources: Sequence[Sequence[str]],
    beam: int = 4,
    size: int = 64,
) -> list[list[str]]:
    """Token lists -> translated token lists (beam search; beam 1 is greedy)."""
    from ..models import beam_search, greedy

    model.eval()
    out: list[list[str]] = []
    for i in range(0, len(sources), size):
        src, lengths = pad([data_source.encode(s) or [data_source.unk] for s in
                            sources[i : i + size]])  # fmt: skip
        if beam > 1:
            dec = beam_search(model, src, lengths=lengths, beam_width=beam)
        else:
            dec = greedy(model, src, lengths=lengths)
        out.extend(data_target.tokens_of(ids) for ids in dec.to_lists())
    return out


# ---- metrics and the baseline ---------------------------------------------------------------


def translation_metrics(hyps: Sequence[str], refs: Sequence[str], bleu: bool = True) -> dict:
    """sacrebleu corpus BLEU and chrF (default settings, 13a tokenisation), exact match.

    BLEU counts word 4-grams over the corpus: it is 0 for outputs that are single words
    (the numbers task), so `bleu=False` reports None there; chrF still applies.

    Example:
        >>> translation_metrics(["a small house"], ["a small house"])["exact_match"]
        1.0
    """
    if len(hyps) != len(refs) or not refs:
        raise ValueError("translation_metrics: need equal, non-empty lists")
    try:
        import sacrebleu
    except ImportError:
        raise DataError(f"BLEU needs sacrebleu; install it with: {SACREBLEU_INSTALL}") from None
    # both sides are space-joined tokens, compared alike: no detokenisation warning needed
    score = sacrebleu.corpus_bleu(list(hyps), [list(refs)], force=True) if bleu else None
    chrf = sacrebleu.corpus_chrf(list(hyps), [list(refs)])
    exact = sum(int(h == r) for h, r in zip(hyps, refs, strict=True)) / len(refs)
    return {
        "bleu": None if score is None else score.score,
        "bleu_signature": None if score is None else str(score.format(signature=True)),
        "chrf": chrf.score,
        "exact_match": exact,
        "n": len(refs),
    }


def most_frequent(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """word -> its most frequent translation among (word, translation) pairs (ties: A-Z).

    Example:
        >>> most_frequent([("Haus", "house"), ("Haus", "home"), ("Haus", "house")])
        {'Haus': 'house'}
    """
    counts: dict[str, Counter] = {}
    for w, t in pairs:
        counts.setdefault(w, Counter())[t] += 1
    return {w: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for w, c in counts.items()}


def build_lexicon(options: TranslateOptions, splits: PairSplits) -> dict[str, str]:
    """The baseline's word lexicon.

    de-en: every one-word-to-one-word entry of the whole dictionary (the task's pairs have
    at least `min_words` words, so no test pair is among them): the dictionary translation
    of each word. numbers: the training pairs whose source is one word ("seven" -> "sieben",
    "forty" -> "vierzig").
    """
    if options.task == "numbers":
        return most_frequent([(s[0], "".join(t)) for s, t in splits.train if len(s) == 1])
    single = []
    for de, en in load_dictionary_pairs():
        d, e = tokenize(de), tokenize(en)
        if len(d) == 1 and len(e) == 1:
            single.append((d[0], e[0]))
    return most_frequent(single)


def word_by_word(lexicon: dict[str, str], tokens: Sequence[str], task: str) -> str:
    """Translate each word on its own; unknown words are copied (names, numbers)."""
    out = []
    for w in tokens:
        if task == "numbers" and w in _NUMBER_SKIP:
            continue
        t = lexicon.get(w) or lexicon.get(w.lower()) or lexicon.get(w.capitalize()) or w
        out.append(t)
    return JOIN[task].join(out)


# ---- training -----------------------------------------------------------------------------


TranslateRun = TaskRun


def train_translate(
    options: TranslateOptions,
    out: str | Path,
    overwrite: bool = False,
    console: Any = None,
    progress: bool = True,
    on_phase: Callable[[str], None] | None = None,
) -> TranslateRun:
    """Train the translator, evaluate it and the baseline on the test split, write a report.

    Example:
        >>> run = train_translate(TranslateOptions(task="numbers"), "runs/numbers")
        >>> run.results["model"]["exact_match"]
    """
    from ..config import TrainConfig
    from ..training import seed_everything, write_run_json

    say = on_phase or (lambda text: None)
    options.check()
    out = Path(out)
    say(f"loading the {options.task} pairs")
    data = prepare_data(options)
    prepare_out_dir(out, overwrite)
    if options.threads:
        torch.set_num_threads(options.threads)
    seed_everything(options.seed)
    model = build_translator(options, data)
    steps = options.steps or DEFAULT_STEPS[options.task]
    val_pairs = data.splits.val or data.splits.train[:256]
    val = [make_batch(data, val_pairs[i : i + 256]) for i in range(0, len(val_pairs), 256)]
    cfg = TrainConfig(
        steps=steps,
        time_minutes=options.minutes,
        batch_size=options.batch,
        lr=options.lr,
        schedule="cosine",
        min_lr_ratio=0.05,
        clip="norm",
        clip_value=1.0,
        eval_every=min(options.eval_every, steps),
        monitor="loss",
        log_every=10,
        seed=options.seed,
        progress=progress,
    )
    extra = {TASK: {"options": dataclasses.asdict(options), "data": data.summary}}
    vocab_json = {"source": data.source.to_dict(), "target": data.target.to_dict()}
    say(
        f"training a {options.cell.upper()} encoder-decoder ({options.hidden} units, "
        f"{options.attention} attention) for {steps} steps on {data.summary['split']}"
    )
    train, files = batch_fn(data, options.batch), {VOCAB_FILE: vocab_json}
    trainer, result, model = fit_and_reload(model, cfg, out, train, val, extra, files, console)

    join = JOIN[options.task]
    test = data.splits.test
    refs = [join.join(t) for _, t in test]
    say(f"translating the {len(test):,} test pairs (beam {options.beam}, then greedy)")
    t0 = time.perf_counter()
    beam_out = [join.join(h) for h in decode(model, data.source, data.target,
                                              [s for s, _ in test], options.beam)]  # fmt: skip
    seconds = time.perf_counter() - t0
    greedy_out = [join.join(h) for h in decode(model, data.source, data.target,
                                                [s for s, _ in test], 1)]  # fmt: skip
    use_bleu = options.task != "numbers"
    model_metrics = {**translation_metrics(beam_out, refs, use_bleu), "beam": options.beam,
                     "seconds_decode": seconds}  # fmt: skip
    greedy_metrics = translation_metrics(greedy_out, refs, use_bleu)
    say("word-by-word dictionary baseline")
    lexicon = build_lexicon(options, data.splits)
    write_run_json(out, LEXICON_FILE, {"lexicon": lexicon})
    base_out = [word_by_word(lexicon, s, options.task) for s, _ in test]
    base_metrics = translation_metrics(base_out, refs, use_bleu)
    results = {
        "data": data.summary,
        "model": model_metrics,
        "model_greedy": greedy_metrics,
        "baseline": {
            "name": "word-by-word dictionary (most frequent translation of each word)",
            "lexicon_size": len(lexicon),
            **base_metrics,
        },
        "fit": {
            "status": result.status, "message": result.message, "steps": result.step,
            "seconds": result.elapsed, "best_val_loss": result.best,
            "best_step": result.best_step,
        },
        "examples": [
            {"source": " ".join(s), "reference": r, "model": m, "baseline": b}
            for (s, _), r, m, b in list(zip(test, refs, beam_out, base_out, strict=True))[:12]
        ],
    }  # fmt: skip
    trainer.log({"split": "test", "event": "evaluation",
                 **{f"{k}_{m}": results[k][m] for k in ("model", "baseline")
                    for m in ("bleu", "chrf", "exact_match")}})  # fmt: skip
    write_run_json(out, RESULTS_FILE, results)
    report = write_translate_report(out)
    return TranslateRun(out, result.status, result.message, result.step, result.elapsed,
                        results, report)  # fmt: skip


# ---- prediction ---------------------------------------------------------------------------


@dataclass
class Translator:
    """A trained translation run, loaded for prediction."""

    model: Any
    source: Vocab
    target: Vocab
    task: str

    def tokens(self, text: str) -> list[str]:
        if not text or not text.strip():
            raise DataError("the sentence is empty; pass some text to translate")
        toks = number_tokens(text) if self.task == "numbers" else tokenize(text)
        if not toks:
            raise DataError(f"{text!r} has no words to translate")
        return toks

    def translate(self, text: str, beam: int = 4) -> dict:
        """{"translation", "unknown": words the model has never seen, "tokens"}."""
        if beam < 1:
            raise DataError(f"--beam must be >= 1, got {beam}")
        toks = self.tokens(text)
        if self.task == "de-en":
            # a sentence-initial capital that the vocabulary only knows in lower case
            if toks[0] not in self.source and toks[0].lower() in self.source:
                toks[0] = toks[0].lower()
        unknown = [t for t in toks if t not in self.source]
        out = decode(self.model, self.source, self.target, [toks], beam)[0]
        return {"translation": JOIN[self.task].join(out), "unknown": unknown, "tokens": toks}


def load_translator(run_dir: str | Path) -> Translator:
    from ..training import RunError, load_run

    run = load_run(run_dir)
    if TASK not in run.extra:
        raise RunError(f"{run_dir}: not a translation run (train one: rnnkit train translate)")
    data = run.read_json(VOCAB_FILE)
    try:
        source, target = Vocab.from_dict(data["source"]), Vocab.from_dict(data["target"])
        task = run.extra[TASK]["options"]["task"]
    except (KeyError, TypeError, DataError) as err:
        raise RunError(f"{run_dir}/{VOCAB_FILE}: malformed ({err})") from None
    return Translator(run.model, source, target, task)


# ---- report -------------------------------------------------------------------------------


def write_translate_report(run_dir: str | Path) -> Path:
    """(Re)write report.html from the run directory's files alone."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ..training import load_run
    from .report import Report, line_plot

    run_dir = Path(run_dir)
    run = load_run(run_dir)
    res = run.read_json(RESULTS_FILE)
    opts = run.extra[TASK]["options"]
    m, g, b = res["model"], res["model_greedy"], res["baseline"]
    r = Report(f"Translation ({opts['task']}): {run_dir.name}")
    d = res["data"]
    r.paragraph(
        f"{d['split']}. Vocabularies from the training split only: {d['source_vocab']:,} "
        f"source and {d['target_vocab']:,} target tokens."
    )
    r.heading("Test split: model vs baseline")
    name = f"{opts['cell'].upper()} {opts['hidden']} encoder-decoder, {opts['attention']} attention"
    r.table(
        [
            [f"{name}, beam {m['beam']}", m["bleu"], m["chrf"], m["exact_match"]],
            [f"{name}, greedy", g["bleu"], g["chrf"], g["exact_match"]],
            [f"word-by-word dictionary ({b['lexicon_size']:,} words)", b["bleu"], b["chrf"],
             b["exact_match"]],
        ],
        header=["model", "BLEU", "chrF", "exact match"],
    )  # fmt: skip
    if m["bleu_signature"]:
        r.paragraph(f"sacrebleu: {m['bleu_signature']}", muted=True)
    else:
        r.paragraph("BLEU: not applicable (every output is a single word)", muted=True)
    panels = [("chrf", "chrF", 1), ("exact_match", "exact match (%)", 100)]
    if m["bleu"] is not None:
        panels[0] = ("bleu", "BLEU", 1)
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.6))
    for ax, (key, label, scale) in zip(axes, panels, strict=True):
        vals = [m[key] * scale, b[key] * scale]
        ax.bar(["seq2seq", "word-by-word"], vals, color=["#3b6ea8", "#999"])
        for x, v in enumerate(vals):
            ax.text(x, v, f"{v:.1f}", ha="center", va="bottom")
        ax.set_ylabel(label)
        ax.set_ylim(0, max(vals + [1]) * 1.2)
    fig.tight_layout()
    r.figure(fig, f"test {panels[0][1]} and exact match, model (beam) vs baseline, same run")
    r.heading("Examples (test split)")
    r.table(
        [[e["source"], e["reference"], e["model"], e["baseline"]] for e in res["examples"]],
        header=["source", "reference", "model", "baseline"],
    )
    r.heading("Training")
    fit = res["fit"]
    r.paragraph(
        f"{fit['status']}: {fit['message']}; {fit['steps']} steps in {fit['seconds']:.0f} s; "
        f"best validation loss {fit['best_val_loss']:.3f} at step {fit['best_step']}."
    )
    train = [x for x in run.metrics if x.get("split") == "train"]
    val = run.evals("val")
    r.figure(
        line_plot(
            {"train": ([x["step"] for x in train], [x["loss"] for x in train]),
             "val": ([x["step"] for x in val], [x["loss"] for x in val])},
            xlabel="step", ylabel="cross-entropy per target token", logy=True,
        ), "loss (teacher forcing)",
    )  # fmt: skip
    if val and "exact_match" in val[0]:
        r.figure(
            line_plot(
                {"val exact match (teacher forcing)": ([x["step"] for x in val],
                                                       [x["exact_match"] for x in val])},
                xlabel="step", ylabel="exact match", markers=True,
            ), "validation exact match, teacher-forced",
        )  # fmt: skip
    fig = attention_figure(run, res["examples"][0]["source"] if res["examples"] else None)
    if fig is not None:
        r.figure(fig, "attention weights of the first test example (rows: output tokens)")
    r.paragraph(f"options: {opts}", muted=True)
    return r.write(run_dir / REPORT_FILE)


@torch.no_grad()
def attention_figure(run, source: str | None):
    """Heat map of the decoder's attention over the source for one greedy translation."""
    if source is None or run.model.config.attention == "none":
        return None
    import matplotlib.pyplot as plt

    data = run.read_json(VOCAB_FILE)
    src_v, tgt_v = Vocab.from_dict(data["source"]), Vocab.from_dict(data["target"])
    toks = source.split(" ")
    hyp = decode(run.model, src_v, tgt_v, [toks], beam=1)[0]
    src, lengths = pad([src_v.encode(toks)])
    tokens_in = torch.tensor([[tgt_v.bos, *tgt_v.encode(hyp)]])
    run.model.eval()
    run.model(src, tokens_in, lengths)
    w = run.model.attention_weights[0].numpy()  # (T, S)
    fig, ax = plt.subplots(figsize=(0.5 * len(toks) + 2, 0.3 * len(hyp) + 1.5))
    ax.imshow(w, cmap="Blues", aspect="auto", vmin=0, vmax=1)
    ax.set_xticks(range(len(toks)), toks, rotation=45, ha="right")
    ax.set_yticks(range(len(hyp) + 1), [*hyp, "<eos>"])
    fig.tight_layout()
    return fig
