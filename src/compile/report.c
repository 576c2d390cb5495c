/*
 * report.c: how well the quantized region agrees with fp32.
 *   - Method choice ("auto") uses fake quantization: the QDQ form of the region (quant/qdq.c)
 *     run by aim's own fp32 session, so it depends only on the scales, not on an executor.
 *   - The report runs the real lowered program on the portable reference executor
 *     (aim_program_run_reference_traced) and compares every quantized tensor, dequantized,
 *     with its fp32 value: cosine similarity and SNR in dB, over the held-out images.
 */
#include "compile/internal.h"

#include "core/json.h"
#include "graph/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t holdout_start(const aim_compile_ctx *c) {
    return c->n_calib < c->n_images ? c->n_calib : 0;
}

aim_status aim_compile_qdq_model(aim_compile_ctx *c, const aim_quant_params *params,
                                 const aim_compile_weight *w, size_t n_w, aim_model **out) {
    aim_quant_act *acts = calloc(c->n_acts + 1, sizeof *acts);
    aim_quant_weight *qw = calloc(n_w + 1, sizeof *qw);
    int32_t **bias = calloc(n_w + 1, sizeof *bias);
    aim_status st = acts && qw && bias ? aim_compile_copy_model(c->m, out)
                                       : aim_error(AIM_ERR_NOMEM, "out of memory");
    size_t n_acts = 0; /* float32 region outputs are not quantized (as in the program) */
    for (size_t a = 0; a < c->n_acts && st == AIM_OK; a++)
        if (!aim_compile_float_output(c, c->acts[a]))
            acts[n_acts++] = (aim_quant_act){c->t[c->acts[a]].name, params[a]};
    for (size_t i = 0; i < n_w && st == AIM_OK; i++) {
        int x = c->nin[w[i].node][0];
        size_t a = 0;
        while (a < c->n_acts && c->acts[a] != x)
            a++;
        float s_in = a < c->n_acts ? params[a].scale : 1.0f;
        if (w[i].bias && !(bias[i] = malloc((size_t)w[i].dims[0] * sizeof **bias))) {
            st = aim_error(AIM_ERR_NOMEM, "out of memory");
            break;
        }
        if (bias[i]) aim_quant_bias(w[i].bias, (size_t)w[i].dims[0], s_in, w[i].scales, bias[i]);
        qw[i] = (aim_quant_weight){(size_t)w[i].node,
                                   {w[i].dims[0], w[i].dims[1], w[i].dims[2], w[i].dims[3]},
                                   w[i].q,
                                   w[i].scales,
                                   bias[i],
                                   s_in};
    }
    if (st == AIM_OK) st = aim_quant_make_qdq(*out, c->in_region, acts, n_acts, qw, n_w);
    if (st != AIM_OK && acts && qw && bias) {
        aim_model_free(*out);
        *out = NULL;
    }
    for (size_t i = 0; bias && i < n_w; i++)
        free(bias[i]);
    free(bias);
    free(acts);
    free(qw);
    return st;
}

static const char **rout_names(const aim_compile_ctx *c) {
    const char **names = calloc(c->n_rout + 1, sizeof *names);
    for (size_t i = 0; names && i < c->n_rout; i++)
        names[i] = c->t[c->rout[i]].name;
    return names;
}

/* Adds a and b with the reference's mean of each channel (per image) subtracted from both:
 * what is left is where things are (object responses, the tails) and any shift of b, which
 * plain cosine hides behind a large constant background (a detector's score logits). */
static aim_status add_centered(const aim_tensor *a, const aim_tensor *b, aim_quant_agree *g) {
    size_t n = aim_tensor_count(a), ch = a->rank == 4 ? (size_t)a->dims[1] : 1;
    if (!ch || n % ch) ch = 1;
    size_t plane = n / ch;
    float *ca = malloc(2 * n * sizeof *ca + 1);
    if (!ca) return aim_error(AIM_ERR_NOMEM, "out of memory");
    float *cb = ca + n;
    const float *x = a->data, *y = b->data;
    for (size_t k = 0; k < ch; k++) {
        double mean = 0;
        for (size_t i = k * plane; i < (k + 1) * plane; i++)
            mean += x[i];
        mean /= (double)(plane ? plane : 1);
        for (size_t i = k * plane; i < (k + 1) * plane; i++) {
            ca[i] = (float)(x[i] - mean);
            cb[i] = (float)(y[i] - mean);
        }
    }
    aim_quant_agree_add(g, ca, cb, n);
    free(ca);
    return AIM_OK;
}

/* Agreement of the region outputs between two runners over the held-out images: plain, and
 * centered (add_centered). */
static aim_status compare_runs(aim_compile_ctx *c, aim_session *ref, aim_session *test,
                               aim_quant_agree *agree, aim_quant_agree *centered) {
    size_t n = c->n_rout;
    aim_tensor *a = calloc(n + 1, sizeof *a), *b = calloc(n + 1, sizeof *b);
    aim_status st = a && b ? AIM_OK : aim_error(AIM_ERR_NOMEM, "out of memory");
    size_t h0 = holdout_start(c);
    for (size_t img = h0; img < c->n_images && st == AIM_OK; img++) {
        if ((st = aim_compile_run_image(c, ref, img, a)) != AIM_OK) break;
        if ((st = aim_compile_run_image(c, test, img, b)) == AIM_OK)
            for (size_t k = 0; k < n && st == AIM_OK; k++) {
                aim_quant_agree_add(&agree[k], a[k].data, b[k].data, aim_tensor_count(&a[k]));
                st = add_centered(&a[k], &b[k], &centered[k]);
            }
        aim_compile_free_outputs(a, n);
        if (st == AIM_OK) aim_compile_free_outputs(b, n);
        aim_compile_progress(c, "evaluate", img - h0 + 1, c->n_images - h0);
    }
    free(a);
    free(b);
    return st;
}

aim_status aim_compile_evaluate(aim_compile_ctx *c, const aim_quant_params *params,
                                const aim_compile_weight *w, size_t n_w, double *cosine,
                                double *centered) {
    aim_model *qdq = NULL;
    aim_compile_runner rf = {0}, rq = {0};
    const char **names = rout_names(c);
    aim_quant_agree *agree = calloc(2 * c->n_rout + 1, sizeof *agree);
    aim_status st = names && agree ? aim_compile_qdq_model(c, params, w, n_w, &qdq)
                                   : aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st == AIM_OK) st = aim_compile_runner_open(c, c->m, names, c->n_rout, &rf);
    if (st == AIM_OK) st = aim_compile_runner_open(c, qdq, names, c->n_rout, &rq);
    if (st == AIM_OK) st = compare_runs(c, rf.s, rq.s, agree, agree + c->n_rout);
    double sum = 0, sum_c = 0;
    for (size_t k = 0; st == AIM_OK && k < c->n_rout; k++) {
        sum += aim_quant_agree_cosine(&agree[k]);
        sum_c += aim_quant_agree_cosine(&agree[c->n_rout + k]);
    }
    *cosine = c->n_rout ? sum / (double)c->n_rout : 1.0;
    if (centered) *centered = c->n_rout ? sum_c / (double)c->n_rout : 1.0;
    aim_compile_runner_close(&rf);
    aim_compile_runner_close(&rq);
    aim_model_free(qdq);
    free(names);
    free(agree);
    return st == AIM_OK ? st : aim_error_context(st, "fake-quantized evaluation");
}

/* ---- Per-layer report ---------------------------------------------------------------------- */

/* Every quantized tensor: fp32 vs fake-quantized (QDQ model on aim's session), over the
 * held-out images. Per-layer values come from fake quantization because the program's traced
 * reference run (aim_program_run_reference_traced) is not available yet; the region outputs
 * are also compared with the real program on its reference executor (prog_agree). */
typedef struct {
    const char **names;
    int *slot; /* per acts[]: output index, -1 for graph inputs (taken from the image) */
    size_t n_out;
    aim_tensor *a, *b;
} layer_runs;

static float fake_quant(float x, const aim_quant_params *p) {
    float q = rintf(x / p->scale) + (float)p->zero_point;
    q = q < 0 ? 0 : q > 255 ? 255 : q;
    return (q - (float)p->zero_point) * p->scale;
}

static void compare_input(const aim_tensor *img, const aim_quant_params *p, aim_quant_agree *g) {
    size_t n = aim_tensor_count(img);
    const float *x = img->data;
    for (size_t i = 0; i < n; i++) {
        float y = fake_quant(x[i], p);
        aim_quant_agree_add(g, &x[i], &y, 1);
    }
}

static aim_status program_outputs(aim_compile_ctx *c, const aim_program *p, const layer_runs *L,
                                  size_t img, aim_quant_agree *prog_agree) {
    const float **in = calloc(c->n_rin + 1, sizeof *in);
    float **out = calloc(c->n_rout + 1, sizeof *out);
    aim_status st = in && out ? AIM_OK : aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->n_rin && st == AIM_OK; i++) {
        size_t a = 0;
        while (c->acts[a] != c->rin[i]) /* region inputs are among the acts */
            a++;
        in[i] = L->slot[a] >= 0 ? L->a[L->slot[a]].data : c->images[img].data;
    }
    for (size_t i = 0; i < c->n_rout && st == AIM_OK; i++)
        if (!(out[i] = malloc(aim_program_tensor_count(&p->tensors[p->outputs[i]]) * 4 + 4)))
            st = aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st == AIM_OK) st = aim_program_run_reference(p, in, (float *const *)out);
    for (size_t i = 0; i < c->n_rout && st == AIM_OK; i++) {
        size_t a = 0;
        while (c->acts[a] != c->rout[i])
            a++;
        const aim_tensor *ref = &L->a[L->slot[a]];
        aim_quant_agree_add(&prog_agree[i], ref->data, out[i], aim_tensor_count(ref));
    }
    for (size_t i = 0; out && i < c->n_rout; i++)
        free(out[i]);
    free(in);
    free(out);
    return st;
}

static aim_status layer_image(aim_compile_ctx *c, const aim_quant_params *params,
                              const aim_program *p, aim_session *sf, aim_session *sq, layer_runs *L,
                              size_t img, aim_quant_agree *agree, aim_quant_agree *prog_agree) {
    aim_status st = aim_compile_run_image(c, sf, img, L->a);
    if (st != AIM_OK) return st;
    if ((st = aim_compile_run_image(c, sq, img, L->b)) == AIM_OK) {
        for (size_t a = 0; a < c->n_acts; a++) {
            if (L->slot[a] < 0)
                compare_input(&c->images[img], &params[a], &agree[a]);
            else
                aim_quant_agree_add(&agree[a], L->a[L->slot[a]].data, L->b[L->slot[a]].data,
                                    aim_tensor_count(&L->a[L->slot[a]]));
        }
        st = program_outputs(c, p, L, img, prog_agree);
        aim_compile_free_outputs(L->b, L->n_out);
    }
    aim_compile_free_outputs(L->a, L->n_out);
    return st;
}

static aim_status trace_all(aim_compile_ctx *c, const aim_quant_params *params,
                            const aim_compile_weight *w, size_t n_w, const aim_program *p,
                            aim_quant_agree *agree, aim_quant_agree *prog_agree) {
    layer_runs L = {calloc(c->n_acts + 1, sizeof(char *)), calloc(c->n_acts + 1, sizeof(int)), 0,
                    calloc(c->n_acts + 1, sizeof(aim_tensor)),
                    calloc(c->n_acts + 1, sizeof(aim_tensor))};
    aim_model *qdq = NULL;
    aim_compile_runner rf = {0}, rq = {0};
    aim_status st = L.names && L.slot && L.a && L.b ? aim_compile_qdq_model(c, params, w, n_w, &qdq)
                                                    : aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t a = 0; a < c->n_acts && st == AIM_OK; a++) {
        L.slot[a] = c->t[c->acts[a]].producer >= 0 ? (int)L.n_out : -1;
        if (L.slot[a] >= 0) L.names[L.n_out++] = c->t[c->acts[a]].name;
    }
    if (st == AIM_OK) st = aim_compile_runner_open(c, c->m, L.names, L.n_out, &rf);
    if (st == AIM_OK) st = aim_compile_runner_open(c, qdq, L.names, L.n_out, &rq);
    size_t h0 = holdout_start(c);
    for (size_t img = h0; img < c->n_images && st == AIM_OK; img++) {
        st = layer_image(c, params, p, rf.s, rq.s, &L, img, agree, prog_agree);
        aim_compile_progress(c, "report", img - h0 + 1, c->n_images - h0);
    }
    aim_compile_runner_close(&rf);
    aim_compile_runner_close(&rq);
    aim_model_free(qdq);
    free(L.names);
    free(L.slot);
    free(L.a);
    free(L.b);
    return st;
}

static bool is_rout(const aim_compile_ctx *c, int t) {
    for (size_t i = 0; i < c->n_rout; i++)
        if (c->rout[i] == t) return true;
    return false;
}

static void final_json(aim_compile_ctx *c, const aim_quant_agree *prog, aim_json_writer *w);

static void report_json(aim_compile_ctx *c, const aim_quant_params *params,
                        const aim_quant_agree *agree, const aim_quant_agree *prog, aim_strbuf *sb) {
    aim_json_writer w;
    aim_json_writer_init_buf(&w, sb, 2);
    aim_json_begin_object(&w);
    aim_json_key(&w, "executor");
    aim_json_string(&w, "layers: fake-quantized (QDQ) vs fp32; program_outputs: int8 program "
                        "(reference executor) vs fp32");
    aim_json_key(&w, "images");
    aim_json_int(&w, (int64_t)(c->n_images - holdout_start(c)));
    aim_json_key(&w, "layers");
    aim_json_begin_array(&w);
    for (size_t a = 0; a < c->n_acts; a++) {
        aim_json_begin_object(&w);
        aim_json_key(&w, "tensor");
        aim_json_string(&w, c->t[c->acts[a]].name);
        aim_json_key(&w, "scale");
        aim_json_number(&w, params[a].scale);
        aim_json_key(&w, "zero_point");
        aim_json_int(&w, params[a].zero_point);
        aim_json_key(&w, "cosine");
        aim_json_number(&w, aim_quant_agree_cosine(&agree[a]));
        aim_json_key(&w, "snr_db");
        aim_json_number(&w, aim_quant_agree_snr_db(&agree[a]));
        aim_json_key(&w, "region_output");
        aim_json_bool(&w, is_rout(c, c->acts[a]));
        aim_json_end_object(&w);
    }
    aim_json_end_array(&w);
    final_json(c, prog, &w);
    aim_json_end_object(&w);
    aim_json_writer_finish(&w);
}

static void report_text(aim_compile_ctx *c, const aim_quant_params *params,
                        const aim_quant_agree *agree, aim_strbuf *sb) {
    aim_strbuf_printf(sb, "%-40s %-18s %11s %4s %9s %8s\n", "tensor", "shape", "scale", "zp",
                      "cosine", "SNR dB");
    for (size_t a = 0; a < c->n_acts; a++) {
        const aim_compile_tensor *t = &c->t[c->acts[a]];
        char shape[64];
        snprintf(shape, sizeof shape, "[%lld,%lld,%lld,%lld]", (long long)t->dims[0],
                 (long long)t->dims[1], (long long)t->dims[2], (long long)t->dims[3]);
        bool in = t->producer < 0 || !c->in_region[t->producer];
        aim_strbuf_printf(sb, "%-40.40s %-18s %11.6g %4d %9.6f %8.2f%s\n", t->name, shape,
                          (double)params[a].scale, params[a].zero_point,
                          aim_quant_agree_cosine(&agree[a]), aim_quant_agree_snr_db(&agree[a]),
                          is_rout(c, c->acts[a]) ? "  (region output)"
                          : in                   ? "  (region input)"
                                                 : "");
    }
}

/* The region outputs on the real program (reference executor) vs fp32. */
static void final_json(aim_compile_ctx *c, const aim_quant_agree *prog, aim_json_writer *w) {
    aim_json_key(w, "program_outputs");
    aim_json_begin_array(w);
    for (size_t i = 0; i < c->n_rout; i++) {
        aim_json_begin_object(w);
        aim_json_key(w, "tensor");
        aim_json_string(w, c->t[c->rout[i]].name);
        aim_json_key(w, "cosine");
        aim_json_number(w, aim_quant_agree_cosine(&prog[i]));
        aim_json_key(w, "snr_db");
        aim_json_number(w, aim_quant_agree_snr_db(&prog[i]));
        aim_json_end_object(w);
    }
    aim_json_end_array(w);
}

static void final_text(aim_compile_ctx *c, const aim_quant_agree *prog, aim_strbuf *sb) {
    aim_strbuf_printf(sb,
                      "\nregion outputs, int8 program (reference executor) vs fp32, %zu "
                      "held-out image(s):\n",
                      c->n_images - holdout_start(c));
    for (size_t i = 0; i < c->n_rout; i++)
        aim_strbuf_printf(sb, "  %-40.40s cosine %9.6f  SNR %7.2f dB\n", c->t[c->rout[i]].name,
                          aim_quant_agree_cosine(&prog[i]), aim_quant_agree_snr_db(&prog[i]));
}

aim_status aim_compile_report(aim_compile_ctx *c, const aim_quant_params *params,
                              const aim_compile_weight *w, size_t n_w, const aim_program *p,
                              char **json, char **text) {
    aim_quant_agree *agree = calloc(c->n_acts + 1, sizeof *agree);
    aim_quant_agree *prog = calloc(c->n_rout + 1, sizeof *prog);
    aim_status st = agree && prog ? trace_all(c, params, w, n_w, p, agree, prog)
                                  : aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st == AIM_OK) {
        aim_strbuf a, b;
        aim_strbuf_init(&a);
        aim_strbuf_init(&b);
        report_json(c, params, agree, prog, &a);
        report_text(c, params, agree, &b);
        final_text(c, prog, &b);
        *json = aim_strbuf_take(&a);
        *text = aim_strbuf_take(&b);
    }
    free(agree);
    free(prog);
    return st == AIM_OK ? st : aim_error_context(st, "report");
}
