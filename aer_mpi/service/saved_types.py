"""The types of saved states and operators, as Qiskit Aer returns them.

Aer gives ``qiskit.quantum_info`` objects whose numpy-array attributes still work, with a
``DeprecationWarning`` (its ``qiskit_aer.backends.compatibility``): saves were arrays before Aer
0.10, and older notebooks still write ``result.get_unitary(qc).round(3)``, ``sv.shape`` or
``rho[0, 0]``. These subclasses do the same, so such code runs with only the import changed;
everything Qiskit's classes define is theirs, unchanged.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import qiskit.quantum_info as qi


def _warn(instance: Any) -> None:
    warnings.warn(
        f"the saved value is a qiskit.quantum_info.{type(instance).__name__}, not a numpy array (as in Qiskit "
        f"Aer since 0.10): array attributes still work but are deprecated there; use np.asarray(value) or "
        f"value.data for the array", DeprecationWarning, stacklevel=3)


class _ArrayAttributes:
    """Numpy attributes the Qiskit class lacks, read from its array (``_data``), with a warning."""

    def __getattr__(self, name: str) -> Any:
        # private and special names are never forwarded: pickling and copying look them up
        # before ``_data`` exists
        if name.startswith("_"):
            raise AttributeError(name)
        data = self.__dict__.get("_data")
        if data is None or not hasattr(data, name):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        _warn(self)
        return getattr(data, name)

    def __eq__(self, other: Any) -> bool:
        # Qiskit's test is isinstance(other, type(self)): a plain Qiskit object would never equal a
        # saved one, in either order (Python asks the subclass first)
        base = next(cls for cls in type(self).__mro__ if cls.__module__.startswith("qiskit."))
        return (isinstance(other, base) and self._op_shape == other._op_shape
                and np.allclose(self._data, other._data, rtol=self.rtol, atol=self.atol))

    __hash__ = None

    def __bool__(self) -> bool:  # not len(): an object is true
        return True

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self):
        return iter(self._data)

    def __reversed__(self):
        return reversed(self._data)

    def __contains__(self, value: Any) -> bool:
        return value in self._data


class _Subscriptable(_ArrayAttributes):
    """Matrices: ``m[0, 0]`` reads (and writes) the array, as Aer's did."""

    def __getitem__(self, key: Any) -> Any:
        _warn(self)
        return self._data[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        _warn(self)
        self._data[key] = value


class Statevector(_ArrayAttributes, qi.Statevector):
    """A saved statevector (``Statevector.__getitem__`` is Qiskit's)."""


class DensityMatrix(_Subscriptable, qi.DensityMatrix):
    """A saved density matrix."""


class Operator(_Subscriptable, qi.Operator):
    """A saved unitary."""


class SuperOp(_Subscriptable, qi.SuperOp):
    """A saved superoperator."""


class StabilizerState(qi.StabilizerState):
    """A saved stabilizer state that still reads as the dict Aer saved before 0.10 (``state["stabilizer"]``,
    ``Clifford.from_dict(state)``, ``state.get(...)``), with the same warning: its Clifford's ``to_dict()``."""

    def _as_dict(self) -> dict:
        warnings.warn(
            "the saved stabilizer is a qiskit.quantum_info.StabilizerState, not a dict (as in Qiskit Aer since "
            "0.10): reading it as a dict still works but is deprecated there; use value.clifford.to_dict()",
            DeprecationWarning, stacklevel=3)
        return self.clifford.to_dict()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or not hasattr(dict, name):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(self._as_dict(), name)

    def __getitem__(self, key: Any) -> Any:
        if key in ("stabilizer", "destabilizer"):
            return self._as_dict()[key]
        raise TypeError("'StabilizerState' object is not subscriptable")

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._as_dict())

    def __iter__(self):
        return iter(self._as_dict())

    def __contains__(self, key: Any) -> bool:
        return key in self._as_dict()
