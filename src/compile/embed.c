/*
 * embed.c: the compiled model: a copy of the prepared model where the region's nodes are
 * replaced by ONE `AimProgram` node (domain ai.aim, opset import ai.aim 1) carrying the
 * serialized program (attribute `program`, bytes in AttributeProto.s) and the `target`; its
 * inputs and outputs are the region's boundary tensors under their original names, so every
 * other node, and the graph's inputs and outputs, stay exactly as they were. Initializers only
 * the region read are removed; metadata_props gets chip=<target> and aim.compile (a JSON
 * summary).
 */
#include "compile/internal.h"

#include <stdlib.h>
#include <string.h>

#ifndef AIM_VERSION_STRING
#define AIM_VERSION_STRING "0.0.0"
#endif

static aim_status program_node(aim_compile_ctx *c, const uint8_t *prog, size_t size,
                               Onnx__NodeProto **out) {
    const char **in = calloc(c->n_rin + 1, sizeof *in),
               **outs = calloc(c->n_rout + 1, sizeof *outs);
    if (!in || !outs) {
        free(in);
        free(outs);
        return aim_error(AIM_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < c->n_rin; i++)
        in[i] = c->t[c->rin[i]].name;
    for (size_t i = 0; i < c->n_rout; i++)
        outs[i] = c->t[c->rout[i]].name;
    Onnx__NodeProto *n = aim_quant_node_new(AIM_PROGRAM_OP_TYPE, AIM_PROGRAM_DOMAIN,
                                            "aim_program_0", c->n_rin, in, c->n_rout, outs);
    free(in);
    free(outs);
    aim_status st = n ? aim_quant_attr_bytes(n, AIM_PROGRAM_ATTR_PROGRAM, prog, size)
                      : aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st == AIM_OK) st = aim_quant_attr_string(n, AIM_PROGRAM_ATTR_TARGET, c->o->target);
    if (st != AIM_OK && n) onnx__node_proto__free_unpacked(n, NULL);
    *out = st == AIM_OK ? n : NULL;
    return st;
}

/* Removes the region's nodes (same indices as the prepared graph: the copy is exact). */
static void remove_region(aim_compile_ctx *c, Onnx__GraphProto *g) {
    size_t kept = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        if (i < c->n_nodes && c->in_region[i])
            onnx__node_proto__free_unpacked(g->node[i], NULL);
        else
            g->node[kept++] = g->node[i];
    }
    g->n_node = kept;
}

aim_status aim_compile_embed(aim_compile_ctx *c, const uint8_t *prog, size_t size,
                             const char *summary_json, aim_model **out) {
    aim_model *m;
    *out = NULL;
    aim_status st = aim_compile_copy_model(c->m, &m);
    if (st != AIM_OK) return st;
    Onnx__GraphProto *g = aim_model_proto(m)->graph;
    Onnx__NodeProto *node = NULL;
    st = program_node(c, prog, size, &node);
    if (st == AIM_OK) {
        remove_region(c, g);
        st = aim_quant_graph_append(g, node);
    }
    if (st == AIM_OK) st = aim_quant_graph_toposort(g);
    if (st == AIM_OK) aim_quant_graph_prune(g);
    if (st == AIM_OK) st = aim_model_set_opset(m, AIM_PROGRAM_DOMAIN, 1);
    if (st == AIM_OK) st = aim_model_meta_set(m, "chip", c->o->target);
    if (st == AIM_OK) st = aim_model_meta_set(m, "aim.compile", summary_json);
    if (st == AIM_OK) st = aim_model_set_producer(m, "aim", AIM_VERSION_STRING);
    if (st != AIM_OK) {
        aim_model_free(m);
        return aim_error_context(st, "embedding the program");
    }
    *out = m;
    return AIM_OK;
}
