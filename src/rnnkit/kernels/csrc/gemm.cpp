/*
 * rnnkit's own AVX-512 float GEMM (see gemm.h). Loop order as in BLIS: K in blocks of KC, rows
 * in blocks of MC (packed A, in L2), then the column panels of op(B) (each KC x RK_NR block of
 * a panel read from L2 by MC / RK_MR tiles), then the RK_MR x RK_NR register tile. The tile's
 * inner step: 3 zmm loads of B, 8 broadcasts of A, 24 FMAs into 24 accumulators, so it is
 * bound by FMA throughput, not loads (Zen 4: one 512-bit FMA and one 512-bit load a cycle).
 *
 * Compiled for any x86-64: only the tile and the A packing carry target("avx512f"), and
 * rk_own_on is never 1 on a CPU without AVX-512F (elsewhere the kernels run MKL / the BLAS).
 */
#include "gemm.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

#ifndef RK_GEMM_STANDALONE
#include <ATen/Parallel.h>
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RK_OWN_X86 1
#include <cpuid.h>
#include <immintrin.h>
#define RK_TGT __attribute__((target("avx512f")))
#else
#define RK_OWN_X86 0
#define RK_TGT
#endif

int rk_own_on = 0;
int rk_own_route = RK_ROUTE_TN;

namespace {

std::string own_reason = "blas (not initialised)";
int kc_block = 512, mc_block = 256;

std::string cpu_vendor() {
#if RK_OWN_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return "";
    char v[13];
    memcpy(v, &b, 4); memcpy(v + 4, &d, 4); memcpy(v + 8, &c, 4);
    v[12] = 0;
    return v;
#else
    return "";
#endif
}

long cache_bytes(int name, long fallback) {
#ifdef _SC_LEVEL1_DCACHE_SIZE
    long v = sysconf(name);
    if (v > 0) return v;
#else
    (void)name;
#endif
    return fallback;
}

/* KC: the A micro-panel (RK_MR x KC) in half of L1d; MC: the packed A block in half of L2. */
void size_blocks() {
#ifdef _SC_LEVEL1_DCACHE_SIZE
    long l1 = cache_bytes(_SC_LEVEL1_DCACHE_SIZE, 32 << 10);
    long l2 = cache_bytes(_SC_LEVEL2_CACHE_SIZE, 1 << 20);
#else
    long l1 = 32 << 10, l2 = 1 << 20;
#endif
    long kc = l1 / (2 * RK_MR * (long)sizeof(float));
    kc = kc < 128 ? 128 : kc > 1024 ? 1024 : kc;
    long mc = l2 / 2 / (kc * (long)sizeof(float)) / RK_MR * RK_MR;
    mc = mc < 32 ? 32 : mc > 1024 ? 1024 : mc;
    kc_block = (int)kc;
    mc_block = (int)mc;
}

#if RK_OWN_X86
/* The tile: C (MR x nr, nr <= RK_NR) (+)= Ap (kc x RK_MR, first MR used) . Bp (kc x RK_NR). */
template <int MR>
RK_TGT void tile(int kc, const float *__restrict Ap, const float *__restrict Bp, float *C,
                 int ldc, int acc, int nr) {
    __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
    __mmask16 m2 = nr >= 48 ? 0xFFFF : nr <= 32 ? 0 : (__mmask16)((1u << (nr - 32)) - 1);
    __m512 c0[MR], c1[MR], c2[MR];
#pragma GCC unroll 8
    for (int m = 0; m < MR; m++) {
        if (acc) {
            c0[m] = _mm512_maskz_loadu_ps(m0, C + (size_t)m * ldc);
            c1[m] = _mm512_maskz_loadu_ps(m1, C + (size_t)m * ldc + 16);
            c2[m] = _mm512_maskz_loadu_ps(m2, C + (size_t)m * ldc + 32);
        } else {
            c0[m] = _mm512_setzero_ps();
            c1[m] = _mm512_setzero_ps();
            c2[m] = _mm512_setzero_ps();
        }
    }
#pragma GCC unroll 2
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(Bp), b1 = _mm512_load_ps(Bp + 16),
               b2 = _mm512_load_ps(Bp + 32);
        _mm_prefetch((const char *)(Bp + 8 * RK_NR), _MM_HINT_T0);
#pragma GCC unroll 8
        for (int m = 0; m < MR; m++) {
            __m512 a = _mm512_set1_ps(Ap[m]);
            c0[m] = _mm512_fmadd_ps(a, b0, c0[m]);
            c1[m] = _mm512_fmadd_ps(a, b1, c1[m]);
            c2[m] = _mm512_fmadd_ps(a, b2, c2[m]);
        }
        Ap += RK_MR;
        Bp += RK_NR;
    }
#pragma GCC unroll 8
    for (int m = 0; m < MR; m++) {
        _mm512_mask_storeu_ps(C + (size_t)m * ldc, m0, c0[m]);
        _mm512_mask_storeu_ps(C + (size_t)m * ldc + 16, m1, c1[m]);
        _mm512_mask_storeu_ps(C + (size_t)m * ldc + 32, m2, c2[m]);
    }
}

typedef void (*tile_fn)(int, const float *, const float *, float *, int, int, int);
const tile_fn tiles[RK_MR + 1] = {NULL,     tile<1>, tile<2>, tile<3>, tile<4>,
                                  tile<5>, tile<6>, tile<7>, tile<8>};
#endif

/* op(A) rows [m0, m0 + mc) x columns [k0, k0 + kc) as micro-panels of RK_MR rows (the last
 * zero padded): Ap[i][k][r]. */
void pack_a(const float *A, int lda, int transa, int m0, int mc, int k0, int kc, float *Ap) {
    for (int i = 0; i < mc; i += RK_MR) {
        int mr = mc - i < RK_MR ? mc - i : RK_MR;
        float *d = Ap + (size_t)i * kc;
        if (transa) {
            /* A is (K, M): the rows of a k are contiguous */
            for (int k = 0; k < kc; k++) {
                const float *s = A + (size_t)(k0 + k) * lda + m0 + i;
                int r = 0;
                for (; r < mr; r++) d[(size_t)k * RK_MR + r] = s[r];
                for (; r < RK_MR; r++) d[(size_t)k * RK_MR + r] = 0;
            }
        } else {
            for (int r = 0; r < mr; r++) {
                const float *s = A + (size_t)(m0 + i + r) * lda + k0;
                for (int k = 0; k < kc; k++) d[(size_t)k * RK_MR + r] = s[k];
            }
            for (int r = mr; r < RK_MR; r++)
                for (int k = 0; k < kc; k++) d[(size_t)k * RK_MR + r] = 0;
        }
    }
}

/* This thread's A buffer (MC x KC floats, 64-byte aligned), taken on the thread's first call
 * and kept for its life (not per call: ATen's pool threads persist), freed when it exits. */
struct ABuffer {
    float *p = NULL;
    size_t have = 0;
    ~ABuffer() { free(p); }
};

float *a_buffer() {
    static thread_local ABuffer buf;
    size_t need = (size_t)mc_block * kc_block;
    if (buf.have < need) {
        free(buf.p);
        buf.p = NULL;
        buf.have = 0;
        void *p = NULL;
        if (posix_memalign(&p, 64, need * sizeof(float)) != 0) return NULL;
        buf.p = (float *)p;
        buf.have = need;
    }
    return buf.p;
}

/* Rows [m0, m1) x panels [p0, p1) of C, one thread. */
void mul_part(const RkPacked *pb, int m0, int m1, int p0, int p1, const float *A, int lda,
              int transa, int acc_c, float *C, int ldc) {
#if RK_OWN_X86
    int K = pb->K, N = pb->N;
    float *Ap = a_buffer();
    if (!Ap) abort();
    int nkb = (K + kc_block - 1) / kc_block;
    int kstep = (K + nkb - 1) / nkb;
    for (int k0 = 0; k0 < K; k0 += kstep) {
        int kc = K - k0 < kstep ? K - k0 : kstep;
        int acc = acc_c || k0 > 0;
        for (int mb = m0; mb < m1; mb += mc_block) {
            int mc = m1 - mb < mc_block ? m1 - mb : mc_block;
            pack_a(A, lda, transa, mb, mc, k0, kc, Ap);
            for (int p = p0; p < p1; p++) {
                const float *Bp = pb->p + ((size_t)p * K + k0) * RK_NR;
                int nr = N - p * RK_NR < RK_NR ? N - p * RK_NR : RK_NR;
                float *c = C + (size_t)mb * ldc + (size_t)p * RK_NR;
                for (int i = 0; i < mc; i += RK_MR) {
                    int mr = mc - i < RK_MR ? mc - i : RK_MR;
                    tiles[mr](kc, Ap + (size_t)i * kc, Bp, c + (size_t)i * ldc, ldc, acc, nr);
                }
            }
        }
    }
#else
    (void)pb; (void)m0; (void)m1; (void)p0; (void)p1; (void)A; (void)lda; (void)transa;
    (void)acc_c; (void)C; (void)ldc;
    abort();
#endif
}

template <typename F>
void run_parts(int n, int nthreads, const F &body) {
    if (nthreads <= 1 || n <= 1) {
        body(0, n);
        return;
    }
#ifdef RK_GEMM_STANDALONE
#pragma omp parallel for num_threads(nthreads) schedule(static, 1)
    for (int t = 0; t < nthreads; t++) {
        int a = (int)((long)n * t / nthreads), b = (int)((long)n * (t + 1) / nthreads);
        if (a < b) body(a, b);
    }
#else
    int parts = nthreads < n ? nthreads : n;
    at::parallel_for(0, parts, 1, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; t++) {
            int lo = (int)((long)n * t / parts), hi = (int)((long)n * (t + 1) / parts);
            if (lo < hi) body(lo, hi);
        }
    });
#endif
}

}  // namespace

#ifdef RK_GEMM_STANDALONE
/* Built without rnnkit.cpp (and its block cache): plain aligned allocations. */
void *rk_block_take(size_t bytes) {
    void *p = NULL;
    return posix_memalign(&p, 64, bytes ? bytes : 64) == 0 ? p : NULL;
}
void rk_block_give(void *p, size_t) { free(p); }
#endif

int rk_own_supported() {
#if RK_OWN_X86
    static const int ok = __builtin_cpu_supports("avx512f");
    return ok;
#else
    return 0;
#endif
}

void rk_own_init() {
    size_blocks();
    std::string vendor = cpu_vendor();
    const char *env = getenv("RNNKIT_GEMM");
    std::string why;
    if (!rk_own_supported()) {
        rk_own_on = 0;
        why = "no AVX-512F";
    } else if (env && strcmp(env, "own") == 0) {
        rk_own_on = 1;
        why = "RNNKIT_GEMM=own";
    } else if (env && strcmp(env, "blas") == 0) {
        rk_own_on = 0;
        why = "RNNKIT_GEMM=blas";
    } else {
        rk_own_on = vendor != "GenuineIntel";
        why = vendor.empty() ? "unknown vendor" : vendor;
        why += rk_own_on ? ", AVX-512F: MKL's fast path is Intel-only" : ": MKL's own path";
    }
    own_reason = std::string(rk_own_on ? "own" : "blas") + " (" + why + "; KC " +
                 std::to_string(kc_block) + ", MC " + std::to_string(mc_block) + ")";
}

const char *rk_own_reason() { return own_reason.c_str(); }

namespace {
/* Panels [p0, p1) of op(B) into P (rk_own_pack). */
void pack_panels(float *P, const float *B, int ldb, int trans, int N, int K, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        float *d = P + (size_t)p * K * RK_NR;
        int j0 = p * RK_NR, nr = N - j0 < RK_NR ? N - j0 : RK_NR;
        if (trans) {
            /* B (N, K): column j of op(B) is row j of B */
            for (int j = 0; j < nr; j++) {
                const float *s = B + (size_t)(j0 + j) * ldb;
                for (int k = 0; k < K; k++) d[(size_t)k * RK_NR + j] = s[k];
            }
        } else {
            for (int k = 0; k < K; k++)
                memcpy(d + (size_t)k * RK_NR, B + (size_t)k * ldb + j0, nr * sizeof(float));
        }
        if (nr < RK_NR)
            for (int k = 0; k < K; k++)
                memset(d + (size_t)k * RK_NR + nr, 0, (RK_NR - nr) * sizeof(float));
    }
}
}  // namespace

int rk_own_pack_threads(RkPacked *pb, const float *B, int ldb, int trans, int N, int K,
                        int nthreads) {
    pb->N = N;
    pb->K = K;
    pb->p = NULL;
    pb->bytes = 0;
    int np = (N + RK_NR - 1) / RK_NR;
    size_t bytes = (size_t)np * (K > 0 ? K : 1) * RK_NR * sizeof(float);
    float *P = (float *)rk_block_take(bytes);
    if (!P) return -1;
    /* over threads where the copy is long: a weight gradient's op(B) is K x N with K = B * T
     * (13 MB at (64, 100, 512), 0.8 MB at (32, 100, 64), where one thread packing while the
     * other waited cost the GRU's 2-thread dW ~0.2 ms); a small W stays on the caller's thread */
    if (nthreads > 1 && np > 1 && (size_t)K * N >= ((size_t)1 << 16))
        run_parts(np, nthreads, [&](int a, int b) { pack_panels(P, B, ldb, trans, N, K, a, b); });
    else
        pack_panels(P, B, ldb, trans, N, K, 0, np);
    pb->p = P;
    pb->bytes = bytes;
    return 0;
}

int rk_own_pack(RkPacked *pb, const float *B, int ldb, int trans, int N, int K) {
    return rk_own_pack_threads(pb, B, ldb, trans, N, K, 1);
}

void rk_own_free(RkPacked *pb) {
    if (pb->p) rk_block_give(pb->p, pb->bytes);
    pb->p = NULL;
    pb->bytes = 0;
}

void rk_own_mul(const RkPacked *pb, int M, const float *A, int lda, int transa, float beta,
                float *C, int ldc, int nthreads) {
    int N = pb->N, K = pb->K;
    if (M <= 0 || N <= 0) return;
    if (beta != 0 && beta != 1) {
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) C[(size_t)m * ldc + n] *= beta;
        beta = 1;
    }
    if (K <= 0) {
        if (beta == 0)
            for (int m = 0; m < M; m++) memset(C + (size_t)m * ldc, 0, N * sizeof(float));
        return;
    }
    int acc = beta != 0, np = (N + RK_NR - 1) / RK_NR;
    int mtiles = (M + RK_MR - 1) / RK_MR;
    if (nthreads > 1 && mtiles >= 4 * nthreads) {
        /* rows: whole tiles per thread */
        run_parts(mtiles, nthreads, [&](int a, int b) {
            int m1 = b * RK_MR < M ? b * RK_MR : M;
            mul_part(pb, a * RK_MR, m1, 0, np, A, lda, transa, acc, C, ldc);
        });
    } else if (nthreads > 1 && np > 1) {
        run_parts(np, nthreads, [&](int a, int b) {
            mul_part(pb, 0, M, a, b, A, lda, transa, acc, C, ldc);
        });
    } else {
        mul_part(pb, 0, M, 0, np, A, lda, transa, acc, C, ldc);
    }
}

int rk_own_gemm(char ta, char tb, int M, int N, int K, const float *A, int lda, const float *B,
                int ldb, float beta, float *C, int ldc, int nthreads) {
    if (M <= 0 || N <= 0) return 0;
    RkPacked pb;
    if (rk_own_pack_threads(&pb, B, ldb, tb == 'T', N, K, nthreads)) return -1;
    rk_own_mul(&pb, M, A, lda, ta == 'T', beta, C, ldc, nthreads);
    rk_own_free(&pb);
    return 0;
}
