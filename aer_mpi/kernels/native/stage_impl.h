/* One precision of the native kernels; included by stage.c with REAL, IELEM, LOGL, SFX,
 * SWAP_MASK and SIGNS defined. A vector is 64 bytes: LANES = 2**LOGL complex amplitudes,
 * interleaved (re, im), consecutive in the state, so the vector's lanes are the index bits
 * below LOGL.
 *
 * Bits: every amplitude is computed with exactly the scalar arithmetic of the numba kernels
 * (kernels/numba_backend.py): a product matrix[r, c] * a[c] is (mr*ar - mi*ai, mr*ai + mi*ar),
 * each product rounded, and the output is the sum over c in increasing order. Here that is
 * mr*x + mi*(-ai, ar) per lane: -(mi*ai) is exactly mi*(-ai), and x + (-y) is x - y. The file
 * is compiled with -ffp-contract=off so the compiler fuses no multiply into an add. */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define VEC CAT(vec_, SFX)
#define IVEC CAT(ivec_, SFX)
#define FN(name) CAT(name, SFX)
#define NREAL (64 / (int)sizeof(REAL))
#define LANES (NREAL / 2)

typedef REAL VEC __attribute__((vector_size(64)));
typedef IELEM IVEC __attribute__((vector_size(64)));

static inline VEC FN(load_)(const REAL *p) { VEC v; memcpy(&v, p, 64); return v; }
static inline void FN(store_)(REAL *p, VEC v) { memcpy(p, &v, 64); }

/* column c's coefficient of the output whose coefficients start at p: a vector of per-lane
 * values when the gate acts inside the vector (kin), else one value for every lane */
#define COEF(p, c) (kin ? FN(load_)((p) + (c) * NREAL) : FN(bcast_)((p)[c]))
static inline VEC FN(bcast_)(REAL x) { VEC v = {0}; return v + x; }

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
    IVEC perm[MAX_DIM];
    if (kin) {
        const i64 *pp = ip + d[7];  /* per column: the lane each lane reads, as REAL indices */
        for (i64 c = 0; c < dim; c++)
            for (int e = 0; e < NREAL; e++) perm[c][e] = (IELEM)pp[c * NREAL + e];
    }
    const REAL *cre = rp + d[8];
    const REAL *cim = cre + (kin ? nout * dim * NREAL : dim * dim);
    for (i64 g = 0; g < groups; g++) {
        i64 vb = g;
        for (i64 j = 0; j < kout; j++) {
            const i64 low = ((i64)1 << qs[j]) - 1;
            vb = ((vb & ~low) << 1) | (vb & low);
        }
        const i64 base = start + (vb << LOGL);
        for (i64 o = 0; o < nout; o++) x[o] = FN(load_)(st + 2 * (base + voff[o]));
        for (i64 c = 0; c < dim; c++) {
            s[c] = kin ? __builtin_shuffle(x[src[c]], perm[c]) : x[src[c]];
            t[c] = __builtin_shuffle(s[c], swap) * sign;
        }
        /* Four outputs at a time: each output's sum is a chain of dependent adds, so four
         * chains keep the adder busy, and each column's vectors are loaded once for four. */
        const i64 step = kin ? dim * NREAL : dim;  /* coefficients of one output */
        i64 o = 0;
        for (; o + 4 <= nout; o += 4) {
            const REAL *r = cre + o * step, *q = cim + o * step;
            VEC a0 = COEF(r, 0) * s[0] + COEF(q, 0) * t[0];
            VEC a1 = COEF(r + step, 0) * s[0] + COEF(q + step, 0) * t[0];
            VEC a2 = COEF(r + 2 * step, 0) * s[0] + COEF(q + 2 * step, 0) * t[0];
            VEC a3 = COEF(r + 3 * step, 0) * s[0] + COEF(q + 3 * step, 0) * t[0];
            for (i64 c = 1; c < dim; c++) {
                const VEC sc = s[c], tc = t[c];
                const VEC e0 = COEF(r, c) * sc + COEF(q, c) * tc;
                const VEC e1 = COEF(r + step, c) * sc + COEF(q + step, c) * tc;
                const VEC e2 = COEF(r + 2 * step, c) * sc + COEF(q + 2 * step, c) * tc;
                const VEC e3 = COEF(r + 3 * step, c) * sc + COEF(q + 3 * step, c) * tc;
                a0 = a0 + e0;
                a1 = a1 + e1;
                a2 = a2 + e2;
                a3 = a3 + e3;
            }
            FN(store_)(st + 2 * (base + voff[o]), a0);
            FN(store_)(st + 2 * (base + voff[o + 1]), a1);
            FN(store_)(st + 2 * (base + voff[o + 2]), a2);
            FN(store_)(st + 2 * (base + voff[o + 3]), a3);
        }
        for (; o < nout; o++) {
            const REAL *r = cre + o * step, *q = cim + o * step;
            VEC acc = COEF(r, 0) * s[0] + COEF(q, 0) * t[0];
            for (i64 c = 1; c < dim; c++) {
                const VEC term = COEF(r, c) * s[c] + COEF(q, c) * t[c];
                acc = acc + term;
            }
            FN(store_)(st + 2 * (base + voff[o]), acc);
        }
    }
}

/* A dense gate of at most MAX_SMALL_DIM columns: its coefficients (and, with kin, its lane
 * permutations) are loop invariants, loaded once; groups go by runs of 2**qs[0] consecutive
 * vectors that share one layout (all of them when kout == 0), so the index arithmetic is paid
 * once per run. Same products and sums, in the same order, as dense_body_. */
static inline __attribute__((always_inline)) void
FN(dense_small_body_)(REAL *restrict st, i64 start, i64 size, const i64 *restrict d, const i64 *restrict ip,
                      const REAL *restrict rp, const i64 dim, const int kin)
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
    IVEC perm[MAX_SMALL_DIM];
    i64 off[MAX_SMALL_DIM], from[MAX_SMALL_DIM];
    for (i64 o = 0; o < nout; o++)
        for (i64 c = 0; c < dim; c++) {
            mr[o * dim + c] = COEF(cre + o * step, c);
            mi[o * dim + c] = COEF(cim + o * step, c);
        }
    if (kin) {
        const i64 *pp = ip + d[7];
        for (i64 c = 0; c < dim; c++)
            for (int e = 0; e < NREAL; e++) perm[c][e] = (IELEM)pp[c * NREAL + e];
    }
    for (i64 o = 0; o < nout; o++) off[o] = 2 * voff[o];
    for (i64 c = 0; c < dim; c++) from[c] = src[c];
    for (i64 g = 0; g < groups; g += run) {
        i64 vb = g;
        for (i64 j = 0; j < kout; j++) {
            const i64 low = ((i64)1 << qs[j]) - 1;
            vb = ((vb & ~low) << 1) | (vb & low);
        }
        REAL *p = st + 2 * (start + (vb << LOGL));
        for (i64 v = 0; v < run; v++, p += NREAL) {
            VEC x[MAX_SMALL_DIM], s[MAX_SMALL_DIM], t[MAX_SMALL_DIM];
            for (i64 o = 0; o < nout; o++) x[o] = FN(load_)(p + off[o]);
            for (i64 c = 0; c < dim; c++) {
                s[c] = kin ? __builtin_shuffle(kout ? x[from[c]] : x[0], perm[c]) : x[c];
                t[c] = __builtin_shuffle(s[c], swap) * sign;
            }
            for (i64 o = 0; o < nout; o++) {
                VEC acc = mr[o * dim] * s[0] + mi[o * dim] * t[0];
                for (i64 c = 1; c < dim; c++) {
                    const VEC term = mr[o * dim + c] * s[c] + mi[o * dim + c] * t[c];
                    acc = acc + term;
                }
                FN(store_)(p + off[o], acc);
            }
        }
    }
}

/* One copy of the dense kernel per width, so that its loops over columns have a constant count:
 * small gates then keep their vectors in registers. */
static void FN(dense_)(REAL *restrict st, i64 start, i64 size, const i64 *restrict d, const i64 *restrict ip,
                       const REAL *restrict rp)
{
    const int kin = d[2] != 0;
    switch (d[3] * 2 + kin) {
    case 4: FN(dense_small_body_)(st, start, size, d, ip, rp, 2, 0); return;
    case 5: FN(dense_small_body_)(st, start, size, d, ip, rp, 2, 1); return;
    case 8: FN(dense_small_body_)(st, start, size, d, ip, rp, 4, 0); return;
    case 9: FN(dense_small_body_)(st, start, size, d, ip, rp, 4, 1); return;
    case 16: FN(dense_small_body_)(st, start, size, d, ip, rp, 8, 0); return;
    case 17: FN(dense_small_body_)(st, start, size, d, ip, rp, 8, 1); return;
    case 32: FN(dense_small_body_)(st, start, size, d, ip, rp, 16, 0); return;
    case 33: FN(dense_small_body_)(st, start, size, d, ip, rp, 16, 1); return;
    default: break;
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
    for (i64 run = start >> 8; run < (start + size) >> 8; run++) {
        i64 high = 0;
        for (i64 t = 1; t < ntables; t++) high |= tab[t * 256 + ((run >> (8 * (t - 1))) & 255)];
        REAL *a = st + 2 * (run << 8);
        for (i64 j = 0; j < 256; j++) {
            const i64 idx = high | tab[j];
            const REAL ar = a[2 * j], ai = a[2 * j + 1], dr = dg[2 * idx], di = dg[2 * idx + 1];
            a[2 * j] = ar * dr - ai * di;
            a[2 * j + 1] = ar * di + ai * dr;
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
 * between runs are read and written once, while in cache, not once per run. Work items
 * [first, last) number (tile, run pair) as t * nruns + p, so that threads share the work
 * even when the pairs leave few tiles (one, when every bit above run_bits is exchanged). */
void FN(aer_mpi_swap_tiles_)(REAL *st, i64 run_bits, i64 nruns, const i64 *offs_a, const i64 *offs_b,
                             i64 nfree, const i64 *free, i64 first, i64 last)
{
    const i64 reals = (i64)2 << run_bits;
    i64 item = first;
    while (item < last) {
        const i64 t = item / nruns;
        const i64 p0 = item - t * nruns;
        const i64 p1 = (last - t * nruns) < nruns ? last - t * nruns : nruns;
        i64 base = 0;
        for (i64 f = 0; f < nfree; f++) base |= ((t >> f) & 1) << free[f];
        for (i64 p = p0; p < p1; p++) {
            if (p + PREFETCH_AHEAD < p1) {  /* the runs are scattered: no hardware prefetcher finds them */
                __builtin_prefetch(st + 2 * (base + offs_a[p + PREFETCH_AHEAD]), 1);
                __builtin_prefetch(st + 2 * (base + offs_b[p + PREFETCH_AHEAD]), 1);
            }
            REAL *a = st + 2 * (base + offs_a[p]), *b = st + 2 * (base + offs_b[p]);
            for (i64 e = 0; e < reals; e++) {
                const REAL keep = a[e];
                a[e] = b[e];
                b[e] = keep;
            }
        }
        item = t * nruns + p1;
    }
}

#undef VEC
#undef IVEC
#undef FN
#undef NREAL
#undef LANES
#undef COEF
