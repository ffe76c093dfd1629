"""Aer's noise objects under aer_mpi's name: ``from aer_mpi.noise import NoiseModel,
depolarizing_error`` is ``from qiskit_aer.noise import ...``, so that a notebook whose
``qiskit_aer`` imports were replaced by ``aer_mpi`` still runs.

aer_mpi reads Aer's own ``NoiseModel`` (``noise_model=``, ``from_backend``; see docs/noise.md)
rather than a copy of it: one noise model for both simulators, built by the library that defines
it. qiskit-aer is therefore needed for noise (``pip install "aer-mpi[noise]"``), never for ideal
runs. Its submodules are Aer's too: ``from aer_mpi.noise.errors import depolarizing_error``
imports ``qiskit_aer.noise.errors`` (registered under aer_mpi's name when this module loads).
"""

from aer_mpi._aer_modules import forward

forward(__name__, "qiskit_aer.noise", globals())
