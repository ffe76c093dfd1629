"""Aer's noise utilities under aer_mpi's name: ``from aer_mpi.utils import approximate_quantum_error,
insert_noise, transform_noise_model`` is ``from qiskit_aer.utils import ...`` (they build and
change Aer's noise objects; aer_mpi runs what they build). Needs qiskit-aer, as ``aer_mpi.noise``."""

from aer_mpi._aer_modules import forward

forward(__name__, "qiskit_aer.utils", globals())
