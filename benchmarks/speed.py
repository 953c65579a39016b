"""Speed of rnnkit's fused kernels vs its reference and torch.nn: a wrapper of `rnnkit bench`.

The benchmark lives in the package (rnnkit.bench.speed; CLI in rnnkit.cli.bench); this script
runs the same command with results going to benchmarks/results/ wherever it is started from.

    .venv/bin/python benchmarks/speed.py --threads 1 --clock cpu   # the recorded results
    .venv/bin/python benchmarks/speed.py --quick                   # first size, 3 repeats
    .venv/bin/python benchmarks/speed.py --help
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from rnnkit.cli.bench import bench

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(bench)
    app(["--out", str(RESULTS), *args], prog_name="speed.py")  # a later --out wins


if __name__ == "__main__":
    main()
