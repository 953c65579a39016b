"""benchmarks/gpu_check.py stays runnable between the sessions that are lent a GPU: its CPU
smoke run passes, and its equivalence check fails when the tolerance cannot be met."""

import json

import benchscript


def load():
    return benchscript.load("gpu_check")


def test_the_gpu_check_passes_on_the_cpu_and_records_every_row(tmp_path):
    out = tmp_path / "check.json"
    rc = load().main(["--device", "cpu", "--quick", "--parts", "equivalence,dtypes,training",
                      "--out", str(out)])  # fmt: skip
    assert rc == 0
    rows = json.loads(out.read_text())
    ran = [r for r in rows["equivalence"] if "skipped" not in r]
    assert {r["impl"] for r in ran} >= {"auto", "torch", "reference"}
    assert all(r["ok"] and r["worst"] < 1e-4 for r in ran)
    assert all(r["ok"] for r in rows["dtypes"]) and len(rows["dtypes"]) == 15
    assert [r["case"] for r in rows["training"]] == ["train on device, load on CPU",
                                                     "resume on device"]  # fmt: skip


def test_the_equivalence_check_can_fail():
    check = load()
    check.TOL = 0.0  # float32 never equals float64 exactly
    assert check.main(["--device", "cpu", "--quick", "--parts", "equivalence"]) == 1
