/*
 * util.c: reading the graph view from the fast kernels: inputs, constants and ONNX attributes
 * (the kernels are built outside any aim_op_ctx), and activation nodes as oneDNN algorithms.
 */
#include "cpu/internal.h"

#include <float.h>
#include <string.h>

bool aim_cpu_op_is(const aim_cpu_node *n, const char *op_type) {
    const char *domain = n->proto->domain ? n->proto->domain : "";
    if (domain[0] && strcmp(domain, "ai.onnx") != 0) return false;
    return n->proto->op_type && strcmp(n->proto->op_type, op_type) == 0;
}

const aim_tensor *aim_cpu_in(const aim_cpu_build *b, const aim_cpu_node *n, int i) {
    if (i >= n->n_in || n->in[i] < 0) return NULL;
    return b->g->values[n->in[i]].info;
}

const aim_tensor *aim_cpu_out(const aim_cpu_build *b) {
    return b->g->values[b->out_value].info;
}

bool aim_cpu_is_const(const aim_cpu_graph *g, const aim_cpu_node *n, int i) {
    return i < n->n_in && n->in[i] >= 0 && g->values[n->in[i]].constant &&
           g->values[n->in[i]].info->data;
}

const Onnx__AttributeProto *aim_cpu_attr_find(const aim_cpu_node *n, const char *name) {
    return aim_onnx_node_attr(n->proto, name);
}

int64_t aim_cpu_attr_int(const aim_cpu_node *n, const char *name, int64_t def) {
    const Onnx__AttributeProto *a = aim_cpu_attr_find(n, name);
    return a ? a->i : def;
}

float aim_cpu_attr_float(const aim_cpu_node *n, const char *name, float def) {
    const Onnx__AttributeProto *a = aim_cpu_attr_find(n, name);
    return a ? a->f : def;
}

bool aim_cpu_attr_is(const aim_cpu_node *n, const char *name, const char *def, const char *want) {
    const Onnx__AttributeProto *a = aim_cpu_attr_find(n, name);
    if (!a) return strcmp(def, want) == 0;
    size_t len = strlen(want);
    return a->s.len == len && memcmp(a->s.data, want, len) == 0;
}

bool aim_cpu_attr_ints(const aim_cpu_node *n, const char *name, int count, int64_t def,
                       int64_t *out) {
    const Onnx__AttributeProto *a = aim_cpu_attr_find(n, name);
    if (a && a->n_ints != (size_t)count) return false;
    for (int i = 0; i < count; i++)
        out[i] = a ? a->ints[i] : def;
    return true;
}

/* A scalar constant input (Clip's min/max), or `def` when omitted; false when not constant. */
static bool const_scalar(const aim_cpu_graph *g, const aim_cpu_node *n, int i, float def,
                         float *out) {
    *out = def;
    if (i >= n->n_in || n->in[i] < 0) return true;
    if (!aim_cpu_is_const(g, n, i)) return false;
    const aim_tensor *t = g->values[n->in[i]].info;
    if (t->dtype != AIM_DTYPE_FLOAT || aim_tensor_count(t) != 1) return false;
    *out = *(const float *)t->data;
    return true;
}

static bool clip_bounds(const aim_cpu_graph *g, const aim_cpu_node *n, aim_cpu_post *p) {
    p->alg = dnnl_eltwise_clip;
    if (n->opset < 11) {
        p->alpha = aim_cpu_attr_float(n, "min", -FLT_MAX);
        p->beta = aim_cpu_attr_float(n, "max", FLT_MAX);
        return true;
    }
    return const_scalar(g, n, 1, -FLT_MAX, &p->alpha) && const_scalar(g, n, 2, FLT_MAX, &p->beta);
}

bool aim_cpu_activation(const aim_cpu_graph *g, const aim_cpu_node *n, aim_cpu_post *out) {
    memset(out, 0, sizeof *out);
    if (n->n_out != 1 || n->n_in < 1 || n->in[0] < 0) return false;
    if (g->values[n->in[0]].info->dtype != AIM_DTYPE_FLOAT) return false;
    if (aim_cpu_op_is(n, "Relu")) {
        out->alg = dnnl_eltwise_relu;
    } else if (aim_cpu_op_is(n, "LeakyRelu")) {
        out->alg = dnnl_eltwise_relu;
        out->alpha = aim_cpu_attr_float(n, "alpha", 0.01f);
    } else if (aim_cpu_op_is(n, "Sigmoid")) {
        out->alg = dnnl_eltwise_logistic;
    } else if (aim_cpu_op_is(n, "Tanh")) {
        out->alg = dnnl_eltwise_tanh;
    } else if (aim_cpu_op_is(n, "Elu")) {
        out->alg = dnnl_eltwise_elu;
        out->alpha = aim_cpu_attr_float(n, "alpha", 1.0f);
    } else if (aim_cpu_op_is(n, "HardSwish")) {
        out->alg = dnnl_eltwise_hardswish; /* x * relu6(x + 3) / 6, as ONNX defines it */
    } else if (aim_cpu_op_is(n, "Clip")) {
        return clip_bounds(g, n, out);
    } else {
        return false;
    }
    return true;
}
