/*
 * rounding.c: Hessian-aware rounding of the region's Conv weights. Detectors such as BlazeFace
 * are sensitive to the weights' rounding (their score logits reach -10^4 while the decisions
 * happen within +-3): in a fake-quantization study of BlazeFace-256 (activations in float, no
 * equalization or bias correction) round-to-nearest int8 weights kept 26% of the detections,
 * 12-bit weights all of them. GPTQ (quant/rounding.c) chooses each weight's level
 * knowing how the Conv's inputs correlate, which it reads from H = sum x x^T over the input
 * patches x of the Conv on the calibration images (fp32 run of the prepared model, inputs
 * rounded to their uint8 grid; never the held-out images).
 *
 * One H per group (a depthwise Conv has one small H per channel). H is accumulated over a
 * sample of the output positions, sized so that every Conv costs at most about
 * SAMPLE_WORK multiply-adds per image; a Conv whose H would be too large (more than MAX_PER
 * inputs per output, or more than MAX_H doubles, or beyond MAX_TOTAL_H over all Convs: 256 MiB
 * for both halves of the images) keeps round-to-nearest. The calibration images
 * are split: even ones give the H GPTQ fits to, odd ones an H that judges the result, and each
 * output row keeps whichever of the two roundings has the smaller error under the latter (GPTQ
 * overfits a poorly conditioned H otherwise). Whether the model as a whole keeps GPTQ's
 * weights is decided after bias correction by compile.c (refine_weights).
 */
#include "compile/internal.h"

#include "graph/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PER     1024        /* inputs per output (cg * kh * kw) GPTQ is run for */
#define MAX_H       (4u << 20)  /* doubles of H per Conv (groups * per^2): 32 MiB */
#define SAMPLE_WORK 8e6         /* multiply-adds per Conv per image for H */
#define MAX_TOTAL_H (16u << 20) /* doubles of H over all Convs (twice: fit and validate) */

typedef struct {
    aim_prog_op win; /* kernel, strides, pads, dilations, group */
    size_t groups, cg, per, slot;
    size_t step;                /* every step-th output position is sampled */
    const aim_quant_params *in; /* the input's uint8 grid, NULL when it is not quantized */
    double *h;  /* groups * per * per, upper triangles while accumulating; NULL: skipped */
    double *hv; /* the same from the other half of the images, to validate on */
} rd_conv;

/* x as the program sees it: rounded to the input's uint8 grid. Fitted to fp32 inputs alone,
 * GPTQ moves error into directions the inputs barely use (fine detail, for a Conv on the
 * image), which the input's own rounding noise then fills; H of the rounded inputs counts that
 * noise. */
static double on_grid(const aim_quant_params *q, float x) {
    if (!q) return x;
    float v = rintf(x / q->scale) + (float)q->zero_point;
    v = v < 0 ? 0 : v > 255 ? 255 : v;
    return ((double)v - q->zero_point) * q->scale;
}

/* Adds the patches of the sampled output positions of one image to each group's H. */
static void accumulate(const aim_compile_ctx *c, const aim_compile_weight *w, rd_conv *r,
                       const aim_tensor *x, size_t image, double *patch) {
    const aim_compile_tensor *y = &c->t[c->nout[w->node][0]];
    int64_t ih = x->dims[2], iw = x->dims[3], oh = y->dims[2], ow = y->dims[3];
    int64_t kh = w->dims[2], kw = w->dims[3];
    const float *data = x->data;
    size_t n_pos = (size_t)(oh * ow), per = r->per;
    double *all = image % 2 ? r->hv : r->h;
    for (size_t g = 0; g < r->groups; g++) {
        double *h = all + g * per * per;
        /* images start at different offsets so that together they cover all positions */
        for (size_t p = (image * 7919u + g) % r->step; p < n_pos; p += r->step) {
            int64_t oy = (int64_t)p / ow, ox = (int64_t)p % ow;
            size_t k = 0;
            for (size_t ci = 0; ci < r->cg; ci++) {
                const float *plane = data + (g * r->cg + ci) * (size_t)(ih * iw);
                for (int64_t ky = 0; ky < kh; ky++) {
                    int64_t yy = oy * r->win.strides[0] - r->win.pads[0] + ky * r->win.dilations[0];
                    for (int64_t kx = 0; kx < kw; kx++) {
                        int64_t xx =
                            ox * r->win.strides[1] - r->win.pads[1] + kx * r->win.dilations[1];
                        patch[k++] = yy >= 0 && yy < ih && xx >= 0 && xx < iw
                                         ? on_grid(r->in, plane[yy * iw + xx])
                                         : 0.0;
                    }
                }
            }
            for (size_t i = 0; i < per; i++) {
                double pi = patch[i];
                if (pi == 0) continue; /* ReLU outputs and padding: many zeros */
                double *row = h + i * per;
                for (size_t j = i; j < per; j++)
                    row[j] += pi * patch[j];
            }
        }
    }
}

/* (w - q*s)^T H (w - q*s) for one row, H full symmetric. */
static double row_error(const float *w, const int8_t *q, float s, const double *h, size_t per,
                        double *d) {
    for (size_t i = 0; i < per; i++)
        d[i] = (double)w[i] - (double)q[i] * s;
    double e = 0;
    for (size_t i = 0; i < per; i++) {
        double t = 0;
        for (size_t j = 0; j < per; j++)
            t += h[i * per + j] * d[j];
        e += d[i] * t;
    }
    return e;
}

/* GPTQ for every group of one Conv; keeps the better rounding per row. Adds the output error
 * of round-to-nearest and of the result to *rtn and *kept. */
static aim_status round_conv(const aim_compile_ctx *c, aim_compile_weight *w, rd_conv *r,
                             double *rtn, double *kept) {
    size_t O = (size_t)w->dims[0], per = r->per, rows = O / r->groups;
    float *f = aim_compile_read_floats(c, c->g->node[w->node]->input[1], O * per);
    double *hc = malloc(per * per * sizeof *hc + 1), *d = malloc(per * sizeof *d + 1);
    int8_t *q = malloc(rows * per + 1);
    aim_status st = f && hc && d && q ? AIM_OK : aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t g = 0; g < r->groups && st == AIM_OK; g++) {
        double *h = r->h + g * per * per, *hv = r->hv + g * per * per;
        for (size_t i = 0; i < per; i++) /* mirror the upper triangles */
            for (size_t j = 0; j < i; j++) {
                h[i * per + j] = h[j * per + i];
                hv[i * per + j] = hv[j * per + i];
            }
        memcpy(hc, h, per * per * sizeof *hc);
        size_t row0 = g * rows;
        memcpy(q, w->q + row0 * per, rows * per);
        if (!aim_quant_round_gptq(f + row0 * per, rows, per, hc, w->scales + row0, q)) continue;
        for (size_t o = 0; o < rows; o++) {
            const float *wr = f + (row0 + o) * per;
            float s = w->scales[row0 + o];
            double e0 = row_error(wr, w->q + (row0 + o) * per, s, hv, per, d);
            double e1 = row_error(wr, q + o * per, s, hv, per, d);
            *rtn += e0;
            *kept += e1 < e0 ? e1 : e0;
            if (e1 < e0) memcpy(w->q + (row0 + o) * per, q + o * per, per);
        }
    }
    free(f);
    free(hc);
    free(d);
    free(q);
    return st;
}

aim_status aim_compile_round_weights(aim_compile_ctx *c, const aim_quant_params *params,
                                     aim_compile_weight *w, size_t n_w) {
    if (!n_w || c->n_calib < 2) return AIM_OK; /* half the images fit, half validate */
    rd_conv *r = calloc(n_w + 1, sizeof *r);
    const char **names = calloc(n_w + 1, sizeof *names);
    aim_tensor *outs = calloc(n_w + 1, sizeof *outs);
    double *patch = malloc(MAX_PER * sizeof *patch);
    aim_status st =
        r && names && outs && patch ? AIM_OK : aim_error(AIM_ERR_NOMEM, "out of memory");
    size_t n_names = 0, used = 0;
    double total_h = 0; /* Convs beyond MAX_TOTAL_H keep round-to-nearest: bounded memory */
    for (size_t i = 0; i < n_w && st == AIM_OK; i++) {
        const aim_compile_tensor *x = &c->t[c->nin[w[i].node][0]];
        const aim_compile_tensor *y = &c->t[c->nout[w[i].node][0]];
        aim_compile_conv_window(c, &w[i], &r[i].win);
        r[i].groups = r[i].win.group > 0 ? (size_t)r[i].win.group : 1;
        r[i].cg = (size_t)w[i].dims[1];
        r[i].per = r[i].cg * (size_t)(w[i].dims[2] * w[i].dims[3]);
        double h_size = (double)r[i].groups * (double)r[i].per * (double)r[i].per;
        if (r[i].per > MAX_PER || h_size > MAX_H || total_h + h_size > MAX_TOTAL_H ||
            x->rank != 4 || y->rank != 4 || (size_t)w[i].dims[0] % r[i].groups ||
            r[i].groups * r[i].cg != (size_t)x->dims[1])
            continue;
        if (x->producer < 0 && strcmp(x->name, c->image_input) != 0) continue; /* not fed */
        for (size_t a = 0; a < c->n_acts; a++)
            if (c->acts[a] == c->nin[w[i].node][0]) r[i].in = &params[a];
        double work = h_size / 2 * (double)(y->dims[2] * y->dims[3]);
        r[i].step = work > SAMPLE_WORK ? (size_t)(work / SAMPLE_WORK) + 1 : 1;
        r[i].h = calloc((size_t)h_size + 1, sizeof *r[i].h);
        r[i].hv = calloc((size_t)h_size + 1, sizeof *r[i].hv);
        if (!r[i].h || !r[i].hv) {
            st = aim_error(AIM_ERR_NOMEM, "out of memory");
            break;
        }
        used++;
        total_h += h_size;
        r[i].slot = (size_t)-1; /* the image input: read from the decoded tensors */
        if (x->producer < 0) continue;
        size_t k = 0;
        while (k < n_names && strcmp(names[k], x->name) != 0)
            k++;
        if (k == n_names) names[n_names++] = x->name;
        r[i].slot = k;
    }
    aim_compile_runner run = {0};
    if (st == AIM_OK && used && n_names)
        st = aim_compile_runner_open(c, c->m, names, n_names, &run);
    for (size_t img = 0; used && img < c->n_calib && st == AIM_OK; img++) {
        if (n_names && (st = aim_compile_run_image(c, run.s, img, outs)) != AIM_OK) break;
        for (size_t i = 0; i < n_w; i++)
            if (r[i].h)
                accumulate(c, &w[i], &r[i],
                           r[i].slot == (size_t)-1 ? &c->images[img] : &outs[r[i].slot], img,
                           patch);
        if (n_names) aim_compile_free_outputs(outs, n_names);
        aim_compile_progress(c, "weight rounding", img + 1, c->n_calib);
    }
    aim_compile_runner_close(&run);
    double rtn = 0, kept = 0;
    for (size_t i = 0; i < n_w && st == AIM_OK; i++)
        if (r[i].h) st = round_conv(c, &w[i], &r[i], &rtn, &kept);
    for (size_t i = 0; r && i < n_w; i++) {
        free(r[i].h);
        free(r[i].hv);
    }
    free(r);
    free(names);
    free(outs);
    free(patch);
    if (st != AIM_OK) return aim_error_context(st, "weight rounding");
    aim_compile_log(c, 0,
                    "weight rounding (GPTQ): %zu of %zu Convs, output error %.1f%% of "
                    "round-to-nearest's on the validation half of the calibration images",
                    used, n_w, rtn > 0 ? 100 * kept / rtn : 100.0);
    return AIM_OK;
}
