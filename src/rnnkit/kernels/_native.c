/*
 * rnnkit native kernels: a small CPython extension with no torch headers (it compiles in
 * seconds). Python passes raw data pointers and sizes as ints; BLAS entry points (sgemm_,
 * dgemm_, MKL's sgemm_pack/compute) come from the libtorch_cpu already loaded by torch and are
 * handed over once through init(). The cell kernels live in _cells.h, instantiated twice.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef void (*sgemm_fn)(const char *, const char *, const int *, const int *, const int *,
                         const float *, const float *, const int *, const float *, const int *,
                         const float *, float *, const int *);
typedef void (*dgemm_fn)(const char *, const char *, const int *, const int *, const int *,
                         const double *, const double *, const int *, const double *,
                         const int *, const double *, double *, const int *);
typedef size_t (*pack_size_fn)(int, int, int, int);
typedef void (*pack_fn)(int, int, int, int, int, int, float, const float *, int, float *);
typedef void (*compute_fn)(int, int, int, int, int, int, const float *, int, const float *, int,
                           float, float *, int);
typedef int (*set_local_fn)(int);

enum { CBLAS_ROWMAJOR = 101, CBLAS_NOTRANS = 111, CBLAS_TRANS = 112, CBLAS_PACKED = 151,
       CBLAS_BMATRIX = 162 };

static sgemm_fn p_sgemm;
static dgemm_fn p_dgemm;
static pack_size_fn p_pack_size;
static pack_fn p_pack;
static compute_fn p_compute;
static set_local_fn p_set_local;
static int rk_use_pack = 1;
static int rk_min_rows = 8; /* rows of the batch per thread before splitting pays off */

/* Per-step GEMMs are small: MKL's own threading costs more than it gains there, and inside
 * our parallel region each thread must run its GEMMs alone. */
static int rk_mkl_local(int n) { return p_set_local ? p_set_local(n) : 0; }

static int rk_threads_for(int B, int nthreads) {
    int nt = nthreads < 1 ? 1 : nthreads;
    int by_rows = B / (rk_min_rows > 0 ? rk_min_rows : 1);
    if (by_rows < nt) nt = by_rows;
    return nt < 1 ? 1 : nt;
}

static int rk_tid(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* expf to ~1 ulp, branch-free so loops that call it vectorise: 2^n * e^r with |r| <= ln2/2
 * and a degree-6 polynomial for e^r (Cephes coefficients). */
static inline float rk_expf(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float n = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } s;
    s.i = ((int32_t)n + 127) << 23;
    return p * s.f;
}
static inline float rk_sigmf(float x) { return 1.0f / (1.0f + rk_expf(-x)); }
/* tanh(x) = 1 - 2 / (e^{2x} + 1): absolute error ~1e-7 near 0, which is all float needs. */
static inline float rk_tanhf(float x) { return 1.0f - 2.0f / (rk_expf(2.0f * x) + 1.0f); }
static inline double rk_sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

#define RK_STEP_STACK 8192
#define ARG(i, type) ((type)(intptr_t)a[i])

#define REAL float
#define SUF(name) name##_f32
#define GEMM_FN p_sgemm
#define IS_FLOAT 1
#define SIGM rk_sigmf
#define TANH rk_tanhf
#include "_cells.h"
#undef REAL
#undef SUF
#undef GEMM_FN
#undef IS_FLOAT
#undef SIGM
#undef TANH

#define REAL double
#define SUF(name) name##_f64
#define GEMM_FN p_dgemm
#define IS_FLOAT 0
#define SIGM rk_sigm
#define TANH tanh
#include "_cells.h"

/* ---------------------------------------------------------------------------------------- */

#define RK_MAXARGS 32

static int parse_ints(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t expect, int64_t *a,
                      const char *name) {
    if (nargs != expect) {
        PyErr_Format(PyExc_TypeError, "%s expects %zd integer arguments, got %zd", name, expect,
                     nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        a[i] = PyLong_AsLongLong(args[i]);
        if (a[i] == -1 && PyErr_Occurred()) return -1;
    }
    if (a[0] != 0 && a[0] != 1) {
        PyErr_SetString(PyExc_ValueError, "dtype code must be 0 (float32) or 1 (float64)");
        return -1;
    }
    return 0;
}

/* Sequence kernels release the GIL; step kernels are too short for that to pay. */
#define RK_SEQ(name, nargs)                                                                 \
    static PyObject *py_##name(PyObject *self, PyObject *const *args, Py_ssize_t n) {       \
        int64_t a[RK_MAXARGS];                                                              \
        if (parse_ints(args, n, nargs, a, #name)) return NULL;                              \
        int rc;                                                                             \
        Py_BEGIN_ALLOW_THREADS rc = a[0] == 0 ? name##_f32(a) : name##_f64(a);              \
        Py_END_ALLOW_THREADS if (rc) return PyErr_NoMemory();                               \
        Py_RETURN_NONE;                                                                     \
    }
#define RK_STEP(name, nargs)                                                                \
    static PyObject *py_##name(PyObject *self, PyObject *const *args, Py_ssize_t n) {       \
        int64_t a[RK_MAXARGS];                                                              \
        if (parse_ints(args, n, nargs, a, #name)) return NULL;                              \
        if (a[0] == 0 ? name##_f32(a) : name##_f64(a)) return PyErr_NoMemory();             \
        Py_RETURN_NONE;                                                                     \
    }

RK_SEQ(elman_fwd, 18)
RK_SEQ(elman_bwd, 21)
RK_SEQ(gru_fwd, 18)
RK_SEQ(gru_bwd, 22)
RK_SEQ(lstm_fwd, 18)
RK_SEQ(lstm_bwd, 23)
RK_STEP(elman_step, 13)
RK_STEP(gru_step, 13)
RK_STEP(lstm_step, 14)

/* stream_run(rows, nlayers, x, ldx): one step of a stack of cells in one call, for
 * kernels.Streamer. rows points at nlayers rows of RK_ROW int64: [kind (0 elman, 1 gru,
 * 2 lstm), then that step kernel's own arguments] with hout/cout aimed at scratch. Layer k
 * reads layer k-1's new h; each layer's new state is copied over its h (and c), so the state
 * buffers are updated in place (x may alias a state buffer: the kernels write scratch first).
 * The same step kernels as elman_step/gru_step/lstm_step run, so results are identical. */
#define RK_ROW 16
static PyObject *py_stream_run(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    int64_t v[4];
    if (n != 4) {
        PyErr_SetString(PyExc_TypeError, "stream_run expects (rows, nlayers, x, ldx)");
        return NULL;
    }
    for (int i = 0; i < 4; i++) {
        v[i] = PyLong_AsLongLong(args[i]);
        if (v[i] == -1 && PyErr_Occurred()) return NULL;
    }
    int64_t *rows = (int64_t *)(intptr_t)v[0], x = v[2], ldx = v[3];
    for (int64_t k = 0; k < v[1]; k++) {
        int64_t *r = rows + k * RK_ROW, *p = r + 1;
        int kind = (int)r[0], f64 = p[0] != 0, lstm = kind == 2, rc;
        int xs = lstm ? 4 : 5, hs = lstm ? 6 : 7;
        p[xs] = x;
        p[xs + 1] = ldx;
        if (kind == 0) rc = f64 ? elman_step_f64(p) : elman_step_f32(p);
        else if (kind == 1) rc = f64 ? gru_step_f64(p) : gru_step_f32(p);
        else rc = f64 ? lstm_step_f64(p) : lstm_step_f32(p);
        if (rc) return PyErr_NoMemory();
        size_t bytes = (size_t)p[1] * (size_t)p[3] * (f64 ? sizeof(double) : sizeof(float));
        memcpy((void *)(intptr_t)p[hs], (const void *)(intptr_t)p[12], bytes);
        if (lstm) memcpy((void *)(intptr_t)p[7], (const void *)(intptr_t)p[13], bytes);
        x = p[hs];
        ldx = p[3];
    }
    Py_RETURN_NONE;
}

/* init(sgemm_, dgemm_, pack_get_size, pack, compute, MKL_Set_Num_Threads_Local): addresses
 * as ints, 0 where a symbol is absent (only the first two are required). */
static PyObject *py_init(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    if (n != 6) {
        PyErr_SetString(PyExc_TypeError, "init expects 6 addresses");
        return NULL;
    }
    void *p[6];
    for (int i = 0; i < 6; i++) {
        p[i] = PyLong_AsVoidPtr(args[i]);
        if (!p[i] && PyErr_Occurred()) return NULL;
    }
    p_sgemm = (sgemm_fn)p[0];
    p_dgemm = (dgemm_fn)p[1];
    if (p[2] && p[3] && p[4]) {
        p_pack_size = (pack_size_fn)p[2];
        p_pack = (pack_fn)p[3];
        p_compute = (compute_fn)p[4];
    }
    p_set_local = (set_local_fn)p[5];
    Py_RETURN_NONE;
}

/* configure(use_pack, min_rows_per_thread): tuning knobs for benchmarks; returns old values. */
static PyObject *py_configure(PyObject *self, PyObject *const *args, Py_ssize_t n) {
    int old_pack = rk_use_pack, old_rows = rk_min_rows;
    if (n != 2) {
        PyErr_SetString(PyExc_TypeError, "configure expects (use_pack, min_rows)");
        return NULL;
    }
    long up = PyLong_AsLong(args[0]), mr = PyLong_AsLong(args[1]);
    if (PyErr_Occurred()) return NULL;
    if (up >= 0) rk_use_pack = (int)up;
    if (mr >= 1) rk_min_rows = (int)mr;
    return Py_BuildValue("(ii)", old_pack && p_pack != NULL, old_rows);
}

static PyMethodDef methods[] = {
    {"init", (PyCFunction)(void (*)(void))py_init, METH_FASTCALL, "set BLAS entry points"},
    {"configure", (PyCFunction)(void (*)(void))py_configure, METH_FASTCALL, "tuning knobs"},
    {"elman_fwd", (PyCFunction)(void (*)(void))py_elman_fwd, METH_FASTCALL, NULL},
    {"elman_bwd", (PyCFunction)(void (*)(void))py_elman_bwd, METH_FASTCALL, NULL},
    {"gru_fwd", (PyCFunction)(void (*)(void))py_gru_fwd, METH_FASTCALL, NULL},
    {"gru_bwd", (PyCFunction)(void (*)(void))py_gru_bwd, METH_FASTCALL, NULL},
    {"lstm_fwd", (PyCFunction)(void (*)(void))py_lstm_fwd, METH_FASTCALL, NULL},
    {"lstm_bwd", (PyCFunction)(void (*)(void))py_lstm_bwd, METH_FASTCALL, NULL},
    {"elman_step", (PyCFunction)(void (*)(void))py_elman_step, METH_FASTCALL, NULL},
    {"gru_step", (PyCFunction)(void (*)(void))py_gru_step, METH_FASTCALL, NULL},
    {"lstm_step", (PyCFunction)(void (*)(void))py_lstm_step, METH_FASTCALL, NULL},
    {"stream_run", (PyCFunction)(void (*)(void))py_stream_run, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_native",
                                       "rnnkit fused RNN kernels", -1, methods};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&moduledef); }
