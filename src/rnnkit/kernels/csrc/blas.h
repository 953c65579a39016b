/*
 * The kernels' GEMMs: the BLAS that torch itself runs on, found once when the extension loads
 * (rk_find_blas), or ATen's addmm where none can be found or RNNKIT_BLAS=aten asks for it.
 *
 * Why a lookup: ATen's CPU BLAS wrappers (at::cpublas::gemm) are not exported to extensions, so
 * the kernels take the Fortran sgemm_/dgemm_ of the BLAS in torch's own libraries (MKL linked
 * into libtorch_cpu, or the OpenBLAS / MKL / Accelerate it links to), and with MKL its packed
 * GEMM (each step reuses a packed W_hh) and its per-thread thread count. Every path gives the
 * same results to rounding; blas.cpp says how the search goes.
 */
#pragma once

#include <cstddef>

/* MKL's packed GEMM (CBLAS constants as in mkl_cblas.h); null where the BLAS has none. */
enum { CBLAS_ROWMAJOR = 101, CBLAS_NOTRANS = 111, CBLAS_TRANS = 112, CBLAS_PACKED = 151,
       CBLAS_BMATRIX = 162 };
typedef size_t (*pack_size_fn)(int, int, int, int);
typedef void (*pack_fn)(int, int, int, int, int, int, float, const float *, int, float *);
typedef void (*compute_fn)(int, int, int, int, int, int, const float *, int, const float *, int,
                           float, float *, int);
extern pack_size_fn p_pack_size;
extern pack_fn p_pack;
extern compute_fn p_compute;

/* Knobs for benchmarks and tests (the module's configure): 0 takes ATen's addmm / unpacked GEMMs
 * even where the BLAS has the direct entry points. */
extern int rk_use_blas;
extern int rk_use_pack;

/* Column-major GEMM, C (m, n) = alpha op(A) op(B) + beta C (ta, tb: 'N' or 'T'). */
void rk_blas(char ta, char tb, int m, int n, int k, float alpha, const float *a, int lda,
             const float *b, int ldb, float beta, float *c, int ldc);
void rk_blas(char ta, char tb, int m, int n, int k, double alpha, const double *a, int lda,
             const double *b, int ldb, double beta, double *c, int ldc);

/* Per-step GEMMs are small: MKL's own threading costs more than it gains there, and inside the
 * batch split each thread must run its GEMMs alone. Sets this thread's MKL thread count (0:
 * MKL's default) and returns the old one; a no-op without MKL. */
int rk_mkl_local(int n);

/* Find the BLAS (once, when the module loads; reads RNNKIT_BLAS). */
void rk_find_blas();
/* Where sgemm_ was found (the file name of the library that defines it), or "" when the kernels
 * run on ATen's addmm. */
const char *rk_blas_library();
/* Why ATen's addmm runs ("" when a BLAS was found). */
const char *rk_blas_fallback_reason();
/* The OpenMP runtime loaded in the process (e.g. "libgomp.so.1"), or "" when none is. */
const char *rk_openmp_library();
