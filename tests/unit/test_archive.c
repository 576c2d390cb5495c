/*
 * test_archive.c: safe archive extraction (src/compile/archive.c). Archives are built here with
 * libarchive's writer: normal tar.gz and zip archives extract with their folders; `..`,
 * absolute names, symbolic and hard links, devices, duplicates, bad names, truncated data, a
 * non-archive and each size/count limit are refused with a message naming the entry, and
 * nothing is left in (or written beside) the parent folder afterwards.
 */
#include "compile/archive.h"

#include "core/util.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

typedef enum { FMT_TAR_GZ, FMT_TAR, FMT_ZIP } fmt;

typedef struct {
    const char *name;
    int type;         /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR, ... */
    const char *data; /* regular files: contents (NULL: `size` bytes of 'x') */
    size_t size;
    const char *link; /* symbolic link target, or hard link source with type AE_IFREG */
} spec;

/* Per-test scratch: a private parent folder for extraction and a folder for the archives. */
typedef struct {
    char parent[64];
    char work[64];
    char path[128];
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->parent, sizeof f->parent, "/tmp/aim-test-arch-p-XXXXXX");
    snprintf(f->work, sizeof f->work, "/tmp/aim-test-arch-w-XXXXXX");
    if (!mkdtemp(f->parent) || !mkdtemp(f->work)) return -1;
    snprintf(f->path, sizeof f->path, "%s/in.archive", f->work);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    aim_remove_tree(f->parent);
    aim_remove_tree(f->work);
    free(f);
    return 0;
}

static void set_format(struct archive *a, fmt format) {
    if (format == FMT_ZIP) {
        archive_write_set_format_zip(a);
        return;
    }
    archive_write_set_format_ustar(a);
    if (format == FMT_TAR_GZ) archive_write_add_filter_gzip(a);
}

static void write_entry(struct archive *a, const spec *s) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, s->name);
    archive_entry_set_filetype(e, (unsigned)s->type);
    archive_entry_set_perm(e, s->type == AE_IFDIR ? 0755 : 0644);
    if (s->type == AE_IFLNK) archive_entry_set_symlink(e, s->link);
    if (s->type == AE_IFREG && s->link) archive_entry_set_hardlink(e, s->link);
    if (s->type == AE_IFCHR) archive_entry_set_rdev(e, 0x0103);
    size_t size = s->type == AE_IFREG && !s->link ? (s->data ? strlen(s->data) : s->size) : 0;
    archive_entry_set_size(e, (la_int64_t)size);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    if (size > 0) {
        char *buf = malloc(size);
        memset(buf, 'x', size);
        if (s->data) memcpy(buf, s->data, size);
        assert_int_equal(archive_write_data(a, buf, size), (la_ssize_t)size);
        free(buf);
    }
    archive_entry_free(e);
}

static void build(const char *path, fmt format, const spec *specs, size_t n) {
    struct archive *a = archive_write_new();
    set_format(a, format);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++)
        write_entry(a, &specs[i]);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

static size_t count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *de = readdir(d); de; de = readdir(d))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

/* Extraction of f->path must fail with `status`, the message holding `needle`, and leave the
 * parent folder empty. */
static void refused(fixture *f, const aim_archive_limits *l, aim_status status,
                    const char *needle) {
    aim_archive a;
    aim_status st = aim_archive_extract(f->path, f->parent, l, &a);
    if (st == AIM_OK) fail_msg("extraction should fail (%s)", needle);
    if (!strstr(aim_last_error(), needle))
        fail_msg("message '%s' lacks '%s'", aim_last_error(), needle);
    assert_int_equal(st, status);
    assert_null(a.dir);
    assert_int_equal(a.file_count, 0);
    assert_int_equal(count_entries(f->parent), 0);
    assert_int_equal(count_entries(f->work), 1); /* only the archive itself */
}

static char *read_text(const char *dir, const char *rel) {
    char *path = aim_path_join(dir, rel);
    uint8_t *data = NULL;
    size_t size = 0;
    aim_status st = aim_file_read(path, 1 << 20, &data, &size);
    if (st != AIM_OK) fail_msg("%s: %s", path, aim_last_error());
    free(path);
    return (char *)data;
}

static void expect_text(const aim_archive *a, const char *rel, const char *text) {
    char *got = read_text(a->dir, rel);
    assert_string_equal(got, text);
    free(got);
}

static const spec normal[] = {
    {"./", AE_IFDIR, NULL, 0, NULL},
    {"./model.onnx", AE_IFREG, "not really a model", 0, NULL},
    {"config.json", AE_IFREG, "{\"nchw\": true}", 0, NULL},
    {"images/", AE_IFDIR, NULL, 0, NULL},
    {"images/day/a.png", AE_IFREG, "png-a", 0, NULL},
    {"images//night/./b.jpg", AE_IFREG, "jpg-b", 0, NULL},
    {"empty.txt", AE_IFREG, "", 0, NULL},
    {"big.bin", AE_IFREG, NULL, 200000, NULL},
};

static void check_normal(fixture *f, fmt format) {
    build(f->path, format, normal, AIM_ARRAY_LEN(normal));
    assert_true(aim_archive_sniff(f->path));
    aim_archive a;
    aim_status st = aim_archive_extract(f->path, f->parent, NULL, &a);
    if (st != AIM_OK) fail_msg("%s", aim_last_error());
    assert_non_null(strstr(a.dir, f->parent));
    assert_int_equal(a.entry_count, AIM_ARRAY_LEN(normal));
    assert_int_equal(a.file_count, 6);
    assert_string_equal(a.files[0], "model.onnx");
    assert_string_equal(a.files[2], "images/day/a.png");
    assert_string_equal(a.files[3], "images/night/b.jpg");
    expect_text(&a, "model.onnx", "not really a model");
    expect_text(&a, "images/night/b.jpg", "jpg-b");
    expect_text(&a, "empty.txt", "");
    assert_int_equal(a.total_bytes, 18 + 14 + 5 + 5 + 200000);
    assert_int_equal(count_entries(f->parent), 1);
    char *dir = aim_strdup(a.dir);
    assert_int_equal(aim_archive_remove(&a), AIM_OK);
    assert_null(a.dir);
    struct stat sb;
    assert_int_not_equal(stat(dir, &sb), 0);
    free(dir);
    assert_int_equal(count_entries(f->parent), 0);
}

static void test_normal_tar_gz(void **state) {
    check_normal(*state, FMT_TAR_GZ);
}

static void test_normal_zip(void **state) {
    check_normal(*state, FMT_ZIP);
}

static void test_normal_tar(void **state) {
    check_normal(*state, FMT_TAR);
}

static void test_dotdot(void **state) {
    fixture *f = *state;
    const spec s[] = {{"ok.txt", AE_IFREG, "fine", 0, NULL},
                      {"../evil", AE_IFREG, "gotcha", 0, NULL}};
    build(f->path, FMT_TAR_GZ, s, 2);
    refused(f, NULL, AIM_ERR_SECURITY, "'../evil': refused: a '..' component");
    const spec z[] = {{"a/../../evil", AE_IFREG, "gotcha", 0, NULL}};
    build(f->path, FMT_ZIP, z, 1);
    refused(f, NULL, AIM_ERR_SECURITY, "'a/../../evil'");
}

static void test_absolute(void **state) {
    fixture *f = *state;
    char target[160];
    snprintf(target, sizeof target, "%s/abs-evil", f->work);
    const spec s[] = {{target, AE_IFREG, "gotcha", 0, NULL}};
    build(f->path, FMT_TAR_GZ, s, 1);
    refused(f, NULL, AIM_ERR_SECURITY, "refused: an absolute path");
    struct stat sb;
    assert_int_not_equal(stat(target, &sb), 0);
    build(f->path, FMT_ZIP, s, 1);
    refused(f, NULL, AIM_ERR_SECURITY, target);
    assert_int_not_equal(stat(target, &sb), 0);
}

static void test_symlink(void **state) {
    fixture *f = *state;
    const spec s[] = {{"link", AE_IFLNK, NULL, 0, f->work},
                      {"link/escaped", AE_IFREG, "gotcha", 0, NULL}};
    build(f->path, FMT_TAR_GZ, s, 2);
    refused(f, NULL, AIM_ERR_SECURITY, "'link': refused: it is a symbolic link");
    build(f->path, FMT_ZIP, s, 2);
    refused(f, NULL, AIM_ERR_SECURITY, "symbolic link");
}

static void test_hardlink_and_devices(void **state) {
    fixture *f = *state;
    const spec h[] = {{"a.txt", AE_IFREG, "a", 0, NULL}, {"b.txt", AE_IFREG, NULL, 0, "a.txt"}};
    build(f->path, FMT_TAR, h, 2);
    refused(f, NULL, AIM_ERR_SECURITY, "'b.txt': refused: it is a hard link");
    const spec c[] = {{"tty", AE_IFCHR, NULL, 0, NULL}};
    build(f->path, FMT_TAR, c, 1);
    refused(f, NULL, AIM_ERR_SECURITY, "'tty': refused: it is a device");
    const spec p[] = {{"pipe", AE_IFIFO, NULL, 0, NULL}};
    build(f->path, FMT_TAR, p, 1);
    refused(f, NULL, AIM_ERR_SECURITY, "'pipe': refused: it is a FIFO");
}

static void test_bad_names(void **state) {
    fixture *f = *state;
    const spec u[] = {{"bad\xff.png", AE_IFREG, "x", 0, NULL}};
    build(f->path, FMT_TAR, u, 1);
    refused(f, NULL, AIM_ERR_SECURITY, "not valid UTF-8");
    const spec c[] = {{"bad\nname.png", AE_IFREG, "x", 0, NULL}};
    build(f->path, FMT_TAR, c, 1);
    refused(f, NULL, AIM_ERR_SECURITY, "a control character");
    const spec b[] = {{"..\\evil.png", AE_IFREG, "x", 0, NULL}};
    build(f->path, FMT_TAR, b, 1);
    refused(f, NULL, AIM_ERR_SECURITY, "a backslash");
    const spec d[] = {{"twice.png", AE_IFREG, "1", 0, NULL},
                      {"./twice.png", AE_IFREG, "2", 0, NULL}};
    build(f->path, FMT_TAR, d, 2);
    refused(f, NULL, AIM_ERR_SECURITY, "'./twice.png': a second entry with this name");
    const spec x[] = {{"f", AE_IFREG, "1", 0, NULL}, {"f/g", AE_IFREG, "2", 0, NULL}};
    build(f->path, FMT_TAR, x, 2);
    refused(f, NULL, AIM_ERR_SECURITY, "'f/g': 'f' is not a folder");
    const spec n[] = {{"./.", AE_IFREG, "1", 0, NULL}};
    build(f->path, FMT_TAR, n, 1);
    refused(f, NULL, AIM_ERR_SECURITY, "no file name");
}

static void truncate_file(const char *path, double keep) {
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, (off_t)((double)sb.st_size * keep)), 0);
}

static void test_truncated(void **state) {
    fixture *f = *state;
    const spec s[] = {{"a.txt", AE_IFREG, "aaa", 0, NULL},
                      {"big.bin", AE_IFREG, NULL, 100000, NULL}};
    build(f->path, FMT_TAR, s, 2);
    truncate_file(f->path, 0.5);
    refused(f, NULL, AIM_ERR_PARSE, "truncated");
    build(f->path, FMT_TAR_GZ, s, 2);
    truncate_file(f->path, 0.6);
    refused(f, NULL, AIM_ERR_PARSE, "truncated gzip input");
    build(f->path, FMT_ZIP, s, 2);
    truncate_file(f->path, 0.5);
    refused(f, NULL, AIM_ERR_PARSE, "archive");
}

static void test_not_an_archive(void **state) {
    fixture *f = *state;
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    fputs("just some text, nothing like an archive header\n", fp);
    fclose(fp);
    assert_false(aim_archive_sniff(f->path));
    refused(f, NULL, AIM_ERR_PARSE, "not a zip or tar archive");
    assert_false(aim_archive_sniff("/nonexistent/aim/file"));
    aim_archive a;
    assert_int_equal(aim_archive_extract("/nonexistent/aim/file", f->parent, NULL, &a), AIM_ERR_IO);
    assert_non_null(strstr(aim_last_error(), "/nonexistent/aim/file"));
    assert_int_equal(count_entries(f->parent), 0);
}

static void test_limits(void **state) {
    fixture *f = *state;
    aim_archive_limits l;
    aim_archive_limits_default(&l);
    assert_int_equal(l.max_entries, 100000);
    assert_true(l.max_total == (uint64_t)4 << 30 && l.max_file == (uint64_t)1 << 30);
    const spec s[] = {{"d/", AE_IFDIR, NULL, 0, NULL},
                      {"d/one.bin", AE_IFREG, NULL, 3000, NULL},
                      {"d/two.bin", AE_IFREG, NULL, 3000, NULL},
                      {"d/three.bin", AE_IFREG, NULL, 3000, NULL}};
    build(f->path, FMT_TAR_GZ, s, 4);
    l.max_file = 2999;
    refused(f, &l, AIM_ERR_LIMIT, "'d/one.bin': declares 3000 bytes");
    aim_archive_limits_default(&l);
    l.max_total = 8000;
    refused(f, &l, AIM_ERR_LIMIT, "more than 8000 bytes in total (at entry 'd/three.bin')");
    aim_archive_limits_default(&l);
    l.max_entries = 3;
    refused(f, &l, AIM_ERR_LIMIT, "more than 3 entries (at 'd/three.bin')");
    l.max_entries = 4;
    aim_archive a;
    assert_int_equal(aim_archive_extract(f->path, f->parent, &l, &a), AIM_OK);
    assert_int_equal(a.total_bytes, 9000);
    aim_archive_remove(&a);
}

static void test_remove_tree_keeps_link_targets(void **state) {
    fixture *f = *state;
    char dir[160], keep[160], link[200];
    snprintf(dir, sizeof dir, "%s/tree", f->parent);
    snprintf(keep, sizeof keep, "%s/keep.txt", f->work);
    snprintf(link, sizeof link, "%s/link", dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    FILE *fp = fopen(keep, "w");
    fclose(fp);
    assert_int_equal(symlink(f->work, link), 0);
    assert_int_equal(aim_remove_tree(dir), AIM_OK);
    struct stat sb;
    assert_int_equal(stat(keep, &sb), 0);
    assert_int_not_equal(lstat(dir, &sb), 0);
    assert_int_equal(aim_remove_tree(dir), AIM_OK); /* already gone */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_normal_tar_gz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_normal_zip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_normal_tar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dotdot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absolute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hardlink_and_devices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_an_archive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_tree_keeps_link_targets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
