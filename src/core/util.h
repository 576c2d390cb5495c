/*
 * util.h: small helpers every module uses: checked arithmetic, bounded file reading, atomic file
 * writing, paths, and a growable string buffer.
 *
 * Sizes that come from files are multiplied only through aim_mul_size(), which reports overflow
 * instead of wrapping, so a hostile file cannot turn a huge declared size into a small
 * allocation.
 */
#ifndef AIM_CORE_UTIL_H
#define AIM_CORE_UTIL_H

#include "aim/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AIM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* *out = a * b; false on overflow (then *out is unspecified). */
static inline bool aim_mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool aim_add_size(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* Reads a whole regular file, refusing files larger than max_size. The caller frees *data.
 * One extra zero byte follows the data so text can be used as a C string. */
aim_status aim_file_read(const char *path, size_t max_size, uint8_t **data, size_t *size);

/* Writes data to path atomically: a temporary file beside it, fsync, then rename, so a failed
 * write never leaves a truncated file where a good one was. */
aim_status aim_file_write_atomic(const char *path, const void *data, size_t size);

/* Creates a folder and any missing parents (mkdir -p); an existing folder is fine. The message
 * names the part that could not be created. */
aim_status aim_dir_create(const char *path);

/* Directory part of a path ("." when there is none). The caller frees the result. */
char *aim_path_dirname(const char *path);

/* dir + "/" + name; the caller frees the result. */
char *aim_path_join(const char *dir, const char *name);

/* Checks that `relative` names a file inside `dir`: not absolute, no ".." component, and, where
 * the file exists, its real path (symbolic links resolved) still lies inside dir's real path. */
aim_status aim_path_confined(const char *dir, const char *relative);

/* strdup that reports failure as NULL without touching errno semantics. */
char *aim_strdup(const char *s);

/* Growable, always NUL-terminated string. A failed append sets `failed` and keeps the old text,
 * so callers check once at the end. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
} aim_strbuf;

void aim_strbuf_init(aim_strbuf *sb);
void aim_strbuf_free(aim_strbuf *sb);
void aim_strbuf_append(aim_strbuf *sb, const char *text, size_t len);
void aim_strbuf_puts(aim_strbuf *sb, const char *text);
void aim_strbuf_printf(aim_strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the text to the caller (who frees it) and resets the buffer; NULL if any append failed. */
char *aim_strbuf_take(aim_strbuf *sb);

#endif
