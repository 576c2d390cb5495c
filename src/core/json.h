/*
 * json.h: a small strict JSON (RFC 8259) reader producing a tree, and a streaming writer.
 *
 *     aim_json *doc;
 *     if (aim_json_parse(text, len, &doc) != AIM_OK) { puts(aim_last_error()); return; }
 *     const aim_json *means = aim_json_get(doc, "means");
 *     for (size_t i = 0; i < aim_json_count(means); i++) ...aim_json_at(means, i)->number...
 *     aim_json_free(doc);
 *
 * The reader accepts exactly RFC 8259: no comments, no trailing commas, no leading zeros, no
 * NaN, strictly valid UTF-8 (no overlong forms, no surrogates) and paired \u surrogates. Input
 * is bounded by AIM_JSON_MAX_BYTES and nesting by AIM_JSON_MAX_DEPTH, so hostile text cannot
 * exhaust the stack. Errors are AIM_ERR_PARSE (or AIM_ERR_LIMIT for the bounds) with the byte
 * offset of the problem in the message: "JSON at byte 12: expected ':' after an object key".
 *
 * The writer handles commas, key/value separators, escaping and optional indentation; it
 * writes into an aim_strbuf or a FILE*.
 */
#ifndef AIM_CORE_JSON_H
#define AIM_CORE_JSON_H

#include "aim/status.h"
#include "core/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AIM_JSON_MAX_DEPTH 64
#define AIM_JSON_MAX_BYTES ((size_t)64 << 20)

typedef enum {
    AIM_JSON_NULL,
    AIM_JSON_BOOL,
    AIM_JSON_NUMBER,
    AIM_JSON_STRING,
    AIM_JSON_ARRAY,
    AIM_JSON_OBJECT,
} aim_json_type;

typedef struct aim_json aim_json;
struct aim_json {
    aim_json_type type;
    bool boolean;    /* AIM_JSON_BOOL */
    double number;   /* AIM_JSON_NUMBER */
    char *string;    /* AIM_JSON_STRING: UTF-8, NUL-terminated (may also contain \u0000) */
    size_t length;   /* AIM_JSON_STRING: bytes, without the terminator */
    size_t count;    /* AIM_JSON_ARRAY / AIM_JSON_OBJECT: number of members */
    aim_json *items; /* members, in document order */
    char **keys;     /* AIM_JSON_OBJECT: keys, parallel to items */
};

/* ---- Reading ------------------------------------------------------------------------------- */

/* Parses `size` bytes of JSON text (need not be NUL-terminated). The caller frees *out with
 * aim_json_free. On failure *out is NULL. */
aim_status aim_json_parse(const char *text, size_t size, aim_json **out);

void aim_json_free(aim_json *v);

/* "null", "boolean", "number", "string", "array", "object". */
const char *aim_json_type_name(aim_json_type type);

/* First member named `key` of an object; NULL when v is NULL, not an object, or has no such key. */
const aim_json *aim_json_get(const aim_json *v, const char *key);

/* Element i of an array or member value i of an object; NULL when out of range. */
const aim_json *aim_json_at(const aim_json *v, size_t i);

/* Members of an array or object; 0 for anything else (and for NULL). */
size_t aim_json_count(const aim_json *v);

/* True (and *out set) when v is a number. */
bool aim_json_get_number(const aim_json *v, double *out);

/* The text of a string value; NULL when v is not a string. */
const char *aim_json_get_string(const aim_json *v);

/* ---- Writing ------------------------------------------------------------------------------- */

typedef struct {
    aim_strbuf *sb; /* exactly one of sb and file is set */
    FILE *file;
    int indent; /* spaces per level; 0 writes everything on one line */
    int depth;
    bool has_items[AIM_JSON_MAX_DEPTH + 1]; /* per level: a member was already written */
    bool is_object[AIM_JSON_MAX_DEPTH + 1]; /* per level: object (true) or array (false) */
    bool after_key;
    bool failed; /* misuse (value without key in an object, too deep, unbalanced end) */
} aim_json_writer;

void aim_json_writer_init_buf(aim_json_writer *w, aim_strbuf *sb, int indent);
void aim_json_writer_init_file(aim_json_writer *w, FILE *file, int indent);

void aim_json_begin_object(aim_json_writer *w);
void aim_json_end_object(aim_json_writer *w);
void aim_json_begin_array(aim_json_writer *w);
void aim_json_end_array(aim_json_writer *w);
/* The key of the next member of the current object. */
void aim_json_key(aim_json_writer *w, const char *key);
void aim_json_string(aim_json_writer *w, const char *s);
void aim_json_string_len(aim_json_writer *w, const char *s, size_t len);
/* Shortest text that reads back as the same double; NaN and infinities are written as null. */
void aim_json_number(aim_json_writer *w, double x);
void aim_json_int(aim_json_writer *w, int64_t x);
void aim_json_bool(aim_json_writer *w, bool b);
void aim_json_null(aim_json_writer *w);

/* Ends the document (a newline when indenting). Returns AIM_OK when every call was well placed
 * and the document is complete; AIM_ERR_INVALID_ARG otherwise. */
aim_status aim_json_writer_finish(aim_json_writer *w);

#endif
