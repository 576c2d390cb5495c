/*
 * test_model.c: unit tests of the model accessors and edits in src/onnx/model.c (header facts,
 * opsets, inputs/outputs, rename, set_shape, initializers, nodes, metadata_props).
 *
 * Each test builds a small model in code (onnx_builder.h) or loads one of Debian's ONNX node
 * test models, edits it, and checks the edit both in memory and after save + reload, so what is
 * asserted is what a file would contain. Failure paths check the status code and that the model
 * is left unchanged.
 */
#define _XOPEN_SOURCE 700
#include "onnx_builder.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define TESTDATA "/usr/share/libonnx-testdata/data/node/"

/* ---- Fixtures ------------------------------------------------------------------------------ */

/* x[1,N,3] + w (initializer, also listed as input) -> t -> Relu -> y, with metadata a=1, b=2. */
static Onnx__ModelProto *base_proto(void) {
    Onnx__ModelProto *p = tb_model();
    tb_opset(p, "com.example", 1);
    Onnx__GraphProto *g = p->graph;
    TB_APPEND(g->input, g->n_input, tb_value("x", AIM_DTYPE_FLOAT, "1,N,3"));
    TB_APPEND(g->input, g->n_input, tb_value("w", AIM_DTYPE_FLOAT, "3"));
    const float w[3] = {1, 2, 3};
    const int64_t wdims[1] = {3};
    TB_APPEND(g->initializer, g->n_initializer,
              tb_tensor("w", AIM_DTYPE_FLOAT, 1, wdims, w, sizeof w));
    TB_APPEND(g->node, g->n_node, tb_node("add", "Add", "x,w", "t"));
    TB_APPEND(g->node, g->n_node, tb_node(NULL, "Relu", "t", "y"));
    TB_APPEND(g->output, g->n_output, tb_value("y", AIM_DTYPE_FLOAT, "1,N,3"));
    TB_APPEND(g->value_info, g->n_value_info, tb_value("t", AIM_DTYPE_FLOAT, NULL));
    tb_meta(p, "a", "1");
    tb_meta(p, "b", "2");
    return p;
}

static aim_model *load_proto(Onnx__ModelProto *p) {
    size_t size;
    uint8_t *bytes = tb_pack(p, &size);
    aim_model *m = NULL;
    assert_int_equal(aim_model_load_memory(bytes, size, NULL, &m), AIM_OK);
    free(bytes);
    return m;
}

static aim_model *load_base(void) {
    return load_proto(base_proto());
}

/* Saves to memory, frees, and loads the bytes back: what a file would hold. */
static aim_model *reload(aim_model *m) {
    uint8_t *bytes;
    size_t size;
    assert_int_equal(aim_model_save_memory(m, &bytes, &size), AIM_OK);
    aim_model_free(m);
    aim_model *again = NULL;
    assert_int_equal(aim_model_load_memory(bytes, size, NULL, &again), AIM_OK);
    free(bytes);
    return again;
}

static aim_model *load_testdata(const char *name) {
    char path[256];
    snprintf(path, sizeof path, TESTDATA "%s/model.onnx", name);
    if (access(path, R_OK) != 0) return NULL;
    aim_model *m = NULL;
    assert_int_equal(aim_model_load(path, &m), AIM_OK);
    return m;
}

/* ---- Counting names across the main graph and subgraphs ------------------------------------ */

typedef struct {
    const char *name;
    size_t count;
    size_t subgraph_count; /* occurrences outside the main graph */
    const Onnx__GraphProto *main;
} name_count;

static void count_in(name_count *c, const Onnx__GraphProto *g, const char *s) {
    if (!s || strcmp(s, c->name) != 0) return;
    c->count++;
    if (g != c->main) c->subgraph_count++;
}

static aim_status count_graph(Onnx__GraphProto *g, void *ctx) {
    name_count *c = ctx;
    for (size_t i = 0; i < g->n_node; i++) {
        for (size_t k = 0; k < g->node[i]->n_input; k++)
            count_in(c, g, g->node[i]->input[k]);
        for (size_t k = 0; k < g->node[i]->n_output; k++)
            count_in(c, g, g->node[i]->output[k]);
    }
    for (size_t i = 0; i < g->n_input; i++)
        count_in(c, g, g->input[i]->name);
    for (size_t i = 0; i < g->n_output; i++)
        count_in(c, g, g->output[i]->name);
    for (size_t i = 0; i < g->n_value_info; i++)
        count_in(c, g, g->value_info[i]->name);
    for (size_t i = 0; i < g->n_initializer; i++)
        count_in(c, g, g->initializer[i]->name);
    return AIM_OK;
}

static name_count count_name(const aim_model *m, const char *name) {
    name_count c = {.name = name, .main = aim_model_proto(m)->graph};
    aim_onnx_walk_graphs(aim_model_proto(m), count_graph, &c);
    return c;
}

/* ---- Header facts -------------------------------------------------------------------------- */

static void test_header_facts(void **state) {
    (void)state;
    aim_model *m = load_base();
    assert_int_equal(aim_model_ir_version(m), 8);
    assert_string_equal(aim_model_producer_name(m), "");
    assert_string_equal(aim_model_producer_version(m), "");
    assert_string_equal(aim_model_graph_name(m), "main");
    assert_string_equal(aim_model_doc_string(m), "");

    assert_int_equal(aim_model_set_producer(m, "aim", "0.1.0"), AIM_OK);
    assert_int_equal(aim_model_set_producer(m, "aim", "0.2.0"), AIM_OK); /* replaces */
    assert_int_equal(aim_model_set_doc_string(m, "{\"means\": [0, 0, 0]}"), AIM_OK);
    assert_int_equal(aim_model_set_producer(m, NULL, "1"), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_set_producer(m, "x", NULL), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_set_doc_string(m, NULL), AIM_ERR_INVALID_ARG);
    assert_string_equal(aim_model_producer_name(m), "aim"); /* failures changed nothing */

    m = reload(m);
    assert_string_equal(aim_model_producer_name(m), "aim");
    assert_string_equal(aim_model_producer_version(m), "0.2.0");
    assert_string_equal(aim_model_doc_string(m), "{\"means\": [0, 0, 0]}");
    assert_int_equal(aim_model_set_doc_string(m, ""), AIM_OK);
    m = reload(m);
    assert_string_equal(aim_model_doc_string(m), "");
    aim_model_free(m);
}

/* ---- Opsets -------------------------------------------------------------------------------- */

static void test_opsets(void **state) {
    (void)state;
    aim_model *m = load_base();
    assert_int_equal(aim_model_opset_count(m), 2);
    assert_string_equal(aim_model_opset_domain(m, 0), "");
    assert_int_equal(aim_model_opset_version(m, 0), 13);
    assert_string_equal(aim_model_opset_domain(m, 1), "com.example");
    assert_null(aim_model_opset_domain(m, 2));
    assert_int_equal(aim_model_opset_version(m, 2), -1);
    assert_int_equal(aim_model_opset_for(m, ""), 13);
    assert_int_equal(aim_model_opset_for(m, "ai.onnx"), 13);
    assert_int_equal(aim_model_opset_for(m, "com.example"), 1);
    assert_int_equal(aim_model_opset_for(m, "com.other"), -1);
    assert_int_equal(aim_model_opset_for(m, NULL), -1);

    assert_int_equal(aim_model_set_opset(m, "ai.onnx", 17), AIM_OK); /* updates "" */
    assert_int_equal(aim_model_opset_count(m), 2);
    assert_int_equal(aim_model_set_opset(m, "com.hailo", 1), AIM_OK); /* appends */
    assert_int_equal(aim_model_set_opset(m, "com.example", 3), AIM_OK);
    assert_int_equal(aim_model_set_opset(m, "x", 0), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_set_opset(m, NULL, 1), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_opset_count(m), 3);

    m = reload(m);
    assert_int_equal(aim_model_opset_for(m, ""), 17);
    assert_int_equal(aim_model_opset_for(m, "com.hailo"), 1);
    assert_int_equal(aim_model_opset_for(m, "com.example"), 3);
    assert_string_equal(aim_model_opset_domain(m, 2), "com.hailo");
    aim_model_free(m);
}

static void test_opset_default_domain_appended(void **state) {
    (void)state;
    Onnx__ModelProto *p = tb_model();
    onnx__operator_set_id_proto__free_unpacked(p->opset_import[0], NULL);
    p->n_opset_import = 0; /* no opset at all */
    aim_model *m = load_proto(p);
    assert_int_equal(aim_model_opset_for(m, ""), -1);
    assert_int_equal(aim_model_set_opset(m, "ai.onnx", 11), AIM_OK);
    m = reload(m);
    assert_int_equal(aim_model_opset_count(m), 1);
    assert_string_equal(aim_model_opset_domain(m, 0), ""); /* stored as the canonical "" */
    assert_int_equal(aim_model_opset_for(m, "ai.onnx"), 11);
    aim_model_free(m);
}

/* ---- Inputs and outputs -------------------------------------------------------------------- */

static void test_inputs_outputs(void **state) {
    (void)state;
    aim_model *m = load_base();
    aim_value_info vi;
    assert_int_equal(aim_model_input_count(m), 1); /* w is an initializer */
    assert_int_equal(aim_model_input(m, 0, &vi), AIM_OK);
    assert_string_equal(vi.name, "x");
    assert_int_equal(vi.dtype, AIM_DTYPE_FLOAT);
    assert_int_equal(vi.rank, 3);
    assert_int_equal(vi.dims[0].value, 1);
    assert_null(vi.dims[0].param);
    assert_int_equal(vi.dims[1].value, -1);
    assert_string_equal(vi.dims[1].param, "N");
    assert_int_equal(vi.dims[2].value, 3);
    assert_int_equal(aim_model_input(m, 1, &vi), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_input(m, 0, NULL), AIM_ERR_INVALID_ARG);

    assert_int_equal(aim_model_output_count(m), 1);
    assert_int_equal(aim_model_output(m, 0, &vi), AIM_OK);
    assert_string_equal(vi.name, "y");
    assert_int_equal(vi.rank, 3);
    assert_int_equal(aim_model_output(m, 1, &vi), AIM_ERR_INVALID_ARG);
    assert_non_null(strstr(aim_last_error(), "out of range"));
    aim_model_free(m);
}

static void test_input_kinds(void **state) {
    (void)state;
    Onnx__ModelProto *p = tb_model();
    Onnx__GraphProto *g = p->graph;
    TB_APPEND(g->input, g->n_input, tb_value_sequence("seq"));
    TB_APPEND(g->input, g->n_input, tb_value("big", AIM_DTYPE_FLOAT, "1,1,1,1,1,1,1,1,1"));
    TB_APPEND(g->input, g->n_input, tb_value("noshape", AIM_DTYPE_UINT8, NULL));
    TB_APPEND(g->input, g->n_input, tb_value_untyped("untyped"));
    TB_APPEND(g->input, g->n_input, tb_value("scalar", AIM_DTYPE_INT64, ""));
    aim_model *m = load_proto(p);
    aim_value_info vi;
    assert_int_equal(aim_model_input_count(m), 5);
    assert_int_equal(aim_model_input(m, 0, &vi), AIM_OK);
    assert_string_equal(vi.name, "seq");
    assert_int_equal(vi.dtype, 0);
    assert_int_equal(vi.rank, -1);
    assert_int_equal(aim_model_input(m, 1, &vi), AIM_ERR_UNSUPPORTED);
    assert_non_null(strstr(aim_last_error(), "big"));
    assert_int_equal(aim_model_input(m, 2, &vi), AIM_OK);
    assert_int_equal(vi.dtype, AIM_DTYPE_UINT8);
    assert_int_equal(vi.rank, -1);
    assert_int_equal(aim_model_input(m, 3, &vi), AIM_OK);
    assert_int_equal(vi.dtype, 0);
    assert_int_equal(vi.rank, -1);
    assert_int_equal(aim_model_input(m, 4, &vi), AIM_OK);
    assert_int_equal(vi.dtype, AIM_DTYPE_INT64);
    assert_int_equal(vi.rank, 0);
    aim_model_free(m);
}

/* ---- Rename -------------------------------------------------------------------------------- */

static void test_rename_main_graph(void **state) {
    (void)state;
    aim_model *m = load_base();
    aim_node_info node;
    assert_int_equal(aim_model_rename(m, "x", "image-"), AIM_OK);
    assert_int_equal(aim_model_rename(m, "w", "weights"), AIM_OK);
    assert_int_equal(aim_model_rename(m, "t", "sum"), AIM_OK);
    assert_int_equal(aim_model_rename(m, "y", "bboxes-format:xyxysc;0:Person"), AIM_OK);
    assert_int_equal(aim_model_rename(m, "sum", "sum"), AIM_OK); /* no-op */

    m = reload(m);
    assert_int_equal(count_name(m, "x").count, 0);
    assert_int_equal(count_name(m, "image-").count, 2);  /* input + node input */
    assert_int_equal(count_name(m, "weights").count, 3); /* input, initializer, node input */
    assert_int_equal(count_name(m, "sum").count, 3);     /* node out, node in, value_info */
    assert_int_equal(aim_model_node(m, 0, &node), AIM_OK);
    assert_string_equal(node.inputs[0], "image-");
    assert_string_equal(node.inputs[1], "weights");
    assert_string_equal(node.outputs[0], "sum");
    aim_value_info vi;
    assert_int_equal(aim_model_output(m, 0, &vi), AIM_OK);
    assert_string_equal(vi.name, "bboxes-format:xyxysc;0:Person");
    assert_int_equal(aim_model_input_count(m), 1); /* weights is still an initializer */
    aim_tensor_info ti;
    assert_int_equal(aim_model_initializer(m, 0, &ti), AIM_OK);
    assert_string_equal(ti.name, "weights");
    aim_model_free(m);
}

static void test_rename_refusals(void **state) {
    (void)state;
    aim_model *m = load_base();
    assert_int_equal(aim_model_rename(m, "x", "y"), AIM_ERR_INVALID_ARG); /* y exists */
    assert_non_null(strstr(aim_last_error(), "'y'"));
    assert_int_equal(aim_model_rename(m, "x", "t"), AIM_ERR_INVALID_ARG); /* t is internal */
    assert_int_equal(aim_model_rename(m, "nope", "z"), AIM_ERR_NOT_FOUND);
    assert_non_null(strstr(aim_last_error(), "nope"));
    assert_int_equal(aim_model_rename(m, "", "z"), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_rename(m, "x", ""), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_rename(m, NULL, "z"), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_rename(m, "x", NULL), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_rename(NULL, "x", "z"), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_rename(m, "add", "z"), AIM_ERR_NOT_FOUND); /* node names differ */
    /* nothing changed */
    assert_int_equal(count_name(m, "x").count, 2);
    assert_int_equal(count_name(m, "y").count, 2);
    aim_model_free(m);
}

static void test_rename_in_if_subgraphs(void **state) {
    (void)state;
    aim_model *m = load_testdata("test_if");
    if (!m) skip();
    name_count before = count_name(m, "then_out");
    assert_true(before.subgraph_count >= 2); /* Constant output and then_branch output */
    assert_int_equal(aim_model_rename(m, "then_out", "then_value"), AIM_OK);
    assert_int_equal(aim_model_rename(m, "res", "else_out"), AIM_ERR_INVALID_ARG); /* subgraph */
    m = reload(m);
    assert_int_equal(count_name(m, "then_out").count, 0);
    name_count after = count_name(m, "then_value");
    assert_int_equal(after.count, before.count);
    assert_int_equal(after.subgraph_count, before.subgraph_count);
    aim_model_free(m);
}

static void test_rename_in_loop_body(void **state) {
    (void)state;
    aim_model *m = load_testdata("test_loop11");
    if (!m) skip();
    /* y_in is a body input, used by the body's Slice: both must follow. */
    name_count before = count_name(m, "y_in");
    assert_true(before.subgraph_count >= 2);
    assert_int_equal(aim_model_rename(m, "y_in", "y_state"), AIM_OK);
    assert_int_equal(aim_model_rename(m, "cond", "cond_outer"), AIM_OK); /* main input */
    m = reload(m);
    assert_int_equal(count_name(m, "y_in").count, 0);
    assert_int_equal(count_name(m, "y_state").count, before.count);
    aim_value_info vi;
    assert_int_equal(aim_model_input(m, 1, &vi), AIM_OK);
    assert_string_equal(vi.name, "cond_outer");
    aim_node_info node;
    assert_int_equal(aim_model_node(m, 0, &node), AIM_OK);
    assert_string_equal(node.op_type, "Loop");
    assert_string_equal(node.inputs[1], "cond_outer");
    aim_model_free(m);
}

/* ---- Static shapes ------------------------------------------------------------------------- */

static void test_set_shape(void **state) {
    (void)state;
    aim_model *m = load_base();
    const int64_t nchw[4] = {1, 3, 224, 224};
    const int64_t pair[2] = {20, 6};
    assert_int_equal(aim_model_set_shape(m, "x", 4, nchw), AIM_OK);
    assert_int_equal(aim_model_set_shape(m, "y", 2, pair), AIM_OK);
    assert_int_equal(aim_model_set_shape(m, "t", 2, pair), AIM_OK); /* value_info, no shape */

    m = reload(m);
    aim_value_info vi;
    assert_int_equal(aim_model_input(m, 0, &vi), AIM_OK);
    assert_int_equal(vi.rank, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(vi.dims[i].value, nchw[i]);
        assert_null(vi.dims[i].param);
    }
    assert_int_equal(vi.dtype, AIM_DTYPE_FLOAT); /* element type kept */
    assert_int_equal(aim_model_output(m, 0, &vi), AIM_OK);
    assert_int_equal(vi.rank, 2);
    assert_int_equal(vi.dims[0].value, 20);
    const Onnx__GraphProto *g = aim_model_proto(m)->graph;
    const Onnx__TensorShapeProto *shape = g->value_info[0]->type->tensor_type->shape;
    assert_non_null(shape);
    assert_int_equal(shape->n_dim, 2);
    assert_int_equal(shape->dim[1]->value_case,
                     ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE);
    assert_int_equal(shape->dim[1]->dim_value, 6);
    aim_model_free(m);
}

static void test_set_shape_refusals(void **state) {
    (void)state;
    aim_model *m = load_base();
    const int64_t bad[2] = {1, -3};
    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(aim_model_set_shape(m, "x", 2, bad), AIM_ERR_INVALID_ARG);
    assert_non_null(strstr(aim_last_error(), "'x'"));
    assert_int_equal(aim_model_set_shape(m, "x", 9, nine), AIM_ERR_UNSUPPORTED);
    assert_int_equal(aim_model_set_shape(m, "x", -1, nine), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_set_shape(m, "x", 2, NULL), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_set_shape(m, "nope", 1, nine), AIM_ERR_NOT_FOUND);
    assert_int_equal(aim_model_set_shape(m, "w", 1, nine), AIM_OK); /* graph input w */
    assert_int_equal(aim_model_set_shape(NULL, "x", 1, nine), AIM_ERR_INVALID_ARG);
    aim_value_info vi;
    assert_int_equal(aim_model_input(m, 0, &vi), AIM_OK); /* x unchanged */
    assert_int_equal(vi.rank, 3);
    assert_string_equal(vi.dims[1].param, "N");
    aim_model_free(m);
}

static void test_set_shape_types(void **state) {
    (void)state;
    Onnx__ModelProto *p = tb_model();
    Onnx__GraphProto *g = p->graph;
    TB_APPEND(g->input, g->n_input, tb_value_untyped("mask-"));
    TB_APPEND(g->input, g->n_input, tb_value_sequence("seq"));
    TB_APPEND(g->output, g->n_output, tb_value_untyped("mask-")); /* same name twice */
    aim_model *m = load_proto(p);
    const int64_t hw[2] = {640, 640};
    assert_int_equal(aim_model_set_shape(m, "seq", 2, hw), AIM_ERR_UNSUPPORTED);
    assert_int_equal(aim_model_set_shape(m, "mask-", 2, hw), AIM_OK);
    assert_int_equal(aim_model_set_shape(m, "mask-", 0, NULL), AIM_OK); /* scalar, replaces */
    assert_int_equal(aim_model_set_shape(m, "mask-", 2, hw), AIM_OK);
    m = reload(m);
    aim_value_info vi;
    assert_int_equal(aim_model_input(m, 0, &vi), AIM_OK);
    assert_int_equal(vi.rank, 2);
    assert_int_equal(vi.dims[1].value, 640);
    assert_int_equal(vi.dtype, 0); /* no element type was known */
    assert_int_equal(aim_model_output(m, 0, &vi), AIM_OK);
    assert_int_equal(vi.rank, 2);
    assert_int_equal(aim_model_input(m, 1, &vi), AIM_OK);
    assert_int_equal(vi.rank, -1);
    aim_model_free(m);
}

/* ---- Initializers -------------------------------------------------------------------------- */

static void test_initializers(void **state) {
    (void)state;
    aim_model *m = load_base();
    aim_tensor_info ti;
    assert_int_equal(aim_model_initializer_count(m), 1);
    assert_int_equal(aim_model_initializer(m, 0, &ti), AIM_OK);
    assert_string_equal(ti.name, "w");
    assert_int_equal(ti.dtype, AIM_DTYPE_FLOAT);
    assert_int_equal(ti.rank, 1);
    assert_int_equal(ti.dims[0], 3);
    assert_int_equal(ti.element_count, 3);
    assert_int_equal(ti.byte_size, 12);
    assert_false(ti.external);
    assert_int_equal(aim_model_initializer(m, 1, &ti), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_initializer(m, 0, NULL), AIM_ERR_INVALID_ARG);

    assert_int_equal(aim_model_initializer_remove(m, "nope"), AIM_ERR_NOT_FOUND);
    assert_non_null(strstr(aim_last_error(), "nope"));
    assert_int_equal(aim_model_initializer_remove(m, "x"), AIM_ERR_NOT_FOUND); /* input only */
    assert_int_equal(aim_model_initializer_remove(m, NULL), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_initializer_remove(m, "w"), AIM_OK);
    assert_int_equal(aim_model_initializer_count(m), 0);
    m = reload(m);
    assert_int_equal(aim_model_initializer_count(m), 0);
    assert_int_equal(aim_model_proto(m)->graph->n_input, 1); /* graph input w went too */
    assert_int_equal(aim_model_input_count(m), 1);
    assert_int_equal(count_name(m, "w").count, 1); /* only the Add's input reference is left */
    aim_model_free(m);
}

/* Three external tensors in one file: two initializers and a Constant node's value. */
static char *write_external_model(void) {
    char *dir = tb_tempdir();
    const float data[6] = {1, 2, 3, 4, 5, 6};
    assert_int_equal(tb_write_bytes(dir, "weights.bin", data, sizeof data), 0);
    Onnx__ModelProto *p = tb_model();
    Onnx__GraphProto *g = p->graph;
    const int64_t two[1] = {2};
    TB_APPEND(g->input, g->n_input, tb_value("e1", AIM_DTYPE_FLOAT, "2"));
    TB_APPEND(g->initializer, g->n_initializer,
              tb_tensor_external("e1", AIM_DTYPE_FLOAT, 1, two, "weights.bin", "0", "8"));
    TB_APPEND(g->initializer, g->n_initializer,
              tb_tensor_external("e2", AIM_DTYPE_FLOAT, 1, two, "weights.bin", "8", "8"));
    Onnx__NodeProto *c = tb_node("c", "Constant", NULL, "e3");
    tb_attr(c, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR)->t =
        tb_tensor_external("e3", AIM_DTYPE_FLOAT, 1, two, "weights.bin", "16", "8");
    TB_APPEND(g->node, g->n_node, c);
    TB_APPEND(g->node, g->n_node, tb_node("sum", "Sum", "e1,e2,e3", "out"));
    TB_APPEND(g->output, g->n_output, tb_value("out", AIM_DTYPE_FLOAT, "2"));
    char *path = aim_path_join(dir, "model.onnx");
    assert_int_equal(tb_write(p, path), 0);
    free(path);
    return dir;
}

static void assert_floats(const aim_model *m, const Onnx__TensorProto *t, float a, float b) {
    void *data;
    size_t size;
    assert_int_equal(aim_onnx_tensor_decode(m, t, &data, &size), AIM_OK);
    assert_int_equal(size, 8);
    const float *f = data;
    assert_true(f[0] == a && f[1] == b);
    free(data);
}

static void test_external_remove(void **state) {
    (void)state;
    char *dir = write_external_model();
    char *path = aim_path_join(dir, "model.onnx");
    char *out = aim_path_join(dir, "out.onnx");
    aim_model *m = NULL;
    assert_int_equal(aim_model_load(path, &m), AIM_OK);
    assert_int_equal(m->blob_count, 3);
    aim_tensor_info ti;
    assert_int_equal(aim_model_initializer(m, 0, &ti), AIM_OK);
    assert_true(ti.external);
    assert_int_equal(ti.byte_size, 8);

    assert_int_equal(aim_model_initializer_remove(m, "e1"), AIM_OK);
    assert_int_equal(m->blob_count, 2);
    assert_null(aim_model_external(m, NULL));
    assert_int_equal(aim_model_node_remove(m, 0), AIM_OK); /* the Constant with e3 */
    assert_int_equal(m->blob_count, 1);
    assert_ptr_equal(m->blobs[0].tensor, aim_model_proto(m)->graph->initializer[0]);
    assert_int_equal(aim_model_save(m, out), AIM_OK);
    aim_model_free(m);

    assert_int_equal(aim_model_load(out, &m), AIM_OK);
    assert_int_equal(aim_model_initializer_count(m), 1);
    assert_int_equal(aim_model_input_count(m), 0);
    assert_int_equal(aim_model_node_count(m), 1);
    assert_int_equal(m->blob_count, 1);
    assert_floats(m, aim_model_proto(m)->graph->initializer[0], 3, 4);
    aim_model_free(m);
    free(out);
    free(path);
    tb_rmtree(dir);
    free(dir);
}

/* ---- Nodes --------------------------------------------------------------------------------- */

static void test_nodes(void **state) {
    (void)state;
    aim_model *m = load_base();
    aim_node_info n;
    assert_int_equal(aim_model_node_count(m), 2);
    assert_int_equal(aim_model_node(m, 0, &n), AIM_OK);
    assert_string_equal(n.name, "add");
    assert_string_equal(n.op_type, "Add");
    assert_string_equal(n.domain, "");
    assert_int_equal(n.input_count, 2);
    assert_string_equal(n.inputs[0], "x");
    assert_string_equal(n.inputs[1], "w");
    assert_int_equal(n.output_count, 1);
    assert_string_equal(n.outputs[0], "t");
    assert_int_equal(aim_model_node(m, 1, &n), AIM_OK);
    assert_string_equal(n.name, "");
    assert_int_equal(aim_model_node(m, 2, &n), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_node(m, 0, NULL), AIM_ERR_INVALID_ARG);

    assert_int_equal(aim_model_node_set_name(m, 1, "relu"), AIM_OK);
    assert_int_equal(aim_model_node_set_name(m, 0, "add_renamed"), AIM_OK);
    assert_int_equal(aim_model_node_set_name(m, 2, "x"), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_node_set_name(m, 0, NULL), AIM_ERR_INVALID_ARG);
    m = reload(m);
    assert_int_equal(aim_model_node(m, 1, &n), AIM_OK);
    assert_string_equal(n.name, "relu");

    assert_int_equal(aim_model_node_remove(m, 2), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_node_remove(m, 0), AIM_OK);
    assert_int_equal(aim_model_node_count(m), 1);
    m = reload(m);
    assert_int_equal(aim_model_node_count(m), 1);
    assert_int_equal(aim_model_node(m, 0, &n), AIM_OK);
    assert_string_equal(n.op_type, "Relu");
    assert_string_equal(n.name, "relu");
    assert_int_equal(aim_model_node_remove(m, 0), AIM_OK);
    assert_int_equal(aim_model_node_count(m), 0);
    m = reload(m);
    assert_int_equal(aim_model_node_count(m), 0);
    aim_model_free(m);
}

/* ---- metadata_props ------------------------------------------------------------------------ */

static void test_metadata(void **state) {
    (void)state;
    aim_model *m = load_base();
    assert_int_equal(aim_model_meta_count(m), 2);
    assert_string_equal(aim_model_meta_key(m, 0), "a");
    assert_string_equal(aim_model_meta_value(m, 1), "2");
    assert_null(aim_model_meta_key(m, 2));
    assert_null(aim_model_meta_value(m, 2));
    assert_string_equal(aim_model_meta_get(m, "b"), "2");
    assert_null(aim_model_meta_get(m, "chip"));
    assert_null(aim_model_meta_get(m, NULL));

    assert_int_equal(aim_model_meta_set(m, "a", "replaced"), AIM_OK);
    assert_int_equal(aim_model_meta_set(m, "chip", "hailo-8l"), AIM_OK);
    assert_int_equal(aim_model_meta_set(m, "empty", ""), AIM_OK);
    assert_int_equal(aim_model_meta_set(m, "", "v"), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_meta_set(m, "k", NULL), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_meta_set(m, NULL, "v"), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_meta_unset(m, "b"), AIM_OK);
    assert_int_equal(aim_model_meta_unset(m, "b"), AIM_ERR_NOT_FOUND);
    assert_non_null(strstr(aim_last_error(), "'b'"));
    assert_int_equal(aim_model_meta_unset(m, ""), AIM_ERR_INVALID_ARG);

    m = reload(m);
    assert_int_equal(aim_model_meta_count(m), 3);
    assert_string_equal(aim_model_meta_key(m, 0), "a");
    assert_string_equal(aim_model_meta_value(m, 0), "replaced");
    assert_string_equal(aim_model_meta_get(m, "chip"), "hailo-8l");
    assert_string_equal(aim_model_meta_get(m, "empty"), "");
    assert_null(aim_model_meta_get(m, "b"));
    aim_model_free(m);
}

static void test_metadata_duplicate_keys(void **state) {
    (void)state;
    Onnx__ModelProto *p = tb_model();
    tb_meta(p, "chip", "hailo8");
    tb_meta(p, "other", "x");
    tb_meta(p, "chip", "hailo8l");
    aim_model *m = load_proto(p);
    assert_int_equal(aim_model_meta_unset(m, "chip"), AIM_OK); /* every copy goes */
    m = reload(m);
    assert_int_equal(aim_model_meta_count(m), 1);
    assert_string_equal(aim_model_meta_key(m, 0), "other");
    aim_model_free(m);
}

/* ---- NULL handles -------------------------------------------------------------------------- */

static void test_null_model(void **state) {
    (void)state;
    aim_value_info vi;
    aim_tensor_info ti;
    aim_node_info ni;
    assert_int_equal(aim_model_ir_version(NULL), 0);
    assert_string_equal(aim_model_producer_name(NULL), "");
    assert_string_equal(aim_model_producer_version(NULL), "");
    assert_string_equal(aim_model_graph_name(NULL), "");
    assert_string_equal(aim_model_doc_string(NULL), "");
    assert_int_equal(aim_model_set_producer(NULL, "a", "b"), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_set_doc_string(NULL, "a"), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_opset_count(NULL), 0);
    assert_null(aim_model_opset_domain(NULL, 0));
    assert_int_equal(aim_model_opset_version(NULL, 0), -1);
    assert_int_equal(aim_model_opset_for(NULL, ""), -1);
    assert_int_equal(aim_model_set_opset(NULL, "", 1), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_input_count(NULL), 0);
    assert_int_equal(aim_model_input(NULL, 0, &vi), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_output_count(NULL), 0);
    assert_int_equal(aim_model_output(NULL, 0, &vi), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_initializer_count(NULL), 0);
    assert_int_equal(aim_model_initializer(NULL, 0, &ti), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_initializer_remove(NULL, "w"), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_node_count(NULL), 0);
    assert_int_equal(aim_model_node(NULL, 0, &ni), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_node_set_name(NULL, 0, "n"), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_node_remove(NULL, 0), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_meta_count(NULL), 0);
    assert_null(aim_model_meta_key(NULL, 0));
    assert_null(aim_model_meta_value(NULL, 0));
    assert_null(aim_model_meta_get(NULL, "k"));
    assert_int_equal(aim_model_meta_set(NULL, "k", "v"), AIM_ERR_INVALID_ARG);
    assert_int_equal(aim_model_meta_unset(NULL, "k"), AIM_ERR_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_facts),
        cmocka_unit_test(test_opsets),
        cmocka_unit_test(test_opset_default_domain_appended),
        cmocka_unit_test(test_inputs_outputs),
        cmocka_unit_test(test_input_kinds),
        cmocka_unit_test(test_rename_main_graph),
        cmocka_unit_test(test_rename_refusals),
        cmocka_unit_test(test_rename_in_if_subgraphs),
        cmocka_unit_test(test_rename_in_loop_body),
        cmocka_unit_test(test_set_shape),
        cmocka_unit_test(test_set_shape_refusals),
        cmocka_unit_test(test_set_shape_types),
        cmocka_unit_test(test_initializers),
        cmocka_unit_test(test_external_remove),
        cmocka_unit_test(test_nodes),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_metadata_duplicate_keys),
        cmocka_unit_test(test_null_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
