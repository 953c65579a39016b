/*
 * Finding torch's BLAS (see blas.h). The search, first match wins, each for the pair
 * sgemm_ + dgemm_ (MKL's extras are taken from the same library):
 *   1. torch's own libtorch_cpu, found from the address of one of its functions (whatever its
 *      file is called: .so, .dylib, a versioned name); dlsym on it searches it and the libraries
 *      it links, so this is the BLAS torch runs on: MKL linked in (the x86-64 pip wheels),
 *      OpenBLAS (the aarch64 wheels), a distribution's libblas;
 *   2. (Linux) any other library loaded in the process whose name says BLAS (openblas, mkl,
 *      blas): one torch or another package loaded at run time;
 *   3. the default symbol scope (on macOS, every loaded image: Accelerate's vecLib).
 * Where none has them, or RNNKIT_BLAS=aten, every GEMM is ATen's addmm on strided views of
 * the buffers: one code path that works on every torch build, at ~1 us more a call.
 */
#include "blas.h"

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/from_blob.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#define RK_HAVE_DLFCN 1
#endif
#if defined(__linux__)
#include <link.h>
#endif

pack_size_fn p_pack_size;
pack_fn p_pack;
compute_fn p_compute;
int rk_use_blas = 1;
int rk_use_pack = 1;

namespace {

using at::Tensor;

typedef void (*sgemm_fn)(const char *, const char *, const int *, const int *, const int *,
                         const float *, const float *, const int *, const float *, const int *,
                         const float *, float *, const int *);
typedef void (*dgemm_fn)(const char *, const char *, const int *, const int *, const int *,
                         const double *, const double *, const int *, const double *,
                         const int *, const double *, double *, const int *);
typedef int (*set_local_fn)(int);

sgemm_fn p_sgemm;
dgemm_fn p_dgemm;
set_local_fn p_set_local;
std::string blas_library, fallback_reason, openmp_library;

/* A column-major (rows, cols) matrix with leading dimension ld, as a strided tensor. */
template <typename T>
Tensor rk_view(const T *p, int rows, int cols, int ld) {
    return at::from_blob(const_cast<T *>(p), {rows, cols}, {1, ld},
                         at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value));
}

template <typename T, typename F>
void rk_gemm(F blas, char ta, char tb, int m, int n, int k, T alpha, const T *a, int lda,
             const T *b, int ldb, T beta, T *c, int ldc) {
    if (rk_use_blas && blas) {
        blas(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
        return;
    }
    Tensor A = ta == 'T' ? rk_view(a, k, m, lda).t() : rk_view(a, m, k, lda);
    Tensor B = tb == 'T' ? rk_view(b, n, k, ldb).t() : rk_view(b, k, n, ldb);
    Tensor C = rk_view((const T *)c, m, n, ldc);
    if (k == 0) {
        if (beta == 0) C.zero_(); else C.mul_(beta);
        return;
    }
    C.addmm_(A, B, beta, alpha);
}

#ifdef RK_HAVE_DLFCN
std::string file_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The file name of the library that defines the symbol at `address`. */
std::string library_of(void *address) {
    Dl_info info;
    if (address && dladdr(address, &info) && info.dli_fname) return file_name(info.dli_fname);
    return "";
}

/* Take the GEMMs from `handle` (a library, or the default scope) if it has both. */
bool take(void *handle) {
    auto s = (sgemm_fn)dlsym(handle, "sgemm_");
    auto d = (dgemm_fn)dlsym(handle, "dgemm_");
    if (!s || !d) return false;
    p_sgemm = s;
    p_dgemm = d;
    auto pack_size = (pack_size_fn)dlsym(handle, "cblas_sgemm_pack_get_size");
    auto pack = (pack_fn)dlsym(handle, "cblas_sgemm_pack");
    auto compute = (compute_fn)dlsym(handle, "cblas_sgemm_compute");
    if (pack_size && pack && compute) {
        p_pack_size = pack_size;
        p_pack = pack;
        p_compute = compute;
    }
    p_set_local = (set_local_fn)dlsym(handle, "MKL_Set_Num_Threads_Local");
    blas_library = library_of((void *)s);
    return true;
}

/* An already loaded library, by path, without loading anything new. */
bool take_loaded(const char *path) {
    void *handle = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
    return handle && take(handle);
}

#if defined(__linux__)
int collect_blas(struct dl_phdr_info *info, size_t, void *out) {
    std::string name = file_name(info->dlpi_name ? info->dlpi_name : "");
    if (name.find("blas") != std::string::npos || name.find("mkl") != std::string::npos)
        static_cast<std::vector<std::string> *>(out)->push_back(info->dlpi_name);
    return 0;
}
#endif
#endif

}  // namespace

void rk_blas(char ta, char tb, int m, int n, int k, float alpha, const float *a, int lda,
             const float *b, int ldb, float beta, float *c, int ldc) {
    rk_gemm(p_sgemm, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void rk_blas(char ta, char tb, int m, int n, int k, double alpha, const double *a, int lda,
             const double *b, int ldb, double beta, double *c, int ldc) {
    rk_gemm(p_dgemm, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

int rk_mkl_local(int n) { return p_set_local ? p_set_local(n) : 0; }

void rk_find_blas() {
#ifdef RK_HAVE_DLFCN
    // the OpenMP runtime at::parallel_for runs on (ours is the one torch loaded: one pool)
    openmp_library = library_of(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
    const char *forced = getenv("RNNKIT_BLAS");
    if (forced && strcmp(forced, "aten") == 0) {
        fallback_reason = "RNNKIT_BLAS=aten";
        return;
    }
    Dl_info torch_lib;
    if (dladdr((void *)&at::get_num_threads, &torch_lib) && torch_lib.dli_fname &&
        take_loaded(torch_lib.dli_fname))
        return;
#if defined(__linux__)
    std::vector<std::string> loaded;
    dl_iterate_phdr(collect_blas, &loaded);
    for (const std::string &path : loaded)
        if (take_loaded(path.c_str())) return;
#endif
    if (take(RTLD_DEFAULT)) return;
    fallback_reason = "no sgemm_/dgemm_ in torch's libraries or any loaded BLAS";
#else
    fallback_reason = "no dynamic symbol lookup on this platform";
#endif
}

const char *rk_blas_library() { return blas_library.c_str(); }
const char *rk_blas_fallback_reason() { return fallback_reason.c_str(); }
const char *rk_openmp_library() { return openmp_library.c_str(); }
