"""rnnkit.data.archives, .series and .scaling: loaders, user files and errors, gaps, windows."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.data.archives import (
    encode_labels,
    load_classification_source,
    pad_sequences,
    resample,
    stratified_split,
)
from rnnkit.data.scaling import StandardScaler
from rnnkit.data.series import fill_gaps, load_series_csv, load_series_source, segments
from rnnkit.data.text import DataError


def _long_csv(path, rows, header="id,label,t,a,b"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_encode_labels_sorted_and_unseen_label_is_an_error():
    tr, te, classes = encode_labels(["b", "a", "b", "10", "2"], ["a", "2"])
    assert classes == ["2", "10", "a", "b"]  # numbers first, in numeric order
    assert tr.tolist() == [3, 2, 3, 1, 0] and te.tolist() == [2, 0]
    with pytest.raises(DataError, match="never seen in training: 'c'"):
        encode_labels(["a", "b"], ["a", "c"])


def test_long_csv_groups_orders_and_splits(tmp_path):
    rows = []
    for sid, lab, split, n in [("s1", "up", "train", 3), ("s2", "down", "train", 4),
                               ("s3", "up", "test", 2), ("s4", "down", "test", 5)]:  # fmt: skip
        for t in reversed(range(n)):  # rows out of time order on purpose
            rows.append(f"{sid},{lab},{t},{t}.5,{-t},{split}")
    p = _long_csv(tmp_path / "d.csv", rows, "id,label,t,a,b,split")
    d = load_classification_source(str(p), time_column="t")
    assert [len(x) for x in d.X_train] == [3, 4] and [len(x) for x in d.X_test] == [2, 5]
    assert d.features == 2 and d.classes == ["down", "up"]
    np.testing.assert_allclose(d.X_train[0][:, 0], [0.5, 1.5, 2.5])  # sorted by t
    assert d.y_test.tolist() == [1, 0]


def test_long_csv_errors(tmp_path):
    ok = ["s1,a,0,1,2", "s2,b,0,1,2"]
    p = _long_csv(tmp_path / "x.csv", ok, "sid,label,t,a,b")
    with pytest.raises(DataError, match="no column 'id'.*--id-column"):
        load_classification_source(str(p))
    p = _long_csv(tmp_path / "y.csv", ["s1,a,0,1,oops", "s2,b,0,1,2"])
    with pytest.raises(DataError, match="column 'b' has a non-numeric value 'oops'"):
        load_classification_source(str(p))
    p = _long_csv(tmp_path / "z.csv", ["s1,a,0,1,2", "s1,b,1,1,2"])
    with pytest.raises(DataError, match="several labels"):
        load_classification_source(str(p))
    rows = ["s1,a,0,1,2,train", "s2,b,0,1,2,train", "s3,c,0,1,2,test"]
    p = _long_csv(tmp_path / "u.csv", rows, "id,label,t,a,b,split")
    with pytest.raises(DataError, match="never seen in training"):
        load_classification_source(str(p))
    with pytest.raises(DataError, match="no such file"):
        load_classification_source(str(tmp_path / "missing.csv"))
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        load_classification_source(str(tmp_path / "e.csv"))


def test_npz_with_lengths_and_held_out_split(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 6, 2)).astype(np.float32)
    y = np.array(["a", "b"] * 6)
    lengths = np.array([6, 3] * 6)
    np.savez(tmp_path / "d.npz", X=X, y=y, lengths=lengths)
    d = load_classification_source(str(tmp_path / "d.npz"), test_fraction=0.25)
    assert len(d.X_train) + len(d.X_test) == 12 and len(d.X_test) == 4
    assert {len(x) for x in d.X_train} == {6, 3}
    np.savez(tmp_path / "bad.npz", X=X, labels=y)
    with pytest.raises(DataError, match="missing array 'y'"):
        load_classification_source(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "bad2.npz", X=X, y=y[:5])
    with pytest.raises(DataError, match="y must have shape"):
        load_classification_source(str(tmp_path / "bad2.npz"))


def test_stratified_split_is_deterministic_and_keeps_every_class():
    labels = ["a"] * 8 + ["b"] * 4
    tr1, te1 = stratified_split(labels, 0.25, seed=3)
    tr2, te2 = stratified_split(labels, 0.25, seed=3)
    assert (tr1, te1) == (tr2, te2) and len(te1) == 3
    assert {labels[i] for i in te1} == {"a", "b"} and not set(tr1) & set(te1)


def test_scaler_fits_train_only_and_round_trips_json():
    train, test = np.array([1.0, 2.0, 3.0]), np.array([100.0])
    sc = StandardScaler.fit(train)
    assert sc.mean == [2.0] and sc.std[0] == pytest.approx(np.std(train))
    back = StandardScaler.from_dict(sc.to_dict())
    np.testing.assert_allclose(back.inverse(back.transform(test)), test)
    multi = StandardScaler.fit(np.array([[0.0, 5.0], [2.0, 5.0]]))
    assert multi.std == [1.0, 1.0]  # a constant channel is only centred
    with pytest.raises(DataError, match="not a valid scaler"):
        StandardScaler.from_dict({"kind": "minmax"})


def test_fill_gaps_interpolates_inside_and_trims_ends():
    v, n, keep = fill_gaps(np.array([np.nan, 1.0, np.nan, 3.0, np.nan, np.nan, 6.0, np.nan]))
    assert v.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] and n == 3 and keep == slice(1, 7)
    with pytest.raises(DataError, match="no numeric values"):
        fill_gaps(np.array([np.nan, np.nan]))


def test_series_csv_dates_gaps_and_errors(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("day,load,other\n2020-01-03,3,x\n2020-01-01,1,x\n2020-01-02,,x\n2020-01-04,4,x\n")
    s = load_series_csv(p, "load", "day")
    assert s.values.tolist() == [1.0, 2.0, 3.0, 4.0] and s.gaps_filled == 1
    assert np.all(np.diff(s.index) > 0)
    with pytest.raises(DataError, match="no column 'nope'"):
        load_series_csv(p, "nope")
    with pytest.raises(DataError, match="non-numeric value 'x'"):
        load_series_csv(p, "other")
    with pytest.raises(DataError, match="no such file or series"):
        load_series_source("sunspotz")


def test_windows_padding_resampling():
    assert segments(np.arange(5), 3).tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4]]
    assert segments(np.arange(2), 3).shape == (0, 3)
    X, L = pad_sequences([np.ones((2, 1)), np.ones((4, 1))])
    assert X.shape == (2, 4, 1) and L.tolist() == [2, 4] and X[0, 2:].sum() == 0
    r = resample([np.array([[0.0], [1.0]])], 3)
    np.testing.assert_allclose(r[0, :, 0], [0.0, 0.5, 1.0])


def test_packaged_data_sets_load_offline():
    jv = load_classification_source("JapaneseVowels")
    assert (len(jv.X_train), len(jv.X_test), jv.features, len(jv.classes)) == (270, 370, 12, 9)
    assert {len(x) for x in jv.X_train} <= set(range(7, 30))
    co2 = load_series_source("co2")
    assert co2.gaps_filled == 59 and np.isfinite(co2.values).all() and co2.period == 52
    sun = load_series_source("sunspots")
    assert sun.default_test == (1921.0, 1987.0) and sun.index[0] == 1700


def test_vega_hourly_temperatures_load_by_name():
    """seattle-temps and sf-temps (vega_datasets, offline): a year of hours each, in time order,
    the target column read from each file's own layout (sf-temps lists temp before date)."""
    sea, sf = load_series_source("seattle-temps"), load_series_source("sf-temps")
    assert (len(sea), len(sf)) == (8759, 8759) and sea.index_label == sf.index_label
    assert np.all(np.diff(sf.index) > 0) and np.isfinite(sf.values).all()
    assert sf.values[:2].tolist() == [47.8, 47.4] and sea.values[0] == 39.4
    assert 40 < sf.values.mean() < 70 and sf.values.std() < sea.values.std()  # a milder climate
