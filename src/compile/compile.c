/*
 * compile.c: aim_compile, the driver: checks the options, runs the steps listed in internal.h
 * in order, picks the calibration method ("auto": each method's fake-quantized region is
 * compared with fp32 on the held-out images, the best mean cosine wins), lowers, embeds, and
 * writes logs.json text and the optional report. Also aim_compile_export_qdq.
 */
#include "compile/internal.h"

#include "core/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef AIM_VERSION_STRING
#define AIM_VERSION_STRING "0.0.0"
#endif
#define AIM_COMPILE_VERSION AIM_VERSION_STRING

typedef struct {
    aim_compile_ctx c;
    aim_compile_options o; /* a copy: the result outlives the caller's options */
    aim_quant_params *params;
    aim_compile_weight *w;
    size_t n_w;
} aim_compile_state;

static const char *const method_names[AIM_CALIB_COUNT] = {"auto", "minmax", "percentile", "entropy",
                                                          "mse"};

const char *aim_calib_method_name(aim_calib_method m) {
    return (unsigned)m < AIM_CALIB_COUNT ? method_names[m] : "unknown";
}

bool aim_calib_method_parse(const char *name, aim_calib_method *out) {
    for (int i = 0; i < AIM_CALIB_COUNT; i++)
        if (name && strcmp(name, method_names[i]) == 0) {
            *out = (aim_calib_method)i;
            return true;
        }
    return false;
}

void aim_compile_options_init(aim_compile_options *o) {
    memset(o, 0, sizeof *o);
    o->target = "cpu-int8";
    o->method = AIM_CALIB_AUTO;
    o->holdout_fraction = 0.2;
    o->preproc.nchw = -1;
}

void aim_compile_log(aim_compile_ctx *c, int level, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->o->log) c->o->log(c->o->log_ctx, level, msg);
    /* one message per line, first character the level, for logs.json */
    for (char *p = msg; *p; p++)
        if (*p == '\n') *p = ' ';
    aim_strbuf_printf(&c->log_json, "%d%s\n", level, msg);
}

void aim_compile_progress(aim_compile_ctx *c, const char *phase, size_t done, size_t total) {
    if (c->o->progress) c->o->progress(c->o->progress_ctx, phase, done, total);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static aim_status check_options(const aim_compile_options *o) {
    if (!o->target || !o->target[0]) return aim_error(AIM_ERR_INVALID_ARG, "no target given");
    bool known = false;
#define AIM_TARGET_IS(name, desc) known = known || strcmp(o->target, name) == 0;
    AIM_COMPILE_TARGETS(AIM_TARGET_IS)
#undef AIM_TARGET_IS
    if (!known) {
        char list[256] = "";
#define AIM_TARGET_ADD(name, desc)                                                                 \
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "", name);
        AIM_COMPILE_TARGETS(AIM_TARGET_ADD)
#undef AIM_TARGET_ADD
        return aim_error(AIM_ERR_INVALID_ARG, "unknown target '%s' (known targets: %s)", o->target,
                         list);
    }
    if ((unsigned)o->method >= AIM_CALIB_COUNT)
        return aim_error(AIM_ERR_INVALID_ARG, "unknown calibration method %d", (int)o->method);
    if (o->start_count > AIM_COMPILE_MAX_NODES || o->end_count > AIM_COMPILE_MAX_NODES)
        return aim_error(AIM_ERR_INVALID_ARG, "more than %d start or end nodes",
                         AIM_COMPILE_MAX_NODES);
    if (o->holdout_fraction < 0 || o->holdout_fraction >= 1)
        return aim_error(AIM_ERR_INVALID_ARG, "holdout fraction %g outside [0, 1)",
                         o->holdout_fraction);
    if (!o->image_count)
        return aim_error(AIM_ERR_INVALID_ARG,
                         "no usable calibration image (no files given: is the folder empty?)");
    return AIM_OK;
}

static int act_of(const aim_compile_ctx *c, int t) {
    for (size_t a = 0; a < c->n_acts; a++)
        if (c->acts[a] == t) return (int)a;
    return -1;
}

/* Nearest resize and max pooling only move values: their output keeps the input's scale and
 * zero point, so the program copies bytes instead of requantizing (the executor requires it
 * for resize). Graph order makes chains propagate. */
static void tie_params(aim_compile_ctx *c, aim_quant_params *params) {
    for (size_t i = 0; i < c->n_nodes; i++) {
        const aim_compile_group *g = &c->grp[i];
        if (!c->in_region[i] || !g->emits) continue;
        if (g->kind != AIM_PROG_RESIZE && g->kind != AIM_PROG_MAXPOOL) continue;
        int a = act_of(c, c->nin[g->lead][0]), b = act_of(c, g->out);
        if (a >= 0 && b >= 0) params[b] = params[a];
    }
}

static void choose(aim_compile_ctx *c, aim_calib_method m, aim_quant_params *params) {
    aim_compile_choose(c, m, params);
    tie_params(c, params);
}

/* "auto": the method whose fake-quantized region agrees best with fp32 on the held-out images,
 * judged by the centered cosine (aim_compile_evaluate): the plain cosine of a detector's score
 * logits is dominated by the background and prefers clipping away the rare strong responses
 * that are the detections. */
static aim_status pick_method(aim_compile_state *s, double *scores, aim_calib_method *best) {
    aim_compile_ctx *c = &s->c;
    double best_cos = -2;
    for (int m = AIM_CALIB_MINMAX; m < AIM_CALIB_COUNT; m++) {
        scores[m] = -1;
        if (s->o.method != AIM_CALIB_AUTO && m != (int)s->o.method) continue;
        choose(c, (aim_calib_method)m, s->params);
        double centered = 0;
        aim_status st = aim_compile_evaluate(c, s->params, s->w, s->n_w, &scores[m], &centered);
        if (st != AIM_OK) return st;
        aim_compile_log(c, 0,
                        "method %s: mean cosine of the region outputs vs fp32 %.6f, "
                        "centered %.6f",
                        method_names[m], scores[m], centered);
        if (centered > best_cos) {
            best_cos = centered;
            *best = (aim_calib_method)m;
        }
    }
    choose(c, *best, s->params);
    return AIM_OK;
}

typedef struct {
    double prepare, calibrate, choose, lower, embed, report, total;
} timings;

static void logs_messages(aim_json_writer *w, const char *text) {
    aim_json_key(w, "messages");
    aim_json_begin_array(w);
    for (const char *p = text; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        aim_json_begin_object(w);
        aim_json_key(w, "level");
        aim_json_string(w, *p == '1' ? "warning" : "info");
        aim_json_key(w, "message");
        aim_json_string_len(w, p + 1, len ? len - 1 : 0);
        aim_json_end_object(w);
        p += len + (e != NULL);
    }
    aim_json_end_array(w);
}

static void logs_timings(aim_json_writer *w, const timings *t) {
    aim_json_key(w, "timings_s");
    aim_json_begin_object(w);
    const char *names[] = {"prepare", "calibrate", "choose", "lower", "embed", "report", "total"};
    const double v[] = {t->prepare, t->calibrate, t->choose, t->lower,
                        t->embed,   t->report,    t->total};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        aim_json_key(w, names[i]);
        aim_json_number(w, v[i]);
    }
    aim_json_end_object(w);
}

static char *logs_json(aim_compile_state *s, const aim_compile_result *r, const double *scores,
                       const timings *t) {
    aim_compile_ctx *c = &s->c;
    aim_strbuf sb;
    aim_json_writer w;
    aim_strbuf_init(&sb);
    aim_json_writer_init_buf(&w, &sb, 2);
    aim_json_begin_object(&w);
    aim_json_key(&w, "status");
    aim_json_string(&w, "success");
    aim_json_key(&w, "tool");
    aim_json_string(&w, "aim compile " AIM_COMPILE_VERSION);
    aim_json_key(&w, "target");
    aim_json_string(&w, s->o.target);
    aim_json_key(&w, "input_file");
    aim_json_string(&w, s->o.model_name ? s->o.model_name : "");
    aim_json_key(&w, "output_file");
    aim_json_string(&w, s->o.output_name ? s->o.output_name : "");
    aim_json_key(&w, "images_used");
    aim_json_int(&w, (int64_t)r->images_used);
    aim_json_key(&w, "images_skipped");
    aim_json_int(&w, (int64_t)r->images_skipped);
    aim_json_key(&w, "images_held_out");
    aim_json_int(&w, (int64_t)(c->n_images - c->n_calib));
    aim_json_key(&w, "region_nodes");
    aim_json_int(&w, (int64_t)r->region_nodes);
    aim_json_key(&w, "quantized_tensors");
    aim_json_int(&w, (int64_t)c->n_acts);
    aim_json_key(&w, "calibration_method");
    aim_json_string(&w, method_names[r->method_used]);
    aim_json_key(&w, "method_cosine");
    aim_json_begin_object(&w);
    for (int m = AIM_CALIB_MINMAX; m < AIM_CALIB_COUNT; m++)
        if (scores[m] >= -0.5) {
            aim_json_key(&w, method_names[m]);
            aim_json_number(&w, scores[m]);
        }
    aim_json_end_object(&w);
    logs_timings(&w, t);
    logs_messages(&w, c->log_json.data);
    aim_json_end_object(&w);
    aim_json_writer_finish(&w);
    return aim_strbuf_take(&sb);
}

static char *summary_json(aim_compile_state *s, const aim_compile_result *r) {
    aim_strbuf sb;
    aim_json_writer w;
    char date[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    aim_strbuf_init(&sb);
    aim_json_writer_init_buf(&w, &sb, 0);
    aim_json_begin_object(&w);
    aim_json_key(&w, "region_nodes");
    aim_json_int(&w, (int64_t)r->region_nodes);
    aim_json_key(&w, "method");
    aim_json_string(&w, method_names[r->method_used]);
    aim_json_key(&w, "images");
    aim_json_int(&w, (int64_t)r->images_used);
    aim_json_key(&w, "output_cosine");
    aim_json_number(&w, r->output_cosine);
    aim_json_key(&w, "date");
    aim_json_string(&w, date);
    aim_json_key(&w, "version");
    aim_json_string(&w, AIM_COMPILE_VERSION);
    aim_json_end_object(&w);
    aim_json_writer_finish(&w);
    (void)s;
    return aim_strbuf_take(&sb);
}

/* ---- The steps ----------------------------------------------------------------------------- */

static aim_status analyse(aim_compile_state *s, const aim_model *m, timings *t) {
    aim_compile_ctx *c = &s->c;
    double t0 = now_s();
    aim_status st = aim_compile_copy_model(m, &c->m);
    if (st != AIM_OK) return st;
    c->g = aim_model_proto(c->m)->graph;
    if ((st = aim_compile_fold_bn(c)) != AIM_OK) return st;
    if (c->bn_folded)
        aim_compile_log(c, 0, "folded %zu BatchNormalization node(s) into Conv", c->bn_folded);
    if ((st = aim_compile_load_images(c)) != AIM_OK) return st;
    aim_compile_log(
        c, 0, "calibration images: %zu usable (%zu for statistics, %zu held out), %zu skipped",
        c->n_images, c->n_calib, c->n_images - c->n_calib, c->skipped);
    if ((st = aim_compile_graph_build(c)) != AIM_OK) return st;
    if ((st = aim_compile_graph_probe(c)) != AIM_OK) return st;
    aim_compile_classify(c);
    if ((st = aim_compile_select_region(c)) != AIM_OK) return st;
    if ((st = aim_compile_fuse(c)) != AIM_OK) return st;
    if (!c->o->no_equalize && (st = aim_compile_equalize(c)) != AIM_OK) return st;
    size_t ops = 0;
    for (size_t i = 0; i < c->n_nodes; i++)
        ops += c->in_region[i] && c->grp[i].emits;
    aim_strbuf_printf(&c->region_text, "  program: %zu fused ops, %zu quantized tensors\n", ops,
                      c->n_acts);
    aim_compile_log(c, 0, "%s", c->region_text.data);
    t->prepare = now_s() - t0;
    return AIM_OK;
}

static aim_status quantize(aim_compile_state *s, double *scores, aim_calib_method *best,
                           timings *t) {
    aim_compile_ctx *c = &s->c;
    double t0 = now_s();
    aim_status st = aim_compile_collect(c);
    t->calibrate = now_s() - t0;
    s->params = calloc(c->n_acts + 1, sizeof *s->params);
    if (st == AIM_OK && !s->params) st = aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st == AIM_OK) st = aim_compile_weights(c, &s->w, &s->n_w);
    t0 = now_s();
    if (st == AIM_OK) st = pick_method(s, scores, best);
    t->choose = now_s() - t0;
    return st;
}

static aim_status build(aim_compile_state *s, aim_compile_result *r, timings *t) {
    aim_compile_ctx *c = &s->c;
    double scores[AIM_CALIB_COUNT] = {-1, -1, -1, -1, -1};
    aim_calib_method best = AIM_CALIB_MINMAX;
    aim_status st = quantize(s, scores, &best, t);
    if (st != AIM_OK) return st;
    r->method_used = best;
    r->output_cosine = scores[best];
    if (!s->o.no_bias_correction) {
        double t1 = now_s();
        st = aim_compile_bias_correct(c, s->params, s->w, s->n_w);
        if (st == AIM_OK)
            st = aim_compile_evaluate(c, s->params, s->w, s->n_w, &r->output_cosine, NULL);
        if (st != AIM_OK) return st;
        aim_compile_log(c, 0, "after bias correction: mean cosine of the region outputs %.6f",
                        r->output_cosine);
        t->choose += now_s() - t1;
    }
    aim_compile_log(c, 0, "using %s scales%s", method_names[best],
                    s->o.method == AIM_CALIB_AUTO ? " (best of minmax, percentile, entropy, mse)"
                                                  : "");
    double t0 = now_s();
    aim_program *p = NULL;
    uint8_t *bytes = NULL;
    size_t size = 0;
    st = aim_compile_lower(c, s->params, s->w, s->n_w, &p);
    if (st == AIM_OK) st = aim_program_serialize(p, &bytes, &size);
    t->lower = now_s() - t0;
    if (st == AIM_OK) aim_compile_log(c, 0, "program: %zu bytes", size);
    t0 = now_s();
    if (st == AIM_OK && s->o.report)
        st = aim_compile_report(c, s->params, s->w, s->n_w, p, &r->report_json, &r->report_text);
    t->report = now_s() - t0;
    t0 = now_s();
    char *summary = st == AIM_OK ? summary_json(s, r) : NULL;
    if (st == AIM_OK) st = aim_compile_embed(c, bytes, size, summary, &r->model);
    t->embed = now_s() - t0;
    free(summary);
    free(bytes);
    aim_program_free(p);
    t->total = t->prepare + t->calibrate + t->choose + t->lower + t->report + t->embed;
    if (st == AIM_OK) r->logs_json = logs_json(s, r, scores, t);
    return st;
}

static void state_free(aim_compile_state *s) {
    if (!s) return;
    aim_compile_graph_free(&s->c);
    aim_model_free(s->c.m);
    for (size_t i = 0; s->c.images && i < s->c.n_images; i++)
        free(s->c.images[i].data);
    free(s->c.images);
    free(s->c.stats);
    aim_strbuf_free(&s->c.region_text);
    aim_strbuf_free(&s->c.log_json);
    free(s->params);
    aim_compile_weights_free(s->w, s->n_w);
    free(s);
}

aim_status aim_compile(const aim_model *m, const aim_compile_options *o, aim_compile_result *out) {
    memset(out, 0, sizeof *out);
    if (!m || !o) return aim_error(AIM_ERR_INVALID_ARG, "aim_compile: NULL argument");
    aim_status st = check_options(o);
    if (st != AIM_OK) return st;
    aim_compile_state *s = calloc(1, sizeof *s);
    if (!s) return aim_error(AIM_ERR_NOMEM, "out of memory");
    s->o = *o;
    s->c.o = &s->o;
    aim_strbuf_init(&s->c.region_text);
    aim_strbuf_init(&s->c.log_json);
    timings t = {0};
    double t0 = now_s();
    st = analyse(s, m, &t);
    out->images_used = s->c.n_images;
    out->images_skipped = s->c.skipped;
    out->region_nodes = s->c.region_nodes;
    if (st == AIM_OK) st = build(s, out, &t);
    t.total = now_s() - t0;
    if (st == AIM_OK) out->region = aim_strdup(s->c.region_text.data ? s->c.region_text.data : "");
    if (st != AIM_OK) {
        aim_compile_result_free(out);
        state_free(s);
        return st;
    }
    /* Only what export_qdq needs stays valid: the caller's image list and callbacks may not. */
    s->o.images = NULL;
    s->o.image_count = 0;
    s->o.progress = NULL;
    s->o.log = NULL;
    out->internal = s;
    return AIM_OK;
}

void aim_compile_result_free(aim_compile_result *r) {
    if (!r) return;
    aim_model_free(r->model);
    free(r->logs_json);
    free(r->report_json);
    free(r->report_text);
    free(r->region);
    state_free(r->internal);
    memset(r, 0, sizeof *r);
}

aim_status aim_compile_export_qdq(const aim_compile_result *r, aim_model **out) {
    *out = NULL;
    aim_compile_state *s = r ? r->internal : NULL;
    if (!s) return aim_error(AIM_ERR_INVALID_ARG, "aim_compile_export_qdq: no compile result");
    aim_status st = aim_compile_qdq_model(&s->c, s->params, s->w, s->n_w, out);
    if (st == AIM_OK) st = aim_model_set_producer(*out, "aim", AIM_COMPILE_VERSION);
    if (st != AIM_OK) {
        aim_model_free(*out);
        *out = NULL;
    }
    return st;
}
