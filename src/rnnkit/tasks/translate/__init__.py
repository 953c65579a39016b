"""Translation: an encoder-decoder with attention, against a word-by-word dictionary baseline.

Two data sets (`--data`):
    de-en    German -> English phrases from the Ding dictionary (Debian trans-de-en), word
             tokens on both sides (rnnkit.data.translation.phrase_pairs)
    numbers  English number words -> German number words (num2words), word tokens in,
             characters out (German number words are single compounds)

    pairs -> hash split train/val/test -> vocabularies from the training split only
    -> Seq2Seq: embedding -> bidirectional encoder -> decoder with additive/dot attention,
       teacher forcing -> best weights on validation loss
    -> beam search on the test split: sacrebleu BLEU and chrF, exact match
    -> the same metrics for a word-by-word dictionary translation -> report.html

Python API:

    >>> from rnnkit.tasks import translate
    >>> run = translate.train(translate.Options(data="numbers"), "runs/numbers")
    >>> run.results["model"]["exact_match"], run.results["baseline"]["exact_match"]
    >>> translator = translate.load("runs/numbers")
    >>> translator.translate("forty-two")["translation"]
    'zweiundvierzig'
"""

from .. import lazy
from .options import HELP, NAME, TranslateOptions
from .options import TranslateOptions as Options

__getattr__ = lazy(__name__)


__all__ = ["HELP", "NAME", "Options", "TranslateOptions", "train", "load"]
