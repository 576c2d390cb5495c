/*
 * json.c: the strict JSON reader (recursive descent, depth-bounded) and the streaming writer
 * (see json.h).
 *
 * Reader invariant: a container's `count` only covers members whose slot is initialised, so
 * aim_json_free can release a half-built tree after any error.
 */
#include "core/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const unsigned char *text;
    size_t size;
    size_t pos;
    int depth;
} json_parser;

static aim_status parse_value(json_parser *p, aim_json *out);

static aim_status fail_at(const json_parser *p, size_t pos, aim_status st, const char *what) {
    (void)p;
    return aim_error(st, "JSON at byte %zu: %s", pos, what);
}

static aim_status fail(const json_parser *p, const char *what) {
    if (p->pos >= p->size) return fail_at(p, p->pos, AIM_ERR_PARSE, "unexpected end of text");
    return fail_at(p, p->pos, AIM_ERR_PARSE, what);
}

static void skip_space(json_parser *p) {
    while (p->pos < p->size) {
        unsigned char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int peek(const json_parser *p) {
    return p->pos < p->size ? p->text[p->pos] : -1;
}

static bool match_word(json_parser *p, const char *word) {
    size_t n = strlen(word);
    if (p->size - p->pos < n || memcmp(p->text + p->pos, word, n) != 0) return false;
    p->pos += n;
    return true;
}

/* ---- Numbers ------------------------------------------------------------------------------- */

static size_t count_digits(const json_parser *p, size_t pos) {
    size_t n = 0;
    while (pos + n < p->size && p->text[pos + n] >= '0' && p->text[pos + n] <= '9')
        n++;
    return n;
}

static aim_status parse_number(json_parser *p, aim_json *out) {
    size_t start = p->pos, pos = p->pos;
    if (pos < p->size && p->text[pos] == '-') pos++;
    size_t digits = count_digits(p, pos);
    if (digits == 0) return fail_at(p, pos, AIM_ERR_PARSE, "expected a digit");
    if (p->text[pos] == '0' && digits > 1)
        return fail_at(p, pos, AIM_ERR_PARSE, "leading zeros are not allowed");
    pos += digits;
    if (pos < p->size && p->text[pos] == '.') {
        digits = count_digits(p, ++pos);
        if (digits == 0) return fail_at(p, pos, AIM_ERR_PARSE, "expected a digit after '.'");
        pos += digits;
    }
    if (pos < p->size && (p->text[pos] == 'e' || p->text[pos] == 'E')) {
        pos++;
        if (pos < p->size && (p->text[pos] == '+' || p->text[pos] == '-')) pos++;
        digits = count_digits(p, pos);
        if (digits == 0) return fail_at(p, pos, AIM_ERR_PARSE, "expected a digit in the exponent");
        pos += digits;
    }
    char *copy = malloc(pos - start + 1);
    if (!copy) return aim_error(AIM_ERR_NOMEM, "JSON: out of memory");
    memcpy(copy, p->text + start, pos - start);
    copy[pos - start] = '\0';
    double x = strtod(copy, NULL);
    free(copy);
    if (isinf(x)) return fail_at(p, start, AIM_ERR_PARSE, "number out of range");
    out->type = AIM_JSON_NUMBER;
    out->number = x;
    p->pos = pos;
    return AIM_OK;
}

/* ---- Strings ------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (max n bytes), or 0 when invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

static void utf8_encode(aim_strbuf *sb, uint32_t cp) {
    char b[4];
    size_t n;
    if (cp < 0x80)
        b[0] = (char)cp, n = 1;
    else if (cp < 0x800)
        b[0] = (char)(0xC0 | (cp >> 6)), b[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    aim_strbuf_append(sb, b, n);
}

static bool read_hex4(json_parser *p, uint32_t *out) {
    if (p->size - p->pos < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p->text[p->pos + (size_t)i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return false;
        v = v * 16 + (uint32_t)d;
    }
    p->pos += 4;
    *out = v;
    return true;
}

/* After "\u": one code point, joining a surrogate pair. */
static aim_status parse_unicode_escape(json_parser *p, aim_strbuf *sb) {
    size_t at = p->pos - 2;
    uint32_t cp, low;
    if (!read_hex4(p, &cp)) return fail_at(p, at, AIM_ERR_PARSE, "\\u needs four hex digits");
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail_at(p, at, AIM_ERR_PARSE, "unpaired low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (!match_word(p, "\\u") || !read_hex4(p, &low) || low < 0xDC00 || low > 0xDFFF)
            return fail_at(p, at, AIM_ERR_PARSE, "high surrogate not followed by a low one");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    utf8_encode(sb, cp);
    return AIM_OK;
}

static aim_status parse_escape(json_parser *p, aim_strbuf *sb) {
    size_t at = p->pos;
    p->pos++; /* the backslash */
    int c = peek(p);
    if (c < 0) return fail(p, "");
    p->pos++;
    const char *simple = strchr("\"\\/bfnrt", c);
    if (c != 0 && simple) {
        static const char decoded[] = "\"\\/\b\f\n\r\t";
        aim_strbuf_append(sb, &decoded[simple - "\"\\/bfnrt"], 1);
        return AIM_OK;
    }
    if (c == 'u') return parse_unicode_escape(p, sb);
    return fail_at(p, at, AIM_ERR_PARSE, "invalid escape sequence");
}

/* A string starting at the opening quote; *out is malloc'ed, *len excludes the terminator. */
static aim_status parse_string_raw(json_parser *p, char **out, size_t *len) {
    aim_strbuf sb;
    aim_strbuf_init(&sb);
    p->pos++; /* opening quote */
    aim_status st = AIM_OK;
    for (;;) {
        int c = peek(p);
        if (c < 0) {
            st = fail(p, "");
            break;
        }
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c == '\\') {
            if ((st = parse_escape(p, &sb)) != AIM_OK) break;
        } else if (c < 0x20) {
            st = fail(p, "control character in string (must be escaped)");
            break;
        } else {
            size_t n = utf8_sequence(p->text + p->pos, p->size - p->pos);
            if (n == 0) {
                st = fail(p, "invalid UTF-8 in string");
                break;
            }
            aim_strbuf_append(&sb, (const char *)p->text + p->pos, n);
            p->pos += n;
        }
    }
    *len = sb.len;
    if (st == AIM_OK && sb.failed) st = aim_error(AIM_ERR_NOMEM, "JSON: out of memory");
    if (st != AIM_OK) {
        aim_strbuf_free(&sb);
        return st;
    }
    *out = aim_strbuf_take(&sb);
    return *out ? AIM_OK : aim_error(AIM_ERR_NOMEM, "JSON: out of memory");
}

/* ---- Containers ---------------------------------------------------------------------------- */

/* Adds a zeroed member slot (and key slot for objects); returns it or NULL when out of memory. */
static aim_json *add_member(aim_json *v, size_t *cap, char *key) {
    if (v->count == *cap) {
        size_t n = *cap ? *cap * 2 : 4;
        aim_json *items = realloc(v->items, n * sizeof *items);
        if (!items) return NULL;
        v->items = items;
        if (v->type == AIM_JSON_OBJECT) {
            char **keys = realloc(v->keys, n * sizeof *keys);
            if (!keys) return NULL;
            v->keys = keys;
        }
        *cap = n;
    }
    aim_json *slot = &v->items[v->count];
    memset(slot, 0, sizeof *slot);
    if (v->type == AIM_JSON_OBJECT) v->keys[v->count] = key;
    v->count++;
    return slot;
}

static aim_status enter(json_parser *p) {
    if (++p->depth > AIM_JSON_MAX_DEPTH)
        return fail_at(p, p->pos, AIM_ERR_LIMIT, "nesting deeper than 64 levels");
    p->pos++; /* '[' or '{' */
    skip_space(p);
    return AIM_OK;
}

static aim_status parse_array(json_parser *p, aim_json *out) {
    out->type = AIM_JSON_ARRAY;
    size_t cap = 0;
    aim_status st = enter(p);
    if (st != AIM_OK) return st;
    if (peek(p) == ']') {
        p->pos++;
        p->depth--;
        return AIM_OK;
    }
    for (;;) {
        aim_json *slot = add_member(out, &cap, NULL);
        if (!slot) return aim_error(AIM_ERR_NOMEM, "JSON: out of memory");
        if ((st = parse_value(p, slot)) != AIM_OK) return st;
        skip_space(p);
        int c = peek(p);
        if (c != ']' && c != ',') return fail(p, "expected ',' or ']' in array");
        p->pos++;
        if (c == ']') break;
        skip_space(p);
    }
    p->depth--;
    return AIM_OK;
}

static aim_status parse_member(json_parser *p, aim_json *obj, size_t *cap) {
    if (peek(p) != '"') return fail(p, "expected a string key in object");
    char *key;
    size_t len;
    aim_status st = parse_string_raw(p, &key, &len);
    if (st != AIM_OK) return st;
    aim_json *slot = add_member(obj, cap, key);
    if (!slot) {
        free(key);
        return aim_error(AIM_ERR_NOMEM, "JSON: out of memory");
    }
    skip_space(p);
    if (peek(p) != ':') return fail(p, "expected ':' after an object key");
    p->pos++;
    return parse_value(p, slot);
}

static aim_status parse_object(json_parser *p, aim_json *out) {
    out->type = AIM_JSON_OBJECT;
    size_t cap = 0;
    aim_status st = enter(p);
    if (st != AIM_OK) return st;
    if (peek(p) == '}') {
        p->pos++;
        p->depth--;
        return AIM_OK;
    }
    for (;;) {
        if ((st = parse_member(p, out, &cap)) != AIM_OK) return st;
        skip_space(p);
        int c = peek(p);
        if (c != '}' && c != ',') return fail(p, "expected ',' or '}' in object");
        p->pos++;
        if (c == '}') break;
        skip_space(p);
    }
    p->depth--;
    return AIM_OK;
}

static aim_status parse_value(json_parser *p, aim_json *out) {
    skip_space(p);
    int c = peek(p);
    switch (c) {
    case '{': return parse_object(p, out);
    case '[': return parse_array(p, out);
    case '"': out->type = AIM_JSON_STRING; return parse_string_raw(p, &out->string, &out->length);
    case 't':
    case 'f':
        out->type = AIM_JSON_BOOL;
        out->boolean = c == 't';
        if (match_word(p, c == 't' ? "true" : "false")) return AIM_OK;
        return fail(p, "invalid literal");
    case 'n':
        if (match_word(p, "null")) return AIM_OK;
        return fail(p, "invalid literal");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, out);
        return fail(p, "expected a value");
    }
}

aim_status aim_json_parse(const char *text, size_t size, aim_json **out) {
    *out = NULL;
    if (!text && size) return aim_error(AIM_ERR_INVALID_ARG, "JSON: no text");
    if (size > AIM_JSON_MAX_BYTES)
        return aim_error(AIM_ERR_LIMIT, "JSON: text of %zu bytes is larger than the limit of %zu",
                         size, AIM_JSON_MAX_BYTES);
    aim_json *root = calloc(1, sizeof *root);
    if (!root) return aim_error(AIM_ERR_NOMEM, "JSON: out of memory");
    json_parser p = {(const unsigned char *)text, size, 0, 0};
    aim_status st = parse_value(&p, root);
    if (st == AIM_OK) {
        skip_space(&p);
        if (p.pos < p.size) st = fail(&p, "unexpected text after the JSON value");
    }
    if (st != AIM_OK) {
        aim_json_free(root);
        return st;
    }
    *out = root;
    return AIM_OK;
}

static void free_contents(aim_json *v) {
    for (size_t i = 0; i < v->count; i++) {
        free_contents(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
}

void aim_json_free(aim_json *v) {
    if (!v) return;
    free_contents(v);
    free(v);
}

/* ---- Lookup -------------------------------------------------------------------------------- */

const char *aim_json_type_name(aim_json_type type) {
    static const char *const names[] = {"null", "boolean", "number", "string", "array", "object"};
    return (unsigned)type < AIM_ARRAY_LEN(names) ? names[type] : "unknown";
}

const aim_json *aim_json_get(const aim_json *v, const char *key) {
    if (!v || v->type != AIM_JSON_OBJECT) return NULL;
    for (size_t i = 0; i < v->count; i++)
        if (strcmp(v->keys[i], key) == 0) return &v->items[i];
    return NULL;
}

const aim_json *aim_json_at(const aim_json *v, size_t i) {
    if (!v || (v->type != AIM_JSON_ARRAY && v->type != AIM_JSON_OBJECT) || i >= v->count)
        return NULL;
    return &v->items[i];
}

size_t aim_json_count(const aim_json *v) {
    if (!v || (v->type != AIM_JSON_ARRAY && v->type != AIM_JSON_OBJECT)) return 0;
    return v->count;
}

bool aim_json_get_number(const aim_json *v, double *out) {
    if (!v || v->type != AIM_JSON_NUMBER) return false;
    *out = v->number;
    return true;
}

const char *aim_json_get_string(const aim_json *v) {
    return v && v->type == AIM_JSON_STRING ? v->string : NULL;
}

/* ---- Writer -------------------------------------------------------------------------------- */

static void w_put(aim_json_writer *w, const char *s, size_t n) {
    if (w->sb)
        aim_strbuf_append(w->sb, s, n);
    else if (fwrite(s, 1, n, w->file) != n)
        w->failed = true;
}

static void w_puts(aim_json_writer *w, const char *s) {
    w_put(w, s, strlen(s));
}

static void w_newline(aim_json_writer *w) {
    if (w->indent <= 0) return;
    w_put(w, "\n", 1);
    for (int i = 0; i < w->depth * w->indent; i++)
        w_put(w, " ", 1);
}

static void writer_init(aim_json_writer *w, aim_strbuf *sb, FILE *file, int indent) {
    memset(w, 0, sizeof *w);
    w->sb = sb;
    w->file = file;
    w->indent = indent;
}

void aim_json_writer_init_buf(aim_json_writer *w, aim_strbuf *sb, int indent) {
    writer_init(w, sb, NULL, indent);
}

void aim_json_writer_init_file(aim_json_writer *w, FILE *file, int indent) {
    writer_init(w, NULL, file, indent);
}

/* Separator before a value: a comma between array elements; objects need a key first. */
static void before_value(aim_json_writer *w) {
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth == 0) {
        if (w->has_items[0]) w->failed = true; /* a second top-level value */
        w->has_items[0] = true;
        return;
    }
    if (w->is_object[w->depth]) w->failed = true; /* value without a key */
    if (w->has_items[w->depth]) w_put(w, ",", 1);
    w->has_items[w->depth] = true;
    w_newline(w);
}

static void begin(aim_json_writer *w, bool object) {
    before_value(w);
    w_put(w, object ? "{" : "[", 1);
    if (w->depth >= AIM_JSON_MAX_DEPTH) {
        w->failed = true;
        return;
    }
    w->depth++;
    w->has_items[w->depth] = false;
    w->is_object[w->depth] = object;
}

static void end(aim_json_writer *w, bool object) {
    if (w->depth == 0 || w->is_object[w->depth] != object || w->after_key) {
        w->failed = true;
        return;
    }
    bool had_items = w->has_items[w->depth];
    w->depth--;
    if (had_items) w_newline(w);
    w_put(w, object ? "}" : "]", 1);
}

void aim_json_begin_object(aim_json_writer *w) {
    begin(w, true);
}
void aim_json_end_object(aim_json_writer *w) {
    end(w, true);
}
void aim_json_begin_array(aim_json_writer *w) {
    begin(w, false);
}
void aim_json_end_array(aim_json_writer *w) {
    end(w, false);
}

static void write_escaped(aim_json_writer *w, const char *s, size_t len) {
    w_put(w, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        switch (c) {
        case '"': w_puts(w, "\\\""); break;
        case '\\': w_puts(w, "\\\\"); break;
        case '\n': w_puts(w, "\\n"); break;
        case '\r': w_puts(w, "\\r"); break;
        case '\t': w_puts(w, "\\t"); break;
        case '\b': w_puts(w, "\\b"); break;
        case '\f': w_puts(w, "\\f"); break;
        default:
            if (c < 0x20 || c == 0x7F) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                w_puts(w, esc);
            } else {
                w_put(w, (const char *)&s[i], 1);
            }
        }
    }
    w_put(w, "\"", 1);
}

void aim_json_key(aim_json_writer *w, const char *key) {
    if (w->depth == 0 || !w->is_object[w->depth] || w->after_key) {
        w->failed = true;
        return;
    }
    if (w->has_items[w->depth]) w_put(w, ",", 1);
    w->has_items[w->depth] = true;
    w_newline(w);
    write_escaped(w, key, strlen(key));
    w_puts(w, w->indent > 0 ? ": " : ":");
    w->after_key = true;
}

void aim_json_string_len(aim_json_writer *w, const char *s, size_t len) {
    before_value(w);
    write_escaped(w, s, len);
}

void aim_json_string(aim_json_writer *w, const char *s) {
    aim_json_string_len(w, s ? s : "", s ? strlen(s) : 0);
}

void aim_json_number(aim_json_writer *w, double x) {
    if (!isfinite(x)) {
        aim_json_null(w);
        return;
    }
    char text[40];
    snprintf(text, sizeof text, "%.15g", x);
    if (strtod(text, NULL) != x) snprintf(text, sizeof text, "%.17g", x);
    before_value(w);
    w_puts(w, text);
}

void aim_json_int(aim_json_writer *w, int64_t x) {
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)x);
    before_value(w);
    w_puts(w, text);
}

void aim_json_bool(aim_json_writer *w, bool b) {
    before_value(w);
    w_puts(w, b ? "true" : "false");
}

void aim_json_null(aim_json_writer *w) {
    before_value(w);
    w_puts(w, "null");
}

aim_status aim_json_writer_finish(aim_json_writer *w) {
    if (w->indent > 0 && !w->failed) w_put(w, "\n", 1);
    if (w->sb && w->sb->failed) return aim_error(AIM_ERR_NOMEM, "JSON writer: out of memory");
    if (w->failed || w->depth != 0 || w->after_key || !w->has_items[0])
        return aim_error(AIM_ERR_INVALID_ARG, "JSON writer: incomplete or misused document");
    return AIM_OK;
}
