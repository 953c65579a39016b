"""Bach chorales as token sequences: parse once (music21's corpus), cache, encode, decode, write.

Encoding: a 16th-note time grid of the four voices, soprano first in each time step, with a
hold symbol (the note sounding at the previous step goes on) and a rest symbol, in the spirit
of DeepBach (Hadjeres, Pachet & Nielsen 2017: 16th-note grid, "__" hold symbol) and of
BachBot's frame-by-frame ordering (Liang et al. 2017: soprano to bass within each frame). A
chorale of T sixteenths is the tokens

    <start>  S_0 A_0 T_0 B_0  S_1 A_1 T_1 B_1  ...  S_{T-1} A_{T-1} T_{T-1} B_{T-1}

where each token is voice-specific ("S67" = soprano attacks MIDI 67, "A_" = alto holds, "Tr" =
tenor rests), so the position in the frame is always readable from the previous token. Because
the soprano comes first in every frame, an alto/tenor/bass can be sampled given the soprano
(harmonisation) with the same left-to-right model.

Every chorale is transposed to C major or A minor (the key music21's Krumhansl-Schmuckler
analysis finds, moved by the smallest interval, -6..+5 semitones). Pitches outside each voice's
fixed range (VOICE_RANGES) are folded by octaves into it. The parsed grids are cached in
`cache_dir()` (the user's cache: $RNNKIT_CACHE_DIR, $XDG_CACHE_HOME/rnnkit or
~/.cache/rnnkit), keyed by the
music21 version, so only the first load parses (a progress bar shows it).

music21 is imported inside the functions that need it (`--help` must not load it).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes, atomic_write_text
from .text import DataError

STEPS_PER_QUARTER = 4  # a 16th-note grid
VOICES = ("S", "A", "T", "B")
HOLD, REST = -1, -2  # grid values besides MIDI pitches
# fixed, data-independent symbol inventories in MIDI: the voice ranges of the chorales moved to
# C major / A minor (S 57-84, A 50-79, T 44-74, B 31-67, folded) with a margin, so that a piece
# in another key still fits after the move (-6..+5 semitones)
VOICE_RANGES = {"S": (53, 89), "A": (46, 84), "T": (40, 79), "B": (28, 71)}
START = "<start>"
CACHE_VERSION = 2
PIECE_ERROR = "expected a standard MIDI file"


def cache_dir() -> Path:
    """The user's cache directory for rnnkit, as the kernels' cache: $RNNKIT_CACHE_DIR, else
    $XDG_CACHE_HOME/rnnkit, else ~/.cache/rnnkit."""
    if os.environ.get("RNNKIT_CACHE_DIR"):
        return Path(os.environ["RNNKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rnnkit"


# ---- chorales --------------------------------------------------------------------------


@dataclass(frozen=True)
class Chorale:
    """One chorale on the 16th-note grid, transposed to C major / A minor.

    grid: four voices (S, A, T, B), each T values: a MIDI pitch (an attack), HOLD or REST.
    """

    name: str
    key: str  # the original key, e.g. "G major"
    shift: int  # semitones added to reach C major / A minor
    grid: tuple[tuple[int, ...], ...]

    @property
    def steps(self) -> int:
        return len(self.grid[0])

    @property
    def quarters(self) -> float:
        return self.steps / STEPS_PER_QUARTER


def key_shift(tonic_pc: int, mode: str) -> int:
    """Semitones (-6..+5) that move a key with tonic pitch class `tonic_pc` to C major / A minor."""
    target = 9 if mode == "minor" else 0
    return (target - tonic_pc + 6) % 12 - 6


def fold(pitch: int, voice: str) -> int:
    """`pitch` moved by octaves into the voice's range."""
    lo, hi = VOICE_RANGES[voice]
    while pitch < lo:
        pitch += 12
    while pitch > hi:
        pitch -= 12
    return pitch


def part_grid(part: Any, steps: int, shift: int, voice: str) -> list[int]:
    """One music21 part on the grid: attacks, holds (durations and ties), rests elsewhere."""
    grid = [REST] * steps
    for item in part.flatten().notesAndRests:
        if item.quarterLength <= 0 or item.isRest:  # grace notes carry no time
            continue
        start = round(float(item.offset) * STEPS_PER_QUARTER)
        length = max(1, round(float(item.quarterLength) * STEPS_PER_QUARTER))
        if start >= steps:
            continue
        pitch = max(p.midi for p in item.pitches)  # a chord in one part: its top note
        tied = item.tie is not None and item.tie.type in ("continue", "stop")
        grid[start] = HOLD if tied and start > 0 and grid[start - 1] != REST else fold(
            pitch + shift, voice
        )
        for t in range(start + 1, min(start + length, steps)):
            grid[t] = HOLD
    return grid


def score_grid(score: Any, shift: int, voices: Sequence[str] = VOICES) -> list[list[int]]:
    """The first len(voices) parts of a music21 score on the grid, transposed by `shift`."""
    steps = round(float(score.highestTime) * STEPS_PER_QUARTER)
    return [part_grid(p, steps, shift, v) for p, v in zip(score.parts, voices, strict=False)]


def analyse_key(score: Any) -> tuple[str, int]:
    """(the key's name, the shift to C major / A minor), by music21's key analysis."""
    key = score.analyze("key")
    return f"{key.tonic.name} {key.mode}", key_shift(key.tonic.pitchClass, key.mode)


def parse_chorale(name: str) -> Chorale | None:
    """A corpus chorale on the grid; None if it does not have exactly four parts."""
    from music21 import corpus

    score = corpus.parse(name)
    if len(score.parts) != 4:
        return None
    key, shift = analyse_key(score)
    grid = score_grid(score, shift)
    return Chorale(name, key, shift, tuple(tuple(v) for v in grid))


def chorale_names() -> list[str]:
    """The 371 four-part chorales (Riemenschneider numbering), as music21 corpus names."""
    from music21.corpus import chorales

    return list(chorales.Iterator(returnType="filename"))


def cache_path() -> Path:
    import music21

    return cache_dir() / f"bach-chorales-v{CACHE_VERSION}-music21-{music21.__version__}.json"


def load_chorales(limit: int | None = None, progress: bool = True) -> list[Chorale]:
    """The Bach chorales (the first `limit` in corpus order), parsed once and cached.

    Raises MissingDependency if music21 is not installed.
    """
    from ..deps import require

    require("music21", what="the Bach chorales")
    names = chorale_names()[:limit]
    path = cache_path()
    cached: dict[str, Any] = {}
    if path.exists():
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))["chorales"]
        except (ValueError, KeyError, TypeError):
            cached = {}  # a damaged cache is rebuilt
    todo = [n for n in names if n not in cached]
    if todo:
        _parse_into(cached, todo, progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"version": CACHE_VERSION, "chorales": cached}))
    out = []
    for n in names:
        c = cached[n]
        if c is not None:
            out.append(Chorale(n, c["key"], c["shift"], tuple(tuple(v) for v in c["grid"])))
    return out


def _parse_into(cached: dict[str, Any], names: list[str], progress: bool) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("parsing Bach chorales (once; cached)"), BarColumn(),
               TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=Console(stderr=True), disable=not progress) as bar:
        task = bar.add_task("parse", total=len(names))
        for name in names:
            c = parse_chorale(name)
            cached[name] = None if c is None else {"key": c.key, "shift": c.shift,
                                                   "grid": [list(v) for v in c.grid]}  # fmt: skip
            bar.advance(task)


TUNE_NOTES = 12  # chorales whose soprano opens with the same 12 pitches share a hymn tune


def tune(chorale: Chorale) -> tuple[int, ...]:
    """The first TUNE_NOTES soprano pitches (in C major / A minor): the chorale's hymn tune."""
    return tuple(p for p in chorale.grid[0] if p >= 0)[:TUNE_NOTES]


@dataclass(frozen=True)
class ChoraleSplit:
    train: list[Chorale]
    val: list[Chorale]
    test: list[Chorale]
    duplicates: int  # chorales dropped: the same four voices as an earlier one
    tunes: int  # distinct tunes (groups that are never split)


def split_chorales(
    chorales: Sequence[Chorale], val: float, test: float, seed: int = 0
) -> ChoraleSplit:
    """Split by tune: exact duplicates dropped (the corpus holds ~20), then the chorales of one
    hymn tune (`tune`) kept together in one split, so that no test chorale is a harmonisation
    of a training melody. The groups are shuffled with `seed`: the same split on every
    machine. Validation and test get at least `val`/`test` of the chorales."""
    seen, unique = set(), []
    for c in sorted(chorales, key=lambda c: c.name):
        if c.grid not in seen:
            seen.add(c.grid)
            unique.append(c)
    groups: dict[tuple[int, ...], list[Chorale]] = {}
    for c in unique:
        groups.setdefault(tune(c), []).append(c)
    order = sorted(groups.values(), key=lambda g: g[0].name)
    random.Random(seed).shuffle(order)
    n_test = max(1, round(test * len(unique)))
    n_val = max(1, round(val * len(unique)))
    parts: list[list[Chorale]] = [[], [], []]  # test, val, train
    for group in order:
        i = 0 if len(parts[0]) < n_test else 1 if len(parts[1]) < n_val else 2
        parts[i].extend(group)
    if not parts[2]:
        raise DataError(f"{len(unique)} chorales cannot be split into train, val and test")
    return ChoraleSplit(parts[2], parts[1], parts[0], len(chorales) - len(unique), len(groups))


# ---- tokens ----------------------------------------------------------------------------


def symbols() -> list[str]:
    """The token inventory: <start>, then per voice its hold, rest and its pitch range."""
    out = [START]
    for v in VOICES:
        lo, hi = VOICE_RANGES[v]
        out += [f"{v}_", f"{v}r", *(f"{v}{p}" for p in range(lo, hi + 1))]
    return out


class MusicVocab:
    """Token <-> id for the grid encoding; `voice_ids[v]` are the ids voice v may emit."""

    def __init__(self) -> None:
        self.tokens = symbols()
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.start = self.index[START]
        self.voice_ids = [[self.index[t] for t in self.tokens if t[0] == v] for v in VOICES]

    def __len__(self) -> int:
        return len(self.tokens)

    def token(self, voice: int, value: int) -> int:
        v = VOICES[voice]
        name = f"{v}_" if value == HOLD else f"{v}r" if value == REST else f"{v}{fold(value, v)}"
        return self.index[name]

    def value(self, token: int) -> int:
        """A token id back to its grid value (MIDI pitch, HOLD or REST)."""
        name = self.tokens[token]
        return HOLD if name[1:] == "_" else REST if name[1:] == "r" else int(name[1:])

    def encode(self, grid: Sequence[Sequence[int]]) -> list[int]:
        """A four-voice grid -> [<start>, S_0, A_0, T_0, B_0, S_1, ...]."""
        out = [self.start]
        for t in range(len(grid[0])):
            out += [self.token(v, grid[v][t]) for v in range(len(VOICES))]
        return out

    def decode(self, ids: Sequence[int]) -> list[list[int]]:
        """Frame tokens (no <start>) -> the four-voice grid; a hold after a rest is a rest."""
        ids = [i for i in ids if i != self.start]
        steps = len(ids) // len(VOICES)
        grid = [[self.value(ids[t * 4 + v]) for t in range(steps)] for v in range(len(VOICES))]
        for row in grid:
            for t, value in enumerate(row):
                if value == HOLD and (t == 0 or row[t - 1] == REST):
                    row[t] = REST
        return grid


# ---- MIDI and MusicXML -----------------------------------------------------------------


def grid_score(grid: Sequence[Sequence[int]], shift: int = 0, title: str = "rnnkit") -> Any:
    """A music21 Score of the grid (voices S, A, T, B), transposed by `shift` semitones."""
    from ..deps import require

    require("music21", what="writing MIDI and MusicXML")
    from music21 import duration, instrument, metadata, meter, note, stream

    score = stream.Score()
    score.metadata = metadata.Metadata(title=title)
    names = ("Soprano", "Alto", "Tenor", "Bass")
    for row, name in zip(grid, names, strict=False):
        part = stream.Part(id=name)
        part.partName = name
        part.insert(0, instrument.Choir())
        part.insert(0, meter.TimeSignature("4/4"))
        t = 0
        while t < len(row):
            end = t + 1
            while end < len(row) and row[end] == HOLD:
                end += 1
            item = note.Rest() if row[t] in (REST, HOLD) else note.Note(row[t] + shift)
            item.duration = duration.Duration((end - t) / STEPS_PER_QUARTER)
            part.append(item)
            t = end
        score.insert(0, part)
    return score


def write_piece(grid: Sequence[Sequence[int]], out: str | Path, shift: int = 0) -> list[Path]:
    """Write `out` (.mid) and the same piece as MusicXML beside it; returns both paths. Each
    file is written atomically (music21 writes a scratch copy, rnnkit.atomic moves it in)."""
    import tempfile

    out = Path(out)
    score = grid_score(grid, shift, title=out.stem)
    paths = [out, out.with_suffix(".musicxml")]
    with tempfile.TemporaryDirectory() as scratch:
        for path, fmt in zip(paths, ("midi", "musicxml"), strict=True):
            written = Path(score.write(fmt, fp=Path(scratch) / path.name))
            atomic_write_bytes(path, written.read_bytes())
    return paths


def read_midi(path: str | Path, voices: int) -> tuple[list[list[int]], int]:
    """A MIDI file's top `voices` parts on the grid, moved to C major / A minor.

    Returns (grid (voices rows), the shift applied: to C major / A minor, in the octave where
    the fewest notes fall outside the voices' ranges). voices=1 takes the part of highest mean
    pitch (a melody); otherwise the file's first parts, in its order (S, A, T, B). DataError
    for a file that is not MIDI, has no notes, or has fewer parts than asked.
    """
    from ..deps import require

    require("music21", what="reading MIDI")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with open(path, "rb") as f:
        if f.read(4) != b"MThd":
            raise DataError(f"{path}: not a MIDI file ({PIECE_ERROR}, .mid)")
    from music21 import converter, stream

    try:
        score = converter.parse(str(path), format="midi")
    except Exception as err:  # music21 raises many types for a damaged file
        raise DataError(f"{path}: cannot read this MIDI file ({type(err).__name__})") from None
    parts = [p for p in (score.parts if isinstance(score, stream.Score) else [score])
             if p.flatten().notes]  # fmt: skip
    if not parts:
        raise DataError(f"{path}: the MIDI file has no notes")
    if len(parts) < voices:
        raise DataError(f"{path}: has {len(parts)} part(s) with notes; {voices} are needed")

    def mean_pitch(p: Any) -> float:
        ps = [max(x.pitches).midi for x in p.flatten().notes]
        return sum(ps) / len(ps)

    # a melody is the highest part; four voices are the file's first four parts, in order
    parts = [max(parts, key=mean_pitch)] if voices == 1 else parts[:voices]
    chosen = stream.Score(parts)
    _, nearest = analyse_key(chosen)

    def outside(shift: int) -> int:  # notes that would have to be folded
        return sum(not lo <= max(n.pitches).midi + shift <= hi
                   for p, (lo, hi) in zip(parts, VOICE_RANGES.values(), strict=False)
                   for n in p.flatten().notes)  # fmt: skip

    # the key's move in the octave that best fits the voice ranges (the nearest on a tie)
    shift = min((nearest, nearest - 12, nearest + 12), key=outside)
    steps = round(float(chosen.highestTime) * STEPS_PER_QUARTER)
    grid = [part_grid(p, steps, shift, v) for p, v in zip(parts, VOICES, strict=False)]
    if all(v == REST for v in grid[0]):
        raise DataError(f"{path}: the MIDI file has no notes")
    return grid, shift
