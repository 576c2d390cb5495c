/*
 * rounding.c: Hessian-aware rounding of per-channel int8 weights (GPTQ: Frantar et al.,
 * "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers", 2022,
 * itself the one-shot form of Optimal Brain Quantization). A layer's output error from
 * rounding one weight row w to q is (w - q)^T H (w - q) with H = sum x x^T over its input
 * vectors x (im2col patches). Rounding each weight to nearest ignores that neighbouring pixels
 * and channels are strongly correlated; GPTQ rounds the weights one at a time and moves the
 * error of each onto the weights not yet rounded, along the direction H says compensates it
 * best. The per-channel scales are kept (max |w| / 127), so the program contract and the
 * biases do not change, only which level each weight takes.
 */
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* In-place Cholesky factor of the symmetric n x n matrix a: lower triangle L with a = L L^T
 * (the upper triangle is left unspecified). False when a is not positive definite. */
static bool cholesky(double *a, size_t n) {
    for (size_t j = 0; j < n; j++) {
        double d = a[j * n + j];
        for (size_t k = 0; k < j; k++)
            d -= a[j * n + k] * a[j * n + k];
        if (!(d > 0)) return false;
        d = sqrt(d);
        a[j * n + j] = d;
        for (size_t i = j + 1; i < n; i++) {
            double s = a[i * n + j];
            for (size_t k = 0; k < j; k++)
                s -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = s / d;
        }
    }
    return true;
}

/* u (n x n, upper) such that inverse(H) = U^T U, from L (lower, H = L L^T): inverse(H) =
 * L^-T L^-1, whose Cholesky factor is taken again so that row i of U holds, scaled, how the
 * error of weight i is best spread over weights i+1.. (the GPTQ update). */
static bool inverse_factor(const double *l, size_t n, double *u) {
    double *li = calloc(n * n + 1, sizeof *li); /* L^-1, lower */
    if (!li) return false;
    for (size_t j = 0; j < n; j++) {
        li[j * n + j] = 1.0 / l[j * n + j];
        for (size_t i = j + 1; i < n; i++) {
            double s = 0;
            for (size_t k = j; k < i; k++)
                s += l[i * n + k] * li[k * n + j];
            li[i * n + j] = -s / l[i * n + i];
        }
    }
    /* inverse(H) = (L^-1)^T L^-1 into u (full symmetric) */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i; j < n; j++) {
            double s = 0;
            for (size_t k = j; k < n; k++)
                s += li[k * n + i] * li[k * n + j];
            u[i * n + j] = u[j * n + i] = s;
        }
    free(li);
    if (!cholesky(u, n)) return false;
    for (size_t i = 0; i < n; i++) /* transpose the lower factor into the upper triangle */
        for (size_t j = i + 1; j < n; j++) {
            u[i * n + j] = u[j * n + i];
            u[j * n + i] = 0;
        }
    return true;
}

bool aim_quant_round_gptq(const float *w, size_t rows, size_t per, double *h, const float *scales,
                          int8_t *q) {
    if (!rows || !per) return true;
    double mean = 0;
    for (size_t i = 0; i < per; i++)
        mean += h[i * per + i] / (double)per;
    if (!(mean > 0) || !isfinite(mean)) return false;
    /* An input that never varies (dead channel, always-zero pad) has no say: unit diagonal.
     * Dampening (GPTQ's 1% of the mean diagonal) keeps the inverse well conditioned. */
    for (size_t i = 0; i < per; i++) {
        if (!(h[i * per + i] > 0)) {
            for (size_t j = 0; j < per; j++)
                h[i * per + j] = h[j * per + i] = 0;
            h[i * per + i] = mean;
        }
        h[i * per + i] += 0.01 * mean;
    }
    double *u = malloc(per * per * sizeof *u + 1), *x = malloc(per * sizeof *x + 1);
    bool ok = u && x && cholesky(h, per) && inverse_factor(h, per, u);
    for (size_t r = 0; ok && r < rows; r++) {
        double s = scales[r];
        for (size_t i = 0; i < per; i++)
            x[i] = w[r * per + i];
        for (size_t i = 0; i < per; i++) {
            double v = rint(x[i] / s);
            v = !(v == v) ? 0 : v > 127 ? 127 : v < -127 ? -127 : v; /* NaN weights: level 0 */
            q[r * per + i] = (int8_t)v;
            double e = (x[i] - v * s) / u[i * per + i];
            const double *ui = u + i * per;
            for (size_t j = i + 1; j < per; j++)
                x[j] -= e * ui[j];
        }
    }
    free(u);
    free(x);
    return ok;
}
