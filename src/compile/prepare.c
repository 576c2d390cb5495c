/*
 * prepare.c: the compiler's working copy of the model, with every BatchNormalization that
 * follows a Conv folded into that Conv's weights and bias (exact in real arithmetic, and it
 * saves the program a pass over the tensor; the quantized weights then absorb the BN scale).
 */
#include "compile/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

aim_status aim_compile_copy_model(const aim_model *m, aim_model **out) {
    uint8_t *data;
    size_t size;
    aim_status st = aim_model_save_memory(m, &data, &size);
    if (st != AIM_OK) return st;
    st = aim_model_load_memory(data, size, m->dir, out);
    free(data);
    return st;
}

/* Decodes a float initializer with exactly `count` elements; NULL (no error) otherwise. */
static float *float_init(const aim_compile_ctx *c, const char *name, size_t count) {
    Onnx__TensorProto *t = name ? aim_quant_graph_initializer(c->g, name) : NULL;
    if (!t || !t->has_data_type || t->data_type != AIM_DTYPE_FLOAT) return NULL;
    void *data;
    size_t bytes;
    if (aim_onnx_tensor_decode(c->m, t, &data, &bytes) != AIM_OK) {
        aim_error_clear();
        return NULL;
    }
    if (bytes != count * sizeof(float)) {
        free(data);
        return NULL;
    }
    return data;
}

static size_t readers(const Onnx__GraphProto *g, const char *name) {
    size_t n = 0;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_input; k++)
            n += strcmp(g->node[i]->input[k], name) == 0;
    for (size_t i = 0; i < g->n_output; i++)
        n += g->output[i]->name && strcmp(g->output[i]->name, name) == 0;
    return n;
}

static long conv_before(const Onnx__GraphProto *g, const Onnx__NodeProto *bn) {
    if (bn->n_input < 5 || bn->n_output != 1) return -1;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        if (strcmp(n->op_type, "Conv") == 0 && (!n->domain || !n->domain[0]) && n->n_output == 1 &&
            n->n_input >= 2 && strcmp(n->output[0], bn->input[0]) == 0)
            return readers(g, n->output[0]) == 1 ? (long)i : -1;
    }
    return -1;
}

typedef struct {
    float *w, *b, *gamma, *beta, *mean, *var;
} bn_params;

static void bn_free(bn_params *p) {
    free(p->w);
    free(p->b);
    free(p->gamma);
    free(p->beta);
    free(p->mean);
    free(p->var);
}

/* Writes the folded weight and bias as new initializers and points the Conv at them. */
static aim_status fold_write(aim_compile_ctx *c, Onnx__NodeProto *conv, const Onnx__TensorProto *wt,
                             bn_params *p, size_t o, size_t per, float eps) {
    float *b = malloc(o * sizeof *b);
    if (!b) return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < o; k++) {
        float f = p->gamma[k] / sqrtf(p->var[k] + eps);
        for (size_t i = 0; i < per; i++)
            p->w[k * per + i] *= f;
        b[k] = ((p->b ? p->b[k] : 0.0f) - p->mean[k]) * f + p->beta[k];
    }
    char wn[512], bn[512];
    snprintf(wn, sizeof wn, "%.480s__aim_bnw", conv->output[0]);
    snprintf(bn, sizeof bn, "%.480s__aim_bnb", conv->output[0]);
    int64_t od = (int64_t)o;
    aim_status st = aim_quant_graph_add_initializer(c->g, wn, AIM_DTYPE_FLOAT, (int)wt->n_dims,
                                                    wt->dims, p->w, o * per * 4);
    if (st == AIM_OK)
        st = aim_quant_graph_add_initializer(c->g, bn, AIM_DTYPE_FLOAT, 1, &od, b, o * 4);
    free(b);
    if (st == AIM_OK) st = aim_quant_set_string(&conv->input[1], wn);
    if (st == AIM_OK && conv->n_input >= 3) return aim_quant_set_string(&conv->input[2], bn);
    if (st != AIM_OK) return st;
    char **grown = realloc(conv->input, 3 * sizeof *grown);
    if (!grown) return aim_error(AIM_ERR_NOMEM, "out of memory");
    conv->input = grown;
    conv->input[2] = NULL;
    conv->n_input = 3;
    return aim_quant_set_string(&conv->input[2], bn);
}

/* Folds node `i` (a BatchNormalization) when its parameters are constant; true when done. */
static aim_status fold_one(aim_compile_ctx *c, size_t i, bool *done) {
    Onnx__NodeProto *bnode = c->g->node[i];
    *done = false;
    long ci = conv_before(c->g, bnode);
    if (ci < 0) return AIM_OK;
    Onnx__NodeProto *conv = c->g->node[ci];
    const Onnx__TensorProto *wt = aim_quant_graph_initializer(c->g, conv->input[1]);
    if (!wt || wt->n_dims != 4 || wt->dims[0] <= 0) return AIM_OK;
    size_t o = (size_t)wt->dims[0], per = (size_t)(wt->dims[1] * wt->dims[2] * wt->dims[3]);
    bn_params p = {float_init(c, conv->input[1], o * per),
                   conv->n_input > 2 && conv->input[2][0] ? float_init(c, conv->input[2], o) : NULL,
                   float_init(c, bnode->input[1], o),
                   float_init(c, bnode->input[2], o),
                   float_init(c, bnode->input[3], o),
                   float_init(c, bnode->input[4], o)};
    bool bias_ok = !(conv->n_input > 2 && conv->input[2][0]) || p.b;
    aim_status st = AIM_OK;
    if (p.w && bias_ok && p.gamma && p.beta && p.mean && p.var) {
        float eps = aim_quant_attr_get_float(bnode, "epsilon", 1e-5f);
        st = fold_write(c, conv, wt, &p, o, per, eps);
        if (st == AIM_OK) st = aim_quant_set_string(&conv->output[0], bnode->output[0]);
        if (st == AIM_OK) {
            onnx__node_proto__free_unpacked(bnode, NULL);
            memmove(&c->g->node[i], &c->g->node[i + 1], (c->g->n_node - i - 1) * sizeof(void *));
            c->g->n_node--;
            *done = true;
        }
    }
    bn_free(&p);
    return st;
}

aim_status aim_compile_fold_bn(aim_compile_ctx *c) {
    for (size_t i = 0; i < c->g->n_node;) {
        const Onnx__NodeProto *n = c->g->node[i];
        bool done = false;
        if (strcmp(n->op_type, "BatchNormalization") == 0 && (!n->domain || !n->domain[0])) {
            aim_status st = fold_one(c, i, &done);
            if (st != AIM_OK) return st;
        }
        if (done)
            c->bn_folded++;
        else
            i++;
    }
    if (c->bn_folded) aim_quant_graph_prune(c->g);
    return AIM_OK;
}
