/*
 * cmd_io.c: `aim io MODEL -o OUT`: renames, reshapes and conforms a model's graph inputs and
 * outputs. --conform does, generally, what the vendor's update script does for one model
 * (REFERENCE.md section 1 step 3): image input renamed to image-, a post_ prefix stripped,
 * nms_sensitivity- set to [1], mask- to the image's [H,W], outputs made static where the name
 * says how, and a misspelt `chip` fixed. When the right change is ambiguous it writes nothing
 * and says which option to give. Every change is printed; OUT is written atomically.
 */
#include "accel.h"
#include "aim/model.h"
#include "cli.h"
#include "cli_util.h"
#include "conventions.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char io_help[] =
    "usage: aim io MODEL -o OUT [--rename OLD=NEW]... [--strip-prefix PREFIX]...\n"
    "                         [--shape NAME=DIMS]... [--conform]\n\n"
    "Changes the names and shapes of a model's graph inputs and outputs (node references are\n"
    "rewired) and writes the result to OUT. Options apply in this order: renames, prefix\n"
    "strips, shapes, then --conform. Each change is printed.\n\n"
    "options:\n"
    "  -o, --output OUT        where to write the model (required; may equal MODEL)\n"
    "  --rename OLD=NEW        rename a tensor (split at the first '=')\n"
    "  --strip-prefix PREFIX   strip PREFIX from every graph input/output name that has it\n"
    "  --shape NAME=DIMS       set a static shape, DIMS like 1x3x640x640 (or 1 for rank 1)\n"
    "  --conform               fix the inputs and outputs to the manager's conventions:\n"
    "                          strip 'post_', rename the one image-like input to image-, the\n"
    "                          one NMS-like input to nms_sensitivity- with shape [1], set\n"
    "                          mask- to [H,W] of the image, make scores/alarm outputs\n"
    "                          [1,classes] and bboxes [N,width], fix chip hailo8/hailo8l.\n"
    "                          When a change is ambiguous nothing is written (exit 2) and the\n"
    "                          message names the option that resolves it.\n"
    "  -h, --help              show this help\n";

typedef struct {
    const char *input, *output;
    const char **renames, **strips, **shapes; /* each argc long */
    size_t n_renames, n_strips, n_shapes;
    bool conform;
} io_args;

typedef struct {
    aim_model *m;
    const char *qpath; /* MODEL, shell-quoted, for messages */
    aim_strbuf log;    /* changes made, printed once everything succeeded */
    size_t changes;
} io_ctx;

/* ---- Changes ------------------------------------------------------------------------------- */

static void logf_change(io_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void logf_change(io_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    aim_strbuf_printf(&c->log, "%s\n", line);
    c->changes++;
}

/* A graph input or output by name; false when there is none. */
static bool find_io(const aim_model *m, const char *name, aim_value_info *v) {
    for (size_t i = 0; i < aim_model_input_count(m); i++)
        if (aim_model_input(m, i, v) == AIM_OK && strcmp(v->name, name) == 0) return true;
    for (size_t i = 0; i < aim_model_output_count(m); i++)
        if (aim_model_output(m, i, v) == AIM_OK && strcmp(v->name, name) == 0) return true;
    return false;
}

static bool do_rename(io_ctx *c, const char *from, const char *to) {
    if (strcmp(from, to) == 0) return true;
    char *old = aim_strdup(from); /* `from` may be owned by the model */
    if (!old) return aim_cli_fail("io", "out of memory"), false;
    aim_status st = aim_model_rename(c->m, old, to);
    if (st == AIM_OK)
        logf_change(c, "renamed '%s' -> '%s'", old, to);
    else
        aim_cli_fail("io", "cannot rename '%s' to '%s': %s", old, to, aim_last_error());
    free(old);
    return st == AIM_OK;
}

static bool do_shape(io_ctx *c, const char *name, int rank, const int64_t *dims) {
    aim_value_info v;
    char before[256] = "unknown", after[256];
    aim_value_info want = {.name = name, .rank = rank};
    for (int i = 0; i < rank; i++)
        want.dims[i].value = dims[i];
    aim_cli_format_shape(&want, after, sizeof after);
    if (find_io(c->m, name, &v)) {
        aim_cli_format_shape(&v, before, sizeof before);
        if (strcmp(before, after) == 0) return true;
    }
    char *copy = aim_strdup(name);
    if (!copy) return aim_cli_fail("io", "out of memory"), false;
    aim_status st = aim_model_set_shape(c->m, copy, rank, dims);
    if (st == AIM_OK)
        logf_change(c, "shape of '%s': %s -> %s", copy, before, after);
    else
        aim_cli_fail("io", "cannot set the shape of '%s': %s", copy, aim_last_error());
    free(copy);
    return st == AIM_OK;
}

/* Graph input and output names starting with prefix (copies; the caller frees each and the
 * array). */
static char **names_with_prefix(const aim_model *m, const char *prefix, size_t *count) {
    size_t total = aim_model_input_count(m) + aim_model_output_count(m), n = 0,
           plen = strlen(prefix);
    char **names = calloc(total ? total : 1, sizeof *names);
    if (!names) return NULL;
    for (size_t i = 0; i < total; i++) {
        aim_value_info v;
        size_t in = aim_model_input_count(m);
        aim_status st = i < in ? aim_model_input(m, i, &v) : aim_model_output(m, i - in, &v);
        if (st == AIM_OK && strncmp(v.name, prefix, plen) == 0 && v.name[plen])
            names[n++] = aim_strdup(v.name);
    }
    *count = n;
    return names;
}

static bool do_strip(io_ctx *c, const char *prefix, bool quiet) {
    size_t n = 0;
    char **names = names_with_prefix(c->m, prefix, &n);
    if (!names) return aim_cli_fail("io", "out of memory"), false;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        ok = ok && names[i] && do_rename(c, names[i], names[i] + strlen(prefix));
        free(names[i]);
    }
    free(names);
    if (n == 0 && !quiet)
        fprintf(stderr, "aim io: note: no input or output name starts with '%s'\n", prefix);
    return ok;
}

/* ---- Explicit options ---------------------------------------------------------------------- */

static bool apply_rename(io_ctx *c, const char *arg) {
    char *from;
    const char *to;
    if (!aim_cli_split_pair(arg, &from, &to))
        return aim_cli_fail("io", "--rename needs OLD=NEW, got '%s'", arg), false;
    if (!to[0]) {
        free(from);
        return aim_cli_fail("io", "--rename needs a non-empty NEW name, got '%s'", arg), false;
    }
    bool ok = do_rename(c, from, to);
    free(from);
    return ok;
}

static bool apply_shape(io_ctx *c, const char *arg) {
    const char *eq = strrchr(arg, '='); /* dims never hold '=', names might */
    int rank;
    int64_t dims[AIM_MAX_RANK];
    if (!eq || eq == arg || !aim_cli_parse_dims(eq + 1, &rank, dims))
        return aim_cli_fail("io", "--shape needs NAME=DIMS with DIMS like 1x3x640x640, got '%s'",
                            arg),
               false;
    char *name = malloc((size_t)(eq - arg) + 1);
    if (!name) return aim_cli_fail("io", "out of memory"), false;
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = '\0';
    bool ok = do_shape(c, name, rank, dims);
    free(name);
    return ok;
}

/* ---- --conform ----------------------------------------------------------------------------- */

static int ambiguous(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int ambiguous(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "aim io: --conform: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\naim io: nothing was written\n");
    return AIM_EXIT_ERROR;
}

static bool contains_ci(const char *s, const char *word) {
    size_t n = strlen(word);
    for (; *s; s++) {
        size_t i = 0;
        while (i < n && s[i] && tolower((unsigned char)s[i]) == word[i])
            i++;
        if (i == n) return true;
    }
    return false;
}

static bool is_convention_name(const char *name) {
    return strcmp(name, AIM_CONV_IMAGE) == 0 || strcmp(name, AIM_CONV_NMS) == 0 ||
           strcmp(name, AIM_CONV_MASK) == 0;
}

/* Input names that pass `pred` and are not already convention names: fills the first two,
 * returns how many. */
static size_t input_candidates(const aim_model *m, bool (*pred)(const aim_value_info *),
                               char *found[2]) {
    size_t n = 0;
    for (size_t i = 0; i < aim_model_input_count(m); i++) {
        aim_value_info v;
        if (aim_model_input(m, i, &v) != AIM_OK || is_convention_name(v.name) || !pred(&v))
            continue;
        if (n < 2) found[n] = aim_strdup(v.name);
        n++;
    }
    return n;
}

static bool looks_like_nms(const aim_value_info *v) {
    return contains_ci(v->name, "nms") && !aim_conv_image_like(v);
}
static bool looks_like_mask(const aim_value_info *v) {
    return contains_ci(v->name, "mask") && !aim_conv_image_like(v);
}
static bool looks_like_image(const aim_value_info *v) {
    return aim_conv_image_like(v) && !contains_ci(v->name, "mask");
}

/* Renames the single input matching pred to `name` when `name` is absent. `required`: finding
 * none is ambiguous too. Returns an exit code. */
static int conform_input_name(io_ctx *c, const char *name, bool (*pred)(const aim_value_info *),
                              const char *what, bool required) {
    aim_value_info v;
    if (find_io(c->m, name, &v)) return AIM_EXIT_OK;
    char *found[2] = {NULL, NULL};
    size_t n = input_candidates(c->m, pred, found);
    int rc = AIM_EXIT_OK;
    if (n == 1 && found[0]) {
        rc = do_rename(c, found[0], name) ? AIM_EXIT_OK : AIM_EXIT_ERROR;
    } else if (n > 1) {
        rc = ambiguous("inputs '%s' and '%s'%s all look like %s; give --rename %s=%s for the "
                       "right one",
                       found[0], found[1], n > 2 ? " (and more)" : "", what, found[0], name);
    } else if (required) {
        rc = ambiguous("no input looks like %s (float32, rank 4, 1 or 3 channels); give "
                       "--rename NAME=%s",
                       what, name);
    }
    free(found[0]);
    free(found[1]);
    return rc;
}

/* image- to batch 1 when only the batch dim is open; anything else open is ambiguous. */
static int conform_image_shape(io_ctx *c, aim_conv_image *img) {
    aim_value_info v;
    if (!find_io(c->m, AIM_CONV_IMAGE, &v)) return AIM_EXIT_OK;
    char shape[256];
    aim_cli_format_shape(&v, shape, sizeof shape);
    if (v.rank != 4 || !aim_conv_image_layout(&v, img))
        return ambiguous("image- has shape %s, not [1,C,H,W] or [1,H,W,C] with C 1 or 3; give "
                         "--shape image-=1x3xHxW",
                         shape);
    if (v.dims[1].value < 0 || v.dims[2].value < 0 || v.dims[3].value < 0)
        return ambiguous("image- has shape %s with open channels, height or width; give "
                         "--shape image-=%s (the size the model was trained for)",
                         shape, img->nchw ? "1x3xHxW" : "1xHxWx3");
    if (v.dims[0].value == 1) return AIM_EXIT_OK;
    if (v.dims[0].value > 1)
        return ambiguous("image- has batch %lld; give --shape image-=1x%lldx%lldx%lld if the "
                         "model works with batch 1",
                         (long long)v.dims[0].value, (long long)v.dims[1].value,
                         (long long)v.dims[2].value, (long long)v.dims[3].value);
    int64_t dims[4] = {1, v.dims[1].value, v.dims[2].value, v.dims[3].value};
    return do_shape(c, AIM_CONV_IMAGE, 4, dims) ? AIM_EXIT_OK : AIM_EXIT_ERROR;
}

static int conform_nms_mask(io_ctx *c, const aim_conv_image *img, bool have_image) {
    aim_value_info v;
    int64_t one = 1;
    if (find_io(c->m, AIM_CONV_NMS, &v) && !do_shape(c, AIM_CONV_NMS, 1, &one))
        return AIM_EXIT_ERROR;
    if (!find_io(c->m, AIM_CONV_MASK, &v)) return AIM_EXIT_OK;
    if (!have_image || img->h < 0 || img->w < 0)
        return ambiguous("mask- needs the image's height and width, which are unknown; give "
                         "--shape mask-=HxW");
    int64_t hw[2] = {img->h, img->w};
    return do_shape(c, AIM_CONV_MASK, 2, hw) ? AIM_EXIT_OK : AIM_EXIT_ERROR;
}

/* Any input that is still not a convention name cannot be fed by the manager. */
static int conform_leftover_inputs(io_ctx *c) {
    for (size_t i = 0; i < aim_model_input_count(c->m); i++) {
        aim_value_info v;
        if (aim_model_input(c->m, i, &v) != AIM_OK || is_convention_name(v.name)) continue;
        return ambiguous("input '%s' is not image-, nms_sensitivity- or mask- and its role is "
                         "unclear; give --rename %s=image- (or nms_sensitivity-, mask-)",
                         v.name, v.name);
    }
    return AIM_EXIT_OK;
}

static int conform_output(io_ctx *c, const aim_value_info *v) {
    aim_out_name o;
    char why[256], q[512], pair[512];
    if (!aim_conv_parse_output(v->name, &o, NULL, why, sizeof why)) {
        snprintf(pair, sizeof pair, "%s=bboxes-format:xyxysc;0:LABEL", v->name);
        aim_cli_shell_quote(pair, q, sizeof q);
        return ambiguous("output '%s' does not follow kind-key:value;... (%s), so its meaning is "
                         "unknown; give --rename %s (or scores-0:A;1:B, alarm-0:A;1:B)",
                         v->name, why, q);
    }
    int64_t dims[2] = {1, (int64_t)o.class_count};
    if (o.kind == AIM_OUT_BBOXES) {
        dims[1] = o.width;
        bool fine = v->rank == 2 && v->dims[1].value == o.width;
        if (fine) return AIM_EXIT_OK; /* [N,width] with N open is what the conventions say */
        if (v->rank != 2 || v->dims[0].value < 0) {
            snprintf(pair, sizeof pair, "%s=20x%lld", v->name, (long long)o.width);
            aim_cli_shell_quote(pair, q, sizeof q);
            return ambiguous("output '%s' needs shape [N,%lld] and N is unknown; give --shape %s "
                             "(N = the most boxes it returns)",
                             v->name, (long long)o.width, q);
        }
        dims[0] = v->dims[0].value;
    }
    return do_shape(c, v->name, 2, dims) ? AIM_EXIT_OK : AIM_EXIT_ERROR;
}

static int conform_outputs(io_ctx *c) {
    for (size_t i = 0; i < aim_model_output_count(c->m); i++) {
        aim_value_info v;
        if (aim_model_output(c->m, i, &v) != AIM_OK) continue;
        int rc = conform_output(c, &v);
        if (rc != AIM_EXIT_OK) return rc;
    }
    return AIM_EXIT_OK;
}

static int conform_chip(io_ctx *c) {
    const char *chip = aim_model_meta_get(c->m, AIM_META_CHIP);
    const char *right = chip ? aim_target_correction(chip) : NULL;
    if (!right) return AIM_EXIT_OK;
    char *old = aim_strdup(chip);
    aim_status st = aim_model_meta_set(c->m, AIM_META_CHIP, right);
    if (st == AIM_OK) logf_change(c, "metadata chip: '%s' -> '%s'", old ? old : "?", right);
    free(old);
    return st == AIM_OK ? AIM_EXIT_OK : aim_cli_fail_status("io", st);
}

static int conform(io_ctx *c) {
    aim_conv_image img = {0};
    int rc;
    if (!do_strip(c, "post_", true)) return AIM_EXIT_ERROR;
    if ((rc = conform_input_name(c, AIM_CONV_IMAGE, looks_like_image, "an image", true)) ||
        (rc = conform_input_name(c, AIM_CONV_NMS, looks_like_nms, "NMS sensitivity", false)) ||
        (rc = conform_input_name(c, AIM_CONV_MASK, looks_like_mask, "a mask", false)) ||
        (rc = conform_leftover_inputs(c)) || (rc = conform_image_shape(c, &img)))
        return rc;
    aim_value_info v;
    bool have_image = find_io(c->m, AIM_CONV_IMAGE, &v);
    if ((rc = conform_nms_mask(c, &img, have_image)) || (rc = conform_outputs(c)) ||
        (rc = conform_chip(c)))
        return rc;
    return AIM_EXIT_OK;
}

/* ---- Command ------------------------------------------------------------------------------- */

static int parse_option(io_args *a, int argc, char **argv, int *i) {
    const char *opt = argv[*i], *value;
    if (strcmp(opt, "--conform") == 0) {
        a->conform = true;
        return AIM_EXIT_OK;
    }
    bool out = strcmp(opt, "-o") == 0 || strcmp(opt, "--output") == 0;
    bool rename = strcmp(opt, "--rename") == 0, strip = strcmp(opt, "--strip-prefix") == 0;
    bool shape = strcmp(opt, "--shape") == 0;
    if (!out && !rename && !strip && !shape)
        return aim_cli_fail("io", "unknown option '%s' (see --help)", opt);
    if (!(value = aim_cli_option_value("io", argc, argv, i))) return AIM_EXIT_ERROR;
    if (out)
        a->output = value;
    else if (rename)
        a->renames[a->n_renames++] = value;
    else if (strip)
        a->strips[a->n_strips++] = value;
    else
        a->shapes[a->n_shapes++] = value;
    if (strip && !value[0]) return aim_cli_fail("io", "--strip-prefix needs a non-empty PREFIX");
    return AIM_EXIT_OK;
}

static int parse_args(int argc, char **argv, io_args *a) {
    for (int i = 1; i < argc; i++) {
        int rc;
        if (aim_cli_is_help(argv[i])) {
            fputs(io_help, stdout);
            return -1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            if ((rc = parse_option(a, argc, argv, &i)) != AIM_EXIT_OK) return rc;
        } else if (!a->input) {
            a->input = argv[i];
        } else {
            return aim_cli_fail("io", "unexpected argument '%s' (see --help)", argv[i]);
        }
    }
    if (!a->input || !a->output) return aim_cli_fail("io", "needs MODEL and -o OUT (see --help)");
    if (!a->n_renames && !a->n_strips && !a->n_shapes && !a->conform)
        return aim_cli_fail("io", "nothing to do: give --rename, --strip-prefix, --shape or "
                                  "--conform (see --help)");
    return AIM_EXIT_OK;
}

static int apply_all(io_ctx *c, const io_args *a) {
    for (size_t i = 0; i < a->n_renames; i++)
        if (!apply_rename(c, a->renames[i])) return AIM_EXIT_ERROR;
    for (size_t i = 0; i < a->n_strips; i++)
        if (!do_strip(c, a->strips[i], false)) return AIM_EXIT_ERROR;
    for (size_t i = 0; i < a->n_shapes; i++)
        if (!apply_shape(c, a->shapes[i])) return AIM_EXIT_ERROR;
    return a->conform ? conform(c) : AIM_EXIT_OK;
}

static int run(io_args *a) {
    io_ctx c = {0};
    char qpath[512];
    aim_cli_shell_quote(a->input, qpath, sizeof qpath);
    c.qpath = qpath;
    aim_strbuf_init(&c.log);
    if (!aim_cli_load("io", a->input, &c.m)) return AIM_EXIT_ERROR;
    int rc = apply_all(&c, a);
    if (rc == AIM_EXIT_OK && c.log.failed) rc = aim_cli_fail("io", "out of memory");
    if (rc == AIM_EXIT_OK && aim_cli_save("io", c.m, a->output)) {
        fputs(c.log.data ? c.log.data : "", stdout);
        printf("%s%s written (%zu change%s)\n", c.changes ? "" : "no changes needed; ", a->output,
               c.changes, c.changes == 1 ? "" : "s");
    } else if (rc == AIM_EXIT_OK) {
        rc = AIM_EXIT_ERROR;
    }
    aim_strbuf_free(&c.log);
    aim_model_free(c.m);
    return rc;
}

int aim_cmd_io(int argc, char **argv) {
    io_args a = {0};
    a.renames = calloc((size_t)argc, sizeof *a.renames);
    a.strips = calloc((size_t)argc, sizeof *a.strips);
    a.shapes = calloc((size_t)argc, sizeof *a.shapes);
    int rc = !a.renames || !a.strips || !a.shapes ? aim_cli_fail("io", "out of memory")
                                                  : parse_args(argc, argv, &a);
    if (rc == AIM_EXIT_OK) rc = run(&a);
    free(a.renames);
    free(a.strips);
    free(a.shapes);
    return rc < 0 ? AIM_EXIT_OK : rc;
}
