/*
 * lower.c: from the fused region to an aim_program (src/cpu/program.h): one uint8 tensor per
 * quantized activation with its scale and zero point, QUANTIZE ops at the region inputs, one
 * op per group in graph order (a SLICE per output for a Split), DEQUANTIZE ops at the region
 * outputs (except where a Conv writes a region output as float32 directly, see
 * aim_compile_float_output); Conv weights int8 per output channel and biases int32 in units of
 * input_scale * weight_scale[c].
 */
#include "compile/internal.h"

#include <stdlib.h>
#include <string.h>

static int act_index(const aim_compile_ctx *c, int t) {
    for (size_t i = 0; i < c->n_acts; i++)
        if (c->acts[i] == t) return (int)i;
    return -1;
}

/* ---- Weights ------------------------------------------------------------------------------- */

static aim_status weight_one(const aim_compile_ctx *c, int node, aim_compile_weight *w) {
    const Onnx__NodeProto *n = c->g->node[node];
    const Onnx__TensorProto *t = aim_quant_graph_initializer(c->g, n->input[1]);
    w->node = node;
    memcpy(w->dims, t->dims, sizeof w->dims);
    size_t o = (size_t)w->dims[0], per = (size_t)(w->dims[1] * w->dims[2] * w->dims[3]);
    float *f = aim_compile_read_floats(c, n->input[1], o * per);
    w->q = malloc(o * per + 1);
    w->scales = malloc(o * sizeof *w->scales + 1);
    if (n->n_input > 2 && n->input[2][0]) w->bias = aim_compile_read_floats(c, n->input[2], o);
    aim_status st = AIM_OK;
    if (!f || (n->n_input > 2 && n->input[2][0] && !w->bias))
        st = aim_error(AIM_ERR_UNSUPPORTED, "Conv '%s': weights or bias unreadable",
                       n->name && n->name[0] ? n->name : n->output[0]);
    else if (!w->q || !w->scales)
        st = aim_error(AIM_ERR_NOMEM, "out of memory");
    else
        aim_quant_weights(f, o, per, w->q, w->scales);
    free(f);
    return st;
}

aim_status aim_compile_weights(aim_compile_ctx *c, aim_compile_weight **out, size_t *n) {
    *out = calloc(c->n_nodes + 1, sizeof **out);
    *n = 0;
    if (!*out) return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->n_nodes; i++) {
        if (!c->in_region[i] || strcmp(c->g->node[i]->op_type, "Conv") != 0) continue;
        aim_status st = weight_one(c, (int)i, &(*out)[(*n)++]);
        if (st != AIM_OK) return st;
    }
    return AIM_OK;
}

void aim_compile_weights_free(aim_compile_weight *w, size_t n) {
    for (size_t i = 0; w && i < n; i++) {
        free(w[i].q);
        free(w[i].scales);
        free(w[i].bias);
    }
    free(w);
}

/* ---- Program ------------------------------------------------------------------------------- */

bool aim_compile_float_output(const aim_compile_ctx *c, int t) {
    bool out = false;
    for (size_t i = 0; i < c->n_rout; i++)
        out = out || c->rout[i] == t;
    int p = t >= 0 ? c->t[t].producer : -1;
    if (!out || p < 0 || !c->in_region[p] || !c->grp[p].emits || c->grp[p].kind != AIM_PROG_CONV ||
        c->grp[p].out != t)
        return false;
    for (size_t k = 0; k < c->t[t].n_consumers; k++)
        if (c->in_region[c->t[t].consumers[k]]) return false;
    return true;
}

/* The float32 program tensor of region output t when its Conv writes it directly, else -1. */
static int float_out_tensor(const aim_compile_ctx *c, int t, const int *fout) {
    if (!aim_compile_float_output(c, t)) return -1;
    for (size_t i = 0; i < c->n_rout; i++)
        if (c->rout[i] == t) return fout[i];
    return -1;
}

typedef struct {
    aim_compile_ctx *c;
    const aim_quant_params *params;
    const aim_compile_weight *w;
    size_t n_w;
    aim_program *p;
    int *qt; /* per acts[]: program tensor index of the quantized tensor */
} lower_ctx;

static int add_tensor(aim_program *p, const aim_compile_tensor *t, int dtype,
                      const aim_quant_params *q) {
    aim_prog_tensor pt = {.dtype = dtype, .rank = 4, .name = (char *)t->name};
    memcpy(pt.dims, t->dims, sizeof pt.dims);
    if (q) {
        pt.scale = q->scale;
        pt.zero_point = q->zero_point;
    }
    return aim_program_add_tensor(p, &pt);
}

static int qtensor(const lower_ctx *L, int t) {
    int a = act_index(L->c, t);
    return a >= 0 ? L->qt[a] : -1;
}

static aim_status add_op(lower_ctx *L, aim_prog_op *op) {
    if (aim_program_add_op(L->p, op) < 0) return aim_error(AIM_ERR_NOMEM, "out of memory");
    return AIM_OK;
}

static void conv_pads(const Onnx__NodeProto *n, const aim_compile_tensor *x,
                      const aim_compile_tensor *y, aim_prog_op *op) {
    memset(op->pads, 0, sizeof op->pads);
    aim_quant_attr_get_ints(n, "pads", op->pads, 4);
    const Onnx__AttributeProto *ap = aim_onnx_node_attr(n, "auto_pad");
    bool upper = ap && ap->s.len == 10 && memcmp(ap->s.data, "SAME_UPPER", 10) == 0;
    bool lower = ap && ap->s.len == 10 && memcmp(ap->s.data, "SAME_LOWER", 10) == 0;
    if (!upper && !lower) return;
    for (int i = 0; i < 2; i++) {
        int64_t ext = (op->kernel[i] - 1) * op->dilations[i] + 1;
        int64_t total = (y->dims[2 + i] - 1) * op->strides[i] + ext - x->dims[2 + i];
        if (total < 0) total = 0;
        op->pads[i] = upper ? total / 2 : total - total / 2;
        op->pads[i + 2] = total - op->pads[i];
    }
}

static void window(const aim_compile_ctx *c, int node, aim_prog_op *op, bool conv) {
    const Onnx__NodeProto *n = c->g->node[node];
    const aim_compile_tensor *x = &c->t[c->nin[node][0]], *y = &c->t[c->nout[node][0]];
    op->strides[0] = op->strides[1] = 1;
    op->dilations[0] = op->dilations[1] = 1;
    aim_quant_attr_get_ints(n, "kernel_shape", op->kernel, 2);
    aim_quant_attr_get_ints(n, "strides", op->strides, 2);
    if (conv) aim_quant_attr_get_ints(n, "dilations", op->dilations, 2);
    conv_pads(n, x, y, op);
}

void aim_compile_conv_window(const aim_compile_ctx *c, const aim_compile_weight *w,
                             aim_prog_op *op) {
    op->kernel[0] = w->dims[2];
    op->kernel[1] = w->dims[3];
    window(c, w->node, op, true);
    op->group = aim_quant_attr_get_int(c->g->node[w->node], "group", 1);
}

static const aim_compile_weight *weight_of(const lower_ctx *L, int node) {
    for (size_t i = 0; i < L->n_w; i++)
        if (L->w[i].node == node) return &L->w[i];
    return NULL;
}

static aim_status conv_op(lower_ctx *L, int lead, aim_prog_op *op) {
    const aim_compile_weight *w = weight_of(L, lead);
    size_t o = (size_t)w->dims[0], count = o * (size_t)(w->dims[1] * w->dims[2] * w->dims[3]);
    aim_compile_conv_window(L->c, w, op);
    op->weights = malloc(count);
    op->w_scale = malloc(o * sizeof *op->w_scale);
    op->bias = malloc(o * sizeof *op->bias);
    if (!op->weights || !op->w_scale || !op->bias) return aim_error(AIM_ERR_NOMEM, "out of memory");
    memcpy(op->weights, w->q, count);
    memcpy(op->w_scale, w->scales, o * sizeof *op->w_scale);
    float in_scale = L->params[act_index(L->c, L->c->nin[lead][0])].scale;
    aim_quant_bias(w->bias, o, in_scale, w->scales, op->bias);
    for (size_t k = 0; k < o; k++) /* the executor's accumulator bound (program.h) */
        if (op->bias[k] > (1 << 30) || op->bias[k] < -(1 << 30)) {
            op->bias[k] = op->bias[k] > 0 ? (1 << 30) : -(1 << 30);
            aim_compile_log(L->c, 1, "Conv '%s': bias %zu saturated (input scale too small)",
                            L->c->t[L->c->nout[lead][0]].name, k);
        }
    return AIM_OK;
}

static void pool_op(lower_ctx *L, int lead, aim_prog_op *op) {
    const Onnx__NodeProto *n = L->c->g->node[lead];
    if (strcmp(n->op_type, "GlobalAveragePool") == 0) {
        const aim_compile_tensor *x = &L->c->t[L->c->nin[lead][0]];
        op->kernel[0] = x->dims[2];
        op->kernel[1] = x->dims[3];
        op->strides[0] = op->strides[1] = 1;
        op->dilations[0] = op->dilations[1] = 1;
        return;
    }
    window(L->c, lead, op, false);
    op->count_include_pad = aim_quant_attr_get_int(n, "count_include_pad", 0) != 0;
}

/* Fills the op-specific part and the inputs of group `g` ending at node `end`. */
static aim_status group_op(lower_ctx *L, const aim_compile_group *g, aim_prog_op *op) {
    const aim_compile_ctx *c = L->c;
    const Onnx__NodeProto *n = c->g->node[g->lead];
    op->kind = g->kind;
    op->act = g->act;
    op->act_alpha = g->alpha;
    op->act_beta = g->beta;
    op->residual = g->residual >= 0 ? qtensor(L, g->residual) : -1;
    op->out = qtensor(L, g->out);
    op->n_in = g->kind == AIM_PROG_ACTIVATION
                   ? 1
                   : (int)(g->kind == AIM_PROG_CONV || g->kind == AIM_PROG_RESIZE ||
                                   g->kind == AIM_PROG_MAXPOOL || g->kind == AIM_PROG_AVGPOOL
                               ? 1
                               : n->n_input);
    if (op->n_in > AIM_PROGRAM_MAX_INPUTS)
        return aim_error(AIM_ERR_UNSUPPORTED, "node '%s' has more than %d inputs", n->output[0],
                         AIM_PROGRAM_MAX_INPUTS);
    for (int k = 0; k < op->n_in; k++)
        op->in[k] = qtensor(L, g->kind == AIM_PROG_ACTIVATION ? g->x : c->nin[g->lead][k]);
    if (g->kind == AIM_PROG_CONV) return conv_op(L, g->lead, op);
    if (g->kind == AIM_PROG_MAXPOOL || g->kind == AIM_PROG_AVGPOOL) pool_op(L, g->lead, op);
    if (g->kind == AIM_PROG_CONCAT) {
        op->axis = aim_quant_attr_get_int(n, "axis", 1);
        if (op->axis < 0) op->axis += 4;
    }
    if (g->kind == AIM_PROG_RESIZE) {
        const aim_compile_tensor *x = &c->t[c->nin[g->lead][0]], *y = &c->t[g->out];
        op->strides[0] = y->dims[2] / x->dims[2];
        op->strides[1] = y->dims[3] / x->dims[3];
    }
    return AIM_OK;
}

static aim_status lower_tensors(lower_ctx *L, int *fin, int *fout) {
    aim_compile_ctx *c = L->c;
    for (size_t a = 0; a < c->n_acts; a++)
        if ((L->qt[a] = add_tensor(L->p, &c->t[c->acts[a]], AIM_DTYPE_UINT8, &L->params[a])) < 0)
            return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->n_rin; i++)
        if ((fin[i] = add_tensor(L->p, &c->t[c->rin[i]], AIM_DTYPE_FLOAT, NULL)) < 0)
            return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->n_rout; i++)
        if ((fout[i] = add_tensor(L->p, &c->t[c->rout[i]], AIM_DTYPE_FLOAT, NULL)) < 0)
            return aim_error(AIM_ERR_NOMEM, "out of memory");
    return AIM_OK;
}

/* A Split: one SLICE op per output, each starting where the previous part ended. */
static aim_status slice_ops(lower_ctx *L, int node) {
    const aim_compile_ctx *c = L->c;
    int64_t axis = aim_quant_attr_get_int(c->g->node[node], "axis", 0), start = 0;
    if (axis < 0) axis += 4;
    aim_status st = AIM_OK;
    for (size_t k = 0; k < c->g->node[node]->n_output && st == AIM_OK; k++) {
        int t = c->nout[node][k];
        aim_prog_op op = {.kind = AIM_PROG_SLICE, .n_in = 1, .residual = -1, .axis = axis};
        op.in[0] = qtensor(L, c->nin[node][0]);
        op.out = qtensor(L, t);
        op.pads[0] = start;
        start += c->t[t].dims[axis];
        st = add_op(L, &op);
    }
    return st;
}

static aim_status lower_ops(lower_ctx *L, const int *fin, const int *fout) {
    aim_compile_ctx *c = L->c;
    aim_status st = AIM_OK;
    for (size_t i = 0; i < c->n_rin && st == AIM_OK; i++) {
        aim_prog_op op = {.kind = AIM_PROG_QUANTIZE, .n_in = 1, .residual = -1};
        op.in[0] = fin[i];
        op.out = qtensor(L, c->rin[i]);
        st = add_op(L, &op);
    }
    for (size_t i = 0; i < c->n_nodes && st == AIM_OK; i++) {
        if (!c->in_region[i] || !c->grp[i].emits) continue;
        if (c->grp[i].kind == AIM_PROG_SLICE) {
            st = slice_ops(L, (int)i);
            continue;
        }
        aim_prog_op op = {0};
        st = group_op(L, &c->grp[i], &op);
        int direct = float_out_tensor(c, c->grp[i].out, fout);
        if (direct >= 0) op.out = direct;
        if (st == AIM_OK)
            st = add_op(L, &op);
        else {
            free(op.weights);
            free(op.w_scale);
            free(op.bias);
        }
    }
    for (size_t i = 0; i < c->n_rout && st == AIM_OK; i++) {
        if (aim_compile_float_output(c, c->rout[i])) continue; /* written by its Conv */
        aim_prog_op op = {.kind = AIM_PROG_DEQUANTIZE, .n_in = 1, .residual = -1};
        op.in[0] = qtensor(L, c->rout[i]);
        op.out = fout[i];
        st = add_op(L, &op);
    }
    return st;
}

aim_status aim_compile_lower(aim_compile_ctx *c, const aim_quant_params *params,
                             const aim_compile_weight *w, size_t n_w, aim_program **out) {
    lower_ctx L = {c, params, w, n_w, aim_program_new(c->o->target), NULL};
    L.qt = calloc(c->n_acts + 1, sizeof *L.qt);
    int *fin = calloc(c->n_rin + 1, sizeof *fin), *fout = calloc(c->n_rout + 1, sizeof *fout);
    aim_status st = L.p && L.qt && fin && fout ? AIM_OK : aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st == AIM_OK) st = lower_tensors(&L, fin, fout);
    if (st == AIM_OK) st = lower_ops(&L, fin, fout);
    if (st == AIM_OK) st = aim_program_set_io(L.p, fin, c->n_rin, fout, c->n_rout);
    if (st == AIM_OK) st = aim_program_validate(L.p);
    if (st != AIM_OK) {
        aim_program_free(L.p);
        L.p = NULL;
    }
    *out = L.p;
    free(L.qt);
    free(fin);
    free(fout);
    return st == AIM_OK ? st : aim_error_context(st, "lowering the region");
}
