/*
 * graph.c: the compiler's view of the prepared graph: one entry per tensor with its producer,
 * consumers and (from one fp32 "probe" run on the first image with every node output exposed)
 * its element type and static shape; plus sessions over copies of the model whose outputs are
 * chosen tensors, and running them on a calibration image.
 */
#include "compile/internal.h"

#include "graph/tensor.h"

#include <stdlib.h>
#include <string.h>

float *aim_compile_read_floats(const aim_compile_ctx *c, const char *name, size_t count) {
    Onnx__TensorProto *t = aim_quant_graph_initializer(c->g, name);
    void *data = NULL;
    size_t bytes = 0;
    if (!t || t->data_type != AIM_DTYPE_FLOAT || aim_onnx_tensor_decode(c->m, t, &data, &bytes)) {
        aim_error_clear();
        return NULL;
    }
    if (bytes == count * sizeof(float)) return data;
    free(data);
    return NULL;
}

int aim_compile_tensor_find(const aim_compile_ctx *c, const char *name) {
    for (size_t i = 0; i < c->n_t; i++)
        if (strcmp(c->t[i].name, name) == 0) return (int)i;
    return -1;
}

static int tensor_add(aim_compile_ctx *c, const char *name) {
    int k = aim_compile_tensor_find(c, name);
    if (k >= 0) return k;
    aim_compile_tensor *grown = realloc(c->t, (c->n_t + 1) * sizeof *grown);
    if (!grown) return -1;
    c->t = grown;
    memset(&c->t[c->n_t], 0, sizeof c->t[c->n_t]);
    c->t[c->n_t].name = name;
    c->t[c->n_t].producer = -1;
    c->t[c->n_t].rank = -1;
    return (int)c->n_t++;
}

static aim_status add_consumer(aim_compile_tensor *t, int node) {
    int *grown = realloc(t->consumers, (t->n_consumers + 1) * sizeof *grown);
    if (!grown) return aim_error(AIM_ERR_NOMEM, "out of memory");
    t->consumers = grown;
    t->consumers[t->n_consumers++] = node;
    return AIM_OK;
}

static aim_status node_tensors(aim_compile_ctx *c, size_t i) {
    const Onnx__NodeProto *n = c->g->node[i];
    c->nin[i] = malloc((n->n_input + 1) * sizeof **c->nin);
    c->nout[i] = malloc((n->n_output + 1) * sizeof **c->nout);
    if (!c->nin[i] || !c->nout[i]) return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < n->n_output; k++) {
        int t = n->output[k][0] ? tensor_add(c, n->output[k]) : -1;
        if (n->output[k][0] && t < 0) return aim_error(AIM_ERR_NOMEM, "out of memory");
        if (t >= 0) c->t[t].producer = (int)i;
        c->nout[i][k] = t;
    }
    return AIM_OK;
}

static aim_status node_inputs(aim_compile_ctx *c, size_t i) {
    const Onnx__NodeProto *n = c->g->node[i];
    for (size_t k = 0; k < n->n_input; k++) {
        int t = n->input[k][0] ? tensor_add(c, n->input[k]) : -1;
        if (n->input[k][0] && t < 0) return aim_error(AIM_ERR_NOMEM, "out of memory");
        c->nin[i][k] = t;
        aim_status st = t >= 0 ? add_consumer(&c->t[t], (int)i) : AIM_OK;
        if (st != AIM_OK) return st;
    }
    return AIM_OK;
}

aim_status aim_compile_graph_build(aim_compile_ctx *c) {
    c->n_nodes = c->g->n_node;
    c->nin = calloc(c->n_nodes + 1, sizeof *c->nin);
    c->nout = calloc(c->n_nodes + 1, sizeof *c->nout);
    c->why = calloc(c->n_nodes + 1, sizeof *c->why);
    c->in_region = calloc(c->n_nodes + 1, sizeof *c->in_region);
    c->grp = calloc(c->n_nodes + 1, sizeof *c->grp);
    if (!c->nin || !c->nout || !c->why || !c->in_region || !c->grp)
        return aim_error(AIM_ERR_NOMEM, "out of memory");
    aim_status st = AIM_OK;
    for (size_t i = 0; i < c->n_nodes && st == AIM_OK; i++)
        st = node_tensors(c, i);
    for (size_t i = 0; i < c->n_nodes && st == AIM_OK; i++)
        st = node_inputs(c, i);
    for (size_t i = 0; i < c->g->n_initializer && st == AIM_OK; i++) {
        int t = aim_compile_tensor_find(c, c->g->initializer[i]->name);
        if (t >= 0) c->t[t].initializer = true;
    }
    for (size_t i = 0; i < c->g->n_input; i++) {
        int t = aim_compile_tensor_find(c, c->g->input[i]->name);
        if (t >= 0) c->t[t].graph_input = true;
    }
    for (size_t i = 0; i < c->g->n_output; i++) {
        int t = aim_compile_tensor_find(c, c->g->output[i]->name);
        if (t >= 0) c->t[t].graph_output = true;
    }
    return st;
}

void aim_compile_graph_free(aim_compile_ctx *c) {
    for (size_t i = 0; i < c->n_t; i++)
        free(c->t[i].consumers);
    free(c->t);
    for (size_t i = 0; c->nin && i < c->n_nodes; i++)
        free(c->nin[i]);
    for (size_t i = 0; c->nout && i < c->n_nodes; i++)
        free(c->nout[i]);
    free(c->nin);
    free(c->nout);
    free(c->why);
    free(c->in_region);
    free(c->grp);
    free(c->rin);
    free(c->rout);
    free(c->acts);
}

/* ---- Sessions with chosen outputs ---------------------------------------------------------- */

static aim_status set_outputs(aim_model *m, const char *const *names, size_t n) {
    Onnx__GraphProto *g = aim_model_proto(m)->graph;
    for (size_t i = 0; i < g->n_output; i++)
        onnx__value_info_proto__free_unpacked(g->output[i], NULL);
    free(g->output);
    g->n_output = 0;
    g->output = calloc(n + 1, sizeof *g->output);
    if (!g->output) return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        Onnx__ValueInfoProto *v = malloc(sizeof *v);
        if (!v) return aim_error(AIM_ERR_NOMEM, "out of memory");
        onnx__value_info_proto__init(v);
        g->output[g->n_output++] = v;
        if (!(v->name = aim_strdup(names[i]))) return aim_error(AIM_ERR_NOMEM, "out of memory");
    }
    return AIM_OK;
}

aim_status aim_compile_runner_open(aim_compile_ctx *c, const aim_model *base,
                                   const char *const *names, size_t n, aim_compile_runner *r) {
    memset(r, 0, sizeof *r);
    aim_status st = aim_compile_copy_model(base, &r->m);
    if (st == AIM_OK) st = set_outputs(r->m, names, n);
    if (st == AIM_OK) {
        aim_session_options so = {.threads = c->o->threads, .reference_only = false};
        st = aim_session_create(r->m, &so, &r->s);
    }
    if (st != AIM_OK) aim_compile_runner_close(r);
    return st;
}

void aim_compile_runner_close(aim_compile_runner *r) {
    aim_session_free(r->s);
    aim_model_free(r->m); /* after the session, which reads it */
    memset(r, 0, sizeof *r);
}

void aim_compile_free_outputs(aim_tensor *outs, size_t n) {
    for (size_t i = 0; outs && i < n; i++) {
        free(outs[i].data);
        outs[i].data = NULL;
    }
}

/* A neutral value for an input the images do not feed (nms_sensitivity-, mask-, ...): 0.5 for
 * floats (inside any 0..1 threshold), zero otherwise; symbolic dims become 1. */
static aim_status neutral_input(const aim_session *s, size_t i, aim_tensor *t) {
    aim_session_input_info(s, i, t);
    for (int d = 0; d < t->rank; d++)
        if (t->dims[d] < 0) t->dims[d] = 1;
    size_t count = aim_tensor_count(t), size = aim_dtype_size(t->dtype);
    t->data = calloc(count ? count : 1, size ? size : 1);
    if (!t->data) return aim_error(AIM_ERR_NOMEM, "out of memory");
    if (t->dtype == AIM_DTYPE_FLOAT)
        for (size_t k = 0; k < count; k++)
            ((float *)t->data)[k] = 0.5f;
    return AIM_OK;
}

aim_status aim_compile_run_image(aim_compile_ctx *c, aim_session *s, size_t image,
                                 aim_tensor *outputs) {
    size_t n = aim_session_input_count(s);
    aim_tensor *in = calloc(n + 1, sizeof *in);
    bool *owned = calloc(n + 1, sizeof *owned);
    aim_status st = in && owned ? AIM_OK : aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == AIM_OK; i++) {
        if (strcmp(aim_session_input_name(s, i), c->image_input) == 0) {
            in[i] = c->images[image];
        } else {
            owned[i] = true;
            st = neutral_input(s, i, &in[i]);
        }
    }
    if (st == AIM_OK) st = aim_session_run(s, in, outputs);
    for (size_t i = 0; in && owned && i < n; i++)
        if (owned[i]) free(in[i].data);
    free(in);
    free(owned);
    return st;
}

/* ---- Probe run ----------------------------------------------------------------------------- */

aim_status aim_compile_graph_probe(aim_compile_ctx *c) {
    const char **names = calloc(c->n_t + 1, sizeof *names);
    int *idx = calloc(c->n_t + 1, sizeof *idx);
    size_t n = 0;
    aim_status st = names && idx ? AIM_OK : aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->n_t && st == AIM_OK; i++) {
        if (c->t[i].producer < 0) continue; /* inputs and initializers: known otherwise */
        idx[n] = (int)i;
        names[n++] = c->t[i].name;
    }
    aim_compile_runner r = {0};
    aim_tensor *outs = calloc(n + 1, sizeof *outs);
    if (st == AIM_OK && !outs) st = aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st == AIM_OK) st = aim_compile_runner_open(c, c->m, names, n, &r);
    if (st == AIM_OK) st = aim_compile_run_image(c, r.s, 0, outs);
    for (size_t k = 0; k < n && st == AIM_OK; k++) {
        aim_compile_tensor *t = &c->t[idx[k]];
        t->dtype = outs[k].dtype;
        t->rank = outs[k].rank;
        memcpy(t->dims, outs[k].dims, sizeof t->dims);
    }
    if (st == AIM_OK) aim_compile_free_outputs(outs, n);
    int img = aim_compile_tensor_find(c, c->image_input);
    if (img >= 0 && st == AIM_OK) { /* graph inputs are not probed: the image gives the shape */
        c->t[img].dtype = c->images[0].dtype;
        c->t[img].rank = c->images[0].rank;
        memcpy(c->t[img].dims, c->images[0].dims, sizeof c->t[img].dims);
    }
    free(outs);
    aim_compile_runner_close(&r);
    free(names);
    free(idx);
    return st == AIM_OK ? st : aim_error_context(st, "probe run of the fp32 model");
}
