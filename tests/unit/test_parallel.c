/*
 * test_parallel.c: aim_parallel_for covers every index exactly once for any thread count, and
 * the reference kernels (Conv, depthwise Conv, MaxPool, Gemm) give bit-identical outputs with
 * threads = 1 and threads = 3.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "aim/session.h"
#include "core/parallel.h"
#include "onnx_builder.h"

#include <pthread.h>

/* ---- aim_parallel_for ---------------------------------------------------------------------- */

typedef struct {
    int *hits;
    pthread_mutex_t lock;
    int calls;
} cover;

static void mark(void *ctx, size_t begin, size_t end) {
    cover *c = ctx;
    assert_true(begin < end);
    for (size_t i = begin; i < end; i++)
        __atomic_fetch_add(&c->hits[i], 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&c->lock);
    c->calls++;
    pthread_mutex_unlock(&c->lock);
}

static void test_covers_each_index_once(void **state) {
    (void)state;
    const size_t sizes[] = {0, 1, 2, 3, 7, 1000};
    const int threads[] = {1, 2, 3, 8};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
            size_t n = sizes[s];
            cover c = {calloc(n + 1, sizeof(int)), PTHREAD_MUTEX_INITIALIZER, 0};
            aim_parallel_for(threads[t], n, mark, &c);
            for (size_t i = 0; i < n; i++)
                assert_int_equal(c.hits[i], 1);
            size_t most = n < (size_t)threads[t] ? n : (size_t)threads[t];
            assert_true((size_t)c.calls <= most);
            assert_true(n == 0 ? c.calls == 0 : c.calls >= 1);
            free(c.hits);
        }
}

/* ---- Reference kernels: threads = 1 vs threads = 3 ----------------------------------------- */

static void add_init(Onnx__GraphProto *g, const char *name, size_t rank, const int64_t *dims,
                     unsigned seed) {
    size_t n = 1;
    for (size_t i = 0; i < rank; i++)
        n *= (size_t)dims[i];
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    TB_APPEND(g->initializer, g->n_initializer,
              tb_tensor(name, AIM_DTYPE_FLOAT, rank, dims, v, n * sizeof *v));
    free(v);
}

static void attr_ints(Onnx__NodeProto *n, const char *name, int count, const int64_t *v) {
    Onnx__AttributeProto *a = tb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    for (int i = 0; i < count; i++)
        TB_APPEND(a->ints, a->n_ints, v[i]);
}

static void attr_int(Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = tb_attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

/* x[1,8,128,128] -> Conv 3x3 (16) -> depthwise Conv 3x3 -> MaxPool 2x2 -> p;
 * p -> Flatten -> Gemm (transB, 16 outputs) -> y. Large enough that every kernel splits. */
static Onnx__ModelProto *conv_gemm_model(void) {
    Onnx__ModelProto *m = tb_model();
    Onnx__GraphProto *g = m->graph;
    const int64_t w1[4] = {16, 8, 3, 3}, b1[1] = {16}, w2[4] = {16, 1, 3, 3}, gw[2] = {16, 65536};
    const int64_t pads[4] = {1, 1, 1, 1}, k2[2] = {2, 2};
    add_init(g, "w1", 4, w1, 1);
    add_init(g, "b1", 1, b1, 2);
    add_init(g, "w2", 4, w2, 3);
    add_init(g, "gw", 2, gw, 4);
    add_init(g, "gb", 1, b1, 5);
    TB_APPEND(g->input, g->n_input, tb_value("x", AIM_DTYPE_FLOAT, "1,8,128,128"));
    TB_APPEND(g->output, g->n_output, tb_value("p", AIM_DTYPE_FLOAT, "1,16,64,64"));
    TB_APPEND(g->output, g->n_output, tb_value("y", AIM_DTYPE_FLOAT, "1,16"));
    Onnx__NodeProto *n = tb_node("conv", "Conv", "x,w1,b1", "c");
    attr_ints(n, "pads", 4, pads);
    TB_APPEND(g->node, g->n_node, n);
    n = tb_node("dw", "Conv", "c,w2", "d");
    attr_ints(n, "pads", 4, pads);
    attr_int(n, "group", 16);
    TB_APPEND(g->node, g->n_node, n);
    n = tb_node("pool", "MaxPool", "d", "p");
    attr_ints(n, "kernel_shape", 2, k2);
    attr_ints(n, "strides", 2, k2);
    TB_APPEND(g->node, g->n_node, n);
    TB_APPEND(g->node, g->n_node, tb_node("flat", "Flatten", "p", "f"));
    n = tb_node("gemm", "Gemm", "f,gw,gb", "y");
    attr_int(n, "transB", 1);
    TB_APPEND(g->node, g->n_node, n);
    return m;
}

/* Runs the model on a reference session with `threads`; outputs p and y. */
static void run_with(const aim_model *model, int threads, const aim_tensor *in, aim_tensor *out) {
    aim_session_options opt = {.threads = threads, .reference_only = true};
    aim_session *s = NULL;
    if (aim_session_create(model, &opt, &s) != AIM_OK) fail_msg("session: %s", aim_last_error());
    assert_int_equal(aim_session_run(s, in, out), AIM_OK);
    aim_session_free(s);
}

static void test_threads_bit_identical(void **state) {
    (void)state;
    size_t size;
    uint8_t *bytes = tb_pack(conv_gemm_model(), &size);
    aim_model *model = NULL;
    assert_int_equal(aim_model_load_memory(bytes, size, NULL, &model), AIM_OK);
    free(bytes);
    static float x[8 * 128 * 128];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        x[i] = (float)((i * 7919) % 1000) / 250.0f - 2.0f;
    aim_tensor in = {.dtype = AIM_DTYPE_FLOAT, .rank = 4, .dims = {1, 8, 128, 128}, .data = x};
    aim_tensor one[2], three[2];
    run_with(model, 1, &in, one);
    run_with(model, 3, &in, three);
    const size_t counts[2] = {16 * 64 * 64, 16};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(one[i].dims[1], 16);
        assert_memory_equal(one[i].dims, three[i].dims, sizeof one[i].dims);
        assert_memory_equal(one[i].data, three[i].data, counts[i] * sizeof(float));
        free(one[i].data);
        free(three[i].data);
    }
    aim_model_free(model);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_covers_each_index_once),
        cmocka_unit_test(test_threads_bit_identical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
