/*
 * logs.c: the toolchain's logs.json: what was read (input, model, config, images), the options
 * used, the outcome (status, exit code, error or output model), the compiler's own log embedded
 * under "compile", and warnings. Written atomically, indented, on success and on failure.
 */
#include "toolchain.h"

#include "core/util.h"

#include <stdlib.h>
#include <string.h>

void tc_json_emit(aim_json_writer *w, const aim_json *v) {
    switch (v->type) {
    case AIM_JSON_NULL: aim_json_null(w); return;
    case AIM_JSON_BOOL: aim_json_bool(w, v->boolean); return;
    case AIM_JSON_NUMBER: aim_json_number(w, v->number); return;
    case AIM_JSON_STRING: aim_json_string_len(w, v->string, v->length); return;
    case AIM_JSON_ARRAY:
        aim_json_begin_array(w);
        for (size_t i = 0; i < v->count; i++)
            tc_json_emit(w, &v->items[i]);
        aim_json_end_array(w);
        return;
    case AIM_JSON_OBJECT:
        aim_json_begin_object(w);
        for (size_t i = 0; i < v->count; i++) {
            aim_json_key(w, v->keys[i]);
            tc_json_emit(w, &v->items[i]);
        }
        aim_json_end_object(w);
        return;
    }
}

static void string_or_null(aim_json_writer *w, const char *key, const char *s) {
    aim_json_key(w, key);
    if (s)
        aim_json_string(w, s);
    else
        aim_json_null(w);
}

static void string_list(aim_json_writer *w, const char *key, const char *const *items, size_t n) {
    aim_json_key(w, key);
    aim_json_begin_array(w);
    for (size_t i = 0; i < n; i++)
        aim_json_string(w, items[i]);
    aim_json_end_array(w);
}

static void number_list(aim_json_writer *w, const char *key, const float *x, size_t n) {
    aim_json_key(w, key);
    aim_json_begin_array(w);
    for (size_t i = 0; i < n; i++)
        aim_json_number(w, x[i]);
    aim_json_end_array(w);
}

static void write_preproc(aim_json_writer *w, const aim_compile_preproc *p) {
    aim_json_key(w, "preprocessing");
    if (!p->set) {
        aim_json_string(w, "from the model");
        return;
    }
    aim_json_begin_object(w);
    aim_json_key(w, "width");
    aim_json_int(w, p->width);
    aim_json_key(w, "height");
    aim_json_int(w, p->height);
    aim_json_key(w, "channels");
    aim_json_int(w, p->channels);
    aim_json_key(w, "nchw");
    aim_json_int(w, p->nchw);
    if (p->has_norm) {
        number_list(w, "means", p->means, 3);
        number_list(w, "stds", p->stds, 3);
    }
    aim_json_end_object(w);
}

static void write_options(aim_json_writer *w, const aim_compile_options *o) {
    aim_json_key(w, "options");
    aim_json_begin_object(w);
    string_or_null(w, "target", o->target);
    aim_json_key(w, "calib_method");
    aim_json_string(w, aim_calib_method_name(o->method));
    aim_json_key(w, "calib_size");
    aim_json_int(w, (int64_t)o->calib_size);
    string_list(w, "start_node_names", o->start_nodes, o->start_count);
    string_list(w, "end_node_names", o->end_nodes, o->end_count);
    write_preproc(w, &o->preproc);
    aim_json_end_object(w);
}

static void write_inputs(aim_json_writer *w, const tc_inputs *in) {
    string_or_null(w, "model", in->model_rel);
    string_or_null(w, "config", in->config_rel);
    aim_json_key(w, "images_found");
    aim_json_int(w, (int64_t)in->images.count);
    string_list(w, "ignored_files", (const char *const *)in->ignored.items, in->ignored.count);
}

/* The compiler's log, parsed and embedded; kept as a string if it is not valid JSON. */
static void write_compile(aim_json_writer *w, const aim_compile_result *r) {
    aim_json_key(w, "images_used");
    aim_json_int(w, (int64_t)r->images_used);
    aim_json_key(w, "images_skipped");
    aim_json_int(w, (int64_t)r->images_skipped);
    aim_json_key(w, "calib_method_used");
    aim_json_string(w, aim_calib_method_name(r->method_used));
    aim_json_key(w, "region_nodes");
    aim_json_int(w, (int64_t)r->region_nodes);
    string_or_null(w, "region", r->region);
    aim_json_key(w, "output_cosine");
    aim_json_number(w, r->output_cosine);
    aim_json_key(w, "compile");
    aim_json *doc = NULL;
    if (r->logs_json && aim_json_parse(r->logs_json, strlen(r->logs_json), &doc) == AIM_OK)
        tc_json_emit(w, doc);
    else if (r->logs_json)
        aim_json_string(w, r->logs_json);
    else
        aim_json_null(w);
    aim_json_free(doc);
}

static void write_body(aim_json_writer *w, const tc_log *log) {
    aim_json_key(w, "toolchain");
    aim_json_string(w, "aim-toolchain");
    aim_json_key(w, "version");
    aim_json_string(w, AIM_VERSION_STRING);
    aim_json_key(w, "status");
    aim_json_string(w, log->error ? "failed" : "ok");
    aim_json_key(w, "exit_code");
    aim_json_int(w, log->exit_code);
    string_or_null(w, "error", log->error);
    string_or_null(w, "input", log->input);
    string_or_null(w, "input_kind", log->input_kind);
    string_or_null(w, "output_directory", log->output_dir);
    string_or_null(w, "output_model", log->output_model);
    aim_json_key(w, "seconds");
    aim_json_number(w, log->seconds);
    if (log->inputs) write_inputs(w, log->inputs);
    if (log->options) write_options(w, log->options);
    if (log->config)
        string_list(w, "warnings", (const char *const *)log->config->warnings.items,
                    log->config->warnings.count);
    if (log->result) write_compile(w, log->result);
}

aim_status tc_log_write(const tc_log *log) {
    aim_strbuf sb;
    aim_strbuf_init(&sb);
    aim_json_writer w;
    aim_json_writer_init_buf(&w, &sb, 2);
    aim_json_begin_object(&w);
    write_body(&w, log);
    aim_json_end_object(&w);
    aim_status st = aim_json_writer_finish(&w);
    char *path = aim_path_join(log->output_dir, "logs.json");
    if (st == AIM_OK && (sb.failed || !path)) st = aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st == AIM_OK) st = aim_file_write_atomic(path, sb.data, sb.len);
    free(path);
    aim_strbuf_free(&sb);
    return st;
}
