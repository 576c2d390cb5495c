/*
 * test_ops_math.c: the math family's kernels (src/ops/math.c) on the cases the ONNX node tests
 * do not reach: integer edge values (wrapping, division by zero, INT_MIN / -1), Mod's two
 * semantics, Cast's conversions out of range and to/from bfloat16, broadcasting across three
 * operands and with the pre-opset-7 `axis` attribute, float16 runs longer than one chunk, Clip
 * with crossed bounds, Shape's start/end, value producers and the errors raised at load time.
 *
 * Kernels are driven directly through the registry (aim_ops_find) with a node built in code,
 * as the session does: prepare, infer, allocate, run, release. Under ASan/UBSan this also shows
 * that none of these inputs reaches undefined behaviour.
 */
#define _GNU_SOURCE /* nftw in onnx_builder.h */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "onnx_builder.h"
#include "ops/op.h"

#include <math.h>

static aim_status alloc_output(aim_op_ctx *c, int i) {
    aim_tensor *t = c->out[i];
    size_t bytes = aim_tensor_bytes(t);
    t->data = malloc(bytes ? bytes : 1);
    return t->data ? AIM_OK : AIM_ERR_NOMEM;
}

/* Runs `node` at `opset` on n_in inputs (NULL entries are omitted inputs) into n_out outputs
 * whose data the caller frees. Stops at infer when `infer_only`. */
static aim_status run_node_opt(Onnx__NodeProto *node, int opset, int n_in, const aim_tensor **in,
                               int n_out, aim_tensor *out, bool infer_only) {
    const aim_op_def *def;
    aim_status st = aim_ops_find(node->op_type, "", opset, &def);
    if (st != AIM_OK) return st;
    aim_tensor *outs[4];
    for (int i = 0; i < n_out; i++) {
        memset(&out[i], 0, sizeof out[i]);
        outs[i] = &out[i];
    }
    aim_op_ctx c = {.node = node,
                    .opset = opset,
                    .n_in = n_in,
                    .in = in,
                    .n_out = n_out,
                    .out = outs,
                    .threads = 1,
                    .alloc = alloc_output};
    if (def->prepare) st = def->prepare(&c);
    if (st == AIM_OK) st = def->infer(&c);
    for (int i = 0; st == AIM_OK && !infer_only && i < n_out; i++)
        if (out[i].rank >= 0) st = alloc_output(&c, i);
    if (st == AIM_OK && !infer_only) st = def->run(&c);
    if (def->release && c.state) def->release(c.state);
    return st;
}

static aim_status run_node(Onnx__NodeProto *node, int opset, int n_in, const aim_tensor **in,
                           int n_out, aim_tensor *out) {
    return run_node_opt(node, opset, n_in, in, n_out, out, false);
}

static Onnx__NodeProto *node(const char *op) {
    return tb_node("n", op, "", "");
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

static void free_node(Onnx__NodeProto *n) {
    onnx__node_proto__free_unpacked(n, NULL);
}

#define T1(dt, n, ptr) ((aim_tensor){.dtype = (dt), .rank = 1, .dims = {(n)}, .data = (ptr)})

/* One binary node on two 1-d tensors of type dt (n elements each) into y. */
static aim_status binary(const char *op, int opset, int dt, size_t n, void *a, void *b,
                         aim_tensor *y) {
    Onnx__NodeProto *nd = node(op);
    aim_tensor ta = T1(dt, (int64_t)n, a), tb = T1(dt, (int64_t)n, b);
    const aim_tensor *in[2] = {&ta, &tb};
    aim_status st = run_node(nd, opset, 2, in, 1, y);
    free_node(nd);
    return st;
}

static void test_integer_division(void **state) {
    (void)state;
    int32_t a[5] = {7, -7, INT32_MIN, 5, -9}, b[5] = {2, 2, -1, 0, 4};
    aim_tensor y;
    assert_int_equal(binary("Div", 13, AIM_DTYPE_INT32, 5, a, b, &y), AIM_OK);
    const int32_t want[5] = {3, -3, INT32_MIN, 0, -2}; /* truncation; /0 gives 0; wraps */
    assert_memory_equal(y.data, want, sizeof want);
    free(y.data);

    uint8_t ua[3] = {200, 7, 9}, ub[3] = {3, 0, 9};
    assert_int_equal(binary("Div", 13, AIM_DTYPE_UINT8, 3, ua, ub, &y), AIM_OK);
    assert_memory_equal(y.data, ((uint8_t[]){66, 0, 1}), 3);
    free(y.data);
}

static void test_integer_wrapping(void **state) {
    (void)state;
    int8_t a[3] = {127, -128, 100}, b[3] = {1, -1, 100};
    aim_tensor y;
    assert_int_equal(binary("Add", 14, AIM_DTYPE_INT8, 3, a, b, &y), AIM_OK);
    assert_memory_equal(y.data, ((int8_t[]){-128, 127, -56}), 3);
    free(y.data);
    assert_int_equal(binary("Mul", 14, AIM_DTYPE_INT8, 3, a, b, &y), AIM_OK);
    assert_memory_equal(y.data, ((int8_t[]){127, -128, 16}), 3);
    free(y.data);
    uint16_t ua[1] = {65535}, ub[1] = {65535};
    assert_int_equal(binary("Mul", 14, AIM_DTYPE_UINT16, 1, ua, ub, &y), AIM_OK);
    assert_int_equal(*(uint16_t *)y.data, 1);
    free(y.data);

    int64_t x[2] = {INT64_MIN, -5};
    aim_tensor tx = T1(AIM_DTYPE_INT64, 2, x);
    const aim_tensor *in[1] = {&tx};
    const char *ops[2] = {"Neg", "Abs"};
    for (int i = 0; i < 2; i++) {
        Onnx__NodeProto *nd = node(ops[i]);
        assert_int_equal(run_node(nd, 13, 1, in, 1, &y), AIM_OK);
        int64_t want[2] = {INT64_MIN, 5};
        assert_memory_equal(y.data, want, sizeof want);
        free(y.data);
        free_node(nd);
    }
}

static void test_mod(void **state) {
    (void)state;
    int64_t a[5] = {-4, 7, 5, -7, INT64_MIN}, b[5] = {3, -3, 0, -3, -1};
    aim_tensor y;
    /* fmod=0: the result has the divisor's sign (Python's %) */
    assert_int_equal(binary("Mod", 13, AIM_DTYPE_INT64, 5, a, b, &y), AIM_OK);
    assert_memory_equal(y.data, ((int64_t[]){2, -2, 0, -1, 0}), 5 * sizeof(int64_t));
    free(y.data);
    /* fmod=1: the dividend's sign (C's %) */
    Onnx__NodeProto *nd = node("Mod");
    attr_int(nd, "fmod", 1);
    aim_tensor ta = T1(AIM_DTYPE_INT64, 5, a), tb = T1(AIM_DTYPE_INT64, 5, b);
    const aim_tensor *in[2] = {&ta, &tb};
    assert_int_equal(run_node(nd, 13, 2, in, 1, &y), AIM_OK);
    assert_memory_equal(y.data, ((int64_t[]){-1, 1, 0, -1, 0}), 5 * sizeof(int64_t));
    free(y.data);
    free_node(nd);

    float fa[2] = {-4.5f, 4.5f}, fb[2] = {2, -2};
    assert_int_equal(binary("Mod", 13, AIM_DTYPE_FLOAT, 2, fa, fb, &y), AIM_OK);
    assert_memory_equal(y.data, ((float[]){1.5f, -1.5f}), 2 * sizeof(float));
    free(y.data);

    nd = node("Mod");
    attr_int(nd, "fmod", 2);
    assert_int_equal(run_node(nd, 13, 2, in, 1, &y), AIM_ERR_PARSE);
    free_node(nd);
}

static void test_round_half_to_even(void **state) {
    (void)state;
    float x[7] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 2.4f, -2.6f};
    aim_tensor tx = T1(AIM_DTYPE_FLOAT, 7, x), y;
    const aim_tensor *in[1] = {&tx};
    Onnx__NodeProto *nd = node("Round");
    assert_int_equal(run_node(nd, 11, 1, in, 1, &y), AIM_OK);
    const float want[7] = {0, 2, 2, -0.0f, -2, 2, -3};
    assert_memory_equal(y.data, want, sizeof want);
    free(y.data);
    free_node(nd);
}

static aim_status cast(int to, aim_tensor *x, aim_tensor *y) {
    Onnx__NodeProto *nd = node("Cast");
    attr_int(nd, "to", to);
    const aim_tensor *in[1] = {x};
    aim_status st = run_node(nd, 13, 1, in, 1, y);
    free_node(nd);
    return st;
}

static void test_cast(void **state) {
    (void)state;
    float f[6] = {300.7f, -1.0f, NAN, -2.9f, 0.0f, 1e20f};
    aim_tensor tf = T1(AIM_DTYPE_FLOAT, 6, f), y;
    /* truncation toward zero, then wrapping to the width; NaN gives 0 */
    assert_int_equal(cast(AIM_DTYPE_UINT8, &tf, &y), AIM_OK);
    assert_memory_equal(y.data, ((uint8_t[]){44, 255, 0, 254, 0, 255}), 6);
    free(y.data);
    assert_int_equal(cast(AIM_DTYPE_INT64, &tf, &y), AIM_OK);
    assert_memory_equal(y.data, ((int64_t[]){300, -1, 0, -2, 0, INT64_MAX}), 6 * sizeof(int64_t));
    free(y.data);
    assert_int_equal(cast(AIM_DTYPE_BOOL, &tf, &y), AIM_OK); /* NaN is true */
    assert_memory_equal(y.data, ((uint8_t[]){1, 1, 1, 1, 0, 1}), 6);
    free(y.data);

    /* bfloat16: round to nearest even both at the tie and above it */
    float g[3] = {1.0f + 0x1p-8f, 1.0f + 0x3p-8f, 1.0f + 0x1p-8f + 0x1p-20f};
    aim_tensor tg = T1(AIM_DTYPE_FLOAT, 3, g);
    assert_int_equal(cast(AIM_DTYPE_BFLOAT16, &tg, &y), AIM_OK);
    assert_int_equal(y.dtype, AIM_DTYPE_BFLOAT16);
    assert_memory_equal(y.data, ((uint16_t[]){0x3f80, 0x3f82, 0x3f81}), 6);
    aim_tensor back;
    assert_int_equal(cast(AIM_DTYPE_FLOAT, &y, &back), AIM_OK);
    assert_memory_equal(back.data, ((float[]){1.0f, 1.015625f, 1.0078125f}), 3 * sizeof(float));
    free(back.data);
    /* bfloat16 -> float16 goes through float */
    assert_int_equal(cast(AIM_DTYPE_FLOAT16, &y, &back), AIM_OK);
    assert_int_equal(((uint16_t *)back.data)[0], 0x3c00);
    free(back.data);
    free(y.data);

    int64_t big[2] = {INT64_MAX, -3};
    aim_tensor tb = T1(AIM_DTYPE_INT64, 2, big);
    assert_int_equal(cast(AIM_DTYPE_FLOAT16, &tb, &y), AIM_OK);
    assert_int_equal(((uint16_t *)y.data)[0], 0x7c00); /* +inf */
    assert_int_equal(((uint16_t *)y.data)[1], 0xc200); /* -3 */
    free(y.data);

    assert_int_equal(cast(AIM_DTYPE_STRING, &tb, &y), AIM_ERR_UNSUPPORTED);
    assert_int_equal(cast(99, &tb, &y), AIM_ERR_UNSUPPORTED);
}

static void test_broadcast_three_operands(void **state) {
    (void)state;
    /* Max over [3], [2,3] and [1]: the first pair is already written in the full shape. */
    float a[3] = {1, NAN, 3}, b[6] = {0, 5, 0, 9, 0, 0}, c[1] = {2};
    aim_tensor ta = T1(AIM_DTYPE_FLOAT, 3, a), tc = T1(AIM_DTYPE_FLOAT, 1, c);
    aim_tensor tb = {.dtype = AIM_DTYPE_FLOAT, .rank = 2, .dims = {2, 3}, .data = b}, y;
    const aim_tensor *in[3] = {&ta, &tb, &tc};
    Onnx__NodeProto *nd = node("Max");
    assert_int_equal(run_node(nd, 13, 3, in, 1, &y), AIM_OK);
    assert_int_equal(y.rank, 2);
    const float *v = y.data;
    assert_true(v[0] == 2 && isnan(v[1]) && v[2] == 3 && v[3] == 9 && isnan(v[4]) && v[5] == 3);
    free(y.data);
    free_node(nd);

    /* Where: cond [2,1], x [3], y scalar */
    uint8_t cond[2] = {1, 0};
    int64_t x[3] = {1, 2, 3}, z = -1;
    aim_tensor tcnd = {.dtype = AIM_DTYPE_BOOL, .rank = 2, .dims = {2, 1}, .data = cond};
    aim_tensor tx = T1(AIM_DTYPE_INT64, 3, x), tz = {.dtype = AIM_DTYPE_INT64, .data = &z};
    const aim_tensor *win[3] = {&tcnd, &tx, &tz};
    nd = node("Where");
    assert_int_equal(run_node(nd, 16, 3, win, 1, &y), AIM_OK);
    assert_memory_equal(y.data, ((int64_t[]){1, 2, 3, -1, -1, -1}), 6 * sizeof(int64_t));
    free(y.data);
    free_node(nd);

    /* Add [2,3,1] + [1,4] -> [2,3,4] */
    float p[6] = {0, 10, 20, 30, 40, 50}, q[4] = {1, 2, 3, 4};
    aim_tensor tp = {.dtype = AIM_DTYPE_FLOAT, .rank = 3, .dims = {2, 3, 1}, .data = p};
    aim_tensor tq = {.dtype = AIM_DTYPE_FLOAT, .rank = 2, .dims = {1, 4}, .data = q};
    const aim_tensor *ain[2] = {&tp, &tq};
    nd = node("Add");
    assert_int_equal(run_node(nd, 14, 2, ain, 1, &y), AIM_OK);
    assert_int_equal(y.rank, 3);
    assert_int_equal(y.dims[2], 4);
    for (int i = 0; i < 24; i++)
        assert_true(((float *)y.data)[i] == p[i / 4] + q[i % 4]);
    free(y.data);
    free_node(nd);
}

static void test_legacy_broadcast(void **state) {
    (void)state;
    /* opset 6: B [3] against A [2,3,2] from axis 1 */
    float a[12] = {0}, b[3] = {1, 2, 3};
    aim_tensor ta = {.dtype = AIM_DTYPE_FLOAT, .rank = 3, .dims = {2, 3, 2}, .data = a};
    aim_tensor tb = T1(AIM_DTYPE_FLOAT, 3, b), y;
    const aim_tensor *in[2] = {&ta, &tb};
    Onnx__NodeProto *nd = node("Sub");
    attr_int(nd, "broadcast", 1);
    attr_int(nd, "axis", 1);
    assert_int_equal(run_node(nd, 6, 2, in, 1, &y), AIM_OK);
    for (int i = 0; i < 12; i++)
        assert_true(((float *)y.data)[i] == -b[(i / 2) % 3]);
    free(y.data);
    free_node(nd);
    /* without broadcast=1 the shapes must match */
    nd = node("Sub");
    assert_int_equal(run_node(nd, 6, 2, in, 1, &y), AIM_ERR_PARSE);
    free_node(nd);
}

static void test_float16_long_runs(void **state) {
    (void)state;
    enum { N = 600 }; /* more than one conversion chunk */
    uint16_t a[N], s = aim_float_to_half(0.5f);
    for (int i = 0; i < N; i++)
        a[i] = aim_float_to_half((float)(i % 64));
    aim_tensor ta = T1(AIM_DTYPE_FLOAT16, N, a), ts = {.dtype = AIM_DTYPE_FLOAT16, .data = &s}, y;
    const aim_tensor *in[2] = {&ts, &ta};
    Onnx__NodeProto *nd = node("Mul");
    assert_int_equal(run_node(nd, 14, 2, in, 1, &y), AIM_OK);
    for (int i = 0; i < N; i++)
        assert_true(aim_half_to_float(((uint16_t *)y.data)[i]) == 0.5f * (float)(i % 64));
    free(y.data);
    free_node(nd);
    nd = node("Less");
    assert_int_equal(run_node(nd, 13, 2, in, 1, &y), AIM_OK);
    assert_int_equal(y.dtype, AIM_DTYPE_BOOL);
    for (int i = 0; i < N; i++)
        assert_int_equal(((uint8_t *)y.data)[i], 0.5f < (float)(i % 64));
    free(y.data);
    free_node(nd);
    /* Mean of three float16 inputs */
    const aim_tensor *three[3] = {&ta, &ta, &ts};
    nd = node("Mean");
    assert_int_equal(run_node(nd, 13, 3, three, 1, &y), AIM_OK);
    assert_true(fabsf(aim_half_to_float(((uint16_t *)y.data)[3]) - 6.5f / 3) < 2e-3f);
    free(y.data);
    free_node(nd);
}

static void test_pow_mixed_types(void **state) {
    (void)state;
    int32_t base[4] = {2, -1, 2, 3};
    int64_t e[4] = {10, 3, -1, 0};
    aim_tensor tb = T1(AIM_DTYPE_INT32, 4, base), te = T1(AIM_DTYPE_INT64, 4, e), y;
    const aim_tensor *in[2] = {&tb, &te};
    Onnx__NodeProto *nd = node("Pow");
    assert_int_equal(run_node(nd, 15, 2, in, 1, &y), AIM_OK);
    assert_int_equal(y.dtype, AIM_DTYPE_INT32);
    assert_memory_equal(y.data, ((int32_t[]){1024, -1, 0, 1}), 4 * sizeof(int32_t));
    free(y.data);
    /* float16 base, float exponent */
    uint16_t h[2] = {aim_float_to_half(3.0f), aim_float_to_half(4.0f)};
    float fe[2] = {2.0f, 0.5f};
    aim_tensor th = T1(AIM_DTYPE_FLOAT16, 2, h), tf = T1(AIM_DTYPE_FLOAT, 2, fe);
    const aim_tensor *hin[2] = {&th, &tf};
    assert_int_equal(run_node(nd, 15, 2, hin, 1, &y), AIM_OK);
    assert_int_equal(y.dtype, AIM_DTYPE_FLOAT16);
    assert_true(aim_half_to_float(((uint16_t *)y.data)[0]) == 9.0f);
    assert_true(aim_half_to_float(((uint16_t *)y.data)[1]) == 2.0f);
    free(y.data);
    /* a bool exponent is not a number type */
    aim_tensor tbool = {.dtype = AIM_DTYPE_BOOL, .rank = 1, .dims = {4}, .data = base};
    const aim_tensor *bin[2] = {&tb, &tbool};
    assert_int_equal(run_node(nd, 15, 2, bin, 1, &y), AIM_ERR_UNSUPPORTED);
    free_node(nd);
}

static void test_clip(void **state) {
    (void)state;
    int8_t x[4] = {-128, -5, 5, 127}, lo = -3, hi = -4;
    aim_tensor tx = T1(AIM_DTYPE_INT8, 4, x), tlo = {.dtype = AIM_DTYPE_INT8, .data = &lo};
    aim_tensor thi = {.dtype = AIM_DTYPE_INT8, .data = &hi}, y;
    Onnx__NodeProto *nd = node("Clip");
    const aim_tensor *in[3] = {&tx, &tlo, &thi};
    assert_int_equal(run_node(nd, 13, 3, in, 1, &y), AIM_OK); /* min > max: max wins */
    assert_memory_equal(y.data, ((int8_t[]){-4, -4, -4, -4}), 4);
    free(y.data);
    const aim_tensor *only_max[3] = {&tx, NULL, &tlo};
    assert_int_equal(run_node(nd, 13, 3, only_max, 1, &y), AIM_OK);
    assert_memory_equal(y.data, ((int8_t[]){-128, -5, -3, -3}), 4);
    free(y.data);
    free_node(nd);

    /* opset 6: bounds are attributes */
    float f[3] = {-2, 0.5f, NAN};
    aim_tensor tf = T1(AIM_DTYPE_FLOAT, 3, f);
    const aim_tensor *fin[1] = {&tf};
    nd = node("Clip");
    attr_float(nd, "min", -1);
    attr_float(nd, "max", 0.25f);
    assert_int_equal(run_node(nd, 6, 1, fin, 1, &y), AIM_OK);
    const float *v = y.data;
    assert_true(v[0] == -1 && v[1] == 0.25f && isnan(v[2]));
    free(y.data);
    free_node(nd);
}

static void test_shape_and_size(void **state) {
    (void)state;
    aim_tensor x = {.dtype = AIM_DTYPE_FLOAT, .rank = 4, .dims = {1, 3, 5, 7}}; /* no data */
    const aim_tensor *in[1] = {&x};
    aim_tensor y;
    Onnx__NodeProto *nd = node("Shape");
    attr_int(nd, "start", 1);
    attr_int(nd, "end", -1);
    assert_int_equal(run_node(nd, 15, 1, in, 1, &y), AIM_OK);
    assert_int_equal(y.dims[0], 2);
    assert_memory_equal(y.data, ((int64_t[]){3, 5}), 2 * sizeof(int64_t));
    free(y.data);
    assert_int_equal(run_node(nd, 13, 1, in, 1, &y), AIM_OK); /* before 15: the whole shape */
    assert_int_equal(y.dims[0], 4);
    free(y.data);
    free_node(nd);
    nd = node("Shape");
    attr_int(nd, "start", 3);
    attr_int(nd, "end", 1);
    assert_int_equal(run_node(nd, 15, 1, in, 1, &y), AIM_OK);
    assert_int_equal(y.dims[0], 0);
    free(y.data);
    free_node(nd);
    nd = node("Size");
    assert_int_equal(run_node(nd, 13, 1, in, 1, &y), AIM_OK);
    assert_int_equal(y.rank, 0);
    assert_int_equal(*(int64_t *)y.data, 105);
    free(y.data);
    free_node(nd);
}

static void test_value_producers(void **state) {
    (void)state;
    aim_tensor y;
    Onnx__NodeProto *nd = node("Constant");
    Onnx__AttributeProto *a =
        tb_attr(nd, "value_ints", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = 3;
    a->ints = tb_alloc(3 * sizeof *a->ints);
    a->ints[0] = 4, a->ints[1] = -1, a->ints[2] = 9;
    assert_int_equal(run_node(nd, 13, 0, NULL, 1, &y), AIM_OK);
    assert_int_equal(y.dtype, AIM_DTYPE_INT64);
    assert_int_equal(y.dims[0], 3);
    assert_memory_equal(y.data, a->ints, 3 * sizeof(int64_t));
    free(y.data);
    free_node(nd);

    nd = node("Constant");
    tb_attr(nd, "sparse_value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR);
    assert_int_equal(run_node(nd, 13, 0, NULL, 1, &y), AIM_ERR_UNSUPPORTED);
    free_node(nd);
    nd = node("Constant");
    assert_int_equal(run_node(nd, 13, 0, NULL, 1, &y), AIM_ERR_PARSE);
    free_node(nd);

    /* ConstantOfShape: dynamic while the shape's values are unknown, float zeros by default */
    int64_t dims[2] = {2, 3};
    aim_tensor shape = {.dtype = AIM_DTYPE_INT64, .rank = 1, .dims = {2}};
    const aim_tensor *in[1] = {&shape};
    nd = node("ConstantOfShape");
    assert_int_equal(run_node_opt(nd, 9, 1, in, 1, &y, true), AIM_OK);
    assert_int_equal(y.rank, -1);
    shape.data = dims;
    assert_int_equal(run_node(nd, 9, 1, in, 1, &y), AIM_OK);
    assert_int_equal(y.dtype, AIM_DTYPE_FLOAT);
    assert_memory_equal(y.data, ((float[6]){0}), 6 * sizeof(float));
    free(y.data);
    dims[1] = -1;
    assert_int_equal(run_node(nd, 9, 1, in, 1, &y), AIM_ERR_PARSE);
    free_node(nd);
}

static void test_dropout(void **state) {
    (void)state;
    float x[5] = {1, 2, 3, 4, 5}, ratio = 0.5f;
    uint8_t on = 1;
    aim_tensor tx = T1(AIM_DTYPE_FLOAT, 5, x), tr = {.dtype = AIM_DTYPE_FLOAT, .data = &ratio};
    aim_tensor tt = {.dtype = AIM_DTYPE_BOOL, .data = &on}, y[2];
    /* opset 7: inference, the mask has the input's type */
    const aim_tensor *in1[1] = {&tx};
    Onnx__NodeProto *nd = node("Dropout");
    assert_int_equal(run_node(nd, 7, 1, in1, 2, y), AIM_OK);
    assert_memory_equal(y[0].data, x, sizeof x);
    assert_int_equal(y[1].dtype, AIM_DTYPE_FLOAT);
    assert_memory_equal(y[1].data, ((float[]){1, 1, 1, 1, 1}), sizeof x);
    free(y[0].data);
    free(y[1].data);
    /* opset 13, training with seed 0: numpy's RandomState(0).uniform gives
     * 0.549 0.715 0.603 0.545 0.424, so the last element is dropped and the rest doubled */
    attr_int(nd, "seed", 0);
    const aim_tensor *in3[3] = {&tx, &tr, &tt};
    assert_int_equal(run_node(nd, 13, 3, in3, 2, y), AIM_OK);
    assert_memory_equal(y[0].data, ((float[]){2, 4, 6, 8, 0}), sizeof x);
    assert_memory_equal(y[1].data, ((uint8_t[]){1, 1, 1, 1, 0}), 5);
    free(y[0].data);
    free(y[1].data);
    ratio = 1;
    assert_int_equal(run_node(nd, 13, 3, in3, 2, y), AIM_ERR_INVALID_ARG);
    free(y[0].data);
    free(y[1].data);
    free_node(nd);
}

static void test_load_time_errors(void **state) {
    (void)state;
    int32_t i[2] = {1, 2};
    float f[2] = {1, 2};
    aim_tensor ti = T1(AIM_DTYPE_INT32, 2, i), tf = T1(AIM_DTYPE_FLOAT, 2, f), y;
    const aim_tensor *mixed[2] = {&ti, &tf};
    Onnx__NodeProto *nd = node("Add");
    assert_int_equal(run_node(nd, 14, 2, mixed, 1, &y), AIM_ERR_PARSE);
    assert_non_null(strstr(aim_last_error(), "node 'n' (Add"));
    free_node(nd);
    const aim_tensor *ints[1] = {&ti};
    nd = node("Sqrt");
    assert_int_equal(run_node(nd, 13, 1, ints, 1, &y), AIM_ERR_UNSUPPORTED);
    assert_non_null(strstr(aim_last_error(), "int32"));
    free_node(nd);
    const aim_tensor *pair[2] = {&ti, &ti};
    nd = node("And");
    assert_int_equal(run_node(nd, 7, 2, pair, 1, &y), AIM_ERR_UNSUPPORTED);
    free_node(nd);
    aim_tensor t3 = T1(AIM_DTYPE_INT32, 3, NULL);
    const aim_tensor *bad[2] = {&ti, &t3};
    nd = node("Mul");
    assert_int_equal(run_node(nd, 14, 2, bad, 1, &y), AIM_ERR_PARSE);
    assert_non_null(strstr(aim_last_error(), "cannot be broadcast"));
    free_node(nd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integer_division),
        cmocka_unit_test(test_integer_wrapping),
        cmocka_unit_test(test_mod),
        cmocka_unit_test(test_round_half_to_even),
        cmocka_unit_test(test_cast),
        cmocka_unit_test(test_broadcast_three_operands),
        cmocka_unit_test(test_legacy_broadcast),
        cmocka_unit_test(test_float16_long_runs),
        cmocka_unit_test(test_pow_mixed_types),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_shape_and_size),
        cmocka_unit_test(test_value_producers),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_load_time_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
