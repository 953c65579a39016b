/*
 * A cache of the kernels' large blocks (their own scratch and the operators' big outputs), so
 * that repeated calls reuse memory whose pages are already mapped.
 *
 * Why: glibc serves every allocation over 32 MB (and smaller ones, once its heap is trimmed)
 * with a fresh mmap, whose pages fault on first touch. At (B, T, H) = (64, 100, 512) an LSTM
 * inference call faulted ~58 MB of pages and a training step ~110 MB; filling a fresh 52 MB
 * buffer cost 25-27 ms of CPU against 7.6 ms for a reused one (session 5). The process's malloc
 * settings stay the user's: only the kernels' blocks are kept.
 *
 * The rule that bounds it: blocks of at least RK_POOL_MIN bytes are taken from the cache when
 * one fits (best fit, at most twice the request, so shrinking shapes reuse but never pin a
 * huge block for a tiny call) and given back to it when released. The cache keeps at most
 * `rk_pool_cap` idle bytes (RNNKIT_POOL_BYTES, default 512 MB; 0 keeps nothing): a release that
 * would pass it frees the least recently released blocks first, and a block larger than the
 * cap is freed at once. Blocks in use are not counted (they belong to live tensors or a running
 * kernel). `pool_configure` (module level) changes the cap and frees what is over it.
 *
 * Cached blocks are mapped with mmap, not malloc: blocks kept inside glibc's heap would change
 * how it reuses and trims memory for everything else (the Elman kernels' 13 MB buffers at
 * (64, 100, 512) went from 0 to ~3,000 page faults a training step when they were).
 *
 * Process-wide, mutex-guarded: a tensor's storage may be released on any thread (the autograd
 * engine, a DataLoader worker), and two Python threads may run kernels at once. The cache is
 * never destroyed (tensors may outlive static destructors at exit).
 */
#pragma once

#include <pthread.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

namespace {

constexpr size_t RK_POOL_MIN = (size_t)1 << 20;  /* smaller blocks: malloc reuses them well */
constexpr size_t RK_HUGE = (size_t)2 << 20;       /* a transparent huge page on x86-64 */

size_t rk_pool_cap_default() {
    const char *v = getenv("RNNKIT_POOL_BYTES");
    char *end = NULL;
    unsigned long long n = v && *v ? strtoull(v, &end, 10) : 0;
    return v && *v && end && *end == '\0' ? (size_t)n : (size_t)512 << 20;
}

/* `bytes` (a multiple of RK_HUGE) of fresh anonymous memory aligned to RK_HUGE, or NULL. */
void *rk_map(size_t bytes) {
    size_t span = bytes + RK_HUGE;
    void *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    uintptr_t lo = (uintptr_t)m, a = (lo + RK_HUGE - 1) & ~(uintptr_t)(RK_HUGE - 1);
    if (a > lo) munmap(m, a - lo);
    if (lo + span > a + bytes) munmap((void *)(a + bytes), lo + span - (a + bytes));
#if defined(MADV_HUGEPAGE)
    /* Where transparent huge pages are "madvise" (a common default), the block then faults
     * once per 2 MB instead of once per 4 KB, and its GEMMs miss the TLB less. */
    madvise((void *)a, bytes, MADV_HUGEPAGE);
#endif
    return (void *)a;
}

struct RkPool {
    struct Block {
        void *p;
        size_t bytes;
    };
    std::mutex mu;
    std::vector<Block> idle;  /* oldest release first */
    size_t idle_bytes = 0, cap = rk_pool_cap_default();
    size_t hits = 0, misses = 0;

    /* Free idle blocks, oldest first, until at most `keep` idle bytes remain (mu held). */
    void shrink_to(size_t keep) {
        size_t i = 0;
        while (idle_bytes > keep && i < idle.size()) {
            idle_bytes -= idle[i].bytes;
            munmap(idle[i].p, idle[i].bytes);
            i++;
        }
        idle.erase(idle.begin(), idle.begin() + (std::ptrdiff_t)i);
    }
};

RkPool &rk_pool();

RkPool *rk_pool_new() {
    RkPool *pool = new RkPool();
    /* A child forked while another thread held the lock (a DataLoader worker started during a
     * kernel call) would wait on it forever: the child starts with a fresh one. */
    pthread_atfork(NULL, NULL, [] { new (&rk_pool().mu) std::mutex(); });
    return pool;
}

RkPool &rk_pool() {
    static RkPool *pool = rk_pool_new();  /* never destroyed: see above */
    return *pool;
}

/* Round a pooled request up to whole huge pages, so a block fits several nearby shapes. */
size_t rk_pool_size(size_t bytes) { return (bytes + RK_HUGE - 1) / RK_HUGE * RK_HUGE; }

/* `bytes` bytes, 64-byte aligned (RK_HUGE aligned when cached), or NULL when out of memory.
 * Release with rk_give(p, bytes) (the same bytes). */
void *rk_take(size_t bytes) {
    if (bytes < RK_POOL_MIN) {
        void *p = NULL;
        return posix_memalign(&p, 64, bytes ? bytes : 64) == 0 ? p : NULL;
    }
    size_t want = rk_pool_size(bytes);
    RkPool &pool = rk_pool();
    {
        std::lock_guard<std::mutex> lock(pool.mu);
        size_t best = pool.idle.size();
        for (size_t i = 0; i < pool.idle.size(); i++) {
            size_t b = pool.idle[i].bytes;
            if (b >= want && b <= 2 * want && (best == pool.idle.size() || b < pool.idle[best].bytes))
                best = i;
        }
        if (best < pool.idle.size()) {
            void *p = pool.idle[best].p;
            pool.idle_bytes -= pool.idle[best].bytes;
            pool.idle.erase(pool.idle.begin() + (std::ptrdiff_t)best);
            pool.hits++;
            return p;
        }
        pool.misses++;
    }
    return rk_map(want);
}

void rk_give(void *p, size_t bytes) {
    if (!p) return;
    if (bytes < RK_POOL_MIN) {
        free(p);
        return;
    }
    size_t have = rk_pool_size(bytes);
    RkPool &pool = rk_pool();
    std::lock_guard<std::mutex> lock(pool.mu);
    if (have > pool.cap) {
        munmap(p, have);
        return;
    }
    pool.shrink_to(pool.cap - have);
    pool.idle.push_back({p, have});
    pool.idle_bytes += have;
}

}  // namespace
