/*
 * rnnkit's fused Elman / GRU / LSTM CPU kernels as PyTorch operators (namespace `rnnkit`).
 *
 * The cell kernels live in cells.h, instantiated for float and double. This file gives them
 * typed operator schemas (TORCH_LIBRARY) and CPU implementations (TORCH_LIBRARY_IMPL) that
 * validate the tensors and pack their pointers and sizes; their autograd (forward op -> backward
 * op) is in seq_autograd.cpp, their fake (meta) kernels in rnnkit.kernels.ops (Python).
 *
 * BLAS and threads come from torch: the batch split runs on at::parallel_for (torch's one thread
 * pool), and every GEMM goes through blas.h (torch's own BLAS, found when the module loads, or
 * ATen's addmm).
 *
 * The module also exports, outside the dispatcher, `info`/`configure`; the single-step operators
 * and the streaming paths (`stream_run`, `plan_step`) are in step.cpp.
 */
#include <Python.h>

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "blas.h"
#include "pool.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define rk_pause() _mm_pause()
#else
#define rk_pause() ((void)0)
#endif
#if defined(__linux__)
#include <climits>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
/* Sleep while *w == v / wake every sleeper on w (the kernel compares *w atomically). */
static void rk_sleep(std::atomic<int> *w, int v) {
    syscall(SYS_futex, (int *)w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}
static void rk_wake(std::atomic<int> *w) {
    syscall(SYS_futex, (int *)w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
#else
static void rk_sleep(std::atomic<int> *, int) { std::this_thread::yield(); }
static void rk_wake(std::atomic<int> *) {}
#endif

using at::Tensor;
using OptTensor = std::optional<Tensor>;

/* ---- what cells.h needs: BLAS, threads, vector clones, fast exp ---------------------------- */

#include "vec.h"
#include "gemm.h"
#define ARG(i, type) ((type)(intptr_t)a[i])

/* gemm.h's door to the block cache, for gemm.cpp (pool.h is this file's alone). */
void *rk_block_take(size_t bytes) { return rk_take(bytes); }
void rk_block_give(void *p, size_t bytes) { rk_give(p, bytes); }

namespace {

int rk_min_rows = 8; /* rows of the batch per thread before splitting pays off */
/* 1: the GRU backward (reset_after) keeps its gate gradients in one (T, B, 4H) block and takes
 * the weight gradients transposed where the own GEMM is off (cells.h gru_bwd `wide`); 0: the
 * separate blocks everywhere (gru_configure, for tests and in-process A/B timings). */
int rk_gru_wide = 1;

int rk_threads_for(int B, int nthreads) {
    int nt = nthreads < 1 ? 1 : nthreads;
    int by_rows = B / (rk_min_rows > 0 ? rk_min_rows : 1);
    if (by_rows < nt) nt = by_rows;
    return nt < 1 ? 1 : nt;
}

/* body(tid) for tid in [0, nt), each on its own thread of torch's pool. */
template <typename F>
void rk_parallel(int nt, const F &body) {
    if (nt <= 1) {
        body(0);
        return;
    }
    at::parallel_for(0, nt, 1, [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; t++) body((int)t);
    });
}

/* W_hh bytes from which the recurrence splits the gate columns over the threads instead of the
 * batch: with the batch split every core streams all of W_hh each step, which past a core's L2
 * (2 MB here; the LSTM at H = 512 is 4 MB) runs from L3; split by columns, each core reads only
 * its share, every GEMM has all B rows, and one barrier per step hands the new state over.
 * 0 splits by columns whenever two threads are asked for (tests). RNNKIT_COL_SPLIT_BYTES sets it
 * for a whole process. Off by default: on the quiet 2-core Xeon, `rnnkit bench --threads 2
 * --sizes 64x100x512` with the split from 2 MB measured GRU / LSTM training at 55% / 62% of
 * the sgemm peak against 69% / 74% with the batch split, LSTM inference 0.82x against 0.85x of
 * oneDNN (session 5, benchmarks/README.md). */
size_t rk_col_bytes_default() {
    const char *v = getenv("RNNKIT_COL_SPLIT_BYTES");
    char *end = NULL;
    unsigned long long n = v && *v ? strtoull(v, &end, 10) : 0;
    return v && *v && end && *end == '\0' ? (size_t)n : (size_t)1 << 62;  /* never */
}
size_t rk_col_bytes = rk_col_bytes_default();

/* Column blocks for a recurrence with gates of H columns and weight W_hh of G*H*H elements of
 * `elem` bytes on `nthreads` threads, or 0 to split the batch. Needs an OpenMP pool: the
 * per-step barrier waits for the other threads, which must run at the same time (the native
 * pool may run its tasks one after another). */
int rk_cols_for(int G, int H, int nthreads, size_t elem) {
#if AT_PARALLEL_OPENMP && defined(_OPENMP)
    int nt = nthreads < H ? nthreads : H;
    if (nt < 2 || (size_t)G * H * H * elem < rk_col_bytes) return 0;
    return nt;
#else
    (void)G; (void)H; (void)nthreads; (void)elem;
    return 0;
#endif
}

/* First column of block c of nc over H columns: multiples of 16 floats (a 64-byte cache line,
 * so two threads never write one line) where H allows. */
int rk_col_start(int H, int nc, int c) {
    int unit = H >= 16 * nc ? 16 : 1, units = (H + unit - 1) / unit;
    int j = (int)((int64_t)units * c / nc) * unit;
    return j < H ? j : H;
}

/* A barrier for one rk_team call. Each caller arrives with the number of column blocks it
 * holds, so a thread that got several blocks (the pool gave fewer threads, or a nested call ran
 * serially) counts for all of them. Spins ~20 us, then sleeps (a futex on Linux, else yields):
 * on a loaded machine the thread being waited for may need this very core. */
struct RkBarrier {
    std::atomic<int> count{0}, gen{0}, sleepers{0};
    int total;
    explicit RkBarrier(int n) : total(n) {}
    void wait(int weight) {
        int g = gen.load();
        if (count.fetch_add(weight) + weight == total) {
            count.store(0);
            gen.fetch_add(1);  // before reading sleepers: a sleeper either is seen or sees gen
            if (sleepers.load()) rk_wake(&gen);
            return;
        }
        for (int spins = 0; spins < 400; spins++) {
            if (gen.load(std::memory_order_acquire) != g) return;
            rk_pause();
        }
        sleepers.fetch_add(1);
        while (gen.load() == g) rk_sleep(&gen, g);
        sleepers.fetch_sub(1);
    }
};

/* body(j0, j1, sync) on torch's pool, one call per thread, with the columns [j0, j1) of H
 * split into nc blocks; sync() is the barrier of all the calls. */
template <typename F>
void rk_team(int H, int nc, const F &body) {
    RkBarrier bar(nc);
    at::parallel_for(0, nc, 1, [&](int64_t c0, int64_t c1) {
        int weight = (int)(c1 - c0);
        body(rk_col_start(H, nc, (int)c0), rk_col_start(H, nc, (int)c1),
             [&bar, weight] { bar.wait(weight); });
    });
}


#define REAL float
#define SUF(name) name##_f32
#define IS_FLOAT 1
#define SIGM rk_sigmf
#define TANH rk_tanhf
#include "cells.h"
#undef REAL
#undef SUF
#undef IS_FLOAT
#undef SIGM
#undef TANH

#define REAL double
#define SUF(name) name##_f64
#define IS_FLOAT 0
#define SIGM rk_sigm
#define TANH tanh
#include "cells.h"

/* ---- operator wrappers -------------------------------------------------------------------- */

intptr_t ptr(const Tensor &t) { return (intptr_t)t.data_ptr(); }
intptr_t ptr(const OptTensor &t) { return t && t->defined() ? (intptr_t)t->data_ptr() : 0; }

int dtype_code(const Tensor &x, const char *op) {
    TORCH_CHECK(x.device().is_cpu(), op, ": the fused kernels run on the CPU, got ", x.device());
    if (x.scalar_type() == at::kFloat) return 0;
    TORCH_CHECK(x.scalar_type() == at::kDouble, op, ": the kernels take float32 or float64, got ",
                x.scalar_type());
    return 1;
}

void check_same(const Tensor &x, const Tensor &t, const char *op, const char *name,
                c10::IntArrayRef shape) {
    TORCH_CHECK_VALUE(t.sizes() == shape, op, ": ", name, " must have shape ", shape, ", got ",
                      t.sizes());
    TORCH_CHECK(t.scalar_type() == x.scalar_type(), op, ": ", name, " is ", t.scalar_type(),
                " but x is ", x.scalar_type());
    TORCH_CHECK(t.device().is_cpu(), op, ": ", name, " is on ", t.device(), ", not the CPU");
}

OptTensor contiguous(const OptTensor &t) {
    return t && t->defined() ? OptTensor(t->contiguous()) : std::nullopt;
}

/* The validated (B,) int64 lengths, or none when every sequence is full length. */
OptTensor lengths_arg(const OptTensor &lengths, int64_t B, int64_t T, const char *op) {
    if (!lengths || !lengths->defined()) return std::nullopt;
    const Tensor &len = *lengths;
    TORCH_CHECK_VALUE(len.scalar_type() == at::kLong && len.dim() == 1 && len.size(0) == B &&
                          len.device().is_cpu(),
                      op, ": lengths must be an int64 CPU tensor of shape (", B, "), got ",
                      len.scalar_type(), " ", len.sizes());
    Tensor c = len.contiguous();
    const int64_t *p = c.data_ptr<int64_t>();
    int64_t lo = T, hi = 0;
    for (int64_t b = 0; b < B; b++) {
        lo = p[b] < lo ? p[b] : lo;
        hi = p[b] > hi ? p[b] : hi;
    }
    TORCH_CHECK_VALUE(lo >= 1 && hi <= T, op, ": lengths must lie in [1, ", T, "], got min ", lo,
                      " max ", hi);
    return lo == T ? std::nullopt : OptTensor(c);
}

struct Dims {
    int64_t B, T, D, H;
};

/* Shapes of one call: x (B, T, D), states (B, H), weights (G*H, D) and (G*H, H). */
Dims check_sequence(const char *op, const Tensor &x, std::initializer_list<const Tensor *> states,
                    const Tensor &w_ih, const Tensor &w_hh, const OptTensor &b_ih,
                    const OptTensor &b_hh, int64_t gates) {
    dtype_code(x, op);
    TORCH_CHECK_VALUE(x.dim() == 3, op, ": x must be (B, T, D), got ", x.sizes());
    TORCH_CHECK_VALUE(w_hh.dim() == 2 && w_hh.size(0) % gates == 0, op, ": weight_hh must be (",
                      gates, "*H, H), got ", w_hh.sizes());
    Dims d{x.size(0), x.size(1), x.size(2), w_hh.size(1)};
    TORCH_CHECK_VALUE(d.B > 0 && d.T > 0, op, ": empty input of shape ", x.sizes());
    int64_t GH = gates * d.H;
    check_same(x, w_ih, op, "weight_ih", {GH, d.D});
    check_same(x, w_hh, op, "weight_hh", {GH, d.H});
    if (b_ih && b_ih->defined()) check_same(x, *b_ih, op, "bias_ih", {GH});
    if (b_hh && b_hh->defined()) check_same(x, *b_hh, op, "bias_hh", {GH});
    for (const Tensor *s : states) check_same(x, *s, op, "state", {d.B, d.H});
    return d;
}

/* An uninitialised tensor like at::empty, whose storage comes from the kernels' block cache
 * (pool.h) when it is large: the operators' big outputs and copies are then mapped memory that
 * an earlier call released, not fresh pages to fault in. */
Tensor pooled_empty(c10::IntArrayRef shape, const Tensor &like) {
    size_t bytes = (size_t)c10::multiply_integers(shape) * like.element_size();
    if (bytes < RK_POOL_MIN) return at::empty(shape, like.options());
    void *p = rk_take(bytes);
    TORCH_CHECK(p, "rnnkit: out of memory allocating ", bytes, " bytes");
    return at::from_blob(p, shape, [bytes](void *q) { rk_give(q, bytes); }, like.options());
}

Tensor time_major(const Tensor &x) {  // (B, T, D) -> a (T, B, D) contiguous copy
    Tensor X = pooled_empty({x.size(1), x.size(0), x.size(2)}, x);
    X.copy_(x.transpose(0, 1));
    return X;
}

/* The gradient buffer for input k if backward needs it, else an empty tensor. */
Tensor grad_buf(bool need, const Tensor &like, c10::IntArrayRef shape) {
    return need ? pooled_empty(shape, like) : at::empty({0}, like.options());
}
intptr_t ptr_if(bool need, const Tensor &t) { return need ? ptr(t) : 0; }

#define RK_CALL(kernel, code, args)                                           \
    TORCH_CHECK(((code) == 0 ? kernel##_f32(args) : kernel##_f64(args)) == 0, \
                #kernel ": out of memory")

/* Saved per-step buffers. With lengths, the steps past a thread's longest sequence are never
 * computed, yet the backward's weight GEMMs run over every step (their gradient rows are
 * zero): garbage there (a NaN in reused memory) would give 0 * NaN = NaN weight gradients. */
Tensor scratch(const OptTensor &len, c10::IntArrayRef shape, const Tensor &like) {
    Tensor t = pooled_empty(shape, like);
    return len.has_value() ? t.zero_() : t;
}

std::tuple<Tensor, Tensor, Tensor, Tensor> elman_fwd(const Tensor &x, const Tensor &h0,
                                                     const Tensor &w_ih, const Tensor &w_hh,
                                                     const OptTensor &b_ih, const OptTensor &b_hh,
                                                     int64_t act, const OptTensor &lengths) {
    const char *op = "rnnkit::elman_fwd";
    Dims d = check_sequence(op, x, {&h0}, w_ih, w_hh, b_ih, b_hh, 1);
    TORCH_CHECK_VALUE(act >= 0 && act <= 3, op, ": activation code must be 0-3, got ", act);
    OptTensor len = lengths_arg(lengths, d.B, d.T, op);
    Tensor X = x.contiguous(), wi = w_ih.contiguous(), wh = w_hh.contiguous(), h = h0.contiguous();
    OptTensor bi = contiguous(b_ih), bh = contiguous(b_hh);
    Tensor P = pooled_empty({d.B, d.T, d.H}, x);  // the state entering each step
    Tensor hN = at::empty({d.B, d.H}, x.options());
    Tensor out = pooled_empty({d.B, d.T, d.H}, x);
    int64_t a[] = {dtype_code(x, op), d.T, d.B, d.D, d.H, act, ptr(X), ptr(wi), ptr(wh), ptr(bi),
                   ptr(bh), ptr(len), ptr(h), ptr(P), ptr(hN), ptr(out), at::get_num_threads()};
    RK_CALL(elman_fwd, a[0], a);
    return {out, hN.clone(), P, hN};
}

/* The output gradient as the backward kernels read it: rows of H contiguous, row (b, t) at
 * b * sb + t * st elements. Read in place when its rows are contiguous; a broadcast scalar (the
 * gradient of out.sum() or out.mean()) as its one row; anything else as a contiguous copy. */
struct Rows {
    OptTensor t;
    int64_t sb, st;
};
Rows rows_arg(const OptTensor &dout) {
    if (!dout || !dout->defined()) return {std::nullopt, 0, 0};
    const Tensor &d = *dout;
    if (d.stride(2) == 1 || d.size(2) == 1) return {d, d.stride(0), d.stride(1)};
    if (d.stride(0) == 0 && d.stride(1) == 0) return {d[0][0].contiguous(), 0, 0};
    return {d.contiguous(), d.size(1) * d.size(2), d.size(2)};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> elman_bwd(
    const Tensor &x, const Tensor &w_ih, const Tensor &w_hh, const OptTensor &lengths,
    const Tensor &P, const Tensor &hN, const OptTensor &dout, const OptTensor &dhn, int64_t act,
    std::array<bool, 6> need) {
    const char *op = "rnnkit::elman_bwd";
    int64_t B = x.size(0), T = x.size(1), D = x.size(2), H = w_hh.size(1);
    OptTensor len = lengths_arg(lengths, B, T, op);
    Tensor X = x.contiguous(), wi = w_ih.contiguous(), wh = w_hh.contiguous();
    Tensor Pc = P.contiguous(), hNc = hN.contiguous();
    Rows go = rows_arg(dout);
    OptTensor gh = contiguous(dhn);
    Tensor dX = grad_buf(need[0], x, {B, T, D}), dh0 = grad_buf(need[1], x, {B, H});
    Tensor dWih = grad_buf(need[2], x, {H, D}), dWhh = grad_buf(need[3], x, {H, H});
    Tensor dbih = grad_buf(need[4], x, {H}), dbhh = grad_buf(need[5], x, {H});
    int64_t a[] = {dtype_code(x, op), T, B, D, H, act, ptr(X), ptr(wi), ptr(wh), ptr(len),
                   ptr(Pc), ptr(hNc), ptr(go.t), ptr(gh),
                   ptr_if(need[1], dh0), ptr_if(need[0], dX), ptr_if(need[2], dWih),
                   ptr_if(need[3], dWhh), ptr_if(need[4], dbih), ptr_if(need[5], dbhh),
                   at::get_num_threads(), go.sb, go.st};
    RK_CALL(elman_bwd, a[0], a);
    return {dX, dh0, dWih, dWhh, dbih, dbhh};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> gru_fwd(const Tensor &x, const Tensor &h0,
                                                           const Tensor &w_ih, const Tensor &w_hh,
                                                           const OptTensor &b_ih,
                                                           const OptTensor &b_hh, bool reset_after,
                                                           const OptTensor &lengths) {
    const char *op = "rnnkit::gru_fwd";
    Dims d = check_sequence(op, x, {&h0}, w_ih, w_hh, b_ih, b_hh, 3);
    OptTensor len = lengths_arg(lengths, d.B, d.T, op);
    Tensor X = time_major(x), wi = w_ih.contiguous(), wh = w_hh.contiguous(), h = h0.contiguous();
    OptTensor bi = contiguous(b_ih), bh = contiguous(b_hh);
    Tensor gates = scratch(len, {d.T, d.B, 3 * d.H}, x);  // r, z, n after the step
    Tensor ext = scratch(len, {d.T, d.B, d.H}, x);  // W_hn h + b_hn, or r * h
    Tensor hs = pooled_empty({d.T + 1, d.B, d.H}, x);
    Tensor out = pooled_empty({d.B, d.T, d.H}, x);
    int64_t a[] = {dtype_code(x, op), d.T, d.B, d.D, d.H, reset_after, ptr(X), ptr(wi), ptr(wh),
                   ptr(bi), ptr(bh), ptr(len), ptr(h), ptr(gates), ptr(hs), ptr(ext), ptr(out),
                   at::get_num_threads()};
    RK_CALL(gru_fwd, a[0], a);
    return {out, hs[d.T].clone(), hs, gates, ext};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> gru_bwd(
    const Tensor &x, const Tensor &w_ih, const Tensor &w_hh, const OptTensor &lengths,
    const Tensor &hs, const Tensor &gates, const Tensor &ext, const OptTensor &dout,
    const OptTensor &dhn, bool reset_after, std::array<bool, 6> need) {
    const char *op = "rnnkit::gru_bwd";
    int64_t B = x.size(0), T = x.size(1), D = x.size(2), H = w_hh.size(1);
    OptTensor len = lengths_arg(lengths, B, T, op);
    Tensor X = time_major(x), wi = w_ih.contiguous(), wh = w_hh.contiguous();
    Tensor hsc = hs.contiguous(), gc = gates.contiguous(), ec = ext.contiguous();
    Rows go = rows_arg(dout);
    OptTensor gh = contiguous(dhn);
    Tensor dX = grad_buf(need[0], x, {T, B, D}), dh0 = grad_buf(need[1], x, {B, H});
    Tensor dWih = grad_buf(need[2], x, {3 * H, D}), dWhh = grad_buf(need[3], x, {3 * H, H});
    Tensor dbih = grad_buf(need[4], x, {3 * H}), dbhh = grad_buf(need[5], x, {3 * H});
    int64_t a[] = {dtype_code(x, op), T, B, D, H, reset_after, ptr(X), ptr(wi), ptr(wh),
                   ptr(len), ptr(hsc), ptr(gc), ptr(ec),
                   ptr(go.t), ptr(gh), ptr_if(need[1], dh0), ptr_if(need[0], dX),
                   ptr_if(need[2], dWih), ptr_if(need[3], dWhh), ptr_if(need[4], dbih),
                   ptr_if(need[5], dbhh), at::get_num_threads(), go.sb, go.st};
    RK_CALL(gru_bwd, a[0], a);
    return {need[0] ? dX.transpose(0, 1) : dX, dh0, dWih, dWhh, dbih, dbhh};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> lstm_fwd(
    const Tensor &x, const Tensor &h0, const Tensor &c0, const Tensor &w_ih, const Tensor &w_hh,
    const OptTensor &b_ih, const OptTensor &b_hh, const OptTensor &lengths) {
    const char *op = "rnnkit::lstm_fwd";
    Dims d = check_sequence(op, x, {&h0, &c0}, w_ih, w_hh, b_ih, b_hh, 4);
    OptTensor len = lengths_arg(lengths, d.B, d.T, op);
    Tensor X = time_major(x), wi = w_ih.contiguous(), wh = w_hh.contiguous();
    Tensor h = h0.contiguous(), c = c0.contiguous();
    OptTensor bi = contiguous(b_ih), bh = contiguous(b_hh);
    Tensor gates = scratch(len, {d.T, d.B, 4 * d.H}, x);  // i, f, g, o after the step
    Tensor hs = pooled_empty({d.T + 1, d.B, d.H}, x);
    Tensor cs = pooled_empty({d.T + 1, d.B, d.H}, x);
    Tensor out = pooled_empty({d.B, d.T, d.H}, x);
    int64_t a[] = {dtype_code(x, op), d.T, d.B, d.D, d.H, ptr(X), ptr(wi), ptr(wh), ptr(bi),
                   ptr(bh), ptr(len), ptr(h), ptr(c), ptr(gates), ptr(hs), ptr(cs), ptr(out),
                   at::get_num_threads()};
    RK_CALL(lstm_fwd, a[0], a);
    return {out, hs[d.T].clone(), cs[d.T].clone(), hs, cs, gates};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> lstm_bwd(
    const Tensor &x, const Tensor &w_ih, const Tensor &w_hh, const OptTensor &lengths,
    const Tensor &hs, const Tensor &cs, const Tensor &gates, const OptTensor &dout,
    const OptTensor &dhn, const OptTensor &dcn, std::array<bool, 7> need) {
    const char *op = "rnnkit::lstm_bwd";
    int64_t B = x.size(0), T = x.size(1), D = x.size(2), H = w_hh.size(1);
    OptTensor len = lengths_arg(lengths, B, T, op);
    Tensor X = time_major(x), wi = w_ih.contiguous(), wh = w_hh.contiguous();
    Tensor hsc = hs.contiguous(), csc = cs.contiguous(), gtc = gates.contiguous();
    Rows go = rows_arg(dout);
    OptTensor gh = contiguous(dhn), gc = contiguous(dcn);
    Tensor dX = grad_buf(need[0], x, {T, B, D}), dh0 = grad_buf(need[1], x, {B, H});
    Tensor dc0 = grad_buf(need[2], x, {B, H});
    Tensor dWih = grad_buf(need[3], x, {4 * H, D}), dWhh = grad_buf(need[4], x, {4 * H, H});
    Tensor dbih = grad_buf(need[5], x, {4 * H}), dbhh = grad_buf(need[6], x, {4 * H});
    int64_t a[] = {dtype_code(x, op), T, B, D, H, ptr(X), ptr(wi), ptr(wh), ptr(len),
                   ptr(hsc), ptr(csc), ptr(gtc), ptr(go.t),
                   ptr(gh), ptr(gc), ptr_if(need[1], dh0), ptr_if(need[2], dc0),
                   ptr_if(need[0], dX), ptr_if(need[3], dWih), ptr_if(need[4], dWhh),
                   ptr_if(need[5], dbih), ptr_if(need[6], dbhh), at::get_num_threads(),
                   go.sb, go.st};
    RK_CALL(lstm_bwd, a[0], a);
    return {need[0] ? dX.transpose(0, 1) : dX, dh0, dc0, dWih, dWhh, dbih, dbhh};
}

/* ---- the Python module: configuration, build info ------------------------------------------ */

/* configure(use_pack, min_rows_per_thread, use_blas): knobs for benchmarks and tests (a
 * negative value keeps the setting); returns the old values. use_blas=0 takes ATen's addmm
 * path, as on a torch whose BLAS exports no sgemm_. */
PyObject *py_configure(PyObject *, PyObject *const *args, Py_ssize_t n) {
    int old_pack = rk_use_pack, old_rows = rk_min_rows, old_blas = rk_use_blas;
    if (n != 3) {
        PyErr_SetString(PyExc_TypeError, "configure expects (use_pack, min_rows, use_blas)");
        return NULL;
    }
    long up = PyLong_AsLong(args[0]), mr = PyLong_AsLong(args[1]), ub = PyLong_AsLong(args[2]);
    if (PyErr_Occurred()) return NULL;
    if (up >= 0) rk_use_pack = (int)up;
    if (mr >= 1) rk_min_rows = (int)mr;
    if (ub >= 0) rk_use_blas = (int)ub;
    return Py_BuildValue("(iii)", old_pack && p_pack != NULL, old_rows,
                         old_blas && *rk_blas_library());
}

/* Sets a byte threshold from a Python int (negative: keep); returns the old value. */
PyObject *set_bytes(size_t *knob, PyObject *arg) {
    long long v = PyLong_AsLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    size_t old = *knob;
    if (v >= 0) *knob = (size_t)v;
    return PyLong_FromSize_t(old);
}

/* col_configure(bytes): W_hh size from which the recurrence splits columns over the threads
 * (rk_col_bytes; 0: always, for tests; negative: keep); returns the old value. */
PyObject *py_col_configure(PyObject *, PyObject *arg) { return set_bytes(&rk_col_bytes, arg); }

/* small_configure(bytes): op(W_hh) size up to which the steps use the AVX-512 tile kernel
 * instead of MKL (rk_small_bytes; 0: never; negative: keep); returns the old value. */
PyObject *py_small_configure(PyObject *, PyObject *arg) { return set_bytes(&rk_small_bytes, arg); }

/* lstm_configure(mode): the LSTM forward's step (cells.h, rk_lstm_fuse): 0 the GEMM then the
 * row pass, 1 the fused tile after the input projection's GEMM, 2 the fused tile over x and h
 * (no separate projection), 3 by shape and CPU (rk_lstm_auto, the default); negative keeps;
 * returns the old mode. */
PyObject *py_lstm_configure(PyObject *, PyObject *arg) {
    long v = PyLong_AsLong(arg);
    if (PyErr_Occurred()) return NULL;
    int old = rk_lstm_fuse;
    if (v >= 0) rk_lstm_fuse = v > 3 ? 3 : (int)v;
    return PyLong_FromLong(old);
}

/* gru_configure(wide): rk_gru_wide (1 or 0; negative keeps); returns the old value. */
PyObject *py_gru_configure(PyObject *, PyObject *arg) {
    long v = PyLong_AsLong(arg);
    if (PyErr_Occurred()) return NULL;
    int old = rk_gru_wide;
    if (v >= 0) rk_gru_wide = v > 0;
    return PyLong_FromLong(old);
}

/* lstm_block_configure((kc, mr)): the fused LSTM step's K blocking (cells.h rk_lstm_kc; 0: the
 * session 9 step, unblocked; negative keeps) and the blocked tile's rows (4 or 6; other values
 * keep); returns the old (kc, mr), kc as it will run (from L1d when not set). */
PyObject *py_lstm_block_configure(PyObject *, PyObject *arg) {
    long kc, mr;
    if (!PyArg_ParseTuple(arg, "ll", &kc, &mr)) return NULL;
    PyObject *old = Py_BuildValue("(ii)", rk_lstm_kc_get(), rk_lstm_kb_mr);
    if (kc >= 0) rk_lstm_kc = kc > 4096 ? 4096 : (int)kc;
    if (mr == 4 || mr == 6) rk_lstm_kb_mr = (int)mr;
    return old;
}

/* gemm_configure(mode): 1 runs the own AVX-512 GEMM (gemm.h) for float where the CPU has
 * AVX-512F, 0 the BLAS, negative keeps; returns (old setting, description). */
PyObject *py_gemm_configure(PyObject *, PyObject *arg) {
    long v = PyLong_AsLong(arg);
    if (PyErr_Occurred()) return NULL;
    int old = rk_own_on;
    if (v >= 0) rk_own_on = v > 0 && rk_own_supported();
    return Py_BuildValue("(is)", old, rk_own_reason());
}

/* gemm_route(bits): which products the kernels' GEMM gives the own GEMM where it runs
 * (gemm.h, RK_ROUTE_*), negative keeps; returns the old bits. */
PyObject *py_gemm_route(PyObject *, PyObject *arg) {
    long v = PyLong_AsLong(arg);
    if (PyErr_Occurred()) return NULL;
    int old = rk_own_route;
    if (v >= 0) rk_own_route = (int)v;
    return PyLong_FromLong(old);
}

/* info(): (library sgemm_ came from or "", why ATen's addmm runs or "", MKL packed GEMM found,
 * OpenMP runtime or "", vector clones built). */
PyObject *py_info(PyObject *, PyObject *) {
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
    int clones = 1;
#else
    int clones = 0;
#endif
    return Py_BuildValue("(ssisi)", rk_blas_library(), rk_blas_fallback_reason(), p_pack != NULL,
                         rk_openmp_library(), clones);
}

/* pool_configure(cap): the block cache's idle-byte cap (pool.h; negative keeps it, 0 frees
 * every idle block); returns (old cap, idle bytes now, hits, misses). */
PyObject *py_pool_configure(PyObject *, PyObject *arg) {
    long long v = PyLong_AsLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    RkPool &pool = rk_pool();
    std::lock_guard<std::mutex> lock(pool.mu);
    size_t old = pool.cap;
    if (v >= 0) {
        pool.cap = (size_t)v;
        pool.shrink_to(pool.cap);
    }
    return Py_BuildValue("(nnnn)", (Py_ssize_t)old, (Py_ssize_t)pool.idle_bytes,
                         (Py_ssize_t)pool.hits, (Py_ssize_t)pool.misses);
}

/* own_gemm(a, b, c, M, N, K): row-major C (M, N) = A (M, K) B (K, N) with the own GEMM on
 * torch's threads (addresses of contiguous float32 buffers, the caller's to check), whether or
 * not the kernels use it (rk_own_on); for the benchmark's sgemm peak. RuntimeError where the
 * CPU cannot run it (no AVX-512F). */
PyObject *py_own_gemm(PyObject *, PyObject *const *args, Py_ssize_t n) {
    if (n != 6) {
        PyErr_SetString(PyExc_TypeError, "own_gemm expects (a, b, c, M, N, K)");
        return NULL;
    }
    long long v[6];
    for (int i = 0; i < 6; i++) {
        v[i] = PyLong_AsLongLong(args[i]);
        if (v[i] == -1 && PyErr_Occurred()) return NULL;
    }
    if (!rk_own_supported()) {
        PyErr_SetString(PyExc_RuntimeError, "own_gemm: this CPU has no AVX-512F");
        return NULL;
    }
    int M = (int)v[3], N = (int)v[4], K = (int)v[5];
    int err;
    Py_BEGIN_ALLOW_THREADS
    err = rk_own_gemm('N', 'N', M, N, K, (const float *)(intptr_t)v[0], K,
                      (const float *)(intptr_t)v[1], N, 0.0f, (float *)(intptr_t)v[2], N,
                      at::get_num_threads());
    Py_END_ALLOW_THREADS
    if (err) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))py_configure, METH_FASTCALL, "tuning knobs"},
    {"info", (PyCFunction)py_info, METH_NOARGS, "what the build found"},
    {"col_configure", (PyCFunction)py_col_configure, METH_O, "column-split threshold"},
    {"pool_configure", (PyCFunction)py_pool_configure, METH_O, "block cache cap"},
    {"small_configure", (PyCFunction)py_small_configure, METH_O, "tile-kernel threshold"},
    {"gemm_configure", (PyCFunction)py_gemm_configure, METH_O, "own GEMM on/off"},
    {"gemm_route", (PyCFunction)py_gemm_route, METH_O, "own GEMM routing bits"},
    {"lstm_configure", (PyCFunction)py_lstm_configure, METH_O, "LSTM fused step mode"},
    {"gru_configure", (PyCFunction)py_gru_configure, METH_O, "GRU backward gate layout"},
    {"lstm_block_configure", (PyCFunction)py_lstm_block_configure, METH_O,
     "LSTM fused step K blocking"},
    {"own_gemm", (PyCFunction)(void (*)(void))py_own_gemm, METH_FASTCALL, "the own GEMM, once"},
    {NULL, NULL, 0, NULL}};

#define RK_STR2(x) #x
#define RK_STR(x) RK_STR2(x)
PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, RK_STR(TORCH_EXTENSION_NAME),
                         "rnnkit fused RNN kernels (torch.ops.rnnkit)", -1, methods};

}  // namespace

extern PyMethodDef rk_step_methods[]; /* step.cpp: the streaming paths */

TORCH_LIBRARY(rnnkit, m) {
    m.def("elman_fwd(Tensor x, Tensor h0, Tensor w_ih, Tensor w_hh, Tensor? b_ih, Tensor? b_hh, "
          "int act, Tensor? lengths) -> (Tensor out, Tensor h_n, Tensor P, Tensor hN)");
    m.def("elman_bwd(Tensor x, Tensor w_ih, Tensor w_hh, Tensor? lengths, Tensor P, Tensor hN, "
          "Tensor? dout, Tensor? dhn, int act, bool[6] need) -> "
          "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
    m.def("gru_fwd(Tensor x, Tensor h0, Tensor w_ih, Tensor w_hh, Tensor? b_ih, Tensor? b_hh, "
          "bool reset_after, Tensor? lengths) -> "
          "(Tensor out, Tensor h_n, Tensor hs, Tensor gates, Tensor ext)");
    m.def("gru_bwd(Tensor x, Tensor w_ih, Tensor w_hh, Tensor? lengths, Tensor hs, Tensor gates, "
          "Tensor ext, Tensor? dout, Tensor? dhn, bool reset_after, bool[6] need) -> "
          "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
    m.def("lstm_fwd(Tensor x, Tensor h0, Tensor c0, Tensor w_ih, Tensor w_hh, Tensor? b_ih, "
          "Tensor? b_hh, Tensor? lengths) -> "
          "(Tensor out, Tensor h_n, Tensor c_n, Tensor hs, Tensor cs, Tensor gates)");
    m.def("lstm_bwd(Tensor x, Tensor w_ih, Tensor w_hh, Tensor? lengths, Tensor hs, Tensor cs, "
          "Tensor gates, Tensor? dout, Tensor? dhn, Tensor? dcn, bool[7] need) -> "
          "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(rnnkit, CPU, m) {
    m.impl("elman_fwd", &elman_fwd);
    m.impl("elman_bwd", &elman_bwd);
    m.impl("gru_fwd", &gru_fwd);
    m.impl("gru_bwd", &gru_bwd);
    m.impl("lstm_fwd", &lstm_fwd);
    m.impl("lstm_bwd", &lstm_bwd);
}

#define RK_CAT2(a, b) a##b
#define RK_CAT(a, b) RK_CAT2(a, b)
PyMODINIT_FUNC RK_CAT(PyInit_, TORCH_EXTENSION_NAME)(void) {
    rk_find_blas();
    rk_own_init();
    PyObject *module = PyModule_Create(&moduledef);
    if (module && PyModule_AddFunctions(module, rk_step_methods) < 0) Py_CLEAR(module);
    return module;
}
