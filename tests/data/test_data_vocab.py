"""rnnkit.data.vocab: one vocabulary for every text task, Unicode words, 0.1.0 layouts."""

from __future__ import annotations

import json
import random
import re
import string
import unicodedata

import pytest

from rnnkit.data.sentiment import fit_vocab, words
from rnnkit.data.text import DataError
from rnnkit.data.translation import number_tokens
from rnnkit.data.vocab import BOS, EOS, PAD, SPECIALS, UNK, Vocab, build_tokenizer, split

# The ASCII-only rules of rnnkit 0.1.0, kept here as the reference the Unicode rules must match
# on ASCII text.
OLD_WORD = re.compile(r"\n|\w+(?:['\-]\w+)*|[^\w\s]")
OLD_LOWER = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[!?]")
OLD_NUMBER = re.compile(r"[a-z]+|[-,]")


def test_unicode_words_stay_whole():
    assert words("Très bon café!") == ["très", "bon", "café", "!"]  # 0.1.0: tr, s, bon, caf
    assert words("Отличный фильм, не скучный?") == ["отличный", "фильм", "не", "скучный", "?"]
    assert words("हिन्दी फ़िल्म अच्छी है") == ["हिन्दी", "फ़िल्म", "अच्छी", "है"]  # vowel signs kept
    decomposed = unicodedata.normalize("NFD", "café")
    assert words(decomposed) == [decomposed]  # the combining accent stays in the word
    assert split("C'est très bon, naïve ?", "word") == ["C'est", "très", "bon", ",", "naïve", "?"]
    assert split("日本語のテキスト。", "word") == ["日本語のテキスト", "。"]
    assert number_tokens("dieciséis, veintitrés") == ["dieciséis", ",", "veintitrés"]


def test_ascii_text_splits_exactly_as_before():
    rng = random.Random(0)
    alphabet = string.ascii_letters + string.digits + string.punctuation + " \n\t'-_"
    texts = ["It's NOT good!! rock'n'roll, 80's well-made a_b x'2 -- (yes)?\n"] + [
        "".join(rng.choice(alphabet) for _ in range(200)) for _ in range(200)
    ]
    for text in texts:
        assert split(text, "word") == OLD_WORD.findall(text)
        assert split(text, "lower") == OLD_LOWER.findall(text.lower())
        assert number_tokens(text) == OLD_NUMBER.findall(text.lower())


def test_specials_come_first_in_the_fixed_order():
    v = Vocab.fit(["b a b", "c"], "word", (PAD, UNK, BOS, EOS))
    assert v.tokens == [*SPECIALS, "b", "a", "c"]
    assert (v.pad, v.unk, v.bos, v.eos) == (0, 1, 2, 3)
    s = fit_vocab(["good good film"])
    assert s.tokens[:3] == [PAD, UNK, "good"] and (s.pad, s.unk, s.bos, s.eos) == (0, 1, None, None)
    with pytest.raises(DataError, match="in the order"):
        Vocab(["<unk>", "<pad>", "x"], specials=(UNK, PAD))
    with pytest.raises(DataError, match="only them"):
        Vocab(["<unk>", "<pad>"], specials=(UNK,))
    with pytest.raises(DataError, match="unknown tokenising mode"):
        Vocab(["a"], "bpe")


def test_encode_decode_by_mode():
    words_v = build_tokenizer("word", "To be, or not to be.\n")
    assert words_v.tokens[0] == UNK and words_v.unit == "word"
    assert words_v.decode(words_v.encode("not to be, or")) == "not to be, or"
    with pytest.raises(DataError, match="word 'zebra' is not in the model's vocabulary"):
        words_v.encode("zebra", unknown="error")
    chars = build_tokenizer("char", "abc")
    assert chars.encode("cab") == [2, 0, 1] and chars.decode([2, 0, 1]) == "cab"
    assert chars.unit == "char" and chars.specials == ()
    t = Vocab.fit([["ein", "Haus"]], "word", SPECIALS)  # ties alphabetical: Haus 4, ein 5
    assert t.tokens_of([t.bos, 5, t.pad, 4, t.eos, 5]) == ["ein", "Haus"]  # stops at <eos>


# what rnnkit 0.1.0 wrote: text's tokenizer.json (char, word), sentiment's and translate's
# vocab.json entries
OLD_LAYOUTS = [
    ({"kind": "char", "vocab": ["\n", " ", "a", "b"]}, "char", (), ["\n", " ", "a", "b"]),
    ({"kind": "word", "vocab": [UNK, "the", ","]}, "word", (UNK,), [UNK, "the", ","]),
    ({"tokens": [PAD, UNK, "good", "!"]}, "lower", (PAD, UNK), [PAD, UNK, "good", "!"]),
    ({"tokens": [*SPECIALS, "ein", "Haus"]}, "word", SPECIALS, [*SPECIALS, "ein", "Haus"]),
]


@pytest.mark.parametrize("data, mode, specials, tokens", OLD_LAYOUTS)
def test_from_dict_reads_every_010_layout_with_the_same_ids(data, mode, specials, tokens):
    v = Vocab.from_dict(json.loads(json.dumps(data)))
    assert (v.mode, v.specials, v.tokens) == (mode, specials, tokens)
    back = Vocab.from_dict(json.loads(json.dumps(v.to_dict())))
    assert (back.mode, back.specials, back.tokens) == (mode, specials, tokens)


def test_old_sentiment_vocabulary_encodes_as_before():
    v = Vocab.from_dict({"tokens": [PAD, UNK, "good", "it's", "!"]})
    assert v.encode("It's GOOD, really!") == [3, 2, 1, 4]


@pytest.mark.parametrize("data", [{}, {"tokens": ["a"]}, {"kind": "word", "vocab": ["a"]}, []])
def test_malformed_vocabularies_are_data_errors(data):
    with pytest.raises(DataError):
        Vocab.from_dict(data)
