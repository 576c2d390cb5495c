/*
 * cmd_check.c: `aim check MODEL [--json]`: checks a model against the manager's conventions
 * (REFERENCE.md section 2, rules in conventions.h) and reports each finding with a severity, a
 * code, a message and a fix hint. Exit 0: conforms (warnings allowed); 1: does not; 2: the model
 * cannot be read.
 */
#include "accel.h"
#include "aim/model.h"
#include "cli.h"
#include "cli_util.h"
#include "conventions.h"
#include "core/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char check_help[] =
    "usage: aim check MODEL [--json]\n\n"
    "Checks MODEL against the edge AI manager's conventions: inputs image- (float32\n"
    "[1,C,H,W] or [1,H,W,C], C 1 or 3, static), optional nms_sensitivity- (float32 [1]) and\n"
    "mask- (bool [H,W]); output names kind-key:value;... (scores, alarm, bboxes) with matching\n"
    "types and shapes; default-domain opset <= 17; normalisation JSON {\"means\", \"vars\"} in\n"
    "the graph doc_string; a known `chip` value. Each finding has a code and a fix hint.\n\n"
    "exit status: 0 conforms (warnings allowed), 1 does not conform, 2 unreadable or bad usage\n\n"
    "options:\n"
    "  --json       print the findings as one JSON document\n"
    "  -h, --help   show this help\n";

typedef struct {
    bool error;
    const char *code;
    char message[512];
    char hint[512];
} finding;

typedef struct {
    const char *path;
    char qpath[512]; /* path quoted for the shell, for hints */
    aim_model *m;
    finding *items;
    size_t count, cap;
    bool oom;
    bool have_image;
    aim_conv_image image;
} checker;

/* ---- Findings ------------------------------------------------------------------------------ */

static finding *add(checker *c, bool error, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static finding *add(checker *c, bool error, const char *code, const char *fmt, ...) {
    static finding spare; /* absorbs writes after an allocation failure */
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        finding *items = realloc(c->items, cap * sizeof *items);
        if (!items) {
            c->oom = true;
            return &spare;
        }
        c->items = items;
        c->cap = cap;
    }
    finding *f = &c->items[c->count++];
    f->error = error;
    f->code = code;
    f->hint[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
    return f;
}

static void hint(finding *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void hint(finding *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->hint, sizeof f->hint, fmt, ap);
    va_end(ap);
}

/* Hint for an io fix: "fix with: aim io MODEL -o OUT OPTION". */
static void io_hint(checker *c, finding *f, const char *option, const char *arg) {
    char q[512];
    aim_cli_shell_quote(arg, q, sizeof q);
    hint(f, "fix with: aim io %s -o OUT %s %s", c->qpath, option, q);
}

/* ---- Inputs -------------------------------------------------------------------------------- */

static void suggest_image_shape(checker *c, finding *f, const aim_value_info *v) {
    char dims[128];
    int64_t d[4];
    for (int i = 0; i < 4; i++)
        d[i] = v->dims[i].value;
    bool nhwc = d[3] == 1 || d[3] == 3;
    if (nhwc)
        snprintf(dims, sizeof dims, "image-=1x%lldx%lldx%lld", d[1] > 0 ? (long long)d[1] : 320LL,
                 d[2] > 0 ? (long long)d[2] : 320LL, (long long)d[3]);
    else
        snprintf(dims, sizeof dims, "image-=1x%lldx%lldx%lld", d[1] > 0 ? (long long)d[1] : 3LL,
                 d[2] > 0 ? (long long)d[2] : 320LL, d[3] > 0 ? (long long)d[3] : 320LL);
    io_hint(c, f, "--shape", dims);
    if (d[1] < 0 || d[2] < 0 || d[3] < 0)
        strncat(f->hint, " (use the height and width the model was trained for)",
                sizeof f->hint - strlen(f->hint) - 1);
}

static void check_image(checker *c, const aim_value_info *v) {
    char shape[256];
    aim_cli_format_shape(v, shape, sizeof shape);
    if (v->dtype != AIM_DTYPE_FLOAT)
        hint(add(c, true, "input-type", "input image- is %s, must be float32",
                 aim_dtype_name(v->dtype)),
             "re-export the model with a float32 input (raw 0..255 pixel values)");
    if (v->rank != 4) {
        hint(add(c, true, "input-shape", "input image- has shape %s, must be rank 4", shape),
             "re-export with an input of shape [1,C,H,W] or [1,H,W,C]");
        return;
    }
    aim_conv_image img;
    bool layout = aim_conv_image_layout(v, &img);
    if (!layout && aim_cli_shape_static(v)) {
        hint(add(c, true, "input-shape",
                 "input image- has shape %s: neither [1,C,H,W] nor [1,H,W,C] with C 1 or 3", shape),
             "the manager feeds RGB (C=3) or grayscale (C=1) images");
        return;
    }
    if (!aim_cli_shape_static(v)) {
        finding *f =
            add(c, true, "input-dynamic",
                "input image- has dynamic shape %s; the manager needs static input shapes", shape);
        suggest_image_shape(c, f, v);
    } else if (v->dims[0].value != 1) {
        finding *f = add(c, true, "input-shape", "input image- has batch %lld, must be 1",
                         (long long)v->dims[0].value);
        suggest_image_shape(c, f, v);
    }
    if (layout) {
        c->have_image = true;
        c->image = img;
    }
}

static void check_nms(checker *c, const aim_value_info *v) {
    char shape[256];
    aim_cli_format_shape(v, shape, sizeof shape);
    if (v->dtype != AIM_DTYPE_FLOAT)
        hint(add(c, true, "input-type", "input nms_sensitivity- is %s, must be float32",
                 aim_dtype_name(v->dtype)),
             "re-export the model with a float32 nms_sensitivity- input");
    if (v->rank == 1 && v->dims[0].value == 1) return;
    bool dynamic = v->rank < 0 || !aim_cli_shape_static(v);
    finding *f = add(c, true, dynamic ? "input-dynamic" : "input-shape",
                     "input nms_sensitivity- has shape %s, must be [1]", shape);
    io_hint(c, f, "--shape", AIM_CONV_NMS "=1");
}

static void check_mask(checker *c, const aim_value_info *v) {
    char shape[256], dims[64];
    aim_cli_format_shape(v, shape, sizeof shape);
    if (v->dtype != AIM_DTYPE_BOOL)
        hint(
            add(c, true, "input-type", "input mask- is %s, must be bool", aim_dtype_name(v->dtype)),
            "re-export the model with a bool mask- input");
    bool known = c->have_image && c->image.h > 0 && c->image.w > 0;
    if (known)
        snprintf(dims, sizeof dims, "mask-=%lldx%lld", (long long)c->image.h,
                 (long long)c->image.w);
    else
        snprintf(dims, sizeof dims, "mask-=HxW");
    if (v->rank != 2 || !aim_cli_shape_static(v)) {
        finding *f = add(c, true, v->rank == 2 ? "input-dynamic" : "input-shape",
                         "input mask- has shape %s, must be static [H,W]", shape);
        io_hint(c, f, "--shape", dims);
    } else if (known && (v->dims[0].value != c->image.h || v->dims[1].value != c->image.w)) {
        finding *f =
            add(c, false, "input-shape", "input mask- has shape %s but the image is %lldx%lld",
                shape, (long long)c->image.h, (long long)c->image.w);
        io_hint(c, f, "--shape", dims);
    }
}

static void check_other_input(checker *c, const aim_value_info *v, bool image_present) {
    finding *f = add(
        c, true, "input-name",
        "input '%s' is not one of image-, nms_sensitivity-, mask- (the manager feeds only those)",
        v->name);
    char pair[512];
    if (!image_present && aim_conv_image_like(v)) {
        snprintf(pair, sizeof pair, "%s=image-", v->name);
        io_hint(c, f, "--rename", pair);
    } else if (strstr(v->name, "nms") || strstr(v->name, "NMS")) {
        snprintf(pair, sizeof pair, "%s=nms_sensitivity-", v->name);
        io_hint(c, f, "--rename", pair);
    } else {
        hint(f,
             "rename it to one of the three names with: aim io %s -o OUT --rename %s=NEW, or "
             "re-export without it",
             c->qpath, v->name);
    }
}

static void check_inputs(checker *c) {
    size_t n = aim_model_input_count(c->m);
    bool image_present = false;
    aim_value_info v;
    for (size_t i = 0; i < n; i++) {
        if (aim_model_input(c->m, i, &v) == AIM_OK && strcmp(v.name, AIM_CONV_IMAGE) == 0) {
            check_image(c, &v);
            image_present = true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (aim_model_input(c->m, i, &v) != AIM_OK || strcmp(v.name, AIM_CONV_IMAGE) == 0) continue;
        if (strcmp(v.name, AIM_CONV_NMS) == 0)
            check_nms(c, &v);
        else if (strcmp(v.name, AIM_CONV_MASK) == 0)
            check_mask(c, &v);
        else
            check_other_input(c, &v, image_present);
    }
    if (!image_present) {
        finding *f = add(c, true, "input-missing", "the model has no input named image-");
        hint(f,
             "rename the image input with: aim io %s -o OUT --rename NAME=image- "
             "(or try: aim io %s -o OUT --conform)",
             c->qpath, c->qpath);
    }
}

/* ---- Outputs ------------------------------------------------------------------------------- */

/* Expected dims: [1, classes] for scores/alarm, [N, width] for bboxes. */
static void check_output_shape(checker *c, const aim_value_info *v, const aim_out_name *o) {
    char shape[256];
    aim_cli_format_shape(v, shape, sizeof shape);
    int64_t want1 = o->kind == AIM_OUT_BBOXES ? o->width : (int64_t)o->class_count;
    if (v->rank < 0) {
        add(c, false, "output-shape", "output '%s' declares no shape", v->name);
        return;
    }
    if (v->rank != 2) {
        hint(add(c, true, "output-shape", "output '%s' has shape %s, must be rank 2", v->name,
                 shape),
             "the manager reads %s outputs as a 2-D tensor", aim_conv_kind_name(o->kind));
        return;
    }
    if (o->kind != AIM_OUT_BBOXES && v->dims[0].value >= 0 && v->dims[0].value != 1)
        add(c, true, "output-shape", "output '%s' has shape %s; the first dim must be 1", v->name,
            shape);
    if (v->dims[1].value < 0) {
        add(c, false, "output-shape", "output '%s' has shape %s; the second dim should be %lld",
            v->name, shape, (long long)want1);
    } else if (v->dims[1].value != want1) {
        finding *f =
            add(c, true, "output-shape", "output '%s' has shape %s; expected [%s,%lld] (%s)",
                v->name, shape, o->kind == AIM_OUT_BBOXES ? "N" : "1", (long long)want1,
                o->kind == AIM_OUT_BBOXES ? o->format : "one column per class");
        hint(f, "the class list in the name and the tensor must agree");
    }
}

static void check_output(checker *c, const aim_value_info *v) {
    aim_out_name o;
    const char *code = "output-name";
    char why[256];
    if (!aim_conv_parse_output(v->name, &o, &code, why, sizeof why)) {
        finding *f =
            add(c, true, code, "output '%s' does not follow kind-key:value;...: %s", v->name, why);
        char pair[512];
        snprintf(pair, sizeof pair, "%s=bboxes-format:xyxysc;0:LABEL", v->name);
        io_hint(c, f, "--rename", pair);
        strncat(f->hint, " (or scores-0:A;1:B, alarm-0:A;1:B)",
                sizeof f->hint - strlen(f->hint) - 1);
        return;
    }
    int want = o.kind == AIM_OUT_ALARM ? AIM_DTYPE_BOOL : AIM_DTYPE_FLOAT;
    if (v->dtype != want)
        hint(add(c, true, "output-type", "output '%s' is %s; %s outputs must be %s", v->name,
                 v->dtype ? aim_dtype_name(v->dtype) : "untyped", aim_conv_kind_name(o.kind),
                 aim_dtype_name(want)),
             "add a Cast node before the output");
    check_output_shape(c, v, &o);
}

static void check_outputs(checker *c) {
    size_t n = aim_model_output_count(c->m);
    if (n == 0) add(c, true, "output-missing", "the model has no outputs");
    aim_value_info v;
    for (size_t i = 0; i < n; i++)
        if (aim_model_output(c->m, i, &v) == AIM_OK) check_output(c, &v);
}

/* ---- Opset, normalisation, chip ------------------------------------------------------------ */

static void check_opset(checker *c) {
    int64_t v = aim_model_opset_for(c->m, "");
    if (v < 0)
        add(c, false, "opset", "the model imports no default-domain (ai.onnx) opset");
    else if (v > AIM_CONV_MAX_OPSET)
        hint(add(c, true, "opset",
                 "default-domain opset %lld is newer than %d, the newest the manager is tested "
                 "with",
                 (long long)v, AIM_CONV_MAX_OPSET),
             "re-export with opset_version=17, or convert with onnx.version_converter");
}

static const char norm_hint[] =
    "set graph.doc_string to JSON such as {\"means\": [0,0,0], \"vars\": [1,1,1]} "
    "(0..255 scale; vars are standard deviations)";

/* Checks one of means/vars: an array of `channels` numbers (vars non-zero). */
static bool check_norm_array(checker *c, const aim_json *doc, const char *key, int64_t channels) {
    const aim_json *a = aim_json_get(doc, key);
    if (!a || a->type != AIM_JSON_ARRAY) {
        hint(add(c, true, "normalisation", "normalisation JSON has no '%s' array", key), norm_hint);
        return false;
    }
    for (size_t i = 0; i < a->count; i++) {
        if (a->items[i].type != AIM_JSON_NUMBER) {
            hint(add(c, true, "normalisation", "'%s'[%zu] is not a number", key, i), norm_hint);
            return false;
        }
        if (strcmp(key, "vars") == 0 && a->items[i].number == 0)
            hint(
                add(c, true, "normalisation", "'vars'[%zu] is 0 (input = (pixel - mean) / var)", i),
                "vars are standard deviations on the 0..255 scale; use 1 for no scaling");
    }
    if (channels > 0 && a->count != (size_t)channels)
        hint(add(c, true, "normalisation", "'%s' has %zu values but the image has %lld channels",
                 key, a->count, (long long)channels),
             "give one value per channel");
    return true;
}

/* Warns when values look like a 0..1 scale (ImageNet 0.485 / 0.229) instead of 0..255. */
static void check_norm_scale(checker *c, const aim_json *doc) {
    const aim_json *means = aim_json_get(doc, "means"), *vars = aim_json_get(doc, "vars");
    bool small = means->count > 0 && vars->count > 0, fraction = false;
    for (size_t i = 0; i < means->count; i++)
        small &= fabs(means->items[i].number) <= 1;
    for (size_t i = 0; i < vars->count; i++) {
        small &= vars->items[i].number > 0 && vars->items[i].number <= 1;
        fraction |= vars->items[i].number < 1;
    }
    if (small && fraction)
        hint(add(c, false, "normalisation",
                 "means/vars look like a 0..1 scale; the manager feeds 0..255 pixel values"),
             "multiply means and vars by 255");
}

static void check_norm_dims(checker *c, const aim_json *doc) {
    static const char *const keys[] = {"channels", "height", "width"};
    if (!c->have_image) return;
    int64_t have[] = {c->image.c, c->image.h, c->image.w};
    for (size_t i = 0; i < 3; i++) {
        double x;
        if (!aim_json_get_number(aim_json_get(doc, keys[i]), &x) || have[i] < 0) continue;
        if (x != (double)have[i])
            add(c, false, "normalisation", "normalisation '%s' is %g but image- has %lld", keys[i],
                x, (long long)have[i]);
    }
}

static void check_normalisation(checker *c) {
    const char *doc = aim_model_doc_string(c->m);
    if (!doc[0]) {
        hint(add(c, true, "normalisation",
                 "graph doc_string is empty; the manager reads normalisation means/vars from it"),
             norm_hint);
        return;
    }
    aim_json *json;
    if (aim_json_parse(doc, strlen(doc), &json) != AIM_OK) {
        hint(add(c, true, "normalisation", "graph doc_string is not JSON: %s", aim_last_error()),
             norm_hint);
        return;
    }
    int64_t channels = c->have_image ? c->image.c : -1;
    if (json->type != AIM_JSON_OBJECT) {
        hint(add(c, true, "normalisation", "graph doc_string is a JSON %s, not an object",
                 aim_json_type_name(json->type)),
             norm_hint);
    } else {
        bool means_ok = check_norm_array(c, json, "means", channels);
        bool vars_ok = check_norm_array(c, json, "vars", channels);
        if (means_ok && vars_ok) check_norm_scale(c, json);
        check_norm_dims(c, json);
    }
    aim_json_free(json);
}

static void check_chip(checker *c) {
    const char *chip = aim_model_meta_get(c->m, AIM_META_CHIP);
    aim_cli_accel accel;
    size_t n = aim_cli_find_accel(c->m, &accel, 1);
    if (chip && !aim_target_known(chip)) {
        const char *right = aim_target_correction(chip);
        finding *f = add(c, true, "chip", "metadata chip '%s' is not a known target%s", chip,
                         right ? " (the vendor script's known-wrong spelling)" : "");
        char pair[128];
        snprintf(pair, sizeof pair, "chip=%s", right ? right : "hailo");
        hint(f, "fix with: aim meta %s -o OUT --set %s%s", c->qpath, pair,
             right ? "" : " (targets: hailo, hailo-8l, cpu-int8)");
    }
    if (n > 0 && !accel.magic_ok)
        add(c, true, "accelerator", "node %s '%s' has no valid %s payload", accel.op_type,
            accel.node_name, strcmp(accel.op_type, AIM_HAILO_OP_TYPE) == 0 ? "HEF" : "program");
    if (n > 0 && !chip) {
        finding *f = add(c, false, "chip", "the model embeds a %s node but has no chip metadata",
                         accel.op_type);
        hint(f, "fix with: aim meta %s -o OUT --set chip=%s", c->qpath,
             accel.target[0] ? accel.target : "hailo");
    }
}

/* ---- Report -------------------------------------------------------------------------------- */

static void count_findings(const checker *c, size_t *errors, size_t *warnings) {
    *errors = *warnings = 0;
    for (size_t i = 0; i < c->count; i++)
        ++*(c->items[i].error ? errors : warnings);
}

static void print_text(const checker *c) {
    size_t errors, warnings;
    count_findings(c, &errors, &warnings);
    printf("%s\n", c->path);
    for (size_t i = 0; i < c->count; i++) {
        const finding *f = &c->items[i];
        printf("  %-7s %-15s %s\n", f->error ? "error" : "warning", f->code, f->message);
        if (f->hint[0]) printf("  %-7s %-15s %s\n", "", "", f->hint);
    }
    printf("%s: %zu error%s, %zu warning%s\n", errors ? "does not conform" : "conforms", errors,
           errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
}

static int print_json(const checker *c) {
    size_t errors, warnings;
    count_findings(c, &errors, &warnings);
    aim_json_writer w;
    aim_json_writer_init_file(&w, stdout, 2);
    aim_json_begin_object(&w);
    aim_json_key(&w, "file");
    aim_json_string(&w, c->path);
    aim_json_key(&w, "conforms");
    aim_json_bool(&w, errors == 0);
    aim_json_key(&w, "errors");
    aim_json_int(&w, (int64_t)errors);
    aim_json_key(&w, "warnings");
    aim_json_int(&w, (int64_t)warnings);
    aim_json_key(&w, "findings");
    aim_json_begin_array(&w);
    for (size_t i = 0; i < c->count; i++) {
        aim_json_begin_object(&w);
        aim_json_key(&w, "severity");
        aim_json_string(&w, c->items[i].error ? "error" : "warning");
        aim_json_key(&w, "code");
        aim_json_string(&w, c->items[i].code);
        aim_json_key(&w, "message");
        aim_json_string(&w, c->items[i].message);
        aim_json_key(&w, "hint");
        aim_json_string(&w, c->items[i].hint);
        aim_json_end_object(&w);
    }
    aim_json_end_array(&w);
    aim_json_end_object(&w);
    aim_status st = aim_json_writer_finish(&w);
    return st == AIM_OK ? AIM_EXIT_OK : aim_cli_fail_status("check", st);
}

/* ---- Command ------------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, const char **path, bool *json) {
    for (int i = 1; i < argc; i++) {
        if (aim_cli_is_help(argv[i])) {
            fputs(check_help, stdout);
            return -1;
        } else if (strcmp(argv[i], "--json") == 0) {
            *json = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return aim_cli_fail("check", "unknown option '%s' (see --help)", argv[i]);
        } else if (!*path) {
            *path = argv[i];
        } else {
            return aim_cli_fail("check", "unexpected argument '%s' (see --help)", argv[i]);
        }
    }
    if (!*path) return aim_cli_fail("check", "needs MODEL (see --help)");
    return AIM_EXIT_OK;
}

int aim_cmd_check(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    int rc = parse_args(argc, argv, &path, &json);
    if (rc != AIM_EXIT_OK) return rc < 0 ? AIM_EXIT_OK : rc;
    checker c = {.path = path};
    aim_cli_shell_quote(path, c.qpath, sizeof c.qpath);
    if (!aim_cli_load("check", path, &c.m)) return AIM_EXIT_ERROR;
    check_inputs(&c);
    check_outputs(&c);
    check_opset(&c);
    check_normalisation(&c);
    check_chip(&c);
    size_t errors, warnings;
    count_findings(&c, &errors, &warnings);
    if (c.oom)
        rc = aim_cli_fail("check", "out of memory");
    else if (json)
        rc = print_json(&c);
    else
        print_text(&c);
    if (rc == AIM_EXIT_OK && errors) rc = AIM_EXIT_NO;
    free(c.items);
    aim_model_free(c.m);
    return rc;
}
