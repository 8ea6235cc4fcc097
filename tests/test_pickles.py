"""The restricted unpickler: numpy/scipy data from old and new pickles loads, chumpy maps to arrays, code never runs."""

import os
import pickle
import struct
import sys
import types

import numpy as np
import pytest
import scipy.sparse

from lwgan.io.safe_unpickling import UnsafePickleError, load_pickle

OLD_MODULE_PATHS = {
    "numpy._core.multiarray": "numpy.core.multiarray",
    "numpy._core.numeric": "numpy.core.numeric",
    "scipy.sparse._csc": "scipy.sparse.csc",
    "scipy.sparse._csr": "scipy.sparse.csr",
}


class Python2StylePickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for SMPL files: str/bytes as BINSTRING, 2015-era module paths."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_python2_str(self, value):
        data = value if isinstance(value, bytes) else value.encode("latin1")
        self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(value)

    dispatch[bytes] = save_python2_str
    dispatch[str] = save_python2_str

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", None)
        if module in OLD_MODULE_PATHS:
            self.write(pickle.GLOBAL + f"{OLD_MODULE_PATHS[module]}\n{name or obj.__qualname__}\n".encode("ascii"))
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def python2_style_pickle(value) -> bytes:
    import io

    buffer = io.BytesIO()
    Python2StylePickler(buffer, protocol=2, fix_imports=True).dump(value)
    return buffer.getvalue()


def make_chumpy_class():
    """A stand-in for chumpy.ch.Ch that pickles under the module name 'chumpy.ch' (real chumpy is not needed)."""

    class Ch:
        def __init__(self, x):
            self.x = np.asarray(x)
            self._dirty_vars = set()
            self._itr = None
            self._make_dense = []
            self._make_sparse = []
            self._depends_on_deps = {}

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    return Ch


def dump_with_fake_chumpy(build, protocol=2) -> bytes:
    """Pickle build(Ch) while 'chumpy' and 'chumpy.ch' exist in sys.modules, then remove them again."""
    Ch = make_chumpy_class()
    package, module = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    module.Ch = Ch
    package.ch = module
    saved = {name: sys.modules.get(name) for name in ("chumpy", "chumpy.ch")}
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = package, module
    try:
        return pickle.dumps(build(Ch), protocol=protocol)
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_containers_and_arrays_round_trip(tmp_path, protocol):
    value = {
        "array": np.arange(12, dtype=np.float64).reshape(3, 4),
        "integers": np.array([1, 2, 3], dtype=np.uint32),
        "scalar": np.float32(2.5),
        "list": [1, "two", (3.0, None)],
        "set": {1, 2},
        "bytes": b"\x00\xff",
        "csc": scipy.sparse.csc_matrix(np.eye(3) * 2),
        "csr": scipy.sparse.csr_matrix(np.eye(2)),
    }
    loaded = load_pickle(write(tmp_path / "value.pkl", pickle.dumps(value, protocol=protocol)))
    np.testing.assert_array_equal(loaded["array"], value["array"])
    assert loaded["integers"].dtype == np.uint32
    assert loaded["scalar"] == np.float32(2.5)
    assert loaded["list"] == [1, "two", (3.0, None)] and loaded["set"] == {1, 2} and loaded["bytes"] == b"\x00\xff"
    assert scipy.sparse.issparse(loaded["csc"]) and loaded["csc"].format == "csc"
    np.testing.assert_array_equal(loaded["csc"].toarray(), np.eye(3) * 2)
    np.testing.assert_array_equal(loaded["csr"].toarray(), np.eye(2))


def test_python2_pickle_with_old_module_paths(tmp_path):
    weights = np.linspace(0, 1, 7).reshape(7, 1)
    regressor = scipy.sparse.csc_matrix(np.array([[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]]))
    data = python2_style_pickle({"weights": weights, "J_regressor": regressor, "bs_style": "lbs", "count": np.int64(4)})
    assert b"numpy.core.multiarray" in data and b"scipy.sparse.csc\n" in data and b"numpy._core" not in data
    assert pickle.BINSTRING in data
    loaded = load_pickle(write(tmp_path / "old.pkl", data))
    np.testing.assert_array_equal(loaded["weights"], weights)
    np.testing.assert_array_equal(loaded["J_regressor"].toarray(), regressor.toarray())
    assert loaded["bs_style"] == "lbs" and loaded["count"] == 4


def test_chumpy_objects_become_arrays_without_chumpy(tmp_path):
    shapedirs = np.random.default_rng(0).normal(size=(5, 3, 2))
    data = dump_with_fake_chumpy(lambda Ch: {"shapedirs": Ch(shapedirs), "nested": [Ch([1.0, 2.0])], "plain": np.ones(2)})
    assert b"chumpy.ch" in data and "chumpy" not in sys.modules
    loaded = load_pickle(write(tmp_path / "chumpy.pkl", data))
    assert type(loaded["shapedirs"]) is np.ndarray
    np.testing.assert_array_equal(loaded["shapedirs"], shapedirs)
    np.testing.assert_array_equal(loaded["nested"][0], [1.0, 2.0])
    assert "chumpy" not in sys.modules


def test_chumpy_object_without_value_is_refused(tmp_path):
    def build(Ch):
        node = Ch([1.0])
        del node.x
        node.a = np.ones(1)
        return {"derived": node}

    path = write(tmp_path / "derived.pkl", dump_with_fake_chumpy(build))
    with pytest.raises(ValueError, match="chumpy.ch.Ch stores no value 'x'") as error:
        load_pickle(path)
    assert str(path) in str(error.value)


class RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class CallsEval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


@pytest.mark.parametrize("make_payload, refused", [
    (lambda marker: RunsCommand(marker), "system"),
    (lambda marker: {"data": [CallsEval()]}, "builtins.eval"),
    (lambda marker: np.save, "numpy.save"),
])
def test_anything_else_is_refused_without_running(tmp_path, make_payload, refused):
    marker = tmp_path / "hacked"
    path = write(tmp_path / "evil.pkl", pickle.dumps(make_payload(marker), protocol=2))
    with pytest.raises(UnsafePickleError, match=refused) as error:
        load_pickle(path)
    assert str(path) in str(error.value)
    assert not marker.exists()


def test_codecs_encode_only_latin1(tmp_path):
    # GLOBAL _codecs.encode, ('payload', 'rot13') -> REDUCE: a non-latin1 codec must be refused.
    data = b"\x80\x02c_codecs\nencode\nq\x00X\x07\x00\x00\x00payloadq\x01X\x05\x00\x00\x00rot13q\x02\x86q\x03Rq\x04."
    with pytest.raises(UnsafePickleError, match="rot13"):
        load_pickle(write(tmp_path / "codec.pkl", data))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pkl"):
        load_pickle(tmp_path / "nothing.pkl")


@pytest.mark.parametrize("content", [
    b"this is a text file, not a pickle\n",
    b"",
    pickle.dumps({"array": np.arange(100.0)}, protocol=2)[:-40],
    pickle.dumps({"array": np.arange(100.0)}, protocol=4)[:25],
])
def test_not_a_pickle_or_truncated(tmp_path, content):
    path = write(tmp_path / "broken.pkl", content)
    with pytest.raises(ValueError) as error:
        load_pickle(path)
    assert str(path) in str(error.value)


def test_folder_is_not_a_pickle(tmp_path):
    with pytest.raises(ValueError, match="not a file"):
        load_pickle(tmp_path)
