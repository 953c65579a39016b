"""The music run's report sections: NLL against Kneser-Ney, statistics against Bach, piano
rolls, and whether audio could be rendered."""

from __future__ import annotations

from typing import Any

from ...data.music import VOICES
from ..report import bar_plot
from .audio import AUDIO_NOTE
from .stats import piano_roll


def sections(r: Any, run: Any, results: dict[str, Any]) -> None:
    data, m, k = results["data"], results["model"], results["kneser_ney"]
    sizes = data["sizes"]
    r.paragraph(f"{data['source']}: {data['chorales']} chorales, {data['duplicates_dropped']} "
                f"exact duplicates dropped, split by hymn tune ({data['tunes']} tunes: the "
                "chorales whose soprano opens with the same 12 pitches stay in one split) "
                f"{sizes['train']}/{sizes['val']}/{sizes['test']} (train/val/test). Encoding: "
                f"{data['encoding']} ({data['vocab_size']} symbols; Hadjeres et al. 2017, "
                "DeepBach; Liang et al. 2017, BachBot).")  # fmt: skip
    r.heading("Held-out chorales: NLL, model vs n-gram")
    r.table([["RNN", m["nats_per_token"], m["bits_per_token"], m["nats_per_quarter"]],
             [f"interpolated Kneser-Ney, order {k['order']}, D={k['discount']} (picked on val)",
              k["nats_per_token"], k["bits_per_token"], k["nats_per_quarter"]]],
            header=["model", "nats/token", "bits/token", "nats/quarter note"])  # fmt: skip
    r.figure(bar_plot({"RNN": m["nats_per_quarter"], f"KN-{k['order']}": k["nats_per_quarter"]},
                      "nats per quarter note (test chorales)"),
             f"{results['tokens']:,} test tokens, {results['quarters']:g} quarter notes")
    grid = k.get("val_nats", {})
    if grid:
        best = {}
        for key, value in grid.items():
            order = key.split("/")[0]
            best[order] = min(best.get(order, value), value)
        r.table([[o, v] for o, v in best.items()], header=["n-gram order", "val nats/token"])
    s = results["statistics"]
    gen, bach = s["generated"], s["bach_test"]
    r.heading(f"Generated pieces vs held-out Bach (temperature {results['temperature']:g})")

    def rng(st: dict, v: str) -> str:
        lo, hi = st["range"][v]
        return "-" if lo is None else f"{lo:.1f}-{hi:.1f}"

    rows = [[f"pitch range {v} (MIDI, mean low-high)", rng(gen, v), rng(bach, v)] for v in VOICES]
    rows += [["notes in key (fraction)", gen["in_key"], bach["in_key"]],
             ["16th steps with a voice crossing (%)", gen["crossing_percent"],
              bach["crossing_percent"]],
             ["parallel fifths per 100 beats", gen["parallel_fifths_per_100_beats"],
              bach["parallel_fifths_per_100_beats"]],
             ["parallel octaves per 100 beats", gen["parallel_octaves_per_100_beats"],
              bach["parallel_octaves_per_100_beats"]],
             ["note-duration histogram, TV distance to held-out Bach",
              s["duration_tv_generated"], s["duration_tv_bach_train"]],
             ["pieces / beats", f"{gen['pieces']} / {gen['beats']:g}",
              f"{bach['pieces']} / {bach['beats']:g}"]]  # fmt: skip
    r.table(rows, header=["statistic", "generated", "Bach (test)"])
    r.paragraph("The duration distance in the Bach column is the training chorales' histogram "
                "against the test chorales': the distance two sets of real Bach have.",
                muted=True)  # fmt: skip
    r.heading("Piano rolls")
    rolls = results["rolls"]
    for i, g in enumerate(rolls["generated"], 1):
        r.figure(piano_roll(g, f"generated piece {i}"), f"generated piece {i} (C major/A minor)")
    r.figure(piano_roll(rolls["bach"], rolls["bach_name"]), f"{rolls['bach_name']} (test split)")
    r.paragraph(results.get("audio", AUDIO_NOTE))
