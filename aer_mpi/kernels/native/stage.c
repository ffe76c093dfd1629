/* Native (C, SIMD through GCC vector extensions) kernels for cache-blocked stages and bit
 * swaps, in double and single precision. Built and loaded by aer_mpi/kernels/native.py; the
 * numba kernels are the reference and the fallback, and give the same bits. Fused
 * multiply-adds are written out (FMA512, FMA256 or FMA_SCALAR, one rounding each, as IEEE
 * defines it, so every form gives the same bits); the compiler fuses nothing itself. */
#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

typedef int64_t i64;
#define DESC_FIELDS 12
#define MAX_DIM 64
#define MAX_SMALL_DIM 16
#define PREFETCH_AHEAD 16
/* How an in-vector gate's columns read their lanes (stage_impl.h, read_mode_). */
enum { READ_PERMUTE = 0, READ_HALF = 1, READ_ONE = 2, READ_PAIRS = 3 };
/* One vector: a 512-bit register with AVX-512, else 256 bits (two AVX2 registers, or two NEON or
 * SSE ones): a wider vector than the registers leaves GCC too few of them for a 3-4 qubit gate. */
#if defined(__AVX512F__)
#define VBYTES 64
#else
#define VBYTES 32
#endif
/* Fused multiply-adds as instructions. Without them (a baseline x86-64 build, never used: see
 * aer_mpi_native_hardware_fma) each fma is a libm call, and the 8-chain variants below only
 * multiply the build's time (20 s -> 44 s here), so such a build leaves them out. */
#if defined(__AVX512F__) || defined(__FMA__) || defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
#define HARDWARE_FMA 1
#else
#define HARDWARE_FMA 0
#endif
/* AVX2 has no variable lane permutation of doubles, and GCC spells a __builtin_shuffle with a
 * run-time mask as element by element moves (a 1-qubit gate on position 0 ran 7x slower than
 * on position 5, on an AMD EPYC): vpermps moves 32-bit pieces, so it permutes doubles too. */
#if !defined(__AVX512F__) && defined(__AVX2__)
#define LANE_PERMUTE_AVX2 1
#endif

#define REAL double
#define IS_F64 1
#define IELEM int64_t
#define SFX f64
#if VBYTES == 64
#define LOGL 2
#define SWAP_MASK {1, 0, 3, 2, 5, 4, 7, 6}
#define REAL_MASK {0, 0, 2, 2, 4, 4, 6, 6}
#define IMAG_MASK {1, 1, 3, 3, 5, 5, 7, 7}
#define SIGNS {-1, 1, -1, 1, -1, 1, -1, 1}
#else
#define LOGL 1
#define SWAP_MASK {1, 0, 3, 2}
#define REAL_MASK {0, 0, 2, 2}
#define IMAG_MASK {1, 1, 3, 3}
#define SIGNS {-1, 1, -1, 1}
#endif
#define FMA_SCALAR __builtin_fma
#define M512 __m512d
#define FMA512 _mm512_fmadd_pd
#define M256 __m256d
#define FMA256 _mm256_fmadd_pd
#include "stage_impl.h"
#undef REAL
#undef IS_F64
#undef IELEM
#undef LOGL
#undef SFX
#undef SWAP_MASK
#undef REAL_MASK
#undef IMAG_MASK
#undef SIGNS
#undef FMA_SCALAR
#undef M512
#undef FMA512
#undef M256
#undef FMA256

#define REAL float
#define IS_F64 0
#define IELEM int32_t
#define SFX f32
#if VBYTES == 64
#define LOGL 3
#define SWAP_MASK {1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14}
#define REAL_MASK {0, 0, 2, 2, 4, 4, 6, 6, 8, 8, 10, 10, 12, 12, 14, 14}
#define IMAG_MASK {1, 1, 3, 3, 5, 5, 7, 7, 9, 9, 11, 11, 13, 13, 15, 15}
#define SIGNS {-1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1}
#else
#define LOGL 2
#define SWAP_MASK {1, 0, 3, 2, 5, 4, 7, 6}
#define REAL_MASK {0, 0, 2, 2, 4, 4, 6, 6}
#define IMAG_MASK {1, 1, 3, 3, 5, 5, 7, 7}
#define SIGNS {-1, 1, -1, 1, -1, 1, -1, 1}
#endif
#define FMA_SCALAR __builtin_fmaf
#define M512 __m512
#define FMA512 _mm512_fmadd_ps
#define M256 __m256
#define FMA256 _mm256_fmadd_ps
#include "stage_impl.h"

int aer_mpi_native_abi(void) { return 3; }

/* Bytes in one vector: native.py lays out lane permutations for it. */
int aer_mpi_native_vector_bytes(void) { return VBYTES; }

/* 1 when the fused multiply-adds are instructions; 0 when each is a call to libm's fma (a build
 * without -march=native on x86-64), which is exact but too slow to be worth running. */
int aer_mpi_native_hardware_fma(void)
{
#if HARDWARE_FMA
    return 1;
#else
    return 0;
#endif
}
