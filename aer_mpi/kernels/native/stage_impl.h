/* One precision of the native kernels; included by stage.c with REAL, IELEM, LOGL, SFX,
 * SWAP_MASK, SIGNS and the fused multiply-add names (FMA_SCALAR, M512/FMA512, M256/FMA256)
 * defined. A vector is VBYTES bytes: LANES = 2**LOGL complex amplitudes, interleaved (re, im),
 * consecutive in the state, so the vector's lanes are the index bits below LOGL.
 *
 * Bits: every amplitude is computed with exactly the scalar arithmetic of the numba kernels
 * (kernels/numba_backend.py, _cmul and _cmac): output r of a dense gate starts from column 0,
 * re = fma(-mi, ai, mr*ar), im = fma(mi, ar, mr*ai), and takes columns 1, 2, ... in order,
 * re = fma(-mi, ai, fma(mr, ar, re)), im = fma(mi, ar, fma(mr, ai, im)). Here that is
 * fma(mi', t, fma(mr, x, acc)) per lane with t = (ai, ar) and mi' = (-mi, mi): (-mi)*ai is
 * exactly mi*(-ai), and an fma rounds once whatever instruction or library computes it. The
 * file is compiled with -ffp-contract=off so the compiler fuses nothing else (the diagonal's
 * products stay rounded one by one, as numba's complex product). */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define VEC CAT(vec_, SFX)
#define IVEC CAT(ivec_, SFX)
#define FN(name) CAT(name, SFX)
#define NREAL (VBYTES / (int)sizeof(REAL))
#define LANES (NREAL / 2)

typedef REAL VEC __attribute__((vector_size(VBYTES)));
typedef IELEM IVEC __attribute__((vector_size(VBYTES)));

/* A lane permutation read from the int64 pool (per REAL of the vector, the REAL it reads). */
#define PERMV CAT(permv_, SFX)
#if defined(LANE_PERMUTE_AVX2)
typedef __m256i PERMV;
static inline PERMV FN(perm_make_)(const i64 *pp)
{
    int32_t index[8];
    for (int e = 0; e < NREAL; e++)
        for (int h = 0; h < (int)sizeof(REAL) / 4; h++)
            index[e * (int)sizeof(REAL) / 4 + h] = (int32_t)(pp[e] * (i64)sizeof(REAL) / 4 + h);
    PERMV v;
    memcpy(&v, index, sizeof v);
    return v;
}
static inline __attribute__((always_inline)) VEC FN(permute_)(VEC x, PERMV p)
{
    return (VEC)_mm256_permutevar8x32_ps((__m256)x, p);
}
#else
typedef IVEC PERMV;
static inline PERMV FN(perm_make_)(const i64 *pp)
{
    PERMV v;
    for (int e = 0; e < NREAL; e++) v[e] = (IELEM)pp[e];
    return v;
}
static inline __attribute__((always_inline)) VEC FN(permute_)(VEC x, PERMV p) { return __builtin_shuffle(x, p); }
#endif

static inline VEC FN(load_)(const REAL *p) { VEC v; memcpy(&v, p, VBYTES); return v; }

/* The first amplitude of group g: g's bits spread around the kout sorted out-of-vector bits qs
 * (each made 0), in vectors of 2**LOGL amplitudes. */
static inline __attribute__((always_inline)) i64 FN(group_start_)(i64 g, i64 kout, const i64 *qs)
{
    for (i64 j = 0; j < kout; j++) {
        const i64 low = ((i64)1 << qs[j]) - 1;
        g = ((g & ~low) << 1) | (g & low);
    }
    return g << LOGL;
}

/* How an in-vector gate's column reads its lanes. Each lane reads the amplitude whose in-vector
 * bits are the column's, so a column's vector repeats one piece of the input: on AVX2 a broadcast
 * load (no shuffle) or an in-lane duplicate serves it, where vpermps, a lane-crossing shuffle,
 * left single-precision gates on positions 0 or 1 at 2-2.3x the time of those above (AMD EPYC).
 * The modes (READ_*) are in stage.c, shared by both precisions.
 *
 * The read that serves column lanes pp (per REAL, the REAL it reads; lane 0's is the offset
 * "at"): READ_HALF, 16 bytes broadcast (the only case in double precision, whose one in-vector
 * bit is bit 0; in single precision bit 1 alone); READ_ONE, 8 bytes (one single-precision
 * amplitude) broadcast (bits 0 and 1); READ_PAIRS, each 16-byte half's first or second 8 bytes
 * twice (bit 0 alone, single precision); else READ_PERMUTE. */
static inline int FN(read_mode_)(const i64 *pp)
{
#if defined(LANE_PERMUTE_AVX2)
    int half = 1, one = 1, pairs = 1;
    const int per_half = 16 / (int)sizeof(REAL), per_amplitude = 2;
    for (int e = 0; e < NREAL; e++) {
        half &= pp[e] == pp[0] + e % per_half;
        one &= pp[e] == pp[0] + e % per_amplitude;
        pairs &= pp[e] == e / per_half * per_half + pp[0] % per_half + e % per_amplitude;
    }
    if (half && pp[0] % per_half == 0) return READ_HALF;
    if (!IS_F64 && one && pp[0] % per_amplitude == 0) return READ_ONE;
    if (!IS_F64 && pairs && pp[0] % per_amplitude == 0) return READ_PAIRS;
#endif
    (void)pp;
    return READ_PERMUTE;
}

/* The read of every column of an in-vector gate of dim columns (lanes at pp, NREAL per column):
 * their common mode, else READ_PERMUTE. */
static inline int FN(gate_read_mode_)(const i64 *pp, i64 dim)
{
    const int mode = FN(read_mode_)(pp);
    for (i64 c = 1; c < dim; c++)
        if (FN(read_mode_)(pp + c * NREAL) != mode) return READ_PERMUTE;
    return mode;
}

/* Column c's input of an in-vector gate, for the group at p: its vector (REAL offset from), lanes
 * read as mode says (read_mode_; at, the REAL offset lane 0 reads; perm, the permutation, or for
 * READ_PAIRS the in-lane selector). */
static inline __attribute__((always_inline)) VEC
FN(column_in_vector_)(const REAL *p, i64 from, i64 at, PERMV perm, int mode)
{
#if defined(LANE_PERMUTE_AVX2)
    if (mode == READ_HALF) return (VEC)_mm256_broadcast_pd((const __m128d *)(p + from + at));
    if (mode == READ_ONE) return (VEC)_mm256_broadcast_sd((const double *)(p + from + at));
    if (mode == READ_PAIRS) return (VEC)_mm256_permutevar_pd((__m256d)FN(load_)(p + from), perm);
#endif
    (void)at;
    (void)mode;
    return FN(permute_)(FN(load_)(p + from), perm);
}
static inline void FN(store_)(REAL *p, VEC v) { memcpy(p, &v, VBYTES); }

/* column c's coefficient of the output whose coefficients start at p: a vector of per-lane
 * values when the gate acts inside the vector (kin), else one value for every lane */
#define COEF(p, c) (kin ? FN(load_)((p) + (c) * NREAL) : FN(bcast_)((p)[c]))
static inline VEC FN(bcast_)(REAL x) { VEC v = {0}; return v + x; }

/* a * b + c per lane, rounded once */
static inline __attribute__((always_inline)) VEC FN(fma_)(VEC a, VEC b, VEC c)
{
#if defined(__AVX512F__)
    return (VEC)FMA512((M512)a, (M512)b, (M512)c);
#elif defined(__FMA__)
    return (VEC)FMA256((M256)a, (M256)b, (M256)c);
#else
    VEC r;
    for (int e = 0; e < NREAL; e++) r[e] = FMA_SCALAR(a[e], b[e], c[e]);
    return r;
#endif
}

static inline __attribute__((always_inline)) void
FN(dense_body_)(REAL *restrict st, i64 start, i64 size, const i64 *restrict d, const i64 *restrict ip,
                const REAL *restrict rp, const i64 dim)
{
    const i64 kout = d[1], kin = d[2];
    const i64 *qs = ip + d[4];     /* kout out-of-vector positions as vector-index bits, sorted */
    const i64 *voff = ip + d[5];   /* amplitude offset of each of the 2**kout vectors of a group */
    const i64 *src = ip + d[6];    /* the vector that column c reads */
    const i64 nout = (i64)1 << kout;
    const i64 groups = size >> (LOGL + kout);
    const IVEC swap = SWAP_MASK;
    const VEC sign = SIGNS;
    VEC x[MAX_DIM], s[MAX_DIM], t[MAX_DIM];
    PERMV perm[MAX_DIM];
    if (kin) {
        const i64 *pp = ip + d[7];  /* per column: the lane each lane reads, as REAL indices */
        for (i64 c = 0; c < dim; c++) perm[c] = FN(perm_make_)(pp + c * NREAL);
    }
    const REAL *cre = rp + d[8];
    const REAL *cim = cre + (kin ? nout * dim * NREAL : dim * dim);
    for (i64 g = 0; g < groups; g++) {
        const i64 base = start + FN(group_start_)(g, kout, qs);
        for (i64 o = 0; o < nout; o++) x[o] = FN(load_)(st + 2 * (base + voff[o]));
        for (i64 c = 0; c < dim; c++) {
            s[c] = kin ? FN(permute_)(x[src[c]], perm[c]) : x[src[c]];
            t[c] = __builtin_shuffle(s[c], swap) * sign;
        }
        /* Four outputs at a time: each output's sum is a chain of dependent fmas, so four
         * chains keep the adder busy, and each column's vectors are loaded once for four. */
        const i64 step = kin ? dim * NREAL : dim;  /* coefficients of one output */
        i64 o = 0;
        for (; o + 4 <= nout; o += 4) {
            const REAL *r = cre + o * step, *q = cim + o * step;
            VEC a0 = FN(fma_)(COEF(q, 0), t[0], COEF(r, 0) * s[0]);
            VEC a1 = FN(fma_)(COEF(q + step, 0), t[0], COEF(r + step, 0) * s[0]);
            VEC a2 = FN(fma_)(COEF(q + 2 * step, 0), t[0], COEF(r + 2 * step, 0) * s[0]);
            VEC a3 = FN(fma_)(COEF(q + 3 * step, 0), t[0], COEF(r + 3 * step, 0) * s[0]);
            for (i64 c = 1; c < dim; c++) {
                const VEC sc = s[c], tc = t[c];
                a0 = FN(fma_)(COEF(q, c), tc, FN(fma_)(COEF(r, c), sc, a0));
                a1 = FN(fma_)(COEF(q + step, c), tc, FN(fma_)(COEF(r + step, c), sc, a1));
                a2 = FN(fma_)(COEF(q + 2 * step, c), tc, FN(fma_)(COEF(r + 2 * step, c), sc, a2));
                a3 = FN(fma_)(COEF(q + 3 * step, c), tc, FN(fma_)(COEF(r + 3 * step, c), sc, a3));
            }
            FN(store_)(st + 2 * (base + voff[o]), a0);
            FN(store_)(st + 2 * (base + voff[o + 1]), a1);
            FN(store_)(st + 2 * (base + voff[o + 2]), a2);
            FN(store_)(st + 2 * (base + voff[o + 3]), a3);
        }
        for (; o < nout; o++) {
            const REAL *r = cre + o * step, *q = cim + o * step;
            VEC acc = FN(fma_)(COEF(q, 0), t[0], COEF(r, 0) * s[0]);
            for (i64 c = 1; c < dim; c++)
                acc = FN(fma_)(COEF(q, c), t[c], FN(fma_)(COEF(r, c), s[c], acc));
            FN(store_)(st + 2 * (base + voff[o]), acc);
        }
    }
}

/* An in-vector gate with nout = 2 or 4 output vectors per group: 8 / nout groups at a time,
 * so that 8 output chains run side by side (one group alone leaves the fma units waiting on
 * each chain's latency: a 3-qubit gate on positions 0-2 ran at half the rate of one above). The
 * groups' outputs are independent, so each output's fmas are the same, in the same order. */
static inline __attribute__((always_inline)) void
FN(dense_in_vector_groups_)(REAL *restrict st, i64 start, i64 groups, i64 kout, const i64 *restrict qs,
                            const VEC *mr, const VEC *mi, const PERMV *perm, const i64 *at, int mode,
                            const i64 *from, const i64 *off, const i64 dim, const i64 nout)
{
    enum { CHAINS = 8 };
    const i64 per = CHAINS / nout;
    const IVEC swap = SWAP_MASK;
    for (i64 g0 = 0; g0 < groups; g0 += per) {
        REAL *pu[CHAINS];
        for (i64 u = 0; u < per; u++) pu[u] = st + 2 * (start + FN(group_start_)(g0 + u, kout, qs));
        VEC a[CHAINS];
        for (i64 c = 0; c < dim; c++) {
#pragma GCC unroll 8
            for (i64 u = 0; u < per; u++) {
                const VEC sc = FN(column_in_vector_)(pu[u], from[c], at[c], perm[c], mode);
                const VEC tc = __builtin_shuffle(sc, swap);
#pragma GCC unroll 4
                for (i64 o = 0; o < nout; o++) {
                    VEC *acc = a + u * nout + o;
                    *acc = c ? FN(fma_)(mi[o * dim + c], tc, FN(fma_)(mr[o * dim + c], sc, *acc))
                             : FN(fma_)(mi[o * dim], tc, mr[o * dim] * sc);
                }
            }
        }
#pragma GCC unroll 8
        for (i64 u = 0; u < per; u++)
#pragma GCC unroll 4
            for (i64 o = 0; o < nout; o++) FN(store_)(pu[u] + off[o], a[u * nout + o]);
    }
}

/* A dense gate of at most MAX_SMALL_DIM columns: its coefficients (and, with kin, its lane
 * permutations) are loop invariants, loaded once; groups go by runs of 2**qs[0] consecutive
 * vectors that share one layout (all of them when kout == 0), so the index arithmetic is paid
 * once per run. Same fmas, in the same order, as dense_body_. */
static inline __attribute__((always_inline)) void
FN(dense_small_body_)(REAL *restrict st, i64 start, i64 size, const i64 *restrict d, const i64 *restrict ip,
                      const REAL *restrict rp, const i64 dim, const int kin, const int mode)
{
    const i64 kout = d[1];
    const i64 nout = kin ? (i64)1 << kout : dim;  /* a constant without kin */
    const i64 *qs = ip + d[4];
    const i64 *voff = ip + d[5];
    const i64 *src = ip + d[6];
    const REAL *cre = rp + d[8];
    const i64 step = kin ? dim * NREAL : dim;  /* coefficients of one output */
    const REAL *cim = cre + nout * step;
    const i64 groups = size >> (LOGL + kout);
    const i64 run = kout ? (i64)1 << qs[0] : groups;
    const IVEC swap = SWAP_MASK;
    const VEC sign = SIGNS;
    VEC mr[MAX_SMALL_DIM * MAX_SMALL_DIM], mi[MAX_SMALL_DIM * MAX_SMALL_DIM];
    PERMV perm[MAX_SMALL_DIM];
    i64 off[MAX_SMALL_DIM], from[MAX_SMALL_DIM];  /* REAL offsets of each output's and column's vector */
    for (i64 o = 0; o < nout; o++)
        for (i64 c = 0; c < dim; c++) {
            mr[o * dim + c] = COEF(cre + o * step, c);
            mi[o * dim + c] = COEF(cim + o * step, c) * sign;  /* (-mi, mi): t below has no sign */
        }
    i64 at[MAX_SMALL_DIM];  /* the REAL offset that lane 0 of column c reads */
    if (kin) {
        const i64 *pp = ip + d[7];
        for (i64 c = 0; c < dim; c++) {
            at[c] = pp[c * NREAL];
#if defined(LANE_PERMUTE_AVX2)
            if (mode == READ_PAIRS) {  /* vpermilpd's selector: bit 1 of each element picks */
                perm[c] = _mm256_set1_epi64x(at[c] % 4 ? 2 : 0);
                continue;
            }
#endif
            perm[c] = FN(perm_make_)(pp + c * NREAL);
        }
    }
    for (i64 o = 0; o < nout; o++) off[o] = 2 * voff[o];
    for (i64 c = 0; c < dim; c++) from[c] = 2 * voff[src[c]];
    /* (one output per group, as a 1-qubit gate inside the vector: the loop below overlaps its
     * short chains well enough, and gathering 8 groups cost more than it saved) */
    if (HARDWARE_FMA && kin && nout >= 2 && nout < 8 && groups % (8 / nout) == 0) {
        switch (nout) {  /* a constant count of outputs keeps the 8 accumulators in registers */
        case 2: FN(dense_in_vector_groups_)(st, start, groups, kout, qs, mr, mi, perm, at, mode, from, off, dim, 2); return;
        case 4: FN(dense_in_vector_groups_)(st, start, groups, kout, qs, mr, mi, perm, at, mode, from, off, dim, 4); return;
        default: break;
        }
    }
    for (i64 g = 0; g < groups; g += run) {
        REAL *p = st + 2 * (start + FN(group_start_)(g, kout, qs));
        for (i64 v = 0; v < run; v++, p += NREAL) {
            /* With kin, column c reads its vector straight from the state (in L1): a copy of the
             * group's vectors indexed at run time would live on the stack, stored and reloaded
             * every iteration (0.87-0.92x the time with that copy; the rest of the in-vector gates'
             * gap was the lane permutation, a broadcast load in column_in_vector_, and their short
             * fma chains, dense_in_vector_groups_) */
            VEC s[MAX_SMALL_DIM], t[MAX_SMALL_DIM];
            for (i64 c = 0; c < dim; c++) {
                s[c] = kin ? FN(column_in_vector_)(p, from[c], at[c], perm[c], mode) : FN(load_)(p + off[c]);
                t[c] = __builtin_shuffle(s[c], swap);
            }
            /* Eight outputs at a time, then four: an output is a chain of 2*dim dependent fmas;
             * two fma units with a latency of 4 cycles need 8 chains side by side to stay busy
             * (4 chains left a 4-qubit gate at half the fma rate), and 8 accumulators with a
             * column's two vectors still fit 16 registers. */
            i64 o = 0;
            for (; HARDWARE_FMA && o + 8 <= nout; o += 8) {
                const VEC *r0 = mr + o * dim, *q0 = mi + o * dim;
                VEC a[8];
#pragma GCC unroll 8
                for (int u = 0; u < 8; u++) a[u] = FN(fma_)(q0[u * dim], t[0], r0[u * dim] * s[0]);
                for (i64 c = 1; c < dim; c++) {
                    const VEC sc = s[c], tc = t[c];
#pragma GCC unroll 8
                    for (int u = 0; u < 8; u++)
                        a[u] = FN(fma_)(q0[u * dim + c], tc, FN(fma_)(r0[u * dim + c], sc, a[u]));
                }
#pragma GCC unroll 8
                for (int u = 0; u < 8; u++) FN(store_)(p + off[o + u], a[u]);
            }
            for (; o + 4 <= nout; o += 4) {
                const VEC *r0 = mr + o * dim, *q0 = mi + o * dim;
                VEC a0 = FN(fma_)(q0[0], t[0], r0[0] * s[0]);
                VEC a1 = FN(fma_)(q0[dim], t[0], r0[dim] * s[0]);
                VEC a2 = FN(fma_)(q0[2 * dim], t[0], r0[2 * dim] * s[0]);
                VEC a3 = FN(fma_)(q0[3 * dim], t[0], r0[3 * dim] * s[0]);
                for (i64 c = 1; c < dim; c++) {
                    a0 = FN(fma_)(q0[c], t[c], FN(fma_)(r0[c], s[c], a0));
                    a1 = FN(fma_)(q0[dim + c], t[c], FN(fma_)(r0[dim + c], s[c], a1));
                    a2 = FN(fma_)(q0[2 * dim + c], t[c], FN(fma_)(r0[2 * dim + c], s[c], a2));
                    a3 = FN(fma_)(q0[3 * dim + c], t[c], FN(fma_)(r0[3 * dim + c], s[c], a3));
                }
                FN(store_)(p + off[o], a0);
                FN(store_)(p + off[o + 1], a1);
                FN(store_)(p + off[o + 2], a2);
                FN(store_)(p + off[o + 3], a3);
            }
            for (; o < nout; o++) {
                VEC acc = FN(fma_)(mi[o * dim], t[0], mr[o * dim] * s[0]);
                for (i64 c = 1; c < dim; c++)
                    acc = FN(fma_)(mi[o * dim + c], t[c], FN(fma_)(mr[o * dim + c], s[c], acc));
                FN(store_)(p + off[o], acc);
            }
        }
    }
}

/* The in-vector copies, one function per width and columns' read (gate_read_mode_), each with
 * those as constants: inlined into dense_ with the out-of-vector copies, they made one function
 * too large for GCC to allocate registers well (3-qubit gates on position 0 went from 2.0 to 2.9
 * ns per amplitude); the out-of-vector copies stay inlined there, where they ran fastest. */
#define SMALL_COPY(name, dim, kin, mode)                                                                       \
    static __attribute__((noinline)) void FN(name)(REAL *restrict st, i64 start, i64 size, const i64 *restrict d, \
                                                   const i64 *restrict ip, const REAL *restrict rp)          \
    {                                                                                                         \
        FN(dense_small_body_)(st, start, size, d, ip, rp, dim, kin, mode);                                    \
    }
/* The reads each build has copies for: READ_ONE and READ_PAIRS only in single precision on AVX2
 * (read_mode_ never gives them otherwise). */
#if defined(LANE_PERMUTE_AVX2) && !IS_F64
#define SMALL_COPIES(dim)                                         \
    SMALL_COPY(CAT(small_permute_, dim), dim, 1, READ_PERMUTE)   \
    SMALL_COPY(CAT(small_half_, dim), dim, 1, READ_HALF)         \
    SMALL_COPY(CAT(small_one_, dim), dim, 1, READ_ONE)           \
    SMALL_COPY(CAT(small_pairs_, dim), dim, 1, READ_PAIRS)
#define SINGLE_READ_CASES(dim)                                                          \
        case READ_ONE: FN(CAT(small_one_, dim))(st, start, size, d, ip, rp); return;     \
        case READ_PAIRS: FN(CAT(small_pairs_, dim))(st, start, size, d, ip, rp); return;
#elif defined(LANE_PERMUTE_AVX2)
#define SMALL_COPIES(dim)                                         \
    SMALL_COPY(CAT(small_permute_, dim), dim, 1, READ_PERMUTE)   \
    SMALL_COPY(CAT(small_half_, dim), dim, 1, READ_HALF)
#define SINGLE_READ_CASES(dim)
#else
#define SMALL_COPIES(dim) SMALL_COPY(CAT(small_permute_, dim), dim, 1, READ_PERMUTE)
#endif
SMALL_COPIES(2)
SMALL_COPIES(4)
SMALL_COPIES(8)
SMALL_COPIES(16)
#undef SMALL_COPIES
#undef SMALL_COPY

/* The copy for an in-vector gate of dim columns, by its columns' read. */
#if defined(LANE_PERMUTE_AVX2)
#define IN_VECTOR_CASE(dim)                                                               \
    case dim:                                                                             \
        switch (FN(gate_read_mode_)(ip + d[7], dim)) {                                    \
        case READ_HALF: FN(CAT(small_half_, dim))(st, start, size, d, ip, rp); return;   \
        SINGLE_READ_CASES(dim)                                                            \
        default: break;                                                                   \
        }                                                                                 \
        FN(CAT(small_permute_, dim))(st, start, size, d, ip, rp);                         \
        return;
#else
#define IN_VECTOR_CASE(dim) case dim: FN(CAT(small_permute_, dim))(st, start, size, d, ip, rp); return;
#endif

/* One copy of the dense kernel per width, so that its loops over columns have a constant count:
 * small gates then keep their vectors in registers. */
static void FN(dense_)(REAL *restrict st, i64 start, i64 size, const i64 *restrict d, const i64 *restrict ip,
                       const REAL *restrict rp)
{
    if (d[2]) {
        switch (d[3]) {
        IN_VECTOR_CASE(2)
        IN_VECTOR_CASE(4)
        IN_VECTOR_CASE(8)
        IN_VECTOR_CASE(16)
        default: break;
        }
    } else {
        switch (d[3]) {
        case 2: FN(dense_small_body_)(st, start, size, d, ip, rp, 2, 0, READ_PERMUTE); return;
        case 4: FN(dense_small_body_)(st, start, size, d, ip, rp, 4, 0, READ_PERMUTE); return;
        case 8: FN(dense_small_body_)(st, start, size, d, ip, rp, 8, 0, READ_PERMUTE); return;
        case 16: FN(dense_small_body_)(st, start, size, d, ip, rp, 16, 0, READ_PERMUTE); return;
        default: break;
        }
    }
    switch (d[3]) {
    case 2: FN(dense_body_)(st, start, size, d, ip, rp, 2); break;
    case 4: FN(dense_body_)(st, start, size, d, ip, rp, 4); break;
    case 8: FN(dense_body_)(st, start, size, d, ip, rp, 8); break;
    case 16: FN(dense_body_)(st, start, size, d, ip, rp, 16); break;
    case 32: FN(dense_body_)(st, start, size, d, ip, rp, 32); break;
    default: FN(dense_body_)(st, start, size, d, ip, rp, d[3]); break;
    }
}

static void FN(diagonal_)(REAL *restrict st, i64 start, i64 size, const i64 *restrict d, const i64 *restrict ip,
                          const REAL *restrict rp)
{
    const i64 ntables = d[9];
    const i64 *tab = ip + d[10];    /* ntables x 256: diagonal-index bits carried by byte t */
    const REAL *dg = rp + d[11];    /* the diagonal, interleaved */
    if (size < 256) {
        for (i64 i = start; i < start + size; i++) {
            i64 idx = 0;
            for (i64 t = 0; t < ntables; t++) idx |= tab[t * 256 + ((i >> (8 * t)) & 255)];
            const REAL ar = st[2 * i], ai = st[2 * i + 1], dr = dg[2 * idx], di = dg[2 * idx + 1];
            st[2 * i] = ar * dr - ai * di;
            st[2 * i + 1] = ar * di + ai * dr;
        }
        return;
    }
    /* A vector at a time: its lanes' entries gathered into (dr, di) pairs, then
     * x * (dr, dr) + (swapped x * (di, di)) * (-1, 1): per lane the scalar products above, each
     * rounded alone, and the same sums (a + b is b + a, a - b is a + (-b), bit for bit). */
    const IVEC swap = SWAP_MASK, real_mask = REAL_MASK, imag_mask = IMAG_MASK;
    const VEC sign = SIGNS;
    for (i64 run = start >> 8; run < (start + size) >> 8; run++) {
        i64 high = 0;
        for (i64 t = 1; t < ntables; t++) high |= tab[t * 256 + ((run >> (8 * (t - 1))) & 255)];
        REAL *a = st + 2 * (run << 8);
        for (i64 j = 0; j < 256; j += LANES) {
            VEC entries;
#pragma GCC unroll 16
            for (int l = 0; l < LANES; l++) {
                const REAL *e = dg + 2 * (high | tab[j + l]);
                entries[2 * l] = e[0];
                entries[2 * l + 1] = e[1];
            }
            const VEC x = FN(load_)(a + 2 * j);
            const VEC dr = __builtin_shuffle(entries, real_mask), di = __builtin_shuffle(entries, imag_mask);
            FN(store_)(a + 2 * j, x * dr + (__builtin_shuffle(x, swap) * di) * sign);
        }
    }
}

/* Every gate of a stage on chunks [first, last) of 2**chunk_qubits amplitudes; each gate's
 * record is DESC_FIELDS int64 of desc (kind first: 0 dense, 1 diagonal). */
void FN(aer_mpi_stage_)(REAL *st, i64 chunk_qubits, i64 first, i64 last, i64 ngates,
                        const i64 *desc, const i64 *ip, const REAL *rp)
{
    const i64 size = (i64)1 << chunk_qubits;
    for (i64 chunk = first; chunk < last; chunk++)
        for (i64 g = 0; g < ngates; g++) {
            const i64 *d = desc + g * DESC_FIELDS;
            if (d[0] == 0) FN(dense_)(st, chunk * size, size, d, ip, rp);
            else FN(diagonal_)(st, chunk * size, size, d, ip, rp);
        }
}

/* Exchange index bits in tiles: tile t is the amplitudes whose free bits (the bits above
 * run_bits that no pair involves, free[0] < free[1] < ...) spell t; inside a tile, run
 * offs_a[p] (2**run_bits amplitudes) trades places with run offs_b[p]. A tile spans the
 * exchanged bits only, so when those include the lowest bits, the cache lines it shares
 * between runs are read and written once, while in cache, not once per run. The
 * ``spread_bits`` free bits just above run_bits (below the second exchanged bit) are not in
 * free[]: each run pair is exchanged at all their 2**spread_bits values in the inner loop, so
 * a low exchanged bit (runs of 8 amplitudes, one cache line) does not pay a tile's overhead
 * per run. Work items [first, last) number (tile, run pair) as t * nruns + p, so that threads
 * share the work even when the pairs leave few tiles (one, when every bit above run_bits is
 * exchanged). */
void FN(aer_mpi_swap_tiles_)(REAL *st, i64 run_bits, i64 spread_bits, i64 nruns, const i64 *offs_a,
                             const i64 *offs_b, i64 nfree, const i64 *free, i64 first, i64 last)
{
    const i64 reals = (i64)2 << run_bits;
    const i64 spread = (i64)1 << spread_bits;
    const i64 stride = (i64)4 << run_bits;  /* reals from one spread value to the next */
    if (first >= last) return;
    i64 mask = 0;  /* the free bits: the tile after ``base`` is ((base | ~mask) + 1) & mask */
    for (i64 f = 0; f < nfree; f++) mask |= (i64)1 << free[f];
    i64 t = first / nruns;
    i64 p0 = first - t * nruns;
    i64 base = 0;
    for (i64 f = 0; f < nfree; f++) base |= ((t >> f) & 1) << free[f];
    i64 item = first;
    while (item < last) {
        const i64 p1 = (last - t * nruns) < nruns ? last - t * nruns : nruns;
        for (i64 p = p0; p < p1; p++) {
            if (p + PREFETCH_AHEAD < p1) {  /* the runs are scattered: no hardware prefetcher finds them */
                __builtin_prefetch(st + 2 * (base + offs_a[p + PREFETCH_AHEAD]), 1);
                __builtin_prefetch(st + 2 * (base + offs_b[p + PREFETCH_AHEAD]), 1);
            }
            REAL *a = st + 2 * (base + offs_a[p]), *b = st + 2 * (base + offs_b[p]);
            for (i64 s = 0; s < spread; s++, a += stride, b += stride) {
                for (i64 e = 0; e < reals; e++) {
                    const REAL keep = a[e];
                    a[e] = b[e];
                    b[e] = keep;
                }
            }
        }
        item = t * nruns + p1;
        t++;
        p0 = 0;
        /* the next tile's base in O(1): with few runs per tile (low bits exchanged) depositing
         * t's bits one free bit at a time cost more than the exchange itself */
        base = ((base | ~mask) + 1) & mask;
    }
}

#undef IN_VECTOR_CASE
#undef SINGLE_READ_CASES
#undef VEC
#undef IVEC
#undef PERMV
#undef FN
#undef NREAL
#undef LANES
#undef COEF
