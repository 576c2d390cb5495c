/*
 * test_cpu_equiv.c: the fast oneDNN path (src/cpu) against the reference kernels.
 *
 * Each test builds a small model in code, runs it in a session on the fast path and in a
 * reference_only session, and requires every output to agree within rtol 1e-4 / atol 1e-5:
 * both compute in fp32, and only the order of the additions differs (oneDNN blocks the channel
 * reductions). Each test also checks that the nodes it is about really ran on fast kernels, so
 * a silent fallback to the reference cannot pass as equivalence. Nothing here is timed.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "aim/session.h"
#include "cpu/cpu.h"
#include "graph/tensor.h"
#include "onnx_builder.h"

#include <math.h>
#include <pthread.h>

#define RTOL 1e-4
#define ATOL 1e-5

/* ---- Building models ----------------------------------------------------------------------- */

static uint32_t rng_state = 12345;

static float rnd(float scale) { /* deterministic uniform in [-scale, scale] */
    rng_state = rng_state * 1664525u + 1013904223u;
    return scale * ((float)(rng_state >> 8) / (float)(1u << 24) * 2.0f - 1.0f);
}

static int parse_dims(const char *csv, int64_t *dims) {
    int rank = 0;
    for (const char *p = csv; *p;) {
        dims[rank++] = strtoll(p, (char **)&p, 10);
        if (*p == ',') p++;
    }
    return rank;
}

/* A random float initializer of shape `csv`. */
static void add_weight(Onnx__GraphProto *g, const char *name, const char *csv, float scale) {
    int64_t dims[AIM_MAX_RANK];
    int rank = parse_dims(csv, dims);
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= (size_t)dims[i];
    float *data = tb_alloc(n * sizeof *data);
    for (size_t i = 0; i < n; i++)
        data[i] = rnd(scale);
    TB_APPEND(g->initializer, g->n_initializer,
              tb_tensor(name, AIM_DTYPE_FLOAT, (size_t)rank, dims, data, n * sizeof *data));
    free(data);
}

static void add_floats(Onnx__GraphProto *g, const char *name, size_t n, const float *v) {
    int64_t dims[1] = {(int64_t)n};
    TB_APPEND(g->initializer, g->n_initializer,
              tb_tensor(name, AIM_DTYPE_FLOAT, 1, dims, n ? v : NULL, n * sizeof *v));
}

static void add_scalar(Onnx__GraphProto *g, const char *name, float v) {
    TB_APPEND(g->initializer, g->n_initializer,
              tb_tensor(name, AIM_DTYPE_FLOAT, 0, NULL, &v, sizeof v));
}

static Onnx__NodeProto *add_node(Onnx__GraphProto *g, const char *op, const char *in,
                                 const char *out) {
    Onnx__NodeProto *n = tb_node(out, op, in, out);
    TB_APPEND(g->node, g->n_node, n);
    return n;
}

static void attr_ints(Onnx__NodeProto *n, const char *name, const char *csv) {
    Onnx__AttributeProto *a = tb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t v[16];
    int count = parse_dims(csv, v);
    for (int i = 0; i < count; i++)
        TB_APPEND(a->ints, a->n_ints, v[i]);
}

static void attr_int(Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = tb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

static void attr_float(Onnx__NodeProto *n, const char *name, float v) {
    Onnx__AttributeProto *a = tb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

static void attr_str(Onnx__NodeProto *n, const char *name, const char *v) {
    Onnx__AttributeProto *a = tb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.data = (uint8_t *)tb_str(v);
    a->s.len = strlen(v);
}

/* A model with float input "x" of shape `in` and opset `opset`; outputs added by the test. */
static Onnx__ModelProto *model(const char *in, int64_t opset) {
    Onnx__ModelProto *m = tb_model();
    m->opset_import[0]->version = opset;
    TB_APPEND(m->graph->input, m->graph->n_input, tb_value("x", AIM_DTYPE_FLOAT, in));
    return m;
}

static void output(Onnx__ModelProto *m, const char *name) {
    TB_APPEND(m->graph->output, m->graph->n_output, tb_value(name, AIM_DTYPE_FLOAT, NULL));
}

static float conv_weight_scale = 0.5f; /* weights of conv(): uniform in [-scale, scale] */

static Onnx__NodeProto *conv(Onnx__GraphProto *g, const char *in, const char *out, int cin,
                             int cout, int k, int group, bool bias) {
    char w[64], b[64], ins[200], shape[64];
    snprintf(w, sizeof w, "%s_w", out);
    snprintf(b, sizeof b, "%s_b", out);
    snprintf(shape, sizeof shape, "%d,%d,%d,%d", cout, cin / group, k, k);
    add_weight(g, w, shape, conv_weight_scale);
    if (bias) {
        snprintf(shape, sizeof shape, "%d", cout);
        add_weight(g, b, shape, 0.5f);
    }
    snprintf(ins, sizeof ins, bias ? "%s,%s,%s" : "%s,%s", in, w, b);
    Onnx__NodeProto *n = add_node(g, "Conv", ins, out);
    if (group > 1) attr_int(n, "group", group);
    return n;
}

/* ---- Running both paths -------------------------------------------------------------------- */

typedef struct {
    aim_session *s;
    const aim_tensor *in;
    aim_tensor *out;
    aim_status st;
} run_args;

static void *run_thread(void *p) {
    run_args *a = p;
    a->st = aim_session_run(a->s, a->in, a->out);
    return NULL;
}

static void compare(const aim_tensor *fast, const aim_tensor *ref, const char *name) {
    char a[64], b[64];
    if (!aim_tensor_same_shape(fast, ref))
        fail_msg("%s: fast shape %s, reference %s", name, aim_tensor_shape_str(fast, a, 64),
                 aim_tensor_shape_str(ref, b, 64));
    size_t n = aim_tensor_count(ref);
    for (size_t i = 0; i < n; i++) {
        double x = aim_tensor_get_f64(fast, i), y = aim_tensor_get_f64(ref, i);
        if (!(fabs(x - y) <= ATOL + RTOL * fabs(y)))
            fail_msg("%s[%zu]: fast %.9g, reference %.9g", name, i, x, y);
    }
}

static aim_session *open_session(aim_model *m, int threads, bool reference) {
    aim_session_options opt = {.threads = threads, .reference_only = reference};
    aim_session *s = NULL;
    if (aim_session_create(m, &opt, &s) != AIM_OK) fail_msg("session: %s", aim_last_error());
    return s;
}

/* Steps of s whose kind starts with `kind`. */
static size_t steps_of_kind(const aim_session *s, const char *kind) {
    size_t n = 0;
    aim_session_step_info info;
    for (size_t i = 0; aim_session_step_profile(s, i, &info); i++)
        n += strncmp(info.kind, kind, strlen(kind)) == 0;
    return n;
}

/* Runs the model on random inputs (shape of input "x") both ways, at 1 and 2 threads, with
 * two fast runs at once; requires at least `min_fast` nodes on fast kernels and, when `kind`
 * is set, exactly `n_kind` steps of that kind. */
static void check_model_steps(Onnx__ModelProto *proto, size_t min_fast, const char *kind,
                              size_t n_kind) {
    size_t size;
    uint8_t *bytes = tb_pack(proto, &size);
    aim_model *m = NULL;
    assert_int_equal(aim_model_load_memory(bytes, size, NULL, &m), AIM_OK);
    free(bytes);
    aim_session *ref = open_session(m, 1, true);
    assert_int_equal(aim_session_fast_node_count(ref), 0);
    aim_tensor in;
    aim_session_input_info(ref, 0, &in);
    float *x = tb_alloc(aim_tensor_bytes(&in));
    for (size_t i = 0; i < aim_tensor_count(&in); i++)
        x[i] = rnd(1.0f);
    in.data = x;
    size_t n_out = aim_session_output_count(ref);
    aim_tensor want[4], got[2][4];
    assert_true(n_out <= 4);
    if (aim_session_run(ref, &in, want) != AIM_OK) fail_msg("reference: %s", aim_last_error());
    for (int threads = 1; threads <= 2; threads++) {
        aim_session *fast = open_session(m, threads, false);
        if (aim_session_fast_node_count(fast) < min_fast)
            fail_msg("%zu nodes on fast kernels, expected at least %zu",
                     aim_session_fast_node_count(fast), min_fast);
        if (kind && steps_of_kind(fast, kind) != n_kind)
            fail_msg("%zu %s steps, expected %zu", steps_of_kind(fast, kind), kind, n_kind);
        run_args args[2] = {{fast, &in, got[0], 0}, {fast, &in, got[1], 0}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&t[i], NULL, run_thread, &args[i]), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        for (int i = 0; i < 2; i++) {
            if (args[i].st != AIM_OK) fail_msg("fast: %s", aim_last_error());
            for (size_t o = 0; o < n_out; o++) {
                compare(&got[i][o], &want[o], aim_session_output_name(fast, o));
                free(got[i][o].data);
            }
        }
        aim_session_free(fast);
    }
    for (size_t o = 0; o < n_out; o++)
        free(want[o].data);
    free(x);
    aim_session_free(ref);
    aim_model_free(m);
}

static void check_model(Onnx__ModelProto *proto, size_t min_fast) {
    check_model_steps(proto, min_fast, NULL, 0);
}

/* ---- Convolutions and fusions -------------------------------------------------------------- */

static void test_conv_bias_relu(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,3,20,24", 13);
    Onnx__GraphProto *g = m->graph;
    attr_ints(conv(g, "x", "c1", 3, 16, 3, 1, true), "pads", "1,1,1,1");
    add_node(g, "Relu", "c1", "r1");
    attr_ints(conv(g, "r1", "c2", 16, 24, 3, 1, true), "pads", "1,1,1,1");
    add_node(g, "Relu", "c2", "y");
    output(m, "y");
    check_model(m, 4);
}

static void test_depthwise_relu6(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,16,17,19", 13);
    Onnx__GraphProto *g = m->graph;
    add_scalar(g, "lo", 0.0f);
    add_scalar(g, "hi", 6.0f);
    attr_ints(conv(g, "x", "c", 16, 16, 3, 16, true), "pads", "1,1,1,1");
    add_node(g, "Clip", "c,lo,hi", "y");
    output(m, "y");
    check_model(m, 2);
}

static void test_strided_asymmetric_pads(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,8,21,18", 13);
    Onnx__GraphProto *g = m->graph;
    Onnx__NodeProto *c = conv(g, "x", "c", 8, 16, 3, 1, true);
    attr_ints(c, "strides", "2,2");
    attr_ints(c, "pads", "0,0,1,1");
    attr_float(add_node(g, "LeakyRelu", "c", "l"), "alpha", 0.1f);
    Onnx__NodeProto *c2 = conv(g, "l", "c2", 16, 8, 3, 1, false);
    attr_str(c2, "auto_pad", "SAME_UPPER");
    attr_ints(c2, "strides", "2,2");
    add_node(g, "Sigmoid", "c2", "y");
    output(m, "y");
    check_model(m, 4);
}

/* ResNet's shortcut: a 1x1 stride-2 conv on even sizes reads neither the last row nor the last
 * column (and a 3x3 stride-2 one without padding on 12x10), then a BatchNormalization. */
static void test_strided_short_tail(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,8,12,10", 13);
    Onnx__GraphProto *g = m->graph;
    attr_ints(conv(g, "x", "c", 8, 16, 1, 1, false), "strides", "2,2");
    add_weight(g, "gamma", "16", 1.0f);
    add_weight(g, "beta", "16", 1.0f);
    add_weight(g, "mean", "16", 1.0f);
    float var[16];
    for (int i = 0; i < 16; i++)
        var[i] = 0.5f + (float)i * 0.1f;
    add_floats(g, "var", 16, var);
    add_node(g, "BatchNormalization", "c,gamma,beta,mean,var", "y");
    attr_ints(conv(g, "x", "z", 8, 8, 3, 1, true), "strides", "2,2");
    output(m, "y");
    output(m, "z");
    check_model(m, 3);
}

static void test_grouped_dilated(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,8,15,16", 13);
    Onnx__GraphProto *g = m->graph;
    Onnx__NodeProto *c = conv(g, "x", "c", 8, 12, 3, 2, true);
    attr_ints(c, "dilations", "2,2");
    attr_ints(c, "pads", "2,1,2,1");
    add_node(g, "Tanh", "c", "y");
    output(m, "y");
    check_model(m, 2);
}

/* Residual Adds as binary post-ops: a residual with other readers, one produced after the conv
 * (in another layout, reordered), and an Add feeding a graph output. */
static void test_conv_add_residual(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,8,12,12", 13);
    Onnx__GraphProto *g = m->graph;
    attr_ints(conv(g, "x", "a", 8, 16, 3, 1, true), "pads", "1,1,1,1");
    add_node(g, "Relu", "a", "ra");
    attr_ints(conv(g, "ra", "b", 16, 16, 3, 1, true), "pads", "1,1,1,1");
    add_node(g, "Add", "b,ra", "s"); /* ra is also read by conv b */
    add_node(g, "Relu", "s", "rs");
    conv(g, "rs", "c", 16, 16, 1, 1, true);
    conv(g, "rs", "d", 16, 16, 1, 1, false);
    add_node(g, "Add", "d,c", "s2"); /* fused into conv c, reading d (computed after c) */
    add_node(g, "Relu", "s2", "y");  /* a graph output: plain destination */
    output(m, "y");
    check_model(m, 9);
}

static void test_conv_silu(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,6,14,10", 13);
    Onnx__GraphProto *g = m->graph;
    attr_ints(conv(g, "x", "c", 6, 10, 3, 1, true), "pads", "1,1,1,1");
    add_node(g, "Sigmoid", "c", "s");
    add_node(g, "Mul", "c,s", "silu");
    conv(g, "silu", "c2", 10, 10, 1, 1, true);
    add_node(g, "Sigmoid", "c2", "s2");
    add_node(g, "Mul", "s2,c2", "y"); /* operands the other way round */
    add_node(g, "Relu", "x", "rx");
    add_node(g, "Sigmoid", "rx", "sx"); /* standalone SiLU on a plain tensor */
    add_node(g, "Mul", "rx,sx", "z");
    output(m, "y");
    output(m, "z");
    check_model(m, 9);
}

/* YOLOv8's bottleneck: x + SiLU(conv(SiLU(conv(x)))), x a Split output read elsewhere too; and
 * BlazeFace's block: relu(conv(dw(x)) + pad(x)), the padding a Concat with zeros. */
static void test_bottlenecks(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,8,12,10", 13);
    Onnx__GraphProto *g = m->graph;
    conv(g, "x", "c0", 8, 32, 1, 1, true);
    add_node(g, "Split", "c0", "a,b");
    attr_int(g->node[g->n_node - 1], "axis", 1);
    attr_ints(conv(g, "b", "c1", 16, 16, 3, 1, true), "pads", "1,1,1,1");
    add_node(g, "Sigmoid", "c1", "s1");
    add_node(g, "Mul", "c1,s1", "m1");
    attr_ints(conv(g, "m1", "c2", 16, 16, 3, 1, true), "pads", "1,1,1,1");
    add_node(g, "Sigmoid", "c2", "s2");
    add_node(g, "Mul", "c2,s2", "m2");
    add_node(g, "Add", "b,m2", "r");
    attr_int(add_node(g, "Concat", "a,b,r", "cat"), "axis", 1);
    attr_ints(conv(g, "cat", "dw", 48, 48, 3, 48, true), "pads", "1,1,1,1");
    conv(g, "dw", "pw", 48, 56, 1, 1, true);
    add_weight(g, "zeros", "1,8,12,10", 0.0f);
    attr_int(add_node(g, "Concat", "cat,zeros", "padded"), "axis", 1);
    add_node(g, "Add", "pw,padded", "sum");
    add_node(g, "Relu", "sum", "y");
    output(m, "y");
    check_model(m, 15);
}

/* Winograd F(2x2, 3x3) convolutions (winograd.c) against the reference: a batch of 2, odd
 * sizes (the last tiles stick out), output channels that do not fill the last panel of 16
 * (72), asymmetric pads, more input channels than one pass over the weights takes (264), and
 * every post-op the kernel fuses. Convs it must leave to oneDNN are in the model too: too few
 * channels, a stride. Weights are scaled to the fan-in as in trained networks (activations
 * stay near 1): Winograd's rounding error is a few ulps of the transformed values, which with
 * 0.5-scaled weights over 600 inputs reach ~20 and cancel to results near 0, beyond the
 * absolute 1e-5 this file allows. */
static void test_winograd(void **state) {
    (void)state;
    if (!aim_cpu_avx2_kernels_available()) { /* said, and counted as skipped, not passed */
        print_message("skipped: this CPU does not run Winograd kernels (no AVX2 + FMA, or "
                      "oneDNN has a better ISA here)\n");
        skip();
    }
    conv_weight_scale = 0.08f;
    Onnx__ModelProto *m = model("2,64,13,13", 14); /* HardSwish is opset 14 */
    Onnx__GraphProto *g = m->graph;
    add_scalar(g, "lo", -1.0f);
    add_scalar(g, "hi", 2.0f);
    attr_ints(conv(g, "x", "a", 64, 72, 3, 1, true), "pads", "1,1,1,1");
    attr_float(add_node(g, "LeakyRelu", "a", "la"), "alpha", 0.1f);
    attr_ints(conv(g, "la", "b", 72, 64, 3, 1, true), "pads", "2,0,1,2");
    add_node(g, "Sigmoid", "b", "sb");
    add_node(g, "Mul", "b,sb", "mb"); /* SiLU */
    attr_ints(conv(g, "x", "c", 64, 264, 3, 1, false), "pads", "1,1,1,1");
    add_node(g, "Clip", "c,lo,hi", "cc");
    attr_ints(conv(g, "cc", "d", 264, 64, 3, 1, true), "pads", "1,1,1,1");
    add_node(g, "Add", "d,x", "dx"); /* residual */
    add_node(g, "Relu", "dx", "rd");
    attr_ints(conv(g, "rd", "e", 64, 64, 3, 1, true), "pads", "1,1,1,1");
    add_node(g, "HardSwish", "e", "he");
    attr_ints(conv(g, "he", "f", 64, 64, 3, 1, true), "pads", "1,1,1,1");
    add_node(g, "Sigmoid", "f", "sf");
    attr_ints(conv(g, "sf", "small", 64, 16, 3, 1, true), "pads", "1,1,1,1");
    Onnx__NodeProto *st = conv(g, "sf", "strided", 64, 64, 3, 1, true);
    attr_ints(st, "strides", "2,2");
    attr_ints(st, "pads", "1,1,1,1");
    output(m, "mb");
    output(m, "small");
    output(m, "strided");
    conv_weight_scale = 0.5f;
    check_model_steps(m, 16, "winograd", 6); /* every node fast; a to f Winograd */
}

static void test_conv_batchnorm(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,4,9,11", 14); /* HardSwish is opset 14 */
    Onnx__GraphProto *g = m->graph;
    conv(g, "x", "c", 4, 12, 3, 1, false);
    add_weight(g, "gamma", "12", 1.0f);
    add_weight(g, "beta", "12", 1.0f);
    add_weight(g, "mean", "12", 1.0f);
    float var[12];
    for (int i = 0; i < 12; i++)
        var[i] = 0.5f + (float)i * 0.1f;
    add_floats(g, "var", 12, var);
    add_node(g, "BatchNormalization", "c,gamma,beta,mean,var", "bn");
    add_node(g, "HardSwish", "bn", "y");
    output(m, "y");
    check_model(m, 3);
}

/* A BatchNormalization of c channels with random scale, bias and mean, epsilon 1e-3. */
static void add_bn(Onnx__GraphProto *g, const char *in, const char *out, int c) {
    char names[4][32], ins[200];
    const char *what[4] = {"scale", "bias", "mean", "var"};
    for (int i = 0; i < 4; i++) {
        snprintf(names[i], sizeof names[i], "%s_%s", out, what[i]);
        float v[64];
        for (int j = 0; j < c; j++)
            v[j] = i == 3 ? 0.5f + 0.1f * (float)j : rnd(1.0f);
        add_floats(g, names[i], (size_t)c, v);
    }
    snprintf(ins, sizeof ins, "%s,%s,%s,%s,%s", in, names[0], names[1], names[2], names[3]);
    attr_float(add_node(g, "BatchNormalization", ins, out), "epsilon", 1e-3f);
}

/* BatchNormalization that no convolution absorbs: on the plain graph input, and after a Concat
 * in a blocked layout whose channels do not fill the last block (20 of 24); a graph output of
 * each. */
static void test_batchnorm_alone(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("2,12,7,9", 15);
    Onnx__GraphProto *g = m->graph;
    add_bn(g, "x", "b0", 12); /* plain source */
    attr_ints(conv(g, "x", "c1", 12, 8, 3, 1, true), "pads", "1,1,1,1");
    attr_ints(conv(g, "x", "c2", 12, 12, 3, 1, true), "pads", "1,1,1,1");
    attr_int(add_node(g, "Concat", "c1,c2", "cat"), "axis", 1);
    add_bn(g, "cat", "b1", 20); /* blocked source, 20 channels */
    add_node(g, "Relu", "b1", "r1");
    output(m, "b0");
    output(m, "r1");
    check_model_steps(m, 6, "batchnorm", 2);
}

/* Add/Sub/Mul/Div on oneDNN's binary primitive: a squeeze-and-excitation block (x times a
 * per-channel gate computed from GlobalAveragePool, in a blocked layout), per-channel and scalar
 * constants of lower rank, two full-size operands in different layouts, Sub and Div with the
 * broadcast operand second. Div by a positive gate only. */
static void test_binary(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("2,16,9,11", 13);
    Onnx__GraphProto *g = m->graph;
    attr_ints(conv(g, "x", "a", 16, 16, 3, 1, true), "pads", "1,1,1,1");
    add_node(g, "GlobalAveragePool", "a", "pool");
    conv(g, "pool", "fc", 16, 16, 1, 1, true);
    add_node(g, "Sigmoid", "fc", "gate");
    add_node(g, "Mul", "a,gate", "se"); /* [2,16,9,11] x [2,16,1,1] */
    add_weight(g, "per_c", "16,1,1", 1.0f);
    add_node(g, "Mul", "per_c,se", "scaled"); /* lower rank, first: swapped */
    add_scalar(g, "half", 0.5f);
    add_node(g, "Sub", "scaled,half", "shifted");
    add_node(g, "Add", "shifted,x", "sum"); /* x is plain, shifted blocked */
    add_node(g, "Div", "sum,gate", "y");
    output(m, "y");
    check_model_steps(m, 9, "binary", 5); /* every node fast */
}

static void test_conv_transpose(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,8,7,9", 13);
    Onnx__GraphProto *g = m->graph;
    add_weight(g, "w", "8,6,3,3", 0.5f);
    add_weight(g, "b", "6", 0.5f);
    Onnx__NodeProto *n = add_node(g, "ConvTranspose", "x,w,b", "t");
    attr_ints(n, "strides", "2,2");
    attr_ints(n, "pads", "1,1,1,1");
    attr_ints(n, "output_padding", "1,1");
    add_node(g, "Relu", "t", "y");
    add_weight(g, "wg", "8,3,2,2", 0.5f); /* grouped: 2 groups of 4 -> 3 channels */
    Onnx__NodeProto *gn = add_node(g, "ConvTranspose", "x,wg", "tg");
    attr_ints(gn, "strides", "2,2");
    attr_int(gn, "group", 2);
    output(m, "y");
    output(m, "tg");
    check_model(m, 3);
}

/* ---- Other operators ----------------------------------------------------------------------- */

static void test_pools(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,3,19,22", 13);
    Onnx__GraphProto *g = m->graph;
    attr_ints(conv(g, "x", "c", 3, 12, 3, 1, true), "pads", "1,1,1,1");
    Onnx__NodeProto *mp = add_node(g, "MaxPool", "c", "mp");
    attr_ints(mp, "kernel_shape", "3,3");
    attr_ints(mp, "strides", "2,2");
    attr_ints(mp, "pads", "1,1,1,1");
    Onnx__NodeProto *mc = add_node(g, "MaxPool", "c", "mc");
    attr_ints(mc, "kernel_shape", "2,2");
    attr_ints(mc, "strides", "2,2");
    attr_int(mc, "ceil_mode", 1);
    Onnx__NodeProto *ae = add_node(g, "AveragePool", "c", "ae");
    attr_ints(ae, "kernel_shape", "3,3");
    attr_ints(ae, "strides", "2,2");
    attr_ints(ae, "pads", "1,1,1,1");
    Onnx__NodeProto *ai = add_node(g, "AveragePool", "c", "ai");
    attr_ints(ai, "kernel_shape", "3,3");
    attr_ints(ai, "pads", "1,1,1,1");
    attr_int(ai, "count_include_pad", 1);
    add_node(g, "GlobalAveragePool", "c", "ga");
    add_node(g, "GlobalMaxPool", "c", "gm");
    add_node(g, "Concat", "mp,ae", "y1");
    attr_int(g->node[g->n_node - 1], "axis", 1);
    output(m, "y1");
    output(m, "mc");
    output(m, "ai");
    add_node(g, "Concat", "ga,gm", "y2");
    attr_int(g->node[g->n_node - 1], "axis", 1);
    output(m, "y2");
    check_model(m, 8);
}

/* aim's max pooling: a plain batch-2 source with dilation, a blocked source whose channels do
 * not fill the last block (20 of 24), ceil_mode windows, a graph output and a blocked reader. */
static void test_max_pool_layouts(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("2,5,9,11", 13);
    Onnx__GraphProto *g = m->graph;
    Onnx__NodeProto *p1 = add_node(g, "MaxPool", "x", "p1");
    attr_ints(p1, "kernel_shape", "2,2");
    attr_ints(p1, "dilations", "2,2");
    attr_ints(p1, "pads", "1,1,1,1");
    attr_ints(conv(g, "x", "c", 5, 20, 3, 1, true), "pads", "1,1,1,1");
    Onnx__NodeProto *p2 = add_node(g, "MaxPool", "c", "p2");
    attr_ints(p2, "kernel_shape", "3,3");
    attr_ints(p2, "strides", "2,2");
    attr_ints(p2, "pads", "1,0,1,0");
    attr_int(p2, "ceil_mode", 1);
    Onnx__NodeProto *p3 = add_node(g, "MaxPool", "c", "p3");
    attr_ints(p3, "kernel_shape", "2,2");
    attr_ints(p3, "strides", "2,2");
    conv(g, "p3", "y", 20, 6, 1, 1, true);
    output(m, "p1");
    output(m, "p2");
    output(m, "y");
    check_model(m, 5);
}

static void test_gemm_matmul(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("5,24", 13);
    Onnx__GraphProto *g = m->graph;
    add_weight(g, "b1", "10,24", 0.5f);
    add_weight(g, "c1", "10", 0.5f);
    Onnx__NodeProto *gm = add_node(g, "Gemm", "x,b1,c1", "g1");
    attr_int(gm, "transB", 1);
    attr_float(gm, "alpha", 0.5f);
    add_node(g, "Relu", "g1", "r1");
    add_weight(g, "b2", "10,7", 0.5f);
    add_weight(g, "c2", "1,7", 0.5f);
    attr_float(add_node(g, "Gemm", "r1,b2,c2", "g2"), "beta", 2.0f);
    add_weight(g, "w3", "24,6", 0.5f);
    add_node(g, "MatMul", "x,w3", "m3");
    add_node(g, "Transpose", "x", "xt");
    add_node(g, "MatMul", "xt,x", "y"); /* [24,5] x [5,24]: two activations */
    output(m, "g2");
    output(m, "m3");
    output(m, "y");
    check_model(m, 5);
}

/* Transposes read their source in place through permuted axes, blocked layouts included. */
static void test_transpose(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,6,5,7", 13);
    Onnx__GraphProto *g = m->graph;
    attr_ints(conv(g, "x", "c", 6, 10, 3, 1, true), "pads", "1,1,1,1");
    attr_ints(add_node(g, "Transpose", "c", "nhwc"), "perm", "0,2,3,1"); /* blocked source */
    add_node(g, "Transpose", "x", "rev");                                /* default: reversed */
    attr_ints(add_node(g, "Transpose", "nhwc", "back"), "perm", "0,3,1,2");
    conv(g, "back", "y", 10, 4, 1, 1, true);
    output(m, "nhwc");
    output(m, "rev");
    output(m, "y");
    check_model(m, 5);
}

/* Softmax along a strided axis (tiles of lanes, the last one partial), along the contiguous
 * last axis (a length that is no multiple of 8), LogSoftmax, and a source in a blocked layout
 * with values large enough to exercise exp's range reduction. */
static void test_softmax(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,3,20,30", 13);
    Onnx__GraphProto *g = m->graph;
    attr_int(add_node(g, "Softmax", "x", "s1"), "axis", 1); /* 600 lanes, 3 apart */
    add_node(g, "Softmax", "x", "s2");                      /* axis -1: 30 contiguous */
    attr_int(add_node(g, "LogSoftmax", "x", "s3"), "axis", 2);
    conv(g, "x", "c", 3, 16, 1, 1, true);
    add_node(g, "Mul", "c,c", "big"); /* up to ~20: exp's argument reaches -40 */
    attr_int(add_node(g, "Softmax", "big", "s4"), "axis", 1);
    output(m, "s1");
    output(m, "s2");
    output(m, "s3");
    output(m, "s4");
    check_model(m, 5);
}

/* Short contiguous lanes (three values, as a detector's class scores), in blocks of lanes. */
static void test_softmax_short_lanes(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,3,40,50", 13);
    Onnx__GraphProto *g = m->graph;
    attr_ints(add_node(g, "Transpose", "x", "t"), "perm", "0,2,3,1"); /* 2000 lanes of 3 */
    add_node(g, "Softmax", "t", "s");
    add_node(g, "LogSoftmax", "t", "l");
    output(m, "s");
    output(m, "l");
    check_model(m, 3);
}

/* Before opset 13 Softmax coerces to 2-D: only an axis with nothing after it is fast. */
static void test_softmax_old_opset(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("2,5,7", 11);
    Onnx__GraphProto *g = m->graph;
    attr_int(add_node(g, "Softmax", "x", "rows"), "axis", 1); /* 35 values per row */
    attr_int(add_node(g, "Softmax", "x", "last"), "axis", 2);
    output(m, "rows");
    output(m, "last");
    check_model(m, 1);
}

static void add_ints(Onnx__GraphProto *g, const char *name, int64_t n, const int64_t *v) {
    TB_APPEND(g->initializer, g->n_initializer,
              tb_tensor(name, AIM_DTYPE_INT64, 1, &n, v, (size_t)n * sizeof *v));
}

/* Reshape-like nodes are views of their input's bytes, which must stay intact until the view's
 * last reader although other values are made (and could reuse the arena) in between: views of
 * a blocked conv output (through its plain copy), chained views, and a view read late. */
static void test_views(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,4,6,6", 13);
    Onnx__GraphProto *g = m->graph;
    static const int64_t flat[] = {1, 8, 36}, axes[] = {0};
    add_ints(g, "flat", 3, flat);
    add_ints(g, "axes", 1, axes);
    attr_ints(conv(g, "x", "c1", 4, 8, 3, 1, true), "pads", "1,1,1,1");
    add_node(g, "Reshape", "c1,flat", "r1");
    attr_ints(conv(g, "x", "a1", 4, 8, 3, 1, true), "pads", "1,1,1,1");
    attr_ints(conv(g, "a1", "a2", 8, 8, 3, 1, true), "pads", "1,1,1,1");
    attr_ints(conv(g, "a2", "a3", 8, 8, 3, 1, true), "pads", "1,1,1,1");
    add_node(g, "Reshape", "a3,flat", "r2");
    add_node(g, "Add", "r1,r2", "s");
    add_node(g, "Unsqueeze", "s,axes", "u");
    add_node(g, "Squeeze", "u,axes", "q");
    add_node(g, "Identity", "q", "i");
    add_node(g, "Relu", "i", "y");
    attr_int(add_node(g, "Flatten", "a2", "f"), "axis", 1);
    add_node(g, "Sigmoid", "f", "z");
    output(m, "y");
    output(m, "z");
    check_model(m, 12);
}

static void test_matmul_batched(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("2,3,5,8", 13);
    Onnx__GraphProto *g = m->graph;
    add_weight(g, "w", "8,4", 0.5f);
    add_node(g, "MatMul", "x,w", "y");
    output(m, "y");
    check_model(m, 1);
}

static void test_concat_blocked(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,5,10,12", 13);
    Onnx__GraphProto *g = m->graph;
    attr_ints(conv(g, "x", "a", 5, 12, 3, 1, true), "pads", "1,1,1,1");
    conv(g, "x", "b", 5, 20, 1, 1, true);
    attr_int(add_node(g, "Concat", "a,b,x", "cat"), "axis", 1);
    conv(g, "cat", "c", 37, 16, 1, 1, true);
    add_node(g, "Relu", "c", "y");
    output(m, "y");
    output(m, "cat");
    check_model(m, 5);
}

static void test_resize(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,4,6,7", 13);
    Onnx__GraphProto *g = m->graph;
    conv(g, "x", "c", 4, 8, 1, 1, true);
    float scales[4] = {1, 1, 2, 2};
    add_floats(g, "scales", 4, scales);
    add_floats(g, "roi", 0, NULL);
    Onnx__NodeProto *n = add_node(g, "Resize", "c,roi,scales", "up");
    attr_str(n, "mode", "nearest");
    attr_str(n, "coordinate_transformation_mode", "asymmetric");
    attr_str(n, "nearest_mode", "floor");
    Onnx__NodeProto *d = add_node(g, "Resize", "c,roi,scales", "hp");
    attr_str(d, "mode", "nearest"); /* half_pixel, round_prefer_floor: the defaults */
    Onnx__NodeProto *l = add_node(g, "Resize", "c,roi,scales", "lin");
    attr_str(l, "mode", "linear");
    conv(g, "up", "y", 8, 4, 3, 1, true);
    output(m, "y");
    output(m, "hp");
    output(m, "lin");
    check_model(m, 5);
}

/* Resize of a plain source (a graph input, here) stays on the reference kernel: oneDNN 2.6's
 * AVX2 resampling of nchw data made for one thread crashed on this shape (null read in JIT). */
static void test_resize_plain_source(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,256,20,20", 13);
    Onnx__GraphProto *g = m->graph;
    float scales[4] = {1, 1, 2, 2};
    add_floats(g, "scales", 4, scales);
    add_floats(g, "roi", 0, NULL);
    Onnx__NodeProto *n = add_node(g, "Resize", "x,roi,scales", "up");
    attr_str(n, "mode", "nearest");
    attr_str(n, "coordinate_transformation_mode", "asymmetric");
    attr_str(n, "nearest_mode", "floor");
    output(m, "up");
    check_model(m, 0);
}

/* Split of a blocked tensor: on block boundaries (fast views), and not (reference). */
static void test_split(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,4,9,10", 13);
    Onnx__GraphProto *g = m->graph;
    conv(g, "x", "c", 4, 24, 3, 1, true);
    int64_t dims[1] = {2};
    int64_t even[2] = {8, 16}, odd[2] = {5, 19};
    TB_APPEND(g->initializer, g->n_initializer,
              tb_tensor("even", AIM_DTYPE_INT64, 1, dims, even, sizeof even));
    TB_APPEND(g->initializer, g->n_initializer,
              tb_tensor("odd", AIM_DTYPE_INT64, 1, dims, odd, sizeof odd));
    attr_int(add_node(g, "Split", "c,even", "a,b"), "axis", 1);
    attr_int(add_node(g, "Split", "c,odd", "p,q"), "axis", 1);
    conv(g, "b", "cb", 16, 8, 1, 1, true);
    add_node(g, "Add", "a,cb", "y");
    attr_int(add_node(g, "Split", "c,even", "unread,kept"), "axis", 1); /* YOLOv4-tiny's route */
    conv(g, "kept", "k", 16, 8, 1, 1, true);
    output(m, "y");
    output(m, "p");
    output(m, "q");
    output(m, "k");
    check_model(m, 5);
}

/* A conv output read by a reference node, a fast node and the caller at once. */
static void test_mixed_readers(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,3,8,8", 13);
    Onnx__GraphProto *g = m->graph;
    conv(g, "x", "c", 3, 8, 3, 1, true);
    add_node(g, "Relu", "c", "r");
    add_node(g, "Exp", "c", "e");     /* reference kernel: reads a plain copy */
    add_node(g, "Add", "r,e", "sum"); /* reference: both plain copies */
    conv(g, "c", "c2", 8, 8, 1, 1, true);
    output(m, "c");
    output(m, "sum");
    output(m, "c2");
    check_model(m, 3);
}

/* Concats written in place (their inputs aliases into their buffer): an input also read by a
 * Split, a Split part as an input, a last input whose channels do not fill a block; and a
 * Concat of inputs already in place elsewhere (a real concat step). */
static void test_concat_in_place(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,4,12,10", 13);
    Onnx__GraphProto *g = m->graph;
    attr_ints(conv(g, "x", "a0", 4, 16, 3, 1, true), "pads", "1,1,1,1");
    add_node(g, "Relu", "a0", "a");
    int64_t dims[1] = {2}, halves[2] = {8, 8};
    TB_APPEND(g->initializer, g->n_initializer,
              tb_tensor("halves", AIM_DTYPE_INT64, 1, dims, halves, sizeof halves));
    attr_int(add_node(g, "Split", "a,halves", "lo,hi"), "axis", 1);
    conv(g, "hi", "b", 8, 8, 1, 1, true);
    attr_int(add_node(g, "Concat", "a,b", "cat1"), "axis", 1);
    conv(g, "b", "c", 8, 5, 1, 1, true);
    attr_int(add_node(g, "Concat", "lo,c", "cat2"), "axis", 1);
    attr_int(add_node(g, "Concat", "b,c", "cat3"), "axis", 1);
    conv(g, "cat1", "y1", 24, 8, 1, 1, true);
    conv(g, "cat2", "y2", 13, 8, 1, 1, true);
    conv(g, "cat3", "y3", 13, 8, 1, 1, true);
    output(m, "y1");
    output(m, "y2");
    output(m, "y3");
    check_model(m, 10);
}

/* Kernels big enough for two threads next to small ones made for one (plan.c's SMALL_*), and
 * convolutions writing graph outputs in their own layout, reordered to plain. */
static void test_thread_mix(void **state) {
    (void)state;
    Onnx__ModelProto *m = model("1,16,32,32", 13);
    Onnx__GraphProto *g = m->graph;
    attr_ints(conv(g, "x", "big", 16, 32, 3, 1, true), "pads", "1,1,1,1");
    add_node(g, "Relu", "big", "r");
    conv(g, "r", "y", 32, 8, 1, 1, true); /* small, a graph output */
    attr_ints(conv(g, "r", "z", 32, 16, 3, 1, false), "pads", "1,1,1,1"); /* big output */
    Onnx__NodeProto *p = add_node(g, "MaxPool", "r", "p");
    attr_ints(p, "kernel_shape", "2,2");
    attr_ints(p, "strides", "2,2");
    output(m, "y");
    output(m, "z");
    output(m, "p");
    check_model(m, 5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_bias_relu),
        cmocka_unit_test(test_depthwise_relu6),
        cmocka_unit_test(test_strided_asymmetric_pads),
        cmocka_unit_test(test_strided_short_tail),
        cmocka_unit_test(test_grouped_dilated),
        cmocka_unit_test(test_conv_add_residual),
        cmocka_unit_test(test_conv_silu),
        cmocka_unit_test(test_winograd),
        cmocka_unit_test(test_bottlenecks),
        cmocka_unit_test(test_conv_batchnorm),
        cmocka_unit_test(test_batchnorm_alone),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_conv_transpose),
        cmocka_unit_test(test_pools),
        cmocka_unit_test(test_max_pool_layouts),
        cmocka_unit_test(test_gemm_matmul),
        cmocka_unit_test(test_matmul_batched),
        cmocka_unit_test(test_transpose),
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_softmax_short_lanes),
        cmocka_unit_test(test_softmax_old_opset),
        cmocka_unit_test(test_concat_blocked),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_resize_plain_source),
        cmocka_unit_test(test_mixed_readers),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_thread_mix),
        cmocka_unit_test(test_concat_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
