"""Getting a Qobj run on MPI ranks.

``execution`` runs a Qobj collectively and formats the Result;
``small_circuits`` runs a batch's small circuits whole, several ranks at a
time; ``pool`` (the user's side) and ``worker`` (the ranks' side) run jobs
on MPI worker processes started by ``AerMPISimulator(processes=P)``.
"""
