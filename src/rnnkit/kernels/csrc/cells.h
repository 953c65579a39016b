/*
 * Fused Elman / GRU / LSTM kernels, written once and instantiated for float and double by
 * rnnkit.cpp (which defines REAL, SUF, IS_FLOAT, SIGM, TANH before including). Compiled as C++:
 * the batch split runs on ATen's thread pool (rk_parallel) and GEMMs go through ATen's CPU BLAS
 * (rk_blas), so whichever BLAS and threading library torch was built with is the one used.
 *
 * Internal layout is time-major: X (T, B, D), gate buffers (T, B, G*H), states (T+1, B, H),
 * so one time step is a contiguous block of B rows and every GEMM is a plain strided matrix.
 * The public output `out` is batch-first (B, T, H).
 *
 * Each kernel takes `const int64_t *a`, its pointers and sizes packed by the operator wrappers
 * in rnnkit.cpp (or the streamer's argument table), unpacked with ARG(i, type); a null pointer
 * means "absent".
 */

#ifndef RK_SMALL_GEMM_DEFINED
#define RK_SMALL_GEMM_DEFINED
/* ---- the per-step product for a small float W_hh: C (M, N) (+)= A (M, K) Bp (K, N) --------
 *
 * At (B, T, H) = (32, 100, 64) a step's GEMM is 32 x 64 x 64, and MKL (packed or not) spent
 * ~3.4 us on it, about 4x its FMA time: its per-call checks, dispatch and copies cost more than
 * the arithmetic (perf: the step GEMMs were a quarter of an Elman training step, 7x the time
 * per flop of the input projection). This one is a register tile, 4 rows x up to 64 columns
 * (16 accumulators), over an op(W) packed once per call as K rows of ldp floats (N rounded up
 * to 16, zero padded; 16 KB at H = 64, resident in L1 across the steps). AVX-512 only, chosen
 * at run time; elsewhere, and for a W past rk_small_bytes, MKL runs. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RK_SMALL_AVX512 1 /* the intrinsics: rnnkit.cpp includes <immintrin.h> on x86-64 */
#else
#define RK_SMALL_AVX512 0
#endif

/* op(W) bytes up to which the tile kernel runs (0: never; small_configure sets it for tests
 * and benchmarks). 48 KB, an L1d here: an Elman up to H = 108, a GRU up to H = 64. The LSTM at
 * H = 64 (64 KB) measured 0.95-1.02x with the tile kernel against MKL (one thread, in-process
 * A/B, session 6): no gain, so it keeps MKL; so did the Elman at H = 128 (0.97x). The LSTM
 * forward's step is the fused tile below (rk_lstm_step) where it runs; this covers the rest. */
size_t rk_small_bytes = (size_t)48 << 10;

/* Whether a (K, N) op(W) is small enough for the tile kernel on this CPU. */
static int rk_small_fits(int N, int K) {
#if RK_SMALL_AVX512
    static const int avx512 = __builtin_cpu_supports("avx512f");
    size_t bytes = (size_t)K * ((N + 15) / 16 * 16) * sizeof(float);
    return avx512 && N > 0 && K > 0 && bytes <= rk_small_bytes;
#else
    (void)N; (void)K;
    return 0;
#endif
}

/* op(W) as K rows of ldp floats: W (N, K) transposed (trans) or W (K, N) as is, a block of the
 * kernels' cache (pool.h; rk_give(Bp, rk_small_bytes_of(K, ldp))). */
static size_t rk_small_bytes_of(int K, int ldp) { return (size_t)K * ldp * sizeof(float); }
static float *rk_small_pack(const float *W, int ld, int trans, int N, int K, int ldp) {
    float *Bp = (float *)rk_take(rk_small_bytes_of(K, ldp));
    if (!Bp) return NULL;
    for (int k = 0; k < K; k++)
        for (int n = 0; n < ldp; n++)
            Bp[(size_t)k * ldp + n] = n >= N ? 0.0f : trans ? W[(size_t)n * ld + k]
                                                            : W[(size_t)k * ld + n];
    return Bp;
}

/* What a tile does with its sums before storing them: nothing (act < 0), or Elman's step,
 * v = act(sum + bias[column]) (act as in elman_fwd) stored to C and to h (rows of ldh). */
struct RkEpi {
    const float *bias;
    int act;
    float *h;
    size_t ldh;
};

#if RK_SMALL_AVX512
#define RK_AVX512 __attribute__((target("avx512f")))
/* e^x as rk_expf (Cephes, ~1 ulp), 16 lanes. */
RK_AVX512 static inline __m512 rk_exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(
        _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
        _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}
/* 1 / d for d >= 1: rcp14 and one Newton step (~2^-28 relative), not a 16-cycle division. */
RK_AVX512 static inline __m512 rk_inv16(__m512 d) {
    __m512 y = _mm512_rcp14_ps(d);
    return _mm512_mul_ps(y, _mm512_fnmadd_ps(d, y, _mm512_set1_ps(2.0f)));
}
RK_AVX512 static inline __m512 rk_act16(int act, __m512 v) {
    switch (act) {
    case 0: /* tanh = 1 - 2 / (e^{2v} + 1) */
        return _mm512_fnmadd_ps(
            _mm512_set1_ps(2.0f),
            rk_inv16(_mm512_add_ps(rk_exp16(_mm512_add_ps(v, v)), _mm512_set1_ps(1.0f))),
            _mm512_set1_ps(1.0f));
    case 1: return rk_inv16(_mm512_add_ps(rk_exp16(_mm512_sub_ps(_mm512_setzero_ps(), v)),
                                          _mm512_set1_ps(1.0f)));
    case 2: return _mm512_max_ps(v, _mm512_setzero_ps());
    default: return v;
    }
}

/* One tile: MR rows, NV vectors of 16 columns (the last masked by `last`). */
template <int MR, int NV>
RK_AVX512 static void rk_small_tile(int K, const float *A, int lda, const float *Bp, int ldp,
                                    int acc_c, float *C, int ldc, __mmask16 last,
                                    const RkEpi *e) {
    __m512 acc[MR][NV];
#pragma GCC unroll 4
    for (int m = 0; m < MR; m++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[m][v] = !acc_c ? _mm512_setzero_ps()
                        : v + 1 < NV ? _mm512_loadu_ps(C + (size_t)m * ldc + 16 * v)
                                     : _mm512_maskz_loadu_ps(last, C + (size_t)m * ldc + 16 * v);
    for (int k = 0; k < K; k++) {
        __m512 b[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) b[v] = _mm512_load_ps(Bp + (size_t)k * ldp + 16 * v);
#pragma GCC unroll 4
        for (int m = 0; m < MR; m++) {
            __m512 a = _mm512_set1_ps(A[(size_t)m * lda + k]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[m][v] = _mm512_fmadd_ps(a, b[v], acc[m][v]);
        }
    }
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
        __mmask16 k = v + 1 < NV ? (__mmask16)0xFFFF : last;
        __m512 bias = e->act >= 0 ? _mm512_maskz_loadu_ps(k, e->bias + 16 * v) : __m512();
#pragma GCC unroll 4
        for (int m = 0; m < MR; m++) {
            __m512 r = acc[m][v];
            if (e->act >= 0) {
                r = rk_act16(e->act, _mm512_add_ps(r, bias));
                _mm512_mask_storeu_ps(e->h + (size_t)m * e->ldh + 16 * v, k, r);
            }
            _mm512_mask_storeu_ps(C + (size_t)m * ldc + 16 * v, k, r);
        }
    }
}

template <int NV>
static void rk_small_rows(int M, int K, const float *A, int lda, const float *Bp, int ldp,
                          int acc_c, float *C, int ldc, __mmask16 last, RkEpi e) {
    int m = 0;
    for (; m + 4 <= M; m += 4) {
        RkEpi em = {e.bias, e.act, e.h ? e.h + (size_t)m * e.ldh : NULL, e.ldh};
        rk_small_tile<4, NV>(K, A + (size_t)m * lda, lda, Bp, ldp, acc_c, C + (size_t)m * ldc,
                             ldc, last, &em);
    }
    const float *a = A + (size_t)m * lda;
    float *c = C + (size_t)m * ldc;
    if (e.h) e.h += (size_t)m * e.ldh;
    switch (M - m) {
    case 3: rk_small_tile<3, NV>(K, a, lda, Bp, ldp, acc_c, c, ldc, last, &e); break;
    case 2: rk_small_tile<2, NV>(K, a, lda, Bp, ldp, acc_c, c, ldc, last, &e); break;
    case 1: rk_small_tile<1, NV>(K, a, lda, Bp, ldp, acc_c, c, ldc, last, &e); break;
    default: break;
    }
}
#endif

/* C (M, N) = A (M, K) Bp (K, N) (+ C when acc_c), then the epilogue e (its bias and h start at
 * column 0 of C); Bp from rk_small_pack; leading dimensions in floats. Columns go in blocks of
 * 64, so a block's op(W) rows stay in L1 across its rows. */
static void rk_small_mul(const float *Bp, int ldp, int N, int K, int M, const float *A, int lda,
                         int acc_c, float *C, int ldc, RkEpi e) {
#if RK_SMALL_AVX512
    for (int j = 0; j < N; j += 64) {
        int n = N - j < 64 ? N - j : 64, nv = (n + 15) / 16, tail = n - 16 * (nv - 1);
        __mmask16 last = (__mmask16)(tail == 16 ? 0xFFFF : (1u << tail) - 1);
        const float *B = Bp + j;
        float *c = C + j;
        RkEpi ej = {e.bias ? e.bias + j : NULL, e.act, e.h ? e.h + j : NULL, e.ldh};
        switch (nv) {
        case 4: rk_small_rows<4>(M, K, A, lda, B, ldp, acc_c, c, ldc, last, ej); break;
        case 3: rk_small_rows<3>(M, K, A, lda, B, ldp, acc_c, c, ldc, last, ej); break;
        case 2: rk_small_rows<2>(M, K, A, lda, B, ldp, acc_c, c, ldc, last, ej); break;
        default: rk_small_rows<1>(M, K, A, lda, B, ldp, acc_c, c, ldc, last, ej); break;
        }
    }
#else
    (void)Bp; (void)ldp; (void)N; (void)K; (void)M; (void)A; (void)lda; (void)acc_c; (void)C;
    (void)ldc; (void)e;
#endif
}

/* ---- the fused LSTM step (float, AVX-512): the gates' GEMM and the cell in one pass --------
 *
 * lstm_fwd's step was a GEMM into the gate rows S (the own GEMM or MKL), then a pass over S for
 * the cell (lstm_row_fwd), reading back what the GEMM had just stored. Here a register tile of
 * MR rows x 64 columns holds gates i, f, g, o of 16 units (op(W) packed with its columns
 * interleaved by unit block, so one tile has all four gates of its units) and runs the cell on
 * its sums before anything is stored. With the input part in the tile too (rk_lstm_fuse = 2),
 * op(W) is [W_ih; W_hh]^T, K = D + H, and the input projection's GEMM and its S pass go away;
 * with rk_lstm_fuse = 1 the projection stays one GEMM into S and the tile starts from it. */
/* 0: GEMM then the row pass; 1: the tile over h only; 2: over x and h; 3: by rk_lstm_auto */
int rk_lstm_fuse = 3;
static int rk_lstm_runs() {
#if RK_SMALL_AVX512
    static const int avx512 = __builtin_cpu_supports("avx512f");
    return avx512;
#else
    return 0;
#endif
}

/* op(W) for the fused step as ceil(H / 16) panels, one per block of 16 units, each K rows of 64
 * floats (contiguous, so a panel streams through the cache without set conflicts; a block of the
 * kernels' cache, *bytes of it): panel u's row k < Kx is column k of W_ih (Kx = D, or 0: h
 * only), row Kx + k column k of W_hh; its column 16 g + l is gate g of unit 16 u + l (zero past
 * H). */
static float *rk_lstm_pack(const float *Wih, const float *Whh, int D, int H, int Kx,
                           size_t *bytes) {
    int nu = (H + 15) / 16, K = Kx + H;
    *bytes = (size_t)nu * K * 64 * sizeof(float);
    float *P = (float *)rk_take(*bytes);
    if (!P) return NULL;
    /* panel by panel, 16 rows of k at a time: each source line (16 k of one row of W) is read
     * once and spread over the block's 16 destination rows (4 KB, in L1); the panels over
     * torch's threads */
    auto panels = [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; u++) {
            int n = H - 16 * (int)u < 16 ? H - 16 * (int)u : 16;
            float *pu = P + (size_t)u * K * 64;
            for (int part = 0; part < 2; part++) {
                const float *W = part ? Whh : Wih;
                int ld = part ? H : D, kn = part ? H : Kx, kbase = part ? Kx : 0;
                for (int k0 = 0; k0 < kn; k0 += 16) {
                    int kc = kn - k0 < 16 ? kn - k0 : 16;
                    float *p = pu + (size_t)(kbase + k0) * 64;
                    for (int g = 0; g < 4; g++)
                        for (int l = 0; l < 16; l++) {
                            float *d = p + 16 * g + l;
                            if (l >= n) {
                                for (int i = 0; i < kc; i++) d[(size_t)i * 64] = 0.0f;
                                continue;
                            }
                            const float *w = W + ((size_t)g * H + 16 * u + l) * ld + k0;
                            for (int i = 0; i < kc; i++) d[(size_t)i * 64] = w[i];
                        }
                }
            }
        }
    };
    if (nu > 1 && !at::in_parallel_region()) at::parallel_for(0, nu, 1, panels);
    else panels(0, nu);
    return P;
}

/* One step's rows of one thread for the fused tile: row m's x at x + m ldx (Kx floats), its
 * h, c (in) and h, c (out) at m H, its gate row (G = 4H floats) at m G, its output at m ldo. */
struct RkLstmRows {
    const float *x, *h, *c, *sin; /* sin: the precomputed projection (rk_lstm_fuse 1) or NULL */
    float *s, *hn, *cn, *o;        /* s: activated gates out (NULL: not kept) */
    size_t ldx, ldo;
};

/* The same rows from row m on. */
static RkLstmRows rk_lstm_rows_at(const RkLstmRows &r, int m, int H) {
    size_t G = (size_t)4 * H, mh = (size_t)m * H;
    return {r.x + m * r.ldx, r.h + mh, r.c + mh, r.sin ? r.sin + m * G : NULL,
            r.s ? r.s + m * G : NULL, r.hn + mh, r.cn + mh, r.o + m * r.ldo, r.ldx, r.ldo};
}

#if RK_SMALL_AVX512
/* acc[m][g] += sum over k < K of A[m lda + k] Pu[64 k + 16 g ..]: one part (x or h) of a tile. */
template <int MR>
RK_AVX512 __attribute__((always_inline)) static inline void rk_lstm_acc(
    __m512 (&acc)[MR][4], const float *A, size_t lda, const float *Pu, int K) {
    for (int k = 0; k < K; k++) {
        const float *pk = Pu + (size_t)k * 64;
        __m512 b0 = _mm512_load_ps(pk), b1 = _mm512_load_ps(pk + 16);
        __m512 b2 = _mm512_load_ps(pk + 32), b3 = _mm512_load_ps(pk + 48);
#pragma GCC unroll 8
        for (int m = 0; m < MR; m++) {
            __m512 a = _mm512_set1_ps(A[m * lda + k]);
            acc[m][0] = _mm512_fmadd_ps(a, b0, acc[m][0]);
            acc[m][1] = _mm512_fmadd_ps(a, b1, acc[m][1]);
            acc[m][2] = _mm512_fmadd_ps(a, b2, acc[m][2]);
            acc[m][3] = _mm512_fmadd_ps(a, b3, acc[m][3]);
        }
    }
}

/* The tile's epilogue: the cell on the gate sums of MR rows, units j0 .. j0 + 15 (`msk`). */
template <int MR>
RK_AVX512 __attribute__((always_inline)) static inline void rk_lstm_cell(
    __m512 (&acc)[MR][4], const RkLstmRows &r, __mmask16 msk, int j0, int H) {
    const size_t G = (size_t)4 * H;
#pragma GCC unroll 8
    for (int m = 0; m < MR; m++) {
        __m512 i = rk_act16(1, acc[m][0]), f = rk_act16(1, acc[m][1]);
        __m512 g = rk_act16(0, acc[m][2]), o = rk_act16(1, acc[m][3]);
        __m512 c = _mm512_fmadd_ps(f, _mm512_maskz_loadu_ps(msk, r.c + (size_t)m * H + j0),
                                   _mm512_mul_ps(i, g));
        __m512 h = _mm512_mul_ps(o, rk_act16(0, c));
        if (r.s) {
            float *s = r.s + m * G + j0;
            _mm512_mask_storeu_ps(s, msk, i);
            _mm512_mask_storeu_ps(s + H, msk, f);
            _mm512_mask_storeu_ps(s + 2 * (size_t)H, msk, g);
            _mm512_mask_storeu_ps(s + 3 * (size_t)H, msk, o);
        }
        _mm512_mask_storeu_ps(r.cn + (size_t)m * H + j0, msk, c);
        _mm512_mask_storeu_ps(r.hn + (size_t)m * H + j0, msk, h);
        _mm512_mask_storeu_ps(r.o + m * r.ldo + j0, msk, h);
    }
}

/* MR rows x unit block u (columns 16 u .. 16 u + 15 of each gate, `msk` of them real). */
template <int MR>
RK_AVX512 static void rk_lstm_tile(int u, int H, int Kx, const float *P, const float *bias,
                                   const RkLstmRows &r, __mmask16 msk) {
    const size_t G = (size_t)4 * H;
    const int j0 = 16 * u;
    __m512 acc[MR][4];
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        __m512 b = _mm512_maskz_loadu_ps(msk, bias + (size_t)g * H + j0);
#pragma GCC unroll 8
        for (int m = 0; m < MR; m++)
            acc[m][g] = !r.sin ? b : _mm512_add_ps(b, _mm512_maskz_loadu_ps(
                                         msk, r.sin + m * G + (size_t)g * H + j0));
    }
    const float *Pu = P + (size_t)u * (Kx + H) * 64;
    rk_lstm_acc<MR>(acc, r.x, r.ldx, Pu, Kx);
    rk_lstm_acc<MR>(acc, r.h, (size_t)H, Pu + (size_t)Kx * 64, H);
    rk_lstm_cell<MR>(acc, r, msk, j0, H);
}

/* The K-blocked tile (rk_lstm_kc > 0): rows k in [k0, k1) of the concatenated K = Kx + H only,
 * the sums carried between blocks in buf (MR x 64 floats, this tile's rows): the first block
 * starts from the bias (and the projection), the last runs the cell. */
template <int MR>
RK_AVX512 static void rk_lstm_tile_kb(int u, int H, int Kx, const float *P, const float *bias,
                                      const RkLstmRows &r, __mmask16 msk, int k0, int k1,
                                      float *buf) {
    const size_t G = (size_t)4 * H;
    const int j0 = 16 * u, K = Kx + H;
    __m512 acc[MR][4];
    if (k0 == 0) {
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            __m512 b = _mm512_maskz_loadu_ps(msk, bias + (size_t)g * H + j0);
#pragma GCC unroll 8
            for (int m = 0; m < MR; m++)
                acc[m][g] = !r.sin ? b : _mm512_add_ps(b, _mm512_maskz_loadu_ps(
                                             msk, r.sin + m * G + (size_t)g * H + j0));
        }
    } else {
#pragma GCC unroll 8
        for (int m = 0; m < MR; m++)
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++) acc[m][g] = _mm512_load_ps(buf + 64 * m + 16 * g);
    }
    const float *Pu = P + (size_t)u * K * 64;
    if (k0 < Kx) {
        int e = k1 < Kx ? k1 : Kx;
        rk_lstm_acc<MR>(acc, r.x + k0, r.ldx, Pu + (size_t)k0 * 64, e - k0);
    }
    if (k1 > Kx) {
        int b = k0 > Kx ? k0 - Kx : 0;
        rk_lstm_acc<MR>(acc, r.h + b, (size_t)H, Pu + (size_t)(Kx + b) * 64, k1 - Kx - b);
    }
    if (k1 < K) {
#pragma GCC unroll 8
        for (int m = 0; m < MR; m++)
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++) _mm512_store_ps(buf + 64 * m + 16 * g, acc[m][g]);
        return;
    }
    rk_lstm_cell<MR>(acc, r, msk, j0, H);
}

/* MR rows from m0 on, [k0, k1) of unit block u, in tiles of RK_LSTM_KB_MR rows and the rest. */
template <int MR>
RK_AVX512 static void rk_lstm_rows_kb(int M, int u, int H, int Kx, const float *P,
                                      const float *bias, const RkLstmRows &r, __mmask16 msk,
                                      int k0, int k1, float *buf) {
    int m = 0;
    for (; m + MR <= M; m += MR)
        rk_lstm_tile_kb<MR>(u, H, Kx, P, bias, rk_lstm_rows_at(r, m, H), msk, k0, k1,
                            buf + (size_t)64 * m);
    RkLstmRows q = rk_lstm_rows_at(r, m, H);
    float *bq = buf + (size_t)64 * m;
    switch (M - m) {
    case 5: rk_lstm_tile_kb<5>(u, H, Kx, P, bias, q, msk, k0, k1, bq); break;
    case 4: rk_lstm_tile_kb<4>(u, H, Kx, P, bias, q, msk, k0, k1, bq); break;
    case 3: rk_lstm_tile_kb<3>(u, H, Kx, P, bias, q, msk, k0, k1, bq); break;
    case 2: rk_lstm_tile_kb<2>(u, H, Kx, P, bias, q, msk, k0, k1, bq); break;
    case 1: rk_lstm_tile_kb<1>(u, H, Kx, P, bias, q, msk, k0, k1, bq); break;
    default: break;
    }
}
#endif

enum { RK_LSTM_MR = 4 };
/* The fused step's K blocking: rows of op(W) per block (a block of a panel is kc x 64 floats,
 * meant to stay in L1 while every row tile of the step reads it), 0 for the session 9 step
 * (each row tile streams the whole panel, K rows, from L2); and the K-blocked tile's rows (4
 * or 6). -1: not set yet (rk_lstm_kc_init). */
int rk_lstm_kc = -1, rk_lstm_kb_mr = 6;
static int rk_lstm_kc_get();
/* rk_lstm_fuse 3: the mode and K blocking for this shape. Where the own GEMM runs (rk_own_on:
 * AVX-512 off Intel, e.g. the Zen 4 that session 9 tuned on) the session 9 step: mode 2, not
 * K-blocked (this rule was not measured there). Where MKL runs its Intel path (session 11,
 * 2-core Xeon, L2 2 MB, benchmarks/README.md): the session 9 tile over x and h while its panels
 * ((D + H) x 4H floats) fit a quarter of L2 (H = 64: 128 KB; 0.81x mode 0's time on 2 threads,
 * 0.78x on 1), else mode 0, MKL's packed GEMM (H = 256, 512: the tile read its panels from L2,
 * or L3 at H = 512, and ran 1.17x / 1.20x mode 0's time on 2 threads, K-blocked 1.09x / 1.19x). */
static void rk_lstm_auto(int D, int H, int *mode, int *kc) {
    *kc = 0;
    if (rk_own_on) { *mode = 2; return; }
    long l2 = 0;
#ifdef _SC_LEVEL2_CACHE_SIZE
    l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    if (l2 <= 0) l2 = 1 << 20;
    double hp = (double)(H + 15) / 16 * 16 * 4 * sizeof(float);
    *mode = (D + H) * hp * 4 <= l2 ? 2 : 0;
}

/* kc from the L1d size: a kc x 64 block of the panel in half of L1d (48 KB: 96 rows; 32 KB:
 * 64), a multiple of 16 in [16, 512]. */
static int rk_lstm_kc_get() {
    if (rk_lstm_kc >= 0) return rk_lstm_kc;
    long l1 = 0;
#ifdef _SC_LEVEL1_DCACHE_SIZE
    l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
#endif
    long kc = (l1 > 0 ? l1 : 32 << 10) / 2 / (64 * (long)sizeof(float)) / 16 * 16;
    rk_lstm_kc = (int)(kc < 16 ? 16 : kc > 512 ? 512 : kc);
    return rk_lstm_kc;
}

/* One step of M rows: every unit block (op(W)'s 64 columns of a block stay in cache across the
 * row tiles), then the next. */
static void rk_lstm_step(int M, int H, int Kx, const float *P, const float *bias, RkLstmRows r,
                         int kc = 0, float *buf = NULL) {
#if RK_SMALL_AVX512
    int nu = (H + 15) / 16;
    for (int u = 0; u < nu; u++) {
        int n = H - 16 * u < 16 ? H - 16 * u : 16;
        __mmask16 msk = (__mmask16)(n == 16 ? 0xFFFF : (1u << n) - 1);
        if (kc > 0) {
            for (int k0 = 0, K = Kx + H; k0 < K; k0 += kc) {
                int k1 = K - k0 < kc ? K : k0 + kc;
                if (rk_lstm_kb_mr == 4)
                    rk_lstm_rows_kb<4>(M, u, H, Kx, P, bias, r, msk, k0, k1, buf);
                else rk_lstm_rows_kb<6>(M, u, H, Kx, P, bias, r, msk, k0, k1, buf);
            }
            continue;
        }
        int m = 0;
        for (; m + RK_LSTM_MR <= M; m += RK_LSTM_MR)
            rk_lstm_tile<RK_LSTM_MR>(u, H, Kx, P, bias, rk_lstm_rows_at(r, m, H), msk);
        RkLstmRows q = rk_lstm_rows_at(r, m, H);
        switch (M - m) {
        case 3: rk_lstm_tile<3>(u, H, Kx, P, bias, q, msk); break;
        case 2: rk_lstm_tile<2>(u, H, Kx, P, bias, q, msk); break;
        case 1: rk_lstm_tile<1>(u, H, Kx, P, bias, q, msk); break;
        default: break;
        }
    }
#else
    (void)M; (void)H; (void)Kx; (void)P; (void)bias; (void)r; (void)kc; (void)buf;
#endif
}
#endif /* RK_SMALL_GEMM_DEFINED */

/* Row-major GEMM: C (M, N) = alpha * op(A) op(B) + beta * C. BLAS is column-major, so the
 * row-major product is computed as C^T = op(B)^T op(A)^T with the operands swapped. */
static void SUF(gemm)(char ta, char tb, int M, int N, int K, REAL alpha, const REAL *A,
                      int lda, const REAL *B, int ldb, REAL beta, REAL *C, int ldc) {
    if (M <= 0 || N <= 0) return;
#if IS_FLOAT
    /* the own GEMM where it runs (gemm.h: MKL's fast path is Intel-only), for the products
     * big enough to amortise packing op(B) (K >= 256: K < 256 ran slower in it than in MKL at
     * H = 64): the input projections, dX and (rk_own_route RK_ROUTE_TN) the weight gradients,
     * A^T B with K = B * T. Those ran at about half the own GEMM's speed in MKL on Zen 5
     * (session 12, benchmarks/train_phases.py: dW 2x faster, the training step 1.2-1.5x at
     * (32, 100, 256) and (64, 100, 512)). Not for M < RK_MR unless RK_ROUTE_THIN: colsum's
     * one-row product packed all of dG as op(B) for one row (the GRU's three bias sums took
     * ~100 ms of a 750 ms step at (64, 100, 512)); MKL runs it at memory speed. */
    if (rk_own_on && (ta == 'N' || (rk_own_route & RK_ROUTE_TN)) && alpha == 1 &&
        (M >= RK_MR || (rk_own_route & RK_ROUTE_THIN)) && K >= 256 &&
        (double)M * N * K >= (double)(1 << 20)) {
        int nt = at::in_parallel_region() ? 1 : at::get_num_threads();
        if (rk_own_gemm(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, nt) == 0) return;
    }
#endif
    rk_blas(tb, ta, N, M, K, alpha, B, ldb, A, lda, beta, C, ldc);
}

/* A recurrent weight used once per step: C (M, N) = A (M, K) op(W) + beta C, with op(W) = W^T
 * (forward: W is (N, K)) or W (backward: W is (K, N)). In float it is packed once per call
 * with MKL's sgemm_pack so each step skips re-packing W. */
typedef struct {
    const REAL *W;
    int ld, trans, M, N, K;
    void *packed;
    size_t bytes; /* of packed (rk_take/rk_give) */
    float *small; /* op(W) for rk_small_mul (float, small W), rows of ldp floats */
    int ldp;
    RkPacked own; /* op(W) for the own GEMM (gemm.h; float, rk_own_on), or own.p null */
} SUF(rmat);

static int SUF(rmat_init)(SUF(rmat) *r, const REAL *W, int ld, int trans, int M, int N, int K) {
    r->W = W; r->ld = ld; r->trans = trans; r->M = M; r->N = N; r->K = K; r->packed = NULL;
    r->bytes = 0;
    r->small = NULL; r->ldp = 0; r->own.p = NULL; r->own.bytes = 0;
#if IS_FLOAT
    if (rk_small_fits(N, K) && M > 0) {
        r->ldp = (N + 15) / 16 * 16;
        r->small = rk_small_pack(W, ld, trans, N, K, r->ldp);
        return r->small ? 0 : -1;
    }
    if (rk_own_on && M > 0 && N > 0 && K > 0) return rk_own_pack(&r->own, W, ld, trans, N, K);
    if (rk_use_pack && p_pack && M > 0 && N > 0 && K > 0) {
        size_t bytes = p_pack_size(CBLAS_BMATRIX, M, N, K);
        void *buf = rk_take(bytes ? bytes : 64);
        if (!buf) return -1;
        r->bytes = bytes ? bytes : 64;
        p_pack(CBLAS_ROWMAJOR, CBLAS_BMATRIX, trans ? CBLAS_TRANS : CBLAS_NOTRANS, M, N, K,
               1.0f, W, ld, (float *)buf);
        r->packed = buf;
    }
#endif
    return 0;
}

static void SUF(rmat_free)(SUF(rmat) *r) {
    rk_give(r->packed, r->bytes);
    if (r->small) rk_give(r->small, rk_small_bytes_of(r->K, r->ldp));
    rk_own_free(&r->own);
    r->packed = NULL;
    r->small = NULL;
}

static void SUF(rmat_mul)(const SUF(rmat) *r, int M, const REAL *A, int lda, REAL beta,
                          REAL *C, int ldc) {
    if (M <= 0) return;
#if IS_FLOAT
    if (r->small && (beta == 0 || beta == 1)) {
        rk_small_mul(r->small, r->ldp, r->N, r->K, M, A, lda, beta != 0, C, ldc,
                     RkEpi{NULL, -1, NULL, 0});
        return;
    }
    if (r->own.p) {
        rk_own_mul(&r->own, M, A, lda, 0, (float)beta, C, ldc, 1);
        return;
    }
    if (r->packed) {
        p_compute(CBLAS_ROWMAJOR, CBLAS_NOTRANS, CBLAS_PACKED, M, r->N, r->K, A, lda,
                  (const float *)r->packed, r->ld, beta, C, ldc);
        return;
    }
#endif
    SUF(gemm)('N', r->trans ? 'T' : 'N', M, r->N, r->K, 1, A, lda, r->W, r->ld, beta, C, ldc);
}

/* Column sums of A (rows, cols) with leading dimension lda into out (cols), as one GEMM
 * with a ones vector (the same summation order as a BLAS reduction, at memory speed). */
static int SUF(colsum)(const REAL *A, size_t rows, int cols, int lda, REAL *out) {
    REAL *ones = (REAL *)rk_take(rows * sizeof(REAL));
    if (!ones) return -1;
    for (size_t i = 0; i < rows; i++) ones[i] = 1;
    SUF(gemm)('N', 'N', 1, cols, (int)rows, 1, ones, (int)rows, A, lda, 0, out, cols);
    rk_give(ones, rows * sizeof(REAL));
    return 0;
}

/* dst (cols, rows; leading dimension ldd) = the transpose of src's columns [0, cols) (rows,
 * leading dimension lds), in 32 x 32 tiles over torch's threads (outside a parallel region). */
static void SUF(transpose)(const REAL *src, int rows, int cols, size_t lds, REAL *dst, size_t ldd) {
    const int TS = 32;
    int nb = (cols + TS - 1) / TS;
    auto tiles = [&](int64_t c0, int64_t c1) {
        for (int64_t cb = c0; cb < c1; cb++)
            for (int i0 = 0; i0 < rows; i0 += TS) {
                int j0 = (int)cb * TS, j1 = j0 + TS < cols ? j0 + TS : cols;
                int i1 = i0 + TS < rows ? i0 + TS : rows;
                for (int j = j0; j < j1; j++)
                    for (int i = i0; i < i1; i++) dst[(size_t)j * ldd + i] = src[(size_t)i * lds + j];
            }
    };
    if (at::in_parallel_region()) tiles(0, nb);
    else at::parallel_for(0, nb, 1, tiles);
}

/* Longest length among rows [b0, b1): later steps only carry the state. */
static int SUF(max_len)(const int64_t *len, int T, int b0, int b1) {
    if (!len) return T;
    int m = 0;
    for (int b = b0; b < b1; b++) if (len[b] > m) m = (int)len[b];
    return m < T ? m : T;
}

/* Steps t >= tmax of rows [b0, b1), columns [j0, j0 + n): state frozen, output zero. */
static void SUF(carry_tail)(int T, int B, int H, int b0, int b1, int j0, int n, int tmax,
                            REAL *Hs, REAL *Cs, REAL *out) {
    size_t bytes = (size_t)n * sizeof(REAL);
    for (int t = tmax; t < T; t++)
        for (int b = b0; b < b1; b++) {
            size_t src = ((size_t)t * B + b) * H + j0, dst = src + (size_t)B * H;
            memcpy(Hs + dst, Hs + src, bytes);
            if (Cs) memcpy(Cs + dst, Cs + src, bytes);
            memset(out + ((size_t)b * T + t) * H + j0, 0, bytes);
        }
}

/* Columns [j0, j0 + n) of every row of the (B, H) src into dst. */
static void SUF(copy_cols)(REAL *dst, const REAL *src, int B, int H, int j0, int n) {
    for (int b = 0; b < B; b++)
        memcpy(dst + (size_t)b * H + j0, src + (size_t)b * H + j0, (size_t)n * sizeof(REAL));
}

/* The GRU / LSTM backward's scratch, from the block cache (pool.h): dG (T*B*G) the gate
 * gradients, dx (GRU reset_after: d of the n gate's input part, or none), buf the carried dh /
 * dn / dc rows, zrow a zero output-gradient row. Reused blocks are already mapped: at
 * (64, 100, 512) the LSTM's dG alone is 52 MB, which a fresh mmap faults page by page. */
typedef struct {
    REAL *dG, *dx, *buf, *zrow;
    size_t n_dG, n_dx, n_buf, n_zrow;
} SUF(bwd_ws);

static void SUF(bwd_ws_give)(SUF(bwd_ws) *w) {
    rk_give(w->dG, w->n_dG * sizeof(REAL));
    rk_give(w->dx, w->n_dx * sizeof(REAL));
    rk_give(w->buf, w->n_buf * sizeof(REAL));
    rk_give(w->zrow, w->n_zrow * sizeof(REAL));
}

static int SUF(bwd_ws_take)(SUF(bwd_ws) *w, size_t n_dG, size_t n_dx, size_t n_buf, int H) {
    w->n_dG = n_dG; w->n_dx = n_dx; w->n_buf = n_buf; w->n_zrow = (size_t)H;
    w->dG = (REAL *)rk_take(n_dG * sizeof(REAL));
    w->dx = n_dx ? (REAL *)rk_take(n_dx * sizeof(REAL)) : NULL;
    w->buf = (REAL *)rk_take(n_buf * sizeof(REAL));
    w->zrow = (REAL *)rk_take((size_t)H * sizeof(REAL));
    if (!w->dG || (n_dx && !w->dx) || !w->buf || !w->zrow) {
        SUF(bwd_ws_give)(w);
        return -1;
    }
    memset(w->zrow, 0, (size_t)H * sizeof(REAL));
    return 0;
}

/* The backward sweep of one column block: for t = tmax - 1 .. 0, rows(t, dh, dn) writes the
 * block's gate gradients of step t (all B rows) and dn's carried part; after the barrier the
 * block of dn gains dG_t (rows of ldg, steps `step` apart) times W_hh's columns. Returns the
 * buffer holding the block's dh at step 0. */
template <typename S, typename F>
static REAL *SUF(sweep_cols)(const SUF(rmat) *Wh, int tmax, int B, int H, int j0, const REAL *dG,
                             size_t step, int ldg, REAL *dh, REAL *dn, const S &sync, const F &rows) {
    for (int t = tmax - 1; t >= 0; t--) {
        rows(t, dh, dn);
        sync();
        SUF(rmat_mul)(Wh, B, dG + t * step, ldg, 1, dn + j0, H);
        REAL *tmp = dh; dh = dn; dn = tmp;
    }
    return dh;
}

/* Combined bias vectors: bx (G*H) is added to the input projection, bh (H) is the part of
 * b_hh that must stay inside the GRU reset product (reset_after=True). */
static int SUF(make_bias)(int G, int H, const REAL *bih, const REAL *bhh, int fold_last,
                          REAL **bx, REAL **bh) {
    *bx = (REAL *)calloc((size_t)G * H, sizeof(REAL));
    *bh = (REAL *)calloc((size_t)H, sizeof(REAL));
    if (!*bx || !*bh) { free(*bx); free(*bh); return -1; }
    for (int j = 0; j < G * H; j++) {
        REAL v = bih ? bih[j] : 0;
        int last = j >= (G - 1) * H;
        if (bhh && (!last || fold_last)) v += bhh[j];
        (*bx)[j] = v;
    }
    if (bhh && !fold_last) for (int j = 0; j < H; j++) (*bh)[j] = bhh[(G - 1) * H + j];
    return 0;
}

static void SUF(split)(int B, int nt, int tid, int *b0, int *b1) {
    int q = B / nt, r = B % nt;
    *b0 = tid * q + (tid < r ? tid : r);
    *b1 = *b0 + q + (tid < r);
}


/* Gate math for one batch row, kept in small functions with restrict pointers so the
 * compiler vectorises them (it would not inside the parallel lambda); RK_VEC builds each for
 * several vector widths and picks one at load time, so a portable wheel still uses AVX2/AVX-512. */
#define RK_R REAL *restrict
#define RK_C const REAL *restrict

RK_VEC static void SUF(elman_row_bwd)(int act, int H, RK_C d, RK_C go, RK_C h, RK_R g, RK_R e) {
    switch (act) {
    case 0: for (int j = 0; j < H; j++) { g[j] = (d[j] + go[j]) * (1 - h[j] * h[j]); e[j] = 0; } break;
    case 1: for (int j = 0; j < H; j++) { g[j] = (d[j] + go[j]) * h[j] * (1 - h[j]); e[j] = 0; } break;
    case 2: for (int j = 0; j < H; j++) { g[j] = h[j] > 0 ? d[j] + go[j] : 0; e[j] = 0; } break;
    default: for (int j = 0; j < H; j++) { g[j] = d[j] + go[j]; e[j] = 0; } break;
    }
}

/* The GRU and LSTM rows hold one block of H per gate. Each loop takes one restrict pointer per
 * gate block rather than indexing s[k * H + j]: with the int offsets GCC vectorised the
 * AVX-512 clones with gathers and masked scatters and left the AVX2 clones scalar. H is the
 * gate block's stride, n the columns the call updates: all H, or one thread's column block
 * (the pointers then start at that block's first column). */
#define RK_GATES2(p, q) RK_R p##0 = (q); RK_R p##1 = (q) + H
#define RK_GATES3(p, q) RK_GATES2(p, q); RK_R p##2 = (q) + 2 * H
#define RK_GATES4(p, q) RK_GATES3(p, q); RK_R p##3 = (q) + 3 * H
#define RK_CGATES2(p, q) RK_C p##0 = (q); RK_C p##1 = (q) + H
#define RK_CGATES3(p, q) RK_CGATES2(p, q); RK_C p##2 = (q) + 2 * H
#define RK_CGATES4(p, q) RK_CGATES3(p, q); RK_C p##3 = (q) + 3 * H

RK_VEC static void SUF(gru_row_fwd_ra)(int H, int n, RK_R s, RK_C gh, RK_C bx, RK_C bh, RK_C hp,
                                       RK_R ext, RK_R hn, RK_R o) {
    RK_GATES3(s, s); RK_CGATES3(g, gh); RK_CGATES3(b, bx);
    RK_IVDEP for (int j = 0; j < n; j++) {
        REAL r = SIGM(s0[j] + b0[j] + g0[j]);
        REAL z = SIGM(s1[j] + b1[j] + g1[j]);
        REAL ghn = g2[j] + bh[j];
        REAL n = TANH(s2[j] + b2[j] + r * ghn);
        REAL h = n + z * (hp[j] - n);
        s0[j] = r; s1[j] = z; s2[j] = n; ext[j] = ghn;
        hn[j] = h; o[j] = h;
    }
}

RK_VEC static void SUF(gru_row_fwd_rz)(int H, RK_R s, RK_C bx, RK_C hp, RK_R rh) {
    RK_GATES2(s, s); RK_CGATES2(b, bx);
    RK_IVDEP for (int j = 0; j < H; j++) {
        REAL r = SIGM(s0[j] + b0[j]);
        REAL z = SIGM(s1[j] + b1[j]);
        s0[j] = r; s1[j] = z; rh[j] = r * hp[j];
    }
}

RK_VEC static void SUF(gru_row_fwd_n)(int H, RK_R s, RK_C bx, RK_C hp, RK_R hn, RK_R o) {
    RK_C sz = s + H; RK_R sn = s + 2 * H; RK_C bn = bx + 2 * H;
    RK_IVDEP for (int j = 0; j < H; j++) {
        REAL z = sz[j];
        REAL n = TANH(sn[j] + bn[j]);
        REAL h = n + z * (hp[j] - n);
        sn[j] = n; hn[j] = h; o[j] = h;
    }
}

RK_VEC static void SUF(gru_row_bwd_ra)(int H, int n, RK_C d, RK_C go, RK_C s, RK_C ext, RK_C hp,
                                       RK_R g, RK_R xn, RK_R e) {
    RK_CGATES3(s, s); RK_GATES3(g, g);
    RK_IVDEP for (int j = 0; j < n; j++) {
        REAL v = d[j] + go[j];
        REAL r = s0[j], z = s1[j], n = s2[j];
        REAL dan = v * (1 - z) * (1 - n * n);
        g0[j] = dan * ext[j] * r * (1 - r);
        g1[j] = v * (hp[j] - n) * z * (1 - z);
        g2[j] = dan * r;
        xn[j] = dan;
        e[j] = v * z;
    }
}

RK_VEC static void SUF(gru_row_bwd_zn)(int H, RK_C d, RK_C go, RK_C s, RK_C hp, RK_R g, RK_R e) {
    RK_C sz = s + H; RK_C sn = s + 2 * H;
    RK_GATES3(g, g);
    RK_IVDEP for (int j = 0; j < H; j++) {
        REAL v = d[j] + go[j];
        REAL z = sz[j], n = sn[j];
        g2[j] = v * (1 - z) * (1 - n * n);
        g1[j] = v * (hp[j] - n) * z * (1 - z);
        g0[j] = 0;
        e[j] = v; /* finished once d(r h) is known */
    }
}

RK_VEC static void SUF(gru_row_bwd_r)(int H, RK_C s, RK_C hp, RK_C drh, RK_R g, RK_R e) {
    RK_CGATES2(s, s);
    RK_IVDEP for (int j = 0; j < H; j++) {
        REAL r = s0[j], z = s1[j];
        g[j] = drh[j] * hp[j] * r * (1 - r);
        e[j] = e[j] * z + drh[j] * r;
    }
}

RK_VEC static void SUF(lstm_row_fwd)(int H, int n, RK_R s, RK_C bx, RK_C cp, RK_R cn, RK_R hn,
                                     RK_R o) {
    RK_GATES4(s, s); RK_CGATES4(b, bx);
    RK_IVDEP for (int j = 0; j < n; j++) {
        REAL i = SIGM(s0[j] + b0[j]);
        REAL f = SIGM(s1[j] + b1[j]);
        REAL g = TANH(s2[j] + b2[j]);
        REAL og = SIGM(s3[j] + b3[j]);
        REAL c = f * cp[j] + i * g;
        REAL h = og * TANH(c);
        s0[j] = i; s1[j] = f; s2[j] = g; s3[j] = og;
        cn[j] = c; hn[j] = h; o[j] = h;
    }
}

RK_VEC static void SUF(lstm_row_bwd)(int H, int n, RK_C d, RK_C go, RK_C s, RK_C c, RK_C cp, RK_R dc,
                              RK_R g, RK_R e) {
    RK_CGATES4(s, s); RK_GATES4(g, g);
    RK_IVDEP for (int j = 0; j < n; j++) {
        REAL v = d[j] + go[j];
        REAL i = s0[j], f = s1[j], gg = s2[j], o = s3[j];
        REAL tc = TANH(c[j]);
        REAL dct = dc[j] + v * o * (1 - tc * tc);
        g0[j] = dct * gg * i * (1 - i);
        g1[j] = dct * cp[j] * f * (1 - f);
        g2[j] = dct * i * (1 - gg * gg);
        g3[j] = v * tc * o * (1 - o);
        dc[j] = dct * f;
        e[j] = 0;
    }
}

/* ------------------------------------------------------------------------------------------
 * Elman: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh). act: 0 tanh, 1 sigmoid, 2 relu, 3 identity.
 * ---------------------------------------------------------------------------------------- */

RK_VEC static void SUF(elman_act)(int act, const REAL *g, const REAL *bx, REAL *h, REAL *o, int H) {
    switch (act) {
    case 0: RK_IVDEP for (int j = 0; j < H; j++) { REAL v = TANH(g[j] + bx[j]); h[j] = v; o[j] = v; } break;
    case 1: RK_IVDEP for (int j = 0; j < H; j++) { REAL v = SIGM(g[j] + bx[j]); h[j] = v; o[j] = v; } break;
    case 2:
        RK_IVDEP for (int j = 0; j < H; j++) { REAL v = g[j] + bx[j]; v = v > 0 ? v : 0; h[j] = v; o[j] = v; }
        break;
    default: RK_IVDEP for (int j = 0; j < H; j++) { REAL v = g[j] + bx[j]; h[j] = v; o[j] = v; } break;
    }
}

/* One Elman step of M rows over n columns: g (rows of ldg) += hp op(W), then h = o = act(g + bx)
 * with o = g in place and h in rows of ldh; the tile kernel does both in registers. */
static void SUF(elman_step)(const SUF(rmat) *Wh, int M, int n, int act, const REAL *hp, int ldp,
                            const REAL *bx, REAL *g, int ldg, REAL *h, size_t ldh) {
#if IS_FLOAT
    if (Wh->small) {
        rk_small_mul(Wh->small, Wh->ldp, n, Wh->K, M, hp, ldp, 1, g, ldg, RkEpi{bx, act, h, ldh});
        return;
    }
#endif
    SUF(rmat_mul)(Wh, M, hp, ldp, 1, g, ldg);
    for (int b = 0; b < M; b++) SUF(elman_act)(act, g + (size_t)b * ldg, bx, h + b * ldh,
                                               g + (size_t)b * ldg, n);
}

/* Elman keeps everything batch-major, (B, T, .) like x and out, so x needs no time-major copy
 * and dx comes out in x's layout; one step's rows are then strided by T*H, which the GEMMs
 * take as their leading dimension. P (B, T, H) holds the state *entering* each step (h_0 ..
 * h_{T-1}), so dW_hh = dA^T P is one GEMM; hN (B, H) holds h_T. */

/* a: dt T B D H act X Wih Whh bih bhh len h0 P hN out nthreads. The input projection is
 * computed into out, which each step then overwrites in place with its state. */
static int SUF(elman_fwd)(const int64_t *a) {
    int T = (int)a[1], B = (int)a[2], D = (int)a[3], H = (int)a[4], act = (int)a[5];
    const REAL *X = ARG(6, const REAL *), *Wih = ARG(7, const REAL *), *Whh = ARG(8, const REAL *);
    const REAL *bih = ARG(9, const REAL *), *bhh = ARG(10, const REAL *);
    const int64_t *len = ARG(11, const int64_t *);
    const REAL *h0 = ARG(12, const REAL *);
    REAL *P = ARG(13, REAL *), *hN = ARG(14, REAL *), *out = ARG(15, REAL *);
    int nthreads = (int)a[16];
    size_t TH = (size_t)T * H;
    REAL *bx, *bh;
    if (SUF(make_bias)(1, H, bih, bhh, 1, &bx, &bh)) return -1;
    for (int b = 0; b < B; b++) memcpy(P + b * TH, h0 + (size_t)b * H, H * sizeof(REAL));
    int nt = rk_threads_for(B, nthreads), nc = rk_cols_for(1, H, nthreads, sizeof(REAL));
    /* With the batch split each thread projects its own rows (batch-major, so one contiguous
     * block of x and out): the whole call is then one parallel region, where a separate
     * projection GEMM on MKL's threads cost a second wake-up of the pool, and the projection of
     * a thread's rows is still in its cache when its recurrence reads them. */
    if (nc || nt == 1) SUF(gemm)('N', 'T', T * B, H, D, 1, X, D, Wih, D, 0, out, H);
    std::atomic<int> err{0};
    /* Column split (see rk_cols_for): columns [j0, j1) of the state for all B rows. */
    auto cols = [&](int j0, int j1, auto sync) {
        int prev = rk_mkl_local(1), n = j1 - j0, tmax = SUF(max_len)(len, T, 0, B);
        size_t bytes = (size_t)n * sizeof(REAL);
        SUF(rmat) Wh;
        if (SUF(rmat_init)(&Wh, Whh + (size_t)j0 * H, H, 1, B, n, H)) err = 1;
        sync();
        if (!err) {
            for (int t = 0; t < T; t++) {
                REAL *g = out + (size_t)t * H;
                const REAL *hp = P + (size_t)t * H;
                int last = t + 1 == T;
                REAL *hn = last ? hN : P + (size_t)(t + 1) * H;
                size_t ldn = last ? (size_t)H : TH;
                if (t < tmax)
                    SUF(elman_step)(&Wh, B, n, act, hp, (int)TH, bx + j0, g + j0, (int)TH,
                                    hn + j0, ldn);
                for (int b = 0; b < B; b++)
                    if (t >= tmax || (len && t >= len[b])) {  /* past its length: carry h */
                        memcpy(hn + b * ldn + j0, hp + b * TH + j0, bytes);
                        memset(g + b * TH + j0, 0, bytes);
                    }
                if (t + 1 < tmax) sync();
            }
        }
        SUF(rmat_free)(&Wh);
        rk_mkl_local(prev);
    };
    if (nc) rk_team(H, nc, cols);
    else rk_parallel(nt, [&](int tid) {
        int b0, b1, prev = rk_mkl_local(1);
        SUF(split)(B, nt, tid, &b0, &b1);
        int M = b1 - b0, tmax = SUF(max_len)(len, T, b0, b1);
        if (nt > 1)
            SUF(gemm)('N', 'T', T * M, H, D, 1, X + (size_t)b0 * T * D, D, Wih, D, 0,
                      out + b0 * TH, H);
        SUF(rmat) Wh;
        if (SUF(rmat_init)(&Wh, Whh, H, 1, M, H, H)) err = 1;
        else {
            for (int t = 0; t < T; t++) {
                REAL *g = out + b0 * TH + (size_t)t * H;
                const REAL *hp = P + b0 * TH + (size_t)t * H;
                int last = t + 1 == T;
                REAL *hn = last ? hN + (size_t)b0 * H : P + b0 * TH + (size_t)(t + 1) * H;
                size_t ldn = last ? (size_t)H : TH;
                if (t < tmax)
                    SUF(elman_step)(&Wh, M, H, act, hp, (int)TH, bx, g, (int)TH, hn, ldn);
                for (int b = 0; b < M; b++)
                    if (t >= tmax || (len && t >= len[b0 + b])) {  /* past its length */
                        memcpy(hn + b * ldn, hp + b * TH, H * sizeof(REAL));
                        memset(g + b * TH, 0, H * sizeof(REAL));
                    }
            }
            SUF(rmat_free)(&Wh);
        }
        rk_mkl_local(prev);
    });
    free(bx); free(bh);
    return err ? -1 : 0;
}

/* The gradients that are sums over the rows of dA (rows, H), x (rows, D) and P (rows, H) of one
 * row block: dW_hh = dA^T P, dW_ih = dA^T x and db = column sums of dA (each when asked), and
 * dX = dA W_ih where dX is given. */
static int SUF(elman_wgrad)(int rows, int D, int H, const REAL *dA, const REAL *X, const REAL *P,
                            const REAL *Wih, REAL *dX, REAL *dWhh, REAL *dWih, REAL *db,
                            int want_whh, int want_wih, int want_b) {
    if (want_whh) SUF(gemm)('T', 'N', H, H, rows, 1, dA, H, P, H, 0, dWhh, H);
    if (want_wih) SUF(gemm)('T', 'N', H, D, rows, 1, dA, H, X, D, 0, dWih, D);
    if (dX) SUF(gemm)('N', 'N', rows, D, H, 1, dA, H, Wih, D, 0, dX, D);
    return want_b ? SUF(colsum)(dA, (size_t)rows, H, H, db) : 0;
}

/* a: dt T B D H act X Wih Whh len P hN dout dhn dh0 dX dWih dWhh dbih dbhh nthreads dsb dst
 * (dout's rows of H are contiguous; row (b, t) starts at b * dsb + t * dst) */
static int SUF(elman_bwd)(const int64_t *a) {
    int T = (int)a[1], B = (int)a[2], D = (int)a[3], H = (int)a[4], act = (int)a[5];
    const REAL *X = ARG(6, const REAL *), *Wih = ARG(7, const REAL *), *Whh = ARG(8, const REAL *);
    const int64_t *len = ARG(9, const int64_t *);
    const REAL *P = ARG(10, const REAL *), *hN = ARG(11, const REAL *);
    const REAL *dout = ARG(12, const REAL *), *dhn = ARG(13, const REAL *);
    REAL *dh0 = ARG(14, REAL *), *dX = ARG(15, REAL *), *dWih = ARG(16, REAL *);
    REAL *dWhh = ARG(17, REAL *), *dbih = ARG(18, REAL *), *dbhh = ARG(19, REAL *);
    int nthreads = (int)a[20];
    size_t dsb = (size_t)a[21], dst = (size_t)a[22];
    size_t TB = (size_t)T * B, TH = (size_t)T * H;
    REAL *dA = (REAL *)malloc(TB * H * sizeof(REAL));  /* (B, T, H) */
    REAL *buf = (REAL *)malloc((size_t)2 * B * H * sizeof(REAL));
    if (!dA || !buf) { free(dA); free(buf); return -1; }
    REAL *zrow = (REAL *)calloc((size_t)H, sizeof(REAL));
    if (!zrow) { free(dA); free(buf); return -1; }
    int nt = rk_threads_for(B, nthreads), nc = rk_cols_for(1, H, nthreads, sizeof(REAL));
    /* With the batch split each thread also takes its rows' share of the weight gradients (its
     * dA rows, x rows and P rows are contiguous blocks): one parallel region for the whole call
     * instead of four more GEMMs on MKL's threads. Thread 0 writes the gradients, the others
     * partial sums (dW_hh, dW_ih, db: part floats each) added to them afterwards. */
    int local = !nc && nt > 1;
    size_t part = (size_t)H * H + (size_t)H * D + H;
    REAL *parts = NULL;
    if (local && !(parts = (REAL *)malloc((size_t)(nt - 1) * part * sizeof(REAL)))) {
        free(dA); free(buf); free(zrow);
        return -1;
    }
    std::atomic<int> err{0};
    /* Column split: columns [j0, j1) of dh and dA for all B rows, one barrier per step between
     * the gradient loop and the GEMM that needs all of dA's step. */
    auto cols = [&](int j0, int j1, auto sync) {
        int prev = rk_mkl_local(1), n = j1 - j0, tmax = SUF(max_len)(len, T, 0, B);
        size_t bytes = (size_t)n * sizeof(REAL);
        REAL *dh = buf, *dn = buf + (size_t)B * H;
        SUF(rmat) Wh;
        if (SUF(rmat_init)(&Wh, Whh + j0, H, 0, B, n, H)) err = 1;
        for (int b = 0; b < B; b++) {
            REAL *d = dh + (size_t)b * H + j0;
            if (dhn) memcpy(d, dhn + (size_t)b * H + j0, bytes); else memset(d, 0, bytes);
            for (int t = tmax; t < T; t++) memset(dA + b * TH + (size_t)t * H + j0, 0, bytes);
        }
        sync();
        if (!err) {
            dh = SUF(sweep_cols)(&Wh, tmax, B, H, j0, dA, (size_t)H, (int)TH, dh, dn, sync,
                                 [&](int t, REAL *dh, REAL *dn) {
                REAL *da = dA + (size_t)t * H;
                int last = t + 1 == T;
                const REAL *hs = last ? hN : P + (size_t)(t + 1) * H;
                size_t ldh = last ? (size_t)H : TH;
                for (int b = 0; b < B; b++) {
                    size_t r = (size_t)b * H + j0;
                    REAL *g = da + b * TH + j0;
                    if (len && t >= len[b]) {
                        memset(g, 0, bytes);
                        memcpy(dn + r, dh + r, bytes);
                        continue;
                    }
                    const REAL *go = (dout ? dout + b * dsb + t * dst : zrow) + j0;
                    SUF(elman_row_bwd)(act, n, dh + r, go, hs + b * ldh + j0, g, dn + r);
                }
            });
            if (dh0) SUF(copy_cols)(dh0, dh, B, H, j0, n);
        }
        SUF(rmat_free)(&Wh);
        rk_mkl_local(prev);
    };
    if (nc) rk_team(H, nc, cols);
    else rk_parallel(nt, [&](int tid) {
        int b0, b1, prev = rk_mkl_local(1);
        SUF(split)(B, nt, tid, &b0, &b1);
        int M = b1 - b0, tmax = SUF(max_len)(len, T, b0, b1);
        REAL *dh = buf + (size_t)b0 * H, *dn = buf + (size_t)(B + b0) * H;
        SUF(rmat) Wh;
        if (SUF(rmat_init)(&Wh, Whh, H, 0, M, H, H)) err = 1;
        else {
            if (dhn) memcpy(dh, dhn + (size_t)b0 * H, (size_t)M * H * sizeof(REAL));
            else memset(dh, 0, (size_t)M * H * sizeof(REAL));
            for (int b = b0; b < b1; b++)
                if (tmax < T)
                    memset(dA + b * TH + (size_t)tmax * H, 0, (size_t)(T - tmax) * H * sizeof(REAL));
            for (int t = tmax - 1; t >= 0; t--) {
                REAL *da = dA + b0 * TH + (size_t)t * H;
                int last = t + 1 == T;
                const REAL *hs = last ? hN + (size_t)b0 * H : P + b0 * TH + (size_t)(t + 1) * H;
                size_t ldh = last ? (size_t)H : TH;
                for (int b = 0; b < M; b++) {
                    REAL *g = da + b * TH, *d = dh + (size_t)b * H, *e = dn + (size_t)b * H;
                    const REAL *h = hs + b * ldh;
                    if (len && t >= len[b0 + b]) {
                        memset(g, 0, H * sizeof(REAL));
                        memcpy(e, d, H * sizeof(REAL));
                        continue;
                    }
                    const REAL *go = dout ? dout + (b0 + b) * dsb + t * dst : zrow;
                    SUF(elman_row_bwd)(act, H, d, go, h, g, e);
                }
                SUF(rmat_mul)(&Wh, M, da, (int)TH, 1, dn, H);
                REAL *tmp = dh; dh = dn; dn = tmp;
            }
            if (dh0) memcpy(dh0 + (size_t)b0 * H, dh, (size_t)M * H * sizeof(REAL));
            SUF(rmat_free)(&Wh);
            if (local) {
                REAL *mine = tid ? parts + (size_t)(tid - 1) * part : NULL;
                if (SUF(elman_wgrad)(M * T, D, H, dA + b0 * TH, X + (size_t)b0 * T * D,
                                     P + b0 * TH, Wih, dX ? dX + (size_t)b0 * T * D : NULL,
                                     mine ? mine : dWhh, mine ? mine + H * H : dWih,
                                     mine ? mine + H * H + H * D : (dbih ? dbih : dbhh),
                                     dWhh != NULL, dWih != NULL, dbih || dbhh))
                    err = 1;
            }
        }
        rk_mkl_local(prev);
    });
    REAL *db = dbih ? dbih : dbhh;
    if (!err && !local && SUF(elman_wgrad)((int)TB, D, H, dA, X, P, Wih, dX, dWhh, dWih, db,
                                           dWhh != NULL, dWih != NULL, db != NULL))
        err = 1;
    for (int k = 0; local && !err && k < nt - 1; k++) {
        const REAL *q = parts + (size_t)k * part;
        if (dWhh) for (size_t i = 0; i < (size_t)H * H; i++) dWhh[i] += q[i];
        if (dWih) for (size_t i = 0; i < (size_t)H * D; i++) dWih[i] += q[H * H + i];
        if (db) for (int i = 0; i < H; i++) db[i] += q[H * H + H * D + i];
    }
    if (!err && dbih && dbhh) memcpy(dbhh, dbih, H * sizeof(REAL));
    free(parts); free(dA); free(buf); free(zrow);
    return err ? -1 : 0;
}

/* ------------------------------------------------------------------------------------------
 * GRU, gates r, z, n. reset_after=1: n = tanh(Wn x + bin + r (Whn h + bhn)) (PyTorch);
 * reset_after=0: n = tanh(Wn x + bin + Whn (r h) + bhn) (Cho 2014). h' = (1 - z) n + z h.
 * Saved per step: r, z, n in place of the input projection (S), plus
 * ext = Whn h + bhn (reset_after=1) or r h (reset_after=0).
 * ---------------------------------------------------------------------------------------- */

/* a: dt T B D H ra X Wih Whh bih bhh len h0 S Hs ext out nthreads */
static int SUF(gru_fwd)(const int64_t *a) {
    int T = (int)a[1], B = (int)a[2], D = (int)a[3], H = (int)a[4], ra = (int)a[5];
    const REAL *X = ARG(6, const REAL *), *Wih = ARG(7, const REAL *), *Whh = ARG(8, const REAL *);
    const REAL *bih = ARG(9, const REAL *), *bhh = ARG(10, const REAL *);
    const int64_t *len = ARG(11, const int64_t *);
    const REAL *h0 = ARG(12, const REAL *);
    REAL *S = ARG(13, REAL *), *Hs = ARG(14, REAL *), *ext = ARG(15, REAL *), *out = ARG(16, REAL *);
    int nthreads = (int)a[17];
    int G = 3 * H;
    REAL *bx, *bh;
    if (SUF(make_bias)(3, H, bih, bhh, !ra, &bx, &bh)) return -1;
    size_t gh_bytes = (size_t)B * G * sizeof(REAL);
    REAL *gh = ra ? (REAL *)rk_take(gh_bytes) : NULL;
    if (ra && !gh) { free(bx); free(bh); return -1; }
    memcpy(Hs, h0, (size_t)B * H * sizeof(REAL));
    SUF(gemm)('N', 'T', T * B, G, D, 1, X, D, Wih, D, 0, S, G);
    int nt = rk_threads_for(B, nthreads), nc = ra ? rk_cols_for(G / H, H, nthreads, sizeof(REAL)) : 0;
    std::atomic<int> err{0};
    /* Column split (reset_after=1 only: reset_after=0 needs all of r h between its two GEMMs),
     * as in lstm_fwd: gh's and the state's columns [j0, j1) for all B rows. */
    auto cols = [&](int j0, int j1, auto sync) {
        int prev = rk_mkl_local(1), n = j1 - j0, tmax = SUF(max_len)(len, T, 0, B), ok = 1;
        size_t BH = (size_t)B * H, bytes = (size_t)n * sizeof(REAL);
        SUF(rmat) Wg[3];
        for (int k = 0; k < 3; k++)
            ok &= !SUF(rmat_init)(&Wg[k], Whh + ((size_t)k * H + j0) * H, H, 1, B, n, H);
        if (!ok) err = 1;
        sync();
        if (!err) {
            for (int t = 0; t < tmax; t++) {
                REAL *s = S + (size_t)t * B * G, *e = ext + t * BH;
                const REAL *hp = Hs + t * BH;
                REAL *hn = Hs + (t + 1) * BH;
                for (int k = 0; k < 3; k++)
                    SUF(rmat_mul)(&Wg[k], B, hp, H, 0, gh + (size_t)k * H + j0, G);
                for (int b = 0; b < B; b++) {
                    size_t r = (size_t)b * H + j0, q = (size_t)b * G + j0;
                    REAL *o = out + ((size_t)b * T + t) * H + j0;
                    if (len && t >= len[b]) {
                        memcpy(hn + r, hp + r, bytes);
                        memset(o, 0, bytes);
                        continue;
                    }
                    SUF(gru_row_fwd_ra)(H, n, s + q, gh + q, bx + j0, bh + j0, hp + r, e + r, hn + r,
                                        o);
                }
                sync();
            }
            SUF(carry_tail)(T, B, H, 0, B, j0, n, tmax, Hs, NULL, out);
        }
        for (int k = 0; k < 3; k++) SUF(rmat_free)(&Wg[k]);
        rk_mkl_local(prev);
    };
    if (nc) rk_team(H, nc, cols);
    else rk_parallel(nt, [&](int tid) {
        int b0, b1, prev = rk_mkl_local(1);
        SUF(split)(B, nt, tid, &b0, &b1);
        int M = b1 - b0, tmax = SUF(max_len)(len, T, b0, b1);
        SUF(rmat) W1, W2;
        W2.packed = NULL;
        W2.own.p = NULL;
        /* reset_after=1: one product with all of W_hh; =0: W_hrz (2H rows) then W_hn. */
        int e1 = SUF(rmat_init)(&W1, Whh, H, 1, M, ra ? G : 2 * H, H);
        int e2 = ra ? 0 : SUF(rmat_init)(&W2, Whh + (size_t)2 * H * H, H, 1, M, H, H);
        if (e1 || e2) err = 1;
        else {
            for (int t = 0; t < tmax; t++) {
                REAL *s = S + ((size_t)t * B + b0) * G;
                REAL *e = ext + ((size_t)t * B + b0) * H;
                const REAL *hp = Hs + ((size_t)t * B + b0) * H;
                REAL *hn = Hs + ((size_t)(t + 1) * B + b0) * H;
                if (ra) {
                    REAL *g = gh + (size_t)b0 * G;
                    SUF(rmat_mul)(&W1, M, hp, H, 0, g, G);
                    for (int b = 0; b < M; b++) {
                        REAL *sb = s + (size_t)b * G, *gb = g + (size_t)b * G, *eb = e + (size_t)b * H;
                        const REAL *hb = hp + (size_t)b * H;
                        REAL *hnb = hn + (size_t)b * H;
                        REAL *o = out + ((size_t)(b0 + b) * T + t) * H;
                        if (len && t >= len[b0 + b]) {
                            memcpy(hnb, hb, H * sizeof(REAL));
                            memset(o, 0, H * sizeof(REAL));
                            continue;
                        }
                        SUF(gru_row_fwd_ra)(H, H, sb, gb, bx, bh, hb, eb, hnb, o);
                    }
                } else {
                    SUF(rmat_mul)(&W1, M, hp, H, 1, s, G);
                    for (int b = 0; b < M; b++) {
                        REAL *sb = s + (size_t)b * G, *eb = e + (size_t)b * H;
                        const REAL *hb = hp + (size_t)b * H;
                        SUF(gru_row_fwd_rz)(H, sb, bx, hb, eb);
                    }
                    SUF(rmat_mul)(&W2, M, e, H, 1, s + 2 * H, G);
                    for (int b = 0; b < M; b++) {
                        REAL *sb = s + (size_t)b * G;
                        const REAL *hb = hp + (size_t)b * H;
                        REAL *hnb = hn + (size_t)b * H;
                        REAL *o = out + ((size_t)(b0 + b) * T + t) * H;
                        if (len && t >= len[b0 + b]) {
                            memcpy(hnb, hb, H * sizeof(REAL));
                            memset(o, 0, H * sizeof(REAL));
                            continue;
                        }
                        SUF(gru_row_fwd_n)(H, sb, bx, hb, hnb, o);
                    }
                }
            }
            SUF(carry_tail)(T, B, H, b0, b1, 0, H, tmax, Hs, NULL, out);
        }
        if (!e1) SUF(rmat_free)(&W1);
        if (!ra && !e2) SUF(rmat_free)(&W2);
        rk_mkl_local(prev);
    });
    if (ra) rk_give(gh, gh_bytes);
    free(bx); free(bh);
    return err ? -1 : 0;
}

/* a: dt T B D H ra X Wih Whh len Hs S ext dout dhn dh0 dX dWih dWhh dbih dbhh nthreads dsb dst */
static int SUF(gru_bwd)(const int64_t *a) {
    int T = (int)a[1], B = (int)a[2], D = (int)a[3], H = (int)a[4], ra = (int)a[5];
    const REAL *X = ARG(6, const REAL *), *Wih = ARG(7, const REAL *), *Whh = ARG(8, const REAL *);
    const int64_t *len = ARG(9, const int64_t *);
    const REAL *Hs = ARG(10, const REAL *), *S = ARG(11, const REAL *), *ext = ARG(12, const REAL *);
    const REAL *dout = ARG(13, const REAL *), *dhn = ARG(14, const REAL *);
    REAL *dh0 = ARG(15, REAL *), *dX = ARG(16, REAL *), *dWih = ARG(17, REAL *);
    REAL *dWhh = ARG(18, REAL *), *dbih = ARG(19, REAL *), *dbhh = ARG(20, REAL *);
    int nthreads = (int)a[21];
    size_t dsb = (size_t)a[22], dst = (size_t)a[23];
    int G = 3 * H;
    size_t TB = (size_t)T * B;
    /* dG: gradients of the gate pre-activations (T, B, 3H), rows of ldg. reset_after=1: the
     * hidden-side ones (n part is dan * r); the input-side n part dan goes to dxn (T, B, H),
     * rows of ldx. reset_after=0: input and hidden sides are equal; rbuf holds d(r h) per step.
     * `wide` (reset_after=1 where the own GEMM is off, i.e. MKL / the BLAS: GenuineIntel): one
     * (T, B, 4H) block, each row [dan | dr dz dn_h], so dG = its columns [H, 4H) and dxn its
     * columns [0, H), both rows of 4H: the weight gradients are then two GEMMs, each transposed
     * (W^T = [h | x]^T dG, M = H, N = 3H, op(A) = A^T), which MKL ran at 336-339 GFLOP/s on the
     * Xeon against 302 for dG^T [h | x] (N = H) in three (session 14, helper kgru). Off with
     * rk_gru_wide 0 (gru_configure). */
    int wide = ra && !rk_own_on && rk_gru_wide;
    size_t ldg = wide ? (size_t)4 * H : (size_t)G, ldx = wide ? (size_t)4 * H : (size_t)H;
    SUF(bwd_ws) ws;
    if (SUF(bwd_ws_take)(&ws, wide ? TB * 4 * H : TB * G, ra && !wide ? TB * H : 0,
                         (size_t)3 * B * H, H)) return -1;
    REAL *dG = wide ? ws.dG + H : ws.dG, *dxn = wide ? ws.dG : ws.dx, *buf = ws.buf, *zrow = ws.zrow;
    /* zero the gradient rows [r0, r1) (steps past every length) */
    auto zero_rows = [&](size_t r0, size_t r1) {
        if (wide) { memset(ws.dG + r0 * ldg, 0, (r1 - r0) * ldg * sizeof(REAL)); return; }
        memset(dG + r0 * ldg, 0, (r1 - r0) * ldg * sizeof(REAL));
        if (ra) memset(dxn + r0 * ldx, 0, (r1 - r0) * ldx * sizeof(REAL));
    };
    int nt = rk_threads_for(B, nthreads), nc = ra ? rk_cols_for(G / H, H, nthreads, sizeof(REAL)) : 0;
    std::atomic<int> err{0};
    int tmax_all = SUF(max_len)(len, T, 0, B);
    if (nc && tmax_all < T) zero_rows((size_t)tmax_all * B, TB);
    /* Column split (reset_after=1), as in lstm_bwd. */
    auto cols = [&](int j0, int j1, auto sync) {
        int prev = rk_mkl_local(1), n = j1 - j0;
        size_t BH = (size_t)B * H, bytes = (size_t)n * sizeof(REAL);
        REAL *dh = buf, *dn = buf + BH;
        SUF(rmat) Wh;
        if (SUF(rmat_init)(&Wh, Whh + j0, H, 0, B, n, G)) err = 1;
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)b * H + j0;
            if (dhn) memcpy(dh + r, dhn + r, bytes); else memset(dh + r, 0, bytes);
        }
        sync();
        if (!err) {
            dh = SUF(sweep_cols)(&Wh, tmax_all, B, H, j0, dG, (size_t)B * ldg, (int)ldg, dh, dn,
                                 sync, [&](int t, REAL *dh, REAL *dn) {
                const REAL *s = S + (size_t)t * B * G, *e = ext + t * BH, *hp = Hs + t * BH;
                for (int b = 0; b < B; b++) {
                    size_t r = (size_t)b * H + j0, row = (size_t)t * B + b;
                    REAL *gb = dG + row * ldg + j0, *xb = dxn + row * ldx + j0;
                    if (len && t >= len[b]) {
                        for (int k = 0; k < 3; k++) memset(gb + (size_t)k * H, 0, bytes);
                        memset(xb, 0, bytes);
                        memcpy(dn + r, dh + r, bytes);
                        continue;
                    }
                    const REAL *go = (dout ? dout + b * dsb + t * dst : zrow) + j0;
                    SUF(gru_row_bwd_ra)(H, n, dh + r, go, s + (size_t)b * G + j0, e + r, hp + r, gb,
                                        xb, dn + r);
                }
            });
            if (dh0) SUF(copy_cols)(dh0, dh, B, H, j0, n);
        }
        SUF(rmat_free)(&Wh);
        rk_mkl_local(prev);
    };
    if (nc) rk_team(H, nc, cols);
    else rk_parallel(nt, [&](int tid) {
        int b0, b1, prev = rk_mkl_local(1);
        SUF(split)(B, nt, tid, &b0, &b1);
        int M = b1 - b0, tmax = SUF(max_len)(len, T, b0, b1);
        REAL *dh = buf + (size_t)b0 * H, *dn = buf + (size_t)(B + b0) * H;
        REAL *drh = buf + (size_t)(2 * B + b0) * H;
        SUF(rmat) W1, W2;
        W2.packed = NULL;
        W2.own.p = NULL;
        int e1 = SUF(rmat_init)(&W1, Whh, H, 0, M, H, ra ? G : 2 * H);
        int e2 = ra ? 0 : SUF(rmat_init)(&W2, Whh + (size_t)2 * H * H, H, 0, M, H, H);
        if (e1 || e2) err = 1;
        else {
            if (dhn) memcpy(dh, dhn + (size_t)b0 * H, (size_t)M * H * sizeof(REAL));
            else memset(dh, 0, (size_t)M * H * sizeof(REAL));
            for (int t = T - 1; t >= tmax; t--)
                zero_rows((size_t)t * B + b0, (size_t)t * B + b1);
            for (int t = tmax - 1; t >= 0; t--) {
                const REAL *s = S + ((size_t)t * B + b0) * G;
                const REAL *e = ext + ((size_t)t * B + b0) * H;
                const REAL *hp = Hs + ((size_t)t * B + b0) * H;
                REAL *g = dG + ((size_t)t * B + b0) * ldg;
                for (int b = 0; b < M; b++) {
                    const REAL *sb = s + (size_t)b * G, *eb = e + (size_t)b * H, *hb = hp + (size_t)b * H;
                    REAL *gb = g + (size_t)b * ldg, *d = dh + (size_t)b * H, *nb = dn + (size_t)b * H;
                    REAL *xb = ra ? dxn + ((size_t)t * B + b0 + b) * ldx : NULL;
                    if (len && t >= len[b0 + b]) {
                        memset(gb, 0, G * sizeof(REAL));
                        if (ra) memset(xb, 0, H * sizeof(REAL));
                        memcpy(nb, d, H * sizeof(REAL));
                        continue;
                    }
                    const REAL *go = dout ? dout + (b0 + b) * dsb + t * dst : zrow;
                    if (ra) SUF(gru_row_bwd_ra)(H, H, d, go, sb, eb, hb, gb, xb, nb);
                    else SUF(gru_row_bwd_zn)(H, d, go, sb, hb, gb, nb);
                }
                if (!ra) {
                    SUF(rmat_mul)(&W2, M, g + 2 * H, G, 0, drh, H);
                    for (int b = 0; b < M; b++) {
                        if (len && t >= len[b0 + b]) continue;
                        const REAL *sb = s + (size_t)b * G, *hb = hp + (size_t)b * H;
                        REAL *gb = g + (size_t)b * G, *nb = dn + (size_t)b * H;
                        SUF(gru_row_bwd_r)(H, sb, hb, drh + (size_t)b * H, gb, nb);
                    }
                }
                SUF(rmat_mul)(&W1, M, g, (int)ldg, 1, dn, H);
                REAL *tmp = dh; dh = dn; dn = tmp;
            }
            if (dh0) memcpy(dh0 + (size_t)b0 * H, dh, (size_t)M * H * sizeof(REAL));
        }
        if (!e1) SUF(rmat_free)(&W1);
        if (!ra && !e2) SUF(rmat_free)(&W2);
        rk_mkl_local(prev);
    });
    if (!err) {
        int tb = (int)TB;
        if (wide) {
            /* W^T (rows, 3H) = A^T dG, then transposed into W, gate blocks reordered for dW_ih
             * (its columns are [dan | dr dz]: W_ih's rows r, z come from [H, 3H), n from [0, H)) */
            int R = D > H ? D : H, L = 4 * H;
            size_t nW = (size_t)R * G;
            REAL *wt = (dWhh || dWih) ? (REAL *)rk_take(nW * sizeof(REAL)) : NULL;
            if ((dWhh || dWih) && !wt) err = 1;
            if (!err && dWhh) {
                SUF(gemm)('T', 'N', H, G, tb, 1, Hs, H, dG, L, 0, wt, G);
                SUF(transpose)(wt, H, G, G, dWhh, H);
            }
            if (!err && dWih) {
                SUF(gemm)('T', 'N', D, G, tb, 1, X, D, ws.dG, L, 0, wt, G);
                SUF(transpose)(wt + H, D, 2 * H, G, dWih, D);
                SUF(transpose)(wt, D, H, G, dWih + (size_t)2 * H * D, D);
            }
            rk_give(wt, nW * sizeof(REAL));
            if (dX) {
                SUF(gemm)('N', 'N', tb, D, 2 * H, 1, dG, L, Wih, D, 0, dX, D);
                SUF(gemm)('N', 'N', tb, D, H, 1, dxn, L, Wih + (size_t)2 * H * D, D, 1, dX, D);
            }
            if (!err && (dbih || dbhh)) {  /* one sum of all 4H columns */
                REAL *sum = (REAL *)malloc((size_t)L * sizeof(REAL));
                if (!sum || SUF(colsum)(ws.dG, TB, L, L, sum)) err = 1;
                else {
                    if (dbhh) memcpy(dbhh, sum + H, (size_t)G * sizeof(REAL));
                    if (dbih) {
                        memcpy(dbih, sum + H, (size_t)2 * H * sizeof(REAL));
                        memcpy(dbih + 2 * H, sum, (size_t)H * sizeof(REAL));
                    }
                }
                free(sum);
            }
        } else if (ra) {
            if (dWhh) SUF(gemm)('T', 'N', G, H, tb, 1, dG, G, Hs, H, 0, dWhh, H);
            if (dWih) {
                SUF(gemm)('T', 'N', 2 * H, D, tb, 1, dG, G, X, D, 0, dWih, D);
                SUF(gemm)('T', 'N', H, D, tb, 1, dxn, H, X, D, 0, dWih + (size_t)2 * H * D, D);
            }
            if (dX) {
                SUF(gemm)('N', 'N', tb, D, 2 * H, 1, dG, G, Wih, D, 0, dX, D);
                SUF(gemm)('N', 'N', tb, D, H, 1, dxn, H, Wih + (size_t)2 * H * D, D, 1, dX, D);
            }
            if (dbhh && SUF(colsum)(dG, TB, G, G, dbhh)) err = 1;
            if (dbih && (SUF(colsum)(dG, TB, 2 * H, G, dbih) ||
                         SUF(colsum)(dxn, TB, H, H, dbih + 2 * H))) err = 1;
        } else {
            if (dWhh) {
                SUF(gemm)('T', 'N', 2 * H, H, tb, 1, dG, G, Hs, H, 0, dWhh, H);
                SUF(gemm)('T', 'N', H, H, tb, 1, dG + 2 * H, G, ext, H, 0, dWhh + (size_t)2 * H * H, H);
            }
            if (dWih) SUF(gemm)('T', 'N', G, D, tb, 1, dG, G, X, D, 0, dWih, D);
            if (dX) SUF(gemm)('N', 'N', tb, D, G, 1, dG, G, Wih, D, 0, dX, D);
            if (dbih || dbhh) {
                REAL *db = dbih ? dbih : dbhh;
                if (SUF(colsum)(dG, TB, G, G, db)) err = 1;
                else if (dbih && dbhh) memcpy(dbhh, dbih, G * sizeof(REAL));
            }
        }
    }
    SUF(bwd_ws_give)(&ws);
    return err ? -1 : 0;
}

/* ------------------------------------------------------------------------------------------
 * LSTM, gates i, f, g, o: c' = f c + i g; h' = o tanh(c'). Saved: activated gates in S.
 * ---------------------------------------------------------------------------------------- */

/* a: dt T B D H X Wih Whh bih bhh len h0 c0 S Hs Cs out nthreads */
static int SUF(lstm_fwd)(const int64_t *a) {
    int T = (int)a[1], B = (int)a[2], D = (int)a[3], H = (int)a[4];
    const REAL *X = ARG(5, const REAL *), *Wih = ARG(6, const REAL *), *Whh = ARG(7, const REAL *);
    const REAL *bih = ARG(8, const REAL *), *bhh = ARG(9, const REAL *);
    const int64_t *len = ARG(10, const int64_t *);
    const REAL *h0 = ARG(11, const REAL *), *c0 = ARG(12, const REAL *);
    REAL *S = ARG(13, REAL *), *Hs = ARG(14, REAL *), *Cs = ARG(15, REAL *), *out = ARG(16, REAL *);
    int nthreads = (int)a[17];
    int G = 4 * H;
    REAL *bx, *bh;
    if (SUF(make_bias)(4, H, bih, bhh, 1, &bx, &bh)) return -1;
    memcpy(Hs, h0, (size_t)B * H * sizeof(REAL));
    memcpy(Cs, c0, (size_t)B * H * sizeof(REAL));
    int nt = rk_threads_for(B, nthreads), nc = rk_cols_for(G / H, H, nthreads, sizeof(REAL));
#if IS_FLOAT
    /* the fused step (above): float, AVX-512, full lengths, the batch split */
    int mode = rk_lstm_fuse, kc = rk_lstm_kc_get();
    if (mode == 3) rk_lstm_auto(D, H, &mode, &kc);
    if (mode > 0 && !len && !nc && rk_lstm_runs()) {
        int Kx = mode == 2 ? D : 0;
        size_t bytes;
        float *P = rk_lstm_pack(Wih, Whh, D, H, Kx, &bytes);
        if (!P) { free(bx); free(bh); return -1; }
        if (!Kx) SUF(gemm)('N', 'T', T * B, G, D, 1, X, D, Wih, D, 0, S, G);
        int kerr = 0;
        rk_parallel(nt, [&](int tid) {
            int b0, b1;
            SUF(split)(B, nt, tid, &b0, &b1);
            size_t nbuf = kc > 0 ? (size_t)(b1 - b0) * 64 * sizeof(float) : 0;
            float *buf = nbuf ? (float *)rk_take(nbuf) : NULL;
            if (nbuf && !buf) { kerr = 1; return; }
            for (int t = 0; t < T; t++) {
                size_t r0 = (size_t)t * B + b0, r1 = (size_t)(t + 1) * B + b0;
                REAL *s = S + r0 * G;
                RkLstmRows rows = {X + r0 * D, Hs + r0 * H, Cs + r0 * H, Kx ? NULL : s, s,
                                   Hs + r1 * H, Cs + r1 * H, out + ((size_t)b0 * T + t) * H,
                                   (size_t)D, (size_t)T * H};
                rk_lstm_step(b1 - b0, H, Kx, P, bx, rows, kc, buf);
            }
            rk_give(buf, nbuf);
        });
        rk_give(P, bytes);
        free(bx); free(bh);
        return kerr ? -1 : 0;
    }
#endif
    SUF(gemm)('N', 'T', T * B, G, D, 1, X, D, Wih, D, 0, S, G);
    std::atomic<int> err{0};
    size_t BH = (size_t)B * H;
    /* Column split (see rk_cols_for): the thread owns columns [j0, j1) of every gate and of the
     * state, for all B rows; each step's new state is read whole by the next step's GEMMs. */
    auto cols = [&](int j0, int j1, auto sync) {
        int prev = rk_mkl_local(1), n = j1 - j0, tmax = SUF(max_len)(len, T, 0, B), ok = 1;
        size_t bytes = (size_t)n * sizeof(REAL);
        SUF(rmat) Wg[4]; /* per gate, the rows of W_hh that give columns [j0, j1) */
        for (int k = 0; k < 4; k++)
            ok &= !SUF(rmat_init)(&Wg[k], Whh + ((size_t)k * H + j0) * H, H, 1, B, n, H);
        if (!ok) err = 1;
        sync();
        if (!err) {
            for (int t = 0; t < tmax; t++) {
                REAL *s = S + (size_t)t * B * G;
                const REAL *hp = Hs + t * BH, *cp = Cs + t * BH;
                REAL *hn = Hs + (t + 1) * BH, *cn = Cs + (t + 1) * BH;
                for (int k = 0; k < 4; k++)
                    SUF(rmat_mul)(&Wg[k], B, hp, H, 1, s + (size_t)k * H + j0, G);
                for (int b = 0; b < B; b++) {
                    size_t r = (size_t)b * H + j0;
                    REAL *o = out + ((size_t)b * T + t) * H + j0;
                    if (len && t >= len[b]) {
                        memcpy(hn + r, hp + r, bytes);
                        memcpy(cn + r, cp + r, bytes);
                        memset(o, 0, bytes);
                        continue;
                    }
                    SUF(lstm_row_fwd)(H, n, s + (size_t)b * G + j0, bx + j0, cp + r, cn + r, hn + r, o);
                }
                sync();
            }
            SUF(carry_tail)(T, B, H, 0, B, j0, n, tmax, Hs, Cs, out);
        }
        for (int k = 0; k < 4; k++) SUF(rmat_free)(&Wg[k]);
        rk_mkl_local(prev);
    };
    if (nc) rk_team(H, nc, cols);
    else rk_parallel(nt, [&](int tid) {
        int b0, b1, prev = rk_mkl_local(1);
        SUF(split)(B, nt, tid, &b0, &b1);
        int M = b1 - b0, tmax = SUF(max_len)(len, T, b0, b1);
        SUF(rmat) Wh;
        if (SUF(rmat_init)(&Wh, Whh, H, 1, M, G, H)) err = 1;
        else {
            for (int t = 0; t < tmax; t++) {
                REAL *s = S + ((size_t)t * B + b0) * G;
                const REAL *hp = Hs + ((size_t)t * B + b0) * H, *cp = Cs + ((size_t)t * B + b0) * H;
                REAL *hn = Hs + ((size_t)(t + 1) * B + b0) * H, *cn = Cs + ((size_t)(t + 1) * B + b0) * H;
                SUF(rmat_mul)(&Wh, M, hp, H, 1, s, G);
                for (int b = 0; b < M; b++) {
                    REAL *sb = s + (size_t)b * G;
                    const REAL *cb = cp + (size_t)b * H;
                    REAL *hnb = hn + (size_t)b * H, *cnb = cn + (size_t)b * H;
                    REAL *o = out + ((size_t)(b0 + b) * T + t) * H;
                    if (len && t >= len[b0 + b]) {
                        memcpy(hnb, hp + (size_t)b * H, H * sizeof(REAL));
                        memcpy(cnb, cb, H * sizeof(REAL));
                        memset(o, 0, H * sizeof(REAL));
                        continue;
                    }
                    SUF(lstm_row_fwd)(H, H, sb, bx, cb, cnb, hnb, o);
                }
            }
            SUF(carry_tail)(T, B, H, b0, b1, 0, H, tmax, Hs, Cs, out);
            SUF(rmat_free)(&Wh);
        }
        rk_mkl_local(prev);
    });
    free(bx); free(bh);
    return err ? -1 : 0;
}

/* a: dt T B D H X Wih Whh len Hs Cs S dout dhn dcn dh0 dc0 dX dWih dWhh dbih dbhh nthreads dsb
 * dst */
static int SUF(lstm_bwd)(const int64_t *a) {
    int T = (int)a[1], B = (int)a[2], D = (int)a[3], H = (int)a[4];
    const REAL *X = ARG(5, const REAL *), *Wih = ARG(6, const REAL *), *Whh = ARG(7, const REAL *);
    const int64_t *len = ARG(8, const int64_t *);
    const REAL *Hs = ARG(9, const REAL *), *Cs = ARG(10, const REAL *), *S = ARG(11, const REAL *);
    const REAL *dout = ARG(12, const REAL *), *dhn = ARG(13, const REAL *), *dcn = ARG(14, const REAL *);
    REAL *dh0 = ARG(15, REAL *), *dc0 = ARG(16, REAL *), *dX = ARG(17, REAL *);
    REAL *dWih = ARG(18, REAL *), *dWhh = ARG(19, REAL *), *dbih = ARG(20, REAL *), *dbhh = ARG(21, REAL *);
    int nthreads = (int)a[22];
    size_t dsb = (size_t)a[23], dst = (size_t)a[24];
    int G = 4 * H;
    size_t TB = (size_t)T * B;
    SUF(bwd_ws) ws;
    if (SUF(bwd_ws_take)(&ws, TB * G, 0, (size_t)3 * B * H, H)) return -1;
    REAL *dG = ws.dG, *buf = ws.buf, *zrow = ws.zrow;
    int nt = rk_threads_for(B, nthreads), nc = rk_cols_for(G / H, H, nthreads, sizeof(REAL));
    std::atomic<int> err{0};
    int tmax_all = SUF(max_len)(len, T, 0, B);
    if (nc && tmax_all < T)
        memset(dG + (size_t)tmax_all * B * G, 0, (size_t)(T - tmax_all) * B * G * sizeof(REAL));
    /* Column split: the thread owns columns [j0, j1) of dh, dc and of every gate's dG for all
     * B rows; its block of the next dh is all of dG times W_hh's columns [j0, j1), so one
     * barrier per step, between the gate loop and that GEMM. */
    auto cols = [&](int j0, int j1, auto sync) {
        int prev = rk_mkl_local(1), n = j1 - j0;
        size_t BH = (size_t)B * H, bytes = (size_t)n * sizeof(REAL);
        REAL *dh = buf, *dn = buf + BH, *dc = buf + 2 * BH;
        SUF(rmat) Wh;
        if (SUF(rmat_init)(&Wh, Whh + j0, H, 0, B, n, G)) err = 1;
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)b * H + j0;
            if (dhn) memcpy(dh + r, dhn + r, bytes); else memset(dh + r, 0, bytes);
            if (dcn) memcpy(dc + r, dcn + r, bytes); else memset(dc + r, 0, bytes);
        }
        sync();
        if (!err) {
            dh = SUF(sweep_cols)(&Wh, tmax_all, B, H, j0, dG, (size_t)B * G, G, dh, dn, sync,
                                 [&](int t, REAL *dh, REAL *dn) {
                const REAL *s = S + (size_t)t * B * G;
                const REAL *cs = Cs + (t + 1) * BH, *cps = Cs + t * BH;
                REAL *g = dG + (size_t)t * B * G;
                for (int b = 0; b < B; b++) {
                    size_t r = (size_t)b * H + j0;
                    REAL *gb = g + (size_t)b * G + j0;
                    if (len && t >= len[b]) {
                        for (int k = 0; k < 4; k++) memset(gb + (size_t)k * H, 0, bytes);
                        memcpy(dn + r, dh + r, bytes);
                        continue;
                    }
                    const REAL *go = (dout ? dout + b * dsb + t * dst : zrow) + j0;
                    SUF(lstm_row_bwd)(H, n, dh + r, go, s + (size_t)b * G + j0, cs + r, cps + r,
                                      dc + r, gb, dn + r);
                }
            });
            if (dh0) SUF(copy_cols)(dh0, dh, B, H, j0, n);
            if (dc0) SUF(copy_cols)(dc0, dc, B, H, j0, n);
        }
        SUF(rmat_free)(&Wh);
        rk_mkl_local(prev);
    };
    if (nc) rk_team(H, nc, cols);
    else rk_parallel(nt, [&](int tid) {
        int b0, b1, prev = rk_mkl_local(1);
        SUF(split)(B, nt, tid, &b0, &b1);
        int M = b1 - b0, tmax = SUF(max_len)(len, T, b0, b1);
        REAL *dh = buf + (size_t)b0 * H, *dn = buf + (size_t)(B + b0) * H;
        REAL *dc = buf + (size_t)(2 * B + b0) * H;
        SUF(rmat) Wh;
        if (SUF(rmat_init)(&Wh, Whh, H, 0, M, H, G)) err = 1;
        else {
            size_t rows = (size_t)M * H * sizeof(REAL);
            if (dhn) memcpy(dh, dhn + (size_t)b0 * H, rows); else memset(dh, 0, rows);
            if (dcn) memcpy(dc, dcn + (size_t)b0 * H, rows); else memset(dc, 0, rows);
            for (int t = T - 1; t >= tmax; t--)
                memset(dG + ((size_t)t * B + b0) * G, 0, (size_t)M * G * sizeof(REAL));
            for (int t = tmax - 1; t >= 0; t--) {
                const REAL *s = S + ((size_t)t * B + b0) * G;
                const REAL *cs = Cs + ((size_t)(t + 1) * B + b0) * H, *cps = Cs + ((size_t)t * B + b0) * H;
                REAL *g = dG + ((size_t)t * B + b0) * G;
                for (int b = 0; b < M; b++) {
                    const REAL *sb = s + (size_t)b * G, *cb = cs + (size_t)b * H, *cpb = cps + (size_t)b * H;
                    REAL *gb = g + (size_t)b * G, *d = dh + (size_t)b * H, *nb = dn + (size_t)b * H;
                    REAL *dcb = dc + (size_t)b * H;
                    if (len && t >= len[b0 + b]) {
                        memset(gb, 0, G * sizeof(REAL));
                        memcpy(nb, d, H * sizeof(REAL));
                        continue;
                    }
                    const REAL *go = dout ? dout + (b0 + b) * dsb + t * dst : zrow;
                    SUF(lstm_row_bwd)(H, H, d, go, sb, cb, cpb, dcb, gb, nb);
                }
                SUF(rmat_mul)(&Wh, M, g, G, 1, dn, H);
                REAL *tmp = dh; dh = dn; dn = tmp;
            }
            if (dh0) memcpy(dh0 + (size_t)b0 * H, dh, rows);
            if (dc0) memcpy(dc0 + (size_t)b0 * H, dc, rows);
            SUF(rmat_free)(&Wh);
        }
        rk_mkl_local(prev);
    });
    if (!err) {
        int tb = (int)TB;
        if (dWhh) SUF(gemm)('T', 'N', G, H, tb, 1, dG, G, Hs, H, 0, dWhh, H);
        if (dWih) SUF(gemm)('T', 'N', G, D, tb, 1, dG, G, X, D, 0, dWih, D);
        if (dX) SUF(gemm)('N', 'N', tb, D, G, 1, dG, G, Wih, D, 0, dX, D);
        if (dbih || dbhh) {
            REAL *db = dbih ? dbih : dbhh;
            if (SUF(colsum)(dG, TB, G, G, db)) err = 1;
            else if (dbih && dbhh) memcpy(dbhh, dbih, G * sizeof(REAL));
        }
    }
    SUF(bwd_ws_give)(&ws);
    return err ? -1 : 0;
}
