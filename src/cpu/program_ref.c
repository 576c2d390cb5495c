/*
 * program_ref.c: portable reference execution of a compiled int8 program: the oracle the
 * oneDNN executor is tested against, and its fallback for ops oneDNN cannot do exactly.
 *
 * Arithmetic rules (the same as ONNX QLinearConv / QuantizeLinear):
 *   - conv accumulates exactly in int32: sum (x - zx) * w + bias; padding contributes nothing
 *     (it stands for real 0, i.e. x = zx);
 *   - requantization is in float: u = acc * ((sx * sw[c]) / sy), q = saturate(rne(u) + zy), with
 *     round-half-to-even (nearbyintf in the default rounding mode);
 *   - a residual r is dequantized and added before the activation: u += (sr / sy) * (r - zr);
 *   - a conv whose output tensor is float32 (a program output) skips the requantization: it
 *     writes f(acc * sx * sw[c] + sr * (r - zr)), i.e. the rules above with sy = 1, unrounded;
 *   - the activation is applied in float to the dequantized value: u = f(u * sy) / sy. For
 *     ReLU, LeakyReLU and Clip that is computed directly in output units (f(u), clip bounds
 *     divided by sy), which is the same function without the extra roundings, and is what the
 *     oneDNN post-ops compute too.
 * Tensors are plain row-major (NCHW) here.
 */
#include "cpu/program.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

float aim_program_conv_scale(const aim_program *p, const aim_prog_op *op, int64_t o) {
    const aim_prog_tensor *x = &p->tensors[op->in[0]], *y = &p->tensors[op->out];
    if (y->dtype == AIM_DTYPE_FLOAT) return x->scale * op->w_scale[o]; /* real units */
    return (x->scale * op->w_scale[o]) / y->scale;
}

/* The unit of a conv's output: its scale, or 1 for a float32 output (real values). */
static float out_unit(const aim_prog_tensor *y) {
    return y->dtype == AIM_DTYPE_FLOAT ? 1.0f : y->scale;
}

/* ---- Element helpers ----------------------------------------------------------------------- */

static inline int32_t qget(const void *buf, int dtype, size_t i) {
    return dtype == AIM_DTYPE_INT8 ? ((const int8_t *)buf)[i] : ((const uint8_t *)buf)[i];
}

/* saturate(rne(u) + zp) into element i; NaN saturates to the low end. */
static inline void qput(void *buf, int dtype, size_t i, float u, int32_t zp) {
    int32_t lo, hi;
    aim_program_qrange(dtype, &lo, &hi);
    float v = nearbyintf(u) + (float)zp; /* exact: |u| beyond 2^24 saturates anyway */
    int32_t q = !(v > (float)lo) ? lo : v > (float)hi ? hi : (int32_t)v;
    if (dtype == AIM_DTYPE_INT8)
        ((int8_t *)buf)[i] = (int8_t)q;
    else
        ((uint8_t *)buf)[i] = (uint8_t)q;
}

static float sigmoid(float x) {
    return 1.0f / (1.0f + expf(-x));
}

/* The op's activation on u (in output units, output scale sy). */
static float act_units(const aim_prog_op *op, float u, float sy) {
    switch (op->act) {
    case AIM_PROG_ACT_NONE: return u;
    case AIM_PROG_ACT_RELU: return u > 0 ? u : 0;
    case AIM_PROG_ACT_LEAKY_RELU: return u > 0 ? u : op->act_alpha * u;
    case AIM_PROG_ACT_CLIP: return fminf(fmaxf(u, op->act_alpha / sy), op->act_beta / sy);
    default: break;
    }
    float x = u * sy, f;
    if (op->act == AIM_PROG_ACT_SIGMOID)
        f = sigmoid(x);
    else if (op->act == AIM_PROG_ACT_SILU)
        f = x * sigmoid(x);
    else
        f = x * fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f; /* HardSwish */
    return f / sy;
}

/* ---- Ops ----------------------------------------------------------------------------------- */

static void run_quantize(const aim_prog_tensor *y, const float *in, void *out) {
    size_t n = aim_program_tensor_count(y);
    for (size_t i = 0; i < n; i++)
        qput(out, y->dtype, i, in[i] / y->scale, y->zero_point);
}

static void run_dequantize(const aim_prog_tensor *x, const void *in, float *out) {
    size_t n = aim_program_tensor_count(x);
    for (size_t i = 0; i < n; i++)
        out[i] = (float)(qget(in, x->dtype, i) - x->zero_point) * x->scale;
}

typedef struct {
    const aim_program *p;
    const aim_prog_op *op;
    const aim_prog_tensor *x, *y;
    const int16_t *xs; /* x - zx */
    void *out;
    const void *res; /* residual buffer or NULL */
} conv_job;

/* One output channel of one image: exact int32 accumulation, then requantization. */
static void conv_channel(const conv_job *j, int64_t n, int64_t o) {
    const aim_prog_op *op = j->op;
    int64_t C = j->x->dims[1], H = j->x->dims[2], W = j->x->dims[3];
    int64_t O = j->y->dims[1], OH = j->y->dims[2], OW = j->y->dims[3];
    int64_t cg = C / op->group, g = o / (O / op->group), KH = op->kernel[0], KW = op->kernel[1];
    const int8_t *w = op->weights + (size_t)(o * cg * KH * KW);
    float m = aim_program_conv_scale(j->p, op, o), sy = out_unit(j->y);
    const aim_prog_tensor *r = op->residual >= 0 ? &j->p->tensors[op->residual] : NULL;
    float rk = r ? r->scale / sy : 0;
    for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
            int32_t acc = op->bias ? op->bias[o] : 0;
            for (int64_t c = 0; c < cg; c++) {
                const int16_t *xc = j->xs + ((n * C + g * cg + c) * H) * W;
                for (int64_t kh = 0; kh < KH; kh++) {
                    int64_t ih = oh * op->strides[0] - op->pads[0] + kh * op->dilations[0];
                    if (ih < 0 || ih >= H) continue;
                    for (int64_t kw = 0; kw < KW; kw++) {
                        int64_t iw = ow * op->strides[1] - op->pads[1] + kw * op->dilations[1];
                        if (iw < 0 || iw >= W) continue;
                        acc += (int32_t)xc[ih * W + iw] * w[(c * KH + kh) * KW + kw];
                    }
                }
            }
            size_t at = (size_t)(((n * O + o) * OH + oh) * OW + ow);
            float u = (float)acc * m;
            if (r) u += rk * (float)(qget(j->res, r->dtype, at) - r->zero_point);
            if (j->y->dtype == AIM_DTYPE_FLOAT)
                ((float *)j->out)[at] = act_units(op, u, sy);
            else
                qput(j->out, j->y->dtype, at, act_units(op, u, sy), j->y->zero_point);
        }
}

static aim_status run_conv(const aim_program *p, const aim_prog_op *op, void *const *bufs) {
    conv_job j = {p,
                  op,
                  &p->tensors[op->in[0]],
                  &p->tensors[op->out],
                  NULL,
                  bufs[op->out],
                  op->residual >= 0 ? bufs[op->residual] : NULL};
    size_t nx = aim_program_tensor_count(j.x);
    int16_t *xs = malloc(nx * sizeof *xs);
    if (!xs) return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nx; i++)
        xs[i] = (int16_t)(qget(bufs[op->in[0]], j.x->dtype, i) - j.x->zero_point);
    j.xs = xs;
    for (int64_t n = 0; n < j.y->dims[0]; n++)
        for (int64_t o = 0; o < j.y->dims[1]; o++)
            conv_channel(&j, n, o);
    free(xs);
    return AIM_OK;
}

/* One pooling window: max of (x - zx), or the sum of (x - zx) over the window divided by the
 * element count (padding excluded unless count_include_pad; padding stands for real 0). */
static float pool_window(const aim_prog_op *op, const aim_prog_tensor *x, const void *in,
                         const int64_t *base, int64_t oh, int64_t ow) {
    int64_t H = x->dims[2], W = x->dims[3];
    int32_t best = INT32_MIN;
    int64_t sum = 0, count = 0; /* a global pool may cover more than 2^31 / 255 elements */
    for (int64_t kh = 0; kh < op->kernel[0]; kh++) {
        int64_t ih = oh * op->strides[0] - op->pads[0] + kh;
        for (int64_t kw = 0; kw < op->kernel[1]; kw++) {
            int64_t iw = ow * op->strides[1] - op->pads[1] + kw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            int32_t v = qget(in, x->dtype, (size_t)(*base + ih * W + iw)) - x->zero_point;
            best = v > best ? v : best;
            sum += v;
            count++;
        }
    }
    if (op->kind == AIM_PROG_MAXPOOL) return (float)best;
    if (op->count_include_pad) count = op->kernel[0] * op->kernel[1];
    return (float)sum / (float)count;
}

static void run_pool(const aim_program *p, const aim_prog_op *op, void *const *bufs) {
    const aim_prog_tensor *x = &p->tensors[op->in[0]], *y = &p->tensors[op->out];
    float r = x->scale / y->scale;
    size_t at = 0;
    for (int64_t nc = 0; nc < y->dims[0] * y->dims[1]; nc++) {
        int64_t base = nc * x->dims[2] * x->dims[3];
        for (int64_t oh = 0; oh < y->dims[2]; oh++)
            for (int64_t ow = 0; ow < y->dims[3]; ow++, at++) {
                float u = pool_window(op, x, bufs[op->in[0]], &base, oh, ow);
                qput(bufs[op->out], y->dtype, at, u * r, y->zero_point);
            }
    }
}

/* ADD, MUL and ACTIVATION: dequantize, combine in float, activation, requantize. */
static void run_elementwise(const aim_program *p, const aim_prog_op *op, void *const *bufs) {
    const aim_prog_tensor *a = &p->tensors[op->in[0]], *y = &p->tensors[op->out];
    const aim_prog_tensor *b = op->n_in > 1 ? &p->tensors[op->in[1]] : a;
    const void *ab = bufs[op->in[0]], *bb = bufs[op->n_in > 1 ? op->in[1] : op->in[0]];
    size_t n = aim_program_tensor_count(y);
    for (size_t i = 0; i < n; i++) {
        float va = (float)(qget(ab, a->dtype, i) - a->zero_point) * a->scale;
        float vb = (float)(qget(bb, b->dtype, i) - b->zero_point) * b->scale;
        float real = op->kind == AIM_PROG_ADD ? va + vb : op->kind == AIM_PROG_MUL ? va * vb : va;
        qput(bufs[op->out], y->dtype, i, act_units(op, real / y->scale, y->scale), y->zero_point);
    }
}

/* Concat: each input requantized to the output's parameters (a copy when they agree). */
static void run_concat(const aim_program *p, const aim_prog_op *op, void *const *bufs) {
    const aim_prog_tensor *y = &p->tensors[op->out];
    int64_t outer = 1, inner = 1, axis = op->axis, offset = 0;
    for (int64_t d = 0; d < axis; d++)
        outer *= y->dims[d];
    for (int64_t d = axis + 1; d < y->rank; d++)
        inner *= y->dims[d];
    for (int i = 0; i < op->n_in; i++) {
        const aim_prog_tensor *x = &p->tensors[op->in[i]];
        int64_t len = x->dims[axis] * inner;
        float r = x->scale / y->scale;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t k = 0; k < len; k++) {
                int32_t v = qget(bufs[op->in[i]], x->dtype, (size_t)(o * len + k));
                size_t at = (size_t)(o * y->dims[axis] * inner + offset + k);
                qput(bufs[op->out], y->dtype, at, (float)(v - x->zero_point) * r, y->zero_point);
            }
        offset += len;
    }
}

/* SLICE: out[o][k] = in[o][start * inner + k] around the axis, requantized. */
static void run_slice(const aim_program *p, const aim_prog_op *op, void *const *bufs) {
    const aim_prog_tensor *x = &p->tensors[op->in[0]], *y = &p->tensors[op->out];
    int64_t outer = 1, inner = 1, axis = op->axis;
    for (int64_t d = 0; d < axis; d++)
        outer *= y->dims[d];
    for (int64_t d = axis + 1; d < y->rank; d++)
        inner *= y->dims[d];
    int64_t len = y->dims[axis] * inner, from = op->pads[0] * inner;
    float r = x->scale / y->scale;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < len; k++) {
            int32_t v =
                qget(bufs[op->in[0]], x->dtype, (size_t)(o * x->dims[axis] * inner + from + k));
            qput(bufs[op->out], y->dtype, (size_t)(o * len + k), (float)(v - x->zero_point) * r,
                 y->zero_point);
        }
}

/* Nearest resize by integer factors: out[h][w] = in[h / f][w / f] (ONNX nearest with
 * half_pixel or asymmetric coordinates gives the same for integer factors). */
static void run_resize(const aim_program *p, const aim_prog_op *op, void *const *bufs) {
    const aim_prog_tensor *x = &p->tensors[op->in[0]], *y = &p->tensors[op->out];
    const uint8_t *in = bufs[op->in[0]];
    uint8_t *out = bufs[op->out];
    int64_t H = x->dims[2], W = x->dims[3], OH = y->dims[2], OW = y->dims[3];
    for (int64_t nc = 0; nc < y->dims[0] * y->dims[1]; nc++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++)
                out[(nc * OH + oh) * OW + ow] =
                    in[(nc * H + oh / op->strides[0]) * W + ow / op->strides[1]];
}

aim_status aim_program_ref_op(const aim_program *p, const aim_prog_op *op, void *const *bufs) {
    const aim_prog_tensor *x = &p->tensors[op->in[0]], *y = &p->tensors[op->out];
    switch (op->kind) {
    case AIM_PROG_QUANTIZE: run_quantize(y, bufs[op->in[0]], bufs[op->out]); break;
    case AIM_PROG_DEQUANTIZE: run_dequantize(x, bufs[op->in[0]], bufs[op->out]); break;
    case AIM_PROG_CONV: return run_conv(p, op, bufs);
    case AIM_PROG_MAXPOOL:
    case AIM_PROG_AVGPOOL: run_pool(p, op, bufs); break;
    case AIM_PROG_ADD:
    case AIM_PROG_MUL:
    case AIM_PROG_ACTIVATION: run_elementwise(p, op, bufs); break;
    case AIM_PROG_CONCAT: run_concat(p, op, bufs); break;
    case AIM_PROG_RESIZE: run_resize(p, op, bufs); break;
    case AIM_PROG_SLICE: run_slice(p, op, bufs); break;
    default: return aim_error(AIM_ERR_INTERNAL, "program: op kind %d", (int)op->kind);
    }
    return AIM_OK;
}

/* ---- Whole program ------------------------------------------------------------------------- */

static size_t tensor_bytes(const aim_prog_tensor *t) {
    return aim_program_tensor_count(t) * (t->dtype == AIM_DTYPE_FLOAT ? 4 : 1);
}

/* Points bufs at the caller's inputs and outputs and allocates the rest (one block). */
static void *bind_buffers(const aim_program *p, const float *const *inputs, float *const *outputs,
                          void **bufs) {
    size_t total = 0;
    for (size_t i = 0; i < p->n_tensors; i++)
        total += (tensor_bytes(&p->tensors[i]) + 63) / 64 * 64;
    uint8_t *block = malloc(total ? total : 1);
    if (!block) return NULL;
    size_t at = 0;
    for (size_t i = 0; i < p->n_tensors; i++) {
        bufs[i] = block + at;
        at += (tensor_bytes(&p->tensors[i]) + 63) / 64 * 64;
    }
    for (size_t i = 0; i < p->n_inputs; i++)
        bufs[p->inputs[i]] = (void *)inputs[i];
    for (size_t i = 0; i < p->n_outputs; i++) {
        for (size_t k = 0; k < p->n_inputs; k++) /* an output that is also an input: a copy */
            if (p->inputs[k] == p->outputs[i] && inputs[k] != outputs[i])
                memcpy(outputs[i], inputs[k], tensor_bytes(&p->tensors[p->outputs[i]]));
        bufs[p->outputs[i]] = outputs[i];
    }
    return block;
}

aim_status aim_program_run_reference(const aim_program *p, const float *const *inputs,
                                     float *const *outputs) {
    aim_status st = aim_program_validate(p);
    if (st != AIM_OK) return st;
    void **bufs = calloc(p->n_tensors, sizeof *bufs);
    void *block = bufs ? bind_buffers(p, inputs, outputs, bufs) : NULL;
    if (!block) {
        free(bufs);
        return aim_error(AIM_ERR_NOMEM, "out of memory running a program");
    }
    for (size_t i = 0; i < p->n_ops && st == AIM_OK; i++)
        st = aim_program_ref_op(p, &p->ops[i], bufs);
    free(block);
    free(bufs);
    return st;
}
