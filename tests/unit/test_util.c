/*
 * test_util.c: core helpers whose failures callers rely on: folder creation (mkdir -p) and the
 * string buffer.
 */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_dir_create_nested_and_existing(void **state) {
    (void)state;
    char base[] = "/tmp/aim-test-util-XXXXXX";
    assert_non_null(mkdtemp(base));
    char path[256];
    snprintf(path, sizeof path, "%s/a/b/c", base);
    assert_int_equal(aim_dir_create(path), AIM_OK);
    assert_true(is_dir(path));
    assert_int_equal(aim_dir_create(path), AIM_OK); /* already there: fine */
    char file[256];
    snprintf(file, sizeof file, "%s/a/file", base);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    char below[300];
    snprintf(below, sizeof below, "%s/x", file);
    assert_int_equal(aim_dir_create(file), AIM_ERR_IO); /* a file is in the way */
    assert_non_null(strstr(aim_last_error(), "file"));
    assert_int_equal(aim_dir_create(below), AIM_ERR_IO);
    remove(file);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    assert_int_equal(system(cmd), 0);
}

static void test_strbuf(void **state) {
    (void)state;
    aim_strbuf sb;
    aim_strbuf_init(&sb);
    aim_strbuf_puts(&sb, "a");
    aim_strbuf_printf(&sb, "-%d-", 42);
    for (int i = 0; i < 100; i++)
        aim_strbuf_puts(&sb, "x");
    char *text = aim_strbuf_take(&sb);
    assert_non_null(text);
    assert_int_equal(strlen(text), 5 + 100);
    assert_memory_equal(text, "a-42-x", 6);
    free(text);
    assert_null(sb.data); /* taken: the buffer is empty again */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dir_create_nested_and_existing),
        cmocka_unit_test(test_strbuf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
