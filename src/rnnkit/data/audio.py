"""Audio for the voice and speech applications: WAV in, features out; speech made offline.

    read_wav(path)            any WAV (PCM or float, any rate, stereo) -> mono float32, rate
    features(y, sr, spec)     resampled to spec.rate -> log-mel frames (T, n_mels)
    speak(text, voice, ...)   espeak-ng -> samples at 22,050 Hz
    add_noise(y, snr_db, rng) white or pink noise at a chosen signal-to-noise ratio
    add_reverb(y, sr, rt60)   a synthetic room: a decaying noise impulse response

Features come from librosa (its mel filterbank, MFCC and YIN pitch tracker, and resampling
through soxr): one well-kept library covers the three jobs the applications need, where
torch.stft would give only the spectrogram and leave the filterbank, the DCT, the pitch
tracker and the resampler to be written here. librosa is imported on first use only, so the
CLI's --help stays light.

Imports: numpy, the standard library, rnnkit.data.text (DataError); librosa, soundfile
(a librosa dependency), scipy and torch (the training-time augmentations) lazily.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .text import DataError

if TYPE_CHECKING:
    import torch

ESPEAK_RATE = 22050  # espeak-ng writes 22,050 Hz mono 16-bit PCM


@dataclass(frozen=True)
class FeatureSpec:
    """How frames are computed: log-mel energies of 25 ms windows every `hop` samples."""

    rate: int = 16000
    n_mels: int = 40
    n_fft: int = 512
    win: int = 400  # 25 ms at 16 kHz
    hop: int = 160  # 10 ms
    pitch: bool = False  # one more channel: log F0 (YIN) per frame

    @property
    def channels(self) -> int:
        return self.n_mels + int(self.pitch)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSpec:
        return cls(**{k: type(v)(d[k]) for k, v in asdict(cls()).items() if k in d})


# ---- reading ------------------------------------------------------------------------------


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A WAV file -> (mono float32 samples in [-1, 1], sample rate). Stereo is averaged.

    DataError (one line) for a missing, empty, non-WAV or sample-less file.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    head = p.read_bytes()[:12] if p.stat().st_size else b""
    if not head:
        raise DataError(f"{p}: the file is empty; give a WAV recording")
    if head[:4] not in (b"RIFF", b"RIFX", b"RF64") or head[8:12] != b"WAVE":
        raise DataError(f"{p}: not a WAV file (no RIFF/WAVE header); convert it, e.g. with "
                        "`sox input output.wav`")  # fmt: skip
    import soundfile

    try:
        y, sr = soundfile.read(str(p), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise DataError(f"{p}: unreadable WAV ({str(err).splitlines()[0][:120]})") from None
    if not len(y):
        raise DataError(f"{p}: the WAV holds no samples")
    return y.mean(axis=1), int(sr)


def resample(y: np.ndarray, sr: int, rate: int) -> np.ndarray:
    """Samples at `sr` -> samples at `rate` (soxr, via librosa)."""
    if sr == rate:
        return y.astype(np.float32, copy=False)
    import librosa

    return librosa.resample(y.astype(np.float32), orig_sr=sr, target_sr=rate, res_type="soxr_hq")


def features(y: np.ndarray, sr: int, spec: FeatureSpec = FeatureSpec()) -> np.ndarray:
    """Samples -> log-mel frames (T, spec.channels), float32; resampled to spec.rate first.

    log(mel power + 1e-6): the floor keeps silence finite; levels are in natural-log units.
    """
    import librosa

    y = resample(y, sr, spec.rate)
    need = max(spec.win, spec.n_fft)
    if len(y) < need:
        raise DataError(f"the recording is too short ({len(y) / spec.rate * 1000:.0f} ms); "
                        f"give at least {need / spec.rate * 1000:.0f} ms")  # fmt: skip
    mel = librosa.feature.melspectrogram(
        y=y, sr=spec.rate, n_fft=spec.n_fft, win_length=spec.win, hop_length=spec.hop,
        n_mels=spec.n_mels, center=False,
    )  # fmt: skip
    frames = np.log(mel + 1e-6).T
    if spec.pitch:
        frames = np.concatenate([frames, np.log(f0_track(y, spec))[:, None]], axis=1)
    return frames.astype(np.float32)


def f0_track(y: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Continuous F0 (Hz, YIN, 50-400 Hz) of each feature frame: (T,).

    Frames are centred where the log-mel frames are (YIN needs 64 ms windows to see two
    periods of 50 Hz, so the signal is padded by the difference). YIN has no voicing
    decision: frames quieter than 30% of the loudest decile's RMS are taken as unvoiced and
    their F0 is interpolated linearly from the loud frames around them (the "continuous F0"
    of speech synthesis), so the channel is a clean contour rather than noise in pauses."""
    import librosa

    frame = 1024
    padded = np.pad(y, (frame - spec.n_fft) // 2)
    f0 = librosa.yin(padded, fmin=50, fmax=400, sr=spec.rate, frame_length=frame,
                     hop_length=spec.hop, center=False)  # fmt: skip
    rms = librosa.feature.rms(y=padded, frame_length=frame, hop_length=spec.hop, center=False)[0]
    loud = np.flatnonzero(rms[: len(f0)] > 0.3 * np.quantile(rms[: len(f0)], 0.9))
    if not len(loud):
        return np.full(len(f0), 100.0)
    return np.interp(np.arange(len(f0)), loud, f0[loud])


def mfcc_stats(logmel: np.ndarray, n: int = 13) -> np.ndarray:
    """Mean and std over time of the first `n` MFCCs (the DCT of log-mel frames): (2n,)."""
    import scipy.fft

    c = scipy.fft.dct(logmel, type=2, norm="ortho", axis=1)[:, :n]  # librosa's MFCC, from dB-free
    return np.concatenate([c.mean(0), c.std(0)]).astype(np.float32)


def median_f0(y: np.ndarray, sr: int, fmin: float = 50.0, fmax: float = 400.0) -> float:
    """The median fundamental frequency (Hz) over the loud frames (YIN, librosa).

    YIN has no voicing decision; frames whose RMS is below 30% of the loudest decile are taken
    as silence. NaN if nothing is loud enough."""
    import librosa

    frame, hop = 1024, 256
    if len(y) < frame:
        return float("nan")
    f0 = librosa.yin(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame, hop_length=hop,
                     center=False)  # fmt: skip
    rms = librosa.feature.rms(y=y, frame_length=frame, hop_length=hop, center=False)[0]
    n = min(len(f0), len(rms))
    loud = rms[:n] > 0.3 * np.quantile(rms[:n], 0.9)
    return float(np.median(f0[:n][loud])) if loud.any() else float("nan")


def stack_frames(x: np.ndarray, k: int) -> np.ndarray:
    """(T, D) -> (ceil(T/k), k·D): k consecutive frames side by side (the last zero-padded).

    Fewer, wider steps: the recurrent loop runs k times fewer steps over the same audio."""
    if k == 1:
        return x
    T, D = x.shape
    pad = (-T) % k
    x = np.concatenate([x, np.zeros((pad, D), x.dtype)]) if pad else x
    return x.reshape(-1, k * D)


# ---- augmentation and band-limited input ---------------------------------------------


def freq_mask(x: torch.Tensor, stack: int, n_mels: int, width: int, gen: torch.Generator):
    """SpecAugment's frequency masking (Park et al. 2019): in each sequence of x (B, T, k·D),
    a band of 0..width mel channels (the same in each of the k stacked frames) is set to 0,
    the training mean; channels past n_mels (log F0) are left alone."""
    import torch

    B, T, KD = x.shape
    x = x.clone().view(B, T, stack, KD // stack)
    w = torch.randint(0, width + 1, (B,), generator=gen)
    lo = (torch.rand(B, generator=gen) * (n_mels - w + 1)).long()
    ch = torch.arange(KD // stack)
    band = (ch[None, :] >= lo[:, None]) & (ch[None, :] < (lo + w)[:, None])  # (B, D)
    return x.masked_fill(band[:, None, None, :], 0.0).view(B, T, KD)


def warp_channels(x: torch.Tensor, stack: int, n_mels: int, amount: float, gen: torch.Generator):
    """Vocal tract length perturbation (Jaitly & Hinton 2013), on the mel axis: sequence b of
    x (B, T, k·D) reads mel channel c from channel c / α_b (linear interpolation), α_b uniform
    in [1 - amount, 1 + amount], so formants move as they do between longer and shorter vocal
    tracts; channels past n_mels (log F0) are left alone."""
    import torch

    B, T, KD = x.shape
    D = KD // stack
    alpha = 1 + amount * (2 * torch.rand(B, generator=gen) - 1)
    src = (torch.arange(n_mels)[None, :] / alpha[:, None]).clamp(0, n_mels - 1)  # (B, n_mels)
    lo = src.floor().long()
    hi = (lo + 1).clamp(max=n_mels - 1)
    w = (src - lo)[:, None, None, :]
    x = x.view(B, T, stack, D)
    mel = x[..., :n_mels]
    idx = lambda i: i[:, None, None, :].expand(B, T, stack, n_mels)  # noqa: E731
    warped = mel.gather(3, idx(lo)) * (1 - w) + mel.gather(3, idx(hi)) * w
    return torch.cat([warped, x[..., n_mels:]], dim=3).reshape(B, T, KD)


def band_limit(x: torch.Tensor, stack: int, n_mels: int, share: float, gen: torch.Generator):
    """Band-limited recordings (a telephone, an 8 kHz file): in a `share` of the sequences of
    x (B, T, k·D), every mel channel from a random cut-off in [n_mels/2, n_mels) up is set to
    0, the training mean, which is what `fill_missing_bands` puts where a recording has no
    energy; log F0 is left alone."""
    import torch

    B, T, KD = x.shape
    x = x.clone().view(B, T, stack, KD // stack)
    cut = torch.randint(n_mels // 2, n_mels, (B,), generator=gen)
    cut = torch.where(torch.rand(B, generator=gen) < share, cut, torch.full_like(cut, n_mels))
    ch = torch.arange(KD // stack)
    band = (ch[None, :] >= cut[:, None]) & (ch[None, :] < n_mels)
    return x.masked_fill(band[:, None, None, :], 0.0).view(B, T, KD)


def missing_bands(sr: int, spec: FeatureSpec) -> np.ndarray:
    """(n_mels,) bool: for a recording at a rate `sr` below spec.rate, the mel bands whose
    upper edge lies above 95% of its Nyquist frequency (its resampled spectrum is empty
    there); none for sr >= spec.rate."""
    import librosa

    if sr >= spec.rate:
        return np.zeros(spec.n_mels, bool)
    edges = librosa.mel_frequencies(spec.n_mels + 2, fmin=0.0, fmax=spec.rate / 2)
    return edges[2:] > 0.95 * sr / 2


def fill_missing_bands(frames: np.ndarray, sr: int, spec: FeatureSpec, mean) -> np.ndarray:
    """Frames (T, channels) of a recording at rate `sr`: the bands it cannot hold (above its
    Nyquist frequency) set to the training mean `mean` (channels,), so a band-limited
    recording looks like a training example with those bands masked, not like silence."""
    gone = missing_bands(sr, spec)
    if not gone.any():
        return frames
    out = frames.copy()
    out[:, : spec.n_mels][:, gone] = np.asarray(mean, dtype=frames.dtype)[: spec.n_mels][gone]
    return out


# ---- making speech ------------------------------------------------------------------------


def espeak() -> str:
    """The espeak-ng executable; DataError with the install command if it is missing."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DataError("espeak-ng is not installed; install it with: rnnkit datasets install "
                        "espeak-ng  (apt-get install espeak-ng)")  # fmt: skip
    return exe


def espeak_variants() -> list[tuple[str, str]]:
    """(variant file name, "male" | "female") for espeak-ng's voice variants, sorted by name.

    Whispering and effect voices are left out: they have no pitch to speak of."""
    proc = subprocess.run([espeak(), "--voices=variant"], capture_output=True, text=True)
    out = []
    for line in proc.stdout.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 5 or not cols[4].startswith("!v/"):
            continue
        name, sex = cols[4][3:], cols[2].split("/")[-1]
        if sex in ("M", "F") and not any(w in name.lower() for w in ("whisper", "demonic")):
            out.append((name, "male" if sex == "M" else "female"))
    if not out:
        raise DataError("espeak-ng lists no voice variants; reinstall espeak-ng")
    return sorted(out)


def speak(
    text: str, voice: str, pitch: int = 50, speed: int = 175, amplitude: int = 100
) -> np.ndarray:
    """espeak-ng reads `text` in `voice` (e.g. "en-us+f3") -> float32 samples at 22,050 Hz.

    pitch 0-99 (-p), speed in words per minute (-s), amplitude 0-200 (-a)."""
    import soundfile

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        cmd = [espeak(), "-v", voice, "-p", str(pitch), "-s", str(speed), "-a", str(amplitude),
               "-w", str(wav), "--", text]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not wav.exists():
            raise DataError(f"espeak-ng failed for voice {voice!r}: {proc.stderr.strip()[:200]}")
        y, _ = soundfile.read(str(wav), dtype="float32")
    return y


def add_noise(y: np.ndarray, snr_db: float, rng: np.random.Generator, color: str = "white"):
    """y plus white or pink noise scaled so that signal power / noise power = 10^(snr_db/10).

    Pink noise: white noise shaped by 1/sqrt(f) in the frequency domain (power ~ 1/f)."""
    noise = rng.standard_normal(len(y))
    if color == "pink":
        spec = np.fft.rfft(noise)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        noise = np.fft.irfft(spec / np.sqrt(f), n=len(y))
    p_signal = float(np.mean(y.astype(np.float64) ** 2)) or 1e-12
    noise *= np.sqrt(p_signal / (10 ** (snr_db / 10)) / max(float(np.mean(noise**2)), 1e-20))
    return (y + noise).astype(np.float32)


def add_reverb(y: np.ndarray, sr: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """y in a synthetic room: convolved with an exponentially decaying noise impulse response
    whose energy falls 60 dB in `rt60` seconds (Schroeder's model of late reverberation), the
    direct sound kept as its first tap; the output has y's RMS. rt60 <= 0: y unchanged."""
    if rt60 <= 0:
        return y
    n = max(1, int(rt60 * sr))
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.91 * t / rt60)  # ln(1000) = 6.91: -60 dB at rt60
    ir[1:] /= max(float(np.sqrt(np.sum(ir[1:] ** 2))), 1e-12)  # the tail as loud as ...
    ir[0] = 1.0  # ... the direct sound (a direct-to-reverberant ratio of 0 dB)
    import scipy.signal

    wet = scipy.signal.fftconvolve(y.astype(np.float64), ir)[: len(y)]
    wet *= np.sqrt(np.mean(y.astype(np.float64) ** 2) / max(float(np.mean(wet**2)), 1e-20))
    return wet.astype(np.float32)


def write_wav(path: str | Path, y: np.ndarray, sr: int) -> Path:
    """Float samples -> 16-bit PCM WAV (soundfile)."""
    import soundfile

    soundfile.write(str(path), np.clip(y, -1, 1), sr, subtype="PCM_16")
    return Path(path)


# ---- the cache ----------------------------------------------------------------------------


def cache_path(kind: str, spec: dict) -> Path:
    """Where a generated corpus of `kind` with parameters `spec` is cached:
    $RNNKIT_DATA/<kind>-<hash of spec>.npz (see data.registry.data_dir)."""
    from .registry import data_dir

    key = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    return data_dir() / f"{kind}-{key}.npz"


def save_npz(path: Path, **arrays) -> None:
    """Write atomically: a half-written cache is never read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)

