/*
 * test_session.c: the session layer: load-time checks with messages naming the node, constant
 * folding, dead-node removal, the liveness memory plan, input validation, concurrent runs of
 * one session, and the per-step profile.
 *
 * Models are built in code with onnx_builder.h and use a few simple operators (Add, Mul, Relu,
 * Shape, Reshape) so that expected values can be computed by hand here.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "aim/session.h"
#include "onnx_builder.h"

#include <pthread.h>

static aim_model *load_built(Onnx__ModelProto *proto, aim_status *status) {
    size_t size;
    uint8_t *bytes = tb_pack(proto, &size);
    aim_model *m = NULL;
    *status = aim_model_load_memory(bytes, size, NULL, &m);
    free(bytes);
    return m;
}

/* x[4] -> Add(x, one) -> Relu -> Mul(., two) -> y */
static Onnx__ModelProto *chain_model(void) {
    Onnx__ModelProto *m = tb_model();
    Onnx__GraphProto *g = m->graph;
    float one[4] = {1, 1, 1, 1}, two[4] = {2, 2, 2, 2};
    int64_t dims[1] = {4};
    TB_APPEND(g->initializer, g->n_initializer,
              tb_tensor("one", AIM_DTYPE_FLOAT, 1, dims, one, sizeof one));
    TB_APPEND(g->initializer, g->n_initializer,
              tb_tensor("two", AIM_DTYPE_FLOAT, 1, dims, two, sizeof two));
    TB_APPEND(g->input, g->n_input, tb_value("x", AIM_DTYPE_FLOAT, "4"));
    TB_APPEND(g->output, g->n_output, tb_value("y", AIM_DTYPE_FLOAT, "4"));
    TB_APPEND(g->node, g->n_node, tb_node("add", "Add", "x,one", "a"));
    TB_APPEND(g->node, g->n_node, tb_node("relu", "Relu", "a", "r"));
    TB_APPEND(g->node, g->n_node, tb_node("mul", "Mul", "r,two", "y"));
    return m;
}

static aim_session *make_session(Onnx__ModelProto *proto, aim_model **model) {
    aim_status st;
    *model = load_built(proto, &st);
    assert_int_equal(st, AIM_OK);
    aim_session *s = NULL;
    aim_session_options opt = {.threads = 1};
    st = aim_session_create(*model, &opt, &s);
    if (st != AIM_OK) fail_msg("session: %s", aim_last_error());
    return s;
}

static void test_chain_runs(void **state) {
    (void)state;
    aim_model *m;
    aim_session *s = make_session(chain_model(), &m);
    assert_int_equal(aim_session_input_count(s), 1);
    assert_int_equal(aim_session_output_count(s), 1);
    assert_string_equal(aim_session_input_name(s, 0), "x");
    float x[4] = {-3, -1, 0, 2};
    aim_tensor in = {.dtype = AIM_DTYPE_FLOAT, .rank = 1, .dims = {4}, .data = x};
    aim_tensor out;
    assert_int_equal(aim_session_run(s, &in, &out), AIM_OK);
    assert_int_equal(out.dtype, AIM_DTYPE_FLOAT);
    assert_int_equal(out.rank, 1);
    assert_int_equal(out.dims[0], 4);
    const float *y = out.data;
    /* relu(x + 1) * 2 */
    assert_true(y[0] == 0.0f && y[1] == 0.0f && y[2] == 2.0f && y[3] == 6.0f);
    free(out.data);
    aim_session_free(s);
    aim_model_free(m);
}

static void test_unsupported_op_names_node(void **state) {
    (void)state;
    Onnx__ModelProto *p = chain_model();
    free(p->graph->node[1]->op_type);
    p->graph->node[1]->op_type = tb_str("FancyOp");
    aim_status st;
    aim_model *m = load_built(p, &st);
    assert_int_equal(st, AIM_OK);
    aim_session *s = NULL;
    st = aim_session_create(m, NULL, &s);
    assert_int_equal(st, AIM_ERR_UNSUPPORTED);
    assert_null(s);
    assert_non_null(strstr(aim_last_error(), "relu"));
    assert_non_null(strstr(aim_last_error(), "FancyOp"));
    aim_model_free(m);
}

static void test_undefined_input(void **state) {
    (void)state;
    Onnx__ModelProto *p = chain_model();
    free(p->graph->node[2]->input[0]);
    p->graph->node[2]->input[0] = tb_str("nowhere");
    aim_status st;
    aim_model *m = load_built(p, &st);
    aim_session *s = NULL;
    assert_int_equal(aim_session_create(m, NULL, &s), AIM_ERR_PARSE);
    assert_non_null(strstr(aim_last_error(), "nowhere"));
    assert_non_null(strstr(aim_last_error(), "mul"));
    aim_model_free(m);
}

static void test_cycle_refused(void **state) {
    (void)state;
    Onnx__ModelProto *p = chain_model();
    /* add reads relu's output: add -> relu -> add */
    free(p->graph->node[0]->input[0]);
    p->graph->node[0]->input[0] = tb_str("r");
    aim_status st;
    aim_model *m = load_built(p, &st);
    aim_session *s = NULL;
    assert_int_equal(aim_session_create(m, NULL, &s), AIM_ERR_PARSE);
    assert_non_null(strstr(aim_last_error(), "cycle"));
    aim_model_free(m);
}

static void test_shape_mismatch_at_load(void **state) {
    (void)state;
    Onnx__ModelProto *p = chain_model();
    float three[3] = {1, 2, 3};
    int64_t dims[1] = {3};
    TB_APPEND(p->graph->initializer, p->graph->n_initializer,
              tb_tensor("three", AIM_DTYPE_FLOAT, 1, dims, three, sizeof three));
    free(p->graph->node[2]->input[1]);
    p->graph->node[2]->input[1] = tb_str("three"); /* [4] * [3] cannot broadcast */
    aim_status st;
    aim_model *m = load_built(p, &st);
    aim_session *s = NULL;
    assert_int_equal(aim_session_create(m, NULL, &s), AIM_ERR_PARSE);
    assert_non_null(strstr(aim_last_error(), "mul"));
    aim_model_free(m);
}

static void test_constant_folding_and_dead_nodes(void **state) {
    (void)state;
    Onnx__ModelProto *p = chain_model();
    Onnx__GraphProto *g = p->graph;
    /* two2 = two + two is constant: folded. unused = Relu(x) feeds nothing: removed. */
    TB_APPEND(g->node, g->n_node, tb_node("fold", "Add", "two,two", "four"));
    TB_APPEND(g->node, g->n_node, tb_node("dead", "Relu", "x", "unused"));
    free(g->node[2]->input[1]);
    g->node[2]->input[1] = tb_str("four");
    /* Node order in the file is not topological any more ("mul" reads "four" produced later). */
    aim_model *m;
    aim_session *s = make_session(p, &m);
    assert_int_equal(aim_session_node_count(s), 3); /* add, relu, mul */
    float x[4] = {1, 2, 3, -5};
    aim_tensor in = {.dtype = AIM_DTYPE_FLOAT, .rank = 1, .dims = {4}, .data = x};
    aim_tensor out;
    assert_int_equal(aim_session_run(s, &in, &out), AIM_OK);
    const float *y = out.data;
    assert_true(y[0] == 8.0f && y[1] == 12.0f && y[2] == 16.0f && y[3] == 0.0f);
    free(out.data);
    aim_session_free(s);
    aim_model_free(m);
}

/* x[1024] -> Relu x8 -> y: intermediates live one step each, so two buffers suffice. */
static void test_memory_plan_reuses_buffers(void **state) {
    (void)state;
    Onnx__ModelProto *p = tb_model();
    Onnx__GraphProto *g = p->graph;
    TB_APPEND(g->input, g->n_input, tb_value("x", AIM_DTYPE_FLOAT, "1024"));
    TB_APPEND(g->output, g->n_output, tb_value("y", AIM_DTYPE_FLOAT, "1024"));
    const char *names[] = {"x", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "y"};
    for (int i = 0; i < 8; i++) {
        char in[8], out[8];
        snprintf(in, sizeof in, "%s", names[i]);
        snprintf(out, sizeof out, "%s", names[i + 1]);
        TB_APPEND(g->node, g->n_node, tb_node(NULL, "Relu", in, out));
    }
    aim_model *m;
    aim_session *s = make_session(p, &m);
    size_t one = 1024 * sizeof(float);
    assert_true(aim_session_arena_bytes(s) >= one);
    assert_true(aim_session_arena_bytes(s) <= 2 * one); /* 7 intermediates, 2 buffers */
    float x[1024];
    for (int i = 0; i < 1024; i++)
        x[i] = (float)(i - 512);
    aim_tensor in = {.dtype = AIM_DTYPE_FLOAT, .rank = 1, .dims = {1024}, .data = x};
    aim_tensor out;
    assert_int_equal(aim_session_run(s, &in, &out), AIM_OK);
    for (int i = 0; i < 1024; i++)
        assert_true(((float *)out.data)[i] == (i < 512 ? 0.0f : x[i]));
    free(out.data);
    aim_session_free(s);
    aim_model_free(m);
}

/* Outputs y, y again, and the graph input x itself: three independent buffers. */
static void test_repeated_and_input_outputs(void **state) {
    (void)state;
    Onnx__ModelProto *p = chain_model();
    Onnx__GraphProto *g = p->graph;
    TB_APPEND(g->output, g->n_output, tb_value("y", AIM_DTYPE_FLOAT, "4"));
    TB_APPEND(g->output, g->n_output, tb_value("x", AIM_DTYPE_FLOAT, "4"));
    aim_model *m;
    aim_session *s = make_session(p, &m);
    assert_int_equal(aim_session_output_count(s), 3);
    float x[4] = {-3, -1, 0, 2};
    aim_tensor in = {.dtype = AIM_DTYPE_FLOAT, .rank = 1, .dims = {4}, .data = x};
    aim_tensor out[3];
    if (aim_session_run(s, &in, out) != AIM_OK) fail_msg("run: %s", aim_last_error());
    const float want[4] = {0, 0, 2, 6};
    assert_memory_equal(out[0].data, want, sizeof want);
    assert_memory_equal(out[1].data, want, sizeof want);
    assert_memory_equal(out[2].data, x, sizeof x);
    assert_ptr_not_equal(out[0].data, out[1].data);
    assert_ptr_not_equal(out[2].data, x);
    for (int i = 0; i < 3; i++)
        free(out[i].data);
    aim_session_free(s);
    aim_model_free(m);
}

static void test_input_checks(void **state) {
    (void)state;
    aim_model *m;
    aim_session *s = make_session(chain_model(), &m);
    int32_t xi[4] = {0};
    aim_tensor wrong_type = {.dtype = AIM_DTYPE_INT32, .rank = 1, .dims = {4}, .data = xi};
    aim_tensor out;
    assert_int_equal(aim_session_run(s, &wrong_type, &out), AIM_ERR_INVALID_ARG);
    assert_non_null(strstr(aim_last_error(), "'x'"));
    assert_non_null(strstr(aim_last_error(), "int32"));
    float xf[5] = {0};
    aim_tensor wrong_shape = {.dtype = AIM_DTYPE_FLOAT, .rank = 1, .dims = {5}, .data = xf};
    assert_int_equal(aim_session_run(s, &wrong_shape, &out), AIM_ERR_INVALID_ARG);
    assert_non_null(strstr(aim_last_error(), "[5]"));
    aim_tensor no_data = {.dtype = AIM_DTYPE_FLOAT, .rank = 1, .dims = {4}, .data = NULL};
    assert_int_equal(aim_session_run(s, &no_data, &out), AIM_ERR_INVALID_ARG);
    aim_session_free(s);
    aim_model_free(m);
}

typedef struct {
    aim_session *s;
    int seed;
    int failures;
} worker_arg;

/* The profile option: every step timed on every run; without it, steps are listed untimed. */
static void test_step_profile(void **state) {
    (void)state;
    aim_status st;
    aim_model *m = load_built(chain_model(), &st);
    assert_int_equal(st, AIM_OK);
    for (int profiled = 0; profiled <= 1; profiled++) {
        aim_session_options opt = {.threads = 1, .profile = profiled};
        aim_session *s = NULL;
        assert_int_equal(aim_session_create(m, &opt, &s), AIM_OK);
        float x[4] = {-3, -1, 0, 2};
        aim_tensor in = {.dtype = AIM_DTYPE_FLOAT, .rank = 1, .dims = {4}, .data = x}, out;
        for (int run = 0; run < 3; run++) {
            assert_int_equal(aim_session_run(s, &in, &out), AIM_OK);
            free(out.data);
        }
        size_t n = aim_session_step_count(s);
        assert_true(n >= 2 && n <= 3); /* Relu may be fused or its own step */
        bool add = false, writes_y = false;
        double total = 0;
        for (size_t i = 0; i < n; i++) {
            aim_session_step_info info;
            assert_true(aim_session_step_profile(s, i, &info));
            assert_int_equal(info.runs, profiled ? 3 : 0);
            assert_true(info.total_ms >= 0);
            add = add || strcmp(info.kind, "Add") == 0;
            writes_y = writes_y || strcmp(info.output, "y") == 0;
            total += info.total_ms;
        }
        assert_true(add && writes_y);
        assert_true(profiled ? total > 0 : total == 0);
        aim_session_step_info info;
        assert_false(aim_session_step_profile(s, n, &info));
        aim_session_free(s);
    }
    aim_model_free(m);
}

static void *worker(void *p) {
    worker_arg *w = p;
    for (int iter = 0; iter < 200; iter++) {
        float x[4];
        for (int i = 0; i < 4; i++)
            x[i] = (float)(w->seed * 7 + iter - i * 3);
        aim_tensor in = {.dtype = AIM_DTYPE_FLOAT, .rank = 1, .dims = {4}, .data = x};
        aim_tensor out;
        if (aim_session_run(w->s, &in, &out) != AIM_OK) {
            w->failures++;
            continue;
        }
        for (int i = 0; i < 4; i++) {
            float want = x[i] + 1 > 0 ? (x[i] + 1) * 2 : 0;
            if (((float *)out.data)[i] != want) w->failures++;
        }
        free(out.data);
    }
    return NULL;
}

static void test_concurrent_runs(void **state) {
    (void)state;
    aim_model *m;
    aim_session *s = make_session(chain_model(), &m);
    pthread_t threads[4];
    worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (worker_arg){s, i, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    aim_session_free(s);
    aim_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_runs),
        cmocka_unit_test(test_unsupported_op_names_node),
        cmocka_unit_test(test_undefined_input),
        cmocka_unit_test(test_cycle_refused),
        cmocka_unit_test(test_shape_mismatch_at_load),
        cmocka_unit_test(test_constant_folding_and_dead_nodes),
        cmocka_unit_test(test_memory_plan_reuses_buffers),
        cmocka_unit_test(test_repeated_and_input_outputs),
        cmocka_unit_test(test_input_checks),
        cmocka_unit_test(test_concurrent_runs),
        cmocka_unit_test(test_step_profile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
