/*
 * quant.c: reference kernels of the quant family (see families.h): QuantizeLinear,
 * DequantizeLinear, DynamicQuantizeLinear, MatMulInteger, QLinearMatMul, ConvInteger and
 * QLinearConv. Portable C: the correctness oracle every faster kernel (and aim's int8 compiler)
 * is compared with.
 *
 * Rounding follows the ONNX spec to the bit: the real value is computed in float32 exactly as
 * the spec's formula reads (x / scale, not x * (1 / scale)), rounded half to even (rintf under
 * the default rounding mode), offset by the zero point and saturated to the 8-bit range.
 * Integer products accumulate in 32 bits and wrap, as the spec allows.
 */
#include "ops/families.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Shared helpers ------------------------------------------------------------------------ */

#define POS_LIMIT ((int64_t)1 << 30) /* bound on strides, dilations and pads */

static bool is_q8(int dtype) {
    return dtype == AIM_DTYPE_UINT8 || dtype == AIM_DTYPE_INT8;
}

/* Saturates a rounded real value (zero point already added) to uint8/int8. Callers map a NaN
 * real value to 0 first (it then quantizes to the zero point); a NaN here stores 0. */
static void store_q8(aim_tensor *t, size_t i, double v) {
    double lo = t->dtype == AIM_DTYPE_INT8 ? -128 : 0, hi = t->dtype == AIM_DTYPE_INT8 ? 127 : 255;
    if (isnan(v)) v = 0;
    v = v < lo ? lo : v > hi ? hi : v;
    if (t->dtype == AIM_DTYPE_INT8)
        ((int8_t *)t->data)[i] = (int8_t)v;
    else
        ((uint8_t *)t->data)[i] = (uint8_t)v;
}

static float scale_at(const aim_tensor *t, size_t i) {
    return ((const float *)t->data)[i];
}

static int32_t zero_at(const aim_tensor *t, size_t i) {
    return t ? (int32_t)aim_tensor_get_i64(t, i) : 0;
}

static aim_status check_attr_type(const aim_op_ctx *c, const char *name, int type) {
    const Onnx__AttributeProto *a = aim_op_attr(c, name);
    if (a && (int)a->type != type)
        return aim_op_fail(c, AIM_ERR_PARSE, "attribute '%s' has the wrong type", name);
    return AIM_OK;
}

/* A scale: float32; when known, finite, and non-zero where the formula divides by it. */
static aim_status check_scale(const aim_op_ctx *c, const aim_tensor *s, const char *name,
                              bool divisor) {
    if (s->dtype != AIM_DTYPE_FLOAT)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "%s must be float32, not %s", name,
                           aim_dtype_name(s->dtype));
    if (!s->data) return AIM_OK;
    size_t n = aim_tensor_count(s);
    for (size_t i = 0; i < n; i++) {
        float v = scale_at(s, i);
        if (!isfinite(v) || (divisor && v == 0))
            return aim_op_fail(c, AIM_ERR_INVALID_ARG, "%s[%zu] = %g is not a usable scale", name,
                               i, (double)v);
    }
    return AIM_OK;
}

/* A zero point (optional): the given element type and as many elements as its scale. */
static aim_status check_zero(const aim_op_ctx *c, const aim_tensor *z, int dtype, size_t count,
                             const char *name) {
    if (!z) return AIM_OK;
    if (z->dtype != dtype)
        return aim_op_fail(c, AIM_ERR_PARSE, "%s is %s, expected %s", name,
                           aim_dtype_name(z->dtype), aim_dtype_name(dtype));
    if (aim_tensor_count(z) != count)
        return aim_op_fail(c, AIM_ERR_PARSE, "%s has %zu elements, its scale %zu", name,
                           aim_tensor_count(z), count);
    return AIM_OK;
}

/* Per-tensor parameter: one element, rank 0 or 1. */
static aim_status check_per_tensor(const aim_op_ctx *c, const aim_tensor *t, const char *name) {
    if (t && (t->rank > 1 || aim_tensor_count(t) != 1))
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "%s must be a single value", name);
    return AIM_OK;
}

/* Parameter that is per tensor or has `len` elements (one per row/column/channel), laid out as
 * a vector: rank 1, or a shape whose only non-1 dimension is `len`. */
static aim_status check_per_vector(const aim_op_ctx *c, const aim_tensor *t, int64_t len,
                                   const char *name) {
    if (!t) return AIM_OK;
    size_t n = aim_tensor_count(t);
    bool vector = true;
    for (int d = 0; d < t->rank; d++)
        if (t->dims[d] != 1 && t->dims[d] != len) vector = false;
    if (n == 1 || (vector && n == (size_t)len)) return AIM_OK;
    return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "%s must have 1 or %lld elements", name,
                       (long long)len);
}

/* ---- QuantizeLinear / DequantizeLinear ----------------------------------------------------- */

/* Where element i of x finds its scale: (i / inner) % channels. */
typedef struct {
    size_t channels, inner;
} qaxis;

static size_t qaxis_channel(const qaxis *q, size_t i) {
    return (i / q->inner) % q->channels;
}

/* Per-tensor (one scale) or, from opset 13, per-axis (a 1-D scale along `axis`). */
static aim_status qaxis_make(const aim_op_ctx *c, const aim_tensor *x, const aim_tensor *scale,
                             qaxis *q) {
    aim_status st = check_attr_type(c, "axis", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (st != AIM_OK) return st;
    q->channels = 1;
    q->inner = 1;
    if (scale->rank <= 1 && aim_tensor_count(scale) == 1) return AIM_OK;
    if (c->opset < 13 || scale->rank != 1)
        return aim_op_fail(c, AIM_ERR_PARSE, "scale must be a scalar%s",
                           c->opset < 13 ? " before opset 13" : " or a 1-D tensor");
    int axis;
    if ((st = aim_op_axis(c, aim_op_attr_int(c, "axis", 1), x->rank, &axis)) != AIM_OK) return st;
    if (x->rank == 0 || scale->dims[0] != x->dims[axis])
        return aim_op_fail(c, AIM_ERR_PARSE, "scale has %lld elements, axis %d of x has %lld",
                           (long long)scale->dims[0], axis,
                           (long long)(x->rank ? x->dims[axis] : 0));
    q->channels = (size_t)scale->dims[0];
    for (int d = axis + 1; d < x->rank; d++)
        q->inner *= (size_t)x->dims[d];
    if (q->inner == 0) q->inner = 1; /* x is empty: no element asks */
    return AIM_OK;
}

static aim_status quantize_check(const aim_op_ctx *c, qaxis *q) {
    aim_status st = aim_op_check_inputs(c, 2, 3);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0], *scale = c->in[1], *zero = aim_op_input(c, 2);
    if (x->dtype != AIM_DTYPE_FLOAT && x->dtype != AIM_DTYPE_INT32)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "x is %s, expected float32 or int32",
                           aim_dtype_name(x->dtype));
    if ((st = check_scale(c, scale, "y_scale", true)) != AIM_OK) return st;
    if (zero && !is_q8(zero->dtype))
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "y_zero_point is %s, expected uint8 or int8",
                           aim_dtype_name(zero->dtype));
    if (zero && (st = check_zero(c, zero, zero->dtype, aim_tensor_count(scale), "y_zero_point")))
        return st;
    return qaxis_make(c, x, scale, q);
}

static aim_status quantize_infer(aim_op_ctx *c) {
    qaxis q;
    aim_status st = quantize_check(c, &q);
    if (st != AIM_OK) return st;
    const aim_tensor *zero = aim_op_input(c, 2);
    int dtype = zero ? zero->dtype : AIM_DTYPE_UINT8;
    return aim_op_set_output(c, 0, dtype, c->in[0]->rank, c->in[0]->dims);
}

static aim_status quantize_run(aim_op_ctx *c) {
    qaxis q;
    aim_status st = quantize_check(c, &q);
    if (st != AIM_OK || !c->out[0]) return st;
    const aim_tensor *x = c->in[0], *scale = c->in[1], *zero = aim_op_input(c, 2);
    size_t n = aim_tensor_count(x);
    for (size_t i = 0; i < n; i++) {
        size_t ch = qaxis_channel(&q, i);
        float s = scale_at(scale, ch);
        /* float32 data divides in float32 (numpy's x / y_scale); int32 data promotes to double */
        double r = x->dtype == AIM_DTYPE_FLOAT ? rintf(((const float *)x->data)[i] / s)
                                               : rint((double)((const int32_t *)x->data)[i] / s);
        store_q8(c->out[0], i, (isnan(r) ? 0 : r) + zero_at(zero, ch));
    }
    return AIM_OK;
}

static aim_status dequantize_check(const aim_op_ctx *c, qaxis *q) {
    aim_status st = aim_op_check_inputs(c, 2, 3);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0], *scale = c->in[1], *zero = aim_op_input(c, 2);
    if (!is_q8(x->dtype) && x->dtype != AIM_DTYPE_INT32)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "x is %s, expected uint8, int8 or int32",
                           aim_dtype_name(x->dtype));
    if ((st = check_scale(c, scale, "x_scale", false)) != AIM_OK) return st;
    if ((st = check_zero(c, zero, x->dtype, aim_tensor_count(scale), "x_zero_point"))) return st;
    return qaxis_make(c, x, scale, q);
}

static aim_status dequantize_infer(aim_op_ctx *c) {
    qaxis q;
    aim_status st = dequantize_check(c, &q);
    if (st != AIM_OK) return st;
    return aim_op_set_output(c, 0, AIM_DTYPE_FLOAT, c->in[0]->rank, c->in[0]->dims);
}

static aim_status dequantize_run(aim_op_ctx *c) {
    qaxis q;
    aim_status st = dequantize_check(c, &q);
    if (st != AIM_OK || !c->out[0]) return st;
    const aim_tensor *x = c->in[0], *scale = c->in[1], *zero = aim_op_input(c, 2);
    float *y = c->out[0]->data;
    size_t n = aim_tensor_count(x);
    for (size_t i = 0; i < n; i++) {
        size_t ch = qaxis_channel(&q, i);
        /* (float(x) - float(zero)) * scale, as the spec's reference computes it */
        float v = (float)aim_tensor_get_i64(x, i) - (float)zero_at(zero, ch);
        y[i] = v * scale_at(scale, ch);
    }
    return AIM_OK;
}

/* ---- DynamicQuantizeLinear ----------------------------------------------------------------- */

static aim_status dynamic_quantize_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 1, 1);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if (x->dtype != AIM_DTYPE_FLOAT)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "x is %s, expected float32",
                           aim_dtype_name(x->dtype));
    if ((st = aim_op_set_output(c, 0, AIM_DTYPE_UINT8, x->rank, x->dims)) != AIM_OK) return st;
    if ((st = aim_op_set_output(c, 1, AIM_DTYPE_FLOAT, 0, NULL)) != AIM_OK) return st;
    return aim_op_set_output(c, 2, AIM_DTYPE_UINT8, 0, NULL);
}

/* The spec's formulas for uint8: the range always includes 0, scale = range / 255,
 * zero_point = saturate(round(-min / scale)), y = saturate(round(x / scale) + zero_point). */
static aim_status dynamic_quantize_run(aim_op_ctx *c) {
    const aim_tensor *x = c->in[0];
    const float *xv = x->data;
    size_t n = aim_tensor_count(x);
    float lo = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
        lo = xv[i] < lo ? xv[i] : lo;
        hi = xv[i] > hi ? xv[i] : hi;
    }
    float scale = (hi - lo) / 255.0f;
    if (!isfinite(scale))
        return aim_op_fail(c, AIM_ERR_INVALID_ARG, "x holds infinite values: no scale fits");
    double zero = 0;
    if (scale != 0) {
        zero = rintf((0 - lo) / scale);
        zero = zero < 0 ? 0 : zero > 255 ? 255 : zero;
    }
    /* An all-zero x has no range: scale 0, zero point 0 and y all zero represent it exactly. */
    if (c->out[0])
        for (size_t i = 0; i < n; i++) {
            double r = scale == 0 ? 0 : rintf(xv[i] / scale);
            store_q8(c->out[0], i, (isnan(r) ? 0 : r) + zero); /* NaN quantizes as 0 */
        }
    if (c->n_out > 1 && c->out[1]) *(float *)c->out[1]->data = scale;
    if (c->n_out > 2 && c->out[2]) *(uint8_t *)c->out[2]->data = (uint8_t)zero;
    return AIM_OK;
}

/* ---- Integer matrix product (MatMulInteger, QLinearMatMul) --------------------------------- */

/* numpy.matmul shapes: [..., m, k] x [..., k, n] with broadcast batch dimensions; a 1-D a is a
 * row [1, k] and a 1-D b a column [k, 1], their unit dimension dropped from the output. */
typedef struct {
    int64_t m, k, n;
    int batch_rank;
    int64_t batch[AIM_MAX_RANK];
    int64_t a_stride[AIM_MAX_RANK], b_stride[AIM_MAX_RANK]; /* in matrices; 0 if broadcast */
    int out_rank;
    int64_t out_dims[AIM_MAX_RANK];
} mm_shape;

/* Batch strides (in matrices) of an operand with `rank` batch dims against the output batch. */
static void mm_batch_strides(const int64_t *dims, int rank, const mm_shape *s, int64_t *stride) {
    int64_t step = 1;
    for (int i = s->batch_rank - 1; i >= 0; i--) {
        int j = i - (s->batch_rank - rank);
        int64_t d = j >= 0 ? dims[j] : 1;
        stride[i] = d == 1 ? 0 : step;
        step *= d;
    }
}

static aim_status mm_shape_make(const aim_op_ctx *c, const aim_tensor *a, const aim_tensor *b,
                                mm_shape *s) {
    memset(s, 0, sizeof *s);
    if (a->rank < 1 || b->rank < 1)
        return aim_op_fail(c, AIM_ERR_PARSE, "matrix product of a rank-0 tensor");
    int ab = a->rank > 1 ? a->rank - 2 : 0, bb = b->rank > 1 ? b->rank - 2 : 0;
    s->m = a->rank > 1 ? a->dims[a->rank - 2] : 1;
    s->k = a->dims[a->rank - 1];
    s->n = b->rank > 1 ? b->dims[b->rank - 1] : 1;
    int64_t kb = b->rank > 1 ? b->dims[b->rank - 2] : b->dims[0];
    if (kb != s->k)
        return aim_op_fail(c, AIM_ERR_PARSE, "inner dimensions differ: %lld and %lld",
                           (long long)s->k, (long long)kb);
    s->batch_rank = ab > bb ? ab : bb;
    for (int i = 0; i < s->batch_rank; i++) {
        int ia = i - (s->batch_rank - ab), ib = i - (s->batch_rank - bb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return aim_op_fail(c, AIM_ERR_PARSE, "batch dimensions %lld and %lld differ",
                               (long long)da, (long long)db);
        s->batch[i] = da == 1 ? db : da;
        s->out_dims[s->out_rank++] = s->batch[i];
    }
    mm_batch_strides(a->dims, ab, s, s->a_stride);
    mm_batch_strides(b->dims, bb, s, s->b_stride);
    if (a->rank > 1) s->out_dims[s->out_rank++] = s->m;
    if (b->rank > 1) s->out_dims[s->out_rank++] = s->n;
    return AIM_OK;
}

/* y = a x b over int32 (zero points already taken off), wrapping in 32 bits. */
static void mm_int32(const mm_shape *s, const int32_t *a, const int32_t *b, int32_t *y) {
    size_t mats = 1;
    for (int i = 0; i < s->batch_rank; i++)
        mats *= (size_t)s->batch[i];
    int64_t idx[AIM_MAX_RANK] = {0};
    size_t a_mat = 0, b_mat = 0, m = (size_t)s->m, k = (size_t)s->k, n = (size_t)s->n;
    for (size_t t = 0; t < mats; t++) {
        const int32_t *am = a + a_mat * m * k, *bm = b + b_mat * k * n;
        int32_t *ym = y + t * m * n;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                uint32_t acc = 0;
                for (size_t p = 0; p < k; p++)
                    acc += (uint32_t)(am[i * k + p] * bm[p * n + j]);
                ym[i * n + j] = (int32_t)acc;
            }
        for (int d = s->batch_rank - 1; d >= 0; d--) { /* next batch index */
            a_mat += (size_t)s->a_stride[d];
            b_mat += (size_t)s->b_stride[d];
            if (++idx[d] < s->batch[d]) break;
            a_mat -= (size_t)(s->a_stride[d] * s->batch[d]);
            b_mat -= (size_t)(s->b_stride[d] * s->batch[d]);
            idx[d] = 0;
        }
    }
}

/* int32 copy of t minus its zero point; element i uses zero point (i / div) % mod. */
static int32_t *widen(const aim_tensor *t, const aim_tensor *zero, size_t div, size_t mod) {
    size_t n = aim_tensor_count(t);
    int32_t *w = malloc((n ? n : 1) * sizeof *w);
    if (!w) return NULL;
    bool per_tensor = !zero || aim_tensor_count(zero) == 1;
    for (size_t i = 0; i < n; i++) {
        int32_t z = zero_at(zero, per_tensor ? 0 : (i / div) % mod);
        w[i] = (int32_t)aim_tensor_get_i64(t, i) - z;
    }
    return w;
}

/* Computes the int32 product of the widened operands into acc (m x n per batch matrix). */
static aim_status mm_widened(const aim_op_ctx *c, const mm_shape *s, const aim_tensor *a,
                             const aim_tensor *a_zero, const aim_tensor *b,
                             const aim_tensor *b_zero, int32_t *acc) {
    /* a's zero point is per row, b's per column */
    int32_t *aw = widen(a, a_zero, (size_t)s->k, (size_t)s->m);
    int32_t *bw = widen(b, b_zero, 1, (size_t)s->n);
    if (aw && bw) mm_int32(s, aw, bw, acc);
    free(aw);
    free(bw);
    return aw && bw ? AIM_OK : aim_op_fail(c, AIM_ERR_NOMEM, "out of memory");
}

static aim_status matmul_integer_check(const aim_op_ctx *c, mm_shape *s) {
    aim_status st = aim_op_check_inputs(c, 2, 4);
    if (st != AIM_OK) return st;
    const aim_tensor *a = c->in[0], *b = c->in[1];
    const aim_tensor *az = aim_op_input(c, 2), *bz = aim_op_input(c, 3);
    if (!is_q8(a->dtype) || !is_q8(b->dtype))
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "inputs are %s and %s, expected uint8/int8",
                           aim_dtype_name(a->dtype), aim_dtype_name(b->dtype));
    if ((st = mm_shape_make(c, a, b, s)) != AIM_OK) return st;
    if (az && (st = check_zero(c, az, a->dtype, aim_tensor_count(az), "a_zero_point"))) return st;
    if (bz && (st = check_zero(c, bz, b->dtype, aim_tensor_count(bz), "b_zero_point"))) return st;
    if ((st = check_per_vector(c, az, s->m, "a_zero_point")) != AIM_OK) return st;
    return check_per_vector(c, bz, s->n, "b_zero_point");
}

static aim_status matmul_integer_infer(aim_op_ctx *c) {
    mm_shape s;
    aim_status st = matmul_integer_check(c, &s);
    if (st != AIM_OK) return st;
    return aim_op_set_output(c, 0, AIM_DTYPE_INT32, s.out_rank, s.out_dims);
}

static aim_status matmul_integer_run(aim_op_ctx *c) {
    mm_shape s;
    aim_status st = matmul_integer_check(c, &s);
    if (st != AIM_OK || !c->out[0]) return st;
    return mm_widened(c, &s, c->in[0], aim_op_input(c, 2), c->in[1], aim_op_input(c, 3),
                      c->out[0]->data);
}

/* Inputs: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point. */
static aim_status qlinear_matmul_check(const aim_op_ctx *c, mm_shape *s) {
    aim_status st = aim_op_check_inputs(c, 8, 8);
    if (st != AIM_OK) return st;
    const aim_tensor *const *in = c->in;
    if (!is_q8(in[0]->dtype) || !is_q8(in[3]->dtype) || !is_q8(in[7]->dtype))
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "a, b and y_zero_point must be uint8/int8");
    if ((st = mm_shape_make(c, in[0], in[3], s)) != AIM_OK) return st;
    if ((st = check_scale(c, in[1], "a_scale", false)) != AIM_OK ||
        (st = check_scale(c, in[4], "b_scale", false)) != AIM_OK ||
        (st = check_scale(c, in[6], "y_scale", true)) != AIM_OK ||
        (st = check_per_vector(c, in[1], s->m, "a_scale")) != AIM_OK ||
        (st = check_per_vector(c, in[4], s->n, "b_scale")) != AIM_OK ||
        (st = check_zero(c, in[2], in[0]->dtype, aim_tensor_count(in[1]), "a_zero_point")) ||
        (st = check_zero(c, in[5], in[3]->dtype, aim_tensor_count(in[4]), "b_zero_point")) ||
        (st = check_zero(c, in[7], in[7]->dtype, aim_tensor_count(in[6]), "y_zero_point")))
        return st;
    return check_per_tensor(c, in[6], "y_scale");
}

static aim_status qlinear_matmul_infer(aim_op_ctx *c) {
    mm_shape s;
    aim_status st = qlinear_matmul_check(c, &s);
    if (st != AIM_OK) return st;
    return aim_op_set_output(c, 0, c->in[7]->dtype, s.out_rank, s.out_dims);
}

/* Requantizes an int32 accumulator: saturate(round(acc * (in_scale / y_scale)) + y_zero),
 * the multiplier formed in float32 as the spec's reference kernels do. */
static double requantize(int32_t acc, float in_scale, float y_scale, int32_t y_zero) {
    float multiplier = in_scale / y_scale;
    return (double)rintf((float)acc * multiplier) + y_zero;
}

static aim_status qlinear_matmul_run(aim_op_ctx *c) {
    mm_shape s;
    aim_status st = qlinear_matmul_check(c, &s);
    if (st != AIM_OK || !c->out[0]) return st;
    const aim_tensor *const *in = c->in;
    aim_tensor *y = c->out[0];
    size_t n_out = aim_tensor_count(y);
    int32_t *acc = malloc((n_out ? n_out : 1) * sizeof *acc);
    if (!acc) return aim_op_fail(c, AIM_ERR_NOMEM, "out of memory");
    if ((st = mm_widened(c, &s, in[0], in[2], in[3], in[5], acc)) == AIM_OK) {
        bool a_row = aim_tensor_count(in[1]) > 1, b_col = aim_tensor_count(in[4]) > 1;
        for (size_t i = 0; i < n_out; i++) {
            size_t col = i % (size_t)s.n, row = (i / (size_t)s.n) % (size_t)s.m;
            float in_scale = scale_at(in[1], a_row ? row : 0) * scale_at(in[4], b_col ? col : 0);
            store_q8(y, i, requantize(acc[i], in_scale, scale_at(in[6], 0), zero_at(in[7], 0)));
        }
    }
    free(acc);
    return st;
}

/* ---- Integer convolution (ConvInteger, QLinearConv) ---------------------------------------- */

typedef struct {
    int spatial; /* number of spatial dimensions */
    int64_t batch, in_ch, out_ch, group;
    int64_t in[AIM_MAX_RANK], kernel[AIM_MAX_RANK], out[AIM_MAX_RANK];
    int64_t stride[AIM_MAX_RANK], dilation[AIM_MAX_RANK], pad[AIM_MAX_RANK]; /* pad: leading */
} conv_geom;

/* Reads an ints attribute of exactly `len` values in [lo, hi] into out, or `def` everywhere. */
static aim_status conv_ints(const aim_op_ctx *c, const char *name, size_t len, int64_t def,
                            int64_t lo, int64_t hi, int64_t *out) {
    aim_status st = check_attr_type(c, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    if (st != AIM_OK) return st;
    size_t n;
    const int64_t *v = aim_op_attr_ints(c, name, &n);
    if (!aim_op_attr(c, name)) n = 0;
    if (n && n != len)
        return aim_op_fail(c, AIM_ERR_PARSE, "'%s' has %zu values, expected %zu", name, n, len);
    for (size_t i = 0; i < len; i++) {
        out[i] = n ? v[i] : def;
        if (out[i] < lo || out[i] > hi)
            return aim_op_fail(c, AIM_ERR_PARSE, "'%s' value %lld is outside %lld..%lld", name,
                               (long long)out[i], (long long)lo, (long long)hi);
    }
    return AIM_OK;
}

/* Output size and leading pad of one spatial dimension under auto_pad. */
static aim_status conv_axis(const aim_op_ctx *c, const char *auto_pad, conv_geom *g, int d,
                            const int64_t *pads) {
    int64_t in = g->in[d], stride = g->stride[d], extent;
    if (in >= ((int64_t)1 << 60)) return aim_op_fail(c, AIM_ERR_LIMIT, "input is too large");
    if (__builtin_mul_overflow(g->kernel[d] - 1, g->dilation[d], &extent) || extent >= POS_LIMIT)
        return aim_op_fail(c, AIM_ERR_PARSE, "kernel extent overflows");
    extent += 1; /* dilated kernel size */
    int64_t begin = pads[d], end = pads[d + g->spatial];
    if (strcmp(auto_pad, "VALID") == 0) {
        begin = end = 0;
    } else if (strcmp(auto_pad, "SAME_UPPER") == 0 || strcmp(auto_pad, "SAME_LOWER") == 0) {
        int64_t out = (in + stride - 1) / stride;
        int64_t total = (out - 1) * stride + extent - in;
        total = total > 0 ? total : 0;
        begin = strcmp(auto_pad, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
        end = total - begin;
    } else if (strcmp(auto_pad, "NOTSET") != 0) {
        return aim_op_fail(c, AIM_ERR_PARSE, "auto_pad '%s' is not valid", auto_pad);
    }
    if (in + begin + end < extent)
        return aim_op_fail(c, AIM_ERR_PARSE, "kernel extent %lld exceeds padded input %lld",
                           (long long)extent, (long long)(in + begin + end));
    g->pad[d] = begin;
    g->out[d] = (in + begin + end - extent) / stride + 1;
    return AIM_OK;
}

static aim_status conv_geom_make(const aim_op_ctx *c, const aim_tensor *x, const aim_tensor *w,
                                 conv_geom *g) {
    memset(g, 0, sizeof *g);
    if (x->rank < 3 || w->rank != x->rank)
        return aim_op_fail(c, AIM_ERR_PARSE, "x (rank %d) and w (rank %d) must share a rank >= 3",
                           x->rank, w->rank);
    aim_status st = check_attr_type(c, "group", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (st != AIM_OK) return st;
    if ((st = check_attr_type(c, "auto_pad", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)))
        return st;
    g->spatial = x->rank - 2;
    g->batch = x->dims[0];
    g->in_ch = x->dims[1];
    g->out_ch = w->dims[0];
    g->group = aim_op_attr_int(c, "group", 1);
    if (g->group < 1 || g->in_ch % g->group || g->out_ch % g->group ||
        w->dims[1] * g->group != g->in_ch)
        return aim_op_fail(c, AIM_ERR_PARSE,
                           "group %lld does not fit %lld input channels, w dims[1] = %lld and "
                           "%lld output channels",
                           (long long)g->group, (long long)g->in_ch, (long long)w->dims[1],
                           (long long)g->out_ch);
    size_t ns = (size_t)g->spatial;
    int64_t kernel[AIM_MAX_RANK], pads[2 * AIM_MAX_RANK];
    if ((st = conv_ints(c, "kernel_shape", ns, 0, 0, INT64_MAX, kernel)) ||
        (st = conv_ints(c, "strides", ns, 1, 1, POS_LIMIT, g->stride)) ||
        (st = conv_ints(c, "dilations", ns, 1, 1, POS_LIMIT, g->dilation)) ||
        (st = conv_ints(c, "pads", 2 * ns, 0, 0, POS_LIMIT, pads)))
        return st;
    const char *auto_pad = aim_op_attr_string(c, "auto_pad", "NOTSET");
    for (int d = 0; d < g->spatial; d++) {
        g->in[d] = x->dims[d + 2];
        g->kernel[d] = w->dims[d + 2];
        if (aim_op_attr(c, "kernel_shape") && kernel[d] != g->kernel[d])
            return aim_op_fail(c, AIM_ERR_PARSE, "kernel_shape disagrees with w's shape");
        if (g->kernel[d] < 1) return aim_op_fail(c, AIM_ERR_PARSE, "w has an empty kernel");
        if ((st = conv_axis(c, auto_pad, g, d, pads)) != AIM_OK) return st;
    }
    return AIM_OK;
}

static void conv_out_dims(const conv_geom *g, int64_t *dims) {
    dims[0] = g->batch;
    dims[1] = g->out_ch;
    for (int d = 0; d < g->spatial; d++)
        dims[d + 2] = g->out[d];
}

static size_t dims_count(const int64_t *dims, int n) {
    size_t c = 1;
    for (int d = 0; d < n; d++)
        c *= (size_t)dims[d];
    return c;
}

/* Offset in one input channel of kernel tap `tap` for output position `pos` (both row-major
 * over the spatial dims), or -1 where the tap lands in the padding. */
static int64_t conv_tap_offset(const conv_geom *g, size_t pos, size_t tap) {
    int64_t offset = 0, scale = 1;
    for (int d = g->spatial - 1; d >= 0; d--) {
        int64_t o = (int64_t)(pos % (size_t)g->out[d]), k = (int64_t)(tap % (size_t)g->kernel[d]);
        pos /= (size_t)g->out[d];
        tap /= (size_t)g->kernel[d];
        int64_t at = o * g->stride[d] - g->pad[d] + k * g->dilation[d];
        if (at < 0 || at >= g->in[d]) return -1;
        offset += at * scale;
        scale *= g->in[d];
    }
    return offset;
}

/* y = conv(x, w) + bias over int32 (zero points already taken off), wrapping in 32 bits. */
static void conv_int32(const conv_geom *g, const int32_t *x, const int32_t *w, const int32_t *bias,
                       int32_t *y) {
    size_t in_sp = dims_count(g->in, g->spatial), out_sp = dims_count(g->out, g->spatial);
    size_t taps = dims_count(g->kernel, g->spatial);
    size_t cg = (size_t)(g->in_ch / g->group), mg = (size_t)(g->out_ch / g->group);
    for (size_t n = 0; n < (size_t)g->batch; n++)
        for (size_t m = 0; m < (size_t)g->out_ch; m++) {
            const int32_t *xg = x + (n * (size_t)g->in_ch + (m / mg) * cg) * in_sp;
            const int32_t *wm = w + m * cg * taps;
            int32_t *ym = y + (n * (size_t)g->out_ch + m) * out_sp;
            for (size_t pos = 0; pos < out_sp; pos++) {
                uint32_t acc = bias ? (uint32_t)bias[m] : 0;
                for (size_t tap = 0; tap < taps; tap++) {
                    int64_t off = conv_tap_offset(g, pos, tap);
                    if (off < 0) continue;
                    for (size_t ci = 0; ci < cg; ci++)
                        acc += (uint32_t)(xg[ci * in_sp + (size_t)off] * wm[ci * taps + tap]);
                }
                ym[pos] = (int32_t)acc;
            }
        }
}

/* Widens x and w (zero points off: x's per tensor, w's per output channel) and convolves. */
static aim_status conv_widened(const aim_op_ctx *c, const conv_geom *g, const aim_tensor *x,
                               const aim_tensor *x_zero, const aim_tensor *w,
                               const aim_tensor *w_zero, const int32_t *bias, int32_t *y) {
    size_t per_out_ch = aim_tensor_count(w) / (size_t)(g->out_ch ? g->out_ch : 1);
    int32_t *xw = widen(x, x_zero, 1, 1);
    int32_t *ww = widen(w, w_zero, per_out_ch ? per_out_ch : 1, (size_t)g->out_ch);
    if (xw && ww) conv_int32(g, xw, ww, bias, y);
    free(xw);
    free(ww);
    return xw && ww ? AIM_OK : aim_op_fail(c, AIM_ERR_NOMEM, "out of memory");
}

static aim_status conv_integer_check(const aim_op_ctx *c, conv_geom *g) {
    aim_status st = aim_op_check_inputs(c, 2, 4);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0], *w = c->in[1];
    const aim_tensor *xz = aim_op_input(c, 2), *wz = aim_op_input(c, 3);
    if (!is_q8(x->dtype) || !is_q8(w->dtype))
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "x and w are %s and %s, expected uint8/int8",
                           aim_dtype_name(x->dtype), aim_dtype_name(w->dtype));
    if ((st = conv_geom_make(c, x, w, g)) != AIM_OK) return st;
    if (xz && (st = check_zero(c, xz, x->dtype, 1, "x_zero_point"))) return st;
    if (wz && (st = check_zero(c, wz, w->dtype, aim_tensor_count(wz), "w_zero_point"))) return st;
    if ((st = check_per_tensor(c, xz, "x_zero_point")) != AIM_OK) return st;
    return check_per_vector(c, wz, g->out_ch, "w_zero_point");
}

static aim_status conv_integer_infer(aim_op_ctx *c) {
    conv_geom g;
    aim_status st = conv_integer_check(c, &g);
    if (st != AIM_OK) return st;
    int64_t dims[AIM_MAX_RANK];
    conv_out_dims(&g, dims);
    return aim_op_set_output(c, 0, AIM_DTYPE_INT32, c->in[0]->rank, dims);
}

static aim_status conv_integer_run(aim_op_ctx *c) {
    conv_geom g;
    aim_status st = conv_integer_check(c, &g);
    if (st != AIM_OK || !c->out[0]) return st;
    return conv_widened(c, &g, c->in[0], aim_op_input(c, 2), c->in[1], aim_op_input(c, 3), NULL,
                        c->out[0]->data);
}

/* Inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, [B]. */
static aim_status qlinear_conv_check(const aim_op_ctx *c, conv_geom *g) {
    aim_status st = aim_op_check_inputs(c, 8, 9);
    if (st != AIM_OK) return st;
    const aim_tensor *const *in = c->in, *bias = aim_op_input(c, 8);
    if (!is_q8(in[0]->dtype) || !is_q8(in[3]->dtype) || !is_q8(in[7]->dtype))
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "x, w and y_zero_point must be uint8/int8");
    if ((st = conv_geom_make(c, in[0], in[3], g)) != AIM_OK) return st;
    if ((st = check_scale(c, in[1], "x_scale", false)) != AIM_OK ||
        (st = check_scale(c, in[4], "w_scale", false)) != AIM_OK ||
        (st = check_scale(c, in[6], "y_scale", true)) != AIM_OK ||
        (st = check_per_vector(c, in[4], g->out_ch, "w_scale")) ||
        (st = check_zero(c, in[2], in[0]->dtype, 1, "x_zero_point")) ||
        (st = check_zero(c, in[5], in[3]->dtype, aim_tensor_count(in[4]), "w_zero_point")) ||
        (st = check_zero(c, in[7], in[7]->dtype, 1, "y_zero_point")) ||
        (st = check_per_tensor(c, in[1], "x_scale")) || (st = check_per_tensor(c, in[2], "x_zp")) ||
        (st = check_per_tensor(c, in[6], "y_scale")) || (st = check_per_tensor(c, in[7], "y_zp")))
        return st;
    if (bias && (bias->dtype != AIM_DTYPE_INT32 || bias->rank != 1 || bias->dims[0] != g->out_ch))
        return aim_op_fail(c, AIM_ERR_PARSE, "B must be int32 of shape [%lld]",
                           (long long)g->out_ch);
    return AIM_OK;
}

static aim_status qlinear_conv_infer(aim_op_ctx *c) {
    conv_geom g;
    aim_status st = qlinear_conv_check(c, &g);
    if (st != AIM_OK) return st;
    int64_t dims[AIM_MAX_RANK];
    conv_out_dims(&g, dims);
    return aim_op_set_output(c, 0, c->in[7]->dtype, c->in[0]->rank, dims);
}

static aim_status qlinear_conv_run(aim_op_ctx *c) {
    conv_geom g;
    aim_status st = qlinear_conv_check(c, &g);
    if (st != AIM_OK || !c->out[0]) return st;
    const aim_tensor *const *in = c->in, *bias = aim_op_input(c, 8);
    aim_tensor *y = c->out[0];
    size_t n_out = aim_tensor_count(y), out_sp = dims_count(g.out, g.spatial);
    int32_t *acc = malloc((n_out ? n_out : 1) * sizeof *acc);
    if (!acc) return aim_op_fail(c, AIM_ERR_NOMEM, "out of memory");
    st = conv_widened(c, &g, in[0], in[2], in[3], in[5], bias ? bias->data : NULL, acc);
    if (st == AIM_OK) {
        bool per_channel = aim_tensor_count(in[4]) > 1;
        for (size_t i = 0; i < n_out; i++) {
            size_t m = (i / (out_sp ? out_sp : 1)) % (size_t)g.out_ch;
            float in_scale = scale_at(in[1], 0) * scale_at(in[4], per_channel ? m : 0);
            store_q8(y, i, requantize(acc[i], in_scale, scale_at(in[6], 0), zero_at(in[7], 0)));
        }
    }
    free(acc);
    return st;
}

/* ---- Table --------------------------------------------------------------------------------- */

const aim_op_def aim_ops_quant[] = {
    {"QuantizeLinear", "", 10, 18, NULL, quantize_infer, quantize_run, NULL},
    {"DequantizeLinear", "", 10, 18, NULL, dequantize_infer, dequantize_run, NULL},
    {"DynamicQuantizeLinear", "", 11, 18, NULL, dynamic_quantize_infer, dynamic_quantize_run, NULL},
    {"MatMulInteger", "", 10, 18, NULL, matmul_integer_infer, matmul_integer_run, NULL},
    {"QLinearMatMul", "", 10, 18, NULL, qlinear_matmul_infer, qlinear_matmul_run, NULL},
    {"ConvInteger", "", 10, 18, NULL, conv_integer_infer, conv_integer_run, NULL},
    {"QLinearConv", "", 10, 18, NULL, qlinear_conv_infer, qlinear_conv_run, NULL},
    {0},
};
