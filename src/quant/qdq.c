/*
 * qdq.c: the standard ONNX QDQ form of a quantized region: QuantizeLinear/DequantizeLinear
 * pairs on every quantized activation and dequantized int8 weights. The compiler uses the same
 * rewrite for fake-quantized evaluation (aim's own session runs it) and for
 * aim_compile_export_qdq (ONNX Runtime runs it).
 */
#include "quant/edit.h"
#include "quant/quant.h"

#include "core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QDQ_SUFFIX_MAX 32

/* name + suffix into a new string. */
static char *suffixed(const char *name, const char *suffix) {
    size_t n = strlen(name), k = strlen(suffix);
    char *s = malloc(n + k + 1);
    if (s) {
        memcpy(s, name, n);
        memcpy(s + n, suffix, k + 1);
    }
    return s;
}

/* Adds scale (float) and zero point (uint8) scalars for an activation; names from `base`. */
static aim_status add_act_params(Onnx__GraphProto *g, const char *base, const aim_quant_params *p,
                                 char **scale_name, char **zp_name) {
    *scale_name = suffixed(base, "__aim_scale");
    *zp_name = suffixed(base, "__aim_zp");
    if (!*scale_name || !*zp_name) return aim_error(AIM_ERR_NOMEM, "out of memory");
    uint8_t zp = (uint8_t)p->zero_point;
    aim_status st =
        aim_quant_graph_add_initializer(g, *scale_name, AIM_DTYPE_FLOAT, 0, NULL, &p->scale, 4);
    if (st == AIM_OK)
        st = aim_quant_graph_add_initializer(g, *zp_name, AIM_DTYPE_UINT8, 0, NULL, &zp, 1);
    return st;
}

static aim_status append_qdq(Onnx__GraphProto *g, const char *x, const char *scale, const char *zp,
                             const char *q, const char *y) {
    const char *qin[3] = {x, scale, zp}, *dqin[3] = {q, scale, zp};
    aim_status st =
        aim_quant_graph_append(g, aim_quant_node_new("QuantizeLinear", NULL, q, 3, qin, 1, &q));
    if (st == AIM_OK)
        st = aim_quant_graph_append(
            g, aim_quant_node_new("DequantizeLinear", NULL, y, 3, dqin, 1, &y));
    return st;
}

/* Finds the node (among the first n) and output slot producing name. */
static bool find_producer(const Onnx__GraphProto *g, size_t n, const char *name, size_t *node,
                          size_t *slot) {
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < g->node[i]->n_output; k++)
            if (strcmp(g->node[i]->output[k], name) == 0) {
                *node = i;
                *slot = k;
                return true;
            }
    return false;
}

static aim_status qdq_produced(Onnx__GraphProto *g, size_t node, size_t slot,
                               const aim_quant_act *a) {
    char *f32 = suffixed(a->name, "__aim_f32"), *q = suffixed(a->name, "__aim_q");
    char *scale = NULL, *zp = NULL;
    aim_status st = f32 && q ? add_act_params(g, a->name, &a->p, &scale, &zp)
                             : aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st == AIM_OK) st = aim_quant_set_string(&g->node[node]->output[slot], f32);
    if (st == AIM_OK) st = append_qdq(g, f32, scale, zp, q, a->name);
    free(f32);
    free(q);
    free(scale);
    free(zp);
    return st;
}

static aim_status qdq_input(Onnx__GraphProto *g, size_t n_orig, const bool *in_region,
                            const aim_quant_act *a) {
    char *dq = suffixed(a->name, "__aim_dq"), *q = suffixed(a->name, "__aim_q");
    char *scale = NULL, *zp = NULL;
    aim_status st = dq && q ? add_act_params(g, a->name, &a->p, &scale, &zp)
                            : aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n_orig && st == AIM_OK; i++) {
        if (!in_region[i]) continue;
        for (size_t k = 0; k < g->node[i]->n_input && st == AIM_OK; k++)
            if (strcmp(g->node[i]->input[k], a->name) == 0)
                st = aim_quant_set_string(&g->node[i]->input[k], dq);
    }
    if (st == AIM_OK) st = append_qdq(g, a->name, scale, zp, q, dq);
    free(dq);
    free(q);
    free(scale);
    free(zp);
    return st;
}

/* Float initializer holding q * scale (weights) for opsets without per-axis dequantization. */
static aim_status float_weight(Onnx__GraphProto *g, Onnx__NodeProto *conv,
                               const aim_quant_weight *w, const char *key) {
    size_t per = (size_t)(w->dims[1] * w->dims[2] * w->dims[3]), o = (size_t)w->dims[0];
    float *wf = malloc(o * per * sizeof *wf + o * sizeof *wf);
    if (!wf) return aim_error(AIM_ERR_NOMEM, "out of memory");
    float *bf = wf + o * per;
    for (size_t c = 0; c < o; c++) {
        for (size_t i = 0; i < per; i++)
            wf[c * per + i] = (float)w->q[c * per + i] * w->scales[c];
        if (w->bias) bf[c] = (float)((double)w->bias[c] * w->input_scale * w->scales[c]);
    }
    char *wn = suffixed(key, "__aim_wf"), *bn = suffixed(key, "__aim_bf");
    aim_status st = wn && bn ? aim_quant_graph_add_initializer(g, wn, AIM_DTYPE_FLOAT, 4, w->dims,
                                                               wf, o * per * 4)
                             : aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st == AIM_OK) st = aim_quant_set_string(&conv->input[1], wn);
    if (st == AIM_OK && w->bias && conv->n_input > 2) {
        int64_t d = (int64_t)o;
        st = aim_quant_graph_add_initializer(g, bn, AIM_DTYPE_FLOAT, 1, &d, bf, o * 4);
        if (st == AIM_OK) st = aim_quant_set_string(&conv->input[2], bn);
    }
    free(wn);
    free(bn);
    free(wf);
    return st;
}

/* DequantizeLinear(int8 / int32 initializer, per-channel scale, axis 0) feeding conv input k. */
static aim_status dq_param(Onnx__GraphProto *g, Onnx__NodeProto *conv, size_t k, const char *key,
                           const char *what, int dtype, int rank, const int64_t *dims,
                           const void *data, size_t bytes, const float *scales, int64_t o) {
    char qn[QDQ_SUFFIX_MAX], sn[QDQ_SUFFIX_MAX], on[QDQ_SUFFIX_MAX];
    snprintf(qn, sizeof qn, "__aim_%s_q", what);
    snprintf(sn, sizeof sn, "__aim_%s_scale", what);
    snprintf(on, sizeof on, "__aim_%s", what);
    char *q = suffixed(key, qn), *s = suffixed(key, sn), *out = suffixed(key, on);
    aim_status st = q && s && out
                        ? aim_quant_graph_add_initializer(g, q, dtype, rank, dims, data, bytes)
                        : aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st == AIM_OK)
        st = aim_quant_graph_add_initializer(g, s, AIM_DTYPE_FLOAT, 1, &o, scales, (size_t)o * 4);
    const char *in[2] = {q, s};
    const char *outs[1] = {out};
    Onnx__NodeProto *dq =
        st == AIM_OK ? aim_quant_node_new("DequantizeLinear", NULL, out, 2, in, 1, outs) : NULL;
    if (dq && (st = aim_quant_attr_int(dq, "axis", 0)) != AIM_OK)
        onnx__node_proto__free_unpacked(dq, NULL);
    else if (st == AIM_OK)
        st = aim_quant_graph_append(g, dq);
    if (st == AIM_OK) st = aim_quant_set_string(&conv->input[k], out);
    free(q);
    free(s);
    free(out);
    return st;
}

static aim_status int8_weight(Onnx__GraphProto *g, Onnx__NodeProto *conv, const aim_quant_weight *w,
                              const char *key) {
    int64_t o = w->dims[0];
    size_t count = (size_t)(o * w->dims[1] * w->dims[2] * w->dims[3]);
    aim_status st =
        dq_param(g, conv, 1, key, "w", AIM_DTYPE_INT8, 4, w->dims, w->q, count, w->scales, o);
    if (st != AIM_OK || !w->bias || conv->n_input < 3) return st;
    float *unit = malloc((size_t)o * sizeof *unit);
    if (!unit) return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (int64_t c = 0; c < o; c++)
        unit[c] = w->input_scale * w->scales[c];
    st = dq_param(g, conv, 2, key, "b", AIM_DTYPE_INT32, 1, &o, w->bias, (size_t)o * 4, unit, o);
    free(unit);
    return st;
}

aim_status aim_quant_make_qdq(aim_model *m, const bool *in_region, const aim_quant_act *acts,
                              size_t n_acts, const aim_quant_weight *weights, size_t n_weights) {
    Onnx__GraphProto *g = aim_model_proto(m)->graph;
    size_t n_orig = g->n_node;
    bool per_axis = aim_model_opset_for(m, "") >= 13;
    aim_status st = AIM_OK;
    for (size_t i = 0; i < n_weights && st == AIM_OK; i++) {
        Onnx__NodeProto *conv = g->node[weights[i].node];
        const char *key = conv->n_output ? conv->output[0] : "conv";
        st = per_axis ? int8_weight(g, conv, &weights[i], key)
                      : float_weight(g, conv, &weights[i], key);
    }
    for (size_t i = 0; i < n_acts && st == AIM_OK; i++) {
        size_t node, slot;
        if (find_producer(g, n_orig, acts[i].name, &node, &slot))
            st = qdq_produced(g, node, slot, &acts[i]);
        else
            st = qdq_input(g, n_orig, in_region, &acts[i]);
    }
    if (st == AIM_OK) st = aim_quant_graph_toposort(g);
    if (st == AIM_OK) aim_quant_graph_prune(g);
    return st;
}
