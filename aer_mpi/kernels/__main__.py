"""``python -m aer_mpi.kernels``: build (or find) the native kernels now and say whether they are on.

Exit status 0 when they are on, 1 when they are off (the line says why). The same as ``python -m
aer_mpi.kernels.native``, without runpy's warning about running a module the package has imported.
"""

import sys

from aer_mpi.kernels.native import main

sys.exit(main())
