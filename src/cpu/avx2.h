/*
 * avx2.h: what aim's own AVX2 kernels (winograd.c so far) use: the target attribute, e^x on 8
 * lanes, and the fused post-ops applied to 8 channels of one output position. Such kernels read
 * and write channel-blocked layouts (nChw8c, nChw16c) 8 channels at a time and are used only
 * where aim_cpu_avx2_kernels_available() (cpu.h); the layouts and post-ops they accept come from
 * aim_cpu_own_layouts / aim_cpu_own_posts (internal.h).
 */
#ifndef AIM_CPU_AVX2_H
#define AIM_CPU_AVX2_H

#include "cpu/internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define AIM_AVX2 1
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

/* e^x for x <= 0 on 8 lanes: aim_cpu_exp_neg (internal.h) in AVX2 instructions. */
AVX2 static inline __m256 aim_avx2_exp_neg(__m256 x) {
    const __m256 shifter = _mm256_set1_ps(12582912.0f);
    __m256 n = _mm256_sub_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504f), shifter), shifter);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);
    __m256 q = _mm256_set1_ps(1.0f / 720);
    static const float c[] = {1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
    for (int i = 0; i < 6; i++)
        q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(c[i]));
    __m256i e = _mm256_max_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(-126));
    __m256 scale =
        _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(q, scale);
}

/* One post-op on 8 lanes; `res` is the residual's 8 values (sum) or NULL. The algorithms are
 * those aim_cpu_own_posts accepts. */
AVX2 static inline __m256 aim_avx2_post(const aim_cpu_post *q, __m256 x, const float *res) {
    __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    if (q->sum) return _mm256_add_ps(x, _mm256_loadu_ps(res));
    switch (q->alg) {
    case dnnl_eltwise_relu: /* alpha * min(x, 0) + max(x, 0): ReLU and LeakyReLU */
        return _mm256_fmadd_ps(_mm256_set1_ps(q->alpha), _mm256_min_ps(x, zero),
                               _mm256_max_ps(x, zero));
    case dnnl_eltwise_clip:
        return _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(q->alpha)), _mm256_set1_ps(q->beta));
    case dnnl_eltwise_hardswish: {
        __m256 r = _mm256_add_ps(x, _mm256_set1_ps(3.0f));
        r = _mm256_min_ps(_mm256_max_ps(r, zero), _mm256_set1_ps(6.0f));
        return _mm256_mul_ps(_mm256_mul_ps(x, r), _mm256_set1_ps(1.0f / 6));
    }
    case dnnl_eltwise_logistic:
    case dnnl_eltwise_swish: {
        bool swish = q->alg == dnnl_eltwise_swish;
        __m256 z = swish ? _mm256_mul_ps(x, _mm256_set1_ps(q->alpha)) : x;
        __m256 e = aim_avx2_exp_neg(_mm256_or_ps(z, _mm256_set1_ps(-0.0f))); /* e^-|z| */
        __m256 num = _mm256_blendv_ps(e, one, _mm256_cmp_ps(z, zero, _CMP_GT_OQ));
        __m256 s = _mm256_div_ps(num, _mm256_add_ps(one, e));
        return swish ? _mm256_mul_ps(x, s) : s;
    }
    default: return x;
    }
}

#endif
#endif
