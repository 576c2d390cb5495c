/*
 * cmd_detect.c: `aim detect MODEL IMAGE...`: runs a model that follows the manager's
 * conventions on JPEG/PNG images: decode, resize to the `image-` input (Pillow-style bilinear),
 * normalise with the doc_string means/vars, feed `nms_sensitivity-` and `mask-` when the model
 * has them, run, and read the outputs by their names: `bboxes-` boxes in original-image pixels
 * with class names, `scores-` top classes, `alarm-` raised classes. Optionally draws the boxes.
 */
#include "aim/image.h"
#include "aim/session.h"
#include "cli.h"
#include "cli_util.h"
#include "conventions.h"
#include "core/json.h"
#include "graph/tensor.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char detect_help[] =
    "usage: aim detect MODEL IMAGE... [--sensitivity S] [--draw OUT.png]... [--threads N]\n"
    "                  [--json]\n\n"
    "Runs a model that follows the manager's conventions on JPEG or PNG images. Each image is\n"
    "resized to the size of the model's `image-` input (bilinear, as Pillow's resize), converted\n"
    "to its layout and normalised with the graph doc_string's means/vars. `nms_sensitivity-` is\n"
    "fed S, `mask-` all true. Outputs are read by name:\n"
    "  bboxes-format:F;0:A;1:B  one line per box: class name, score, corners in pixels of the\n"
    "                           ORIGINAL image. When every coordinate of an output is within\n"
    "                           [-1.5, 1.5] the coordinates are taken as normalised to 0..1 and\n"
    "                           scaled by the image size; otherwise as pixels of the model input\n"
    "                           and scaled by original/input size. Corners are clamped to the\n"
    "                           image.\n"
    "  scores-0:A;1:B           the top 5 classes with their scores\n"
    "  alarm-0:A;1:B            the classes that are true\n\n"
    "options:\n"
    "  --sensitivity S   value fed to nms_sensitivity- (0..1, default 0.5)\n"
    "  --draw OUT.png    write the image with boxes and labels. Give one --draw per IMAGE (in\n"
    "                    order), or a single one for several images: OUT-0.png, OUT-1.png, ...\n"
    "  --threads N       threads per run (default 0: all cores)\n"
    "  --json            print the results as JSON\n"
    "  -h, --help        show this help\n";

#define DET_MAX_IMAGES 256
#define DET_TOP_SCORES 5
#define DET_NORMALISED 1.5 /* all |coordinates| <= this: normalised 0..1 */

typedef struct {
    const char *model;
    const char *images[DET_MAX_IMAGES];
    const char *draws[DET_MAX_IMAGES];
    int n_images, n_draws, threads;
    double sensitivity;
    bool json;
} det_args;

typedef struct {
    const aim_model *m;
    aim_session *s;
    aim_image_spec spec;
    int i_image, i_nms, i_mask;
    size_t n_in, n_out;
    aim_out_name *names; /* per output */
    bool *conforming;    /* per output: names[i] is valid */
} det_model;

typedef enum { ITEM_BOX, ITEM_SCORE, ITEM_ALARM } item_kind;

typedef struct {
    item_kind kind;
    size_t output;
    long class_index; /* -1 when the format has no class */
    double score;     /* NAN when the format has no score */
    double box[4];    /* x1, y1, x2, y2 in original pixels */
} det_item;

typedef struct {
    const char *path;
    int width, height;
    double latency_ms;
    det_item *items;
    size_t n_items, cap_items;
    char draw_path[4096];
    bool drawn;
} det_result;

/* ---- Arguments ----------------------------------------------------------------------------- */

static int parse_number(const char *opt, const char *text, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= lo && v <= hi))
        return aim_cli_fail("detect", "%s needs a number from %g to %g, not '%s'", opt, lo, hi,
                            text);
    *out = v;
    return AIM_EXIT_OK;
}

static int parse_option(det_args *a, int argc, char **argv, int *i) {
    const char *arg = argv[*i], *v;
    if (strcmp(arg, "--json") == 0) {
        a->json = true;
        return -1;
    }
    if (strcmp(arg, "--sensitivity") && strcmp(arg, "--draw") && strcmp(arg, "--threads"))
        return aim_cli_fail("detect", "unknown option '%s' (see --help)", arg);
    if (!(v = aim_cli_option_value("detect", argc, argv, i))) return AIM_EXIT_ERROR;
    double t = 0;
    if (!strcmp(arg, "--sensitivity"))
        return parse_number(arg, v, 0, 1, &a->sensitivity) == AIM_EXIT_OK ? -1 : AIM_EXIT_ERROR;
    if (!strcmp(arg, "--threads")) {
        if (parse_number(arg, v, 0, 1024, &t) != AIM_EXIT_OK) return AIM_EXIT_ERROR;
        a->threads = (int)t;
        return -1;
    }
    if (a->n_draws == DET_MAX_IMAGES) return aim_cli_fail("detect", "too many --draw options");
    a->draws[a->n_draws++] = v;
    return -1;
}

static int check_args(const det_args *a) {
    if (!a->model || a->n_images == 0)
        return aim_cli_fail("detect", "needs MODEL and at least one IMAGE (see --help)");
    if (a->n_draws > 1 && a->n_draws != a->n_images)
        return aim_cli_fail("detect",
                            "%d --draw options for %d images: give one per image, or a single "
                            "one (written as OUT-0.png, OUT-1.png, ...)",
                            a->n_draws, a->n_images);
    return -1;
}

/* Returns -1 when the arguments are fine, else the exit code. */
static int parse_args(det_args *a, int argc, char **argv) {
    a->sensitivity = 0.5;
    for (int i = 1; i < argc; i++) {
        if (aim_cli_is_help(argv[i])) {
            fputs(detect_help, stdout);
            return AIM_EXIT_OK;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            int rc = parse_option(a, argc, argv, &i);
            if (rc >= 0) return rc;
        } else if (!a->model) {
            a->model = argv[i];
        } else if (a->n_images == DET_MAX_IMAGES) {
            return aim_cli_fail("detect", "too many images (at most %d)", DET_MAX_IMAGES);
        } else {
            a->images[a->n_images++] = argv[i];
        }
    }
    return check_args(a);
}

/* Where image k is drawn: its own --draw, or the single --draw with "-k" before the extension. */
static bool draw_path_for(const det_args *a, int k, char *buf, size_t size) {
    if (a->n_draws == 0) return false;
    if (a->n_draws > 1 || a->n_images == 1) {
        snprintf(buf, size, "%s", a->draws[a->n_draws > 1 ? k : 0]);
        return true;
    }
    const char *base = a->draws[0], *slash = strrchr(base, '/'), *dot = strrchr(base, '.');
    if (!dot || (slash && dot < slash)) dot = base + strlen(base);
    snprintf(buf, size, "%.*s-%d%s", (int)(dot - base), base, k, dot);
    return true;
}

/* ---- Class names from an output name ------------------------------------------------------- */

/* The label of class `index` in "kind-key:value;key:value"; false when there is none. */
static bool class_label(const char *name, long index, char *buf, size_t size) {
    const char *p = strchr(name, '-');
    if (!p || index < 0) return false;
    char key[24];
    int key_len = snprintf(key, sizeof key, "%ld:", index);
    for (p++; *p;) {
        size_t len = strcspn(p, ";");
        if (len > (size_t)key_len && strncmp(p, key, (size_t)key_len) == 0) {
            snprintf(buf, size, "%.*s", (int)(len - (size_t)key_len), p + key_len);
            return true;
        }
        p += len + (p[len] == ';');
    }
    return false;
}

static void item_label(const det_model *dm, const det_item *it, char *buf, size_t size) {
    const char *name = aim_session_output_name(dm->s, it->output);
    long index = it->class_index;
    if (index < 0 && dm->names[it->output].class_count == 1) index = 0; /* xyxy, one class */
    if (!class_label(name, index, buf, size)) {
        if (index < 0)
            snprintf(buf, size, "object");
        else
            snprintf(buf, size, "class %ld", index);
    }
}

/* ---- Model --------------------------------------------------------------------------------- */

static int find_inputs(det_model *dm) {
    dm->i_image = dm->i_nms = dm->i_mask = -1;
    for (size_t i = 0; i < dm->n_in; i++) {
        const char *n = aim_session_input_name(dm->s, i);
        if (!strcmp(n, AIM_CONV_IMAGE))
            dm->i_image = (int)i;
        else if (!strcmp(n, AIM_CONV_NMS))
            dm->i_nms = (int)i;
        else if (!strcmp(n, AIM_CONV_MASK))
            dm->i_mask = (int)i;
        else
            return aim_cli_fail("detect",
                                "the model has an input '%s' that detect cannot feed (only "
                                "image-, nms_sensitivity- and mask-; see `aim check`)",
                                n);
    }
    if (dm->i_image < 0)
        return aim_cli_fail("detect", "the model has no 'image-' input (see `aim check`)");
    return AIM_EXIT_OK;
}

static int parse_outputs(det_model *dm) {
    dm->names = calloc(dm->n_out + 1, sizeof *dm->names);
    dm->conforming = calloc(dm->n_out + 1, sizeof *dm->conforming);
    if (!dm->names || !dm->conforming) return aim_cli_fail("detect", "out of memory");
    size_t usable = 0;
    for (size_t i = 0; i < dm->n_out; i++) {
        char why[256];
        const char *name = aim_session_output_name(dm->s, i);
        dm->conforming[i] = aim_conv_parse_output(name, &dm->names[i], NULL, why, sizeof why);
        if (!dm->conforming[i])
            fprintf(stderr, "aim detect: output '%s' is ignored: %s\n", name, why);
        usable += dm->conforming[i];
    }
    if (usable == 0)
        return aim_cli_fail("detect", "no output is named as the conventions say (bboxes-, "
                                      "scores- or alarm-; see `aim check`)");
    return AIM_EXIT_OK;
}

static int model_open(det_model *dm, const det_args *a) {
    aim_status st = aim_image_model_spec(dm->m, &dm->spec);
    if (st != AIM_OK) return aim_cli_fail_status("detect", st);
    aim_session_options opt = {.threads = a->threads};
    if ((st = aim_session_create(dm->m, &opt, &dm->s)) != AIM_OK)
        return aim_cli_fail_status("detect", st);
    dm->n_in = aim_session_input_count(dm->s);
    dm->n_out = aim_session_output_count(dm->s);
    int rc = find_inputs(dm);
    return rc == AIM_EXIT_OK ? parse_outputs(dm) : rc;
}

static void model_close(det_model *dm) {
    aim_session_free(dm->s);
    free(dm->names);
    free(dm->conforming);
}

/* ---- Inputs -------------------------------------------------------------------------------- */

/* A tensor of input i's declared shape (unknown dims: `fallback`), filled by `fill`. */
static int make_aux(const det_model *dm, int i, const int64_t *fallback, double value,
                    aim_tensor *t) {
    aim_session_input_info(dm->s, (size_t)i, t);
    if (t->rank < 0) t->rank = fallback[0] > 0 ? 2 : 1;
    for (int d = 0; d < t->rank; d++)
        if (t->dims[d] < 0) t->dims[d] = d < 2 && fallback[d] > 0 ? fallback[d] : 1;
    size_t n = aim_tensor_count(t), bytes = aim_tensor_bytes(t);
    t->data = calloc(bytes ? bytes : 1, 1);
    if (!t->data) return aim_cli_fail("detect", "out of memory");
    for (size_t k = 0; k < n; k++)
        aim_tensor_set_f64(t, k, value);
    return AIM_EXIT_OK;
}

static int make_inputs(const det_model *dm, const det_args *a, const aim_image *img,
                       aim_tensor *in) {
    aim_image small;
    aim_status st = aim_image_resize(img, dm->spec.width, dm->spec.height, &small);
    if (st == AIM_OK) {
        st = aim_image_to_tensor(&small, &dm->spec, &in[dm->i_image]);
        aim_image_free(&small);
    }
    if (st != AIM_OK) return aim_cli_fail_status("detect", st);
    int64_t one[2] = {1, 1}, hw[2] = {dm->spec.height, dm->spec.width};
    if (dm->i_nms >= 0 && make_aux(dm, dm->i_nms, one, a->sensitivity, &in[dm->i_nms]))
        return AIM_EXIT_ERROR;
    if (dm->i_mask >= 0 && make_aux(dm, dm->i_mask, hw, 1.0, &in[dm->i_mask]))
        return AIM_EXIT_ERROR;
    return AIM_EXIT_OK;
}

/* ---- Reading outputs ----------------------------------------------------------------------- */

static det_item *add_item(det_result *r, item_kind kind, size_t output) {
    if (r->n_items == r->cap_items) {
        size_t cap = r->cap_items ? r->cap_items * 2 : 16;
        det_item *grown = realloc(r->items, cap * sizeof *grown);
        if (!grown) return NULL;
        r->items = grown;
        r->cap_items = cap;
    }
    det_item *it = &r->items[r->n_items++];
    *it = (det_item){kind, output, -1, NAN, {0, 0, 0, 0}};
    return it;
}

/* Boxes as [N, W] (or [1, N, W]) rows; false when the shape does not fit the format. */
static bool box_rows(const aim_tensor *t, int64_t width, size_t *rows) {
    if (t->rank == 3 && t->dims[0] == 1 && t->dims[2] == width) {
        *rows = (size_t)t->dims[1];
        return true;
    }
    if (t->rank == 2 && t->dims[1] == width) {
        *rows = (size_t)t->dims[0];
        return true;
    }
    return false;
}

static bool coords_normalised(const aim_tensor *t, size_t rows, size_t width) {
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < 4; k++)
            if (fabs(aim_tensor_get_f64(t, r * width + k)) > DET_NORMALISED) return false;
    return true;
}

static double clamp(double v, double hi) {
    return v < 0 ? 0 : v > hi ? hi : v;
}

static int read_boxes(const det_model *dm, size_t o, const aim_tensor *t, det_result *r) {
    const aim_out_name *on = &dm->names[o];
    size_t rows, w = (size_t)on->width;
    if (!box_rows(t, on->width, &rows))
        return aim_cli_fail("detect",
                            "output '%s' has shape [%lld,...] but format %s needs "
                            "[N,%lld]",
                            aim_session_output_name(dm->s, o),
                            (long long)(t->rank > 0 ? t->dims[0] : 0), on->format,
                            (long long)on->width);
    bool norm = coords_normalised(t, rows, w);
    double sx = norm ? r->width : (double)r->width / dm->spec.width;
    double sy = norm ? r->height : (double)r->height / dm->spec.height;
    for (size_t b = 0; b < rows; b++) {
        det_item *it = add_item(r, ITEM_BOX, o);
        if (!it) return aim_cli_fail("detect", "out of memory");
        for (int k = 0; k < 4; k++)
            it->box[k] = clamp(aim_tensor_get_f64(t, b * w + (size_t)k) * (k % 2 ? sy : sx),
                               k % 2 ? r->height : r->width);
        if (w == 6) it->score = aim_tensor_get_f64(t, b * w + 4);
        if (w >= 5) it->class_index = (long)aim_tensor_get_f64(t, b * w + w - 1);
    }
    return AIM_EXIT_OK;
}

static int cmp_score_desc(const void *a, const void *b) {
    double x = ((const det_item *)a)->score, y = ((const det_item *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int read_classes(const det_model *dm, size_t o, const aim_tensor *t, det_result *r) {
    size_t n = aim_tensor_count(t), first = r->n_items;
    bool scores = dm->names[o].kind == AIM_OUT_SCORES;
    for (size_t c = 0; c < n; c++) {
        double v = aim_tensor_get_f64(t, c);
        if (!scores && v == 0) continue;
        det_item *it = add_item(r, scores ? ITEM_SCORE : ITEM_ALARM, o);
        if (!it) return aim_cli_fail("detect", "out of memory");
        it->class_index = (long)c;
        it->score = v;
    }
    if (scores) {
        qsort(r->items + first, r->n_items - first, sizeof *r->items, cmp_score_desc);
        if (r->n_items - first > DET_TOP_SCORES) r->n_items = first + DET_TOP_SCORES;
    }
    return AIM_EXIT_OK;
}

static int read_outputs(const det_model *dm, const aim_tensor *out, det_result *r) {
    for (size_t o = 0; o < dm->n_out; o++) {
        if (!dm->conforming[o]) continue;
        int rc = dm->names[o].kind == AIM_OUT_BBOXES ? read_boxes(dm, o, &out[o], r)
                                                     : read_classes(dm, o, &out[o], r);
        if (rc != AIM_EXIT_OK) return rc;
    }
    return AIM_EXIT_OK;
}

/* ---- Drawing ------------------------------------------------------------------------------- */

static const uint8_t palette[6][3] = {{255, 56, 56},  {56, 255, 56},  {56, 132, 255},
                                      {255, 178, 29}, {207, 56, 255}, {0, 212, 187}};

static void draw_item(aim_image *img, const det_model *dm, const det_item *it) {
    const uint8_t *color = palette[(it->class_index < 0 ? 0 : it->class_index) % 6];
    int small = img->width < img->height ? img->width : img->height;
    int thick = small / 300 > 2 ? small / 300 : 2, scale = small / 400 > 1 ? small / 400 : 1;
    int x1 = (int)lround(it->box[0]), y1 = (int)lround(it->box[1]);
    aim_image_draw_rect(img, x1, y1, (int)lround(it->box[2]), (int)lround(it->box[3]), color,
                        thick);
    char label[96], text[128];
    item_label(dm, it, label, sizeof label);
    if (isnan(it->score))
        snprintf(text, sizeof text, "%s", label);
    else
        snprintf(text, sizeof text, "%s %.2f", label, it->score);
    int th = AIM_IMAGE_GLYPH_H * scale + 2, ty = y1 - th >= 0 ? y1 - th : y1;
    aim_image_fill_rect(img, x1, ty, x1 + aim_image_text_width(text, scale) + 2, ty + th - 1,
                        color);
    const uint8_t black[3] = {0, 0, 0};
    aim_image_draw_text(img, x1 + 2, ty + 1, text, black, scale);
}

static int draw_result(const det_model *dm, const aim_image *img, det_result *r) {
    aim_image canvas;
    aim_status st = aim_image_convert(img, 3, &canvas);
    if (st != AIM_OK) return aim_cli_fail_status("detect", st);
    for (size_t i = 0; i < r->n_items; i++)
        if (r->items[i].kind == ITEM_BOX) draw_item(&canvas, dm, &r->items[i]);
    st = aim_image_save_png(r->draw_path, &canvas);
    aim_image_free(&canvas);
    if (st != AIM_OK) return aim_cli_fail_status("detect", st);
    r->drawn = true;
    return AIM_EXIT_OK;
}

/* ---- One image ----------------------------------------------------------------------------- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int run_image(const det_model *dm, const det_args *a, const aim_image *img, det_result *r) {
    aim_tensor *in = calloc(dm->n_in + 1, sizeof *in), *out = calloc(dm->n_out + 1, sizeof *out);
    int rc = in && out ? make_inputs(dm, a, img, in) : aim_cli_fail("detect", "out of memory");
    if (rc == AIM_EXIT_OK) {
        double t0 = now_ms();
        aim_status st = aim_session_run(dm->s, in, out);
        r->latency_ms = now_ms() - t0;
        rc = st == AIM_OK ? read_outputs(dm, out, r) : aim_cli_fail_status("detect", st);
        for (size_t o = 0; st == AIM_OK && o < dm->n_out; o++)
            free(out[o].data);
    }
    for (size_t i = 0; in && i < dm->n_in; i++)
        free(in[i].data);
    free(in);
    free(out);
    return rc;
}

static int detect_one(const det_model *dm, const det_args *a, int k, det_result *r) {
    aim_image img;
    r->path = a->images[k];
    aim_status st = aim_image_load(r->path, 0, &img);
    if (st != AIM_OK) return aim_cli_fail_status("detect", st);
    r->width = img.width;
    r->height = img.height;
    int rc = run_image(dm, a, &img, r);
    if (rc == AIM_EXIT_OK && draw_path_for(a, k, r->draw_path, sizeof r->draw_path))
        rc = draw_result(dm, &img, r);
    aim_image_free(&img);
    return rc;
}

/* ---- Reporting ----------------------------------------------------------------------------- */

static size_t count_kind(const det_result *r, item_kind kind) {
    size_t n = 0;
    for (size_t i = 0; i < r->n_items; i++)
        n += r->items[i].kind == kind;
    return n;
}

static void print_item(const det_model *dm, const det_item *it) {
    char label[96];
    item_label(dm, it, label, sizeof label);
    if (it->kind == ITEM_BOX) {
        printf("  %-12s", label);
        if (!isnan(it->score)) printf(" %.3f", it->score);
        printf("  x1=%.1f y1=%.1f x2=%.1f y2=%.1f\n", it->box[0], it->box[1], it->box[2],
               it->box[3]);
    } else if (it->kind == ITEM_SCORE) {
        printf("  score  %-12s %.4f\n", label, it->score);
    } else {
        printf("  alarm  %s\n", label);
    }
}

static void print_text(const det_model *dm, const det_result *r) {
    printf("%s: %dx%d, %zu box(es), %.2f ms\n", r->path, r->width, r->height,
           count_kind(r, ITEM_BOX), r->latency_ms);
    for (size_t i = 0; i < r->n_items; i++)
        print_item(dm, &r->items[i]);
    if (r->drawn) printf("  drawn to %s\n", r->draw_path);
}

static void json_item(aim_json_writer *w, const det_model *dm, const det_item *it) {
    char label[96];
    item_label(dm, it, label, sizeof label);
    aim_json_begin_object(w);
    aim_json_key(w, "output");
    aim_json_string(w, aim_session_output_name(dm->s, it->output));
    aim_json_key(w, "class");
    aim_json_string(w, label);
    aim_json_key(w, "class_index");
    aim_json_int(w, it->class_index);
    if (it->kind != ITEM_ALARM) {
        aim_json_key(w, "score");
        aim_json_number(w, it->score); /* null when the format has none */
    }
    if (it->kind == ITEM_BOX) {
        aim_json_key(w, "box");
        aim_json_begin_array(w);
        for (int k = 0; k < 4; k++)
            aim_json_number(w, it->box[k]);
        aim_json_end_array(w);
    }
    aim_json_end_object(w);
}

static void json_items(aim_json_writer *w, const det_model *dm, const det_result *r, item_kind kind,
                       const char *key) {
    aim_json_key(w, key);
    aim_json_begin_array(w);
    for (size_t i = 0; i < r->n_items; i++)
        if (r->items[i].kind == kind) json_item(w, dm, &r->items[i]);
    aim_json_end_array(w);
}

static void json_result(aim_json_writer *w, const det_model *dm, const det_result *r) {
    aim_json_begin_object(w);
    aim_json_key(w, "image");
    aim_json_string(w, r->path);
    aim_json_key(w, "width");
    aim_json_int(w, r->width);
    aim_json_key(w, "height");
    aim_json_int(w, r->height);
    aim_json_key(w, "latency_ms");
    aim_json_number(w, r->latency_ms);
    json_items(w, dm, r, ITEM_BOX, "detections");
    json_items(w, dm, r, ITEM_SCORE, "scores");
    json_items(w, dm, r, ITEM_ALARM, "alarms");
    aim_json_key(w, "drawn");
    if (r->drawn)
        aim_json_string(w, r->draw_path);
    else
        aim_json_null(w);
    aim_json_end_object(w);
}

static void json_header(aim_json_writer *w, const det_model *dm, const det_args *a) {
    aim_json_writer_init_file(w, stdout, 2);
    aim_json_begin_object(w);
    aim_json_key(w, "model");
    aim_json_string(w, a->model);
    aim_json_key(w, "input");
    aim_json_begin_object(w);
    aim_json_key(w, "layout");
    aim_json_string(w, dm->spec.nchw ? "NCHW" : "NHWC");
    aim_json_key(w, "channels");
    aim_json_int(w, dm->spec.channels);
    aim_json_key(w, "height");
    aim_json_int(w, dm->spec.height);
    aim_json_key(w, "width");
    aim_json_int(w, dm->spec.width);
    aim_json_end_object(w);
    aim_json_key(w, "sensitivity");
    aim_json_number(w, a->sensitivity);
    aim_json_key(w, "images");
    aim_json_begin_array(w);
}

/* ---- Command ------------------------------------------------------------------------------- */

static int detect_all(const det_model *dm, const det_args *a) {
    aim_json_writer w;
    if (a->json) json_header(&w, dm, a);
    int rc = AIM_EXIT_OK, k = 0;
    for (; k < a->n_images && rc == AIM_EXIT_OK; k++) {
        det_result r = {0};
        rc = detect_one(dm, a, k, &r);
        if (rc == AIM_EXIT_OK && a->json)
            json_result(&w, dm, &r);
        else if (rc == AIM_EXIT_OK)
            print_text(dm, &r);
        free(r.items);
    }
    if (a->json) { /* a complete document even when an image failed (the error is on stderr) */
        aim_json_end_array(&w);
        if (rc != AIM_EXIT_OK) {
            aim_json_key(&w, "failed_image");
            aim_json_string(&w, a->images[k - 1]);
        }
        aim_json_end_object(&w);
        aim_json_writer_finish(&w);
    }
    return rc;
}

int aim_cmd_detect(int argc, char **argv) {
    det_args a = {0};
    int rc = parse_args(&a, argc, argv);
    if (rc >= 0) return rc;
    aim_model *m;
    if (!aim_cli_load("detect", a.model, &m)) return AIM_EXIT_ERROR;
    det_model dm = {.m = m};
    rc = model_open(&dm, &a);
    if (rc == AIM_EXIT_OK) rc = detect_all(&dm, &a);
    model_close(&dm);
    aim_model_free(m);
    return rc;
}
