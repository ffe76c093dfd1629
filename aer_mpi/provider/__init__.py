"""The Qiskit face: ``AerMPISimulator`` (a BackendV2), ``AerJob`` and progress reporting."""
