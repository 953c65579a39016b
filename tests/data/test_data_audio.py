"""rnnkit.data.audio and .speech: WAV reading, resampling, features, pitch, noise, espeak-ng,
the voice corpus and its split."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from rnnkit.data import audio, speech
from rnnkit.data.text import DataError


def tone(freq: float, sr: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_read_wav_mixes_stereo_down_and_keeps_the_rate(tmp_path):
    left, right = tone(200, 44100), np.zeros(44100, np.float32)
    soundfile.write(tmp_path / "s.wav", np.stack([left, right], 1), 44100, subtype="PCM_24")
    y, sr = audio.read_wav(tmp_path / "s.wav")
    assert sr == 44100 and y.shape == (44100,)
    assert np.allclose(y, left / 2, atol=1e-4)
    soundfile.write(tmp_path / "f.wav", left, 8000, subtype="FLOAT")  # IEEE float WAV
    assert audio.read_wav(tmp_path / "f.wav")[1] == 8000


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"", "empty"), (b"hello, not audio at all", "not a WAV"),
     (b"RIFF\x04\x00\x00\x00WAVEjunk", "unreadable WAV")],
)  # fmt: skip
def test_read_wav_refuses_what_is_not_a_recording(tmp_path, content, needle):
    p = tmp_path / "x.wav"
    p.write_bytes(content)
    with pytest.raises(DataError, match=needle):
        audio.read_wav(p)


def test_features_do_not_depend_on_the_recording_rate():
    spec = audio.FeatureSpec()
    a = audio.features(tone(300, 16000), 16000, spec)
    b = audio.features(tone(300, 44100), 44100, spec)
    # 1 s at 16 kHz, 512-sample frames every 160 samples, no centring
    assert a.shape == (1 + (16000 - 512) // 160, 40) == b.shape
    assert np.abs(a - b)[:, 2:30].max() < 0.5  # same energies in natural-log units
    with pytest.raises(DataError, match="too short"):
        audio.features(np.zeros(100, np.float32), 16000, spec)


def test_median_f0_of_a_tone_and_mfcc_stats_shape():
    assert audio.median_f0(tone(120, 22050), 22050) == pytest.approx(120, rel=0.02)
    stats = audio.mfcc_stats(np.random.default_rng(0).normal(size=(50, 40)))
    assert stats.shape == (26,) and (stats[13:] > 0).all()


@pytest.mark.parametrize("color", ["white", "pink"])
def test_noise_is_added_at_the_requested_snr(color):
    y = tone(440, 16000)
    noisy = audio.add_noise(y, 10.0, np.random.default_rng(0), color)
    snr = 10 * np.log10(np.mean(y**2) / np.mean((noisy - y) ** 2))
    assert snr == pytest.approx(10.0, abs=0.1)


def test_pink_noise_has_more_power_at_low_frequencies():
    n = audio.add_noise(np.zeros(16000, np.float32) + 1e-3, 0.0, np.random.default_rng(1), "pink")
    p = np.abs(np.fft.rfft(n)) ** 2
    assert p[10:100].mean() > 10 * p[4000:5000].mean()


def test_espeak_speaks_in_female_and_male_variants():
    variants = dict(audio.espeak_variants())
    assert variants["f3"] == "female" and variants["m3"] == "male"
    assert not any("whisper" in v for v in variants)
    hi = audio.speak("seven", "en+f3", pitch=70)
    lo = audio.speak("seven", "en+m3", pitch=30)
    assert 0.2 * audio.ESPEAK_RATE < len(hi) < 2 * audio.ESPEAK_RATE
    assert audio.median_f0(hi, audio.ESPEAK_RATE) > 1.5 * audio.median_f0(lo, audio.ESPEAK_RATE)


def test_split_by_voice_keeps_test_voices_out_of_training():
    voices = [f"f{i}" for i in range(8)] + [f"m{i}" for i in range(8)]
    sexes = ["female"] * 8 + ["male"] * 8
    part = speech.split_by_voice(voices, sexes, seed=0)
    for sex in ("f", "m"):
        mine = [part[v] for v in voices if v.startswith(sex)]
        assert mine.count("test") == 2 and mine.count("val") == 1 and mine.count("train") == 5
    assert part == speech.split_by_voice(voices, sexes, seed=0)


def test_voice_corpus_is_generated_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path))
    spec = speech.VoiceSpec(n=6, per_sex=2)
    calls = []
    corpus = speech.voice_corpus(spec, progress=lambda done, total: calls.append(done))
    assert calls == [1, 2, 3, 4, 5, 6] and len(corpus.frames) == 6
    assert {m["sex"] for m in corpus.meta} == {"female", "male"}
    assert all(f.shape[1] == 41 and len(f) > 20 for f in corpus.frames)  # 40 log-mel + log F0
    again = speech.voice_corpus(spec, progress=lambda done, total: calls.append(-1))
    assert -1 not in calls  # read from the cache
    assert all(np.array_equal(a, b) for a, b in zip(corpus.frames, again.frames, strict=True))
    assert again.meta == corpus.meta


def test_reverb_keeps_the_level_and_decays_by_60_db_in_rt60():
    click = np.zeros(22050, np.float32)
    click[0] = 1.0
    rng = np.random.default_rng(0)
    wet = audio.add_reverb(click, 22050, 0.5, rng)
    assert np.mean(wet**2) == pytest.approx(np.mean(click**2), rel=1e-4)
    early, late = (np.mean(wet[a : a + 1000] ** 2) for a in (100, 11025 - 1000))  # 0-0.5 s
    assert 40 < 10 * np.log10(early / late) < 80
    assert audio.add_reverb(click, 22050, 0.0, rng) is click


def test_a_band_limited_recording_gets_the_training_mean_above_its_nyquist():
    spec = audio.FeatureSpec()
    assert not audio.missing_bands(16000, spec).any() and audio.missing_bands(8000, spec)[-1]
    gone = audio.missing_bands(8000, spec)
    assert 5 < gone.sum() < 20 and not gone[: 20].any()  # only the bands above ~3.8 kHz
    y = audio.resample(tone(300, 16000) + tone(2500, 16000), 16000, 8000)
    frames = audio.features(y, 8000, spec)
    mean = np.arange(40, dtype=np.float32)
    filled = audio.fill_missing_bands(frames, 8000, spec, mean)
    assert (filled[:, gone] == mean[gone]).all() and np.array_equal(filled[:, ~gone],
                                                                    frames[:, ~gone])
    assert audio.fill_missing_bands(frames, 16000, spec, mean) is frames
