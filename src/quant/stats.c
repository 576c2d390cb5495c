/*
 * stats.c: activation statistics (min/max, then a histogram) and the three ways of turning them
 * into a uint8 scale and zero point: minmax, percentile, entropy (KL divergence) and mse (the
 * clipping range with the least expected squared quantization error).
 */
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Smallest range width: keeps the scale a normal float for constant tensors. */
#define QUANT_MIN_WIDTH 1e-6

void aim_quant_stats_init(aim_quant_stats *s) {
    memset(s, 0, sizeof *s);
    s->min = INFINITY;
    s->max = -INFINITY;
}

void aim_quant_stats_observe(aim_quant_stats *s, const float *x, size_t n) {
    double lo = s->min, hi = s->max;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i])) continue;
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    s->min = lo;
    s->max = hi;
    s->count += n;
}

void aim_quant_stats_begin_hist(aim_quant_stats *s) {
    /* Containing 0 keeps zero on the quantization grid (zero padding stays exact). */
    s->lo = s->count && isfinite(s->min) ? fmin(s->min, 0.0) : 0.0;
    s->hi = s->count && isfinite(s->max) ? fmax(s->max, 0.0) : 0.0;
    if (s->hi - s->lo < QUANT_MIN_WIDTH) s->hi = s->lo + QUANT_MIN_WIDTH;
    memset(s->bins, 0, sizeof s->bins);
    s->total = 0;
}

void aim_quant_stats_hist(aim_quant_stats *s, const float *x, size_t n) {
    const double k = AIM_QUANT_BINS / (s->hi - s->lo);
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i])) continue;
        double b = floor((x[i] - s->lo) * k);
        long bi = b < 0 ? 0 : b >= AIM_QUANT_BINS ? AIM_QUANT_BINS - 1 : (long)b;
        s->bins[bi]++;
        s->total++;
    }
}

void aim_quant_params_from_range(double lo, double hi, aim_quant_params *out) {
    lo = fmin(lo, 0.0);
    hi = fmax(hi, 0.0);
    if (hi - lo < QUANT_MIN_WIDTH) hi = lo + QUANT_MIN_WIDTH;
    double scale = (hi - lo) / (AIM_QUANT_LEVELS - 1);
    double zp = rint(-lo / scale);
    if (zp < 0) zp = 0;
    if (zp > AIM_QUANT_LEVELS - 1) zp = AIM_QUANT_LEVELS - 1;
    out->scale = (float)scale;
    out->zero_point = (int32_t)zp;
    out->lo = (float)(-zp * scale);
    out->hi = (float)((AIM_QUANT_LEVELS - 1 - zp) * scale);
}

void aim_quant_range_minmax(const aim_quant_stats *s, double *lo, double *hi) {
    *lo = s->count && isfinite(s->min) ? fmin(s->min, 0.0) : 0.0;
    *hi = s->count && isfinite(s->max) ? fmax(s->max, 0.0) : 0.0;
}

static double bin_width(const aim_quant_stats *s) {
    return (s->hi - s->lo) / AIM_QUANT_BINS;
}

/* Bin holding the value 0 (the histogram range contains 0). */
static long zero_bin(const aim_quant_stats *s) {
    long z = lrint(-s->lo / bin_width(s));
    return z < 0 ? 0 : z > AIM_QUANT_BINS ? AIM_QUANT_BINS : z;
}

void aim_quant_range_percentile(const aim_quant_stats *s, double pct, double *lo, double *hi) {
    aim_quant_range_minmax(s, lo, hi);
    if (!s->total) return;
    /* The number of values each tail may drop; the range stays at least one bin wide. */
    double drop = (100.0 - pct) / 100.0 * (double)s->total;
    double w = bin_width(s);
    long z = zero_bin(s);
    if (s->min < 0) {
        double acc = 0;
        long b = 0;
        while (b < z && acc + (double)s->bins[b] <= drop)
            acc += (double)s->bins[b++];
        *lo = fmax(*lo, s->lo + b * w);
    }
    if (s->max > 0) {
        double acc = 0;
        long b = AIM_QUANT_BINS - 1;
        while (b >= z && acc + (double)s->bins[b] <= drop)
            acc += (double)s->bins[b--];
        *hi = fmin(*hi, s->lo + (b + 1) * w);
    }
}

/* KL(P || Q) for the bins [a, b): P is the histogram there with the outside mass added to the
 * edge bins, Q spreads each of `levels` quantization cells' mass over its non-empty bins. */
static double kl_for_range(const aim_quant_stats *s, long a, long b, int levels, double *p,
                           double *q) {
    long n = b - a;
    double total = 0;
    for (long i = 0; i < n; i++)
        p[i] = (double)s->bins[a + i];
    for (long i = 0; i < a; i++)
        p[0] += (double)s->bins[i];
    for (long i = b; i < AIM_QUANT_BINS; i++)
        p[n - 1] += (double)s->bins[i];
    for (long i = 0; i < n; i++)
        total += p[i];
    if (total <= 0) return 0;
    for (int l = 0; l < levels; l++) {
        long start = (long)((double)l * n / levels), end = (long)((double)(l + 1) * n / levels);
        if (end <= start) continue;
        double mass = 0;
        long nonzero = 0;
        for (long i = start; i < end; i++) {
            mass += (double)s->bins[a + i];
            nonzero += s->bins[a + i] != 0;
        }
        for (long i = start; i < end; i++)
            q[i] = nonzero && s->bins[a + i] ? mass / (double)nonzero : 0;
    }
    double qtotal = 0;
    for (long i = 0; i < n; i++)
        qtotal += q[i];
    double kl = 0;
    for (long i = 0; i < n; i++) {
        if (p[i] <= 0) continue;
        /* A bin P fills but Q leaves empty (the clipped edge): a large finite penalty, as
         * TensorRT-style implementations smooth it. */
        double qi = q[i] > 0 && qtotal > 0 ? q[i] / qtotal : 1e-9;
        kl += p[i] / total * log(p[i] / total / qi);
    }
    return kl;
}

void aim_quant_range_entropy(const aim_quant_stats *s, double *lo, double *hi) {
    aim_quant_range_minmax(s, lo, hi);
    if (!s->total) return;
    double *p = malloc(2 * AIM_QUANT_BINS * sizeof *p);
    if (!p) return; /* minmax is a safe answer when memory is short */
    double *q = p + AIM_QUANT_BINS;
    long z = zero_bin(s);
    const int levels = AIM_QUANT_LEVELS - 1;
    const long min_width = 128;
    double best = INFINITY;
    long best_a = 0, best_b = AIM_QUANT_BINS;
    for (long width = min_width; width <= AIM_QUANT_BINS; width += 8) {
        double f = (double)width / AIM_QUANT_BINS;
        long a = z - lrint(f * (double)z), b = z + lrint(f * (double)(AIM_QUANT_BINS - z));
        if (b - a < 2) continue;
        double kl = kl_for_range(s, a, b, levels, p, q);
        if (kl < best) {
            best = kl;
            best_a = a;
            best_b = b;
        }
    }
    free(p);
    double w = bin_width(s);
    *lo = fmax(*lo, s->lo + best_a * w);
    *hi = fmin(*hi, s->lo + best_b * w);
}

/* Expected squared error per value of quantizing the histogram with the range of bins [a, b):
 * values inside cost step^2 / 12 (uniform rounding error), values outside their distance to
 * the nearer edge squared (bin centres stand for their values). */
static double mse_for_range(const aim_quant_stats *s, long a, long b) {
    double w = bin_width(s), step = (double)(b - a) * w / (AIM_QUANT_LEVELS - 1);
    double lo = s->lo + (double)a * w, hi = s->lo + (double)b * w, err = 0;
    for (long i = 0; i < AIM_QUANT_BINS; i++) {
        if (!s->bins[i]) continue;
        double x = s->lo + ((double)i + 0.5) * w;
        double d = x < lo ? lo - x : x > hi ? x - hi : 0;
        err += (double)s->bins[i] * (d > 0 ? d * d : step * step / 12);
    }
    return err / (double)s->total;
}

void aim_quant_range_mse(const aim_quant_stats *s, double *lo, double *hi) {
    aim_quant_range_minmax(s, lo, hi);
    if (!s->total) return;
    long z = zero_bin(s);
    double best = INFINITY;
    long best_a = 0, best_b = AIM_QUANT_BINS;
    for (long width = 16; width <= AIM_QUANT_BINS; width += 4) {
        double f = (double)width / AIM_QUANT_BINS;
        long a = z - lrint(f * (double)z), b = z + lrint(f * (double)(AIM_QUANT_BINS - z));
        if (b - a < 2) continue;
        double e = mse_for_range(s, a, b);
        if (e < best) {
            best = e;
            best_a = a;
            best_b = b;
        }
    }
    double w = bin_width(s);
    *lo = fmax(*lo, s->lo + (double)best_a * w);
    *hi = fmin(*hi, s->lo + (double)best_b * w);
}

aim_status aim_quant_choose(const aim_quant_stats *s, aim_calib_method m, aim_quant_params *out) {
    double lo, hi;
    switch (m) {
    case AIM_CALIB_MINMAX: aim_quant_range_minmax(s, &lo, &hi); break;
    case AIM_CALIB_PERCENTILE: aim_quant_range_percentile(s, AIM_QUANT_PERCENTILE, &lo, &hi); break;
    case AIM_CALIB_ENTROPY: aim_quant_range_entropy(s, &lo, &hi); break;
    case AIM_CALIB_MSE: aim_quant_range_mse(s, &lo, &hi); break;
    default: return aim_error(AIM_ERR_INVALID_ARG, "calibration method %d has no range rule", m);
    }
    aim_quant_params_from_range(lo, hi, out);
    return AIM_OK;
}
