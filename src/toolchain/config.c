/*
 * config.c: the toolchain's JSON config (the public Hailo toolchain's keys start_node_names,
 * end_node_names, height, width, channels, nchw, means, stds, plus aim's target, calib_method
 * and calib_size) read into aim_compile_options. A key set to null counts as absent; unknown
 * keys are warnings, not errors; a key of the wrong type or range is an error naming it.
 */
#include "toolchain.h"

#include "core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_BYTES ((size_t)1 << 20)
#define MAX_SIDE         16384

typedef struct {
    const char *file; /* for messages */
    aim_compile_options *o;
    tc_config *cfg;
    bool has_means, has_stds;
} reader;

static aim_status bad(const reader *r, const char *key, const char *what) {
    return aim_error(AIM_ERR_INVALID_ARG, "config %s: '%s' %s", r->file, key, what);
}

/* One string, or an array of 1..AIM_COMPILE_MAX_NODES strings, into names/count. */
static aim_status read_names(const reader *r, const char *key, const aim_json *v,
                             const char **names, size_t *count) {
    if (v->type == AIM_JSON_STRING) {
        names[0] = v->string;
        *count = 1;
        return AIM_OK;
    }
    if (v->type != AIM_JSON_ARRAY || v->count == 0 || v->count > AIM_COMPILE_MAX_NODES)
        return bad(r, key, "must be a node name or a list of 1 to 64 node names");
    for (size_t i = 0; i < v->count; i++) {
        const char *s = aim_json_get_string(&v->items[i]);
        if (!s || !s[0]) return bad(r, key, "must hold only non-empty strings (node names)");
        names[i] = s;
    }
    *count = v->count;
    return AIM_OK;
}

/* An integer number in [lo, hi]. */
static aim_status read_int(const reader *r, const char *key, const aim_json *v, double lo,
                           double hi, int *out) {
    double x;
    if (!aim_json_get_number(v, &x) || x != floor(x) || x < lo || x > hi) {
        char what[96];
        snprintf(what, sizeof what, "must be an integer from %.0f to %.0f", lo, hi);
        return bad(r, key, what);
    }
    *out = (int)x;
    return AIM_OK;
}

/* A number or a list of 1 or 3 numbers (one is used for every channel). */
static aim_status read_triple(const reader *r, const char *key, const aim_json *v, bool positive,
                              float out[3]) {
    size_t n = v->type == AIM_JSON_ARRAY ? v->count : 1;
    if (v->type != AIM_JSON_NUMBER && v->type != AIM_JSON_ARRAY) n = 0;
    if (n != 1 && n != 3) return bad(r, key, "must be a number or a list of 1 or 3 numbers");
    for (size_t i = 0; i < 3; i++) {
        const aim_json *item = v->type == AIM_JSON_ARRAY ? aim_json_at(v, n == 3 ? i : 0) : v;
        double x;
        if (!aim_json_get_number(item, &x) || !isfinite(x))
            return bad(r, key, "must hold only numbers");
        if (positive && !(x > 0)) return bad(r, key, "must hold only numbers above 0");
        out[i] = (float)x;
    }
    return AIM_OK;
}

static aim_status read_nchw(const reader *r, const aim_json *v, int *out) {
    double x;
    if (v->type == AIM_JSON_BOOL) {
        *out = v->boolean ? 1 : 0;
        return AIM_OK;
    }
    if (aim_json_get_number(v, &x) && (x == 0 || x == 1)) {
        *out = (int)x;
        return AIM_OK;
    }
    return bad(r, "nchw", "must be true (NCHW) or false (NHWC)");
}

static aim_status read_target(const reader *r, const aim_json *v) {
    const char *s = aim_json_get_string(v);
    if (!s || !s[0]) return bad(r, "target", "must be a target name such as \"cpu-int8\"");
    r->o->target = s;
    return AIM_OK;
}

static aim_status read_method(const reader *r, const aim_json *v) {
    const char *s = aim_json_get_string(v);
    if (!s || !aim_calib_method_parse(s, &r->o->method))
        return bad(r, "calib_method",
                   "must be one of \"auto\", \"minmax\", \"percentile\", "
                   "\"entropy\"");
    return AIM_OK;
}

static aim_status read_calib_size(const reader *r, const aim_json *v) {
    int n = 0;
    aim_status st = read_int(r, "calib_size", v, 1, 1e9, &n);
    if (st == AIM_OK) r->o->calib_size = (size_t)n;
    return st;
}

/* The preprocessing keys; *known false when key is none of them. */
static aim_status read_preproc(reader *r, const char *key, const aim_json *v, bool *known) {
    aim_compile_preproc *p = &r->o->preproc;
    static const char *const keys[] = {"height", "width", "nchw", "channels", "means", "stds"};
    *known = false;
    for (size_t i = 0; i < AIM_ARRAY_LEN(keys); i++)
        *known = *known || strcmp(key, keys[i]) == 0;
    if (!*known) return AIM_OK;
    p->set = true;
    if (strcmp(key, "height") == 0) return read_int(r, key, v, 1, MAX_SIDE, &p->height);
    if (strcmp(key, "width") == 0) return read_int(r, key, v, 1, MAX_SIDE, &p->width);
    if (strcmp(key, "nchw") == 0) return read_nchw(r, v, &p->nchw);
    if (strcmp(key, "channels") == 0) {
        aim_status st = read_int(r, key, v, 1, 3, &p->channels);
        return st == AIM_OK && p->channels == 2 ? bad(r, key, "must be 1 or 3") : st;
    }
    if (strcmp(key, "means") == 0) {
        r->has_means = true;
        return read_triple(r, key, v, false, p->means);
    }
    if (strcmp(key, "stds") == 0) {
        r->has_stds = true;
        return read_triple(r, key, v, true, p->stds);
    }
    return AIM_OK;
}

static aim_status read_key(reader *r, const char *key, const aim_json *v) {
    aim_compile_options *o = r->o;
    if (v->type == AIM_JSON_NULL) return AIM_OK;
    if (strcmp(key, "start_node_names") == 0)
        return read_names(r, key, v, o->start_nodes, &o->start_count);
    if (strcmp(key, "end_node_names") == 0)
        return read_names(r, key, v, o->end_nodes, &o->end_count);
    if (strcmp(key, "target") == 0) return read_target(r, v);
    if (strcmp(key, "calib_method") == 0) return read_method(r, v);
    if (strcmp(key, "calib_size") == 0) return read_calib_size(r, v);
    bool known;
    aim_status st = read_preproc(r, key, v, &known);
    if (st != AIM_OK || known) return st;
    char msg[320];
    snprintf(msg, sizeof msg, "config key '%.200s' is not used by aim-toolchain (ignored)", key);
    return tc_list_add(&r->cfg->warnings, msg);
}

static aim_status read_document(reader *r, const aim_json *doc) {
    if (doc->type != AIM_JSON_OBJECT)
        return aim_error(AIM_ERR_INVALID_ARG, "config %s: must be a JSON object, not %s", r->file,
                         aim_json_type_name(doc->type));
    for (size_t i = 0; i < doc->count; i++) {
        aim_status st = read_key(r, doc->keys[i], &doc->items[i]);
        if (st != AIM_OK) return st;
    }
    if (r->has_means != r->has_stds)
        return aim_error(AIM_ERR_INVALID_ARG,
                         "config %s: 'means' and 'stds' must be given together", r->file);
    r->o->preproc.has_norm = r->has_means;
    return AIM_OK;
}

aim_status tc_config_load(const char *path, const char *display, aim_compile_options *o,
                          tc_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    if (!path) return AIM_OK;
    uint8_t *text = NULL;
    size_t size = 0;
    aim_status st = aim_file_read(path, CONFIG_MAX_BYTES, &text, &size);
    if (st != AIM_OK) return st;
    st = aim_json_parse((const char *)text, size, &cfg->doc);
    free(text);
    if (st != AIM_OK) return aim_error_context(st, "config %s is not valid JSON", display);
    reader r = {.file = display, .o = o, .cfg = cfg};
    if (!o->preproc.set) o->preproc.nchw = -1; /* "from the model" unless the config says */
    st = read_document(&r, cfg->doc);
    if (st != AIM_OK) tc_config_free(cfg);
    return st;
}

void tc_config_free(tc_config *cfg) {
    aim_json_free(cfg->doc);
    tc_list_free(&cfg->warnings);
    memset(cfg, 0, sizeof *cfg);
}
