/*
 * The B = 1 streamer's limits on this machine, outside Python and torch (issue 11, session 13):
 * built and run by benchmarks/stream_limits.py (see its docstring; usage: stream_limits reps
 * steps H [wake_rounds]). Each figure is the median over `reps` blocks of `steps` steps, ns a
 * step, threads pinned (caller CPU 0, worker CPU 1). One JSON line for the handoff, one per
 * cell (GRU reset_after, LSTM; D = H):
 *
 *   kernel_one    the streamer's own step (step.h step_fwd_cols, all H columns) on one
 *                 thread, hout (cout) copied back into h (c) as stream_layers does
 *   kernel_half   the same, columns [0, H/2) only: one core's share of a split step, its half
 *                 of the weights resident in its L2 (half_KB); half_B_per_ns its read rate
 *   stream_fma    an FMA loop over the same bytes, 16 accumulators, one contiguous stream;
 *   stream_pf     the same with software prefetch 1 KB ahead (the L2 read rate's ceiling)
 *   nta_keep_*    stream_fma with the bytes past the first 0 / 32 / 40 / 44 KB asked for with
 *                 prefetchnta (whether a part of the weights can stay in L1 between steps)
 *   strip4        the kernel's GEMV pattern alone (4 strips K x 16 apart, 2 rows an
 *                 iteration, 8 accumulators) over the half's bytes; block64: the same with
 *                 the 4 vectors side by side (one stream)
 *   gates_ns      the gate math of the half alone (64 units)
 *   handoff       an empty job round trip: the caller publishes, the worker sees it, answers
 *   split_min     the kernel's halves on caller + worker with that minimal handoff (the job
 *                 in the published line, no back-off, no wake-up), the caller copying the new
 *                 state back: the split step's floor; split_min_caller_plus_16_32_48: the
 *                 caller taking 16 / 32 / 48 more columns; split_min_cas: the worker claiming
 *                 each job with a CAS as StreamWorker does; split_min_prefetch: the worker
 *                 asking for x, h, c first (as HalfJob); split_polling: the worker asking for
 *                 them while it waits and the caller for the worker's outputs while it waits;
 *                 split_private: the worker's half on a state of its own (nothing crossing
 *                 the cores but the two flags)
 *   wake          (with wake_rounds) a thread asleep on a condition variable 10 ms, woken by
 *                 notify_one: what the notify costs the caller and when the thread runs (us)
 */
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "vec.h"

#define RK_C const REAL *restrict
#define REAL float
#define SUF(name) name##_f32
#define SIGM rk_sigmf
#define TANH rk_tanhf
#include "step.h"

#include <immintrin.h>

static inline long now_ns() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}
static void pin(int cpu) {
    cpu_set_t m;
    CPU_ZERO(&m);
    CPU_SET(cpu, &m);
    sched_setaffinity(0, sizeof m, &m);
}
static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}
static float *falloc(size_t n) {
    float *p = (float *)aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; i < n; i++) p[i] = (float)((rand() % 2001) - 1000) * 1e-4f;
    return p;
}

struct Cell {
    int kind, H, G;
    float *x, *h, *c, *wih, *whh, *bx, *bh, *hout, *cout, *save, *s, *gh;
    step_t_f32 p{};
    Cell(int kind_, int H_) : kind(kind_), H(H_), G(kind_ == 1 ? 3 : 4) {
        int GH = G * H;
        x = falloc(H); h = falloc(H); c = falloc(H); wih = falloc((size_t)H * GH);
        whh = falloc((size_t)H * GH); bx = falloc(GH); bh = falloc(H); hout = falloc(H);
        cout = falloc(H); save = falloc(4 * H); s = falloc(GH); gh = falloc(GH);
        p.kind = kind; p.opt = kind == 1; p.B = 1; p.D = H; p.H = H; p.x = x; p.ldx = H;
        p.h = h; p.c = kind == 2 ? c : nullptr; p.WihT = wih; p.WhhT = whh; p.bx = bx;
        p.bh = bh; p.hout = hout; p.cout = kind == 2 ? cout : nullptr; p.save = save; p.s = s;
        p.gh = gh;
    }
    void cols(int j0, int j1) { step_fwd_cols_f32(&p, j0, j1); }
    void copy_back() {
        memcpy(h, hout, H * sizeof(float));
        if (kind == 2) memcpy(c, cout, H * sizeof(float));
    }
    size_t half_bytes() const { return (size_t)2 * G * H * H / 2 * sizeof(float); }
};

template <typename F> static double per_step(int reps, int steps, F f) {
    std::vector<double> r;
    for (int i = 0; i < steps * 3; i++) f(); /* warm */
    for (int k = 0; k < reps; k++) {
        long t = now_ns();
        for (int i = 0; i < steps; i++) f();
        r.push_back((double)(now_ns() - t) / steps);
    }
    return median(r);
}

/* One pass over n floats at w with 16 accumulators: the sum of x-scaled weights. The floats
 * from `from` on are asked for 1 KB ahead with prefetch hint `hint` (none: from >= n).
 * _MM_HINT_NTA brings them into L1 at low priority, on Intel: they then evict one another, not
 * the floats before `from`, which may stay in L1 from one pass to the next. */
template <int hint>
__attribute__((target("avx512f"))) static float stream_fma(const float *w, size_t n, float xs,
                                                           size_t from) {
    __m512 a[16];
    for (int i = 0; i < 16; i++) a[i] = _mm512_setzero_ps();
    __m512 xv = _mm512_set1_ps(xs);
    for (size_t k = 0; k + 256 <= n; k += 256) {
        if (k + 256 >= from)
            for (int i = 0; i < 16; i++)
                _mm_prefetch((const char *)(w + k + 256 + 16 * i), (_mm_hint)hint);
        for (int i = 0; i < 16; i++) a[i] = _mm512_fmadd_ps(xv, _mm512_load_ps(w + k + 16 * i), a[i]);
    }
    for (int i = 1; i < 16; i++) a[0] = _mm512_add_ps(a[0], a[i]);
    return _mm512_reduce_add_ps(a[0]);
}

/* The kernel's pattern (sp_gemv: a 4-vector column block, two rows an iteration, 8
 * accumulators) over `parts` (gate, x/h) products of K rows, with the block's 4 vectors
 * either in 4 strips K x 16 apart (contig 0: pack_gates' layout) or side by side, K x 64
 * contiguous (contig 1: one stream) */
__attribute__((target("avx512f"))) static float gemv_blocks(const float *W, int parts, int K,
                                                            const float *x, int contig) {
    __m512 out = _mm512_setzero_ps();
    size_t vstep = contig ? 16 : (size_t)K * 16, rstep = contig ? 64 : 16;
    for (int q = 0; q < parts; q++) {
        const float *w = W + (size_t)q * K * 64;
        __m512 a[4], e[4];
        for (int i = 0; i < 4; i++) a[i] = e[i] = _mm512_setzero_ps();
        for (int k = 0; k + 2 <= K; k += 2, w += 2 * rstep) {
            __m512 x0 = _mm512_set1_ps(x[k]), x1 = _mm512_set1_ps(x[k + 1]);
            for (int i = 0; i < 4; i++) a[i] = _mm512_fmadd_ps(x0, _mm512_loadu_ps(w + i * vstep), a[i]);
            for (int i = 0; i < 4; i++)
                e[i] = _mm512_fmadd_ps(x1, _mm512_loadu_ps(w + i * vstep + rstep), e[i]);
        }
        for (int i = 0; i < 4; i++) out = _mm512_add_ps(out, _mm512_add_ps(a[i], e[i]));
    }
    return _mm512_reduce_add_ps(out);
}

/* the minimal handoff: job n published with its arguments in one line, done in another */
struct alignas(64) Line {
    std::atomic<long> v{0};
    int j0 = 0, j1 = 0;
    Cell *cell = nullptr;
    char pad[64 - sizeof(long) - 2 * sizeof(int) - sizeof(void *)];
};
static Line pub, ack, tkn; /* tkn: a claim line as StreamWorker's taken (cas: 1) */
static int cas = 0, pf_state = 0, poll_pf = 0;
static Cell *poll_cell = nullptr; /* poll_pf: the cell whose state the worker asks for */
static inline void ask(const float *p, int n) {
    for (int i = 0; i < n; i += 16) __builtin_prefetch(p + i);
}
static std::atomic<int> quit{0};

static void *worker(void *) {
    pin(1);
    long last = 0;
    for (;;) {
        long s;
        for (int spins = 0; (s = pub.v.load(std::memory_order_acquire)) == last; spins++) {
            if (quit.load(std::memory_order_relaxed)) return nullptr;
            _mm_pause();
            if (poll_pf && poll_cell && (spins & 3) == 0) { /* the next job's state, early */
                ask(poll_cell->x, poll_cell->H);
                ask(poll_cell->h, poll_cell->H);
                if (poll_cell->kind == 2) ask(poll_cell->c, poll_cell->H);
            }
        }
        last = s;
        if (cas) {
            long want = s - 1;
            tkn.v.compare_exchange_strong(want, s, std::memory_order_acq_rel);
        }
        if (pub.cell && pf_state) /* as HalfJob::run: x, h, c asked for at once */
            for (int i = 0; i < pub.cell->H; i += 16) {
                __builtin_prefetch(pub.cell->x + i);
                __builtin_prefetch(pub.cell->h + i);
                if (pub.cell->kind == 2) __builtin_prefetch(pub.cell->c + i);
            }
        if (pub.cell) pub.cell->cols(pub.j0, pub.j1);
        ack.v.store(s, std::memory_order_release);
    }
}

/* wake-up: a thread asleep on a condition variable after a 10 ms gap (its vCPU idle), woken by
 * notify_one: the notify's cost to the caller, and the time until the thread runs */
static std::mutex wmu;
static std::condition_variable wcv;
static std::atomic<long> wflag{0}, wseen{0};
static void *sleeper(void *) {
    pin(1);
    for (long last = 0;;) {
        std::unique_lock<std::mutex> lk(wmu);
        wcv.wait(lk, [&] { return wflag.load() != last; });
        last = wflag.load();
        lk.unlock();
        wseen.store(last);
        if (last < 0) return nullptr;
    }
}
static void wake_test(int rounds) {
    pthread_t t;
    pthread_create(&t, nullptr, sleeper, nullptr);
    std::vector<double> cost, lat;
    for (int i = 1; i <= rounds; i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        long t0 = now_ns();
        {
            std::lock_guard<std::mutex> lk(wmu);
            wflag.store(i);
            wcv.notify_one();
        }
        long t1 = now_ns();
        while (wseen.load() != i) _mm_pause();
        long t2 = now_ns();
        cost.push_back((t1 - t0) / 1e3);
        lat.push_back((t2 - t0) / 1e3);
    }
    {
        std::lock_guard<std::mutex> lk(wmu);
        wflag.store(-1);
        wcv.notify_one();
    }
    pthread_join(t, nullptr);
    std::sort(lat.begin(), lat.end());
    printf("{\"what\": \"wake\", \"notify_us_median\": %.1f, \"wake_us_p10_50_90_max\": [%.1f, %.1f, %.1f, %.1f]}\n",
           median(cost), lat[lat.size() / 10], lat[lat.size() / 2], lat[lat.size() * 9 / 10], lat.back());
}

static long seqn = 0;
static inline void post(Cell *cell, int j0, int j1) {
    pub.cell = cell; pub.j0 = j0; pub.j1 = j1;
    pub.v.store(++seqn, std::memory_order_release);
}
static inline void wait_ack_polling(Cell *c, int j0) {
    for (int spins = 0; ack.v.load(std::memory_order_acquire) != seqn; spins++) {
        _mm_pause();
        if ((spins & 3) == 0) { /* the worker's outputs, as they are written */
            ask(c->hout + j0, c->H - j0);
            if (c->kind == 2) ask(c->cout + j0, c->H - j0);
        }
    }
}
static inline void wait_ack() {
    if (cas && tkn.v.load(std::memory_order_acquire) != seqn) {
        long want = seqn - 1;
        tkn.v.compare_exchange_strong(want, seqn, std::memory_order_acq_rel);
    }
    while (ack.v.load(std::memory_order_acquire) != seqn) _mm_pause();
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 30, steps = argc > 2 ? atoi(argv[2]) : 2000;
    int H = argc > 3 ? atoi(argv[3]) : 128;
    pin(0);
    if (argc > 4) {
        wake_test(atoi(argv[4]));
        return 0;
    }
    pthread_t th;
    pthread_create(&th, nullptr, worker, nullptr);
    double ho = per_step(reps, steps * 10, [&] { post(nullptr, 0, 0); wait_ack(); });
    printf("{\"what\": \"handoff\", \"ns\": %.1f}\n", ho);
    for (int kind : {1, 2}) {
        const char *name = kind == 1 ? "gru" : "lstm";
        Cell a(kind, H);
        int half = H / 2;
        double one = per_step(reps, steps, [&] { a.cols(0, H); a.copy_back(); });
        double hf = per_step(reps, steps, [&] { a.cols(0, half); });
        size_t n = a.half_bytes() / sizeof(float);
        float *w = falloc(n);
        volatile float sink = 0;
        double sf = per_step(reps, steps, [&] { sink = sink + stream_fma<_MM_HINT_T0>(w, n, 0.5f, n); });
        double sp = per_step(reps, steps, [&] { sink = sink + stream_fma<_MM_HINT_T0>(w, n, 0.5f, 0); });
        double nta[4];
        size_t keeps[4] = {0, 8192, 10240, 11264}; /* floats: 0, 32, 40, 44 KB */
        for (int i = 0; i < 4; i++)
            nta[i] = per_step(reps, steps, [&] { sink = sink + stream_fma<_MM_HINT_NTA>(w, n, 0.5f, keeps[i]); });
        int parts = 2 * a.G; /* a half at H = 128: one 4-vector block per (gate, x/h) */
        double strip4 = per_step(reps, steps, [&] { sink = sink + gemv_blocks(w, parts, H, a.x, 0); });
        double block64 = per_step(reps, steps, [&] { sink = sink + gemv_blocks(w, parts, H, a.x, 1); });
        /* the gate math of the half alone (64 units) */
        float *S = a.s, *BX = a.bx;
        int Hh = H;
        double gates = per_step(reps, steps * 4, [&] {
            if (kind == 2)
                lstm_gates_f32(0, half, S, S + Hh, S + 2 * Hh, S + 3 * Hh, BX, BX + Hh, BX + 2 * Hh,
                               BX + 3 * Hh, a.c, a.cout, a.hout, a.save, a.save + Hh,
                               a.save + 2 * Hh, a.save + 3 * Hh);
            else
                gru_gates_ra_f32(0, half, S, S + Hh, S + 2 * Hh, BX, BX + Hh, BX + 2 * Hh, a.gh + 2 * Hh,
                                 a.bh, a.h, a.hout, a.save, a.save + Hh, a.save + 2 * Hh,
                                 a.save + 3 * Hh);
            __asm__ volatile("" ::: "memory");
        });
        /* a split step: the worker columns [cut, H) of cell w (a: the caller's), the caller
         * [0, cut) of a, then (polling: asking for the worker's outputs while it waits) the
         * new state copied back */
        auto split = [&](Cell *w, int cut, bool polling, bool copy) {
            return per_step(reps, steps, [&] {
                post(w, cut, H);
                a.cols(0, cut);
                if (polling) wait_ack_polling(&a, cut);
                else wait_ack();
                if (copy) a.copy_back();
            });
        };
        double sm = split(&a, half, false, true);
        /* the same with the caller taking more columns than the worker (which starts later: it
         * sees the job and fetches h a line move after the caller starts, and its half comes
         * back a move or two before the caller has it) */
        double uneven[3];
        for (int u = 0; u < 3; u++) uneven[u] = split(&a, half + 16 * (u + 1), false, true);
        /* with StreamWorker's claim: the worker's CAS on a taken line that the caller reads
         * after its half (lean) */
        cas = 1;
        double with_cas = split(&a, half, false, true);
        cas = 0;
        /* with the prefetch of x, h, c (as the streamer's worker) */
        pf_state = 1;
        double with_pf = split(&a, half, false, true);
        /* lean 2's polling: the worker asks for x, h, c while it waits, the caller for the
         * worker's outputs while it waits */
        poll_cell = &a;
        poll_pf = 1;
        double polling = split(&a, half, true, true);
        poll_pf = 0;
        pf_state = 0;
        /* no state crossing the cores: the worker's half reads its own copy of h, c and
         * writes its own outputs (results unused): the handoff and the two halves alone */
        Cell b(kind, H);
        double priv = split(&b, half, false, false);
        double kb = a.half_bytes() / 1024.0;
        printf("{\"cell\": \"%s\", \"H\": %d, \"half_KB\": %.0f, \"kernel_one_ns\": %.0f, "
               "\"kernel_half_ns\": %.0f, \"stream_fma_ns\": %.0f, \"stream_pf_ns\": %.0f, "
               "\"split_min_ns\": %.0f, \"half_B_per_ns\": %.1f, \"fma_B_per_ns\": %.1f, "
               "\"pf_B_per_ns\": %.1f, \"nta_keep_0_32_40_44KB_ns\": [%.0f, %.0f, %.0f, %.0f], \"strip4_ns\": %.0f, \"block64_ns\": %.0f, \"gates_ns\": %.0f, \"split_min_caller_plus_16_32_48_ns\": [%.0f, %.0f, %.0f], \"split_min_cas_ns\": %.0f, \"split_min_prefetch_ns\": %.0f, \"split_private_ns\": %.0f, \"split_polling_ns\": %.0f}\n",
               name, H, kb, one, hf, sf, sp, sm, a.half_bytes() / hf, a.half_bytes() / sf,
               a.half_bytes() / sp, nta[0], nta[1], nta[2], nta[3], strip4, block64, gates, uneven[0], uneven[1], uneven[2], with_cas, with_pf, priv, polling);
        free(w);
    }
    quit.store(1);
    pub.v.store(++seqn);
    pthread_join(th, nullptr);
    return 0;
}
