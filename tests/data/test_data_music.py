"""The chorale encoding, its cache, MIDI in and out, the Kneser-Ney baseline and the piece
statistics (music21 needed: installed by scripts/install.sh through the apps extra)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.data import music
from rnnkit.data.music import HOLD, REST, MusicVocab
from rnnkit.data.text import DataError
from rnnkit.tasks.music.ngram import KneserNey, pick_kneser_ney
from rnnkit.tasks.music.stats import crossing_steps, durations, parallels, sounding

# C major: I - IV - V - I, half notes (8 sixteenths each), the soprano's last note tied over
C_MAJOR = [
    [72] + [HOLD] * 7 + [72] + [HOLD] * 7 + [71] + [HOLD] * 7 + [72] + [HOLD] * 7,
    [67] + [HOLD] * 7 + [65] + [HOLD] * 7 + [67] + [HOLD] * 7 + [64] + [HOLD] * 7,
    [64] + [HOLD] * 7 + [60] + [HOLD] * 7 + [62] + [HOLD] * 7 + [60] + [HOLD] * 7,
    [48] + [HOLD] * 7 + [53] + [HOLD] * 7 + [55] + [HOLD] * 7 + [48] + [HOLD] * 3 + [REST] * 4,
]


def test_key_shift_moves_every_key_to_c_major_or_a_minor():
    assert music.key_shift(7, "major") == 5  # G up a fourth
    assert music.key_shift(4, "minor") == 5  # E minor -> A minor
    assert music.key_shift(2, "major") == -2 and music.key_shift(9, "minor") == 0
    assert all(-6 <= music.key_shift(pc, m) <= 5 for pc in range(12) for m in ("major", "minor"))


def test_tokens_are_voice_specific_and_round_trip():
    vocab = MusicVocab()
    ids = vocab.encode(C_MAJOR)
    assert ids[0] == vocab.start and len(ids) == 1 + 4 * 32
    for t in range(32):
        for v in range(4):  # soprano first in every step, then alto, tenor, bass
            assert ids[1 + 4 * t + v] in vocab.voice_ids[v]
    assert vocab.decode(ids) == C_MAJOR
    assert vocab.tokens[ids[1]] == "S72" and vocab.tokens[ids[5]] == "S_"
    assert music.fold(100, "S") == 88 and music.fold(20, "B") == 32


def test_a_hold_after_a_rest_decodes_as_a_rest():
    vocab = MusicVocab()
    grid = [[REST, HOLD, 60, HOLD]] * 4
    ids = [vocab.token(v, grid[v][t]) for t in range(4) for v in range(4)]
    assert vocab.decode(ids)[0] == [REST, REST, 60, HOLD]


def test_midi_round_trip_and_musicxml(tmp_path):
    mid, xml = music.write_piece(C_MAJOR, tmp_path / "piece.mid")
    assert mid.read_bytes()[:4] == b"MThd" and "<score-partwise" in xml.read_text()
    grid, shift = music.read_midi(mid, 4)
    assert shift == 0 and grid == C_MAJOR
    (melody,), _ = music.read_midi(mid, 1)
    assert melody == C_MAJOR[0]


def test_bad_midi_files_are_one_line_data_errors(tmp_path):
    text = tmp_path / "notes.mid"
    text.write_text("not music")
    with pytest.raises(DataError, match="not a MIDI file"):
        music.read_midi(text, 1)
    empty = tmp_path / "empty.mid"  # a header and one track holding only end-of-track
    empty.write_bytes(b"MThd\0\0\0\x06\0\x01\0\x01\x01\xe0MTrk\0\0\0\x04\0\xff\x2f\0")
    with pytest.raises(DataError, match="no notes"):
        music.read_midi(empty, 1)
    mid, _ = music.write_piece(C_MAJOR[:2], tmp_path / "two.mid")
    with pytest.raises(DataError, match="2 part"):
        music.read_midi(mid, 4)


def test_chorales_are_parsed_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # cache_dir() reads it at each call
    first = music.load_chorales(limit=4, progress=False)
    assert len(first) == 4 and all(len(c.grid) == 4 for c in first)
    assert {c.shift for c in first} <= set(range(-6, 6))
    cached = json.loads(music.cache_path().read_text())
    assert music.cache_path().parent == tmp_path / "rnnkit" and len(cached["chorales"]) == 4

    def no_parse(name):
        raise AssertionError("parsed again")

    monkeypatch.setattr(music, "parse_chorale", no_parse)
    assert music.load_chorales(limit=4, progress=False) == first
    split = music.split_chorales(first, 0.25, 0.25, seed=0)
    assert split == music.split_chorales(list(reversed(first)), 0.25, 0.25, seed=0)
    assert len({c.name for c in split.train + split.val + split.test}) == 4


def test_split_drops_duplicates_and_keeps_a_tune_in_one_split():
    def chorale(name, soprano, bass):
        return music.Chorale(name, "C major", 0, (tuple(soprano), (64,) * 13, (55,) * 13,
                                                  tuple(bass)))  # fmt: skip

    tune_a, tune_b = list(range(60, 73)), list(range(72, 59, -1))
    chorales = [chorale("a1", tune_a, [48] * 13), chorale("a2", tune_a, [43] * 13),
                chorale("a1-copy", tune_a, [48] * 13), chorale("b", tune_b, [48] * 13),
                *(chorale(f"c{i}", [60 + i] * 13, [48] * 13) for i in range(6))]  # fmt: skip
    split = music.split_chorales(chorales, 0.2, 0.2, seed=1)
    assert split.duplicates == 1 and split.tunes == 8
    names = [[c.name for c in part] for part in (split.train, split.val, split.test)]
    assert sum(map(len, names)) == 9 and "a1-copy" not in sum(names, [])
    assert sum({"a1", "a2"} <= set(part) for part in names) == 1  # one tune, one split


def test_kneser_ney_distributions_sum_to_one():
    rng = np.random.default_rng(0)
    vocab = 7
    train = [[0, *rng.integers(1, vocab, 40).tolist()] for _ in range(5)]
    model = KneserNey(train, vocab, 4)
    context = [0, 3, 3, 5]
    for order in (1, 2, 4):
        p = [np.exp(model.log_probs([context + [w]], order, 0.75)[-1]) for w in range(vocab)]
        assert sum(p) == pytest.approx(1.0, abs=1e-9), order


def test_kneser_ney_order_is_picked_on_validation():
    pattern = [1, 2, 3, 4, 5, 1, 2, 3, 4, 6]  # the token after 4 depends on 3 tokens back
    train = [[0, *pattern * 20]] * 3
    model, info = pick_kneser_ney(train, [[0, *pattern * 5]], 7, orders=(1, 2, 6, 12))
    assert info["order"] >= 6 and info["val_nats"]["6/0.75"] < info["val_nats"]["2/0.75"]


def test_statistics_see_parallels_crossings_and_durations():
    # every voice up a tone: S-A and A-T move in fifths, S-B in octaves
    grid = [[72, HOLD, 74, HOLD], [65, HOLD, 67, HOLD], [58, HOLD, 60, HOLD], [48, HOLD, 50, HOLD]]
    assert parallels(sounding(grid)) == (2, 1)
    oblique = [[72, HOLD, 72, HOLD], [65, HOLD, 67, HOLD], [58, HOLD, 60, HOLD], [48] + [HOLD] * 3]
    assert parallels(sounding(oblique)) == (1, 0)  # only A-T: S and B do not move
    assert crossing_steps(sounding(grid)) == 0
    crossed = [[60, HOLD], [64, HOLD], [55, HOLD], [48, HOLD]]
    assert crossing_steps(sounding(crossed)) == 2
    assert sorted(durations(C_MAJOR)) == [4] + [8] * 15
