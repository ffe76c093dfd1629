/* Native (C, SIMD through GCC vector extensions) kernels for cache-blocked stages and bit
 * swaps, in double and single precision. Built and loaded by aer_mpi/kernels/native.py; the
 * numba kernels are the reference and the fallback, and give the same bits. */
#include <stdint.h>
#include <string.h>

typedef int64_t i64;
#define DESC_FIELDS 12
#define MAX_DIM 64
#define MAX_SMALL_DIM 16
#define PREFETCH_AHEAD 16

#define REAL double
#define IELEM int64_t
#define LOGL 2
#define SFX f64
#define SWAP_MASK {1, 0, 3, 2, 5, 4, 7, 6}
#define SIGNS {-1, 1, -1, 1, -1, 1, -1, 1}
#include "stage_impl.h"
#undef REAL
#undef IELEM
#undef LOGL
#undef SFX
#undef SWAP_MASK
#undef SIGNS

#define REAL float
#define IELEM int32_t
#define LOGL 3
#define SFX f32
#define SWAP_MASK {1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14}
#define SIGNS {-1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1}
#include "stage_impl.h"

int aer_mpi_native_abi(void) { return 1; }
