/*
 * equalize.c: cross-layer range equalization (Nagel et al., "Data-Free Quantization", 2019,
 * with activation ranges measured on the calibration images). For a region pattern
 *     Conv1 -> T -> Conv2        or        Conv1 -> Relu -> T -> Conv2
 * where every intermediate tensor has one reader, channel c of T is multiplied by f[c] > 0
 * (Conv1's weights and bias of output channel c scaled by f[c]) and Conv2's weights reading
 * channel c divided by f[c]. Relu is positively homogeneous and zero padding stays zero, so the
 * fp32 function is unchanged, but one per-tensor activation scale then serves channels whose
 * ranges differed by orders of magnitude (a channel reaching -180 where the others stay within
 * +-3 takes every level of the uint8 grid otherwise). Conv1's weights are quantized per output
 * channel, so scaling its rows costs nothing; Conv2 is per output channel too:
 *   - depthwise Conv2 (group = channels): each of its output channels reads one input channel,
 *     scaling costs nothing, so every channel of T is brought to the largest range R:
 *     f[c] = R / r[c];
 *   - Conv2 with group 1: column c shares its rows' scales with the other columns, so the
 *     activation range r[c] and the column's weight range w[c] are balanced:
 *     f[c] = sqrt(w[c] / r[c]) (both become sqrt(r[c] w[c]), up to a common factor).
 * Factors are bounded to [1/F, F] (F = EQ_MAX_FACTOR) and channels that never leave ~0 keep 1.
 * The scaled weights are new initializers (the originals may be shared).
 */
#include "compile/internal.h"

#include "graph/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EQ_MAX_FACTOR 256.0

typedef struct {
    int conv1, conv2, t; /* node indices and the tensor Conv2 reads */
    size_t channels;
    double *range; /* per channel: max |T[c]| over the calibration images */
} eq_pair;

static bool is_op(const aim_compile_ctx *c, int node, const char *op) {
    return node >= 0 && c->in_region[node] && strcmp(c->g->node[node]->op_type, op) == 0;
}

static bool sole_reader(const aim_compile_ctx *c, int t) {
    return t >= 0 && c->t[t].n_consumers == 1 && !c->t[t].graph_output && c->t[t].rank == 4;
}

/* The Conv1 of a pair ending at Conv2 `i`, or -1. */
static int pair_start(const aim_compile_ctx *c, int i) {
    int t = c->nin[i][0];
    if (!sole_reader(c, t)) return -1;
    int p = c->t[t].producer;
    if (is_op(c, p, "Relu")) {
        t = c->nin[p][0];
        if (!sole_reader(c, t)) return -1;
        p = c->t[t].producer;
    }
    return is_op(c, p, "Conv") ? p : -1;
}

static size_t weight_count(const aim_compile_ctx *c, int node) {
    const Onnx__TensorProto *w = aim_quant_graph_initializer(c->g, c->g->node[node]->input[1]);
    if (!w || w->n_dims != 4) return 0;
    return (size_t)(w->dims[0] * w->dims[1] * w->dims[2] * w->dims[3]);
}

/* Whether Conv2 reads input channel c through group 1 or depthwise (1 channel per group). */
static bool conv2_ok(const aim_compile_ctx *c, int node, size_t channels) {
    const Onnx__TensorProto *w = aim_quant_graph_initializer(c->g, c->g->node[node]->input[1]);
    int64_t group = aim_quant_attr_get_int(c->g->node[node], "group", 1);
    if (!w || w->n_dims != 4) return false;
    return (group == 1 && w->dims[1] == (int64_t)channels) ||
           (group == (int64_t)channels && w->dims[1] == 1 && w->dims[0] % group == 0);
}

static size_t find_pairs(const aim_compile_ctx *c, eq_pair *pairs) {
    size_t n = 0;
    for (size_t i = 0; i < c->n_nodes; i++) {
        if (!is_op(c, (int)i, "Conv")) continue;
        int p = pair_start(c, (int)i), t = c->nin[i][0];
        if (p < 0 || !weight_count(c, p) || !weight_count(c, (int)i)) continue;
        size_t ch = (size_t)c->t[t].dims[1];
        if (!conv2_ok(c, (int)i, ch)) continue;
        pairs[n++] = (eq_pair){p, (int)i, t, ch, NULL};
    }
    return n;
}

/* max |T[c]| of every pair's tensor over the calibration images. */
static aim_status measure(aim_compile_ctx *c, eq_pair *pairs, size_t n) {
    const char **names = calloc(n + 1, sizeof *names);
    aim_tensor *outs = calloc(n + 1, sizeof *outs);
    aim_status st = names && outs ? AIM_OK : aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < n && st == AIM_OK; k++) {
        names[k] = c->t[pairs[k].t].name;
        pairs[k].range = calloc(pairs[k].channels, sizeof *pairs[k].range);
        if (!pairs[k].range) st = aim_error(AIM_ERR_NOMEM, "out of memory");
    }
    aim_compile_runner r = {0};
    if (st == AIM_OK) st = aim_compile_runner_open(c, c->m, names, n, &r);
    for (size_t img = 0; img < c->n_calib && st == AIM_OK; img++) {
        if ((st = aim_compile_run_image(c, r.s, img, outs)) != AIM_OK) break;
        for (size_t k = 0; k < n; k++) {
            const float *x = outs[k].data;
            size_t plane = aim_tensor_count(&outs[k]) / pairs[k].channels;
            for (size_t i = 0; i < plane * pairs[k].channels; i++) {
                double *m = &pairs[k].range[i / plane];
                *m = fmax(*m, fabs(x[i]));
            }
        }
        aim_compile_free_outputs(outs, n);
        aim_compile_progress(c, "equalize", img + 1, c->n_calib);
    }
    aim_compile_runner_close(&r);
    free(names);
    free(outs);
    return st;
}

static double clampf(double f) {
    return f < 1 / EQ_MAX_FACTOR ? 1 / EQ_MAX_FACTOR : f > EQ_MAX_FACTOR ? EQ_MAX_FACTOR : f;
}

/* Per-channel factors of a pair (w2: Conv2's weights [O, I/group, KH, KW]). */
static void factors(const eq_pair *p, const float *w2, size_t o2, size_t per2, bool depthwise,
                    double *f) {
    double R = 0;
    for (size_t ch = 0; ch < p->channels; ch++)
        R = fmax(R, p->range[ch]);
    for (size_t ch = 0; ch < p->channels; ch++) {
        double r = p->range[ch];
        f[ch] = 1;
        if (!(r > 1e-6 * R)) continue;
        if (depthwise) {
            f[ch] = clampf(R / r);
            continue;
        }
        double w = 0;
        size_t k2 = per2 / p->channels; /* KH * KW */
        for (size_t o = 0; o < o2; o++)
            for (size_t k = 0; k < k2; k++)
                w = fmax(w, fabs(w2[(o * p->channels + ch) * k2 + k]));
        if (w > 0) f[ch] = clampf(sqrt(w / r));
    }
}

/* Writes `data` as a new initializer named after `node`'s output and points input `slot` at
 * it. */
static aim_status replace_input(aim_compile_ctx *c, int node, int slot, const char *suffix,
                                const float *data, size_t count) {
    Onnx__NodeProto *n = c->g->node[node];
    const Onnx__TensorProto *old = aim_quant_graph_initializer(c->g, n->input[slot]);
    char name[512];
    int k = 0; /* a Conv in two pairs (second of one, first of the next) is rewritten twice */
    do
        snprintf(name, sizeof name, "%.480s__aim_eq%d%s", n->output[0], k++, suffix);
    while (aim_quant_graph_initializer(c->g, name));
    aim_status st = aim_quant_graph_add_initializer(c->g, name, AIM_DTYPE_FLOAT, (int)old->n_dims,
                                                    old->dims, data, count * sizeof *data);
    return st == AIM_OK ? aim_quant_set_string(&n->input[slot], name) : st;
}

/* Scales Conv1's rows (and bias) by f and Conv2's reads of each channel by 1 / f. */
static aim_status apply(aim_compile_ctx *c, const eq_pair *p, bool *done) {
    const Onnx__NodeProto *n1 = c->g->node[p->conv1], *n2 = c->g->node[p->conv2];
    size_t c1 = weight_count(c, p->conv1), c2 = weight_count(c, p->conv2);
    bool has_b = n1->n_input > 2 && n1->input[2][0];
    float *w1 = aim_compile_read_floats(c, n1->input[1], c1),
          *w2 = aim_compile_read_floats(c, n2->input[1], c2);
    float *b1 = has_b ? aim_compile_read_floats(c, n1->input[2], p->channels) : NULL;
    double *f = malloc(p->channels * sizeof *f);
    aim_status st = AIM_OK;
    *done = w1 && w2 && f && (b1 || !has_b) && c1 % p->channels == 0;
    if (*done) {
        bool dw = aim_quant_attr_get_int(n2, "group", 1) != 1;
        const Onnx__TensorProto *t2 = aim_quant_graph_initializer(c->g, n2->input[1]);
        size_t o2 = (size_t)t2->dims[0], per1 = c1 / p->channels;
        size_t per2 = c2 / o2, mult = o2 / p->channels;
        factors(p, w2, o2, per2, dw, f);
        for (size_t i = 0; i < c1; i++)
            w1[i] = (float)(w1[i] * f[i / per1]);
        for (size_t ch = 0; b1 && ch < p->channels; ch++)
            b1[ch] = (float)(b1[ch] * f[ch]);
        for (size_t i = 0; i < c2; i++) /* dw: output o reads channel o / mult */
            w2[i] =
                (float)(w2[i] / f[dw ? i / per2 / mult : (i / (per2 / p->channels)) % p->channels]);
        st = replace_input(c, p->conv1, 1, "w", w1, c1);
        if (st == AIM_OK && b1) st = replace_input(c, p->conv1, 2, "b", b1, p->channels);
        if (st == AIM_OK) st = replace_input(c, p->conv2, 1, "w", w2, c2);
    }
    free(w1);
    free(w2);
    free(b1);
    free(f);
    return st;
}

aim_status aim_compile_equalize(aim_compile_ctx *c) {
    eq_pair *pairs = calloc(c->n_nodes + 1, sizeof *pairs);
    if (!pairs) return aim_error(AIM_ERR_NOMEM, "out of memory");
    size_t n = find_pairs(c, pairs), applied = 0;
    aim_status st = n ? measure(c, pairs, n) : AIM_OK;
    for (size_t k = 0; k < n && st == AIM_OK; k++) {
        bool done = false;
        st = apply(c, &pairs[k], &done);
        applied += done;
    }
    for (size_t k = 0; k < n; k++)
        free(pairs[k].range);
    free(pairs);
    if (st == AIM_OK && applied)
        aim_compile_log(c, 0, "equalized the channel ranges of %zu Conv pair(s)", applied);
    return st == AIM_OK ? st : aim_error_context(st, "equalizing channel ranges");
}
