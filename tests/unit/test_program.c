/*
 * test_program.c: compiled int8 programs (src/cpu/program*.c): building and validation, the
 * integer reference against float computations done here, the oneDNN executor against the
 * reference, the binary format's round trip and every refusal path, and the load-time
 * runnability checks.
 *
 * The reference is checked op by op: every quantized tensor is also dequantized to a program
 * output, and each op is recomputed here in double precision from its dequantized inputs with
 * the dequantized (integer) weights. The reference's conv accumulation is exact, so its only
 * error is the final requantization: |got - clamp(f)| <= scale / 2 (plus float slack), where
 * clamp is the output dtype's range. One conv is also checked end to end against float
 * weights with a bound derived from the quantization steps of input, weights, bias and output.
 */
#include "cpu/program.h"
#include "ops/op.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- Building programs --------------------------------------------------------------------- */

static uint32_t rng_state = 12345;
static float rnd(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / (float)(1u << 23) - 1.0f;
}

static int tensor4(aim_program *p, int dtype, int64_t c, int64_t h, int64_t w, float scale,
                   int zp) {
    char name[32];
    snprintf(name, sizeof name, "t%zu", p->n_tensors);
    aim_prog_tensor t = {dtype, 4, {1, c, h, w}, scale, zp, name};
    int i = aim_program_add_tensor(p, &t);
    assert_true(i >= 0);
    return i;
}

static aim_prog_op op_new(aim_prog_op_kind kind, int in0, int out) {
    aim_prog_op op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.n_in = 1;
    op.in[0] = in0;
    op.out = out;
    op.residual = -1;
    op.group = 1;
    for (int i = 0; i < 2; i++)
        op.kernel[i] = op.strides[i] = op.dilations[i] = 1;
    return op;
}

static void add_op(aim_program *p, const aim_prog_op *op) {
    assert_true(aim_program_add_op(p, op) >= 0);
}

typedef struct {
    int k, stride, pad, group, dilation;
    aim_prog_act act;
    float alpha, beta;
    int residual;
    bool bias;
} conv_spec;

/* A conv with random float weights quantized per output channel (max |w| -> 127). */
static void add_conv(aim_program *p, int in, int out, conv_spec s) {
    const aim_prog_tensor *x = &p->tensors[in], *y = &p->tensors[out];
    int64_t oc = y->dims[1], per = x->dims[1] / s.group * s.k * s.k;
    aim_prog_op op = op_new(AIM_PROG_CONV, in, out);
    op.kernel[0] = op.kernel[1] = s.k;
    op.strides[0] = op.strides[1] = s.stride;
    op.dilations[0] = op.dilations[1] = s.dilation ? s.dilation : 1;
    for (int i = 0; i < 4; i++)
        op.pads[i] = s.pad;
    op.group = s.group;
    op.act = s.act;
    op.act_alpha = s.alpha;
    op.act_beta = s.beta;
    op.residual = s.residual;
    op.weights = malloc((size_t)(oc * per));
    op.w_scale = malloc((size_t)oc * sizeof(float));
    op.bias = s.bias ? malloc((size_t)oc * sizeof(int32_t)) : NULL;
    float *wf = malloc((size_t)per * sizeof *wf);
    for (int64_t o = 0; o < oc; o++) {
        float mx = 1e-6f;
        for (int64_t i = 0; i < per; i++) {
            wf[i] = rnd() * sqrtf(3.0f / (float)per) * 1.5f;
            mx = fmaxf(mx, fabsf(wf[i]));
        }
        op.w_scale[o] = mx / 127.0f;
        for (int64_t i = 0; i < per; i++)
            op.weights[o * per + i] = (int8_t)lrintf(wf[i] / op.w_scale[o]);
        if (op.bias) op.bias[o] = (int32_t)lrintf(0.3f * rnd() / (x->scale * op.w_scale[o]));
    }
    free(wf);
    add_op(p, &op);
}

static void add_window(aim_program *p, aim_prog_op_kind kind, int in, int out, int k, int s,
                       int pad, bool include_pad) {
    aim_prog_op op = op_new(kind, in, out);
    op.kernel[0] = op.kernel[1] = k;
    op.strides[0] = op.strides[1] = s;
    for (int i = 0; i < 4; i++)
        op.pads[i] = pad;
    op.count_include_pad = include_pad;
    add_op(p, &op);
}

static void add_binary(aim_program *p, aim_prog_op_kind kind, int a, int b, int out,
                       aim_prog_act act) {
    aim_prog_op op = op_new(kind, a, out);
    op.n_in = b >= 0 ? 2 : 1;
    op.in[1] = b;
    op.act = act;
    add_op(p, &op);
}

/* Dequantizes every quantized tensor into a program output; deq[t] = its output index. */
static void finish(aim_program *p, int input, int *deq) {
    size_t n = p->n_tensors;
    int outs[AIM_PROGRAM_MAX_INPUTS], n_out = 0;
    for (size_t t = 0; t < n; t++) {
        deq[t] = -1;
        if (p->tensors[t].dtype == AIM_DTYPE_FLOAT) continue;
        const aim_prog_tensor *q = &p->tensors[t];
        int f = tensor4(p, AIM_DTYPE_FLOAT, q->dims[1], q->dims[2], q->dims[3], 0, 0);
        aim_prog_op op = op_new(AIM_PROG_DEQUANTIZE, (int)t, f);
        add_op(p, &op);
        deq[t] = n_out;
        outs[n_out++] = f;
    }
    assert_int_equal(aim_program_set_io(p, &input, 1, outs, (size_t)n_out), AIM_OK);
    if (aim_program_validate(p) != AIM_OK) fail_msg("invalid: %s", aim_last_error());
}

/* The main test program: every op kind, u8 and s8, residual, group/depthwise, stride 2, pads,
 * requantizing concat, fused and stand-alone activations. */
static aim_program *chain_program(int *deq, int *input) {
    aim_program *p = aim_program_new("cpu-int8");
    int U8 = AIM_DTYPE_UINT8, S8 = AIM_DTYPE_INT8;
    int x = tensor4(p, AIM_DTYPE_FLOAT, 8, 12, 12, 0, 0);
    int q0 = tensor4(p, U8, 8, 12, 12, 1 / 32.0f, 128);
    int c1 = tensor4(p, U8, 16, 12, 12, 6 / 255.0f, 0);
    int c2 = tensor4(p, U8, 16, 6, 6, 1 / 32.0f, 120);
    int c3 = tensor4(p, U8, 16, 6, 6, 1 / 30.0f, 128);
    int mp = tensor4(p, U8, 16, 3, 3, 1 / 30.0f, 128);
    int ap = tensor4(p, U8, 16, 6, 6, 1 / 30.0f, 128);
    int ad = tensor4(p, U8, 16, 6, 6, 1 / 16.0f, 128);
    int rs = tensor4(p, U8, 16, 6, 6, 1 / 30.0f, 128);
    int cc = tensor4(p, U8, 32, 6, 6, 1 / 16.0f, 128);
    int c4 = tensor4(p, S8, 8, 6, 6, 1 / 16.0f, 0);
    int sg = tensor4(p, U8, 8, 6, 6, 1 / 255.0f, 0);
    int ml = tensor4(p, S8, 8, 6, 6, 1 / 64.0f, 0);
    int c5 = tensor4(p, S8, 8, 6, 6, 1 / 16.0f, -3);
    int hs = tensor4(p, U8, 8, 6, 6, 1 / 40.0f, 20);
    add_binary(p, AIM_PROG_QUANTIZE, x, -1, q0, AIM_PROG_ACT_NONE);
    add_conv(p, q0, c1, (conv_spec){3, 1, 1, 1, 1, AIM_PROG_ACT_RELU, 0, 0, -1, true});
    add_conv(p, c1, c2, (conv_spec){3, 2, 1, 16, 1, AIM_PROG_ACT_LEAKY_RELU, 0.1f, 0, -1, true});
    add_conv(p, c2, c3, (conv_spec){1, 1, 0, 1, 1, AIM_PROG_ACT_CLIP, -2.0f, 3.0f, c2, true});
    add_window(p, AIM_PROG_MAXPOOL, c3, mp, 2, 2, 0, false);
    add_window(p, AIM_PROG_AVGPOOL, c3, ap, 3, 1, 1, false);
    add_binary(p, AIM_PROG_ADD, c3, ap, ad, AIM_PROG_ACT_NONE);
    aim_prog_op r = op_new(AIM_PROG_RESIZE, mp, rs);
    r.strides[0] = r.strides[1] = 2;
    add_op(p, &r);
    aim_prog_op cat = op_new(AIM_PROG_CONCAT, ad, cc);
    cat.n_in = 2;
    cat.in[1] = rs;
    cat.axis = 1;
    add_op(p, &cat);
    add_conv(p, cc, c4, (conv_spec){3, 1, 1, 2, 1, AIM_PROG_ACT_SILU, 0, 0, -1, true});
    add_binary(p, AIM_PROG_ACTIVATION, c4, -1, sg, AIM_PROG_ACT_SIGMOID);
    add_binary(p, AIM_PROG_MUL, sg, c4, ml, AIM_PROG_ACT_NONE);
    add_conv(p, ml, c5, (conv_spec){3, 1, 2, 4, 2, AIM_PROG_ACT_NONE, 0, 0, -1, false});
    add_binary(p, AIM_PROG_ACTIVATION, c5, -1, hs, AIM_PROG_ACT_HARDSWISH);
    *input = x;
    finish(p, x, deq);
    return p;
}

/* ---- Running ------------------------------------------------------------------------------- */

typedef struct {
    float **out;
    size_t n;
} outputs;

static outputs alloc_outputs(const aim_program *p) {
    outputs o = {calloc(p->n_outputs, sizeof(float *)), p->n_outputs};
    for (size_t i = 0; i < p->n_outputs; i++)
        o.out[i] = calloc(aim_program_tensor_count(&p->tensors[p->outputs[i]]), sizeof(float));
    return o;
}

static void free_outputs(outputs o) {
    for (size_t i = 0; i < o.n; i++)
        free(o.out[i]);
    free(o.out);
}

static float *random_input(const aim_program *p, float amp) {
    size_t n = aim_program_tensor_count(&p->tensors[p->inputs[0]]);
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = amp * rnd();
    return x;
}

static outputs run_ref(const aim_program *p, const float *x) {
    outputs o = alloc_outputs(p);
    if (aim_program_run_reference(p, &x, o.out) != AIM_OK)
        fail_msg("reference: %s", aim_last_error());
    return o;
}

static outputs run_exec(const aim_program *p, const float *x, size_t *fallbacks) {
    aim_program_exec *e = NULL;
    if (aim_program_exec_create(p, 1, &e) != AIM_OK) fail_msg("exec: %s", aim_last_error());
    if (fallbacks) *fallbacks = aim_program_exec_fallbacks(e);
    outputs o = alloc_outputs(p);
    if (aim_program_exec_run(e, &x, o.out, 2) != AIM_OK) fail_msg("run: %s", aim_last_error());
    aim_program_exec_free(e);
    return o;
}

/* ---- Float re-computation of each op ------------------------------------------------------- */

typedef struct {
    const aim_program *p;
    const int *deq;
    outputs o;
    const float *x; /* the program's float input */
    double worst;   /* largest error seen, in output steps */
} fcheck;

static const float *deq_of(const fcheck *f, int t) {
    if (f->p->tensors[t].dtype == AIM_DTYPE_FLOAT) return f->x;
    return f->o.out[f->deq[t]];
}

static double act_f(const aim_prog_op *op, double v) {
    switch (op->act) {
    case AIM_PROG_ACT_RELU: return v > 0 ? v : 0;
    case AIM_PROG_ACT_LEAKY_RELU: return v > 0 ? v : op->act_alpha * v;
    case AIM_PROG_ACT_CLIP: return fmin(fmax(v, op->act_alpha), op->act_beta);
    case AIM_PROG_ACT_SIGMOID: return 1 / (1 + exp(-v));
    case AIM_PROG_ACT_SILU: return v / (1 + exp(-v));
    case AIM_PROG_ACT_HARDSWISH: return v * fmin(fmax(v + 3, 0), 6) / 6;
    default: return v;
    }
}

/* |got - clamp(want)| <= half a step of the output tensor (plus float slack). */
static void expect_close(fcheck *f, int t, size_t i, double want, size_t op_index) {
    const aim_prog_tensor *y = &f->p->tensors[t];
    int32_t lo, hi;
    aim_program_qrange(y->dtype, &lo, &hi);
    double s = y->scale, c = fmin(fmax(want, (lo - y->zero_point) * s), (hi - y->zero_point) * s);
    double got = deq_of(f, t)[i], err = fabs(got - c) / s;
    if (err > f->worst) f->worst = err;
    if (err > 0.5 + 1e-3 + 1e-6 * fabs(c) / s)
        fail_msg("op %zu: element %zu is %g, float gives %g (clamped %g): %.3f steps", op_index, i,
                 got, want, c, err);
}

static void check_conv_f(fcheck *f, const aim_prog_op *op, size_t k) {
    const aim_prog_tensor *x = &f->p->tensors[op->in[0]], *y = &f->p->tensors[op->out];
    const float *in = deq_of(f, op->in[0]);
    int64_t C = x->dims[1], H = x->dims[2], W = x->dims[3], O = y->dims[1];
    int64_t cg = C / op->group, KH = op->kernel[0], KW = op->kernel[1];
    size_t at = 0;
    for (int64_t o = 0; o < O; o++)
        for (int64_t oh = 0; oh < y->dims[2]; oh++)
            for (int64_t ow = 0; ow < y->dims[3]; ow++, at++) {
                double acc = op->bias ? op->bias[o] * (double)x->scale * op->w_scale[o] : 0;
                int64_t g = o / (O / op->group);
                for (int64_t c = 0; c < cg; c++)
                    for (int64_t kh = 0; kh < KH; kh++)
                        for (int64_t kw = 0; kw < KW; kw++) {
                            int64_t ih = oh * op->strides[0] - op->pads[0] + kh * op->dilations[0];
                            int64_t iw = ow * op->strides[1] - op->pads[1] + kw * op->dilations[1];
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                            double w = op->weights[((o * cg + c) * KH + kh) * KW + kw] *
                                       (double)op->w_scale[o];
                            acc += w * in[((g * cg + c) * H + ih) * W + iw];
                        }
                if (op->residual >= 0) acc += deq_of(f, op->residual)[at];
                expect_close(f, op->out, at, act_f(op, acc), k);
            }
}

static void check_pool_f(fcheck *f, const aim_prog_op *op, size_t k) {
    const aim_prog_tensor *x = &f->p->tensors[op->in[0]], *y = &f->p->tensors[op->out];
    const float *in = deq_of(f, op->in[0]);
    int64_t H = x->dims[2], W = x->dims[3];
    size_t at = 0;
    for (int64_t c = 0; c < y->dims[1]; c++)
        for (int64_t oh = 0; oh < y->dims[2]; oh++)
            for (int64_t ow = 0; ow < y->dims[3]; ow++, at++) {
                double best = -1e30, sum = 0;
                int n = 0;
                for (int64_t kh = 0; kh < op->kernel[0]; kh++)
                    for (int64_t kw = 0; kw < op->kernel[1]; kw++) {
                        int64_t ih = oh * op->strides[0] - op->pads[0] + kh;
                        int64_t iw = ow * op->strides[1] - op->pads[1] + kw;
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                        double v = in[(c * H + ih) * W + iw];
                        best = fmax(best, v);
                        sum += v;
                        n++;
                    }
                if (op->count_include_pad) n = (int)(op->kernel[0] * op->kernel[1]);
                expect_close(f, op->out, at, op->kind == AIM_PROG_MAXPOOL ? best : sum / n, k);
            }
}

static void check_concat_f(fcheck *f, const aim_prog_op *op, size_t k) {
    size_t at = 0; /* axis 1, batch 1: inputs follow each other */
    for (int i = 0; i < op->n_in; i++) {
        size_t n = aim_program_tensor_count(&f->p->tensors[op->in[i]]);
        for (size_t j = 0; j < n; j++, at++)
            expect_close(f, op->out, at, deq_of(f, op->in[i])[j], k);
    }
}

static void check_resize_f(fcheck *f, const aim_prog_op *op, size_t k) {
    const aim_prog_tensor *x = &f->p->tensors[op->in[0]], *y = &f->p->tensors[op->out];
    size_t at = 0;
    for (int64_t c = 0; c < y->dims[1]; c++)
        for (int64_t h = 0; h < y->dims[2]; h++)
            for (int64_t w = 0; w < y->dims[3]; w++, at++)
                expect_close(
                    f, op->out, at,
                    deq_of(f, op->in[0])[(c * x->dims[2] + h / op->strides[0]) * x->dims[3] +
                                         w / op->strides[1]],
                    k);
}

static void check_op_f(fcheck *f, size_t k) {
    const aim_prog_op *op = &f->p->ops[k];
    size_t n = aim_program_tensor_count(&f->p->tensors[op->out]);
    switch (op->kind) {
    case AIM_PROG_CONV: check_conv_f(f, op, k); break;
    case AIM_PROG_MAXPOOL:
    case AIM_PROG_AVGPOOL: check_pool_f(f, op, k); break;
    case AIM_PROG_CONCAT: check_concat_f(f, op, k); break;
    case AIM_PROG_RESIZE: check_resize_f(f, op, k); break;
    case AIM_PROG_DEQUANTIZE: break;
    default:
        for (size_t i = 0; i < n; i++) {
            double a = deq_of(f, op->in[0])[i], b = op->n_in > 1 ? deq_of(f, op->in[1])[i] : 0;
            double v = op->kind == AIM_PROG_ADD ? a + b : op->kind == AIM_PROG_MUL ? a * b : a;
            expect_close(f, op->out, i, act_f(op, v), k);
        }
    }
}

static void test_reference_vs_float(void **state) {
    (void)state;
    int deq[64], input;
    aim_program *p = chain_program(deq, &input);
    float *x = random_input(p, 4.5f); /* a little beyond the input range: saturation too */
    fcheck f = {p, deq, run_ref(p, x), x, 0};
    for (size_t k = 0; k < p->n_ops; k++)
        check_op_f(&f, k);
    print_message("reference vs float, op by op: worst error %.3f output steps\n", f.worst);
    free_outputs(f.o);
    free(x);
    aim_program_free(p);
}

/* One conv end to end against float weights. The float conv is y = sum w x + b. With input
 * step sx, weight steps sw[o], output step sy: |x - deq(x)| <= sx/2, |w - deq(w)| <= sw/2,
 * |b - deq(b)| <= sx sw / 2, so |err| <= sx/2 sum|w| + sw/2 sum|x| + sx sw/2 + sy/2 (the last
 * term the output rounding). */
static void test_conv_vs_float_weights(void **state) {
    (void)state;
    aim_program *p = aim_program_new("cpu-int8");
    int x = tensor4(p, AIM_DTYPE_FLOAT, 4, 5, 5, 0, 0);
    int q = tensor4(p, AIM_DTYPE_UINT8, 4, 5, 5, 1 / 50.0f, 128);
    int y = tensor4(p, AIM_DTYPE_INT8, 6, 5, 5, 1 / 20.0f, 0);
    int yf = tensor4(p, AIM_DTYPE_FLOAT, 6, 5, 5, 0, 0);
    float wf[6 * 4 * 9], bf[6];
    for (size_t i = 0; i < 6 * 4 * 9; i++)
        wf[i] = 0.4f * rnd();
    for (int o = 0; o < 6; o++)
        bf[o] = 0.5f * rnd();
    aim_prog_op qop = op_new(AIM_PROG_QUANTIZE, x, q), dop = op_new(AIM_PROG_DEQUANTIZE, y, yf);
    aim_prog_op c = op_new(AIM_PROG_CONV, q, y);
    c.kernel[0] = c.kernel[1] = 3;
    for (int i = 0; i < 4; i++)
        c.pads[i] = 1;
    c.weights = malloc(sizeof wf / sizeof wf[0]);
    c.w_scale = malloc(6 * sizeof(float));
    c.bias = malloc(6 * sizeof(int32_t));
    for (int o = 0; o < 6; o++) {
        float mx = 0;
        for (int i = 0; i < 36; i++)
            mx = fmaxf(mx, fabsf(wf[o * 36 + i]));
        c.w_scale[o] = mx / 127;
        for (int i = 0; i < 36; i++)
            c.weights[o * 36 + i] = (int8_t)lrintf(wf[o * 36 + i] / c.w_scale[o]);
        c.bias[o] = (int32_t)lrintf(bf[o] / (c.w_scale[o] / 50.0f));
    }
    add_op(p, &qop);
    add_op(p, &c);
    add_op(p, &dop);
    assert_int_equal(aim_program_set_io(p, &x, 1, &yf, 1), AIM_OK);
    float *in = random_input(p, 2.0f);
    outputs o = run_ref(p, in);
    double worst = 0;
    for (int oc = 0; oc < 6; oc++)
        for (int oh = 0; oh < 5; oh++)
            for (int ow = 0; ow < 5; ow++) {
                double acc = bf[oc], sumw = 0, sumx = 0;
                for (int ic = 0; ic < 4; ic++)
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 3; kw++) {
                            int ih = oh - 1 + kh, iw = ow - 1 + kw;
                            if (ih < 0 || ih > 4 || iw < 0 || iw > 4) continue;
                            double w = wf[((oc * 4 + ic) * 3 + kh) * 3 + kw];
                            double v = in[(ic * 5 + ih) * 5 + iw];
                            acc += w * v;
                            sumw += fabs(w);
                            sumx += fabs(v) + 1 / 100.0; /* |deq(x)| <= |x| + sx/2 */
                        }
                double sw = c.w_scale[oc];
                double bound = sumw / 100.0 + sw / 2 * sumx + sw / 100.0 + 1 / 40.0 + 1e-5;
                double got = o.out[0][(oc * 5 + oh) * 5 + ow], want = fmin(fmax(acc, -6.4), 6.35);
                assert_true(fabs(got - want) <= bound);
                worst = fmax(worst, fabs(got - want) / bound);
            }
    print_message("conv vs float weights: worst error %.2f of the derived bound\n", worst);
    free_outputs(o);
    free(in);
    aim_program_free(p);
}

/* A conv writing a float32 program output directly (residual and ReLU fused): the reference
 * computes relu(acc * sx * sw[o] + sr * (r - zr)) unrounded and unclipped, from the exact
 * integers; the oneDNN executor (which runs a conv with a residual into a float32 output on the
 * reference) gives the same bytes. */
static void test_conv_float_output(void **state) {
    (void)state;
    aim_program *p = aim_program_new("cpu-int8");
    int x = tensor4(p, AIM_DTYPE_FLOAT, 4, 6, 5, 0, 0);
    int q = tensor4(p, AIM_DTYPE_UINT8, 4, 6, 5, 1 / 30.0f, 100);
    int y = tensor4(p, AIM_DTYPE_FLOAT, 4, 6, 5, 0, 0);
    aim_prog_op qop = op_new(AIM_PROG_QUANTIZE, x, q);
    add_op(p, &qop);
    add_conv(p, q, y,
             (conv_spec){.k = 3,
                         .stride = 1,
                         .pad = 1,
                         .group = 1,
                         .act = AIM_PROG_ACT_RELU,
                         .residual = q,
                         .bias = true});
    assert_int_equal(aim_program_set_io(p, &x, 1, &y, 1), AIM_OK);
    if (aim_program_validate(p) != AIM_OK) fail_msg("invalid: %s", aim_last_error());
    float *in = random_input(p, 6.0f); /* beyond the u8 range: saturates at the input only */
    outputs r = run_ref(p, in);
    const aim_prog_op *c = &p->ops[1];
    const aim_prog_tensor *qt = &p->tensors[q];
    double big = 0;
    for (int o = 0; o < 4; o++)
        for (int h = 0; h < 6; h++)
            for (int w = 0; w < 5; w++) {
                int64_t acc = c->bias[o];
                for (int i = 0; i < 4; i++)
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 3; kw++) {
                            int ih = h - 1 + kh, iw = w - 1 + kw;
                            if (ih < 0 || ih > 5 || iw < 0 || iw > 4) continue;
                            double v =
                                fmin(fmax(rint(in[(i * 6 + ih) * 5 + iw] * 30.0) + 100, 0), 255);
                            acc += (int64_t)(v - 100) * c->weights[((o * 4 + i) * 3 + kh) * 3 + kw];
                        }
                double res = fmin(fmax(rint(in[(o * 6 + h) * 5 + w] * 30.0) + 100, 0), 255) - 100;
                double want = fmax((double)acc * qt->scale * c->w_scale[o] + qt->scale * res, 0);
                double got = r.out[0][(o * 6 + h) * 5 + w];
                assert_true(fabs(got - want) <= 1e-5 * fmax(1, fabs(want)));
                big = fmax(big, got);
            }
    assert_true(big > 0);
    size_t fallbacks = 0;
    outputs e = run_exec(p, in, &fallbacks);
    assert_true(fallbacks >= 1);
    assert_memory_equal(e.out[0], r.out[0], 4 * 6 * 5 * sizeof(float));
    free_outputs(r);
    free_outputs(e);
    free(in);
    aim_program_free(p);
}

/* Convs writing float32 program outputs without a residual run on oneDNN (NHWC, then a reorder
 * to NCHW): a u8 source with ReLU, an s8 source with weights beyond 64 (flipped to u8 and its
 * channels split in two on machines without VNNI) and a depthwise conv, each against the
 * reference. One float multiplication of the same exact integer in both: the same bytes. */
static void test_conv_float_output_onednn(void **state) {
    (void)state;
    static const struct {
        int dtype, zp, group;
        aim_prog_act act;
    } cases[] = {
        {AIM_DTYPE_UINT8, 100, 1, AIM_PROG_ACT_RELU},
        {AIM_DTYPE_INT8, -5, 1, AIM_PROG_ACT_NONE},
        {AIM_DTYPE_UINT8, 128, 12, AIM_PROG_ACT_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aim_program *p = aim_program_new("cpu-int8");
        int x = tensor4(p, AIM_DTYPE_FLOAT, 12, 7, 9, 0, 0);
        int q = tensor4(p, cases[i].dtype, 12, 7, 9, 1 / 25.0f, cases[i].zp);
        int y = tensor4(p, AIM_DTYPE_FLOAT, 12, 7, 9, 0, 0);
        aim_prog_op qop = op_new(AIM_PROG_QUANTIZE, x, q);
        add_op(p, &qop);
        add_conv(p, q, y,
                 (conv_spec){.k = 3,
                             .stride = 1,
                             .pad = 1,
                             .group = cases[i].group,
                             .act = cases[i].act,
                             .residual = -1,
                             .bias = true});
        assert_int_equal(aim_program_set_io(p, &x, 1, &y, 1), AIM_OK);
        if (aim_program_validate(p) != AIM_OK) fail_msg("invalid: %s", aim_last_error());
        float *in = random_input(p, 4.0f);
        size_t fallbacks = 1;
        outputs r = run_ref(p, in), e = run_exec(p, in, &fallbacks);
        assert_int_equal(fallbacks, 0);
        double big = 0;
        for (size_t k = 0; k < 12 * 7 * 9; k++)
            big = fmax(big, fabs(r.out[0][k]));
        assert_true(big > 0.1);
        assert_memory_equal(e.out[0], r.out[0], 12 * 7 * 9 * sizeof(float));
        free_outputs(r);
        free_outputs(e);
        free(in);
        aim_program_free(p);
    }
}

/* A float32 output is for convs only: a pooling op writing one is refused. */
static void test_float_output_conv_only(void **state) {
    (void)state;
    aim_program *p = aim_program_new("cpu-int8");
    int x = tensor4(p, AIM_DTYPE_FLOAT, 2, 4, 4, 0, 0);
    int q = tensor4(p, AIM_DTYPE_UINT8, 2, 4, 4, 0.1f, 0);
    int y = tensor4(p, AIM_DTYPE_FLOAT, 2, 2, 2, 0, 0);
    aim_prog_op qop = op_new(AIM_PROG_QUANTIZE, x, q);
    add_op(p, &qop);
    add_window(p, AIM_PROG_MAXPOOL, q, y, 2, 2, 0, false);
    assert_int_equal(aim_program_set_io(p, &x, 1, &y, 1), AIM_OK);
    assert_int_equal(aim_program_validate(p), AIM_ERR_INVALID_ARG);
    aim_program_free(p);
}

/* ---- oneDNN executor vs reference ---------------------------------------------------------- */

/* Compares two runs output by output in steps of each output's source tensor. */
static void compare_runs(const aim_program *p, outputs a, outputs b, const char *what) {
    size_t total = 0, off_by_one = 0;
    for (size_t k = 0; k < p->n_outputs; k++) {
        const aim_prog_op *src = NULL;
        for (size_t i = 0; i < p->n_ops; i++)
            if (p->ops[i].out == p->outputs[k]) src = &p->ops[i];
        float s = p->tensors[src->in[0]].scale;
        size_t n = aim_program_tensor_count(&p->tensors[p->outputs[k]]);
        for (size_t i = 0; i < n; i++, total++) {
            float d = fabsf(a.out[k][i] - b.out[k][i]) / s;
            if (d > 1.001f)
                fail_msg("%s: output %zu element %zu: %g vs %g (%.2f steps)", what, k, i,
                         a.out[k][i], b.out[k][i], d);
            if (d > 0.5f) off_by_one++;
        }
    }
    print_message("%s: %zu values, %zu exact, %zu one step apart\n", what, total,
                  total - off_by_one, off_by_one);
}

static void test_exec_vs_reference(void **state) {
    (void)state;
    int deq[64], input;
    aim_program *p = chain_program(deq, &input);
    for (int trial = 0; trial < 3; trial++) {
        float *x = random_input(p, 4.5f);
        size_t fallbacks = 0;
        outputs r = run_ref(p, x), e = run_exec(p, x, &fallbacks);
        if (trial == 0)
            print_message("oneDNN executor: %zu of %zu ops on the reference\n", fallbacks,
                          p->n_ops);
        compare_runs(p, r, e, "oneDNN vs reference");
        free_outputs(r);
        free_outputs(e);
        free(x);
    }
    aim_program_free(p);
}

/* SLICE: parts of a tensor along channels (a Split) and along H, one with the input's
 * parameters (a copy), one requantized: the reference against the parts computed here, the
 * oneDNN executor against the reference; a part outside the input is refused. */
static void test_slice(void **state) {
    (void)state;
    aim_program *p = aim_program_new("cpu-int8");
    int x = tensor4(p, AIM_DTYPE_FLOAT, 12, 5, 7, 0, 0);
    int q = tensor4(p, AIM_DTYPE_UINT8, 12, 5, 7, 1 / 20.0f, 120);
    int c = tensor4(p, AIM_DTYPE_UINT8, 8, 5, 7, 1 / 20.0f, 120); /* channels 4..11, copied */
    int h = tensor4(p, AIM_DTYPE_UINT8, 12, 2, 7, 1 / 9.0f, 60);  /* rows 3..4, requantized */
    aim_prog_op qop = op_new(AIM_PROG_QUANTIZE, x, q);
    add_op(p, &qop);
    aim_prog_op a = op_new(AIM_PROG_SLICE, q, c), b = op_new(AIM_PROG_SLICE, q, h);
    a.axis = 1, a.pads[0] = 4;
    b.axis = 2, b.pads[0] = 3;
    add_op(p, &a);
    add_op(p, &b);
    int outs[2] = {c, h};
    int fc = tensor4(p, AIM_DTYPE_FLOAT, 8, 5, 7, 0, 0),
        fh = tensor4(p, AIM_DTYPE_FLOAT, 12, 2, 7, 0, 0);
    aim_prog_op dc = op_new(AIM_PROG_DEQUANTIZE, outs[0], fc),
                dh = op_new(AIM_PROG_DEQUANTIZE, outs[1], fh);
    add_op(p, &dc);
    add_op(p, &dh);
    int fo[2] = {fc, fh};
    assert_int_equal(aim_program_set_io(p, &x, 1, fo, 2), AIM_OK);
    if (aim_program_validate(p) != AIM_OK) fail_msg("invalid: %s", aim_last_error());
    float *in = random_input(p, 5.0f);
    outputs r = run_ref(p, in);
    for (int ch = 0; ch < 8; ch++)
        for (int i = 0; i < 35; i++) {
            double v = fmin(fmax(rint(in[(4 + ch) * 35 + i] * 20.0) + 120, 0), 255);
            assert_true(fabs(r.out[0][ch * 35 + i] - (v - 120) / 20.0) < 1e-6);
        }
    for (int ch = 0; ch < 12; ch++)
        for (int row = 0; row < 2; row++)
            for (int col = 0; col < 7; col++) {
                double v = fmin(fmax(rint(in[(ch * 5 + 3 + row) * 7 + col] * 20.0) + 120, 0), 255);
                double u = fmin(fmax(rint((v - 120) / 20.0 * 9.0) + 60, 0), 255);
                assert_true(fabs(r.out[1][(ch * 2 + row) * 7 + col] - (u - 60) / 9.0) < 1e-5);
            }
    size_t fallbacks = 1;
    outputs e = run_exec(p, in, &fallbacks);
    assert_int_equal(fallbacks, 0);
    compare_runs(p, r, e, "slice: oneDNN vs reference");
    free_outputs(r);
    free_outputs(e);
    free(in);
    p->ops[1].pads[0] = 5; /* channels 5..12 of 12 */
    assert_int_equal(aim_program_validate(p), AIM_ERR_INVALID_ARG);
    p->ops[1].pads[0] = 4;
    p->ops[1].axis = 0;
    assert_int_equal(aim_program_validate(p), AIM_ERR_INVALID_ARG);
    aim_program_free(p);
}

/* Conv shapes around oneDNN's blocking: odd channel counts, wide layers, 1x1, asymmetric pads,
 * s8 and u8 sources, depthwise, each against the reference. */
static void test_exec_conv_shapes(void **state) {
    (void)state;
    static const struct {
        int dtype, c, o, hw, k, stride, group, pads[4];
    } cases[] = {
        {AIM_DTYPE_UINT8, 3, 5, 9, 3, 2, 1, {1, 1, 1, 1}},
        {AIM_DTYPE_INT8, 24, 40, 7, 1, 1, 1, {0, 0, 0, 0}},
        {AIM_DTYPE_UINT8, 64, 64, 10, 3, 1, 64, {1, 1, 1, 1}},
        {AIM_DTYPE_INT8, 48, 96, 8, 3, 2, 3, {0, 0, 1, 1}},
        {AIM_DTYPE_UINT8, 130, 17, 5, 5, 1, 1, {2, 1, 2, 3}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aim_program *p = aim_program_new("cpu-int8");
        int hw = cases[i].hw, k = cases[i].k, s = cases[i].stride;
        int oh = (hw + cases[i].pads[0] + cases[i].pads[2] - k) / s + 1;
        int ow = (hw + cases[i].pads[1] + cases[i].pads[3] - k) / s + 1;
        int zp = cases[i].dtype == AIM_DTYPE_INT8 ? -7 : 131;
        int x = tensor4(p, AIM_DTYPE_FLOAT, cases[i].c, hw, hw, 0, 0);
        int q = tensor4(p, cases[i].dtype, cases[i].c, hw, hw, 1 / 27.0f, zp);
        int y = tensor4(p, AIM_DTYPE_UINT8, cases[i].o, oh, ow, 1 / 9.0f, 128);
        add_binary(p, AIM_PROG_QUANTIZE, x, -1, q, AIM_PROG_ACT_NONE);
        add_conv(p, q, y,
                 (conv_spec){k, s, 0, cases[i].group, 1, AIM_PROG_ACT_NONE, 0, 0, -1, true});
        memcpy(p->ops[1].pads,
               (int64_t[4]){cases[i].pads[0], cases[i].pads[1], cases[i].pads[2], cases[i].pads[3]},
               sizeof p->ops[1].pads);
        int deq[8];
        finish(p, x, deq);
        float *in = random_input(p, 5.0f);
        size_t fallbacks = 1;
        outputs r = run_ref(p, in), e = run_exec(p, in, &fallbacks);
        assert_int_equal(fallbacks, 0);
        compare_runs(p, r, e, "conv shapes: oneDNN vs reference");
        free_outputs(r);
        free_outputs(e);
        free(in);
        aim_program_free(p);
    }
}

/* Ops oneDNN cannot do exactly run the reference for that op alone, in the middle of oneDNN
 * ops (layout conversions around them). */
static void test_exec_fallbacks(void **state) {
    (void)state;
    aim_program *p = aim_program_new("cpu-int8");
    int x = tensor4(p, AIM_DTYPE_FLOAT, 8, 7, 7, 0, 0);
    int q = tensor4(p, AIM_DTYPE_INT8, 8, 7, 7, 1 / 40.0f, 5);
    int c = tensor4(p, AIM_DTYPE_UINT8, 8, 7, 7, 1 / 30.0f, 100);
    int a = tensor4(p, AIM_DTYPE_UINT8, 8, 4, 4, 1 / 30.0f, 100);
    int m = tensor4(p, AIM_DTYPE_UINT8, 8, 7, 7, 1 / 60.0f, 10);
    int c2 = tensor4(p, AIM_DTYPE_UINT8, 8, 7, 7, 1 / 30.0f, 90);
    add_binary(p, AIM_PROG_QUANTIZE, x, -1, q, AIM_PROG_ACT_NONE);
    add_conv(p, q, c, (conv_spec){3, 1, 1, 1, 1, AIM_PROG_ACT_NONE, 0, 0, -1, true});
    add_window(p, AIM_PROG_AVGPOOL, c, a, 3, 2, 1, true);    /* counts padding, zero point 100 */
    add_binary(p, AIM_PROG_MUL, c, q, m, AIM_PROG_ACT_NONE); /* zero points inside a product */
    add_conv(p, m, c2, (conv_spec){3, 1, 1, 8, 1, AIM_PROG_ACT_RELU, 0, 0, c, true});
    int deq[16];
    finish(p, x, deq);
    float *in = random_input(p, 3.0f);
    size_t fallbacks = 0;
    outputs r = run_ref(p, in), e = run_exec(p, in, &fallbacks);
    assert_true(fallbacks >= 2);
    compare_runs(p, r, e, "with reference fallbacks");
    fcheck f = {p, deq, r, in, 0};
    for (size_t k = 0; k < p->n_ops; k++)
        check_op_f(&f, k);
    free_outputs(r);
    free_outputs(e);
    free(in);
    aim_program_free(p);
}

/* Concurrent runs on one executor share nothing mutable: same results as one at a time. */
typedef struct {
    const aim_program_exec *e;
    const aim_program *p;
    const float *x;
    outputs o;
    aim_status st;
} run_job;

static void *run_thread(void *arg) {
    run_job *j = arg;
    for (int i = 0; i < 4 && j->st == AIM_OK; i++)
        j->st = aim_program_exec_run(j->e, &j->x, j->o.out, 1);
    return NULL;
}

static void test_exec_concurrent(void **state) {
    (void)state;
    int deq[64], input;
    aim_program *p = chain_program(deq, &input);
    aim_program_exec *e = NULL;
    assert_int_equal(aim_program_exec_create(p, 1, &e), AIM_OK);
    float *x[2] = {random_input(p, 4.0f), random_input(p, 4.0f)};
    run_job jobs[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        jobs[i] = (run_job){e, p, x[i], alloc_outputs(p), AIM_OK};
        assert_int_equal(pthread_create(&th[i], NULL, run_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].st, AIM_OK);
        outputs r = run_ref(p, x[i]);
        compare_runs(p, r, jobs[i].o, "concurrent runs vs reference");
        free_outputs(r);
        free_outputs(jobs[i].o);
        free(x[i]);
    }
    aim_program_exec_free(e);
    aim_program_free(p);
}

/* ---- Binary format ------------------------------------------------------------------------- */

static void serialize_ok(const aim_program *p, uint8_t **data, size_t *size) {
    if (aim_program_serialize(p, data, size) != AIM_OK) fail_msg("%s", aim_last_error());
}

static void test_round_trip(void **state) {
    (void)state;
    int deq[64], input;
    aim_program *p = chain_program(deq, &input);
    p->required_features = AIM_CPU_FEATURE_AVX2;
    uint8_t *a, *b;
    size_t na, nb;
    serialize_ok(p, &a, &na);
    aim_program *q = NULL;
    if (aim_program_deserialize(a, na, &q) != AIM_OK) fail_msg("%s", aim_last_error());
    serialize_ok(q, &b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    assert_int_equal(q->required_features, AIM_CPU_FEATURE_AVX2);
    assert_string_equal(q->tensors[3].name, p->tensors[3].name);
    float *x = random_input(p, 4.0f);
    outputs r1 = run_ref(p, x), r2 = run_ref(q, x);
    for (size_t k = 0; k < p->n_outputs; k++)
        assert_memory_equal(r1.out[k], r2.out[k],
                            aim_program_tensor_count(&p->tensors[p->outputs[k]]) * sizeof(float));
    free_outputs(r1);
    free_outputs(r2);
    free(x);
    free(a);
    free(b);
    aim_program_free(q);
    aim_program_free(p);
}

/* A small program for the failure tests, serialized. */
static aim_program *small_program(uint8_t **data, size_t *size) {
    int deq[8];
    aim_program *p = aim_program_new("cpu-int8");
    int x = tensor4(p, AIM_DTYPE_FLOAT, 2, 4, 4, 0, 0);
    int q = tensor4(p, AIM_DTYPE_UINT8, 2, 4, 4, 0.05f, 128);
    int y = tensor4(p, AIM_DTYPE_UINT8, 3, 4, 4, 0.1f, 0);
    add_binary(p, AIM_PROG_QUANTIZE, x, -1, q, AIM_PROG_ACT_NONE);
    add_conv(p, q, y, (conv_spec){3, 1, 1, 1, 1, AIM_PROG_ACT_RELU, 0, 0, -1, true});
    finish(p, x, deq);
    serialize_ok(p, data, size);
    return p;
}

static void fix_crc(uint8_t *d, size_t n) {
    uint32_t c = aim_program_crc32(d + 24, n - 24);
    for (int i = 0; i < 4; i++)
        d[12 + i] = (uint8_t)(c >> (8 * i));
}

static void put32(uint8_t *d, size_t at, uint32_t v) {
    for (int i = 0; i < 4; i++)
        d[at + i] = (uint8_t)(v >> (8 * i));
}

/* Deserializing must fail with `status` and a message containing `text`. */
static void refused(const uint8_t *d, size_t n, aim_status status, const char *text) {
    aim_program *p = (aim_program *)1;
    aim_status st = aim_program_deserialize(d, n, &p);
    if (st == AIM_OK) fail_msg("accepted, expected '%s'", text ? text : "a refusal");
    assert_null(p);
    assert_int_equal(st, status);
    if (text && !strstr(aim_last_error(), text))
        fail_msg("message '%s' lacks '%s'", aim_last_error(), text);
}

/* Byte offsets of fields in small_program's encoding (docs/program-format.md). */
static size_t tensor_at(const aim_program *p, size_t t) {
    size_t at = 24 + 4 + strlen(p->target) + 4 + 4;
    for (size_t i = 0; i < t; i++)
        at += 4 + 52 + strlen(p->tensors[i].name);
    return at; /* the tensor's record length */
}
static size_t op_at(const aim_program *p, const uint8_t *d, size_t k) {
    size_t at = tensor_at(p, p->n_tensors) + 4;
    for (size_t i = 0; i < k; i++)
        at += 4 + (d[at] | d[at + 1] << 8 | d[at + 2] << 16 | (size_t)d[at + 3] << 24);
    return at; /* the op's record length */
}

static void test_truncated_everywhere(void **state) {
    (void)state;
    uint8_t *d;
    size_t n;
    aim_program *p = small_program(&d, &n);
    uint8_t *copy = malloc(n);
    for (size_t len = 0; len < n; len++) {
        memcpy(copy, d, len);
        refused(copy, len, len >= 4 && len < 8 ? AIM_ERR_PARSE : AIM_ERR_PARSE, NULL);
        if (len <= 24) continue;
        /* Also with a consistent header, so the payload parser itself meets the end. */
        put32(copy, 16, (uint32_t)(len - 24));
        put32(copy, 20, 0);
        fix_crc(copy, len);
        refused(copy, len, AIM_ERR_PARSE, "program");
    }
    free(copy);
    free(d);
    aim_program_free(p);
}

static void test_header_refusals(void **state) {
    (void)state;
    uint8_t *d;
    size_t n;
    aim_program *p = small_program(&d, &n);
    d[12] ^= 1; /* checksum byte */
    refused(d, n, AIM_ERR_PARSE, "checksum mismatch");
    d[12] ^= 1;
    d[n - 1] ^= 0x40; /* payload byte */
    refused(d, n, AIM_ERR_PARSE, "checksum mismatch");
    d[n - 1] ^= 0x40;
    put32(d, 4, 2);
    refused(d, n, AIM_ERR_UNSUPPORTED, "program format version 2, this aim reads version 1");
    put32(d, 4, 1);
    d[0] = 'X';
    refused(d, n, AIM_ERR_PARSE, "not an aim program");
    d[0] = 'A';
    put32(d, 8, 32);
    refused(d, n, AIM_ERR_PARSE, "header length");
    put32(d, 8, 24);
    uint8_t *longer = calloc(n + 1, 1);
    memcpy(longer, d, n);
    refused(longer, n + 1, AIM_ERR_PARSE, "payload bytes");
    free(longer);
    aim_program *ok = NULL;
    assert_int_equal(aim_program_deserialize(d, n, &ok), AIM_OK);
    aim_program_free(ok);
    free(d);
    aim_program_free(p);
}

/* Patches 4 bytes at `at` in a copy, repairs the checksum, expects a refusal naming `text`. */
static void patched(const uint8_t *d, size_t n, size_t at, uint32_t v, const char *text) {
    uint8_t *c = malloc(n);
    memcpy(c, d, n);
    put32(c, at, v);
    fix_crc(c, n);
    refused(c, n, AIM_ERR_PARSE, text);
    free(c);
}

static void test_content_refusals(void **state) {
    (void)state;
    uint8_t *d;
    size_t n;
    aim_program *p = small_program(&d, &n);
    size_t conv = op_at(p, d, 1), t1 = tensor_at(p, 1);
    uint32_t nan;
    float qnan = NAN;
    memcpy(&nan, &qnan, 4);
    patched(d, n, conv + 4, 77, "unknown op kind 77");
    patched(d, n, conv + 12, 999, "names tensor 999");
    patched(d, n, conv + 24, 2, "weights, the shapes need");        /* kernel height 3 -> 2 */
    patched(d, n, t1 + 4 + 8 + 32, nan, "scale");                   /* tensor 1's scale */
    patched(d, n, t1 + 4 + 8 + 36, 300, "zero point 300");          /* outside uint8 */
    patched(d, n, t1 + 4, AIM_DTYPE_INT64, "dtype int64");          /* dtype */
    patched(d, n, t1 + 4 + 4, 7, "rank");                           /* rank */
    patched(d, n, t1 + 4 + 8 + 40, 0x7FFFFFFF, "count larger");     /* name length */
    patched(d, n, tensor_at(p, 0) - 4, 0xFFFFFFFF, "count larger"); /* tensor count */
    patched(d, n, op_at(p, d, 0) - 4, 0x10000000, "count larger");  /* op count */
    patched(d, n, conv + 8, 65, "too many op inputs");              /* n_in */
    patched(d, n, conv, 0xFFFFFF00u, "bad record length");
    size_t counts = conv + 4 + 4 + 4 + 4 + 4 + 4 + 96 + 4 + 4 + 4 + 4;
    patched(d, n, counts, 0xFFFFFFFFu, "count larger"); /* weight count, low half */
    patched(d, n, counts + 8, 1000, "count larger");    /* scale count */
    free(d);
    aim_program_free(p);
}

/* The same failures on programs built in memory: validate names them. */
static void expect_invalid(aim_program *p, const char *text) {
    aim_status st = aim_program_validate(p);
    assert_int_not_equal(st, AIM_OK);
    if (!strstr(aim_last_error(), text)) fail_msg("'%s' lacks '%s'", aim_last_error(), text);
    uint8_t *d = NULL;
    size_t n = 0;
    assert_int_not_equal(aim_program_serialize(p, &d, &n), AIM_OK);
    assert_null(d);
}

static void test_validate_refusals(void **state) {
    (void)state;
    uint8_t *d;
    size_t n;
    aim_program *p = small_program(&d, &n);
    free(d);
    aim_prog_op *conv = &p->ops[1];
    p->tensors[1].scale = NAN;
    expect_invalid(p, "scale");
    p->tensors[1].scale = 0.05f;
    conv->w_scale[2] = -1;
    expect_invalid(p, "weight scale 2");
    conv->w_scale[2] = 0.01f;
    conv->group = 2; /* 2 input channels, 3 output channels */
    expect_invalid(p, "group 2 does not divide");
    conv->group = 1;
    conv->in[0] = 42;
    expect_invalid(p, "names tensor 42");
    conv->in[0] = 1;
    conv->kind = AIM_PROG_OP_COUNT;
    expect_invalid(p, "unknown op kind");
    conv->kind = AIM_PROG_CONV;
    conv->strides[0] = 2;
    expect_invalid(p, "output dimension 2");
    conv->strides[0] = 1;
    conv->act = AIM_PROG_ACT_CLIP;
    conv->act_alpha = 1;
    conv->act_beta = 0;
    expect_invalid(p, "clip min above max");
    conv->act = AIM_PROG_ACT_RELU;
    conv->out = 1; /* written twice */
    expect_invalid(p, "already computed");
    conv->out = 2;
    p->tensors[2].zero_point = -1;
    expect_invalid(p, "zero point -1");
    p->tensors[2].zero_point = 0;
    p->tensors[2].dims[2] = (int64_t)1 << 40;
    expect_invalid(p, "element count");
    p->tensors[2].dims[2] = 4;
    assert_int_equal(aim_program_validate(p), AIM_OK);
    aim_program_free(p);
}

/* ---- Runnability --------------------------------------------------------------------------- */

static void test_check_runnable(void **state) {
    (void)state;
    uint8_t *d;
    size_t n;
    aim_program *p = small_program(&d, &n);
    free(d);
    uint32_t have = aim_cpu_features();
    print_message("this CPU: features 0x%x\n", have);
    assert_int_equal(aim_program_check_runnable(p), AIM_OK);
    p->required_features = have;
    assert_int_equal(aim_program_check_runnable(p), AIM_OK);
    p->required_features = AIM_CPU_FEATURE_AMX;
    if (!(have & AIM_CPU_FEATURE_AMX)) {
        assert_int_equal(aim_program_check_runnable(p), AIM_ERR_UNSUPPORTED);
        assert_non_null(strstr(aim_last_error(), "amx-int8"));
    }
    p->required_features = 0;
    strcpy(p->target, "hailo");
    assert_int_equal(aim_program_check_runnable(p), AIM_ERR_UNSUPPORTED);
    assert_non_null(strstr(aim_last_error(), "'hailo'"));
    aim_program_free(p);
}

/* ---- The AimProgram ONNX kernel ------------------------------------------------------------ */

extern const aim_op_def aim_cpu_program_op;

typedef struct {
    Onnx__NodeProto node;
    Onnx__AttributeProto prog, target, *attrs[2];
    aim_op_ctx c;
    const aim_tensor *in[1];
    aim_tensor *out[1];
} node_fixture;

static void node_init(node_fixture *f, uint8_t *bytes, size_t n, const char *target,
                      const aim_tensor *in, aim_tensor *out) {
    onnx__node_proto__init(&f->node);
    onnx__attribute_proto__init(&f->prog);
    onnx__attribute_proto__init(&f->target);
    f->node.name = "prog";
    f->node.op_type = AIM_PROGRAM_OP_TYPE;
    f->node.domain = AIM_PROGRAM_DOMAIN;
    f->prog.name = AIM_PROGRAM_ATTR_PROGRAM;
    f->prog.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    f->prog.has_s = 1;
    f->prog.s.data = bytes;
    f->prog.s.len = n;
    f->target.name = AIM_PROGRAM_ATTR_TARGET;
    f->target.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    f->target.has_s = 1;
    f->target.s.data = (uint8_t *)target;
    f->target.s.len = strlen(target);
    f->attrs[0] = &f->prog;
    f->attrs[1] = &f->target;
    f->node.attribute = f->attrs;
    f->node.n_attribute = 2;
    f->in[0] = in;
    f->out[0] = out;
    memset(&f->c, 0, sizeof f->c);
    f->c.node = &f->node;
    f->c.opset = 1;
    f->c.n_in = 1;
    f->c.in = f->in;
    f->c.n_out = 1;
    f->c.out = f->out;
    f->c.threads = 2;
}

static void test_onnx_kernel(void **state) {
    (void)state;
    aim_program *p = aim_program_new("cpu-int8");
    int x = tensor4(p, AIM_DTYPE_FLOAT, 2, 4, 4, 0, 0);
    int q = tensor4(p, AIM_DTYPE_UINT8, 2, 4, 4, 0.05f, 128);
    int y = tensor4(p, AIM_DTYPE_UINT8, 3, 4, 4, 0.1f, 0);
    int yf = tensor4(p, AIM_DTYPE_FLOAT, 3, 4, 4, 0, 0);
    add_binary(p, AIM_PROG_QUANTIZE, x, -1, q, AIM_PROG_ACT_NONE);
    add_conv(p, q, y, (conv_spec){3, 1, 1, 1, 1, AIM_PROG_ACT_RELU, 0, 0, -1, true});
    aim_prog_op d = op_new(AIM_PROG_DEQUANTIZE, y, yf);
    add_op(p, &d);
    assert_int_equal(aim_program_set_io(p, &x, 1, &yf, 1), AIM_OK);
    uint8_t *bytes;
    size_t n;
    serialize_ok(p, &bytes, &n);
    float *xin = random_input(p, 3.0f), yout[48];
    aim_tensor in = {AIM_DTYPE_FLOAT, 4, {1, 2, 4, 4}, xin}, out = {0};
    node_fixture f;
    node_init(&f, bytes, n, "cpu-int8", &in, &out);
    const aim_op_def *k = &aim_cpu_program_op;
    if (k->prepare(&f.c) != AIM_OK) fail_msg("prepare: %s", aim_last_error());
    assert_int_equal(k->infer(&f.c), AIM_OK);
    assert_int_equal(out.dtype, AIM_DTYPE_FLOAT);
    assert_int_equal(out.rank, 4);
    assert_int_equal(out.dims[1], 3);
    out.data = yout;
    assert_int_equal(k->run(&f.c), AIM_OK);
    outputs r = run_ref(p, xin);
    for (int i = 0; i < 48; i++)
        assert_true(fabsf(yout[i] - r.out[0][i]) <= 0.1f * 1.001f);
    k->release(f.c.state);
    /* Refused at load, with the reason. */
    node_init(&f, bytes, n, "hailo", &in, &out);
    assert_int_not_equal(k->prepare(&f.c), AIM_OK);
    assert_non_null(strstr(aim_last_error(), "target"));
    put32(bytes, 4, 2);
    node_init(&f, bytes, n, "cpu-int8", &in, &out);
    assert_int_equal(k->prepare(&f.c), AIM_ERR_UNSUPPORTED);
    assert_non_null(strstr(aim_last_error(), "program format version 2, this aim reads version 1"));
    assert_non_null(strstr(aim_last_error(), "node 'prog'"));
    put32(bytes, 4, 1);
    aim_program_free(p);
    p = NULL;
    free_outputs(r);
    free(xin);
    free(bytes);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vs_float),
        cmocka_unit_test(test_conv_vs_float_weights),
        cmocka_unit_test(test_exec_vs_reference),
        cmocka_unit_test(test_exec_fallbacks),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_header_refusals),
        cmocka_unit_test(test_content_refusals),
        cmocka_unit_test(test_validate_refusals),
        cmocka_unit_test(test_check_runnable),
        cmocka_unit_test(test_onnx_kernel),
        cmocka_unit_test(test_exec_concurrent),
        cmocka_unit_test(test_exec_conv_shapes),
        cmocka_unit_test(test_conv_float_output),
        cmocka_unit_test(test_float_output_conv_only),
        cmocka_unit_test(test_conv_float_output_onednn),
        cmocka_unit_test(test_slice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
