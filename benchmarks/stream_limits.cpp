/*
 * The B = 1 streamer's limits on this machine, outside Python and torch (issue 11, session 13):
 * built and run by benchmarks/stream_limits.py (see its docstring). Each figure is the median
 * over --reps blocks of --steps steps, ns a step, threads pinned (caller CPU 0, worker CPU 1).
 *
 *   kernel_one   the streamer's own step (step.h step_fwd_cols, all H columns) on one thread,
 *                hout copied back into h as stream_layers does
 *   kernel_half  the same, columns [0, H/2) only: one core's share of a split step, its half of
 *                the weights resident in its L2
 *   stream_fma   an FMA loop over the same bytes as kernel_half, 16 accumulators, contiguous
 *   stream_pf    the same with software prefetch 1 KB ahead: the L2 read rate's ceiling here
 *   handoff      an empty job round trip: the caller publishes, the worker sees it and answers
 *   split_min    the kernel's two halves on caller + worker with that minimal handoff (the job
 *                in the published line, no back-off, no wake-up): the split step's floor
 */
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
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

/* one pass over n floats at w with 16 accumulators: the sum of x-scaled weights */
__attribute__((target("avx512f"))) static float stream_fma(const float *w, size_t n, float xs,
                                                           int pf) {
    __m512 a[16];
    for (int i = 0; i < 16; i++) a[i] = _mm512_setzero_ps();
    __m512 xv = _mm512_set1_ps(xs);
    for (size_t k = 0; k + 256 <= n; k += 256) {
        if (pf)
            for (int i = 0; i < 16; i++) _mm_prefetch((const char *)(w + k + 256 + 16 * i), _MM_HINT_T0);
        for (int i = 0; i < 16; i++) a[i] = _mm512_fmadd_ps(xv, _mm512_load_ps(w + k + 16 * i), a[i]);
    }
    for (int i = 1; i < 16; i++) a[0] = _mm512_add_ps(a[0], a[i]);
    return _mm512_reduce_add_ps(a[0]);
}

/* the same pass, the floats past `keep` asked for 1 KB ahead with prefetchnta (into L1 at low
 * priority, on Intel: they then evict one another, not the first `keep` floats, which may
 * stay in L1 from one pass to the next) */
__attribute__((target("avx512f"))) static float stream_nta(const float *w, size_t n, size_t keep,
                                                           float xs) {
    __m512 a[16];
    for (int i = 0; i < 16; i++) a[i] = _mm512_setzero_ps();
    __m512 xv = _mm512_set1_ps(xs);
    for (size_t k = 0; k + 256 <= n; k += 256) {
        if (k + 256 >= keep)
            for (int i = 0; i < 16; i++)
                _mm_prefetch((const char *)(w + k + 256 + 16 * i), _MM_HINT_NTA);
        for (int i = 0; i < 16; i++) a[i] = _mm512_fmadd_ps(xv, _mm512_load_ps(w + k + 16 * i), a[i]);
    }
    for (int i = 1; i < 16; i++) a[0] = _mm512_add_ps(a[0], a[i]);
    return _mm512_reduce_add_ps(a[0]);
}

/* the minimal handoff: job n published with its arguments in one line, done in another */
struct alignas(64) Line {
    std::atomic<long> v{0};
    int j0 = 0, j1 = 0;
    Cell *cell = nullptr;
    char pad[64 - sizeof(long) - 2 * sizeof(int) - sizeof(void *)];
};
static Line pub, ack;
static std::atomic<int> quit{0};

static void *worker(void *) {
    pin(1);
    long last = 0;
    for (;;) {
        long s;
        while ((s = pub.v.load(std::memory_order_acquire)) == last) {
            if (quit.load(std::memory_order_relaxed)) return nullptr;
            _mm_pause();
        }
        last = s;
        if (pub.cell) pub.cell->cols(pub.j0, pub.j1);
        ack.v.store(s, std::memory_order_release);
    }
}

static long seqn = 0;
static inline void post(Cell *cell, int j0, int j1) {
    pub.cell = cell; pub.j0 = j0; pub.j1 = j1;
    pub.v.store(++seqn, std::memory_order_release);
}
static inline void wait_ack() {
    while (ack.v.load(std::memory_order_acquire) != seqn) _mm_pause();
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 30, steps = argc > 2 ? atoi(argv[2]) : 2000;
    int H = argc > 3 ? atoi(argv[3]) : 128;
    pin(0);
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
        double sf = per_step(reps, steps, [&] { sink = sink + stream_fma(w, n, 0.5f, 0); });
        double sp = per_step(reps, steps, [&] { sink = sink + stream_fma(w, n, 0.5f, 1); });
        double nta[4];
        size_t keeps[4] = {0, 8192, 10240, 11264}; /* floats: 0, 32, 40, 44 KB */
        for (int i = 0; i < 4; i++)
            nta[i] = per_step(reps, steps, [&] { sink = sink + stream_nta(w, n, keeps[i], 0.5f); });
        double sm = per_step(reps, steps, [&] {
            post(&a, half, H);
            a.cols(0, half);
            wait_ack();
            a.copy_back();
        });
        double kb = a.half_bytes() / 1024.0;
        printf("{\"cell\": \"%s\", \"H\": %d, \"half_KB\": %.0f, \"kernel_one_ns\": %.0f, "
               "\"kernel_half_ns\": %.0f, \"stream_fma_ns\": %.0f, \"stream_pf_ns\": %.0f, "
               "\"split_min_ns\": %.0f, \"half_B_per_ns\": %.1f, \"fma_B_per_ns\": %.1f, "
               "\"pf_B_per_ns\": %.1f, \"nta_keep_0_32_40_44KB_ns\": [%.0f, %.0f, %.0f, %.0f]}\n",
               name, H, kb, one, hf, sf, sp, sm, a.half_bytes() / hf, a.half_bytes() / sf,
               a.half_bytes() / sp, nta[0], nta[1], nta[2], nta[3]);
        free(w);
    }
    quit.store(1);
    pub.v.store(++seqn);
    pthread_join(th, nullptr);
    return 0;
}
