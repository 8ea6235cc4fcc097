"""Safe loading of untrusted pickles (SMPL models, iPER pose files): numpy/scipy arrays and plain containers only."""

from __future__ import annotations

import _codecs
import collections
import copyreg
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

_MODULE_ALIASES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
"""Python 2 module names (pickles written by Python 2 name these) -> their Python 3 names."""


class UnsafePickleError(ValueError):
    """A pickle asked for a class or function outside the allowlist; nothing from it was run."""


class _ChumpyStub:
    """Stands in for a chumpy object while unpickling; keeps its state, replaced by its array afterwards."""

    chumpy_class = "chumpy"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_chumpy_args"] = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (__dict__ state, __slots__ state)
            for part in state:
                if isinstance(part, dict):
                    self.__dict__.update(part)
        elif isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_chumpy_state"] = state


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """`_codecs.encode` restricted to the call Python 3 writes for bytes in protocol-2 pickles."""
    if encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r} (only latin1 is allowed)")
    return _codecs.encode(text, "latin1", errors)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """(module, name) -> object for every global a data pickle may name, under old and new module paths."""
    import numpy._core.multiarray as multiarray
    import numpy._core.numeric as numeric
    import scipy.sparse

    allowed: dict[tuple[str, str], Any] = {
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "bytearray"): bytearray,
        ("builtins", "bytes"): bytes,
        ("builtins", "complex"): complex,
        ("builtins", "slice"): slice,
        ("builtins", "object"): object,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("copyreg", "_reconstructor"): copyreg._reconstructor,  # only builds classes that passed this list
        ("_codecs", "encode"): _latin1_encode,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(module, "_frombuffer")] = numeric._frombuffer
    sparse_classes = {
        "csc": ("csc_matrix", "csc_array"),
        "csr": ("csr_matrix", "csr_array"),
    }
    for short, names in sparse_classes.items():
        for name in names:
            for module in ("scipy.sparse", f"scipy.sparse.{short}", f"scipy.sparse._{short}"):
                allowed[(module, name)] = getattr(scipy.sparse, name)
    return allowed


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allowlisted globals; any `chumpy.*` class becomes a stub.

    Use load_pickle(); this class is public for callers that unpickle from a stream they opened.
    """

    _allowed: dict[tuple[str, str], Any] | None = None

    def __init__(self, file, source: str = "<stream>") -> None:
        super().__init__(file, encoding="latin1")
        self.source = source
        if SafeUnpickler._allowed is None:
            SafeUnpickler._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        module = _MODULE_ALIASES.get(module, module)
        if module == "chumpy" or module.startswith("chumpy."):
            return type(name, (_ChumpyStub,), {"chumpy_class": f"{module}.{name}"})
        found = self._allowed.get((module, name))
        if found is None:
            raise UnsafePickleError(
                f"{self.source}: refusing to load {module}.{name}: this file may only contain numpy/scipy "
                "arrays, plain containers and chumpy arrays (it is read with a restricted unpickler)"
            )
        return found

    def persistent_load(self, persistent_id: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: refusing a persistent id {persistent_id!r}")


def _replace_chumpy(value: Any, source: str) -> Any:
    """Replace every chumpy stub inside dicts, lists and tuples by np.asarray of its stored 'x'."""
    if isinstance(value, _ChumpyStub):
        if "x" not in value.__dict__:
            raise ValueError(
                f"{source}: the chumpy object {value.chumpy_class} stores no value 'x' "
                "(only plain chumpy arrays can be read without chumpy)"
            )
        return np.asarray(_replace_chumpy(value.__dict__["x"], source))
    if isinstance(value, dict):
        return type(value)((key, _replace_chumpy(item, source)) for key, item in value.items())
    if isinstance(value, list):
        return [_replace_chumpy(item, source) for item in value]
    if isinstance(value, tuple):
        return tuple(_replace_chumpy(item, source) for item in value)
    return value


def load_pickle(path: str | os.PathLike) -> Any:
    """Load a pickle written by someone else without running anything from it.

    Allowed: plain containers (dict, list, tuple, set, str, bytes, numbers), numpy arrays, dtypes and
    scalars (old `numpy.core.*` and new `numpy._core.*` paths) and scipy.sparse csc/csr matrices
    (old `scipy.sparse.csc` and new paths). chumpy objects (official SMPL pkl files) become plain
    numpy arrays of their stored value, with chumpy absent. Python 2 pickles are read with
    encoding="latin1". scipy.sparse matrices are returned as they are (callers densify if needed).

    Raises:
        FileNotFoundError: `path` does not exist.
        UnsafePickleError (a ValueError): the pickle names any other class or function
            (e.g. os.system); the message names the file and the refused global.
        ValueError: not a pickle, truncated or corrupt; the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise ValueError(f"{path}: not a file")
    source = str(path)
    try:
        with path.open("rb") as handle:
            loaded = SafeUnpickler(handle, source=source).load()
    except UnsafePickleError:
        raise
    except EOFError as error:
        raise ValueError(f"{path}: truncated or empty pickle ({error or 'unexpected end of file'})") from error
    except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, KeyError, IndexError,
            UnicodeDecodeError, MemoryError, OverflowError) as error:
        raise ValueError(f"{path}: not a readable pickle ({type(error).__name__}: {error})") from error
    return _replace_chumpy(loaded, source)


def load_pickle_dict(path: str | os.PathLike, required_keys: Sequence[str], what: str) -> dict:
    """load_pickle() a file that must hold a dict with `required_keys`; errors name the file and say it is not `what`."""
    data = load_pickle(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not {what}: expected a dict with keys {list(required_keys)}, got {type(data).__name__}")
    missing = [key for key in required_keys if key not in data]
    if missing:
        raise ValueError(f"{path}: not {what}: missing key(s) {missing}; found {sorted(map(str, data))}")
    return data
