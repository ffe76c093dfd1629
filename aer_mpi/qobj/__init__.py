"""The wire format, and everything that knows its keys.

A job crosses a process or rank boundary as a ``Qobj`` (JSON-compatible
dicts). This package builds it from Qiskit circuits (``assemble``), checks it
(``model.Qobj.validate``) and turns each experiment into an engine program
(``translate``). Nothing below this layer sees a Qobj.
"""

from aer_mpi.qobj.model import Qobj, QobjExperiment

__all__ = ["Qobj", "QobjExperiment"]
