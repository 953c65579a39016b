"""Speech recognition: CTC decoding, error rates, the one-pass DTW baseline, and the CLI
(`train speech`, `transcribe`) on a tiny generated corpus."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from clitest import invoke, one_line_error
from rnnkit.data import audio
from rnnkit.tasks.speech import dtw
from rnnkit.tasks.speech.decode import NgramLM, edit_distance, error_rates, greedy, prefix_beam
from rnnkit.tasks.speech.task import CHARS

TINY = ["--utterances", "8", "--sentences", "4", "--voices-per-sex", "2", "--hidden", "8",
        "--layers", "1", "--steps", "3", "--batch", "4", "--beam", "2", "--dtw-templates", "1",
        "--threads", "1", "--quiet"]  # fmt: skip


def test_edit_distance_and_error_rates_on_known_examples():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "abc") == 0
    r = error_rates(["one two three", "four"], ["one too three", "four five"])
    # words: 1 substitution + 1 insertion over 4 reference words; chars: two->too is 1
    # substitution, " five" 5 insertions, over 13 + 4 reference characters
    assert r["wer"] == pytest.approx(2 / 4) and r["cer"] == pytest.approx(6 / 17)
    assert r["sentence_accuracy"] == 0.0


def brute_force_ctc(lp: np.ndarray) -> dict[tuple, float]:
    """The probability of every label sequence: the sum over all alignments (small T, V)."""
    T, V = lp.shape
    out: dict[tuple, float] = {}
    for path in itertools.product(range(V), repeat=T):
        labels, prev = [], 0
        for k in path:
            if k != prev and k != 0:
                labels.append(k)
            prev = k
        p = math.exp(sum(lp[t, k] for t, k in enumerate(path)))
        out[tuple(labels)] = out.get(tuple(labels), 0.0) + p
    return out


def test_prefix_beam_finds_the_most_probable_labelling_where_greedy_does_not():
    # the best path is blank-blank-1 ([1]), but [2] has more probability summed over paths
    p = np.array([[0.4, 0.0, 0.6], [0.4, 0.0, 0.6], [0.6, 0.4, 0.0]])
    lp = np.log(p + 1e-12)
    probs = brute_force_ctc(lp)
    best = max(probs, key=probs.get)
    assert list(best) == prefix_beam(lp, beam=8)
    rng = np.random.default_rng(0)
    for _ in range(5):  # random 3-label problems: the beam agrees with brute force
        lp = np.log(rng.dirichlet(np.ones(3) * 0.5, size=4))
        probs = brute_force_ctc(lp)
        assert tuple(prefix_beam(lp, beam=16, prune=-1e9)) == max(probs, key=probs.get)
    assert greedy(np.log(np.eye(3)[[1, 1, 0, 1, 2, 2]] + 1e-9)) == [1, 1, 2]


def test_prefix_beam_scores_match_torch_ctc_loss():
    lp = torch.randn(5, 4).log_softmax(-1)
    probs = brute_force_ctc(lp.numpy().astype(np.float64))
    target = torch.tensor([[1, 2]])
    loss = torch.nn.functional.ctc_loss(lp[:, None], target, torch.tensor([5]),
                                        torch.tensor([2]), reduction="sum")  # fmt: skip
    assert math.exp(-float(loss)) == pytest.approx(probs[(1, 2)], rel=1e-4)


def test_the_ngram_lm_learns_its_transcripts_and_steers_the_beam():
    lm = NgramLM([[1, 2], [1, 2], [3, 1, 2], [3]], order=2, vocab=4)
    assert lm.perplexity([[1, 2]]) < 4.0 < lm.perplexity([[2, 1]])  # uniform: 4
    total = sum(math.exp(lm.logp((1,), k)) for k in range(4))  # the end (0) included
    assert total == pytest.approx(1.0)
    # the acoustics say "1 3" a little more than "1 2"; the LM has only seen 2 after 1
    p = np.array([[0.1, 0.9, 0.0, 0.0], [0.0, 0.0, 0.48, 0.52], [1.0, 0.0, 0.0, 0.0]])
    lp = np.log(p + 1e-12)
    assert prefix_beam(lp, beam=8) == [1, 3] == prefix_beam(lp, beam=8, lm=lm, weight=0.0)
    assert prefix_beam(lp, beam=8, lm=lm, weight=1.0) == [1, 2]


def test_one_pass_dtw_recovers_a_sequence_of_templates():
    rng = np.random.default_rng(0)
    words = {w: rng.normal(size=(6, 4)) * 3 for w in "abc"}
    sil = np.zeros((1, 4))
    ts = dtw.TemplateSet.build([(t, w) for w, t in words.items()] + [(sil, "")])
    # "b a c" with stretched and squeezed templates and pauses between
    utt = np.concatenate([sil, sil, np.repeat(words["b"], 2, 0), sil, words["a"][[0, 2, 4, 5]],
                          words["c"], sil]) + rng.normal(size=(1, 4)) * 0.1  # fmt: skip
    assert dtw.match(utt, ts, penalty=1.0) == ["b", "a", "c"]
    lo, hi = dtw.loud_range(np.log(np.r_[np.full((3, 4), 1e-6), np.ones((5, 4)),
                                         np.full((2, 4), 1e-6)]))  # fmt: skip
    assert (lo, hi) == (3, 8)


@pytest.fixture(scope="module")
def speech_run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("RNNKIT_DATA", str(tmp_path_factory.mktemp("corpus")))
    out = tmp_path_factory.mktemp("runs") / "speech"
    result = invoke("train", "speech", *TINY, "--out", out)
    mp.undo()
    assert result.exit_code == 0, result.output
    return out


def test_train_speech_writes_a_run_with_the_dtw_baseline(speech_run):
    res = json.loads((speech_run / "results.json").read_text())
    assert set(res) >= {"greedy", "beam", "beam_lm", "baseline", "alignments", "examples"}
    assert 0 <= res["baseline"]["wer"] and res["baseline"]["templates"] == 10
    assert set(res["by_kind"]) == {"digits", "sentence"}  # both vocabularies tested
    assert res["lm"]["order"] in (1, 2, 3) and res["lm"]["weight"] >= 0
    voices = res["data"]["voices"]
    assert not set(voices["test"]) & set(voices["train"])
    assert res["alignments"] and "CTC alignments" in (speech_run / "report.html").read_text()


def test_transcribe_reads_a_recording_made_another_way(speech_run, tmp_path):
    # a voice variant outside the corpus, at 8 kHz: the command resamples it (and fills the
    # bands above 4 kHz with the training mean); then 44.1 kHz stereo, with the run's LM
    y = audio.speak("four two", "en-us+m7")
    audio.write_wav(tmp_path / "d.wav", audio.resample(y, audio.ESPEAK_RATE, 8000), 8000)
    result = invoke("transcribe", speech_run, tmp_path / "d.wav", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out["text"]) <= set(CHARS) and out["seconds"] > 0.3
    y44 = audio.resample(y, audio.ESPEAK_RATE, 44100)
    audio.write_wav(tmp_path / "s.wav", np.stack([y44, y44], 1), 44100)
    result = invoke("transcribe", speech_run, tmp_path / "s.wav", "--lm", "--json")
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["text"]) <= set(CHARS)


def test_transcribe_refuses_bad_input_in_one_line(speech_run, tmp_path):
    (tmp_path / "e.wav").write_bytes(b"")
    (tmp_path / "x.mp3").write_bytes(b"ID3\x03\x00 not a wav")
    one_line_error(invoke("transcribe", speech_run, tmp_path / "e.wav"), "empty")
    one_line_error(invoke("transcribe", speech_run, tmp_path / "x.mp3"), "not a WAV")
    one_line_error(invoke("transcribe", speech_run, tmp_path / "x.mp3", "--beam", "0"), "--beam")
    audio.write_wav(tmp_path / "z.wav", np.zeros(8000, np.float32), 8000)
    one_line_error(invoke("transcribe", speech_run, tmp_path / "z.wav"), "silent")


def test_train_speech_refuses_bad_options_before_any_work(tmp_path):
    # the shared numeric options are swept in test_voice.py (the same derived flags)
    one_line_error(invoke("train", "speech", "--beam", "0", "--out", tmp_path / "r"), "--beam")
    one_line_error(invoke("train", "speech", "--units", "phones", "--out", tmp_path / "r"),
                   "--units")  # fmt: skip
    one_line_error(invoke("train", "speech", "--stack", "9", "--out", tmp_path / "r"), "--stack")
    assert not (tmp_path / "r").exists()


def test_the_speech_run_exports_to_onnx(speech_run, tmp_path):
    from onnx_roundtrip import assert_run_exports

    assert_run_exports(speech_run, tmp_path)
