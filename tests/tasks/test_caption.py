"""Image captioning: the baselines and the CLI (`train caption`, `caption`) on tiny slices
(the model: tests/models/test_models_captioner.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clitest import invoke, one_line_error, sweep_numeric_options
from rnnkit.data import images
from rnnkit.tasks.caption import CaptionOptions
from rnnkit.tasks.caption import options as options_module
from rnnkit.tasks.caption.baselines import nearest

TINY = ["--train-images", "48", "--val-images", "8", "--test-images", "8", "--filters", "4",
        "--hidden", "8", "--embedding", "8", "--attention", "8", "--steps", "3", "--batch", "8",
        "--beam", "2", "--threads", "1", "--quiet"]  # fmt: skip


def test_nearest_matches_brute_force():
    gen = torch.Generator().manual_seed(0)
    train, query = torch.rand(700, 5, generator=gen), torch.rand(30, 5, generator=gen)
    want = torch.cdist(query, train).argmin(1).tolist()
    assert nearest(train, query) == want
    assert nearest(train, train[:3]) == [0, 1, 2]


# ---- CLI ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "digits"
    result = invoke("train", "caption", "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    assert "nearest picture, pixels" in result.stdout
    return out


def test_train_caption_and_caption(digits_run, tmp_path):
    res = json.loads((digits_run / "results.json").read_text())
    assert res["data"]["name"] == "digits" and res["data"]["test_unseen_captions"] >= 1
    for key in ("model", "model_greedy", "nn_pixels", "nn_features", "oracle"):
        assert 0 <= res[key]["exact_match"] <= 1 and "bleu" in res[key] and "chrf" in res[key]
    assert 0 <= res["oracle"]["digit_accuracy"] <= 1
    assert res["data"]["scans"] == {"train": 1257, "val": 269, "test": 271}
    assert "data:image/png;base64," in (digits_run / "report.html").read_text()
    picture = np.zeros((30, 60, 3), dtype=np.uint8)
    picture[5:25, 10:20] = 255
    Image.fromarray(picture).save(tmp_path / "two.jpg")
    result = invoke("caption", digits_run, tmp_path / "two.jpg", "--beam", "2")
    assert result.exit_code == 0, result.output
    words = set(result.stdout.split())
    assert words <= {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                     "nine"}  # fmt: skip
    data = json.loads(invoke("caption", digits_run, tmp_path / "two.jpg", "--json").stdout)
    assert data["words"] == data["caption"].split()
    Image.fromarray(np.zeros((1, 1), dtype=np.uint8)).save(tmp_path / "dot.png")
    one_line_error(invoke("caption", digits_run, tmp_path / "dot.png"), "1x1", "too small")
    (tmp_path / "notes.txt").write_text("hello")
    one_line_error(invoke("caption", digits_run, tmp_path / "notes.txt"), "not an image")
    one_line_error(invoke("caption", digits_run, tmp_path / "two.jpg", "--beam", "0"), "--beam")
    one_line_error(invoke("caption", tmp_path, tmp_path / "two.jpg"), "not a run directory")


def test_train_caption_emoji_and_caption_a_colour_image(tmp_path):
    out = tmp_path / "emoji"
    result = invoke("train", "caption", "--data", "emoji", "--cell", "minlstm", "--out", out,
                    *TINY)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["model"]["config"]["cell"] == "minlstm"
    res = json.loads((out / "results.json").read_text())
    assert "oracle" not in res and res["data"]["channels"] == 3
    assert 0 <= res["nn_pixels"]["bleu"] <= 100 and 0 <= res["model"]["bleu"] <= 100
    Image.fromarray(np.full((20, 30, 4), 200, dtype=np.uint8)).save(tmp_path / "rgba.png")
    result = invoke("caption", out, tmp_path / "rgba.png", "--json")
    assert result.exit_code == 0, result.output
    vocab = set(json.loads((out / "vocab.json").read_text())["tokens"])
    assert set(json.loads(result.stdout)["words"]) <= vocab


def test_train_caption_rejects_bad_options(tmp_path):
    assert options_module.MAX_DIGITS == images.MAX_DIGITS  # declared twice: --help is torch-free
    checked = sweep_numeric_options(["train", "caption"], CaptionOptions, tmp_path / "x")
    assert checked > 20
    one_line_error(invoke("train", "caption", "--data", "faces", "--out", tmp_path / "e"),
                   "--data")  # fmt: skip
    one_line_error(invoke("train", "caption", "--batch", "64", "--train-images", "10",
                          "--out", tmp_path / "b"), "--batch")  # fmt: skip


def test_help_does_not_import_torch():
    probe = ("import sys\nfrom typer.testing import CliRunner\nfrom rnnkit.cli import app\n"
             "for args in (['train', 'caption', '--help'], ['caption', '--help']):\n"
             "    result = CliRunner().invoke(app, args)\n"
             "    assert result.exit_code == 0 and '--beam' in result.output, result.output\n"
             "print('torch' in sys.modules)\n")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_a_caption_run_refuses_onnx_export_in_one_line(digits_run, tmp_path):
    from onnx_roundtrip import assert_run_refuses_export

    assert_run_refuses_export(digits_run, tmp_path, "rnnkit caption")
