/*
 * Threads that share one recurrence, for rnnkit.cpp (the sequence kernels) and step.cpp (one
 * step at a time).
 *
 * rk_team: one at::parallel_for call for a whole sequence; its threads meet at RkBarrier once a
 * step (the column split of the recurrence, see rnnkit.cpp rk_cols_for).
 *
 * RkCrew: helper threads of our own that outlive a call, for work split within ONE step (the
 * streaming step at B = 1, kernels.KernelStreamer and Recurrent.step). A step there takes 1-5 us;
 * waking torch's pool (at::parallel_for) for each costs about as much, a futex wake-up more.
 * So each helper spins for a bounded time after its last job, then sleeps (RK_CREW_SPIN_NS).
 * Every part of a job is claimed with an atomic, and the caller runs every part no helper has
 * claimed: a helper that is asleep, descheduled or never started (a forked child) only slows a
 * step down to one thread, never blocks it, and results do not depend on who ran a part. Where
 * the helper, though spinning, keeps missing its parts (a loaded machine, where it shares the
 * caller's core), the crew stops splitting for a while (RkCrew::judge).
 */
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

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

namespace {

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

/* How long a crew helper spins after its last job before it sleeps. 60 us is 10-50 streaming
 * steps: while a stream runs, the helper never sleeps, and each step costs a few cache lines'
 * trips instead of a wake-up (~5-50 us). Once the stream stops, the helper sleeps in a futex
 * after at most 60 us, so an idle streamer uses no CPU; while streaming, the spinning costs at
 * most 60 us of one core per step, which is what a step on two threads asks for. */
constexpr int64_t RK_CREW_SPIN_NS = 60000;
constexpr int RK_CREW_MAX = 8; /* threads of a crew job, caller included */

/* Spin while pred() is false, at most `ns`; true if pred() became true. The clock is read once
 * every 16 pauses (~1 us), which keeps it off the polling loop. */
template <typename P>
bool rk_spin_until(const P &pred, int64_t ns) {
    auto end = std::chrono::steady_clock::now() + std::chrono::nanoseconds(ns);
    for (;;) {
        for (int i = 0; i < 16; i++) {
            if (pred()) return true;
            rk_pause();
        }
        if (std::chrono::steady_clock::now() > end) return pred();
    }
}

int64_t rk_ns_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                t)
        .count();
}

/* One job: fn(ctx, part, nparts) for every part, part t preferably on participant t (the caller
 * is 0), so the same thread keeps reading the same weights from its own L2 step after step. */
class RkCrew {
  public:
    using Fn = void (*)(void *ctx, int part, int nparts);

    /* The process's crew (never destroyed: its helpers may still sleep at exit). */
    static RkCrew &get() {
        static RkCrew *crew = new RkCrew();
        return *crew;
    }

    /* Runs fn over nparts (<= RK_CREW_MAX) and returns when all are done; false (nothing run)
     * when another caller holds the crew or the crew is backing off (see judge): the caller
     * then runs the job itself. */
    bool run(Fn fn, void *ctx, int nparts) {
        if (nparts > RK_CREW_MAX || busy_.exchange(true, std::memory_order_acquire)) return false;
        if (skip_ > 0) {
            skip_--;
            busy_.store(false, std::memory_order_release);
            return false;
        }
        ensure(nparts - 1);
        fn_.store(fn, std::memory_order_relaxed);
        ctx_.store(ctx, std::memory_order_relaxed);
        nparts_.store(nparts, std::memory_order_relaxed);
        done_.store(0, std::memory_order_relaxed);
        uint32_t g = (uint32_t)gen_.load(std::memory_order_relaxed) + 1;
        claim_.store((uint64_t)g << 32, std::memory_order_release);
        gen_.store((int)g);  // seq_cst: a helper going to sleep either sees it or is seen
        /* one wake-up call per sleep, not one per step while the helper waits for a core */
        if (asleep_.load() && asleep_.exchange(0)) rk_wake(&gen_);
        /* our own part first, then whatever no helper has taken */
        auto t0 = std::chrono::steady_clock::now();
        int ran = 0;
        for (int k = 0; k < nparts; k++)
            if (take(g, k)) {
                fn(ctx, k, nparts);
                ran++;
            }
        /* the helpers' parts: only they write done_, so waiting costs no line transfer. A
         * helper running beside us finishes about when we did; one that took its part and lost
         * its core (it may be waiting for this one) gets the core when we sleep */
        int want = nparts - ran;
        bool quick = true;
        if (want) {
            int64_t bound = std::min(2 * rk_ns_since(t0) + 2000, RK_CREW_SPIN_NS);
            quick = rk_spin_until([&] { return done_.load(std::memory_order_acquire) == want; },
                                  bound);
            if (!quick) {
                waiting_.store(1);
                int d;
                while ((d = done_.load()) != want) rk_sleep(&done_, d);
                waiting_.store(0);
            }
        }
        finished_.store((int)g, std::memory_order_release);
        judge(want > 0 && quick);
        busy_.store(false, std::memory_order_release);
        return true;
    }

    /* parts run by helpers since the process started (tests and benchmarks: whether the
     * second thread takes part at all) */
    uint64_t helped() const { return helped_.load(std::memory_order_relaxed); }
    int helpers() const { return helpers_; }

  private:
    std::atomic<bool> busy_{false};
    std::atomic<int> gen_{0}, asleep_{0}, done_{0}, waiting_{0}, nparts_{0};
    std::atomic<int> finished_{0}; /* the generation of the last job the caller finished */
    std::atomic<uint64_t> claim_{0}; /* (generation << 32) | parts taken, one bit each */
    std::atomic<Fn> fn_{nullptr};
    std::atomic<void *> ctx_{nullptr};
    /* changed only by the caller holding busy_: */
    int helpers_ = 0;
    int seen_ = 0, hits_ = 0, skip_ = 0, backoff_ = 4096;
    bool bad_ = false;
    alignas(64) std::atomic<uint64_t> helped_{0}; /* off the job's line: only helpers write it */

    /* part k of job g, if nobody took it yet */
    bool take(uint32_t g, int k) {
        uint64_t c = claim_.load(std::memory_order_acquire), bit = (uint64_t)1 << k;
        while ((uint32_t)(c >> 32) == g && !(c & bit))
            if (claim_.compare_exchange_weak(c, c | bit, std::memory_order_acq_rel)) return true;
        return false;
    }

    /* Whether the split pays here: a job is a hit when a helper took its part and finished it
     * about when the caller did. Two windows of 32 jobs in a row with fewer than 24 hits (a
     * loaded machine, where the helper waits for a core, or steps too far apart for its spin,
     * so that each one wakes it) and the crew splits nothing for the next `backoff_` jobs
     * (4096, ~10 ms of steps, doubling while it lasts, up to 2^16), then tries again. One bad
     * window is forgiven: the first steps after a pause wake the helper. */
    void judge(bool hit) {
        hits_ += hit;
        if (++seen_ < 32) return;
        bool bad = hits_ < 24;
        if (bad && bad_) {
            skip_ = backoff_;
            backoff_ = std::min(2 * backoff_, 1 << 16);
            bad = false;
        } else if (!bad) {
            backoff_ = 4096;
        }
        bad_ = bad;
        seen_ = hits_ = 0;
    }

    /* sleep until the generation moves on from `seen` */
    void nap(uint32_t seen) {
        for (;;) {
            asleep_.store(1);  // seq_cst, before reading gen_ (see run)
            if ((uint32_t)gen_.load() != seen) break;
            rk_sleep(&gen_, (int)seen);
        }
        asleep_.store(0); /* awake: no wake-up call needed */
    }

    void ensure(int n) {
        for (; helpers_ < n; helpers_++) {
            try {
                std::thread([this, id = helpers_ + 1] { loop(id); }).detach();
            } catch (...) {
                return; /* no thread: the caller runs its parts */
            }
        }
    }

    void loop(int id) {
        uint32_t seen = (uint32_t)gen_.load();
        for (;;) {
            if (!rk_spin_until(
                    [&] { return (uint32_t)gen_.load(std::memory_order_acquire) != seen; },
                    RK_CREW_SPIN_NS))
                nap(seen);
            seen = (uint32_t)gen_.load(std::memory_order_acquire);
            /* the job's fields are read before the claim: a claim that succeeds proves the job
             * was still this one (the caller rewrites them only once every part is done) */
            Fn fn = fn_.load(std::memory_order_relaxed);
            void *ctx = ctx_.load(std::memory_order_relaxed);
            int np = nparts_.load(std::memory_order_relaxed);
            if (id >= np || !take(seen, id)) continue;
            auto t0 = std::chrono::steady_clock::now();
            fn(ctx, id, np);
            helped_.fetch_add(1, std::memory_order_relaxed);
            done_.fetch_add(1);
            if (waiting_.load()) rk_wake(&done_);
            /* A caller running beside us finishes its own part about when we do. If it has not,
             * it is waiting for a core, likely this one (a woken thread may preempt its waker):
             * spinning on would keep it off for RK_CREW_SPIN_NS, so sleep now. */
            int64_t bound = std::min(2 * rk_ns_since(t0) + 2000, RK_CREW_SPIN_NS);
            if (!rk_spin_until([&] { return (uint32_t)finished_.load(std::memory_order_acquire) == seen; },
                               bound))
                nap(seen);
        }
    }
};

}  // namespace
