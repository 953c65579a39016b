"""Audio for the report, where a synthesiser is installed: fluidsynth with Debian's General MIDI
soundfont (apt-get install fluidsynth fluid-soundfont-gm). Without them no audio is rendered and
the report says so."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
INSTALL = "apt-get install fluidsynth fluid-soundfont-gm"
AUDIO_NOTE = f"Audio: not rendered: no fluidsynth and General MIDI soundfont here ({INSTALL})."


def available() -> bool:
    return shutil.which("fluidsynth") is not None and SOUNDFONT.exists()


def render(midi: Path, wav: Path) -> bool:
    """MIDI -> WAV (22.05 kHz) with fluidsynth; False if it is not installed or fails."""
    if not available():
        return False
    cmd = ["fluidsynth", "-ni", "-q", "-F", str(wav), "-r", "22050", str(SOUNDFONT), str(midi)]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
