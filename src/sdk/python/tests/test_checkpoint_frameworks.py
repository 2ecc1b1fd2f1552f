"""Adapter round trips with the real frameworks: what comes back is bit-identical."""

from __future__ import annotations

import pickle
import random
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

from cumulus.checkpoint import UnsupportedValueError, rng_state, set_rng_state
from s3_fixture import make_manager

torch = pytest.importorskip("torch")


def roundtrip(tmp_path: Path, state: Dict[str, Any], into: Any = None) -> Any:
    manager = make_manager(tmp_path / "l1")
    manager.save(state, 7)
    restored = manager.restore(into=into)
    assert restored is not None and restored.step == 7 and restored.source == "l1"
    return restored


def tensor_bytes(t: Any) -> bytes:
    t = t.detach().contiguous().reshape(-1)
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def assert_same_tree(a: Any, b: Any) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
        assert tensor_bytes(a) == tensor_bytes(b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_tree(x, y)
    else:
        assert a == b


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 4)
        self.register_buffer("bf16_buf", torch.randn(5).to(torch.bfloat16))

    def forward(self, x: Any) -> Any:
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def trained() -> Any:
    torch.manual_seed(3)
    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(4, 3, 9, 9)).pow(2).mean().backward()
        opt.step()
        sched.step()
    return net, opt, sched


def test_torch_module_optimizer_scheduler_load_in_place_bit_identical(tmp_path: Path) -> None:
    net, opt, sched = trained()
    torch.manual_seed(99)  # different initial weights for the target
    net2 = Net()
    opt2 = torch.optim.AdamW(net2.parameters(), lr=0.01)
    sched2 = torch.optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=20)
    restored = roundtrip(tmp_path, {"model": net, "opt": opt, "sched": sched}, {"model": net2, "opt": opt2, "sched": sched2})
    assert restored.state["model"] is net2 and restored.state["opt"] is opt2 and restored.state["sched"] is sched2
    assert restored.frameworks == {"model": "torch.module", "opt": "torch.optimizer", "sched": "torch.lr_scheduler"}
    assert_same_tree(net.state_dict(), net2.state_dict())
    assert_same_tree(opt.state_dict(), opt2.state_dict())
    assert sched.state_dict() == sched2.state_dict() and sched2.last_epoch == 3
    assert sched.get_last_lr() == sched2.get_last_lr()
    # The next step behaves identically too.
    x = torch.randn(2, 3, 9, 9)
    for model, optim in ((net, opt), (net2, opt2)):
        optim.zero_grad()
        model(x).sum().backward()
        optim.step()
    assert_same_tree(net.state_dict(), net2.state_dict())


def test_torch_without_targets_returns_state_dicts(tmp_path: Path) -> None:
    net, opt, _ = trained()
    restored = roundtrip(tmp_path, {"model": net, "opt": opt})
    assert_same_tree(net.state_dict(), restored.state["model"])
    assert_same_tree(opt.state_dict(), restored.state["opt"])


def test_torch_tensors_trees_and_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cumulus.checkpoint.adapters import tensor_archive

    # Small shards, so that this state spans several shard files.
    monkeypatch.setattr(tensor_archive.write_tensor_tree, "__defaults__", (4096, None))
    torch.manual_seed(0)
    shared = torch.randn(100, 30)
    tree = {
        "a": shared,
        "same": shared,
        "ints": torch.arange(1000, dtype=torch.int64),
        "flags": torch.rand(77) > 0.5,
        "bf16": torch.randn(333).to(torch.bfloat16),
        "cplx": torch.randn(10, dtype=torch.complex64),
        "transposed": torch.randn(40, 50).t(),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
        "nested": [torch.ones(3), (torch.zeros(2), "text", 5)],
        "sparse": torch.eye(4).to_sparse(),
    }
    param = torch.nn.Parameter(torch.randn(8))
    target = torch.zeros(8)
    restored = roundtrip(tmp_path, {"tree": tree, "param": param, "t": torch.randn(8)}, {"t": target})
    back = restored.state["tree"]
    for key in tree:
        if key != "sparse":
            assert_same_tree(tree[key], back[key])
    assert torch.equal(back["sparse"].to_dense(), torch.eye(4))
    assert back["same"] is back["a"]
    assert isinstance(restored.state["param"], torch.nn.Parameter)
    assert torch.equal(restored.state["param"], param)
    assert restored.state["t"] is target and not torch.equal(target, torch.zeros(8))
    names = [f.name for f in restored.manifest.files]
    assert "tree.tensors" in names and "tree.t000" in names and "tree.t002" in names


def test_torch_generator_round_trip(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(5)
    torch.randn(10, generator=gen)
    restored = roundtrip(tmp_path, {"gen": gen})
    assert torch.equal(torch.randn(10, generator=gen), torch.randn(10, generator=restored.state["gen"]))


def test_sklearn_estimators_round_trip(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.RandomState(0)
    x, y = rng.randn(200, 5), rng.randint(0, 2, 200)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    restored = roundtrip(tmp_path, {"forest": forest, "pipe": pipe})
    assert restored.frameworks == {"forest": "sklearn.estimator", "pipe": "sklearn.estimator"}
    back_forest, back_pipe = restored.state["forest"], restored.state["pipe"]
    assert np.array_equal(back_forest.predict_proba(x), forest.predict_proba(x))
    for a, b in zip(forest.estimators_, back_forest.estimators_):
        assert np.array_equal(a.tree_.value, b.tree_.value) and np.array_equal(a.tree_.threshold, b.tree_.threshold)
    coef, back_coef = pipe[-1].coef_, back_pipe[-1].coef_
    assert coef.tobytes() == back_coef.tobytes()
    assert pipe[0].mean_.tobytes() == back_pipe[0].mean_.tobytes()


def test_xgboost_booster_and_sklearn_model_round_trip(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    rng = np.random.RandomState(1)
    x, y = rng.randn(300, 6), rng.randint(0, 3, 300)
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 3}, xgb.DMatrix(x, label=y), 8)
    clf = xgb.XGBClassifier(n_estimators=6, max_depth=2).fit(x, y)
    unfitted = xgb.XGBRegressor(n_estimators=3)
    in_place = xgb.Booster()
    restored = roundtrip(
        tmp_path, {"booster": booster, "clf": clf, "unfitted": unfitted, "b2": booster}, {"b2": in_place}
    )
    assert restored.frameworks["booster"] == "xgboost.booster"
    assert restored.frameworks["clf"] == "xgboost.sklearn"
    assert restored.frameworks["unfitted"] == "sklearn.estimator"
    assert restored.state["b2"] is in_place
    for back in (restored.state["booster"], in_place):
        assert back.save_raw("ubj") == booster.save_raw("ubj")
        assert np.array_equal(back.predict(xgb.DMatrix(x)), booster.predict(xgb.DMatrix(x)))
    back_clf = restored.state["clf"]
    assert type(back_clf) is xgb.XGBClassifier
    assert back_clf.get_booster().save_raw("ubj") == clf.get_booster().save_raw("ubj")
    assert np.array_equal(back_clf.predict_proba(x), clf.predict_proba(x))
    assert restored.state["unfitted"].get_params()["n_estimators"] == 3


def test_numpy_arrays_round_trip_and_load_in_place(tmp_path: Path) -> None:
    rng = np.random.RandomState(2)
    arrays = {
        "f64": rng.randn(50, 3),
        "fortran": np.asfortranarray(rng.randn(7, 9)),
        "strided": rng.randn(20, 20)[::2, 1::3],
        "i8": rng.randint(-128, 127, 99).astype(np.int8),
        "zero_d": np.array(2.5),
        "empty": np.zeros((0, 3)),
        "record": np.array([(1, 2.0), (3, 4.0)], dtype=[("a", "<i4"), ("b", "<f8")]),
        "objects": np.array([{"x": 1}, None], dtype=object),
    }
    target = np.zeros((50, 3))
    restored = roundtrip(tmp_path, arrays, {"f64": target})
    for key, arr in arrays.items():
        back = restored.state[key]
        if key == "objects":
            assert restored.frameworks[key] == "pickle" and list(back) == list(arr)
            continue
        assert restored.frameworks[key] == "numpy.ndarray"
        assert back.dtype == arr.dtype and back.shape == arr.shape and back.tobytes() == arr.tobytes()
    assert restored.state["f64"] is target


def test_pickled_values_round_trip(tmp_path: Path) -> None:
    values = {"epoch": 3, "history": [0.5, 0.25], "cfg": {"lr": 1e-3, "name": "run"}, "none": None, "big": 2**70}
    restored = roundtrip(tmp_path, values)
    assert restored.state == values
    assert set(restored.frameworks.values()) == {"pickle"}


def test_rng_state_makes_draws_reproducible(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    random.random(), np.random.rand(), torch.rand(1)
    manager = make_manager(tmp_path / "l1")
    manager.save({"rng": rng_state()}, 1)
    expected = (random.random(), np.random.rand(3).tobytes(), tensor_bytes(torch.rand(4)))
    random.seed(42), np.random.seed(42), torch.manual_seed(42)
    restored = manager.restore()
    set_rng_state(restored.state["rng"])
    assert (random.random(), np.random.rand(3).tobytes(), tensor_bytes(torch.rand(4))) == expected


def test_unpicklable_value_is_refused_with_its_key_and_leaves_no_step(tmp_path: Path) -> None:
    manager = make_manager(tmp_path / "l1")
    with pytest.raises(UnsupportedValueError) as info:
        manager.save({"ok": 1, "fn": lambda: 1}, 3)
    assert info.value.key == "fn" and info.value.code == "CHECKPOINT_UNSUPPORTED_VALUE"
    assert manager.restore() is None
    assert not any((tmp_path / "l1").iterdir())


def test_keras_model_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow", reason="TensorFlow is not installed here (no package for it)")
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((8, 4)), np.ones((8, 3)), epochs=1, verbose=0)
    target = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(3)])
    restored = roundtrip(tmp_path, {"model": model}, {"model": target})
    assert restored.frameworks == {"model": "keras.model"}
    for a, b, c in zip(model.get_weights(), restored.state["model"].get_weights(), target.get_weights()):
        assert a.tobytes() == b.tobytes() == c.tobytes()


def test_lightgbm_booster_round_trip(tmp_path: Path) -> None:
    lgb = pytest.importorskip("lightgbm", reason="LightGBM is not installed here (no package for it)")
    rng = np.random.RandomState(0)
    x, y = rng.randn(200, 4), rng.randn(200)
    booster = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(x, y), 5)
    restored = roundtrip(tmp_path, {"gbm": booster})
    assert restored.frameworks == {"gbm": "lightgbm.booster"}
    back = restored.state["gbm"]
    assert back.model_to_string(num_iteration=-1) == booster.model_to_string(num_iteration=-1)
    assert np.array_equal(back.predict(x), booster.predict(x))


def test_importing_the_package_imports_no_framework() -> None:
    code = (
        "import sys, cumulus.checkpoint as c\n"
        "heavy = [m for m in ('torch', 'numpy', 'sklearn', 'xgboost', 'lightgbm', 'tensorflow', 'keras', 'boto3')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pickle_is_not_used_for_arrays() -> None:
    # Guards the .npy path: a plain array must not fall back to pickle.
    from cumulus.checkpoint.adapters import detect

    assert detect(np.zeros(3))[1] == "numpy.ndarray"
    assert detect(pickle)[1] == "pickle"
