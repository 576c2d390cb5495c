/*
 * cmd_inspect.c: `aim inspect MODEL [--json]`: what a model is: header facts, opsets, inputs and
 * outputs with shapes, metadata, the normalisation JSON of the graph doc_string, an op-type
 * histogram, parameter totals and embedded accelerator programs; as aligned text or one JSON
 * document.
 */
#include "aim/model.h"
#include "cli.h"
#include "cli_util.h"
#include "core/json.h"

#include <stdlib.h>
#include <string.h>

static const char inspect_help[] =
    "usage: aim inspect MODEL [--json]\n\n"
    "Shows a model's IR version, producer, opsets, inputs and outputs (type and shape, symbolic\n"
    "dims by name), metadata_props, the normalisation JSON kept in the graph doc_string, an\n"
    "operator histogram, the parameter count and size, and any embedded accelerator program\n"
    "(HailoOp of ai.hailo, AimProgram of ai.aim).\n\n"
    "options:\n"
    "  --json       print one JSON document instead of text\n"
    "  -h, --help   show this help\n";

#define MAX_ACCEL 16

typedef struct {
    const char *op_type;
    const char *domain;
    size_t count;
} op_count;

typedef struct {
    const char *path;
    aim_model *m;
    op_count *ops;
    size_t op_kinds;
    size_t nodes;
    size_t param_count, param_bytes, initializers;
    aim_json *norm;       /* parsed doc_string, or NULL */
    char norm_error[256]; /* why doc_string is not JSON ("" when it is, or is empty) */
    aim_cli_accel accel[MAX_ACCEL];
    size_t accel_count;
} inspection;

/* ---- Gathering ----------------------------------------------------------------------------- */

static int by_count(const void *a, const void *b) {
    const op_count *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    int c = strcmp(x->op_type, y->op_type);
    return c ? c : strcmp(x->domain, y->domain);
}

static bool count_ops(inspection *in) {
    size_t n = aim_model_node_count(in->m);
    in->ops = calloc(n ? n : 1, sizeof *in->ops);
    if (!in->ops) return false;
    for (size_t i = 0; i < n; i++) {
        aim_node_info node;
        if (aim_model_node(in->m, i, &node) != AIM_OK) return false;
        size_t k = 0;
        while (k < in->op_kinds && (strcmp(in->ops[k].op_type, node.op_type) != 0 ||
                                    strcmp(in->ops[k].domain, node.domain) != 0))
            k++;
        if (k == in->op_kinds) in->ops[in->op_kinds++] = (op_count){node.op_type, node.domain, 0};
        in->ops[k].count++;
    }
    in->nodes = n;
    qsort(in->ops, in->op_kinds, sizeof *in->ops, by_count);
    return true;
}

static bool count_params(inspection *in) {
    in->initializers = aim_model_initializer_count(in->m);
    for (size_t i = 0; i < in->initializers; i++) {
        aim_tensor_info t;
        if (aim_model_initializer(in->m, i, &t) != AIM_OK) return false;
        in->param_count += t.element_count;
        in->param_bytes += t.byte_size;
    }
    return true;
}

static void parse_normalisation(inspection *in) {
    const char *doc = aim_model_doc_string(in->m);
    if (!doc[0]) return;
    if (aim_json_parse(doc, strlen(doc), &in->norm) != AIM_OK)
        snprintf(in->norm_error, sizeof in->norm_error, "%s", aim_last_error());
    else if (in->norm->type != AIM_JSON_OBJECT)
        snprintf(in->norm_error, sizeof in->norm_error, "JSON %s, not an object",
                 aim_json_type_name(in->norm->type));
}

static bool gather(inspection *in) {
    if (!count_ops(in) || !count_params(in)) return false;
    parse_normalisation(in);
    in->accel_count = aim_cli_find_accel(in->m, in->accel, MAX_ACCEL);
    if (in->accel_count > MAX_ACCEL) in->accel_count = MAX_ACCEL;
    return true;
}

/* ---- Text ---------------------------------------------------------------------------------- */

static int io_name_width(const aim_model *m) {
    size_t width = 4;
    aim_value_info v;
    for (size_t i = 0; i < aim_model_input_count(m); i++)
        if (aim_model_input(m, i, &v) == AIM_OK && strlen(v.name) > width) width = strlen(v.name);
    for (size_t i = 0; i < aim_model_output_count(m); i++)
        if (aim_model_output(m, i, &v) == AIM_OK && strlen(v.name) > width) width = strlen(v.name);
    return (int)width;
}

static void print_value(const aim_value_info *v, int width) {
    char shape[256];
    aim_cli_format_shape(v, shape, sizeof shape);
    printf("  %-*s  %-8s %s\n", width, v->name, v->dtype ? aim_dtype_name(v->dtype) : "unknown",
           shape);
}

static void print_io(const aim_model *m) {
    int width = io_name_width(m);
    aim_value_info v;
    printf("inputs:\n");
    for (size_t i = 0; i < aim_model_input_count(m); i++)
        if (aim_model_input(m, i, &v) == AIM_OK) print_value(&v, width);
    printf("outputs:\n");
    for (size_t i = 0; i < aim_model_output_count(m); i++)
        if (aim_model_output(m, i, &v) == AIM_OK) print_value(&v, width);
}

static void print_header(const inspection *in) {
    const aim_model *m = in->m;
    printf("%-14s %s\n", "model", in->path);
    printf("%-14s %lld\n", "ir_version", (long long)aim_model_ir_version(m));
    printf("%-14s %s %s\n", "producer",
           aim_model_producer_name(m)[0] ? aim_model_producer_name(m) : "(none)",
           aim_model_producer_version(m));
    printf("%-14s %s\n", "graph", aim_model_graph_name(m)[0] ? aim_model_graph_name(m) : "(none)");
    printf("%-14s", "opsets");
    for (size_t i = 0; i < aim_model_opset_count(m); i++) {
        const char *d = aim_model_opset_domain(m, i);
        printf(" %s %lld%s", d[0] ? d : "ai.onnx", (long long)aim_model_opset_version(m, i),
               i + 1 < aim_model_opset_count(m) ? "," : "");
    }
    printf("\n");
}

static void print_metadata(const aim_model *m) {
    size_t n = aim_model_meta_count(m);
    printf("metadata:%s\n", n ? "" : " (none)");
    for (size_t i = 0; i < n; i++)
        printf("  %-12s %s\n", aim_model_meta_key(m, i), aim_model_meta_value(m, i));
}

/* A JSON value as short text: numbers, arrays of numbers, strings. */
static void print_json_short(const aim_json *v) {
    if (v->type == AIM_JSON_NUMBER)
        printf("%g", v->number);
    else if (v->type == AIM_JSON_STRING)
        printf("\"%s\"", v->string);
    else if (v->type == AIM_JSON_BOOL)
        printf("%s", v->boolean ? "true" : "false");
    else if (v->type == AIM_JSON_NULL)
        printf("null");
    else if (v->type == AIM_JSON_ARRAY) {
        printf("[");
        for (size_t i = 0; i < v->count; i++) {
            if (i) printf(", ");
            print_json_short(&v->items[i]);
        }
        printf("]");
    } else {
        printf("{...}");
    }
}

static const char *const norm_fields[] = {"means", "vars", "channels", "height", "width", "order"};

static void print_normalisation(const inspection *in) {
    if (!aim_model_doc_string(in->m)[0]) {
        printf("normalisation: (none: graph doc_string is empty)\n");
        return;
    }
    if (in->norm_error[0]) {
        printf("normalisation: (graph doc_string is not normalisation JSON: %s)\n", in->norm_error);
        return;
    }
    printf("normalisation:\n");
    for (size_t i = 0; i < AIM_ARRAY_LEN(norm_fields); i++) {
        const aim_json *v = aim_json_get(in->norm, norm_fields[i]);
        if (!v) continue;
        printf("  %-12s ", norm_fields[i]);
        print_json_short(v);
        printf("\n");
    }
    if (!aim_json_get(in->norm, "means") || !aim_json_get(in->norm, "vars"))
        printf("  (means or vars missing)\n");
}

static void print_ops(const inspection *in) {
    printf("operators:     %zu nodes, %zu types\n", in->nodes, in->op_kinds);
    for (size_t i = 0; i < in->op_kinds; i++) {
        const op_count *o = &in->ops[i];
        char name[160];
        snprintf(name, sizeof name, "%s%s%s", o->domain, o->domain[0] ? "." : "", o->op_type);
        printf("  %-24s %6zu\n", name, o->count);
    }
}

static void print_accel(const inspection *in) {
    printf("parameters:    %zu in %zu initializers (%zu bytes, %.2f MiB)\n", in->param_count,
           in->initializers, in->param_bytes, (double)in->param_bytes / (1024.0 * 1024.0));
    printf("accelerator:%s\n", in->accel_count ? "" : "   (none)");
    for (size_t i = 0; i < in->accel_count; i++) {
        const aim_cli_accel *a = &in->accel[i];
        printf("  %s.%s '%s': target %s, payload %zu bytes%s\n", a->domain, a->op_type,
               a->node_name, a->target[0] ? a->target : "(unset)", a->payload,
               !a->has_payload ? " (payload attribute missing)"
               : !a->magic_ok  ? " (not a HEF: magic bytes missing)"
                               : "");
    }
}

static void print_text(const inspection *in) {
    print_header(in);
    print_io(in->m);
    print_metadata(in->m);
    print_normalisation(in);
    print_ops(in);
    print_accel(in);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

/* Copies a parsed JSON value into the writer. */
static void json_copy(aim_json_writer *w, const aim_json *v) {
    switch (v->type) {
    case AIM_JSON_NULL: aim_json_null(w); break;
    case AIM_JSON_BOOL: aim_json_bool(w, v->boolean); break;
    case AIM_JSON_NUMBER: aim_json_number(w, v->number); break;
    case AIM_JSON_STRING: aim_json_string_len(w, v->string, v->length); break;
    case AIM_JSON_ARRAY:
        aim_json_begin_array(w);
        for (size_t i = 0; i < v->count; i++)
            json_copy(w, &v->items[i]);
        aim_json_end_array(w);
        break;
    case AIM_JSON_OBJECT:
        aim_json_begin_object(w);
        for (size_t i = 0; i < v->count; i++) {
            aim_json_key(w, v->keys[i]);
            json_copy(w, &v->items[i]);
        }
        aim_json_end_object(w);
        break;
    }
}

static void json_header(aim_json_writer *w, const inspection *in) {
    const aim_model *m = in->m;
    aim_json_key(w, "file");
    aim_json_string(w, in->path);
    aim_json_key(w, "ir_version");
    aim_json_int(w, aim_model_ir_version(m));
    aim_json_key(w, "producer_name");
    aim_json_string(w, aim_model_producer_name(m));
    aim_json_key(w, "producer_version");
    aim_json_string(w, aim_model_producer_version(m));
    aim_json_key(w, "graph_name");
    aim_json_string(w, aim_model_graph_name(m));
    aim_json_key(w, "opsets");
    aim_json_begin_array(w);
    for (size_t i = 0; i < aim_model_opset_count(m); i++) {
        aim_json_begin_object(w);
        aim_json_key(w, "domain");
        aim_json_string(w, aim_model_opset_domain(m, i));
        aim_json_key(w, "version");
        aim_json_int(w, aim_model_opset_version(m, i));
        aim_json_end_object(w);
    }
    aim_json_end_array(w);
}

static void json_io(aim_json_writer *w, const aim_model *m) {
    aim_value_info v;
    aim_json_key(w, "inputs");
    aim_json_begin_array(w);
    for (size_t i = 0; i < aim_model_input_count(m); i++)
        if (aim_model_input(m, i, &v) == AIM_OK) aim_cli_json_value_info(w, &v);
    aim_json_end_array(w);
    aim_json_key(w, "outputs");
    aim_json_begin_array(w);
    for (size_t i = 0; i < aim_model_output_count(m); i++)
        if (aim_model_output(m, i, &v) == AIM_OK) aim_cli_json_value_info(w, &v);
    aim_json_end_array(w);
    aim_json_key(w, "metadata");
    aim_json_begin_object(w);
    for (size_t i = 0; i < aim_model_meta_count(m); i++) {
        aim_json_key(w, aim_model_meta_key(m, i));
        aim_json_string(w, aim_model_meta_value(m, i));
    }
    aim_json_end_object(w);
}

static void json_normalisation(aim_json_writer *w, const inspection *in) {
    aim_json_key(w, "doc_string");
    aim_json_string(w, aim_model_doc_string(in->m));
    aim_json_key(w, "normalisation");
    if (!in->norm || in->norm_error[0]) {
        aim_json_null(w);
    } else {
        aim_json_begin_object(w);
        for (size_t i = 0; i < AIM_ARRAY_LEN(norm_fields); i++) {
            const aim_json *v = aim_json_get(in->norm, norm_fields[i]);
            if (!v) continue;
            aim_json_key(w, norm_fields[i]);
            json_copy(w, v);
        }
        aim_json_end_object(w);
    }
    aim_json_key(w, "normalisation_error");
    if (in->norm_error[0])
        aim_json_string(w, in->norm_error);
    else if (!aim_model_doc_string(in->m)[0])
        aim_json_string(w, "graph doc_string is empty");
    else
        aim_json_null(w);
}

static void json_ops(aim_json_writer *w, const inspection *in) {
    aim_json_key(w, "node_count");
    aim_json_int(w, (int64_t)in->nodes);
    aim_json_key(w, "operators");
    aim_json_begin_array(w);
    for (size_t i = 0; i < in->op_kinds; i++) {
        aim_json_begin_object(w);
        aim_json_key(w, "op_type");
        aim_json_string(w, in->ops[i].op_type);
        aim_json_key(w, "domain");
        aim_json_string(w, in->ops[i].domain);
        aim_json_key(w, "count");
        aim_json_int(w, (int64_t)in->ops[i].count);
        aim_json_end_object(w);
    }
    aim_json_end_array(w);
    aim_json_key(w, "parameters");
    aim_json_begin_object(w);
    aim_json_key(w, "initializers");
    aim_json_int(w, (int64_t)in->initializers);
    aim_json_key(w, "count");
    aim_json_int(w, (int64_t)in->param_count);
    aim_json_key(w, "bytes");
    aim_json_int(w, (int64_t)in->param_bytes);
    aim_json_end_object(w);
}

static void json_accel(aim_json_writer *w, const inspection *in) {
    aim_json_key(w, "accelerators");
    aim_json_begin_array(w);
    for (size_t i = 0; i < in->accel_count; i++) {
        const aim_cli_accel *a = &in->accel[i];
        aim_json_begin_object(w);
        aim_json_key(w, "node");
        aim_json_string(w, a->node_name);
        aim_json_key(w, "op_type");
        aim_json_string(w, a->op_type);
        aim_json_key(w, "domain");
        aim_json_string(w, a->domain);
        aim_json_key(w, "target");
        aim_json_string(w, a->target);
        aim_json_key(w, "payload_bytes");
        aim_json_int(w, (int64_t)a->payload);
        aim_json_key(w, "payload_valid");
        aim_json_bool(w, a->has_payload && a->magic_ok);
        aim_json_end_object(w);
    }
    aim_json_end_array(w);
}

static int print_json(const inspection *in) {
    aim_json_writer w;
    aim_json_writer_init_file(&w, stdout, 2);
    aim_json_begin_object(&w);
    json_header(&w, in);
    json_io(&w, in->m);
    json_normalisation(&w, in);
    json_ops(&w, in);
    json_accel(&w, in);
    aim_json_end_object(&w);
    aim_status st = aim_json_writer_finish(&w);
    return st == AIM_OK ? AIM_EXIT_OK : aim_cli_fail_status("inspect", st);
}

/* ---- Command ------------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, const char **path, bool *json) {
    for (int i = 1; i < argc; i++) {
        if (aim_cli_is_help(argv[i])) {
            fputs(inspect_help, stdout);
            return -1;
        } else if (strcmp(argv[i], "--json") == 0) {
            *json = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return aim_cli_fail("inspect", "unknown option '%s' (see --help)", argv[i]);
        } else if (!*path) {
            *path = argv[i];
        } else {
            return aim_cli_fail("inspect", "unexpected argument '%s' (see --help)", argv[i]);
        }
    }
    if (!*path) return aim_cli_fail("inspect", "needs MODEL (see --help)");
    return AIM_EXIT_OK;
}

int aim_cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    int rc = parse_args(argc, argv, &path, &json);
    if (rc != AIM_EXIT_OK) return rc < 0 ? AIM_EXIT_OK : rc;
    inspection in = {.path = path};
    if (!aim_cli_load("inspect", path, &in.m)) return AIM_EXIT_ERROR;
    if (!gather(&in))
        rc = aim_cli_fail("inspect", "%s: %s", path, aim_last_error());
    else if (json)
        rc = print_json(&in);
    else
        print_text(&in);
    aim_json_free(in.norm);
    free(in.ops);
    aim_model_free(in.m);
    return rc;
}
