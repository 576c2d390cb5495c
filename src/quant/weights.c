/*
 * weights.c: per-output-channel int8 weights, int32 biases, and the agreement metrics (cosine
 * similarity, SNR) the compiler uses to pick a method and to report each layer.
 */
#include "quant/quant.h"

#include <math.h>
#include <string.h>

void aim_quant_weights(const float *w, size_t channels, size_t per_channel, int8_t *q,
                       float *scales) {
    for (size_t c = 0; c < channels; c++) {
        const float *wc = w + c * per_channel;
        float m = 0;
        for (size_t i = 0; i < per_channel; i++)
            m = fmaxf(m, fabsf(wc[i]));
        /* An all-zero channel keeps scale 1 so the bias unit stays a normal number. */
        float s = m > 0 ? m / 127.0f : 1.0f;
        scales[c] = s;
        for (size_t i = 0; i < per_channel; i++) {
            float r = rintf(wc[i] / s);
            q[c * per_channel + i] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
        }
    }
}

void aim_quant_bias(const float *b, size_t channels, float input_scale, const float *w_scales,
                    int32_t *out) {
    for (size_t c = 0; c < channels; c++) {
        double unit = (double)input_scale * (double)w_scales[c];
        double r = b && unit > 0 ? rint((double)b[c] / unit) : 0;
        out[c] = r > 2147483647.0 ? INT32_MAX : r < -2147483647.0 ? -INT32_MAX : (int32_t)r;
    }
}

void aim_quant_agree_add(aim_quant_agree *g, const float *ref, const float *test, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double a = ref[i], b = test[i];
        g->dot += a * b;
        g->aa += a * a;
        g->bb += b * b;
        g->err += (a - b) * (a - b);
    }
    g->n += n;
}

double aim_quant_agree_cosine(const aim_quant_agree *g) {
    if (g->aa == 0 && g->bb == 0) return 1.0;
    if (g->aa == 0 || g->bb == 0) return 0.0;
    return g->dot / (sqrt(g->aa) * sqrt(g->bb));
}

double aim_quant_agree_snr_db(const aim_quant_agree *g) {
    if (g->err <= 0) return 200.0;
    if (g->aa <= 0) return 0.0;
    double snr = 10.0 * log10(g->aa / g->err);
    return snr > 200.0 ? 200.0 : snr;
}
