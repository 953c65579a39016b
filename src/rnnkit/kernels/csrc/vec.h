/*
 * Portable vector loops and branch-free fast math shared by the kernels' translation units
 * (rnnkit.cpp: the sequence kernels; step.cpp: the single-step kernels and their backward).
 * The math functions are static and always inlined: a call in a gate loop would keep that loop
 * scalar (GCC's inliner gave up on them in step.h's larger functions).
 */
#pragma once

#include <cmath>
#include <cstdint>

#define restrict __restrict__
#if defined(__GNUC__)
#define RK_INLINE static inline __attribute__((always_inline))
#else
#define RK_INLINE static inline
#endif
// Hot loops built for several vector widths and chosen when the library loads (GNU ifunc), so
// one portable binary uses AVX-512 or AVX2 where the CPU has them.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define RK_VEC __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RK_VEC
#endif
// The gate loops' arrays never overlap except exactly (h and out may be one buffer, written
// with the same value), which C's restrict promised; GCC's C++ front end does not act on
// __restrict__ there and guards each loop with a runtime overlap test that such exact aliases
// fail, falling back to scalar code (2-2.5x slower GRU/LSTM). Say it once per loop instead.
#if defined(__clang__)
#define RK_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define RK_IVDEP _Pragma("GCC ivdep")
#else
#define RK_IVDEP
#endif

/* expf to ~1 ulp, branch-free so loops that call it vectorise: 2^n * e^r with |r| <= ln2/2
 * and a degree-6 polynomial for e^r (Cephes coefficients). */
RK_INLINE float rk_expf(float x) {
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
RK_INLINE float rk_sigmf(float x) { return 1.0f / (1.0f + rk_expf(-x)); }
/* tanh(x) = 1 - 2 / (e^{2x} + 1): absolute error ~1e-7 near 0, which is all float needs. */
RK_INLINE float rk_tanhf(float x) { return 1.0f - 2.0f / (rk_expf(2.0f * x) + 1.0f); }
RK_INLINE double rk_sigm(double x) { return 1.0 / (1.0 + exp(-x)); }
