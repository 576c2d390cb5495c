/*
 * biascorr.c: bias correction of the weight rounding (Nagel et al., "Data-Free Quantization",
 * 2019, section 4.2; Finkelstein et al., 2019). Rounding a Conv's weights to int8 changes each
 * output channel o by sum_i,k (Wq - W)[o, i, k] * x[i, ...], whose expectation is
 *     drift[o] = sum_i,k (Wq - W)[o, i, k] * E[x_i]
 * with E[x_i] the mean of input channel i. Depthwise layers with few weights per channel and
 * inputs with a large mean (a ReLU output, or raw 0..255 pixels) get drifts of several
 * quantization steps, which a detector reads as a score offset. The means are measured on the
 * calibration images (fp32 run, never the held-out images) and the drift subtracted from the
 * float bias the program's int32 bias and the QDQ model are both built from. Zero padding is
 * ignored (border outputs see fewer inputs); a Conv without a bias input is left as it is.
 * Only the Conv's own rounding is corrected, so corrections do not compound along the network.
 */
#include "compile/internal.h"

#include "graph/tensor.h"

#include <stdlib.h>
#include <string.h>

/* Per weight: the mean of each channel of the Conv's input. */
typedef struct {
    const char **names; /* distinct input tensors */
    size_t n_names;
    int *slot;     /* per weight: index into names */
    double **mean; /* per name, per channel */
} bc_means;

static void means_free(bc_means *m) {
    for (size_t i = 0; m->mean && i < m->n_names; i++)
        free(m->mean[i]);
    free(m->mean);
    free(m->names);
    free(m->slot);
}

static aim_status means_init(aim_compile_ctx *c, const aim_compile_weight *w, size_t n,
                             bc_means *m) {
    m->names = calloc(n + 1, sizeof *m->names);
    m->slot = calloc(n + 1, sizeof *m->slot);
    m->mean = calloc(n + 1, sizeof *m->mean);
    if (!m->names || !m->slot || !m->mean) return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *x = c->g->node[w[i].node]->input[0];
        size_t k = 0;
        while (k < m->n_names && strcmp(m->names[k], x) != 0)
            k++;
        if (k == m->n_names) {
            const aim_compile_tensor *t = &c->t[c->nin[w[i].node][0]];
            m->names[m->n_names] = x;
            if (!(m->mean[m->n_names++] = calloc((size_t)t->dims[1] + 1, sizeof **m->mean)))
                return aim_error(AIM_ERR_NOMEM, "out of memory");
        }
        m->slot[i] = (int)k;
    }
    return AIM_OK;
}

/* Adds one image's channel means (tensor [1, C, H, W]) divided by the image count. */
static void add_means(const aim_tensor *t, size_t images, double *mean) {
    size_t ch = t->rank == 4 ? (size_t)t->dims[1] : 0, total = aim_tensor_count(t);
    if (!ch || total % ch) return;
    size_t plane = total / ch;
    const float *x = t->data;
    for (size_t k = 0; k < total; k++)
        mean[k / plane] += (double)x[k] / (double)(plane * images);
}

static aim_status measure(aim_compile_ctx *c, bc_means *m) {
    aim_compile_runner r = {0};
    aim_tensor *outs = calloc(m->n_names + 1, sizeof *outs);
    aim_status st = outs ? AIM_OK : aim_error(AIM_ERR_NOMEM, "out of memory");
    int img_slot = -1; /* the image itself is a graph input, not a session output */
    const char **names = calloc(m->n_names + 1, sizeof *names);
    size_t n = 0;
    for (size_t k = 0; names && k < m->n_names; k++)
        if (strcmp(m->names[k], c->image_input) == 0)
            img_slot = (int)k;
        else
            names[n++] = m->names[k];
    if (!names) st = aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st == AIM_OK && n) st = aim_compile_runner_open(c, c->m, names, n, &r);
    for (size_t img = 0; img < c->n_calib && st == AIM_OK; img++) {
        if (n && (st = aim_compile_run_image(c, r.s, img, outs)) != AIM_OK) break;
        for (size_t k = 0, o = 0; k < m->n_names; k++)
            add_means(k == (size_t)img_slot ? &c->images[img] : &outs[o++], c->n_calib, m->mean[k]);
        if (n) aim_compile_free_outputs(outs, n);
        aim_compile_progress(c, "bias correction", img + 1, c->n_calib);
    }
    aim_compile_runner_close(&r);
    free(names);
    free(outs);
    return st;
}

/* Subtracts the drift of every output channel of weight w; returns sum |drift|. */
static double correct_one(const aim_compile_ctx *c, aim_compile_weight *w, const double *mean) {
    int64_t O = w->dims[0], cg = w->dims[1], kk = w->dims[2] * w->dims[3];
    int64_t group = aim_quant_attr_get_int(c->g->node[w->node], "group", 1);
    float *f = aim_compile_read_floats(c, c->g->node[w->node]->input[1], (size_t)(O * cg * kk));
    double moved = 0;
    for (int64_t o = 0; f && w->bias && o < O; o++) {
        int64_t first = (o / (O / group)) * cg; /* the group's first input channel */
        double d = 0;
        for (int64_t i = 0; i < cg; i++)
            for (int64_t k = 0; k < kk; k++) {
                size_t at = (size_t)((o * cg + i) * kk + k);
                d += ((double)w->q[at] * w->scales[o] - (double)f[at]) * mean[first + i];
            }
        w->bias[o] = (float)((double)w->bias[o] - d);
        moved += d < 0 ? -d : d;
    }
    free(f);
    return moved;
}

aim_status aim_compile_bias_correct(aim_compile_ctx *c, const aim_quant_params *params,
                                    aim_compile_weight *w, size_t n_w) {
    (void)params;
    if (!n_w || !c->n_calib) return AIM_OK;
    bc_means m = {0};
    aim_status st = means_init(c, w, n_w, &m);
    if (st == AIM_OK) st = measure(c, &m);
    double moved = 0;
    size_t channels = 0;
    for (size_t i = 0; i < n_w && st == AIM_OK; i++) {
        moved += correct_one(c, &w[i], m.mean[m.slot[i]]);
        channels += w[i].bias ? (size_t)w[i].dims[0] : 0;
    }
    means_free(&m);
    if (st != AIM_OK) return aim_error_context(st, "bias correction");
    aim_compile_log(c, 0, "bias correction: %zu channels, mean |drift| removed %.3g", channels,
                    channels ? moved / (double)channels : 0.0);
    return AIM_OK;
}
