"""Text generation: a character (or word) language model, trained, sampled, evaluated, reported.

    data (a text data set or a UTF-8 file) -> tokenizer -> contiguous-block split
    -> ManyToMany LM (embedding -> recurrent stack -> softmax over the vocabulary)
    -> Trainer on random windows from a zero state (or, --batching streams, stateful truncated
       BPTT over B parallel streams)
    -> full validation pass, samples, gradient-through-time profile -> report.html

A run directory holds, besides the Trainer's files (config.json, model.safetensors,
metrics.jsonl, checkpoint/): `tokenizer.json`, `analysis.json` (final evaluation, samples,
gradient profile) and `report.html`.

Python API:

    >>> from rnnkit.tasks import text
    >>> run = text.train(text.Options(data="my.txt", minutes=1), "runs/mine")
    >>> run.results["evaluation"]["nats_per_char"], run.report
    >>> lm = text.load("runs/mine")
    >>> print("".join(text.generate(lm.model, lm.tokenizer, "ROMEO.", 200)))
"""

from .. import lazy
from .options import HELP, NAME, TextOptions
from .options import TextOptions as Options

__getattr__ = lazy(__name__)


__all__ = ["HELP", "NAME", "Options", "TextOptions", "train", "load", "generate"]
