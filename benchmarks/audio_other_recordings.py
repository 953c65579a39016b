"""Recordings made another way: voices in no split of the speech corpus, spoken by espeak-ng,
converted by sox to 16 kHz, 8 kHz and 44.1 kHz stereo, transcribed by a `train speech` run
(prefix beam 8, without and with the run's n-gram LM).

    python benchmarks/audio_other_recordings.py RUN
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from rnnkit.data import audio
from rnnkit.tasks import speech
from rnnkit.tasks.speech.decode import error_rates

ITEMS = [("en-us+m7", "three one four one five"), ("en-us+Mario", "nine two six five"),
         ("en-us+Andy", "two seven one eight"), ("en-us+grandma", "place red at seven now"),
         ("en-gb+Alex", "set white with two soon"),
         ("en-us+benjamin", "bin green by nine again")]  # fmt: skip
RATES = (16000, 8000, 44100)


def main() -> None:
    run = speech.load(sys.argv[1])
    hyps: dict[int, dict[str, list[str]]] = {r: {"beam": [], "beam_lm": []} for r in RATES}
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        for voice, text in ITEMS:
            audio.write_wav(raw, audio.speak(text, voice), audio.ESPEAK_RATE)
            for rate in RATES:
                dst = Path(tmp) / f"{rate}.wav"
                channels = ["-c", "2"] if rate == 44100 else []
                subprocess.run(["sox", str(raw), "-r", str(rate), *channels, str(dst)], check=True)
                plain, lm = run.transcribe_file(dst, 8), run.transcribe_file(dst, 8, use_lm=True)
                hyps[rate]["beam"].append(plain["text"])
                hyps[rate]["beam_lm"].append(lm["text"])
                print(f"{rate} {voice} {text!r} -> {plain['text']!r} | LM: {lm['text']!r}")
    refs = [text for _, text in ITEMS]
    for rate in RATES:
        print(rate, {d: round(error_rates(refs, h)["wer"], 3) for d, h in hyps[rate].items()})


if __name__ == "__main__":
    main()
