/*
 * compile.c: aim_compile, the driver: checks the options, runs the steps listed in internal.h
 * in order, picks the calibration method ("auto": each method's fake-quantized region is
 * compared with fp32 on the held-out images, the best centered cosine wins, minmax on a near
 * tie), with --gptq chooses between GPTQ and round-to-nearest weights, lowers, embeds, and
 * writes logs.json text and the optional report; then, for an automatic region, the accuracy
 * search (fit_accuracy: shorter regions until options.min_snr_db is met). Also
 * aim_compile_export_qdq.
 */
#include "compile/internal.h"

#include "core/json.h"

#include <math.h>
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
    double prepare, calibrate, choose, lower, embed, report, total;
} timings;

typedef struct {
    aim_compile_ctx c;
    aim_compile_options o;          /* a copy: the result outlives the caller's options */
    double scores[AIM_CALIB_COUNT]; /* held-out cosine per method, -1 when not tried */
    timings t;
    aim_quant_params *params;
    aim_compile_weight *w;
    size_t n_w;
    bool gptq; /* try GPTQ rounding (refine_weights); the accuracy search's tries do not */
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
    o->min_snr_db = 10;
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
    if (!(o->min_snr_db >= 0 && o->min_snr_db <= 200))
        return aim_error(AIM_ERR_INVALID_ARG, "accuracy target %g dB outside [0, 200]",
                         o->min_snr_db);
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
 * that are the detections. Even the centered cosine barely sees those few responses, so when
 * minmax (which clips nothing) comes close to the best, within MINMAX_SLACK of its error
 * 1 - centered, minmax is used: on BlazeFace-128 percentile won by 0.985 to 0.983 and lost
 * a third of the detections (61.8% against 98.2% agreement). */
#define MINMAX_SLACK 1.25

static aim_status pick_method(aim_compile_state *s, double *scores, aim_calib_method *best) {
    aim_compile_ctx *c = &s->c;
    double best_cos = -2, minmax_cos = -2;
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
        if (m == AIM_CALIB_MINMAX) minmax_cos = centered;
        if (centered > best_cos) {
            best_cos = centered;
            *best = (aim_calib_method)m;
        }
    }
    if (*best != AIM_CALIB_MINMAX && minmax_cos > -2 &&
        1 - minmax_cos <= MINMAX_SLACK * (1 - best_cos)) {
        aim_compile_log(c, 0,
                        "minmax is within %.0f%% of the best method's error (%s): using minmax, "
                        "which clips no strong response",
                        100 * (MINMAX_SLACK - 1), method_names[*best]);
        *best = AIM_CALIB_MINMAX;
    }
    choose(c, *best, s->params);
    return AIM_OK;
}

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
    aim_json_key(&w, "accuracy");
    aim_json_begin_object(&w);
    aim_json_key(&w, "min_snr_db");
    aim_json_number(&w, s->o.min_snr_db);
    if (isfinite(r->output_snr_db)) {
        aim_json_key(&w, "snr_db");
        aim_json_number(&w, r->output_snr_db);
    }
    aim_json_key(&w, "int8_conv_share");
    aim_json_number(&w, r->total_macs > 0 ? r->int8_macs / r->total_macs : 0);
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

static aim_status weights_copy(const aim_compile_weight *w, size_t n, aim_compile_weight **out) {
    aim_compile_weight *c = calloc(n + 1, sizeof *c);
    *out = c;
    if (!c) return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t o = (size_t)w[i].dims[0],
               count = o * (size_t)(w[i].dims[1] * w[i].dims[2] * w[i].dims[3]);
        c[i].node = w[i].node;
        memcpy(c[i].dims, w[i].dims, sizeof c[i].dims);
        c[i].q = malloc(count + 1);
        c[i].scales = malloc(o * sizeof *c[i].scales + 1);
        c[i].bias = w[i].bias ? malloc(o * sizeof *c[i].bias + 1) : NULL;
        if (!c[i].q || !c[i].scales || (w[i].bias && !c[i].bias))
            return aim_error(AIM_ERR_NOMEM, "out of memory");
        memcpy(c[i].q, w[i].q, count);
        memcpy(c[i].scales, w[i].scales, o * sizeof *c[i].scales);
        if (w[i].bias) memcpy(c[i].bias, w[i].bias, o * sizeof *c[i].bias);
    }
    return AIM_OK;
}

/* The weights' final form: GPTQ rounding (rounding.c) and round-to-nearest, each followed by
 * bias correction (unless disabled); the one whose region outputs agree better with fp32 on
 * the held-out images (mean cosine, the measure the accuracy search's SNR also follows) is
 * kept. GPTQ lowers each Conv's own output error 4-6 times on the calibration images, yet
 * the boundary tensors of a region do not follow (BlazeFace-256 cut after node #71: 9.1 dB
 * with GPTQ, 11.4 dB rounded to nearest, on the held-out images; the detections agreed as
 * well or better), and the accuracy search would cut the region shorter for it: its tries
 * use round-to-nearest, and GPTQ gets its chance on the region it chose (fit_accuracy). */
static aim_status refine_weights(aim_compile_state *s, double *cosine) {
    aim_compile_ctx *c = &s->c;
    if (!s->gptq) {
        aim_status st = AIM_OK;
        if (s->o.no_bias_correction) return AIM_OK;
        st = aim_compile_bias_correct(c, s->params, s->w, s->n_w);
        if (st == AIM_OK) st = aim_compile_evaluate(c, s->params, s->w, s->n_w, cosine, NULL);
        if (st == AIM_OK)
            aim_compile_log(c, 0, "after bias correction: mean cosine of the region outputs %.6f",
                            *cosine);
        return st;
    }
    aim_compile_weight *rtn = NULL;
    aim_status st = weights_copy(s->w, s->n_w, &rtn);
    if (st == AIM_OK) st = aim_compile_round_weights(c, s->params, s->w, s->n_w);
    if (st == AIM_OK && !s->o.no_bias_correction) {
        st = aim_compile_bias_correct(c, s->params, s->w, s->n_w);
        if (st == AIM_OK) st = aim_compile_bias_correct(c, s->params, rtn, s->n_w);
    }
    double cos_gptq = 0, cos_rtn = 0;
    if (st == AIM_OK) st = aim_compile_evaluate(c, s->params, s->w, s->n_w, &cos_gptq, NULL);
    if (st == AIM_OK) st = aim_compile_evaluate(c, s->params, rtn, s->n_w, &cos_rtn, NULL);
    if (st != AIM_OK) {
        aim_compile_weights_free(rtn, s->n_w);
        return st;
    }
    bool gptq = cos_gptq > cos_rtn;
    aim_compile_log(
        c, 0, "%sweights rounded %s: mean cosine of the region outputs %.6f (%s %.6f)",
        s->o.no_bias_correction ? "" : "after bias correction: ", gptq ? "by GPTQ" : "to nearest",
        gptq ? cos_gptq : cos_rtn, gptq ? "to nearest" : "GPTQ", gptq ? cos_rtn : cos_gptq);
    if (gptq) {
        aim_compile_weights_free(rtn, s->n_w);
    } else {
        aim_compile_weights_free(s->w, s->n_w);
        s->w = rtn;
    }
    *cosine = gptq ? cos_gptq : cos_rtn;
    return AIM_OK;
}

static aim_status build(aim_compile_state *s, aim_compile_result *r, timings *t) {
    aim_compile_ctx *c = &s->c;
    double *scores = s->scores;
    for (int m = 0; m < AIM_CALIB_COUNT; m++)
        scores[m] = -1;
    aim_calib_method best = AIM_CALIB_MINMAX;
    aim_status st = quantize(s, scores, &best, t);
    if (st != AIM_OK) return st;
    r->method_used = best;
    r->output_cosine = scores[best];
    double t1 = now_s();
    st = refine_weights(s, &r->output_cosine);
    if (st != AIM_OK) return st;
    t->choose += now_s() - t1;
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

/* One run of the whole pipeline; an automatic region keeps only nodes up to `cut` (-1: all);
 * gptq: let refine_weights try GPTQ rounding. */
static aim_status compile_once(const aim_model *m, const aim_compile_options *o, long cut,
                               bool gptq, aim_compile_result *out) {
    memset(out, 0, sizeof *out);
    out->output_snr_db = NAN;
    aim_compile_state *s = calloc(1, sizeof *s);
    if (!s) return aim_error(AIM_ERR_NOMEM, "out of memory");
    s->o = *o;
    s->c.o = &s->o;
    s->c.cut = cut;
    s->gptq = gptq;
    aim_strbuf_init(&s->c.region_text);
    aim_strbuf_init(&s->c.log_json);
    timings *t = &s->t;
    double t0 = now_s();
    aim_status st = analyse(s, m, t);
    out->images_used = s->c.n_images;
    out->images_skipped = s->c.skipped;
    out->region_nodes = s->c.region_nodes;
    if (st == AIM_OK) out->int8_macs = out->total_macs = aim_compile_region_macs(&s->c);
    if (st == AIM_OK) st = build(s, out, t);
    t->total = now_s() - t0;
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

/* ---- Accuracy search ---------------------------------------------------------------------- */

typedef struct {
    const aim_model *m;
    const aim_compile_options *o; /* the caller's */
    aim_compile_ctx *c0;          /* the whole region's run: images, hold-out, boundary */
    aim_calib_method method;      /* the whole region's choice, kept for every try */
    const char **names;           /* the whole region's boundary tensors */
    size_t n_names;
    double whole_macs;
    aim_strbuf msgs; /* what the search said, for the final logs.json */
} accuracy_search;

static void search_log(accuracy_search *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void search_log(accuracy_search *a, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (a->o->log) a->o->log(a->o->log_ctx, 0, msg);
    aim_strbuf_printf(&a->msgs, "0%s\n", msg);
}

static double int8_share(const accuracy_search *a, const aim_compile_result *r) {
    return a->whole_macs > 0 ? 100 * r->int8_macs / a->whole_macs : 0;
}

/* Compiles with the region cut after node `cut` and measures it; report_try: log one line. */
static aim_status try_cut(accuracy_search *a, long cut, bool gptq, bool report, bool report_try,
                          aim_compile_result *r) {
    aim_compile_options o = *a->o;
    o.method = a->method;
    o.report = report;
    o.log = NULL; /* the search reports each try in one line */
    aim_status st = compile_once(a->m, &o, cut, gptq, r);
    double snr = 0;
    if (st == AIM_OK)
        st = aim_compile_boundary_snr(a->c0, a->m, r->model, a->names, a->n_names, &snr);
    if (st != AIM_OK) {
        aim_compile_result_free(r);
        return st;
    }
    r->output_snr_db = snr;
    r->total_macs = a->whole_macs;
    if (!report_try) return AIM_OK;
    search_log(a,
               "accuracy: region up to node #%ld (%zu nodes, %.1f%% of the Conv work): "
               "worst SNR %.1f dB",
               cut, r->region_nodes, int8_share(a, r), snr);
    return AIM_OK;
}

/* Bisection for the longest cut that meets the target; the whole region (the last cut) missed
 * it. *chosen: a cut index, or, when none meets the target, the best-scoring one tried (-1:
 * the whole region). */
static aim_status bisect(accuracy_search *a, const long *cuts, size_t n_cuts, double whole_snr,
                         long *chosen) {
    long lo = -1, hi = (long)n_cuts - 1, best = -1;
    double best_snr = whole_snr;
    while (hi - lo > 1) {
        long mid = lo + (hi - lo) / 2;
        aim_compile_result r;
        aim_status st = try_cut(a, cuts[mid], false, false, true, &r);
        if (st != AIM_OK) return st;
        double snr = r.output_snr_db;
        aim_compile_result_free(&r);
        if (snr >= a->o->min_snr_db)
            lo = mid;
        else
            hi = mid;
        if (snr > best_snr) {
            best_snr = snr;
            best = mid;
        }
    }
    *chosen = lo >= 0 ? lo : best;
    return AIM_OK;
}

/* The chosen cut compiled again, now letting GPTQ rounding compete (refine_weights); kept when
 * its boundary SNR meets the target or beats round-to-nearest's, else round-to-nearest. */
static aim_status final_cut(accuracy_search *a, long cut, aim_compile_result *out) {
    aim_compile_result g, n;
    aim_status st = try_cut(a, cut, true, a->o->report, false, &g);
    if (st != AIM_OK) return st;
    if (g.output_snr_db >= a->o->min_snr_db) {
        *out = g;
        return AIM_OK;
    }
    st = try_cut(a, cut, false, a->o->report, false, &n);
    if (st != AIM_OK) {
        aim_compile_result_free(&g);
        return st;
    }
    bool keep = g.output_snr_db > n.output_snr_db;
    search_log(a, "accuracy: with GPTQ allowed the cut reaches %.1f dB, without %.1f dB: %s",
               g.output_snr_db, n.output_snr_db, keep ? "allowed" : "round-to-nearest kept");
    aim_compile_result_free(keep ? &n : &g);
    *out = keep ? g : n;
    return AIM_OK;
}

/* Rewrites logs.json of the final result with the search's messages and figures. */
static aim_status finish_logs(accuracy_search *a, aim_compile_result *r) {
    aim_compile_state *s = r->internal;
    if (a->msgs.data) aim_strbuf_puts(&s->c.log_json, a->msgs.data);
    free(r->logs_json);
    r->logs_json = logs_json(s, r, s->scores, &s->t);
    return r->logs_json ? AIM_OK : aim_error(AIM_ERR_NOMEM, "out of memory");
}

/* out holds the whole region's result; replaced by a shorter region's when the whole one misses
 * options.min_snr_db. */
static aim_status fit_accuracy(const aim_model *m, const aim_compile_options *o,
                               aim_compile_result *out) {
    aim_compile_ctx *c0 = &((aim_compile_state *)out->internal)->c;
    accuracy_search a = {m, o, c0, out->method_used, NULL, c0->n_rout, out->int8_macs, {0}};
    aim_strbuf_init(&a.msgs);
    long *cuts = calloc(c0->n_nodes + 1, sizeof *cuts);
    a.names = calloc(c0->n_rout + 1, sizeof *a.names);
    aim_status st = cuts && a.names ? AIM_OK : aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == AIM_OK && i < c0->n_rout; i++)
        a.names[i] = c0->t[c0->rout[i]].name;
    double snr = 0;
    if (st == AIM_OK) st = aim_compile_boundary_snr(c0, m, out->model, a.names, a.n_names, &snr);
    size_t n_cuts = st == AIM_OK ? aim_compile_cut_points(c0, cuts) : 0;
    long chosen = -1;
    if (st == AIM_OK) {
        out->output_snr_db = snr;
        search_log(&a,
                   "accuracy: whole region (%zu nodes): worst SNR %.1f dB of its %zu "
                   "boundary tensor(s) on the held-out images; target %.1f dB (--min-snr)",
                   out->region_nodes, snr, a.n_names, o->min_snr_db);
        if (snr < o->min_snr_db && n_cuts > 1) st = bisect(&a, cuts, n_cuts, snr, &chosen);
    }
    aim_compile_result shorter;
    if (st == AIM_OK && chosen >= 0)
        st = o->gptq ? final_cut(&a, cuts[chosen], &shorter)
                     : try_cut(&a, cuts[chosen], false, o->report, false, &shorter);
    if (st == AIM_OK && chosen >= 0) {
        bool met = shorter.output_snr_db >= o->min_snr_db;
        search_log(&a,
                   "accuracy: %s: the region ends at node #%ld, %zu of %zu nodes, %.1f%% of "
                   "the Conv work in int8; the nodes after it stay float32",
                   met ? "target met" : "no cut meets the target, using the best one", cuts[chosen],
                   shorter.region_nodes, out->region_nodes, int8_share(&a, &shorter));
        if (shorter.region && o->log) o->log(o->log_ctx, 0, shorter.region);
        /* out's state owns c0 and the strings a.names points at: free them last */
        free(a.names);
        a.names = NULL;
        aim_compile_result_free(out);
        *out = shorter;
    } else if (st == AIM_OK && snr < o->min_snr_db) {
        search_log(&a, "accuracy: %s the whole region",
                   n_cuts > 1 ? "no cut scores better than" : "nothing to cut in");
    }
    if (st == AIM_OK) st = finish_logs(&a, out);
    free(a.names);
    free(cuts);
    aim_strbuf_free(&a.msgs);
    return st;
}

aim_status aim_compile(const aim_model *m, const aim_compile_options *o, aim_compile_result *out) {
    memset(out, 0, sizeof *out);
    if (!m || !o) return aim_error(AIM_ERR_INVALID_ARG, "aim_compile: NULL argument");
    aim_status st = check_options(o);
    if (st != AIM_OK) return st;
    bool search = o->min_snr_db > 0 && !o->start_count && !o->end_count;
    st = compile_once(m, o, -1, o->gptq, out);
    if (st != AIM_OK || !search) return st;
    st = fit_accuracy(m, o, out);
    if (st != AIM_OK) aim_compile_result_free(out);
    return st;
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
