"""Voice classification: frame stacking, balanced accuracy, the pitch threshold, and the CLI
(`train voice`, `classify-audio`) on a tiny generated corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch

from clitest import invoke, one_line_error, sweep_numeric_options
from rnnkit.data import audio
from rnnkit.data.audio import band_limit, freq_mask, stack_frames, warp_channels
from rnnkit.tasks.voice.options import VoiceOptions
from rnnkit.tasks.voice.task import balanced_accuracy, pitch_threshold

TINY = ["--utterances", "16", "--voices-per-sex", "2", "--hidden", "8", "--steps", "3",
        "--batch", "4", "--threads", "1", "--quiet"]  # fmt: skip


def test_stack_frames_puts_consecutive_frames_side_by_side():
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    s = stack_frames(x, 2)
    assert s.shape == (3, 4) and s[0].tolist() == [0, 1, 2, 3] and s[2].tolist() == [8, 9, 0, 0]
    assert stack_frames(x, 1) is x


def test_augmentations_touch_only_the_mel_channels():
    # 2 stacked frames of 4 mel channels + 1 log-F0 channel
    x = torch.arange(2 * 3 * 10, dtype=torch.float).view(2, 3, 10) + 1
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(warp_channels(x, 2, 4, 0.0, gen), x)  # alpha = 1: unchanged
    w = warp_channels(x, 2, 4, 0.3, gen).view(2, 3, 2, 5)
    v = x.view(2, 3, 2, 5)
    assert torch.equal(w[..., 4], v[..., 4]) and torch.equal(w[..., 0], v[..., 0])
    assert not torch.equal(w, v)
    m = freq_mask(x, 2, 4, 4, torch.Generator().manual_seed(1)).view(2, 3, 2, 5)
    assert torch.equal(m[..., 4], v[..., 4])
    zeroed = m[..., :4] == 0  # the same band in every frame and stacked frame of a sequence
    assert (zeroed == zeroed[:, :1, :1]).all() and zeroed.any()
    b = band_limit(x, 2, 4, 1.0, torch.Generator().manual_seed(2)).view(2, 3, 2, 5)
    top = b[..., :4] == 0  # every sequence loses a top band, from a cut-off in [2, 4) up
    assert torch.equal(b[..., 4], v[..., 4]) and top[..., 3].all() and not top[..., :2].any()
    assert torch.equal(band_limit(x, 2, 4, 0.0, gen), x)


def test_balanced_accuracy_weights_classes_equally():
    # 9 of 10 right for class 0, 0 of 2 for class 1: accuracy 0.75, balanced 0.45
    assert balanced_accuracy([[9, 1], [2, 0]]) == pytest.approx(0.45)


def test_pitch_threshold_separates_training_voices():
    f0 = np.array([90.0, 100, 110, 180, 200, np.nan])
    thr = pitch_threshold(f0, np.array([False, False, False, True, True, True]))
    assert 110 < thr < 180


@pytest.fixture(scope="module")
def voice_run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("RNNKIT_DATA", str(tmp_path_factory.mktemp("corpus")))
    out = tmp_path_factory.mktemp("runs") / "voice"
    result = invoke("train", "voice", *TINY, "--out", out)
    mp.undo()
    assert result.exit_code == 0, result.output
    return out


def test_train_voice_writes_a_run_with_both_baselines(voice_run):
    res = json.loads((voice_run / "results.json").read_text())
    assert set(res["baselines"]) == {"mfcc_logistic", "pitch"}
    assert res["labels"] == ["female", "male"]
    voices = res["data"]["voices"]
    assert not set(voices["test"]) & set(voices["train"])  # unseen voices
    m = res["model"]
    assert 0 <= m["balanced_accuracy"] <= 1 and sum(map(sum, m["confusion"])) == m["n"]
    html = (voice_run / "report.html").read_text()
    assert "Confusion matrix" in html and "median F0" in html


def test_classify_audio_takes_any_wav(voice_run, tmp_path):
    y = audio.speak("hello there", "en+f2")
    # stereo at 44.1 kHz, 24-bit: resampled and mixed down by classify-audio
    y44 = audio.resample(y, audio.ESPEAK_RATE, 44100)
    soundfile.write(tmp_path / "st.wav", np.stack([y44, y44], 1), 44100, subtype="PCM_24")
    result = invoke("classify-audio", voice_run, tmp_path / "st.wav", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["prediction"] in ("female", "male") and 0.5 <= out["probability"] <= 1
    assert out["seconds"] == pytest.approx(len(y44) / 44100)
    audio.write_wav(tmp_path / "tel.wav", audio.resample(y, audio.ESPEAK_RATE, 8000), 8000)
    result = invoke("classify-audio", voice_run, tmp_path / "tel.wav", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["prediction"] in ("female", "male")


def test_classify_audio_refuses_bad_files_in_one_line(voice_run, tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not audio\n")
    one_line_error(invoke("classify-audio", voice_run, tmp_path / "empty.wav"), "empty")
    one_line_error(invoke("classify-audio", voice_run, tmp_path / "notes.txt"), "not a WAV")
    one_line_error(invoke("classify-audio", voice_run, tmp_path / "nope.wav"), "no such file")
    one_line_error(invoke("classify-audio", tmp_path, tmp_path / "notes.txt"))


def test_train_voice_refuses_bad_numbers_before_any_work(tmp_path):
    assert sweep_numeric_options(["train", "voice"], VoiceOptions, tmp_path / "run") > 20
    one_line_error(invoke("train", "voice", "--label", "age", "--out", tmp_path / "r"), "--label")


def test_the_voice_run_exports_to_onnx(voice_run, tmp_path):
    from onnx_roundtrip import assert_run_exports

    assert_run_exports(voice_run, tmp_path)
