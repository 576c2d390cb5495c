/*
 * test_json.c: the strict JSON reader (valid documents, every error path, the bounds) and the
 * writer (commas, escaping, misuse), including a write-then-read round trip.
 */
#include "core/json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static aim_json *parse_ok(const char *text) {
    aim_json *doc = NULL;
    aim_status st = aim_json_parse(text, strlen(text), &doc);
    if (st != AIM_OK) fail_msg("'%s' should parse: %s", text, aim_last_error());
    assert_non_null(doc);
    return doc;
}

/* Asserts that text fails with `status` and that the message names byte `offset`. */
static void parse_fails(const char *text, aim_status status, size_t offset) {
    aim_json *doc = (aim_json *)1;
    aim_status st = aim_json_parse(text, strlen(text), &doc);
    if (st == AIM_OK) fail_msg("'%s' should fail", text);
    assert_int_equal(st, status);
    assert_null(doc);
    char expect[64];
    snprintf(expect, sizeof expect, "JSON at byte %zu:", offset);
    if (!strstr(aim_last_error(), expect))
        fail_msg("'%s': message '%s' lacks '%s'", text, aim_last_error(), expect);
}

static void test_normalisation_doc(void **state) {
    (void)state;
    aim_json *doc = parse_ok("{\"channels\": 3, \"height\": 240, \"width\": 320, \"order\": 0,"
                             " \"means\": [0, 0.5, -1e2], \"vars\": [1, 1, 1]}");
    assert_int_equal(doc->type, AIM_JSON_OBJECT);
    assert_int_equal(aim_json_count(doc), 6);
    const aim_json *means = aim_json_get(doc, "means");
    assert_non_null(means);
    assert_int_equal(aim_json_count(means), 3);
    double x;
    assert_true(aim_json_get_number(aim_json_at(means, 1), &x));
    assert_true(x == 0.5);
    assert_true(aim_json_get_number(aim_json_at(means, 2), &x));
    assert_true(x == -100.0);
    assert_true(aim_json_get_number(aim_json_get(doc, "width"), &x));
    assert_true(x == 320.0);
    assert_null(aim_json_get(doc, "missing"));
    assert_null(aim_json_at(means, 3));
    assert_null(aim_json_get(means, "x")); /* not an object */
    aim_json_free(doc);
}

static void test_scalars_and_literals(void **state) {
    (void)state;
    aim_json *doc = parse_ok(" [true, false, null, \"\", -0, 0.25e+2, 1E-2, {}, []] \n");
    assert_int_equal(aim_json_count(doc), 9);
    assert_int_equal(aim_json_at(doc, 0)->type, AIM_JSON_BOOL);
    assert_true(aim_json_at(doc, 0)->boolean);
    assert_false(aim_json_at(doc, 1)->boolean);
    assert_int_equal(aim_json_at(doc, 2)->type, AIM_JSON_NULL);
    assert_string_equal(aim_json_get_string(aim_json_at(doc, 3)), "");
    assert_true(aim_json_at(doc, 5)->number == 25.0);
    assert_true(aim_json_at(doc, 6)->number == 0.01);
    assert_int_equal(aim_json_at(doc, 7)->type, AIM_JSON_OBJECT);
    assert_int_equal(aim_json_count(aim_json_at(doc, 8)), 0);
    assert_string_equal(aim_json_type_name(AIM_JSON_ARRAY), "array");
    aim_json_free(doc);
    doc = parse_ok("42");
    assert_true(doc->number == 42.0);
    aim_json_free(doc);
}

static void test_string_escapes(void **state) {
    (void)state;
    aim_json *doc = parse_ok("\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u0000z\"");
    const char expect[] = "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\0z";
    assert_int_equal(doc->length, sizeof expect - 1);
    assert_memory_equal(doc->string, expect, sizeof expect - 1);
    aim_json_free(doc);
    doc = parse_ok("\"raw \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    assert_string_equal(doc->string, "raw \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    aim_json_free(doc);
}

static void test_duplicate_keys_first_wins(void **state) {
    (void)state;
    aim_json *doc = parse_ok("{\"a\": 1, \"a\": 2}");
    assert_true(aim_json_get(doc, "a")->number == 1.0);
    aim_json_free(doc);
}

static void test_truncated(void **state) {
    (void)state;
    parse_fails("", AIM_ERR_PARSE, 0);
    parse_fails("   ", AIM_ERR_PARSE, 3);
    parse_fails("{", AIM_ERR_PARSE, 1);
    parse_fails("{\"a\"", AIM_ERR_PARSE, 4);
    parse_fails("{\"a\":", AIM_ERR_PARSE, 5);
    parse_fails("{\"a\":1", AIM_ERR_PARSE, 6);
    parse_fails("[1,", AIM_ERR_PARSE, 3);
    parse_fails("[1", AIM_ERR_PARSE, 2);
    parse_fails("\"abc", AIM_ERR_PARSE, 4);
    parse_fails("\"ab\\", AIM_ERR_PARSE, 4);
    parse_fails("tru", AIM_ERR_PARSE, 0);
    parse_fails("-", AIM_ERR_PARSE, 1);
    parse_fails("1.", AIM_ERR_PARSE, 2);
    parse_fails("1e", AIM_ERR_PARSE, 2);
}

static void test_bad_escapes(void **state) {
    (void)state;
    parse_fails("\"\\x\"", AIM_ERR_PARSE, 1);
    parse_fails("\"\\u12\"", AIM_ERR_PARSE, 1);
    parse_fails("\"\\u12g4\"", AIM_ERR_PARSE, 1);
    parse_fails("\"\\ud83d\"", AIM_ERR_PARSE, 1);        /* lone high surrogate */
    parse_fails("\"\\ud83d\\u0041\"", AIM_ERR_PARSE, 1); /* high + non-low */
    parse_fails("\"\\ude00\"", AIM_ERR_PARSE, 1);        /* lone low surrogate */
    parse_fails("\"a\tb\"", AIM_ERR_PARSE, 2);           /* raw control character */
    parse_fails("\"\xc0\xaf\"", AIM_ERR_PARSE, 1);       /* overlong UTF-8 */
    parse_fails("\"\xed\xa0\x80\"", AIM_ERR_PARSE, 1);   /* UTF-8 surrogate */
    parse_fails("\"\xe2\x82\"", AIM_ERR_PARSE, 1);       /* truncated UTF-8 */
    parse_fails("\"\xff\"", AIM_ERR_PARSE, 1);
}

static void test_bad_syntax(void **state) {
    (void)state;
    parse_fails("01", AIM_ERR_PARSE, 0);
    parse_fails("+1", AIM_ERR_PARSE, 0);
    parse_fails(".5", AIM_ERR_PARSE, 0);
    parse_fails("NaN", AIM_ERR_PARSE, 0);
    parse_fails("1e999", AIM_ERR_PARSE, 0);
    parse_fails("[1,]", AIM_ERR_PARSE, 3);
    parse_fails("{\"a\":1,}", AIM_ERR_PARSE, 7);
    parse_fails("{a:1}", AIM_ERR_PARSE, 1);
    parse_fails("{\"a\" 1}", AIM_ERR_PARSE, 5);
    parse_fails("[1 2]", AIM_ERR_PARSE, 3);
    parse_fails("['a']", AIM_ERR_PARSE, 1);
    parse_fails("nul", AIM_ERR_PARSE, 0);
    parse_fails("[1] // comment", AIM_ERR_PARSE, 4);
    parse_fails("\xef\xbb\xbf{}", AIM_ERR_PARSE, 0); /* byte order mark */
}

static void test_trailing_garbage(void **state) {
    (void)state;
    parse_fails("{} x", AIM_ERR_PARSE, 3);
    parse_fails("1 2", AIM_ERR_PARSE, 2);
    parse_fails("[]]", AIM_ERR_PARSE, 2);
    aim_json *doc = (aim_json *)1;
    assert_int_equal(aim_json_parse("{}\0", 3, &doc), AIM_ERR_PARSE); /* embedded NUL */
    assert_null(doc);
}

static void test_depth_limit(void **state) {
    (void)state;
    char deep[2 * (AIM_JSON_MAX_DEPTH + 1) + 1];
    for (int i = 0; i < AIM_JSON_MAX_DEPTH; i++)
        deep[i] = '[';
    for (int i = 0; i < AIM_JSON_MAX_DEPTH; i++)
        deep[AIM_JSON_MAX_DEPTH + i] = ']';
    deep[2 * AIM_JSON_MAX_DEPTH] = '\0';
    aim_json_free(parse_ok(deep)); /* exactly 64 levels is fine */
    memset(deep, '[', AIM_JSON_MAX_DEPTH + 1);
    memset(deep + AIM_JSON_MAX_DEPTH + 1, ']', AIM_JSON_MAX_DEPTH + 1);
    deep[2 * (AIM_JSON_MAX_DEPTH + 1)] = '\0';
    parse_fails(deep, AIM_ERR_LIMIT, AIM_JSON_MAX_DEPTH);
    /* deep objects free their partial tree without leaks (run under ASan) */
    aim_strbuf sb;
    aim_strbuf_init(&sb);
    for (int i = 0; i < 1000; i++)
        aim_strbuf_puts(&sb, "{\"k\":");
    aim_json *doc;
    assert_int_equal(aim_json_parse(sb.data, sb.len, &doc), AIM_ERR_LIMIT);
    aim_strbuf_free(&sb);
}

static void test_size_limit(void **state) {
    (void)state;
    aim_json *doc;
    assert_int_equal(aim_json_parse("1", AIM_JSON_MAX_BYTES + 1, &doc), AIM_ERR_LIMIT);
    assert_null(doc);
}

static void test_writer_round_trip(void **state) {
    (void)state;
    aim_strbuf sb;
    aim_strbuf_init(&sb);
    aim_json_writer w;
    aim_json_writer_init_buf(&w, &sb, 2);
    aim_json_begin_object(&w);
    aim_json_key(&w, "name \"q\"\n");
    aim_json_string(&w, "tab\there \x01 \xc3\xa9");
    aim_json_key(&w, "shape");
    aim_json_begin_array(&w);
    aim_json_int(&w, 1);
    aim_json_number(&w, 0.1);
    aim_json_number(&w, 1e300);
    aim_json_end_array(&w);
    aim_json_key(&w, "empty");
    aim_json_begin_object(&w);
    aim_json_end_object(&w);
    aim_json_key(&w, "flags");
    aim_json_begin_array(&w);
    aim_json_bool(&w, true);
    aim_json_null(&w);
    aim_json_number(&w, 0.0 / 0.0); /* NaN is written as null */
    aim_json_end_array(&w);
    aim_json_end_object(&w);
    assert_int_equal(aim_json_writer_finish(&w), AIM_OK);
    aim_json *doc = parse_ok(sb.data);
    assert_string_equal(aim_json_get_string(aim_json_get(doc, "name \"q\"\n")),
                        "tab\there \x01 \xc3\xa9");
    const aim_json *shape = aim_json_get(doc, "shape");
    assert_true(aim_json_at(shape, 1)->number == 0.1);
    assert_true(aim_json_at(shape, 2)->number == 1e300);
    assert_int_equal(aim_json_at(aim_json_get(doc, "flags"), 2)->type, AIM_JSON_NULL);
    aim_json_free(doc);
    aim_strbuf_free(&sb);
}

static void test_writer_compact(void **state) {
    (void)state;
    aim_strbuf sb;
    aim_strbuf_init(&sb);
    aim_json_writer w;
    aim_json_writer_init_buf(&w, &sb, 0);
    aim_json_begin_array(&w);
    aim_json_int(&w, -3);
    aim_json_string(&w, "x");
    aim_json_begin_object(&w);
    aim_json_key(&w, "a");
    aim_json_bool(&w, false);
    aim_json_end_object(&w);
    aim_json_end_array(&w);
    assert_int_equal(aim_json_writer_finish(&w), AIM_OK);
    assert_string_equal(sb.data, "[-3,\"x\",{\"a\":false}]");
    aim_strbuf_free(&sb);
}

static void test_writer_misuse(void **state) {
    (void)state;
    aim_strbuf sb;
    aim_strbuf_init(&sb);
    aim_json_writer w;
    aim_json_writer_init_buf(&w, &sb, 0);
    aim_json_begin_object(&w);
    aim_json_int(&w, 1); /* value without a key */
    aim_json_end_object(&w);
    assert_int_equal(aim_json_writer_finish(&w), AIM_ERR_INVALID_ARG);
    aim_strbuf_free(&sb);

    aim_json_writer_init_buf(&w, &sb, 0);
    aim_json_begin_array(&w);
    aim_json_end_object(&w); /* mismatched end */
    assert_int_equal(aim_json_writer_finish(&w), AIM_ERR_INVALID_ARG);
    aim_strbuf_free(&sb);

    aim_json_writer_init_buf(&w, &sb, 0);
    aim_json_begin_array(&w); /* never closed */
    assert_int_equal(aim_json_writer_finish(&w), AIM_ERR_INVALID_ARG);
    aim_strbuf_free(&sb);

    aim_json_writer_init_buf(&w, &sb, 0);
    for (int i = 0; i <= AIM_JSON_MAX_DEPTH; i++)
        aim_json_begin_array(&w); /* too deep */
    assert_int_equal(aim_json_writer_finish(&w), AIM_ERR_INVALID_ARG);
    aim_strbuf_free(&sb);
}

static void test_writer_file(void **state) {
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    aim_json_writer w;
    aim_json_writer_init_file(&w, f, 0);
    aim_json_begin_object(&w);
    aim_json_key(&w, "k");
    aim_json_string(&w, "v");
    aim_json_end_object(&w);
    assert_int_equal(aim_json_writer_finish(&w), AIM_OK);
    rewind(f);
    char text[32] = {0};
    assert_true(fread(text, 1, sizeof text - 1, f) > 0);
    assert_string_equal(text, "{\"k\":\"v\"}");
    fclose(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalisation_doc), cmocka_unit_test(test_scalars_and_literals),
        cmocka_unit_test(test_string_escapes),    cmocka_unit_test(test_duplicate_keys_first_wins),
        cmocka_unit_test(test_truncated),         cmocka_unit_test(test_bad_escapes),
        cmocka_unit_test(test_bad_syntax),        cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_depth_limit),       cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_writer_round_trip), cmocka_unit_test(test_writer_compact),
        cmocka_unit_test(test_writer_misuse),     cmocka_unit_test(test_writer_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
