/*
 * One Elman / GRU / LSTM step with autograd, as PyTorch operators, and `Recurrent.step`'s native
 * fast path.
 *
 * Operators (namespace rnnkit, CPU kernels here, fake kernels in kernels/ops.py):
 *   {elman,gru,lstm}_step_fwd  one step, returning what the backward needs (GRU/LSTM: `saved`,
 *                              (B, 4H) gate values); differentiable in x, h (c) and the weights.
 *   {elman,gru,lstm}_step_bwd  that step's backward: dx, dh_prev (dc_prev), dW_ih, dW_hh,
 *                              db_ih, db_hh, each computed only where `need` says.
 * The forward reads the weights transposed and packed (wih_t, whh_t: kernels.step.pack_gates of
 * w_ih and w_hh, the caller's cached copies, see step.h), and takes w_ih and w_hh themselves for the gradient and
 * the backward. Their autograd is registered in C++ (StepNode, one node per step): a Python
 * autograd.Function costs ~10 us a call, more than the whole step at H = 64.
 *
 * The inference step ops {elman,gru,lstm}_step (kernels.elman_step etc.) and `stream_step` /
 * `stream_run` (kernels.KernelStreamer's one call per step over a stack, outside the
 * dispatcher, whose ~2 us a call would be most of a step at H = 64) run the same forward, so
 * all agree exactly.
 *
 * `plan_step` (module function, outside the dispatcher) is Recurrent.step's fast path for a
 * stack of one cell family: one call per step that checks the input, the state and the weights'
 * stamp, then steps every layer, without autograd (the kernels directly) or with it (one
 * autograd node per layer), and returns fresh tensors.
 */
#include <Python.h>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>
#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/library.h>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <memory>
#include <optional>
#include <tuple>
#include <vector>

#include "vec.h"

using at::Tensor;
using OptTensor = std::optional<Tensor>;

namespace {

#define RK_C const REAL *restrict

#define REAL float
#define SUF(name) name##_f32
#define SIGM rk_sigmf
#define TANH rk_tanhf
#include "step.h"
#undef REAL
#undef SUF
#undef SIGM
#undef TANH

#define REAL double
#define SUF(name) name##_f64
#define SIGM rk_sigm
#define TANH tanh
#include "step.h"
#undef REAL
#undef SUF
#undef SIGM
#undef TANH

template <typename T> struct K;
template <> struct K<float> {
    using A = step_t_f32;
    static void fwd(const A *p, int j0, int j1) { step_fwd_cols_f32(p, j0, j1); }
    static void bias(int GH, int H, int ra, const float *bih, const float *bhh, float *bx,
                     float *bh) {
        step_bias_f32(GH, H, ra, bih, bhh, bx, bh);
    }
    static void gates(const A *p) { step_bwd_gates_f32(p); }
    static void cols(const A *p, int d0, int d1, int j0, int j1) {
        step_bwd_cols_f32(p, d0, d1, j0, j1);
    }
};
template <> struct K<double> {
    using A = step_t_f64;
    static void fwd(const A *p, int j0, int j1) { step_fwd_cols_f64(p, j0, j1); }
    static void bias(int GH, int H, int ra, const double *bih, const double *bhh, double *bx,
                     double *bh) {
        step_bias_f64(GH, H, ra, bih, bhh, bx, bh);
    }
    static void gates(const A *p) { step_bwd_gates_f64(p); }
    static void cols(const A *p, int d0, int d1, int j0, int j1) {
        step_bwd_cols_f64(p, d0, d1, j0, j1);
    }
};

int gates_of(int kind) { return kind == 0 ? 1 : kind == 1 ? 3 : 4; }

/* Weight elements read per step (G*H*(D+H)) from which a step is split over torch's threads:
 * below it, waking a second thread costs more than it saves (step_configure changes it).
 * KernelStreamer at B = 1, D = H, 2 threads, quiet 2-core Xeon (us a step, split from 2^17 /
 * 2^18 / never): LSTM H = 128 (2^17) 4.7 / 3.9 / 3.95, GRU H = 256 8.0 / 7.9 / 12.0, LSTM
 * H = 256 10.0 / 10.0 / 30.8. */
int64_t rk_split_min = 1 << 18;

/* How a step is spread over threads: by rk_split_min (the step ops, Recurrent.step), never,
 * or over every thread the step has columns for (a KernelStreamer's choice, timed when it is
 * built: kernels/step.py; the row's RK_SPLIT slot). */
enum { RK_SPLIT_RULE = 0, RK_SPLIT_NEVER = 1, RK_SPLIT_ALWAYS = 2 };

/* body(t, nt) for t in [0, nt): one part per thread where the step is big enough. */
template <typename F>
void split(int64_t work, int units, const F &body, int mode = RK_SPLIT_RULE) {
    int nt = at::get_num_threads();
    bool want = mode == RK_SPLIT_ALWAYS || (mode == RK_SPLIT_RULE && work >= rk_split_min);
    if (nt > 1 && want && !at::in_parallel_region()) {
        nt = std::min(nt, std::max(1, units / 16));
    } else {
        nt = 1;
    }
    if (nt == 1) {
        body(0, 1);
        return;
    }
    at::parallel_for(0, nt, 1, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; t++) body((int)t, nt);
    });
}

/* [lo, hi) of part t of n units over nt parts, boundaries on multiples of 16 (vector width). */
std::pair<int, int> part(int n, int t, int nt) {
    auto at = [&](int k) { return k >= nt ? n : std::min(n, (int)((int64_t)n * k / nt) & ~15); };
    return {at(t), at(t + 1)};
}

/* Scratch of `n` REAL: on the stack when small (the common B = 1 case), else on the heap. */
template <typename T>
struct Scratch {
    alignas(64) T small[8192]; /* a split's parts then meet on no cache line */
    std::vector<T> big;
    T *get(size_t n) {
        if (n <= 8192) return small;
        big.resize(n);
        return big.data();
    }
};

/* ---- the streamer's own worker thread ----------------------------------------------------
 *
 * A split step through at::parallel_for opens an OpenMP parallel region per layer-step: at
 * B = 1 its fork/join is about as long as the split step's compute (Zen 4, LSTM H = 128: 4.04
 * us split against ~2 us of compute per core). A KernelStreamer may instead own one thread
 * (RK_SPLIT_WORKER), created with the streamer and joined when it is freed, that spins on a
 * job counter and runs the second half of each step's columns while the caller runs the first.
 *
 * Job n: the caller writes the job, publishes seq = n, runs its half, then claims the second
 * half itself (taken: n-1 -> n) if the worker has not yet; otherwise it waits for done = n. So a
 * sleeping or descheduled worker never stalls a step by more than the caller's own second half,
 * and each column is computed by exactly one thread, with the one-thread sums (bit-identical).
 * One sync per layer-step: a layer's forward has one phase (each hidden unit's gates need only
 * its own columns), and the reset_after=False GRU, which has two, is never split.
 *
 * Idle: the worker spins (pause) for RK_WORKER_SPIN_US after its last job, then sleeps on a
 * condition variable; the caller notifies only when it sleeps, once per streak of steps whose
 * second half it ran itself ("late" steps). Sharing a core: when the scheduler puts the worker
 * on the caller's core, a spinning worker would take half the caller's time, so it sleeps as
 * soon as it sees the caller's CPU (sched_getcpu) is its own. A worker woken on the caller's
 * CPU moves off it (move_off: its affinity without that CPU, then back), as a woken thread is
 * often put on its waker's CPU (the 2-vCPU KVM guest of session 12: some wake-ups after a gap,
 * and then it waited there for milliseconds, or ran each half in turn with the caller, a
 * wake-up and two switches a step, ~20 us); where its affinity allows no other CPU it leaves
 * the job to the caller and sleeps again.
 * Back-off: a streak of late steps starts at its first (for a sleeping worker, about when it
 * was woken) and again after a gap of RK_WORKER_SPIN_US between two of them (the caller was
 * away, the worker has slept since: it is woken again); once a streak is both RK_WORKER_LATE
 * steps and RK_WORKER_LATE_US long (longer than a wake-up takes: on that guest most took
 * 10-150 us, some ~3-6 ms while its other vCPU was halted), the caller runs its steps on one
 * thread for RK_WORKER_BACKOFF_US, posting nothing, then posts (and wakes) again. Session 11
 * counted 64 late steps and backed off for 1000 steps: a stream in bursts (rnnkit bench: 200
 * steps, then ms of other work) carried a streak and a stale "woken" from one burst into the
 * next, backed off within it and ran the next ~5 bursts on one thread (session 12, 25-35 of
 * 40 bursts began backed off; benchmarks/stream_backoff.py --bursts).
 * After fork() the child has no
 * worker thread: rk_fork_gen (bumped in the child by a pthread_atfork handler) tells the step to
 * run on one thread, and freeing the worker there joins nothing. */
constexpr int RK_SPLIT_WORKER = 3;
constexpr double RK_WORKER_SPIN_US = 200.0;
constexpr double RK_WORKER_LATE_US = 2000.0, RK_WORKER_BACKOFF_US = 5000.0;
constexpr int RK_WORKER_LATE = 64;
constexpr int RK_WAKE_LOG = 256;

inline int64_t rk_now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::atomic<uint64_t> rk_fork_gen{0};
void rk_fork_child() { rk_fork_gen.fetch_add(1, std::memory_order_relaxed); }

inline void rk_pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* A job's half: fn(arg, x), x the step's input where the job is a layer's slot (the job's own
 * x otherwise: null) */
typedef void (*rk_half_fn)(void *, const void *);
constexpr int RK_SLOTS = 8;       /* lean jobs kept: one per layer of a stack (layer k: k % 8) */
constexpr int RK_SLOT_BYTES = 320; /* a SlotJob<T> */

struct StreamWorker {
    /* One line per writer and purpose, so that a step moves as few lines between the cores as
     * it can (each move ~160 ns on the session-13 Xeon guest: benchmarks/stream_limits.py):
     * the job line (the caller writes it, then publishes seq in it: the worker gets the job
     * in the line it spins on), taken, done, and the rarely written flags; the caller's
     * counters on a line of their own. */
    alignas(64) std::atomic<uint64_t> seq{0}; /* the last job published */
    rk_half_fn fn = nullptr;                  /* job seq's second half: fn(arg, x) */
    void *arg = nullptr;
    const void *x = nullptr;
    std::atomic<int> caller_cpu{-1};
    alignas(64) std::atomic<uint64_t> taken{0}; /* the last job whose second half was claimed */
    alignas(64) std::atomic<uint64_t> done{0};  /* the last job the worker finished */
    alignas(64) std::atomic<int> sleeping{0}, stop{0};
    /* the caller's: halves it took in a row, steps left on one thread, woken in this streak,
     * when the streak began (steady clock, ns) */
    alignas(64) int late = 0, woken = 0;
    /* lean (1, the default): the layer's job is kept in a slot (slot_ix: the layer being
     * stepped) that stays put from step to step, its scratch too, and only x travels with seq;
     * seq is published with a release store, the sleeping worker woken after the caller's half;
     * the caller looks at taken before it tries to claim it. 0: the job on the caller's stack,
     * published seq_cst, woken before the half, as before session 13 (for A/B and tests). */
    int lean = 1, slot_ix = 0;
    uint64_t slot_writes = 0; /* slot jobs (re)written: once per layer in a steady stream */
    struct Slot {
        alignas(64) unsigned char job[RK_SLOT_BYTES];
        std::vector<unsigned char> mem; /* the layer's step scratch (s, gh, gate values) */
        template <typename T> T *scratch(size_t n) {
            size_t want = n * sizeof(T) + 64;
            if (mem.size() < want) mem.assign(want, 0);
            return (T *)(((uintptr_t)mem.data() + 63) & ~(uintptr_t)63);
        }
    };
    Slot slots[RK_SLOTS];
    int64_t late_t0 = 0, late_last = 0, skip_until = 0;
    /* wake-ups, for benchmarks: when the caller last notified (written before the notify,
     * under mu), and the worker's latencies from it to its return from the wait (us) */
    int64_t notify_ns = 0;
    uint64_t wakes = 0, wakes_read = 0;
    std::atomic<uint64_t> moves{0};
    float wake_us[RK_WAKE_LOG] = {};
    uint8_t wake_here[RK_WAKE_LOG] = {}; /* woken on the caller's CPU */
    /* tests: the worker waits this long after each wake-up before it looks for a job (a slow
     * wake-up); and whether a worker woken on the caller's CPU moves off it (move_off) */
    std::atomic<double> wake_delay_us{0.0};
    std::atomic<int> move{1};
    /* the caller's back-off rule (the constants; options for tests and benchmarks) */
    double late_us = RK_WORKER_LATE_US, gap_us = RK_WORKER_SPIN_US;
    std::mutex mu;
    std::condition_variable cv;
    pthread_t th{};
    uint64_t gen = 0;
    uint64_t jobs = 0;             /* jobs posted (the caller's count) */
    std::atomic<uint64_t> ran{0};  /* second halves the worker ran */
    uint64_t primes = 0, primes_ran = 0; /* of them, prime()'s empty jobs */

    bool usable() const { return gen == rk_fork_gen.load(std::memory_order_relaxed); }

    static void *main_(void *self) {
        ((StreamWorker *)self)->loop();
        return nullptr;
    }

    void loop() {
        uint64_t last = 0;
        using clk = std::chrono::steady_clock;
        for (;;) {
            auto t0 = clk::now();
            int spins = 0;
            uint64_t s;
            while ((s = seq.load(std::memory_order_acquire)) == last &&
                   !stop.load(std::memory_order_relaxed)) {
                rk_pause();
                if (++spins % 256 == 0 &&
                    (std::chrono::duration<double, std::micro>(clk::now() - t0).count() >
                         RK_WORKER_SPIN_US ||
                     on_callers_cpu(sched_getcpu()))) {
                    std::unique_lock<std::mutex> lk(mu);
                    sleeping.store(1, std::memory_order_seq_cst);
                    cv.wait(lk, [&] {
                        return seq.load(std::memory_order_seq_cst) != last ||
                               stop.load(std::memory_order_relaxed);
                    });
                    sleeping.store(0, std::memory_order_relaxed);
                    t0 = clk::now();
                    int cpu = sched_getcpu(), here = on_callers_cpu(cpu);
                    if (!stop.load(std::memory_order_relaxed)) {
                        wake_us[wakes % RK_WAKE_LOG] = (float)((rk_now_ns() - notify_ns) / 1e3);
                        wake_here[wakes % RK_WAKE_LOG] = (uint8_t)here;
                        wakes++;
                    }
                    lk.unlock();
                    if (here && move.load(std::memory_order_relaxed) && move_off(cpu)) {
                        moves++;
                    } else if (here && move.load(std::memory_order_relaxed)) {
                        /* stuck on the caller's CPU: it runs only while the caller does not,
                         * so taking the job would make each step a wake-up and two switches
                         * (~20 us a step measured, the caller waking it again after every half
                         * it ran); leave this job to the caller and sleep again at once (the
                         * caller wakes it once more after its back-off or a gap) */
                        last = seq.load(std::memory_order_acquire);
                        spins = 255;
                        continue;
                    }
                    if (double d = wake_delay_us.load(std::memory_order_relaxed); d > 0)
                        while (std::chrono::duration<double, std::micro>(clk::now() - t0)
                                   .count() < d)
                            rk_pause();
                }
            }
            if (stop.load(std::memory_order_relaxed)) return;
            last = s;
            uint64_t want = s - 1;
            if (taken.compare_exchange_strong(want, s, std::memory_order_acq_rel)) {
                fn(arg, x);
                ran.fetch_add(1, std::memory_order_relaxed);
                done.store(s, std::memory_order_release);
            }
        }
    }

    static void noop(void *, const void *) {}

    /* `cpu` (sched_getcpu) is the caller's at its last post; never when either is unknown */
    bool on_callers_cpu(int cpu) const {
        return cpu >= 0 && cpu == caller_cpu.load(std::memory_order_relaxed);
    }

    /* Leave `cpu` (the caller's) for another CPU this thread may run on, keeping its affinity:
     * set it to the mask without `cpu` (the kernel moves the thread now), then back. A woken
     * thread is often put on its waker's CPU (wake-affine; on the 2-vCPU KVM guest measured,
     * most wake-ups after a gap), where it waits for the caller's time slice to end or for the
     * idle CPU to pull it: milliseconds, every late half of them the caller's. False when the
     * mask holds no other CPU (then it sleeps again, as when sharing a core). */
    static bool move_off(int cpu) {
        cpu_set_t mask, other;
        if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof mask, &mask) != 0 ||
            !CPU_ISSET(cpu, &mask) || CPU_COUNT(&mask) < 2)
            return false;
        other = mask;
        CPU_CLR(cpu, &other);
        if (sched_setaffinity(0, sizeof other, &other) != 0) return false;
        sched_setaffinity(0, sizeof mask, &mask);
        return true;
    }

    void notify() {
        std::lock_guard<std::mutex> lk(mu);
        notify_ns = rk_now_ns();
        cv.notify_one();
    }

    /* Make the worker ready for a timed round of steps: clear the caller's back-off (a
     * streak of late halves before, e.g. while the worker slept through another mode's
     * round, would otherwise run the whole round on one thread and time it as such), and
     * post an empty job, waking the worker, then wait up to timeout_us for it to run it.
     * True when it did (it spins now); false when it did not come in time (the caller
     * claimed the job). */
    bool prime(double timeout_us) {
        using clk = std::chrono::steady_clock;
        skip_until = late = woken = 0;
        uint64_t n = jobs + 1;
        jobs = n;
        primes++;
        caller_cpu.store(sched_getcpu(), std::memory_order_relaxed);
        fn = &noop;
        arg = nullptr;
        seq.store(n, std::memory_order_seq_cst);
        if (sleeping.load(std::memory_order_seq_cst)) notify();
        auto t0 = clk::now();
        for (int spins = 0; taken.load(std::memory_order_acquire) != n; spins++) {
            rk_pause();
            if (spins % 256 == 0 &&
                std::chrono::duration<double, std::micro>(clk::now() - t0).count() > timeout_us)
                break;
        }
        uint64_t want = n - 1;
        if (taken.compare_exchange_strong(want, n, std::memory_order_acq_rel)) return false;
        for (int spins = 0; done.load(std::memory_order_acquire) != n; spins++) {
            rk_pause();
            if (spins > 4096) sched_yield();
        }
        primes_ran++;
        return true;
    }

    /* Run first(a0, x) here and second(a1, x) on the worker if it takes it in time, else here. */
    void run(rk_half_fn first, void *a0, rk_half_fn second, void *a1, const void *xp) {
        if (skip_until) { /* backing off */
            if (rk_now_ns() < skip_until) {
                first(a0, xp);
                second(a1, xp);
                return;
            }
            skip_until = 0;
        }
        uint64_t n = jobs + 1;
        jobs = n;
        caller_cpu.store(sched_getcpu(), std::memory_order_relaxed);
        fn = second;
        arg = a1;
        x = xp;
        int ln = lean;
        if (ln) {
            /* a plain store: a seq_cst one (xchg) waits for the line to come back from the
             * spinning worker, ~160 ns of the caller's step here; the fence below, after the
             * half, orders it before the sleeping check at no such cost */
            seq.store(n, std::memory_order_release);
        } else {
            seq.store(n, std::memory_order_seq_cst);
            if (!woken && sleeping.load(std::memory_order_seq_cst)) {
                woken = 1;
                notify();
            }
        }
        first(a0, xp);
        if (ln) {
            std::atomic_thread_fence(std::memory_order_seq_cst);
            if (!woken && sleeping.load(std::memory_order_relaxed)) {
                woken = 1;
                notify();
            }
        }
        uint64_t want = n - 1;
        /* lean: a failed claim still takes taken's line from the worker, which then needs it
         * back for its next claim; a load leaves it shared */
        if (!(ln && taken.load(std::memory_order_acquire) == n) &&
            taken.compare_exchange_strong(want, n, std::memory_order_acq_rel)) {
            /* late. A streak starts at its first late step (for a sleeping worker, about
             * when it was woken), and again after a gap of RK_WORKER_SPIN_US between two of
             * its steps (the caller was away: the worker has slept since, and is woken again);
             * it backs off only once it is both RK_WORKER_LATE steps and RK_WORKER_LATE_US
             * long: longer than a wake-up takes */
            int64_t now = rk_now_ns();
            if (!late || now - late_last > (int64_t)(gap_us * 1e3))
                late = woken = 0, late_t0 = now;
            late++;
            late_last = now;
            second(a1, xp);
            if (late >= RK_WORKER_LATE && now - late_t0 >= (int64_t)(late_us * 1e3)) {
                late = woken = 0;
                skip_until = now + (int64_t)(RK_WORKER_BACKOFF_US * 1e3);
            }
            return;
        }
        late = woken = 0;
        for (int spins = 0; done.load(std::memory_order_acquire) != n; spins++) {
            rk_pause();
            if (spins > 4096) sched_yield();  /* the worker was descheduled mid-job */
        }
    }
};

StreamWorker *worker_new() {
    static int once = pthread_atfork(nullptr, nullptr, rk_fork_child);
    (void)once;
    auto *w = new StreamWorker();
    w->gen = rk_fork_gen.load();
    if (pthread_create(&w->th, nullptr, &StreamWorker::main_, w) != 0) {
        delete w;
        return nullptr;
    }
    return w;
}

void worker_free(StreamWorker *w) {
    if (!w) return;
    if (!w->usable()) return; /* a forked child: no thread to join, the lock may be held */
    {
        std::lock_guard<std::mutex> lk(w->mu);
        w->stop.store(1);
        w->cv.notify_one();
    }
    pthread_join(w->th, nullptr);
    delete w;
}

/* Lines [p, p + bytes) asked for at once: the worker's x, h and c were just written on the
 * caller's core, and the product reads x and h one element at a time, a miss every 16 steps
 * of its loop otherwise. */
inline void rk_prefetch(const void *p, size_t bytes) {
    const char *c = (const char *)p;
    for (size_t i = 0; i < bytes; i += 64) __builtin_prefetch(c + i);
}

template <typename T>
void rk_prefetch_state(const typename K<T>::A *p) {
    for (int b = 0; b < p->B; b++) rk_prefetch(p->x + (size_t)b * p->ldx, p->D * sizeof(T));
    rk_prefetch(p->h, (size_t)p->B * p->H * sizeof(T));
    if (p->c) rk_prefetch(p->c, (size_t)p->B * p->H * sizeof(T));
}

/* Columns [j0, j1) of the step *p (x: unused, p->x is the input) */
template <typename T>
struct HalfJob {
    const typename K<T>::A *p;
    int j0, j1;
    static void run(void *a, const void *) {
        auto *j = (HalfJob *)a;
        if (j->j1 <= j->j0) return;
        rk_prefetch_state<T>(j->p);
        K<T>::fwd(j->p, j->j0, j->j1);
    }
};

/* The same, the step's arguments held by value in a StreamWorker slot (lean), x passed apart:
 * from one step to the next nothing in it changes (its scratch is the slot's), so the worker
 * reads it from its own cache, not the caller's stack. */
template <typename T>
struct SlotJob {
    typename K<T>::A p; /* p.x null */
    int j0, j1;
    static void run(void *a, const void *x) {
        auto *j = (const SlotJob *)a;
        if (j->j1 <= j->j0) return;
        typename K<T>::A q = j->p;
        q.x = (const T *)x;
        rk_prefetch_state<T>(&q);
        K<T>::fwd(&q, j->j0, j->j1);
    }
};
static_assert(sizeof(SlotJob<float>) <= RK_SLOT_BYTES && sizeof(SlotJob<double>) <= RK_SLOT_BYTES,
              "RK_SLOT_BYTES");

/* One forward step: hout (and cout, save) from x, h (c) and the transposed weights; split
 * over threads as `mode` says (see split), where RK_SPLIT_WORKER splits over the caller and `w` (a KernelStreamer's worker). */
template <typename T>
void run_fwd(int kind, int opt, int B, int D, int H, const T *x, int ldx, const T *h,
             const T *c, const T *wihT, const T *whhT, const T *bih, const T *bhh, T *hout,
             T *cout, T *save, int mode = RK_SPLIT_RULE, StreamWorker *w = nullptr,
             const T *pre_bx = nullptr, const T *pre_bh = nullptr) {
    int G = gates_of(kind), GH = G * H;
    bool ra = kind == 1 && opt;
    /* the worker's split, as StreamWorker::lean says */
    bool by_worker = mode == RK_SPLIT_WORKER && w && w->usable() && H >= 32 && !(kind == 1 && !opt);
    StreamWorker::Slot *slot = by_worker && w->lean ? &w->slots[w->slot_ix % RK_SLOTS] : nullptr;
    Scratch<T> mem;
    /* s, gh (B, GH); bx (GH), bh (H); the gate values (B, 4H) when the caller saves none */
    size_t nbuf = (size_t)2 * B * GH + GH + H + (save || !kind ? 0 : (size_t)4 * B * H);
    T *buf = slot ? slot->scratch<T>(nbuf) : mem.get(nbuf);
    T *s = buf, *gh = buf + (size_t)B * GH, *bx = gh + (size_t)B * GH, *bh = bx + GH;
    if (kind && !save) save = bh + H;
    if (pre_bx) { /* step_bias's sums, made once (a KernelStreamer's) */
        bx = (T *)pre_bx;
        if (ra) bh = (T *)pre_bh;
    } else {
        K<T>::bias(GH, H, ra, bih, bhh, bx, bh);
    }
    typename K<T>::A p{};
    p.kind = kind; p.opt = opt; p.B = B; p.D = D; p.H = H; p.x = x; p.ldx = ldx; p.h = h;
    p.c = c; p.WihT = wihT; p.WhhT = whhT; p.bx = bx; p.bh = bh; p.hout = hout; p.cout = cout;
    p.save = save; p.s = s; p.gh = gh;
    if (kind == 1 && !opt) {
        K<T>::fwd(&p, 0, H);
        return;
    }
    if (mode == RK_SPLIT_WORKER) {
        auto a = part(H, 0, 2), b = part(H, 1, 2);
        HalfJob<T> j0{&p, a.first, a.second}, j1{&p, b.first, b.second};
        if (slot) {
            SlotJob<T> sj{};
            memset(&sj, 0, sizeof sj); /* padding too: the slot is compared bytewise */
            sj.p = p;
            sj.p.x = nullptr;
            sj.j0 = b.first;
            sj.j1 = b.second;
            /* written only when it changed: the worker's copy of the line then stays valid */
            if (memcmp(slot->job, &sj, sizeof sj)) {
                memcpy(slot->job, &sj, sizeof sj);
                w->slot_writes++;
            }
            w->run(&HalfJob<T>::run, &j0, &SlotJob<T>::run, slot->job, x);
        } else if (by_worker) {
            w->run(&HalfJob<T>::run, &j0, &HalfJob<T>::run, &j1, nullptr);
        } else {
            K<T>::fwd(&p, 0, H);
        }
        return;
    }
    split((int64_t)GH * (D + H), H, [&](int t, int nt) {
        auto r = part(H, t, nt);
        if (r.second > r.first) K<T>::fwd(&p, r.first, r.second);
    }, mode);
}

/* ---- operators -------------------------------------------------------------------------- */

template <typename T>
const T *cptr(const OptTensor &t) {
    return t && t->defined() ? t->data_ptr<T>() : nullptr;
}
template <typename T>
T *mptr(const Tensor &t) {
    return t.defined() && t.numel() ? t.data_ptr<T>() : nullptr;
}

void check_like(const char *op, const Tensor &x, const Tensor &t, const char *name,
                c10::IntArrayRef shape, bool contiguous) {
    TORCH_CHECK_VALUE(t.sizes() == shape, op, ": ", name, " must have shape ", shape, ", got ",
                      t.sizes());
    TORCH_CHECK(t.scalar_type() == x.scalar_type(), op, ": ", name, " is ", t.scalar_type(),
                " but x is ", x.scalar_type());
    TORCH_CHECK(t.device().is_cpu(), op, ": ", name, " is on ", t.device(), ", not the CPU");
    TORCH_CHECK(!contiguous || t.is_contiguous(), op, ": ", name, " must be contiguous");
}

/* A state argument: (B, H), or (1, B, H) for a one-layer stack's state as it is kept. */
void check_state(const char *op, const Tensor &x, const Tensor &s, const char *name, int64_t H) {
    int64_t B = x.size(0);
    bool ok = (s.dim() == 2 && s.size(0) == B) || (s.dim() == 3 && s.size(0) == 1 && s.size(1) == B);
    TORCH_CHECK_VALUE(ok && s.size(-1) == H, op, ": ", name, " must be (", B, ", ", H,
                      ") or (1, ", B, ", ", H, "), got ", s.sizes());
    check_like(op, x, s, name, s.sizes(), true);
}

struct Dims {
    int B, D, H;
};

/* What every step op asks of x: a CPU float32/float64 (B, D) with contiguous rows. */
void check_x(const char *op, const Tensor &x) {
    TORCH_CHECK(x.device().is_cpu(), op, ": the kernels run on the CPU, got ", x.device());
    TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, op,
                ": the kernels take float32 or float64, got ", x.scalar_type());
    TORCH_CHECK_VALUE(x.dim() == 2 && x.stride(1) == 1 && x.size(0) > 0, op,
                      ": x must be (B, D) with contiguous rows, got ", x.sizes());
}

Dims check_fwd(const char *op, int gates, const Tensor &x, std::initializer_list<const Tensor *> st,
               const Tensor &w_ih, const Tensor &w_hh, const OptTensor &b_ih,
               const OptTensor &b_hh, const Tensor &wih_t, const Tensor &whh_t) {
    check_x(op, x);
    TORCH_CHECK_VALUE(w_hh.dim() == 2 && w_hh.size(0) == gates * w_hh.size(1), op,
                      ": w_hh must be (", gates, "*H, H), got ", w_hh.sizes());
    int64_t D = x.size(1), H = w_hh.size(1), GH = gates * H;
    check_like(op, x, w_ih, "w_ih", {GH, D}, false);
    check_like(op, x, w_hh, "w_hh", {GH, H}, false);
    check_like(op, x, wih_t, "wih_t", {D, GH}, true);
    check_like(op, x, whh_t, "whh_t", {H, GH}, true);
    if (b_ih && b_ih->defined()) check_like(op, x, *b_ih, "b_ih", {GH}, true);
    if (b_hh && b_hh->defined()) check_like(op, x, *b_hh, "b_hh", {GH}, true);
    for (const Tensor *s : st) check_state(op, x, *s, "state", H);
    return {(int)x.size(0), (int)D, (int)H};
}

Tensor elman_step_fwd(const Tensor &x, const Tensor &h, const Tensor &w_ih, const Tensor &w_hh,
                      const OptTensor &b_ih, const OptTensor &b_hh, const Tensor &wih_t,
                      const Tensor &whh_t, int64_t act) {
    const char *op = "rnnkit::elman_step_fwd";
    Dims d = check_fwd(op, 1, x, {&h}, w_ih, w_hh, b_ih, b_hh, wih_t, whh_t);
    TORCH_CHECK_VALUE(act >= 0 && act <= 3, op, ": activation code must be 0-3, got ", act);
    Tensor out = at::empty(h.sizes(), h.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "elman_step_fwd", [&] {
        run_fwd<scalar_t>(0, (int)act, d.B, d.D, d.H, x.data_ptr<scalar_t>(), (int)x.stride(0),
                          h.data_ptr<scalar_t>(), nullptr, wih_t.data_ptr<scalar_t>(),
                          whh_t.data_ptr<scalar_t>(), cptr<scalar_t>(b_ih),
                          cptr<scalar_t>(b_hh), out.data_ptr<scalar_t>(), nullptr, nullptr);
    });
    return out;
}

std::tuple<Tensor, Tensor> gru_step_fwd(const Tensor &x, const Tensor &h, const Tensor &w_ih,
                                        const Tensor &w_hh, const OptTensor &b_ih,
                                        const OptTensor &b_hh, const Tensor &wih_t,
                                        const Tensor &whh_t, bool reset_after) {
    Dims d = check_fwd("rnnkit::gru_step_fwd", 3, x, {&h}, w_ih, w_hh, b_ih, b_hh, wih_t, whh_t);
    Tensor out = at::empty(h.sizes(), h.options());
    Tensor saved = at::empty({d.B, 4 * d.H}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gru_step_fwd", [&] {
        run_fwd<scalar_t>(1, reset_after, d.B, d.D, d.H, x.data_ptr<scalar_t>(),
                          (int)x.stride(0), h.data_ptr<scalar_t>(), nullptr,
                          wih_t.data_ptr<scalar_t>(), whh_t.data_ptr<scalar_t>(),
                          cptr<scalar_t>(b_ih), cptr<scalar_t>(b_hh), out.data_ptr<scalar_t>(),
                          nullptr, saved.data_ptr<scalar_t>());
    });
    return {out, saved};
}

std::tuple<Tensor, Tensor, Tensor> lstm_step_fwd(const Tensor &x, const Tensor &h,
                                                 const Tensor &c, const Tensor &w_ih,
                                                 const Tensor &w_hh, const OptTensor &b_ih,
                                                 const OptTensor &b_hh, const Tensor &wih_t,
                                                 const Tensor &whh_t) {
    const char *op = "rnnkit::lstm_step_fwd";
    Dims d = check_fwd(op, 4, x, {&h, &c}, w_ih, w_hh, b_ih, b_hh, wih_t, whh_t);
    TORCH_CHECK_VALUE(c.sizes() == h.sizes(), op, ": c must have h's shape ", h.sizes());
    Tensor out = at::empty(h.sizes(), h.options()), c_new = at::empty(c.sizes(), c.options());
    Tensor saved = at::empty({d.B, 4 * d.H}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_step_fwd", [&] {
        run_fwd<scalar_t>(2, 0, d.B, d.D, d.H, x.data_ptr<scalar_t>(), (int)x.stride(0),
                          h.data_ptr<scalar_t>(), c.data_ptr<scalar_t>(),
                          wih_t.data_ptr<scalar_t>(), whh_t.data_ptr<scalar_t>(),
                          cptr<scalar_t>(b_ih), cptr<scalar_t>(b_hh), out.data_ptr<scalar_t>(),
                          c_new.data_ptr<scalar_t>(), saved.data_ptr<scalar_t>());
    });
    return {out, c_new, saved};
}

/* The inference step ops (kernels.elman_step etc.): the forward without w_ih, w_hh, nothing
 * saved. */
Dims check_step(const char *op, int gates, const Tensor &x,
                std::initializer_list<const Tensor *> st, const Tensor &wih_t,
                const Tensor &whh_t, const OptTensor &b_ih, const OptTensor &b_hh) {
    check_x(op, x);
    TORCH_CHECK_VALUE(whh_t.dim() == 2 && whh_t.size(1) == gates * whh_t.size(0), op,
                      ": whh_t must be (H, ", gates, "*H), got ", whh_t.sizes());
    int64_t D = x.size(1), H = whh_t.size(0), GH = gates * H;
    check_like(op, x, wih_t, "weight_ih^T", {D, GH}, true);
    check_like(op, x, whh_t, "weight_hh^T", {H, GH}, true);
    if (b_ih && b_ih->defined()) check_like(op, x, *b_ih, "bias", {GH}, true);
    if (b_hh && b_hh->defined()) check_like(op, x, *b_hh, "bias", {GH}, true);
    for (const Tensor *t : st) check_state(op, x, *t, "state", H);
    return {(int)x.size(0), (int)D, (int)H};
}

Tensor elman_step(const Tensor &x, const Tensor &h, const Tensor &wih_t, const Tensor &whh_t,
                  const OptTensor &b_ih, const OptTensor &b_hh, int64_t act) {
    const char *op = "rnnkit::elman_step";
    Dims d = check_step(op, 1, x, {&h}, wih_t, whh_t, b_ih, b_hh);
    TORCH_CHECK_VALUE(act >= 0 && act <= 3, op, ": activation code must be 0-3, got ", act);
    Tensor out = at::empty(h.sizes(), h.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "elman_step", [&] {
        run_fwd<scalar_t>(0, (int)act, d.B, d.D, d.H, x.data_ptr<scalar_t>(), (int)x.stride(0),
                          h.data_ptr<scalar_t>(), nullptr, wih_t.data_ptr<scalar_t>(),
                          whh_t.data_ptr<scalar_t>(), cptr<scalar_t>(b_ih),
                          cptr<scalar_t>(b_hh), out.data_ptr<scalar_t>(), nullptr, nullptr);
    });
    return out;
}

Tensor gru_step(const Tensor &x, const Tensor &h, const Tensor &wih_t, const Tensor &whh_t,
                const OptTensor &b_ih, const OptTensor &b_hh, bool reset_after) {
    Dims d = check_step("rnnkit::gru_step", 3, x, {&h}, wih_t, whh_t, b_ih, b_hh);
    Tensor out = at::empty(h.sizes(), h.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gru_step", [&] {
        run_fwd<scalar_t>(1, reset_after, d.B, d.D, d.H, x.data_ptr<scalar_t>(),
                          (int)x.stride(0), h.data_ptr<scalar_t>(), nullptr,
                          wih_t.data_ptr<scalar_t>(), whh_t.data_ptr<scalar_t>(),
                          cptr<scalar_t>(b_ih), cptr<scalar_t>(b_hh), out.data_ptr<scalar_t>(),
                          nullptr, nullptr);
    });
    return out;
}

std::tuple<Tensor, Tensor> lstm_step(const Tensor &x, const Tensor &h, const Tensor &c,
                                     const Tensor &wih_t, const Tensor &whh_t,
                                     const OptTensor &b_ih, const OptTensor &b_hh) {
    const char *op = "rnnkit::lstm_step";
    Dims d = check_step(op, 4, x, {&h, &c}, wih_t, whh_t, b_ih, b_hh);
    TORCH_CHECK_VALUE(c.sizes() == h.sizes(), op, ": c must have h's shape ", h.sizes());
    Tensor h_new = at::empty(h.sizes(), h.options()), c_new = at::empty(c.sizes(), c.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_step", [&] {
        run_fwd<scalar_t>(2, 0, d.B, d.D, d.H, x.data_ptr<scalar_t>(), (int)x.stride(0),
                          h.data_ptr<scalar_t>(), c.data_ptr<scalar_t>(),
                          wih_t.data_ptr<scalar_t>(), whh_t.data_ptr<scalar_t>(),
                          cptr<scalar_t>(b_ih), cptr<scalar_t>(b_hh), h_new.data_ptr<scalar_t>(),
                          c_new.data_ptr<scalar_t>(), nullptr);
    });
    return {h_new, c_new};
}

using Grads = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;

Tensor grad_buf(bool need, const Tensor &like, c10::IntArrayRef shape) {
    return at::empty(need ? shape : c10::IntArrayRef{0}, like.options());
}

/* The backward of one step. need: x, h, (c,) w_ih, w_hh, b_ih, b_hh. Returns the gradients in
 * that order, each empty where not needed. */
std::vector<Tensor> run_bwd(const char *op, int kind, int opt, const OptTensor &dh,
                            const OptTensor &dc, const Tensor &x, const Tensor &h,
                            const OptTensor &c, const Tensor &w_ih, const Tensor &w_hh,
                            const OptTensor &saved, const OptTensor &hnew,
                            const OptTensor &cnew, c10::ArrayRef<bool> need) {
    int G = gates_of(kind);
    TORCH_CHECK_VALUE(x.dim() == 2 && w_hh.dim() == 2 && w_hh.size(0) == G * w_hh.size(1), op,
                      ": x must be (B, D) and w_hh (", G, "*H, H)");
    int B = (int)x.size(0), D = (int)x.size(1), H = (int)w_hh.size(1), GH = G * H;
    check_like(op, x, w_ih, "w_ih", {GH, D}, false);
    check_state(op, x, h, "h", H);
    auto state_like = [&](const OptTensor &t, const char *name) -> Tensor {
        if (!t || !t->defined()) return Tensor();
        TORCH_CHECK_VALUE(t->sizes() == h.sizes(), op, ": ", name, " must have h's shape");
        check_like(op, x, *t, name, h.sizes(), false);
        return t->contiguous();
    };
    Tensor X = x.stride(1) == 1 ? x : x.contiguous();
    Tensor Wi = w_ih.contiguous(), Wh = w_hh.contiguous();
    Tensor Dh = state_like(dh, "dh"), Dc = state_like(dc, "dc"), C = state_like(c, "c");
    Tensor Hn = state_like(hnew, "h_new"), Cn = state_like(cnew, "c_new");
    Tensor S;
    if (kind) {
        TORCH_CHECK_VALUE(saved && saved->sizes() == c10::IntArrayRef({B, 4 * H}), op,
                          ": saved must be (", B, ", ", 4 * H, ")");
        check_like(op, x, *saved, "saved", {B, 4 * H}, false);
        S = saved->contiguous();
    }
    int lstm = kind == 2, o = lstm;  /* gradient slots: x, h, [c], w_ih, w_hh, b_ih, b_hh */
    std::vector<Tensor> g = {
        grad_buf(need[0], x, {B, D}), grad_buf(need[1], x, h.sizes()),
        lstm ? grad_buf(need[2], x, h.sizes()) : Tensor(),
        grad_buf(need[2 + o], x, {GH, D}), grad_buf(need[3 + o], x, {GH, H}),
        grad_buf(need[4 + o], x, {GH}), grad_buf(need[5 + o], x, {GH})};
    if (!lstm) g.erase(g.begin() + 2);
    bool any_state = lstm ? Dh.defined() || Dc.defined() : Dh.defined();
    if (!any_state) {  /* no gradient reached this step: every wanted gradient is zero */
        for (auto &t : g) if (t.numel()) t.zero_();
        return g;
    }
    if (kind == 0) TORCH_CHECK_VALUE(Hn.defined(), op, ": h_new is required");
    if (kind == 2) TORCH_CHECK_VALUE(C.defined() && Cn.defined(), op, ": c and c_new are required");
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "step_bwd", [&] {
        using T = scalar_t;
        typename K<T>::A p{};
        Scratch<T> mem;
        T *buf = mem.get((size_t)2 * B * GH + 2 * (size_t)B * H + 2 * (size_t)H);
        p.kind = kind; p.opt = opt; p.B = B; p.D = D; p.H = H;
        p.x = X.data_ptr<T>(); p.ldx = (int)X.stride(0); p.h = h.data_ptr<T>();
        p.c = lstm ? C.data_ptr<T>() : nullptr;
        p.save = kind ? S.data_ptr<T>() : nullptr;
        p.Wih = Wi.data_ptr<T>(); p.Whh = Wh.data_ptr<T>();
        p.dh = Dh.defined() ? Dh.data_ptr<T>() : nullptr;
        p.dc = Dc.defined() ? Dc.data_ptr<T>() : nullptr;
        p.hnew = Hn.defined() ? Hn.data_ptr<T>() : nullptr;
        p.cnew = Cn.defined() ? Cn.data_ptr<T>() : nullptr;
        p.gi = buf; p.gr = buf + (size_t)B * GH; p.dhd = p.gr + (size_t)B * GH;
        p.s = p.dhd + (size_t)B * H;
        p.zero = p.s + (size_t)B * H; p.dcs = p.zero + H;
        memset(p.zero, 0, (size_t)H * sizeof(T));
        p.dx = mptr<T>(g[0]); p.dhp = mptr<T>(g[1]);
        p.dcp = lstm ? mptr<T>(g[2]) : nullptr;
        p.dWih = mptr<T>(g[2 + o]); p.dWhh = mptr<T>(g[3 + o]);
        p.dbih = mptr<T>(g[4 + o]); p.dbhh = mptr<T>(g[5 + o]);
        K<T>::gates(&p);
        split((int64_t)GH * (D + H), std::max(D, H), [&](int t, int nt) {
            auto dr = part(D, t, nt), jr = part(H, t, nt);
            K<T>::cols(&p, dr.first, dr.second, jr.first, jr.second);
        });
    });
    return g;
}

Grads as6(const std::vector<Tensor> &g) { return {g[0], g[1], g[2], g[3], g[4], g[5]}; }

Grads elman_step_bwd(const Tensor &dh, const Tensor &x, const Tensor &h, const Tensor &w_ih,
                     const Tensor &w_hh, const Tensor &h_new, int64_t act,
                     std::array<bool, 6> need) {
    return as6(run_bwd("rnnkit::elman_step_bwd", 0, (int)act, dh, std::nullopt, x, h,
                       std::nullopt, w_ih, w_hh, std::nullopt, h_new, std::nullopt, need));
}

Grads gru_step_bwd(const Tensor &dh, const Tensor &x, const Tensor &h, const Tensor &w_ih,
                   const Tensor &w_hh, const Tensor &saved, bool reset_after,
                   std::array<bool, 6> need) {
    return as6(run_bwd("rnnkit::gru_step_bwd", 1, reset_after, dh, std::nullopt, x, h,
                       std::nullopt, w_ih, w_hh, saved, std::nullopt, std::nullopt, need));
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> lstm_step_bwd(
    const OptTensor &dh, const OptTensor &dc, const Tensor &x, const Tensor &h, const Tensor &c,
    const Tensor &w_ih, const Tensor &w_hh, const Tensor &saved, const Tensor &c_new,
    std::array<bool, 7> need) {
    auto g = run_bwd("rnnkit::lstm_step_bwd", 2, 0, dh, dc, x, h, c, w_ih, w_hh, saved,
                     std::nullopt, c_new, need);
    return {g[0], g[1], g[2], g[3], g[4], g[5], g[6]};
}

/* ---- autograd (C++): forward op -> backward op ----------------------------------------- */

template <typename F>
c10::TypedOperatorHandle<F> op_handle(const char *name) {
    return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<F>();
}

/* The autograd node of one step, written as torch's generated nodes are (a Node with its
 * SavedVariables, edges to x, h, [c], w_ih, w_hh, b_ih, b_hh) rather than through
 * torch::autograd::Function, whose context (saved_data map, per-input metadata, output
 * wrapping) cost ~3 us a step, as much as the whole step at H = 64. Its inputs are the
 * gradients of h_new (and c_new); the backward is the rnnkit::*_step_bwd operator, through
 * the dispatcher so fake tensors (opcheck, torch.compile) reach its fake kernel. */
struct StepNode : public torch::autograd::Node {
    int kind;                                   /* 0 Elman, 1 GRU, 2 LSTM */
    int64_t opt;                                /* Elman activation, GRU reset_after */
    torch::autograd::SavedVariable x, h, c, w_ih, w_hh, saved, out; /* out: h_new / c_new */

    std::string name() const override {
        return kind == 0 ? "ElmanStepBackward" : kind == 1 ? "GruStepBackward" : "LstmStepBackward";
    }
    void release_variables() override {
        for (auto *v : {&x, &h, &c, &w_ih, &w_hh, &saved, &out}) v->reset_data();
    }
    torch::autograd::variable_list apply(torch::autograd::variable_list &&go) override {
        int n = kind == 2 ? 7 : 6;
        std::array<bool, 7> need{};
        for (int i = 0; i < n; i++) need[i] = task_should_compute_output(i);
        torch::autograd::variable_list out_grads(n);
        bool any_in = go[0].defined() || (kind == 2 && go[1].defined());
        if (!any_in) return out_grads; /* nothing reached this step: every gradient is zero */
        auto self = getptr();
        Tensor X = x.unpack(), Hp = h.unpack(), Wi = w_ih.unpack(), Wh = w_hh.unpack();
        std::vector<Tensor> g;
        if (kind == 0) {
            static auto op = op_handle<decltype(elman_step_bwd)>("rnnkit::elman_step_bwd");
            auto r = op.call(go[0], X, Hp, Wi, Wh, out.unpack(self), opt,
                             {need[0], need[1], need[2], need[3], need[4], need[5]});
            g = {std::get<0>(r), std::get<1>(r), std::get<2>(r), std::get<3>(r),
                 std::get<4>(r), std::get<5>(r)};
        } else if (kind == 1) {
            static auto op = op_handle<decltype(gru_step_bwd)>("rnnkit::gru_step_bwd");
            auto r = op.call(go[0], X, Hp, Wi, Wh, saved.unpack(), (bool)opt,
                             {need[0], need[1], need[2], need[3], need[4], need[5]});
            g = {std::get<0>(r), std::get<1>(r), std::get<2>(r), std::get<3>(r),
                 std::get<4>(r), std::get<5>(r)};
        } else {
            static auto op = op_handle<decltype(lstm_step_bwd)>("rnnkit::lstm_step_bwd");
            auto opt_t = [](const Tensor &t) { return t.defined() ? OptTensor(t) : std::nullopt; };
            auto r = op.call(opt_t(go[0]), opt_t(go[1]), X, Hp, c.unpack(), Wi, Wh,
                             saved.unpack(), out.unpack(self), need);
            g = {std::get<0>(r), std::get<1>(r), std::get<2>(r), std::get<3>(r),
                 std::get<4>(r), std::get<5>(r), std::get<6>(r)};
        }
        for (int i = 0; i < n; i++)
            if (need[i]) out_grads[i] = g[i];
        return out_grads;
    }
};

/* The forward ops' arguments; fwd(...) computes (h_new, [c_new], [saved]) below autograd. */
struct StepArgs {
    const Tensor &x, &h;
    const Tensor *c; /* LSTM only */
    const Tensor &w_ih, &w_hh;
    const OptTensor &b_ih, &b_hh;
};

/* Runs `fwd` (returning h_new, then c_new for the LSTM, then saved for GRU/LSTM) and, where
 * grad mode is on and an input requires grad, attaches a StepNode to the differentiable
 * outputs (h_new, c_new). */
template <typename F>
std::vector<Tensor> step_with_grad(int kind, int64_t opt, const StepArgs &a, const F &fwd) {
    Tensor none;
    const Tensor &c = a.c ? *a.c : none;
    const Tensor &bi = a.b_ih ? *a.b_ih : none, &bh = a.b_hh ? *a.b_hh : none;
    bool lstm = kind == 2;
    for (const Tensor *t : {&a.x, &a.h, &c, &a.w_ih, &a.w_hh, &bi, &bh})
        TORCH_CHECK(!torch::autograd::isFwGradDefined(*t), "rnnkit step ops: forward-mode AD "
                    "is not implemented (use impl='reference')");
    bool grad = lstm ? torch::autograd::compute_requires_grad(a.x, a.h, c, a.w_ih, a.w_hh, bi, bh)
                     : torch::autograd::compute_requires_grad(a.x, a.h, a.w_ih, a.w_hh, bi, bh);
    std::vector<Tensor> r;
    {
        at::AutoDispatchBelowADInplaceOrView guard;
        r = fwd();
    }
    if (!grad) return r;
    auto node = c10::make_intrusive<StepNode>();
    node->kind = kind;
    node->opt = opt;
    if (lstm) node->set_next_edges(torch::autograd::collect_next_edges(a.x, a.h, c, a.w_ih,
                                                                       a.w_hh, bi, bh));
    else node->set_next_edges(torch::autograd::collect_next_edges(a.x, a.h, a.w_ih, a.w_hh, bi,
                                                                  bh));
    torch::autograd::set_history(r[0], node);
    if (lstm) torch::autograd::set_history(r[1], node);
    node->x = torch::autograd::SavedVariable(a.x, false);
    node->h = torch::autograd::SavedVariable(a.h, false);
    node->w_ih = torch::autograd::SavedVariable(a.w_ih, false);
    node->w_hh = torch::autograd::SavedVariable(a.w_hh, false);
    if (lstm) node->c = torch::autograd::SavedVariable(c, false);
    if (kind) node->saved = torch::autograd::SavedVariable(r.back(), false);
    if (kind != 1) node->out = torch::autograd::SavedVariable(r[lstm ? 1 : 0], true);
    return r;
}

Tensor elman_step_fwd_ad(const Tensor &x, const Tensor &h, const Tensor &w_ih,
                         const Tensor &w_hh, const OptTensor &b_ih, const OptTensor &b_hh,
                         const Tensor &wih_t, const Tensor &whh_t, int64_t act) {
    static auto op = op_handle<decltype(elman_step_fwd)>("rnnkit::elman_step_fwd");
    return step_with_grad(0, act, {x, h, nullptr, w_ih, w_hh, b_ih, b_hh}, [&] {
        return std::vector<Tensor>{op.call(x, h, w_ih, w_hh, b_ih, b_hh, wih_t, whh_t, act)};
    })[0];
}

std::tuple<Tensor, Tensor> gru_step_fwd_ad(const Tensor &x, const Tensor &h, const Tensor &w_ih,
                                           const Tensor &w_hh, const OptTensor &b_ih,
                                           const OptTensor &b_hh, const Tensor &wih_t,
                                           const Tensor &whh_t, bool reset_after) {
    static auto op = op_handle<decltype(gru_step_fwd)>("rnnkit::gru_step_fwd");
    auto r = step_with_grad(1, reset_after, {x, h, nullptr, w_ih, w_hh, b_ih, b_hh}, [&] {
        auto [o, s] = op.call(x, h, w_ih, w_hh, b_ih, b_hh, wih_t, whh_t, reset_after);
        return std::vector<Tensor>{o, s};
    });
    return {r[0], r[1]};
}

std::tuple<Tensor, Tensor, Tensor> lstm_step_fwd_ad(const Tensor &x, const Tensor &h,
                                                    const Tensor &c, const Tensor &w_ih,
                                                    const Tensor &w_hh, const OptTensor &b_ih,
                                                    const OptTensor &b_hh, const Tensor &wih_t,
                                                    const Tensor &whh_t) {
    static auto op = op_handle<decltype(lstm_step_fwd)>("rnnkit::lstm_step_fwd");
    auto r = step_with_grad(2, 0, {x, h, &c, w_ih, w_hh, b_ih, b_hh}, [&] {
        auto [o, cn, s] = op.call(x, h, c, w_ih, w_hh, b_ih, b_hh, wih_t, whh_t);
        return std::vector<Tensor>{o, cn, s};
    });
    return {r[0], r[1], r[2]};
}

/* ---- Recurrent.step's native fast path ----------------------------------------------------- */

struct PlanLayer {
    Tensor w_ih, w_hh, wih_t, whh_t;
    OptTensor b_ih, b_hh;
};

/* A stack of one cell family at one batch size and dtype (see step_plan). */
struct Plan {
    int kind, opt, B, D, H;
    at::ScalarType dtype;
    std::vector<PlanLayer> layers;
    std::vector<Tensor> params;           /* every parameter, for the stamp and requires_grad */
    std::vector<std::pair<const void *, uint32_t>> stamp; /* (data pointer, version) */
    Tensor zeros;                         /* (L, B, H): the state when None is passed */
};

void plan_free(PyObject *cap) { delete (Plan *)PyCapsule_GetPointer(cap, "rnnkit.step_plan"); }

const Tensor *tensor_arg(PyObject *o) {
    return THPVariable_CheckExact(o) ? &THPVariable_Unpack(o) : nullptr;
}

/* step_plan(kind, opt, batch, layers): layers a list of (w_ih, w_hh, b_ih or None, b_hh or None,
 * wih_t, whh_t) tuples, bottom-up, already checked by the caller (layers/stepping.py). */
PyObject *py_step_plan(PyObject *, PyObject *const *args, Py_ssize_t n) {
    if (n != 4 || !PyList_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "step_plan expects (kind, opt, batch, layers)");
        return NULL;
    }
    auto plan = std::make_unique<Plan>();
    plan->kind = (int)PyLong_AsLong(args[0]);
    plan->opt = (int)PyLong_AsLong(args[1]);
    plan->B = (int)PyLong_AsLong(args[2]);
    if (PyErr_Occurred()) return NULL;
    Py_ssize_t L = PyList_GET_SIZE(args[3]);
    for (Py_ssize_t k = 0; k < L; k++) {
        PyObject *row = PyList_GET_ITEM(args[3], k);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 6) {
            PyErr_SetString(PyExc_TypeError, "step_plan: each layer is a 6-tuple");
            return NULL;
        }
        Tensor t[6];
        bool present[6];
        for (int i = 0; i < 6; i++) {
            PyObject *o = PyTuple_GET_ITEM(row, i);
            present[i] = o != Py_None;
            if (!present[i]) continue;
            if (!THPVariable_Check(o)) {
                PyErr_SetString(PyExc_TypeError, "step_plan: weights must be tensors");
                return NULL;
            }
            t[i] = THPVariable_Unpack(o);
        }
        PlanLayer pl{t[0], t[1], t[4], t[5], present[2] ? OptTensor(t[2]) : std::nullopt,
                     present[3] ? OptTensor(t[3]) : std::nullopt};
        for (int i = 0; i < 4; i++)
            if (present[i]) plan->params.push_back(t[i]);
        plan->layers.push_back(pl);
    }
    const Tensor &w0 = plan->layers.at(0).w_ih;
    plan->dtype = w0.scalar_type();
    plan->D = (int)w0.size(1);
    plan->H = (int)plan->layers[0].w_hh.size(1);
    for (const Tensor &p : plan->params) plan->stamp.push_back({p.data_ptr(), p._version()});
    plan->zeros = at::zeros({(int64_t)L, plan->B, plan->H}, w0.options());
    return PyCapsule_New(plan.release(), "rnnkit.step_plan", plan_free);
}

/* A state tensor for the plan: (L, B, H), its dtype, on the CPU, no tensor subclass. */
bool state_ok(const Plan &p, const Tensor *t) {
    return t && t->dim() == 3 && t->size(0) == (int64_t)p.layers.size() && t->size(1) == p.B &&
           t->size(2) == p.H && t->scalar_type() == p.dtype && t->device().is_cpu();
}

PyObject *wrap_pair(const Tensor &y, PyObject *state) {
    PyObject *py = THPVariable_Wrap(y);
    if (!py || !state) {
        Py_XDECREF(py);
        Py_XDECREF(state);
        return NULL;
    }
    PyObject *r = PyTuple_Pack(2, py, state);
    Py_DECREF(py);
    Py_DECREF(state);
    return r;
}

PyObject *wrap_state(const Tensor &h, const Tensor &c, bool lstm) {
    if (!lstm) return THPVariable_Wrap(h);
    PyObject *a = THPVariable_Wrap(h), *b = THPVariable_Wrap(c);
    if (!a || !b) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        return NULL;
    }
    PyObject *r = PyTuple_Pack(2, a, b);
    Py_DECREF(a);
    Py_DECREF(b);
    return r;
}

/* The no-grad step of the whole stack into fresh (L, B, H) tensors. */
template <typename T>
void plan_nograd(const Plan &p, const Tensor &x, const Tensor &h, const Tensor &c, Tensor &hn,
                 Tensor &cn) {
    bool lstm = p.kind == 2;
    size_t BH = (size_t)p.B * p.H;
    const T *xin = x.data_ptr<T>();
    int ldx = (int)x.stride(0), D = p.D;
    T *ho = hn.data_ptr<T>(), *co = lstm ? cn.data_ptr<T>() : nullptr;
    const T *hi = h.data_ptr<T>(), *ci = lstm ? c.data_ptr<T>() : nullptr;
    for (size_t k = 0; k < p.layers.size(); k++) {
        const PlanLayer &l = p.layers[k];
        run_fwd<T>(p.kind, p.opt, p.B, D, p.H, xin, ldx, hi + k * BH, lstm ? ci + k * BH : nullptr,
                   l.wih_t.data_ptr<T>(), l.whh_t.data_ptr<T>(), cptr<T>(l.b_ih), cptr<T>(l.b_hh),
                   ho + k * BH, lstm ? co + k * BH : nullptr, nullptr);
        xin = ho + k * BH;
        ldx = D = p.H;
    }
}

/* plan_step(plan, x, state) -> (y, state) with fresh tensors; None where this is not the plan's
 * case (the caller's general path then checks and explains); NotImplemented when a weight
 * changed since the plan was made (the caller rebuilds it). */
PyObject *py_plan_step(PyObject *, PyObject *const *args, Py_ssize_t n) {
    if (n != 3) {
        PyErr_SetString(PyExc_TypeError, "plan_step expects (plan, x, state)");
        return NULL;
    }
    Plan *pp = (Plan *)PyCapsule_GetPointer(args[0], "rnnkit.step_plan");
    if (!pp) return NULL;
    const Plan &p = *pp;
    bool lstm = p.kind == 2;
    const Tensor *xp = tensor_arg(args[1]);
    if (!xp || xp->dim() != 2 || xp->size(0) != p.B || xp->size(1) != p.D ||
        xp->scalar_type() != p.dtype || !xp->device().is_cpu() || xp->stride(1) != 1 ||
        torch::jit::tracer::isTracing())
        Py_RETURN_NONE;
    const Tensor &x = *xp;
    for (size_t i = 0; i < p.params.size(); i++) {
        const Tensor &w = p.params[i];
        if (w.data_ptr() != p.stamp[i].first || w._version() != p.stamp[i].second)
            Py_RETURN_NOTIMPLEMENTED;
    }
    Tensor h, c;
    PyObject *st = args[2];
    if (st == Py_None) {
        h = c = p.zeros;
    } else if (!lstm) {
        const Tensor *t = tensor_arg(st);
        if (!state_ok(p, t)) Py_RETURN_NONE;
        h = *t;
    } else {
        if (!PyTuple_Check(st) || PyTuple_GET_SIZE(st) != 2) Py_RETURN_NONE;
        const Tensor *a = tensor_arg(PyTuple_GET_ITEM(st, 0)), *b = tensor_arg(PyTuple_GET_ITEM(st, 1));
        if (!state_ok(p, a) || !state_ok(p, b)) Py_RETURN_NONE;
        h = *a;
        c = *b;
    }
    try {
        bool grad = false;
        if (at::GradMode::is_enabled()) {
            grad = x.requires_grad() || h.requires_grad() || (lstm && c.requires_grad());
            for (const Tensor &w : p.params) grad = grad || w.requires_grad();
        }
        if (!h.is_contiguous()) h = h.contiguous();
        if (lstm && !c.is_contiguous()) c = c.contiguous();
        size_t L = p.layers.size();
        if (!grad) {
            Tensor hn = at::empty({(int64_t)L, p.B, p.H}, x.options());
            Tensor cn = lstm ? at::empty({(int64_t)L, p.B, p.H}, x.options()) : Tensor();
            AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "plan_step",
                                       [&] { plan_nograd<scalar_t>(p, x, h, c, hn, cn); });
            return wrap_pair(hn.select(0, (int64_t)L - 1), wrap_state(hn, cn, lstm));
        }
        std::vector<Tensor> hs, cs;
        Tensor y = x;
        for (size_t k = 0; k < L; k++) {
            const PlanLayer &l = p.layers[k];
            Tensor hk = L == 1 ? h : h.select(0, (int64_t)k);
            /* the CPU kernels directly: plan_step has checked the arguments' kind (plain CPU
             * tensors, no tracing), which the dispatcher would otherwise route */
            StepArgs a{y, hk, nullptr, l.w_ih, l.w_hh, l.b_ih, l.b_hh};
            if (p.kind == 0) {
                y = step_with_grad(0, p.opt, a, [&] {
                    return std::vector<Tensor>{elman_step_fwd(y, hk, l.w_ih, l.w_hh, l.b_ih,
                                                              l.b_hh, l.wih_t, l.whh_t, p.opt)};
                })[0];
            } else if (p.kind == 1) {
                y = step_with_grad(1, p.opt, a, [&] {
                    auto [o, s] = gru_step_fwd(y, hk, l.w_ih, l.w_hh, l.b_ih, l.b_hh, l.wih_t,
                                               l.whh_t, (bool)p.opt);
                    return std::vector<Tensor>{o, s};
                })[0];
            } else {
                Tensor ck = L == 1 ? c : c.select(0, (int64_t)k);
                a.c = &ck;
                auto r = step_with_grad(2, 0, a, [&] {
                    auto [o, cn, s] = lstm_step_fwd(y, hk, ck, l.w_ih, l.w_hh, l.b_ih, l.b_hh,
                                                    l.wih_t, l.whh_t);
                    return std::vector<Tensor>{o, cn, s};
                });
                y = r[0];
                cs.push_back(r[1]);
            }
            hs.push_back(y);
            if (L == 1) y = y.select(0, 0);  /* the state is (1, B, H); y is (B, H) */
        }
        if (L == 1) return wrap_pair(y, wrap_state(hs[0], lstm ? cs[0] : Tensor(), lstm));
        Tensor H = at::stack(hs), C = lstm ? at::stack(cs) : Tensor();
        return wrap_pair(y, wrap_state(H, C, lstm));
    } catch (const std::exception &e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return NULL;
    }
}

/* stream_run(rows, nlayers, x, ldx): one step of a stack of cells in one call, for
 * kernels.KernelStreamer. rows points at nlayers rows of RK_ROW int64: [kind (0 elman, 1 gru,
 * 2 lstm), then dt B D H, (Elman: act, GRU: reset_after), x ldx h (LSTM: c) WihT WhhT bih bhh
 * hout (LSTM: cout)] with hout/cout aimed at scratch. Layer k reads layer k-1's new h; each
 * layer's new state is copied over its h (and c), so the state buffers are updated in place (x
 * may alias a state buffer: the step writes scratch first). Slot RK_SPLIT is how the layer's
 * step is spread over threads (RK_SPLIT_RULE / NEVER / ALWAYS / WORKER), slot RK_WORKER the
 * streamer's StreamWorker (stream_worker_new; 0: none, a WORKER step then runs on one thread),
 * slots RK_BX and RK_BH the layer's summed biases (bx (GH), bh (H) as step_bias makes them,
 * made once by the streamer; 0: summed every step). Without them a split step's second thread
 * read the caller's freshly written sums from the other core every step.
 * The same step as
 * the step ops and plan_step runs, so results are identical (a split step computes each column
 * as one thread does). */
constexpr int RK_ROW = 19, RK_SPLIT = 15, RK_WORKER = 16, RK_BX = 17, RK_BH = 18;

template <typename T>
void stream_layer(int kind, const int64_t *p) {
    auto P = [&](int i) { return (T *)(intptr_t)p[i]; };
    int lstm = kind == 2, xs = lstm ? 4 : 5;
    run_fwd<T>(kind, lstm ? 0 : (int)p[4], (int)p[1], (int)p[2], (int)p[3], P(xs),
               (int)p[xs + 1], P(xs + 2), lstm ? P(7) : nullptr, P(8), P(9), P(10), P(11), P(12),
               lstm ? P(13) : nullptr, nullptr, (int)p[RK_SPLIT - 1],
               (StreamWorker *)(intptr_t)p[RK_WORKER - 1], P(RK_BX - 1), P(RK_BH - 1));
}

/* One step of the stack from x at x_addr (row stride ldx); false with a Python error set. */
bool stream_layers(int64_t *rows, int64_t nlayers, int64_t x, int64_t ldx) {
    try {
        for (int64_t k = 0; k < nlayers; k++) {
            int64_t *r = rows + k * RK_ROW, *p = r + 1;
            int kind = (int)r[0], f64 = p[0] != 0, lstm = kind == 2;
            int xs = lstm ? 4 : 5, hs = lstm ? 6 : 7;
            p[xs] = x;
            p[xs + 1] = ldx;
            if (auto *w = (StreamWorker *)(intptr_t)p[RK_WORKER - 1]) w->slot_ix = (int)k;
            if (f64) stream_layer<double>(kind, p);
            else stream_layer<float>(kind, p);
            size_t bytes = (size_t)p[1] * (size_t)p[3] * (f64 ? sizeof(double) : sizeof(float));
            memcpy((void *)(intptr_t)p[hs], (const void *)(intptr_t)p[12], bytes);
            if (lstm) memcpy((void *)(intptr_t)p[7], (const void *)(intptr_t)p[13], bytes);
            x = p[hs];
            ldx = p[3];
        }
    } catch (const std::exception &e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return false;
    }
    return true;
}

PyObject *py_stream_run(PyObject *, PyObject *const *args, Py_ssize_t n) {
    int64_t v[4];
    if (n != 4) {
        PyErr_SetString(PyExc_TypeError, "stream_run expects (rows, nlayers, x, ldx)");
        return NULL;
    }
    for (int i = 0; i < 4; i++) {
        v[i] = PyLong_AsLongLong(args[i]);
        if (v[i] == -1 && PyErr_Occurred()) return NULL;
    }
    if (!stream_layers((int64_t *)(intptr_t)v[0], v[1], v[2], v[3])) return NULL;
    Py_RETURN_NONE;
}

/* stream_step(rows, nlayers, x, y) -> y after one step on the tensor x, or None where x is not
 * the common case (a plain CPU tensor of the stack's dtype and shape (B, D) with contiguous
 * rows, not requiring grad under grad mode): KernelStreamer.step's checks, in C, because in
 * Python they were ~0.4 us a step, as much as the whole Elman step at H = 64. */
PyObject *py_stream_step(PyObject *, PyObject *const *args, Py_ssize_t n) {
    if (n != 4) {
        PyErr_SetString(PyExc_TypeError, "stream_step expects (rows, nlayers, x, y)");
        return NULL;
    }
    int64_t *rows = (int64_t *)PyLong_AsVoidPtr(args[0]);
    long long nl = PyLong_AsLongLong(args[1]);
    if (PyErr_Occurred()) return NULL;
    const Tensor *xp = tensor_arg(args[2]);
    if (!xp) Py_RETURN_NONE;
    const Tensor &x = *xp;
    const int64_t *p = rows + 1; /* the first layer: dtype code, B, D */
    if (x.dim() != 2 || x.size(0) != p[1] || x.size(1) != p[2] || x.stride(1) != 1 ||
        x.scalar_type() != (p[0] ? at::kDouble : at::kFloat) || !x.device().is_cpu() ||
        (x.requires_grad() && at::GradMode::is_enabled()))
        Py_RETURN_NONE;
    if (!stream_layers(rows, nl, (int64_t)(intptr_t)x.const_data_ptr(), x.stride(0)))
        return NULL;
    Py_INCREF(args[3]);
    return args[3];
}

/* stream_worker_new() -> (capsule, address): a StreamWorker for a KernelStreamer's rows (its
 * RK_WORKER slot); the capsule's destructor stops and joins the thread. */
void worker_capsule_free(PyObject *cap) {
    worker_free((StreamWorker *)PyCapsule_GetPointer(cap, "rnnkit.stream_worker"));
}

PyObject *py_stream_worker_new(PyObject *, PyObject *) {
    StreamWorker *w = worker_new();
    if (!w) {
        PyErr_SetString(PyExc_RuntimeError, "stream_worker_new: could not start a thread");
        return NULL;
    }
    PyObject *cap = PyCapsule_New(w, "rnnkit.stream_worker", worker_capsule_free);
    if (!cap) {
        worker_free(w);
        return NULL;
    }
    return Py_BuildValue("(NL)", cap, (long long)(intptr_t)w);
}

/* stream_worker_stats(capsule) -> (jobs posted, second halves the worker ran), prime()'s empty
 * jobs not counted; for tests. */
PyObject *py_stream_worker_stats(PyObject *, PyObject *cap) {
    auto *w = (StreamWorker *)PyCapsule_GetPointer(cap, "rnnkit.stream_worker");
    if (!w) return NULL;
    return Py_BuildValue("(KK)", (unsigned long long)(w->jobs - w->primes),
                         (unsigned long long)(w->ran.load() - w->primes_ran));
}

/* stream_worker_wakes(capsule) -> [(us, on the caller's CPU), ...]: the worker's wake-ups since
 * the last call (up to the last 256): the latency from the caller's notify to the worker's
 * return from its wait, and whether it woke on the caller's CPU; for benchmarks. */
PyObject *py_stream_worker_wakes(PyObject *, PyObject *cap) {
    auto *w = (StreamWorker *)PyCapsule_GetPointer(cap, "rnnkit.stream_worker");
    if (!w) return NULL;
    std::vector<float> got;
    {
        std::lock_guard<std::mutex> lk(w->mu);
        uint64_t from =
            std::max(w->wakes_read, w->wakes > RK_WAKE_LOG ? w->wakes - RK_WAKE_LOG : 0);
        for (uint64_t i = from; i < w->wakes; i++)
            got.push_back(w->wake_here[i % RK_WAKE_LOG] ? -w->wake_us[i % RK_WAKE_LOG]
                                                         : w->wake_us[i % RK_WAKE_LOG]);
        w->wakes_read = w->wakes;
    }
    PyObject *out = PyList_New((Py_ssize_t)got.size());
    if (!out) return NULL;
    for (size_t i = 0; i < got.size(); i++) {
        PyObject *v = Py_BuildValue("(dO)", (double)std::fabs(got[i]),
                                    got[i] < 0 ? Py_True : Py_False);
        if (!v) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, (Py_ssize_t)i, v);
    }
    return out;
}

/* The worker args[0] and the float args[n - 1] of a call that takes `want` arguments (usage:
 * its TypeError); NULL with the error set otherwise. */
StreamWorker *worker_and_float(PyObject *const *args, Py_ssize_t n, Py_ssize_t want,
                               const char *usage, double *v) {
    if (n != want) {
        PyErr_SetString(PyExc_TypeError, usage);
        return NULL;
    }
    auto *w = (StreamWorker *)PyCapsule_GetPointer(args[0], "rnnkit.stream_worker");
    if (!w) return NULL;
    *v = PyFloat_AsDouble(args[n - 1]);
    return *v == -1.0 && PyErr_Occurred() ? NULL : w;
}

/* stream_worker_option(capsule, name, value) -> old value, for tests and benchmarks (a
 * negative value keeps it): "wake_delay_us", how long the worker waits after each wake-up
 * before it looks for a job (a slow wake-up on demand, 0); "move", whether a worker woken on
 * the caller's CPU moves off it, or else leaves the job (1; 0: it takes the job there, as
 * before session 12); "moves", how many times it moved (read only); "late_us" and "gap_us",
 * the back-off rule's RK_WORKER_LATE_US and streak-restart gap (RK_WORKER_SPIN_US); "lean",
 * the job kept in a slot and the cheaper publish (1; 0: as before session 13, StreamWorker);
 * "slot_writes", how many times a slot's job was (re)written (read only). */
PyObject *py_stream_worker_option(PyObject *, PyObject *const *args, Py_ssize_t n) {
    double v;
    auto *w =
        worker_and_float(args, n, 3, "stream_worker_option expects (worker, name, value)", &v);
    if (!w) return NULL;
    const char *name = PyUnicode_Check(args[1]) ? PyUnicode_AsUTF8(args[1]) : NULL;
    if (!name && !PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "stream_worker_option: the name must be a str");
    if (!name) return NULL;
    if (!strcmp(name, "wake_delay_us"))
        return PyFloat_FromDouble(v < 0 ? w->wake_delay_us.load() : w->wake_delay_us.exchange(v));
    if (!strcmp(name, "move"))
        return PyLong_FromLong(v < 0 ? w->move.load() : w->move.exchange(v != 0));
    if (!strcmp(name, "late_us") || !strcmp(name, "gap_us")) {
        double &d = name[0] == 'l' ? w->late_us : w->gap_us, o = d;
        if (v >= 0) d = v;
        return PyFloat_FromDouble(o);
    }
    if (!strcmp(name, "moves")) return PyLong_FromUnsignedLongLong(w->moves.load());
    if (!strcmp(name, "slot_writes")) return PyLong_FromUnsignedLongLong(w->slot_writes);
    if (!strcmp(name, "lean")) {
        int o = w->lean;
        if (v >= 0) w->lean = v != 0;
        return PyLong_FromLong(o);
    }
    PyErr_Format(PyExc_ValueError, "stream_worker_option: no option %s", name);
    return NULL;
}

/* stream_worker_prime(capsule, timeout_us) -> bool: StreamWorker::prime (the streamer's split
 * timing calls it before each worker round); False in a forked child (no worker thread). */
PyObject *py_stream_worker_prime(PyObject *, PyObject *const *args, Py_ssize_t n) {
    double timeout;
    auto *w = worker_and_float(args, n, 2, "stream_worker_prime expects (worker, timeout_us)",
                               &timeout);
    if (!w) return NULL;
    if (!w->usable()) Py_RETURN_FALSE;
    bool ok;
    Py_BEGIN_ALLOW_THREADS
    ok = w->prime(timeout);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(ok);
}

/* step_configure(split_min): the weight elements per step from which a step is split over
 * threads (a negative value keeps it); returns the old value. For benchmarks and tests. */
PyObject *py_step_configure(PyObject *, PyObject *arg) {
    long long v = PyLong_AsLongLong(arg);
    if (v == -1 && PyErr_Occurred()) return NULL;
    long long old = rk_split_min;
    if (v >= 0) rk_split_min = v;
    return PyLong_FromLongLong(old);
}

}  // namespace

PyMethodDef rk_step_methods[] = {
    {"stream_run", (PyCFunction)(void (*)(void))py_stream_run, METH_FASTCALL, NULL},
    {"stream_step", (PyCFunction)(void (*)(void))py_stream_step, METH_FASTCALL, NULL},
    {"step_plan", (PyCFunction)(void (*)(void))py_step_plan, METH_FASTCALL, NULL},
    {"plan_step", (PyCFunction)(void (*)(void))py_plan_step, METH_FASTCALL, NULL},
    {"step_configure", (PyCFunction)py_step_configure, METH_O, "step split threshold"},
    {"stream_worker_new", (PyCFunction)py_stream_worker_new, METH_NOARGS, NULL},
    {"stream_worker_stats", (PyCFunction)py_stream_worker_stats, METH_O, NULL},
    {"stream_worker_prime", (PyCFunction)(void (*)(void))py_stream_worker_prime, METH_FASTCALL,
     NULL},
    {"stream_worker_wakes", (PyCFunction)py_stream_worker_wakes, METH_O, NULL},
    {"stream_worker_option", (PyCFunction)(void (*)(void))py_stream_worker_option,
     METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL}};

TORCH_LIBRARY_FRAGMENT(rnnkit, m) {
    m.def("elman_step(Tensor x, Tensor h, Tensor wih_t, Tensor whh_t, Tensor? b_ih, Tensor? b_hh, "
          "int act) -> Tensor");
    m.def("gru_step(Tensor x, Tensor h, Tensor wih_t, Tensor whh_t, Tensor? b_ih, Tensor? b_hh, "
          "bool reset_after) -> Tensor");
    m.def("lstm_step(Tensor x, Tensor h, Tensor c, Tensor wih_t, Tensor whh_t, Tensor? b_ih, "
          "Tensor? b_hh) -> (Tensor, Tensor)");
    m.def("elman_step_fwd(Tensor x, Tensor h, Tensor w_ih, Tensor w_hh, Tensor? b_ih, "
          "Tensor? b_hh, Tensor wih_t, Tensor whh_t, int act) -> Tensor");
    m.def("elman_step_bwd(Tensor dh, Tensor x, Tensor h, Tensor w_ih, Tensor w_hh, "
          "Tensor h_new, int act, bool[6] need) -> "
          "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
    m.def("gru_step_fwd(Tensor x, Tensor h, Tensor w_ih, Tensor w_hh, Tensor? b_ih, "
          "Tensor? b_hh, Tensor wih_t, Tensor whh_t, bool reset_after) -> (Tensor, Tensor)");
    m.def("gru_step_bwd(Tensor dh, Tensor x, Tensor h, Tensor w_ih, Tensor w_hh, Tensor saved, "
          "bool reset_after, bool[6] need) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
    m.def("lstm_step_fwd(Tensor x, Tensor h, Tensor c, Tensor w_ih, Tensor w_hh, Tensor? b_ih, "
          "Tensor? b_hh, Tensor wih_t, Tensor whh_t) -> (Tensor, Tensor, Tensor)");
    m.def("lstm_step_bwd(Tensor? dh, Tensor? dc, Tensor x, Tensor h, Tensor c, Tensor w_ih, "
          "Tensor w_hh, Tensor saved, Tensor c_new, bool[7] need) -> "
          "(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(rnnkit, CPU, m) {
    m.impl("elman_step", &elman_step);
    m.impl("gru_step", &gru_step);
    m.impl("lstm_step", &lstm_step);
    m.impl("elman_step_fwd", &elman_step_fwd);
    m.impl("elman_step_bwd", &elman_step_bwd);
    m.impl("gru_step_fwd", &gru_step_fwd);
    m.impl("gru_step_bwd", &gru_step_bwd);
    m.impl("lstm_step_fwd", &lstm_step_fwd);
    m.impl("lstm_step_bwd", &lstm_step_bwd);
}

TORCH_LIBRARY_IMPL(rnnkit, Autograd, m) {
    m.impl("elman_step_fwd", &elman_step_fwd_ad);
    m.impl("gru_step_fwd", &gru_step_fwd_ad);
    m.impl("lstm_step_fwd", &lstm_step_fwd_ad);
}
