/*
 * fuse.c: groups the region's nodes into program ops. A Conv absorbs a residual Add and then
 * an activation (Relu, LeakyRelu, Clip, Sigmoid, HardSwish, SiLU = x * sigmoid(x)); an Add
 * absorbs an activation. Fusing only happens when the intermediate tensor has no other reader
 * and does not leave the region, because a fused intermediate is never stored (so it has no
 * scale of its own, and the int32 accumulator goes through the activation before requantizing:
 * more accurate and one pass fewer). Every group's last output is a quantized program tensor.
 */
#include "compile/internal.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

static bool op_is(const aim_compile_ctx *c, int node, const char *op) {
    return node >= 0 && strcmp(c->g->node[node]->op_type, op) == 0;
}

static bool is_rout(const aim_compile_ctx *c, int t) {
    for (size_t i = 0; i < c->n_rout; i++)
        if (c->rout[i] == t) return true;
    return false;
}

/* Producer of tensor t when it is a region node whose group still ends there. */
static int open_group(const aim_compile_ctx *c, int t) {
    int p = t >= 0 ? c->t[t].producer : -1;
    return p >= 0 && c->in_region[p] && c->grp[p].emits ? p : -1;
}

/* A tensor only `readers` nodes read, that stays inside the region. */
static bool private_tensor(const aim_compile_ctx *c, int t, size_t readers) {
    return t >= 0 && c->t[t].n_consumers == readers && !c->t[t].graph_output && !is_rout(c, t);
}

static float scalar_init(const aim_compile_ctx *c, int t, float dflt) {
    if (t < 0) return dflt;
    Onnx__TensorProto *p = aim_quant_graph_initializer(c->g, c->t[t].name);
    void *data;
    size_t bytes;
    if (!p || p->data_type != AIM_DTYPE_FLOAT || aim_onnx_tensor_decode(c->m, p, &data, &bytes))
        return dflt;
    float v = bytes >= 4 ? *(float *)data : dflt;
    free(data);
    return v;
}

/* The activation a node computes, with its parameters; false for other ops. */
static bool node_act(const aim_compile_ctx *c, int i, aim_prog_act *act, float *a, float *b) {
    const Onnx__NodeProto *n = c->g->node[i];
    *a = 0;
    *b = 0;
    if (op_is(c, i, "Relu"))
        *act = AIM_PROG_ACT_RELU;
    else if (op_is(c, i, "Sigmoid"))
        *act = AIM_PROG_ACT_SIGMOID;
    else if (op_is(c, i, "HardSwish"))
        *act = AIM_PROG_ACT_HARDSWISH;
    else if (op_is(c, i, "LeakyRelu")) {
        *act = AIM_PROG_ACT_LEAKY_RELU;
        *a = aim_quant_attr_get_float(n, "alpha", 0.01f);
    } else if (op_is(c, i, "Clip")) {
        *act = AIM_PROG_ACT_CLIP;
        /* opset < 11: attributes; from 11: optional constant inputs */
        *a = aim_quant_attr_get_float(n, "min", -FLT_MAX);
        *b = aim_quant_attr_get_float(n, "max", FLT_MAX);
        if (n->n_input > 1) *a = scalar_init(c, c->nin[i][1], *a);
        if (n->n_input > 2) *b = scalar_init(c, c->nin[i][2], *b);
    } else
        return false;
    return true;
}

/* The Mul node of x * sigmoid(x) when node s is that Sigmoid, else -1. */
static int silu_mul(const aim_compile_ctx *c, int s) {
    int x = c->nin[s][0], y = c->nout[s][0];
    if (!private_tensor(c, y, 1)) return -1;
    int m = c->t[y].consumers[0];
    if (!c->in_region[m] || !op_is(c, m, "Mul")) return -1;
    int other = c->nin[m][0] == y ? c->nin[m][1] : c->nin[m][0];
    return other == x ? m : -1;
}

static void plain(aim_compile_ctx *c, int i, aim_prog_op_kind kind) {
    aim_compile_group *g = &c->grp[i];
    g->kind = kind;
    g->lead = i;
    g->emits = true;
    g->residual = -1;
    g->x = c->nin[i][0];
    g->out = c->nout[i][0];
}

/* Moves the end of p's group to node i (p no longer emits). */
static void extend(aim_compile_ctx *c, int p, int i) {
    c->grp[i] = c->grp[p];
    c->grp[i].out = c->nout[i][0];
    c->grp[p].emits = false;
}

static void fuse_act(aim_compile_ctx *c, int i, aim_prog_act act, float a, float b) {
    int x = c->nin[i][0], p = open_group(c, x);
    bool can = p >= 0 && private_tensor(c, x, 1) && c->grp[p].act == AIM_PROG_ACT_NONE &&
               (c->grp[p].kind == AIM_PROG_CONV || c->grp[p].kind == AIM_PROG_ADD);
    if (can)
        extend(c, p, i);
    else
        plain(c, i, AIM_PROG_ACTIVATION);
    c->grp[i].act = act;
    c->grp[i].alpha = a;
    c->grp[i].beta = b;
}

static void fuse_silu(aim_compile_ctx *c, int s, int m) {
    int x = c->nin[s][0], p = open_group(c, x);
    bool can = p >= 0 && private_tensor(c, x, 2) && c->grp[p].act == AIM_PROG_ACT_NONE &&
               (c->grp[p].kind == AIM_PROG_CONV || c->grp[p].kind == AIM_PROG_ADD);
    if (can) {
        extend(c, p, m);
    } else {
        plain(c, m, AIM_PROG_ACTIVATION);
        c->grp[m].x = x;
    }
    c->grp[m].act = AIM_PROG_ACT_SILU;
    c->grp[s].lead = c->grp[m].lead; /* the Sigmoid is inside the group */
    c->grp[s].emits = false;
}

static void fuse_add(aim_compile_ctx *c, int i) {
    for (int j = 0; j < 2; j++) {
        int x = c->nin[i][j], p = open_group(c, x);
        if (p < 0 || c->grp[p].kind != AIM_PROG_CONV || c->grp[p].act != AIM_PROG_ACT_NONE ||
            c->grp[p].residual >= 0 || !private_tensor(c, x, 1))
            continue;
        extend(c, p, i);
        c->grp[i].residual = c->nin[i][1 - j];
        return;
    }
    plain(c, i, AIM_PROG_ADD);
}

static void group_node(aim_compile_ctx *c, int i, bool *silu_sigmoid) {
    aim_prog_act act;
    float a, b;
    if (silu_sigmoid[i]) return; /* handled at its Mul */
    if (op_is(c, i, "Sigmoid") && silu_mul(c, i) >= 0) {
        silu_sigmoid[i] = true;
        silu_sigmoid[silu_mul(c, i)] = true;
        return;
    }
    if (node_act(c, i, &act, &a, &b))
        fuse_act(c, i, act, a, b);
    else if (op_is(c, i, "Conv"))
        plain(c, i, AIM_PROG_CONV);
    else if (op_is(c, i, "Add"))
        fuse_add(c, i);
    else if (op_is(c, i, "Mul"))
        plain(c, i, AIM_PROG_MUL);
    else if (op_is(c, i, "MaxPool"))
        plain(c, i, AIM_PROG_MAXPOOL);
    else if (op_is(c, i, "AveragePool") || op_is(c, i, "GlobalAveragePool"))
        plain(c, i, AIM_PROG_AVGPOOL);
    else if (op_is(c, i, "Concat"))
        plain(c, i, AIM_PROG_CONCAT);
    else if (op_is(c, i, "Resize"))
        plain(c, i, AIM_PROG_RESIZE);
    else if (op_is(c, i, "Split"))
        plain(c, i, AIM_PROG_SLICE); /* one SLICE op per output (lower.c) */
}

static aim_status push_act(aim_compile_ctx *c, int t) {
    for (size_t i = 0; i < c->n_acts; i++)
        if (c->acts[i] == t) return AIM_OK;
    int *grown = realloc(c->acts, (c->n_acts + 1) * sizeof *grown);
    if (!grown) return aim_error(AIM_ERR_NOMEM, "out of memory");
    c->acts = grown;
    c->acts[c->n_acts++] = t;
    return AIM_OK;
}

aim_status aim_compile_fuse(aim_compile_ctx *c) {
    bool *silu = calloc(c->n_nodes + 1, sizeof *silu);
    if (!silu) return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->n_nodes; i++) {
        c->grp[i].lead = -1;
        c->grp[i].residual = -1;
    }
    for (size_t i = 0; i < c->n_nodes; i++) {
        if (!c->in_region[i]) continue;
        if (silu[i] && op_is(c, (int)i, "Mul")) {
            int s = c->t[c->nin[i][0]].producer;
            if (!op_is(c, s, "Sigmoid") || silu_mul(c, s) != (int)i)
                s = c->t[c->nin[i][1]].producer;
            fuse_silu(c, s, (int)i);
            continue;
        }
        group_node(c, (int)i, silu);
    }
    free(silu);
    aim_status st = AIM_OK;
    for (size_t i = 0; i < c->n_rin && st == AIM_OK; i++)
        st = push_act(c, c->rin[i]);
    for (size_t i = 0; i < c->n_nodes && st == AIM_OK; i++) {
        if (!c->in_region[i] || !c->grp[i].emits) continue;
        st = push_act(c, c->grp[i].out);
        for (size_t k = 1;
             c->grp[i].kind == AIM_PROG_SLICE && k < c->g->node[i]->n_output && st == AIM_OK; k++)
            st = push_act(c, c->nout[i][k]); /* every part of a Split */
    }
    return st;
}
