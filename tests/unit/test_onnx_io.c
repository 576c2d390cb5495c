/*
 * test_onnx_io.c: unit tests of the loader's failure paths (src/onnx/model_io.c, tensor.c,
 * wire.c): hostile or damaged model bytes must fail cleanly with a specific status, never crash,
 * allocate what the file merely declares, or read outside the model's folder.
 *
 * Run under -DAIM_SANITIZE=ON, the truncation and corruption sweeps double as a small
 * deterministic fuzz of the whole load path.
 */
#define _XOPEN_SOURCE 700
#include "onnx_builder.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define TESTDATA "/usr/share/libonnx-testdata/data/node/"

/* A model with one float initializer `w` of the given dims and raw bytes. */
static uint8_t *tensor_model(size_t rank, const int64_t *dims, const void *raw, size_t len,
                             size_t *size) {
    Onnx__ModelProto *p = tb_model();
    Onnx__GraphProto *g = p->graph;
    TB_APPEND(g->initializer, g->n_initializer,
              tb_tensor("w", AIM_DTYPE_FLOAT, rank, dims, raw, len));
    TB_APPEND(g->node, g->n_node, tb_node("n", "Identity", "w", "y"));
    TB_APPEND(g->output, g->n_output, tb_value("y", AIM_DTYPE_FLOAT, NULL));
    return tb_pack(p, size);
}

static aim_status load_bytes(const uint8_t *data, size_t size, const char *dir) {
    aim_model *m = NULL;
    aim_status st = aim_model_load_memory(data, size, dir, &m);
    if (st == AIM_OK)
        assert_non_null(m);
    else
        assert_null(m);
    aim_model_free(m);
    return st;
}

/* Every prefix of `data` either loads or fails with a status (never crashes or leaks). */
static void sweep_truncations(const uint8_t *data, size_t size) {
    size_t failures = 0;
    for (size_t n = 0; n < size; n++) {
        aim_status st = load_bytes(data, n, NULL);
        if (st != AIM_OK) {
            failures++;
            assert_true(st == AIM_ERR_PARSE || st == AIM_ERR_LIMIT);
            assert_true(aim_last_error()[0] != 0);
        }
    }
    assert_true(failures > 0);
    assert_int_equal(load_bytes(data, size, NULL), AIM_OK);
}

static void test_truncated_built_model(void **state) {
    (void)state;
    const float w[4] = {1, 2, 3, 4};
    const int64_t dims[2] = {2, 2};
    size_t size;
    uint8_t *data = tensor_model(2, dims, w, sizeof w, &size);
    sweep_truncations(data, size);
    free(data);
}

static void test_truncated_testdata(void **state) {
    (void)state;
    const char *names[] = {"test_add", "test_if", "test_loop11"};
    int ran = 0;
    for (size_t i = 0; i < AIM_ARRAY_LEN(names); i++) {
        char path[256];
        snprintf(path, sizeof path, TESTDATA "%s/model.onnx", names[i]);
        uint8_t *data;
        size_t size;
        if (aim_file_read(path, 1 << 20, &data, &size) != AIM_OK) continue;
        sweep_truncations(data, size);
        free(data);
        ran++;
    }
    if (!ran) skip();
}

/* Random byte changes (fixed seed): any status is fine, crashes and leaks are not. */
static void test_corrupted_bytes(void **state) {
    (void)state;
    uint8_t *orig;
    size_t size;
    if (aim_file_read(TESTDATA "test_loop11/model.onnx", 1 << 20, &orig, &size) != AIM_OK) skip();
    uint8_t *data = tb_alloc(size);
    uint32_t seed = 12345;
    size_t loaded = 0;
    for (int round = 0; round < 3000; round++) {
        memcpy(data, orig, size);
        for (int k = 0; k < 1 + round % 4; k++) {
            seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
            data[seed % size] = (uint8_t)(seed >> 8);
        }
        if (load_bytes(data, size, NULL) == AIM_OK) loaded++;
    }
    assert_true(loaded > 0 && loaded < 3000); /* some damage is harmless, some is caught */
    free(data);
    free(orig);
}

static void test_garbage_and_empty(void **state) {
    (void)state;
    const uint8_t junk[] = "this is not a protobuf at all";
    assert_int_equal(load_bytes(junk, sizeof junk, NULL), AIM_ERR_PARSE);
    assert_int_equal(load_bytes(junk, 0, NULL), AIM_ERR_PARSE); /* no graph */
    assert_non_null(strstr(aim_last_error(), "graph"));
    const uint8_t groups[] = {0x0b, 0x0c}; /* start/end group wire types */
    assert_int_equal(load_bytes(groups, sizeof groups, NULL), AIM_ERR_PARSE);
    const uint8_t long_len[] = {0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f}; /* graph, 4 GiB long */
    assert_int_equal(load_bytes(long_len, sizeof long_len, NULL), AIM_ERR_PARSE);
}

static void test_huge_declared_dims(void **state) {
    (void)state;
    const int64_t dims[2] = {1000000, 1000000};
    const float four[1] = {1};
    size_t size;
    uint8_t *data = tensor_model(2, dims, four, sizeof four, &size);
    aim_status st = load_bytes(data, size, NULL);
    assert_true(st == AIM_ERR_LIMIT || st == AIM_ERR_PARSE);
    assert_non_null(strstr(aim_last_error(), "'w'"));
    free(data);

    const int64_t overflow[3] = {INT64_MAX, INT64_MAX, 4}; /* the product wraps */
    data = tensor_model(3, overflow, four, sizeof four, &size);
    st = load_bytes(data, size, NULL);
    assert_true(st == AIM_ERR_LIMIT || st == AIM_ERR_PARSE);
    free(data);

    const int64_t negative[2] = {-1, 4};
    data = tensor_model(2, negative, four, sizeof four, &size);
    assert_int_equal(load_bytes(data, size, NULL), AIM_ERR_PARSE);
    free(data);

    const int64_t mismatch[1] = {2}; /* 2 floats need 8 bytes, 4 given */
    data = tensor_model(1, mismatch, four, sizeof four, &size);
    assert_int_equal(load_bytes(data, size, NULL), AIM_ERR_PARSE);
    free(data);
}

/* Model -> graph -> node -> attribute -> g -> node -> ..., `depth` messages deep. */
static uint8_t *nested_model(size_t depth, size_t *size) {
    static const unsigned cycle[3] = {1, 5, 6}; /* GraphProto.node, NodeProto.attribute, .g */
    size_t cap = depth * 8 + 16, pos = cap;
    uint8_t *buf = tb_alloc(cap);
    for (size_t level = depth; level-- > 0;) {
        unsigned field = level == 0 ? 7 : cycle[(level - 1) % 3]; /* ModelProto.graph first */
        uint64_t len = cap - pos;
        uint8_t tmp[12];
        size_t n = 0;
        tmp[n++] = (uint8_t)(field << 3 | 2);
        do {
            tmp[n++] = (uint8_t)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
            len >>= 7;
        } while (len);
        pos -= n;
        memcpy(buf + pos, tmp, n);
    }
    *size = cap - pos;
    memmove(buf, buf + pos, *size);
    return buf;
}

static void test_deep_nesting(void **state) {
    (void)state;
    size_t size;
    uint8_t *data = nested_model(1000, &size);
    assert_int_equal(load_bytes(data, size, NULL), AIM_ERR_LIMIT);
    assert_non_null(strstr(aim_last_error(), "nested"));
    free(data);
    data = nested_model(AIM_ONNX_MAX_DEPTH + 2, &size);
    assert_int_equal(load_bytes(data, size, NULL), AIM_ERR_LIMIT);
    free(data);
    data = nested_model(31, &size); /* ten subgraphs deep is fine */
    assert_int_equal(load_bytes(data, size, NULL), AIM_OK);
    free(data);
}

/* ---- External data ------------------------------------------------------------------------- */

/* A model whose initializer `e` (float[2]) is stored in `location`. */
static uint8_t *external_model(const char *location, const char *offset, const char *length,
                               int64_t count, size_t *size) {
    Onnx__ModelProto *p = tb_model();
    Onnx__GraphProto *g = p->graph;
    const int64_t dims[1] = {count};
    TB_APPEND(g->initializer, g->n_initializer,
              tb_tensor_external("e", AIM_DTYPE_FLOAT, 1, dims, location, offset, length));
    TB_APPEND(g->node, g->n_node, tb_node("n", "Identity", "e", "y"));
    TB_APPEND(g->output, g->n_output, tb_value("y", AIM_DTYPE_FLOAT, NULL));
    return tb_pack(p, size);
}

static aim_status load_external(const char *dir, const char *location, const char *offset,
                                const char *length, int64_t count) {
    size_t size;
    uint8_t *data = external_model(location, offset, length, count, &size);
    aim_status st = load_bytes(data, size, dir);
    free(data);
    return st;
}

typedef struct {
    char *dir;     /* the model's folder, holding w.bin (16 bytes) */
    char *outside; /* a sibling folder holding secret.bin */
} ext_dirs;

static int ext_setup(void **state) {
    ext_dirs *d = tb_alloc(sizeof *d);
    d->dir = tb_tempdir();
    d->outside = tb_tempdir();
    const float data[4] = {1, 2, 3, 4};
    if (tb_write_bytes(d->dir, "w.bin", data, sizeof data) ||
        tb_write_bytes(d->outside, "secret.bin", data, sizeof data))
        return -1;
    char *target = aim_path_join(d->outside, "secret.bin");
    char *link = aim_path_join(d->dir, "link.bin");
    int rc = symlink(target, link);
    free(target);
    free(link);
    char *sub = aim_path_join(d->dir, "sub");
    rc |= mkdir(sub, 0700);
    free(sub);
    *state = d;
    return rc;
}

static int ext_teardown(void **state) {
    ext_dirs *d = *state;
    tb_rmtree(d->dir);
    tb_rmtree(d->outside);
    free(d->dir);
    free(d->outside);
    free(d);
    return 0;
}

static void test_external_ok(void **state) {
    ext_dirs *d = *state;
    assert_int_equal(load_external(d->dir, "w.bin", NULL, NULL, 4), AIM_OK);
    assert_int_equal(load_external(d->dir, "w.bin", "8", "8", 2), AIM_OK);
    assert_int_equal(load_external(d->dir, "./w.bin", "0", NULL, 2), AIM_OK);
}

static void test_external_escapes(void **state) {
    ext_dirs *d = *state;
    assert_int_equal(load_external(d->dir, "/etc/passwd", NULL, NULL, 2), AIM_ERR_SECURITY);
    assert_non_null(strstr(aim_last_error(), "/etc/passwd"));
    assert_int_equal(load_external(d->dir, "../x", NULL, NULL, 2), AIM_ERR_SECURITY);
    assert_int_equal(load_external(d->dir, "sub/../../x", NULL, NULL, 2), AIM_ERR_SECURITY);
    assert_int_equal(load_external(d->dir, "link.bin", NULL, NULL, 2), AIM_ERR_SECURITY);
    assert_non_null(strstr(aim_last_error(), "outside"));
    assert_int_equal(load_external(d->dir, "", NULL, NULL, 2), AIM_ERR_SECURITY);
    assert_int_equal(load_external(NULL, "w.bin", NULL, NULL, 2), AIM_ERR_UNSUPPORTED);
}

static void test_external_bounds(void **state) {
    ext_dirs *d = *state;
    assert_int_equal(load_external(d->dir, "w.bin", "17", NULL, 0), AIM_ERR_PARSE); /* offset */
    assert_non_null(strstr(aim_last_error(), "past the end"));
    assert_int_equal(load_external(d->dir, "w.bin", "8", NULL, 4), AIM_ERR_PARSE);  /* 16 > 8 */
    assert_int_equal(load_external(d->dir, "w.bin", NULL, NULL, 5), AIM_ERR_PARSE); /* 20 > 16 */
    assert_int_equal(load_external(d->dir, "w.bin", NULL, "32", 8), AIM_ERR_PARSE);
    assert_int_equal(load_external(d->dir, "w.bin", NULL, "12", 2), AIM_ERR_PARSE); /* length */
    assert_int_equal(load_external(d->dir, "w.bin", "18446744073709551615", NULL, 1),
                     AIM_ERR_PARSE);
    assert_int_equal(load_external(d->dir, "w.bin", "-1", NULL, 1), AIM_ERR_PARSE);
    assert_int_equal(load_external(d->dir, "w.bin", "8x", NULL, 1), AIM_ERR_PARSE);
    assert_int_equal(load_external(d->dir, "w.bin", NULL, NULL, 1000000000000), AIM_ERR_LIMIT);
    assert_int_equal(load_external(d->dir, NULL, NULL, NULL, 2), AIM_ERR_PARSE); /* location? */
    assert_int_equal(load_external(d->dir, "missing.bin", NULL, NULL, 2), AIM_ERR_IO);
    assert_int_equal(load_external(d->dir, "sub", NULL, NULL, 2), AIM_ERR_IO); /* a folder */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated_built_model),
        cmocka_unit_test(test_truncated_testdata),
        cmocka_unit_test(test_corrupted_bytes),
        cmocka_unit_test(test_garbage_and_empty),
        cmocka_unit_test(test_huge_declared_dims),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test_setup_teardown(test_external_ok, ext_setup, ext_teardown),
        cmocka_unit_test_setup_teardown(test_external_escapes, ext_setup, ext_teardown),
        cmocka_unit_test_setup_teardown(test_external_bounds, ext_setup, ext_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
