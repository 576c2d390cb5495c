/*
 * test_quant.c: the quant module on known distributions: minmax scale and zero point,
 * percentile ignoring an outlier, entropy and mse clipping a long tail, per-channel weight
 * round-trip error bounds, bias rounding and saturation, agreement metrics, method names, and
 * GPTQ rounding against round-to-nearest on a synthetic convolution.
 */
#include "quant/quant.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Both passes over one array. */
static void stats_of(aim_quant_stats *s, const float *x, size_t n) {
    aim_quant_stats_init(s);
    aim_quant_stats_observe(s, x, n);
    aim_quant_stats_begin_hist(s);
    aim_quant_stats_hist(s, x, n);
}

static void test_minmax_known(void **state) {
    (void)state;
    const float x[] = {-1.0f, 0.5f, 3.0f, 2.0f};
    aim_quant_stats s;
    aim_quant_params p;
    stats_of(&s, x, 4);
    assert_int_equal(aim_quant_choose(&s, AIM_CALIB_MINMAX, &p), AIM_OK);
    assert_float_equal(p.scale, 4.0f / 255.0f, 1e-7);
    assert_int_equal(p.zero_point, 64); /* round(1 / (4/255)) = round(63.75) */
}

static void test_range_contains_zero(void **state) {
    (void)state;
    aim_quant_params p;
    aim_quant_params_from_range(2.0, 6.0, &p); /* widened to [0, 6] */
    assert_int_equal(p.zero_point, 0);
    assert_float_equal(p.scale, 6.0f / 255.0f, 1e-7);
    aim_quant_params_from_range(-4.0, -1.0, &p); /* widened to [-4, 0] */
    assert_int_equal(p.zero_point, 255);
    aim_quant_params_from_range(0.0, 0.0, &p); /* constant zero: still a valid scale */
    assert_true(p.scale > 0 && isnormal(p.scale));
}

static void test_percentile_ignores_outlier(void **state) {
    (void)state;
    size_t n = 100000;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(i % 1000) / 1000.0f; /* uniform in [0, 1) */
    x[0] = 100.0f;                          /* one outlier */
    aim_quant_stats s;
    stats_of(&s, x, n);
    double lo, hi, mlo, mhi;
    aim_quant_range_percentile(&s, 99.99, &lo, &hi);
    aim_quant_range_minmax(&s, &mlo, &mhi);
    assert_float_equal(mhi, 100.0, 1e-9);
    assert_true(hi < 2.0);
    assert_true(hi >= 0.9);
    assert_float_equal(lo, 0.0, 1e-12);
    free(x);
}

/* Uniform random in [0, 1). */
static double urand(void) {
    return rand() / ((double)RAND_MAX + 1.0);
}

static void test_entropy_clips_long_tail(void **state) {
    (void)state;
    size_t n = 200000;
    float *x = malloc(n * sizeof *x);
    srand(7);
    for (size_t i = 0; i < n; i++) /* exponential bulk (scale 1) ... */
        x[i] = (float)(-log(1.0 - urand()));
    for (size_t i = 0; i < n; i += 5000) /* ... and a sparse tail out to 100 */
        x[i] = (float)(20.0 + 80.0 * urand());
    x[1] = 100.0f;
    aim_quant_stats s;
    stats_of(&s, x, n);
    double lo, hi;
    aim_quant_range_entropy(&s, &lo, &hi);
    assert_true(hi < s.max * 0.5);
    assert_true(hi > 3.0); /* but keeps the bulk */
    assert_float_equal(lo, 0.0, 1e-12);
    free(x);
}

static void test_two_sided_entropy(void **state) {
    (void)state;
    enum { N = 40000 };
    static float x[N];
    srand(11);
    for (int i = 0; i < N; i++) /* a bell-shaped bulk around 0 (sd about 0.25) */
        x[i] = (float)((urand() + urand() + urand() - 1.5) * 0.5);
    x[0] = -50.0f;
    x[1] = 50.0f;
    aim_quant_stats s;
    stats_of(&s, x, N);
    double lo, hi;
    aim_quant_range_entropy(&s, &lo, &hi);
    assert_true(lo < 0 && hi > 0);
    assert_true(hi < 40.0 && lo > -40.0);
}

static void test_weights_round_trip(void **state) {
    (void)state;
    enum { C = 3, K = 50 };
    float w[C * K];
    int8_t q[C * K];
    float s[C];
    for (int c = 0; c < C; c++)
        for (int k = 0; k < K; k++)
            w[c * K + k] = (c == 2) ? 0.0f : (float)sin(k * 0.37 + c) * (c + 1) * 0.1f;
    aim_quant_weights(w, C, K, q, s);
    for (int c = 0; c < C; c++) {
        float m = 0;
        for (int k = 0; k < K; k++)
            m = fmaxf(m, fabsf(w[c * K + k]));
        if (c == 2) {
            assert_float_equal(s[c], 1.0f, 0); /* all-zero channel */
        } else {
            assert_float_equal(s[c], m / 127.0f, 1e-9);
        }
        for (int k = 0; k < K; k++) {
            assert_true(q[c * K + k] >= -127 && q[c * K + k] <= 127);
            float back = q[c * K + k] * s[c];
            assert_true(fabsf(back - w[c * K + k]) <= s[c] * 0.5f + 1e-7f);
        }
    }
}

static void test_bias_rounding(void **state) {
    (void)state;
    const float b[3] = {1.0f, -0.26f, 1e9f};
    const float ws[3] = {0.01f, 0.1f, 1e-6f};
    int32_t out[3];
    aim_quant_bias(b, 3, 0.5f, ws, out);
    assert_int_equal(out[0], 200);       /* 1 / 0.005 */
    assert_int_equal(out[1], -5);        /* -0.26 / 0.05 = -5.2 */
    assert_int_equal(out[2], INT32_MAX); /* saturated */
    aim_quant_bias(NULL, 2, 0.5f, ws, out);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 0);
}

static void test_agreement(void **state) {
    (void)state;
    const float a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 4}, c[4] = {-1, -2, -3, -4};
    aim_quant_agree g = {0}, h = {0};
    aim_quant_agree_add(&g, a, b, 4);
    assert_float_equal(aim_quant_agree_cosine(&g), 1.0, 1e-12);
    assert_float_equal(aim_quant_agree_snr_db(&g), 200.0, 0);
    aim_quant_agree_add(&h, a, c, 4);
    assert_float_equal(aim_quant_agree_cosine(&h), -1.0, 1e-12);
}

/* Mean squared error of quantizing x with p (round to nearest, saturate). */
static double quant_mse(const float *x, size_t n, const aim_quant_params *p) {
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double q = rint(x[i] / p->scale) + p->zero_point;
        q = q < 0 ? 0 : q > 255 ? 255 : q;
        double d = (q - p->zero_point) * p->scale - x[i];
        e += d * d;
    }
    return e / (double)n;
}

/* An exponential distribution (long tail): mse clips the tail, and its range really has a
 * smaller quantization error on the data than minmax's and percentile's. */
static void test_mse_clips_long_tail(void **state) {
    (void)state;
    size_t n = 200000;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)-log(((double)i + 0.5) / (double)n);
    aim_quant_stats s;
    stats_of(&s, x, n);
    aim_quant_params pm, pp, pe;
    assert_int_equal(aim_quant_choose(&s, AIM_CALIB_MSE, &pe), AIM_OK);
    assert_int_equal(aim_quant_choose(&s, AIM_CALIB_MINMAX, &pm), AIM_OK);
    assert_int_equal(aim_quant_choose(&s, AIM_CALIB_PERCENTILE, &pp), AIM_OK);
    assert_true(pe.hi < 0.9f * pm.hi && pe.hi > 3.0f);
    assert_int_equal(pe.zero_point, 0);
    assert_true(quant_mse(x, n, &pe) < quant_mse(x, n, &pm));
    assert_true(quant_mse(x, n, &pe) <= quant_mse(x, n, &pp));
    free(x);
}

static void test_method_names(void **state) {
    (void)state;
    aim_calib_method m;
    assert_true(aim_calib_method_parse("entropy", &m));
    assert_int_equal(m, AIM_CALIB_ENTROPY);
    assert_true(aim_calib_method_parse("mse", &m));
    assert_int_equal(m, AIM_CALIB_MSE);
    assert_false(aim_calib_method_parse("kl", &m));
    assert_string_equal(aim_calib_method_name(AIM_CALIB_PERCENTILE), "percentile");
    aim_quant_stats s;
    aim_quant_params p;
    stats_of(&s, (const float[]){1.0f}, 1);
    assert_int_equal(aim_quant_choose(&s, AIM_CALIB_AUTO, &p), AIM_ERR_INVALID_ARG);
}

/* GPTQ on a synthetic 1-D conv (kernel 8) over a smooth, strongly correlated signal: the output
 * error sum_t (y_q - y)^2, computed here directly from the convolution (not from H), must be
 * well below round-to-nearest's, with the same scales, and every level in -127..127. */
static void test_gptq_beats_nearest(void **state) {
    (void)state;
    enum { ROWS = 6, PER = 8, LEN = 4000 };
    static float x[LEN];
    uint32_t seed = 12345;
    double acc = 0;
    for (int t = 0; t < LEN; t++) { /* random walk, slowly decaying: neighbours correlate */
        seed = seed * 1664525u + 1013904223u;
        acc = 0.95 * acc + ((double)(seed >> 8) / 16777216.0 - 0.5);
        x[t] = (float)acc;
    }
    float w[ROWS * PER], scales[ROWS];
    for (int i = 0; i < ROWS * PER; i++) {
        seed = seed * 1664525u + 1013904223u;
        w[i] = (float)((double)(seed >> 8) / 16777216.0 - 0.5);
    }
    int8_t rtn[ROWS * PER], q[ROWS * PER];
    aim_quant_weights(w, ROWS, PER, rtn, scales);
    static double h[PER * PER];
    memset(h, 0, sizeof h);
    for (int t = 0; t + PER <= LEN; t++)
        for (int i = 0; i < PER; i++)
            for (int j = 0; j < PER; j++)
                h[i * PER + j] += (double)x[t + i] * x[t + j];
    memcpy(q, rtn, sizeof q);
    assert_true(aim_quant_round_gptq(w, ROWS, PER, h, scales, q));
    double e_rtn = 0, e_q = 0;
    int changed = 0;
    for (int r = 0; r < ROWS; r++)
        for (int t = 0; t + PER <= LEN; t++) {
            double y = 0, y0 = 0, y1 = 0;
            for (int k = 0; k < PER; k++) {
                y += (double)w[r * PER + k] * x[t + k];
                y0 += (double)rtn[r * PER + k] * scales[r] * x[t + k];
                y1 += (double)q[r * PER + k] * scales[r] * x[t + k];
            }
            e_rtn += (y0 - y) * (y0 - y);
            e_q += (y1 - y) * (y1 - y);
        }
    for (int i = 0; i < ROWS * PER; i++) {
        changed += q[i] != rtn[i];
        assert_true(q[i] >= -127 && q[i] <= 127);
        /* the error of each weight stays within a few steps: the scales still fit */
        assert_true(fabs((double)q[i] * scales[i / PER] - w[i]) <= 4 * scales[i / PER]);
    }
    assert_true(changed > 0);
    assert_true(e_q < 0.5 * e_rtn);
}

/* An H that is all zero (a dead input) is refused and leaves q untouched. */
static void test_gptq_rejects_zero_hessian(void **state) {
    (void)state;
    float w[4] = {0.1f, -0.2f, 0.3f, 0.05f}, scales[1];
    int8_t q[4], before[4];
    aim_quant_weights(w, 1, 4, q, scales);
    memcpy(before, q, sizeof q);
    double h[16] = {0};
    assert_false(aim_quant_round_gptq(w, 1, 4, h, scales, q));
    assert_memory_equal(q, before, sizeof q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minmax_known),
        cmocka_unit_test(test_range_contains_zero),
        cmocka_unit_test(test_percentile_ignores_outlier),
        cmocka_unit_test(test_entropy_clips_long_tail),
        cmocka_unit_test(test_two_sided_entropy),
        cmocka_unit_test(test_weights_round_trip),
        cmocka_unit_test(test_bias_rounding),
        cmocka_unit_test(test_agreement),
        cmocka_unit_test(test_mse_clips_long_tail),
        cmocka_unit_test(test_method_names),
        cmocka_unit_test(test_gptq_beats_nearest),
        cmocka_unit_test(test_gptq_rejects_zero_hessian),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
