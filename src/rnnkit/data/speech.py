"""Spoken corpora made offline with espeak-ng, generated once (seeded) and cached as features.

    voice_corpus(spec)   sentences from Shakespeare spoken by espeak-ng voice variants over
                         several language voices, pitch / speed / amplitude varied, half in a
                         synthetic room (reverb), white or pink noise at a random SNR
                         -> log-mel frames + log F0, median F0, labels
    digit_corpus(spec)   connected digit strings ("four two seven"), GRID-style command
                         sentences ("place blue at four now") and every voice saying each
                         digit alone (DTW templates), rooms and noise as above -> log-mel
                         frames, transcripts

The cache ($RNNKIT_DATA/<voice|digits>-<hash>.npz) holds the features, not the WAVs, so a run
starts in a second once the corpus exists; the hash covers every parameter, so a changed spec
makes a new corpus. Utterance i is drawn from `random.Random(f"{seed}:{i}")`, so a smaller
corpus is the prefix of a larger one with the same seed.

Imports: numpy, the standard library, rnnkit.data (audio, registry, text).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import audio
from .text import DataError

LANGUAGES = ("en-us", "en-gb-scotland", "de", "fr-fr", "es")  # espeak-ng voices, English text


@dataclass(frozen=True)
class VoiceSpec:
    """The voice corpus: `per_sex` variants of each sex, `n` utterances round-robin over them."""

    n: int = 720
    per_sex: int = 16
    seed: int = 0
    languages: tuple[str, ...] = LANGUAGES
    snr_db: tuple[float, float] = (10.0, 30.0)
    pitch: tuple[int, int] = (25, 75)
    speed: tuple[int, int] = (130, 210)
    amplitude: tuple[int, int] = (60, 160)
    words: tuple[int, int] = (3, 8)
    reverb_share: float = 0.5
    rt60: tuple[float, float] = (0.2, 0.8)
    feature: audio.FeatureSpec = field(default_factory=lambda: audio.FeatureSpec(pitch=True))
    version: int = 3  # bump when the generator changes (2: continuous F0, 3: reverb)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class VoiceCorpus:
    """Utterance i: frames[i] (T_i, n_mels) float32, f0[i] (Hz, NaN if unvoiced), meta[i]
    (voice, sex, language, pitch, speed, amplitude, snr_db, noise, text)."""

    frames: list[np.ndarray]
    f0: np.ndarray
    meta: list[dict]
    spec: dict
    path: str

    def labels(self, key: str) -> list[str]:
        return [m[key] for m in self.meta]


def sentences(min_words: int, max_words: int) -> list[str]:
    """Lines of Shakespeare's verse and prose with min..max words of plain letters."""
    from .registry import load_shakespeare

    out = []
    for line in load_shakespeare().splitlines():
        line = line.strip()
        # speaker headings are upper case ("FIRST LORD."), stage directions bracketed
        if not line or line.isupper() or line.startswith(("[", "(")) or re.search(r"\d", line):
            continue
        words = re.findall(r"[A-Za-z']+", line)
        if min_words <= len(words) <= max_words:
            out.append(" ".join(words))
    if not out:
        raise DataError("no usable sentences in the Shakespeare corpus")
    return sorted(set(out))


def pick_voices(per_sex: int, seed: int) -> list[tuple[str, str]]:
    """`per_sex` female and `per_sex` male variants (fewer if espeak-ng has fewer), seeded."""
    variants = audio.espeak_variants()
    rng = random.Random(f"voices:{seed}")
    out = []
    for sex in ("female", "male"):
        names = [v for v in variants if v[1] == sex]
        out += sorted(rng.sample(names, min(per_sex, len(names))))
    return out


def draw_utterance(spec: VoiceSpec, i: int, voices, texts) -> dict:
    """The recipe of utterance i (deterministic in spec.seed and i)."""
    rng = random.Random(f"{spec.seed}:{i}")
    voice, sex = voices[i % len(voices)]
    return {
        "voice": voice, "sex": sex, "language": rng.choice(spec.languages),
        "pitch": rng.randint(*spec.pitch), "speed": rng.randint(*spec.speed),
        "amplitude": rng.randint(*spec.amplitude), "snr_db": round(rng.uniform(*spec.snr_db), 1),
        "noise": rng.choice(("white", "pink")), "text": rng.choice(texts),
        "rt60": draw_rt60(spec, rng),
    }  # fmt: skip


def draw_rt60(spec, rng: random.Random) -> float:
    """The room of one utterance: dry with probability 1 - spec.reverb_share, else a
    reverberation time (s) uniform in spec.rt60."""
    return round(rng.uniform(*spec.rt60), 2) if rng.random() < spec.reverb_share else 0.0


def render(m: dict, key: str) -> np.ndarray:
    """An utterance recipe -> samples at 22,050 Hz, in its room (reverb) and then with its
    noise (the microphone's); `key` seeds both."""
    y = audio.speak(m["text"], f"{m['language']}+{m['voice']}", m["pitch"], m["speed"],
                    m["amplitude"])  # fmt: skip
    rng = np.random.default_rng(random.Random(f"noise:{key}").getrandbits(32))
    y = audio.add_reverb(y, audio.ESPEAK_RATE, m.get("rt60", 0.0), rng)
    return audio.add_noise(y, m["snr_db"], rng, m["noise"])


def voice_corpus(
    spec: VoiceSpec = VoiceSpec(), progress: Callable[[int, int], None] | None = None
) -> VoiceCorpus:
    """The cached corpus for `spec`, generated (and cached) if it is not there yet.

    `progress(done, total)` is called after each utterance while generating."""
    path = audio.cache_path("voice", spec.to_dict())
    if path.exists():
        return load_corpus(path)
    voices, texts = pick_voices(spec.per_sex, spec.seed), sentences(*spec.words)
    recipes = [draw_utterance(spec, i, voices, texts) for i in range(spec.n)]
    return generate(path, spec, recipes, progress, pitch=True)


def generate(path, spec, recipes: list[dict], progress, pitch: bool) -> VoiceCorpus:
    """Speak every recipe, add its noise, compute its features (and median F0), cache."""
    frames, f0 = [], []
    for i, m in enumerate(recipes):
        y = render(m, f"{spec.seed}:{i}")
        frames.append(audio.features(y, audio.ESPEAK_RATE, spec.feature).astype(np.float16))
        f0.append(audio.median_f0(y, audio.ESPEAK_RATE) if pitch else float("nan"))
        if progress:
            progress(i + 1, len(recipes))
    audio.save_npz(
        path, frames=np.concatenate(frames), lengths=np.array([len(f) for f in frames]),
        f0=np.array(f0), meta=np.array(json.dumps({"spec": spec.to_dict(), "meta": recipes})),
    )  # fmt: skip
    return load_corpus(path)


def generation_bar():
    """A rich progress bar for corpus generation, as a progress(done, total) callback."""
    from rich.progress import Progress

    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = Progress(transient=False)
            state["bar"].start()
            state["task"] = state["bar"].add_task("generating the corpus (once)", total=total)
        state["bar"].update(state["task"], completed=done)
        if done >= total:
            state["bar"].stop()

    return update


def load_corpus(path) -> VoiceCorpus:
    with np.load(path) as z:
        ends = np.cumsum(z["lengths"])
        flat = z["frames"].astype(np.float32)
        frames = [flat[e - n : e] for e, n in zip(ends, z["lengths"], strict=True)]
        info = json.loads(str(z["meta"]))
        return VoiceCorpus(frames, z["f0"].astype(np.float64), info["meta"], info["spec"],
                           str(path))  # fmt: skip


def split_by_voice(voices: list[str], sexes: list[str], seed: int, test: float = 0.25,
                   val: float = 0.15) -> dict[str, str]:  # fmt: skip
    """voice -> "train" | "val" | "test", stratified by sex: test voices are never heard in
    training (nor in validation)."""
    rng = random.Random(f"split:{seed}")
    out: dict[str, str] = {}
    for sex in sorted(set(sexes)):
        names = sorted({v for v, s in zip(voices, sexes, strict=True) if s == sex})
        rng.shuffle(names)
        n_test = max(1, round(test * len(names)))
        n_val = max(1, round(val * len(names))) if len(names) > 2 else 0
        for k, v in enumerate(names):
            out[v] = "test" if k < n_test else "val" if k < n_test + n_val else "train"
    return out


# ---- connected digits and command sentences ------------------------------------------------

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# The GRID corpus's command grammar (Cooke et al. 2006, "bin blue at f two now") without its
# letter slot: command colour preposition digit adverb, 4 x 4 x 4 x 10 x 4 = 2,560 sentences.
GRAMMAR = (("bin", "lay", "place", "set"), ("blue", "green", "red", "white"),
           ("at", "by", "in", "with"), DIGITS, ("again", "now", "please", "soon"))  # fmt: skip
VOCABULARY = DIGITS + tuple(w for slot in GRAMMAR if slot is not DIGITS for w in slot)


@dataclass(frozen=True)
class DigitSpec:
    """Connected digit strings (`n`, min..max digits) and `sentences` command sentences
    (GRAMMAR) round-robin over the voices, and every voice saying each digit once on its own
    (the DTW baseline's templates)."""

    n: int = 600
    sentences: int = 400
    per_sex: int = 16
    seed: int = 0
    digits: tuple[int, int] = (2, 5)
    languages: tuple[str, ...] = ("en-us", "en-gb")
    snr_db: tuple[float, float] = (15.0, 35.0)
    pitch: tuple[int, int] = (25, 75)
    speed: tuple[int, int] = (130, 220)
    amplitude: tuple[int, int] = (60, 160)
    reverb_share: float = 0.5
    rt60: tuple[float, float] = (0.2, 0.8)
    feature: audio.FeatureSpec = field(default_factory=audio.FeatureSpec)
    version: int = 2  # 2: reverb, sentences

    def to_dict(self) -> dict:
        return asdict(self)


def digit_recipe(spec: DigitSpec, key: str, voice: tuple[str, str], digits: list[int]) -> dict:
    """A digit string (or, with key "word...", an isolated digit)."""
    rng = random.Random(f"{spec.seed}:{key}")
    return {
        "voice": voice[0], "sex": voice[1], "language": rng.choice(spec.languages),
        "pitch": rng.randint(*spec.pitch), "speed": rng.randint(*spec.speed),
        "amplitude": rng.randint(*spec.amplitude), "snr_db": round(rng.uniform(*spec.snr_db), 1),
        "noise": rng.choice(("white", "pink")), "digits": "".join(map(str, digits)),
        "text": " ".join(DIGITS[d] for d in digits), "isolated": len(digits) == 1 and
        key.startswith("word"), "kind": "digits", "rt60": draw_rt60(spec, rng),
    }  # fmt: skip


def sentence_recipe(spec: DigitSpec, i: int, voice: tuple[str, str]) -> dict:
    """Command sentence i: one word of each GRAMMAR slot, drawn uniformly."""
    rng = random.Random(f"sentence:{spec.seed}:{i}")
    words = [rng.choice(slot) for slot in GRAMMAR]
    m = digit_recipe(spec, f"sentence{i}", voice, [])
    return {**m, "digits": "", "text": " ".join(words), "kind": "sentence"}


def digit_corpus(
    spec: DigitSpec = DigitSpec(), progress: Callable[[int, int], None] | None = None
) -> VoiceCorpus:
    """Connected digit strings and command sentences (meta "isolated": False, "kind":
    "digits" | "sentence") then isolated digits (True), cached."""
    path = audio.cache_path("digits", spec.to_dict())
    if path.exists():
        return load_corpus(path)
    voices = pick_voices(spec.per_sex, spec.seed)
    recipes = []
    for i in range(spec.n):
        rng = random.Random(f"digits:{spec.seed}:{i}")
        digits = [rng.randrange(10) for _ in range(rng.randint(*spec.digits))]
        recipes.append(digit_recipe(spec, f"string{i}", voices[i % len(voices)], digits))
    recipes += [sentence_recipe(spec, i, voices[i % len(voices)]) for i in range(spec.sentences)]
    for v in voices:
        recipes += [digit_recipe(spec, f"word{v[0]}{d}", v, [d]) for d in range(10)]
    return generate(path, spec, recipes, progress, pitch=False)
