/*
 * conventions.c: the output-name grammar and image-layout rules of the manager's conventions
 * (see conventions.h).
 */
#include "conventions.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"scores", "alarm", "bboxes"};

const char *aim_conv_kind_name(aim_out_kind kind) {
    return (unsigned)kind < 3 ? kind_names[kind] : "unknown";
}

typedef struct {
    const char **code;
    char *why;
    size_t why_size;
} reason;

static bool refuse(reason *r, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool refuse(reason *r, const char *code, const char *fmt, ...) {
    if (r->code) *r->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, r->why_size, fmt, ap);
    va_end(ap);
    return false;
}

/* A class index: 1..9 decimal digits. */
static bool parse_index(const char *s, size_t len, long *out) {
    if (len == 0 || len > 9) return false;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool parse_format(const char *value, size_t len, aim_out_name *out) {
    static const struct {
        const char *name;
        int64_t width;
    } formats[] = {{"xyxy", 4}, {"xyxyc", 5}, {"xyxysc", 6}};
    for (size_t i = 0; i < 3; i++) {
        if (strlen(formats[i].name) == len && memcmp(formats[i].name, value, len) == 0) {
            out->format = formats[i].name;
            out->width = formats[i].width;
            return true;
        }
    }
    return false;
}

/* One class entry "N:Label"; indices collects the ones seen (capacity checked by the caller). */
static bool parse_class(const char *key, size_t key_len, long *indices, size_t *n, reason *r) {
    long index;
    if (!parse_index(key, key_len, &index))
        return refuse(r, "output-classes", "class key '%.*s' is not a non-negative integer",
                      (int)key_len, key);
    for (size_t i = 0; i < *n; i++)
        if (indices[i] == index)
            return refuse(r, "output-classes", "class index %.*s appears twice", (int)key_len, key);
    indices[(*n)++] = index;
    return true;
}

/* The entries after "kind-": "key:value;key:value". */
static bool parse_entries(const char *s, aim_out_name *out, long *indices, reason *r) {
    bool first = true;
    size_t n = 0;
    for (;;) {
        size_t len = strcspn(s, ";");
        const char *colon = memchr(s, ':', len);
        if (!colon || colon == s || colon + 1 == s + len)
            return refuse(r, "output-name", "entry '%.*s' is not key:value", (int)len, s);
        size_t key_len = (size_t)(colon - s);
        if (first && out->kind == AIM_OUT_BBOXES) {
            if (key_len != 6 || memcmp(s, "format", 6) != 0 ||
                !parse_format(colon + 1, len - key_len - 1, out))
                return refuse(r, "output-format",
                              "bboxes needs 'format:xyxy', 'format:xyxyc' or 'format:xyxysc' "
                              "first, not '%.*s'",
                              (int)len, s);
        } else if (!parse_class(s, key_len, indices, &n, r)) {
            return false;
        }
        first = false;
        if (s[len] == '\0') break;
        s += len + 1;
    }
    out->class_count = n;
    if (n == 0) return refuse(r, "output-classes", "there are no class entries N:Label");
    return true;
}

bool aim_conv_parse_output(const char *name, aim_out_name *out, const char **code, char *why,
                           size_t why_size) {
    reason r = {code, why, why_size};
    memset(out, 0, sizeof *out);
    const char *dash = strchr(name, '-');
    if (!dash || dash == name) return refuse(&r, "output-name", "'%s' has no 'kind-' prefix", name);
    size_t kind_len = (size_t)(dash - name);
    bool found = false;
    for (unsigned k = 0; k < 3 && !found; k++) {
        if (strlen(kind_names[k]) == kind_len && memcmp(kind_names[k], name, kind_len) == 0) {
            out->kind = (aim_out_kind)k;
            found = true;
        }
    }
    if (!found)
        return refuse(&r, "output-kind", "kind '%.*s' is not scores, alarm or bboxes",
                      (int)kind_len, name);
    if (dash[1] == '\0')
        return refuse(&r, "output-name", "no key:value entries follow the 'kind-' prefix");
    size_t max_entries = 1;
    for (const char *p = dash + 1; *p; p++)
        max_entries += *p == ';';
    long *indices = malloc(max_entries * sizeof *indices);
    if (!indices) return refuse(&r, "output-name", "out of memory");
    bool ok = parse_entries(dash + 1, out, indices, &r);
    free(indices);
    return ok;
}

bool aim_conv_image_layout(const aim_value_info *v, aim_conv_image *out) {
    if (v->rank != 4) return false;
    int64_t d1 = v->dims[1].value, d3 = v->dims[3].value;
    if (d1 == 1 || d1 == 3) {
        *out = (aim_conv_image){true, d1, v->dims[2].value, v->dims[3].value};
    } else if (d3 == 1 || d3 == 3) {
        *out = (aim_conv_image){false, d3, v->dims[1].value, v->dims[2].value};
    } else {
        return false;
    }
    if (out->h < 0) out->h = -1;
    if (out->w < 0) out->w = -1;
    return true;
}

bool aim_conv_image_like(const aim_value_info *v) {
    aim_conv_image img;
    if (v->dtype != AIM_DTYPE_FLOAT || v->rank != 4) return false;
    return aim_conv_image_layout(v, &img) || v->dims[1].value < 0 || v->dims[3].value < 0;
}
