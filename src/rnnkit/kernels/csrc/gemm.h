/*
 * rnnkit's own float GEMM (gemm.cpp): an AVX-512 packed-panel kernel, BLIS-style, for the CPUs
 * where torch's MKL runs a slow path (MKL takes its AVX-512 code only on GenuineIntel; on AMD
 * Zen 4 it ran 104-131 GFLOP/s at 2 threads where oneDNN's JIT ran 150-165).
 *
 * op(B) is packed once (rk_own_pack) into panels of RK_NR columns, K rows each (zero padded),
 * and reused: the recurrent W_hh for all T steps, a projection's W for all its rows. A is
 * packed per call in blocks of MC rows x KC columns as micro-panels of RK_MR rows; the register
 * tile is RK_MR x RK_NR (8 x 48: 24 zmm accumulators). KC and MC come from the detected L1d
 * and L2 sizes.
 *
 * Which GEMM runs: rk_own_on (1 where the CPU has AVX-512F and is not GenuineIntel, or
 * RNNKIT_GEMM=own|blas; gemm_configure in Python sets it), and never without AVX-512F. Where
 * it is on, the sequence kernels run in it: the recurrent step products (rmat, op(W) packed
 * once per call) and, through cells.h SUF(gemm), the input projections, dX and the weight
 * gradients (op(A) = A^T, K = B * T; rk_own_route below), K >= 256 and M >= RK_MR.
 */
#pragma once

#include <cstddef>

enum { RK_MR = 8, RK_NR = 48 };

/* op(B) (K x N), packed. */
struct RkPacked {
    float *p;     /* panels: ceil(N / RK_NR) of K x RK_NR floats */
    int N, K;
    size_t bytes; /* of p (a block of the kernels' cache, rk_block_take) */
};

/* A block of the kernels' block cache (pool.h, which only rnnkit.cpp includes; rnnkit.cpp
 * defines these): `bytes` bytes, 64-byte aligned, or NULL when out of memory; give it back with
 * the same bytes. The packed op(B) is taken from it, so repeated calls reuse mapped pages (a
 * 4 MB W at H = 512 from posix_memalign faulted its pages in on every call). */
void *rk_block_take(size_t bytes);
void rk_block_give(void *p, size_t bytes);

/* 1: the sequence kernels run the own GEMM for float (where the CPU has AVX-512F). */
extern int rk_own_on;
/* Which products SUF(gemm) (cells.h) gives the own GEMM where rk_own_on, as bits (RK_ROUTE_*;
 * gemm_route in Python sets it, for tests and in-process A/B timings). */
enum {
    RK_ROUTE_TN = 1,   /* op(A) = A^T: the weight gradients (A^T B with K = B * T) */
    RK_ROUTE_THIN = 2, /* also M < RK_MR (colsum's 1-row product: op(B) packed for one row) */
};
extern int rk_own_route;
/* Whether this CPU can run it (AVX-512F). */
int rk_own_supported();
/* Set rk_own_on from the CPU and RNNKIT_GEMM (once, when the module loads). */
void rk_own_init();
/* Why the choice was made, for kernels.available() (e.g. "own (AuthenticAMD, AVX-512F)"). */
const char *rk_own_reason();

/* Pack op(B) (K x N): B is (N, K) with leading dimension ldb when trans, else (K, N). Returns
 * 0, or -1 when out of memory. rk_own_free releases. */
int rk_own_pack(RkPacked *pb, const float *B, int ldb, int trans, int N, int K);
void rk_own_free(RkPacked *pb);
/* rk_own_pack with the panels split over ATen's pool when nthreads > 1 and K * N >= 2^16. */
int rk_own_pack_threads(RkPacked *pb, const float *B, int ldb, int trans, int N, int K,
                        int nthreads);

/* Row-major C (M x N) = op(A) (M x K) . op(B) + beta C (beta 0 or 1 as given, any other value
 * scales C first); op(A) = A (M, K) with lda, or A^T where A is (K, M) (transa). nthreads > 1
 * splits the work over ATen's pool (rows, or column panels when M is small). */
void rk_own_mul(const RkPacked *pb, int M, const float *A, int lda, int transa, float beta,
                float *C, int ldc, int nthreads);

/* Row-major C = op(A) op(B) + beta C in one call (packs op(B) itself); 0, or -1 when out of
 * memory. */
int rk_own_gemm(char ta, char tb, int M, int N, int K, const float *A, int lda, const float *B,
                int ldb, float beta, float *C, int ldc, int nthreads);
