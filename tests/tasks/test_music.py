"""`rnnkit train music`, `compose` and `harmonize` through the real app, on a tiny slice of the
chorales (the first 8, parsed into a temporary cache)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clitest import invoke, one_line_error, sweep_numeric_options
from rnnkit.data import music
from rnnkit.tasks.music import MusicOptions
from rnnkit.tasks.music.ngram import DISCOUNTS, ORDERS

TINY = ["--limit", "8", "--hidden", "16", "--embedding", "8", "--seq-len", "32", "--batch", "4",
        "--pieces", "2", "--piece-quarters", "4", "--eval-every", "3", "--threads", "1"]


H = [-1] * 7  # a half note is an attack and 7 holds
CADENCE = [[72, *H, 72, *H, 71, *H, 72, *H], [67, *H, 65, *H, 67, *H, 64, *H],
           [64, *H, 60, *H, 62, *H, 60, *H], [48, *H, 53, *H, 55, *H, 48, *H]]  # C: I IV V I


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        cache = tmp_path_factory.mktemp("cache")  # not XDG_CACHE_HOME: the kernels cache there
        mp.setattr(music, "cache_dir", lambda: cache)
        out = tmp_path_factory.mktemp("runs") / "bach"
        result = invoke("train", "music", "--steps", "3", *TINY, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out


def test_train_music_writes_a_complete_run(run_dir):
    for name in ("config.json", "model.safetensors", "metrics.jsonl", "music.json",
                 "results.json", "report.html", "piece-1.mid", "piece-1.musicxml"):  # fmt: skip
        assert (run_dir / name).exists(), name
    results = json.loads((run_dir / "results.json").read_text())
    model, kn = results["model"], results["kneser_ney"]
    data = results["data"]
    assert sum(data["sizes"].values()) == data["chorales"] - data["duplicates_dropped"] == 8
    assert min(data["sizes"].values()) >= 1
    assert kn["order"] in ORDERS and len(kn["val_nats"]) == len(ORDERS) * len(DISCOUNTS)
    for row in (model, kn):  # 64 tokens (16 steps of 4 voices) per quarter note
        assert row["nats_per_quarter"] == pytest.approx(
            row["nats_per_token"] * results["tokens"] / results["quarters"])
    stats = results["statistics"]
    assert stats["generated"]["pieces"] == 2 and stats["generated"]["beats"] == 8
    assert 0 <= stats["duration_tv_generated"] <= 1 and 0 < stats["bach_test"]["in_key"] <= 1
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    for needle in ("Kneser-Ney", "Piano rolls", "parallel fifths", "Bach (test)", "Audio"):
        assert needle in html, needle
    assert html.count("data:image/png;base64,") >= 4


def test_compose_writes_playable_midi_and_musicxml(run_dir, tmp_path):
    out = tmp_path / "piece.mid"
    result = invoke("compose", run_dir, "--length", "4", "--seed", "3", "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == [str(out), str(out.with_suffix(".musicxml"))]
    assert out.read_bytes()[:4] == b"MThd"
    again = tmp_path / "again.mid"
    assert invoke("compose", run_dir, "--length", "4", "--seed", "3", "--out", again).exit_code == 0
    assert music.read_midi(out, 1) == music.read_midi(again, 1)  # same seed, same piece
    prime, primed = tmp_path / "prime.mid", tmp_path / "primed.mid"
    music.write_piece(CADENCE, prime)
    result = invoke("compose", run_dir, "--length", "2", "--prime", prime, "--out", primed)
    assert result.exit_code == 0, result.output
    s_out = soprano(primed)
    assert s_out[:32] == CADENCE[0]  # the prime, then 2 quarter notes (then the bar's rest)
    assert len(s_out) >= 40 and set(s_out[40:]) <= {music.REST}


def soprano(path: Path) -> list[int]:
    """The first part of a four-part MIDI file in its own key (read_midi moves it to C major /
    A minor)."""
    (line, *_), shift = music.read_midi(path, 4)
    return [p - shift if p >= 0 else p for p in line]


def test_harmonize_keeps_the_melody_as_the_soprano(run_dir, tmp_path):
    melody = tmp_path / "melody.mid"
    line = [67, -1, -1, -1, 69, -1, 71, -1, 72, -1, -1, -1, -1, -1, -1, -1]  # G A B C
    music.write_piece([line], melody)
    result = invoke("harmonize", run_dir, melody, "--seed", "1")
    assert result.exit_code == 0, result.output
    out = tmp_path / "melody-satb.mid"
    (given,), shift = music.read_midi(melody, 1)
    assert soprano(out) == [p - shift if p >= 0 else p for p in given] == line  # A, T, B added


def test_bad_input_gets_one_line(run_dir, tmp_path):
    text = tmp_path / "notes.mid"
    text.write_text("la la la")
    one_line_error(invoke("harmonize", run_dir, text), "not a MIDI file")
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"MThd\0\0\0\x06\0\x01\0\x01\x01\xe0MTrk\0\0\0\x04\0\xff\x2f\0")
    one_line_error(invoke("harmonize", run_dir, empty), "no notes")
    out = tmp_path / "x.mid"
    one_line_error(invoke("compose", run_dir, "--prime", empty, "--out", out), "no notes")
    one_line_error(invoke("compose", run_dir, "--temperature", "nan", "--out", out),
                   "--temperature")  # fmt: skip
    one_line_error(invoke("compose", run_dir, "--length", "0", "--out", out), "--length")
    one_line_error(invoke("compose", run_dir, "--out", tmp_path / "x.wav"), "--out")
    assert not out.exists()


def test_compose_refuses_a_run_of_another_application(tmp_path):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("a short text to train on, again and again. " * 40)
    text_run = tmp_path / "text"
    result = invoke("train", "text", "--data", corpus, "--steps", "1", "--hidden", "8",
                    "--embedding", "4", "--seq-len", "8", "--batch", "2", "--out", text_run,
                    "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    one_line_error(invoke("compose", text_run, "--out", tmp_path / "p.mid"), "not a music run")


def test_train_music_refuses_bad_numbers_before_any_work(tmp_path):
    assert sweep_numeric_options(["train", "music"], MusicOptions, tmp_path / "never") > 20


def test_music_help_imports_neither_torch_nor_music21():
    probe = ("import sys\nfrom typer.testing import CliRunner\nfrom rnnkit.cli import app\n"
             "for args in (['train', 'music', '--help'], ['compose', '--help'], "
             "['harmonize', '--help']):\n"
             "    assert CliRunner().invoke(app, args).exit_code == 0\n"
             "print(sorted({'torch', 'music21'} & set(sys.modules)))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_music_run_exports_to_onnx(run_dir, tmp_path):
    from onnx_roundtrip import assert_run_exports

    assert_run_exports(run_dir, tmp_path)
