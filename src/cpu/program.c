/*
 * program.c: building, freeing and validating compiled int8 programs (program.h).
 *
 * aim_program_validate is the one gate every program passes before it is executed: the
 * deserializer calls it on untrusted bytes, so it checks everything the executors rely on
 * (indices in range and defined before use, dtypes, shapes consistent per op, weight sizes,
 * scales and zero points, and size limits that keep every later multiplication in range).
 */
#include "cpu/program.h"

#include "core/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[AIM_PROG_OP_COUNT] = {
    "quantize", "dequantize", "conv",   "maxpool",    "avgpool", "add",
    "mul",      "concat",     "resize", "activation", "slice"};

/* ---- Building and freeing ------------------------------------------------------------------ */

aim_program *aim_program_new(const char *target) {
    if (!target || strlen(target) >= sizeof((aim_program *)0)->target) return NULL;
    aim_program *p = calloc(1, sizeof *p);
    if (p) memcpy(p->target, target, strlen(target) + 1);
    return p;
}

static void free_op(aim_prog_op *op) {
    free(op->weights);
    free(op->w_scale);
    free(op->bias);
}

void aim_program_free(aim_program *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_tensors; i++)
        free(p->tensors[i].name);
    for (size_t i = 0; i < p->n_ops; i++)
        free_op(&p->ops[i]);
    free(p->tensors);
    free(p->ops);
    free(p->inputs);
    free(p->outputs);
    free(p);
}

int aim_program_add_tensor(aim_program *p, const aim_prog_tensor *t) {
    if (p->n_tensors >= AIM_PROGRAM_MAX_TENSORS) return -1;
    aim_prog_tensor *grown = realloc(p->tensors, (p->n_tensors + 1) * sizeof *grown);
    if (!grown) return -1;
    p->tensors = grown;
    aim_prog_tensor copy = *t;
    copy.name = NULL;
    if (t->name && !(copy.name = aim_strdup(t->name))) return -1;
    p->tensors[p->n_tensors] = copy;
    return (int)p->n_tensors++;
}

int aim_program_add_op(aim_program *p, const aim_prog_op *op) {
    aim_prog_op *grown = NULL;
    if (p->n_ops < AIM_PROGRAM_MAX_OPS) grown = realloc(p->ops, (p->n_ops + 1) * sizeof *grown);
    if (!grown) {
        aim_prog_op copy = *op; /* ownership passed to us: free it rather than leak it */
        free_op(&copy);
        return -1;
    }
    p->ops = grown;
    p->ops[p->n_ops] = *op;
    return (int)p->n_ops++;
}

static int *copy_ints(const int *v, size_t n) {
    int *c = malloc((n ? n : 1) * sizeof *c);
    if (c && n) memcpy(c, v, n * sizeof *c);
    return c;
}

aim_status aim_program_set_io(aim_program *p, const int *inputs, size_t n_inputs,
                              const int *outputs, size_t n_outputs) {
    int *in = copy_ints(inputs, n_inputs), *out = copy_ints(outputs, n_outputs);
    if (!in || !out) {
        free(in);
        free(out);
        return aim_error(AIM_ERR_NOMEM, "out of memory");
    }
    free(p->inputs);
    free(p->outputs);
    p->inputs = in;
    p->n_inputs = n_inputs;
    p->outputs = out;
    p->n_outputs = n_outputs;
    return AIM_OK;
}

/* ---- Small shared helpers ------------------------------------------------------------------ */

size_t aim_program_tensor_count(const aim_prog_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= (size_t)t->dims[i];
    return n;
}

void aim_program_qrange(int dtype, int32_t *lo, int32_t *hi) {
    *lo = dtype == AIM_DTYPE_INT8 ? -128 : 0;
    *hi = dtype == AIM_DTYPE_INT8 ? 127 : 255;
}

static bool is_quant(int dtype) {
    return dtype == AIM_DTYPE_UINT8 || dtype == AIM_DTYPE_INT8;
}

static bool good_scale(float s) {
    return isnormal(s) && s > 0; /* finite, positive, and 1/s finite too */
}

static bool same_shape(const aim_prog_tensor *a, const aim_prog_tensor *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

/* ---- Validation: tensors and interface ----------------------------------------------------- */

static aim_status check_tensor(const aim_prog_tensor *t, size_t i) {
    if (t->dtype != AIM_DTYPE_FLOAT && !is_quant(t->dtype))
        return aim_error(AIM_ERR_INVALID_ARG,
                         "program tensor %zu: dtype %s, expected float32, "
                         "uint8 or int8",
                         i, aim_dtype_name(t->dtype));
    if (t->rank < 1 || t->rank > 4)
        return aim_error(AIM_ERR_INVALID_ARG, "program tensor %zu: rank %d, expected 1..4", i,
                         t->rank);
    size_t n = 1;
    for (int d = 0; d < t->rank; d++) {
        if (t->dims[d] < 1 || t->dims[d] > AIM_PROGRAM_MAX_ELEMENTS ||
            !aim_mul_size(n, (size_t)t->dims[d], &n) || n > (size_t)AIM_PROGRAM_MAX_ELEMENTS)
            return aim_error(AIM_ERR_INVALID_ARG,
                             "program tensor %zu: dimension %d is %lld, or "
                             "the element count exceeds %lld",
                             i, d, (long long)t->dims[d], AIM_PROGRAM_MAX_ELEMENTS);
    }
    if (t->name && strlen(t->name) > AIM_PROGRAM_MAX_NAME)
        return aim_error(AIM_ERR_INVALID_ARG, "program tensor %zu: name too long", i);
    if (!is_quant(t->dtype)) return AIM_OK;
    int32_t lo, hi;
    aim_program_qrange(t->dtype, &lo, &hi);
    if (!good_scale(t->scale))
        return aim_error(AIM_ERR_INVALID_ARG,
                         "program tensor %zu: scale %g is not a finite "
                         "positive number",
                         i, (double)t->scale);
    if (t->zero_point < lo || t->zero_point > hi)
        return aim_error(AIM_ERR_INVALID_ARG,
                         "program tensor %zu: zero point %d outside "
                         "%s's range [%d, %d]",
                         i, (int)t->zero_point, aim_dtype_name(t->dtype), (int)lo, (int)hi);
    return AIM_OK;
}

/* Inputs or outputs: in range, float32, no duplicates. */
static aim_status check_io(const aim_program *p, const int *v, size_t n, const char *what) {
    if (n < 1 || n > AIM_PROGRAM_MAX_INPUTS || !v)
        return aim_error(AIM_ERR_INVALID_ARG, "program: %zu %s, expected 1..%d", n, what,
                         AIM_PROGRAM_MAX_INPUTS);
    for (size_t i = 0; i < n; i++) {
        if (v[i] < 0 || (size_t)v[i] >= p->n_tensors)
            return aim_error(AIM_ERR_INVALID_ARG, "program: %s %zu names tensor %d of %zu", what, i,
                             v[i], p->n_tensors);
        if (p->tensors[v[i]].dtype != AIM_DTYPE_FLOAT)
            return aim_error(AIM_ERR_INVALID_ARG, "program: %s %zu (tensor %d) is not float32",
                             what, i, v[i]);
        for (size_t j = 0; j < i; j++)
            if (v[j] == v[i])
                return aim_error(AIM_ERR_INVALID_ARG, "program: tensor %d is listed twice in %s",
                                 v[i], what);
    }
    return AIM_OK;
}

/* ---- Validation: ops ----------------------------------------------------------------------- */

typedef struct {
    const aim_program *p;
    const aim_prog_op *op;
    size_t index;
} vctx;

#define OP_FAIL(v, ...) op_fail(v, __VA_ARGS__)

static aim_status op_fail(const vctx *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static aim_status op_fail(const vctx *v, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *kind = v->op->kind < AIM_PROG_OP_COUNT ? kind_names[v->op->kind] : "?";
    return aim_error(AIM_ERR_INVALID_ARG, "program op %zu (%s): %s", v->index, kind, msg);
}

static const aim_prog_tensor *tin(const vctx *v, int i) {
    return &v->p->tensors[v->op->in[i]];
}
static const aim_prog_tensor *tout(const vctx *v) {
    return &v->p->tensors[v->op->out];
}

/* All of the op's inputs and its output quantized (and rank 4 when `spatial`). */
static aim_status check_quantized(const vctx *v, bool spatial) {
    for (int i = 0; i <= v->op->n_in; i++) {
        const aim_prog_tensor *t = i < v->op->n_in ? tin(v, i) : tout(v);
        if (!is_quant(t->dtype))
            return OP_FAIL(v, "tensor %s is not uint8/int8", t->name ? t->name : "?");
        if (spatial && t->rank != 4) return OP_FAIL(v, "tensors must be rank 4 (NCHW)");
    }
    return AIM_OK;
}

static aim_status check_convert(const vctx *v, bool quantize) {
    int in = tin(v, 0)->dtype, out = tout(v)->dtype;
    if (quantize ? (in != AIM_DTYPE_FLOAT || !is_quant(out))
                 : (!is_quant(in) || out != AIM_DTYPE_FLOAT))
        return OP_FAIL(v, "converts %s to %s", aim_dtype_name(in), aim_dtype_name(out));
    if (!same_shape(tin(v, 0), tout(v))) return OP_FAIL(v, "input and output shapes differ");
    return AIM_OK;
}

/* Spatial parameters shared by conv and pooling, bounded so later int64 arithmetic is safe. */
static aim_status check_window(const vctx *v, bool conv) {
    const aim_prog_op *op = v->op;
    for (int i = 0; i < 2; i++) {
        int64_t d = conv ? op->dilations[i] : 1;
        if (op->kernel[i] < 1 || op->kernel[i] > 65536 || op->strides[i] < 1 ||
            op->strides[i] > 65536 || d < 1 || d > 65536)
            return OP_FAIL(v, "kernel, stride or dilation outside 1..65536");
    }
    for (int i = 0; i < 4; i++) {
        int64_t k = op->kernel[i % 2];
        if (op->pads[i] < 0 || op->pads[i] > 65536 || (!conv && op->pads[i] >= k))
            return OP_FAIL(v, "pad %lld outside 0..%s", (long long)op->pads[i],
                           conv ? "65536" : "kernel-1");
    }
    const aim_prog_tensor *x = tin(v, 0), *y = tout(v);
    for (int i = 0; i < 2; i++) {
        int64_t d = conv ? op->dilations[i] : 1, ext = (op->kernel[i] - 1) * d + 1;
        int64_t span = x->dims[2 + i] + op->pads[i] + op->pads[i + 2] - ext;
        int64_t want = span < 0 ? 0 : span / op->strides[i] + 1;
        if (y->dims[2 + i] != want)
            return OP_FAIL(v, "output dimension %d is %lld, the window gives %lld", 2 + i,
                           (long long)y->dims[2 + i], (long long)want);
    }
    if (y->dims[0] != x->dims[0]) return OP_FAIL(v, "batch sizes differ");
    return AIM_OK;
}

static aim_status check_conv_params(const vctx *v) {
    const aim_prog_op *op = v->op;
    int64_t ci = tin(v, 0)->dims[1], co = tout(v)->dims[1], g = op->group;
    if (g < 1 || ci % g != 0 || co % g != 0)
        return OP_FAIL(v, "group %lld does not divide %lld input and %lld output channels",
                       (long long)g, (long long)ci, (long long)co);
    int64_t red = (ci / g) * op->kernel[0] * op->kernel[1];
    if (red > AIM_PROGRAM_MAX_REDUCTION)
        return OP_FAIL(v, "reduction length %lld exceeds %d", (long long)red,
                       AIM_PROGRAM_MAX_REDUCTION);
    if (!op->weights || !op->w_scale) return OP_FAIL(v, "weights or weight scales missing");
    for (int64_t o = 0; o < co; o++) {
        if (!good_scale(op->w_scale[o]))
            return OP_FAIL(v, "weight scale %lld is %g, not a finite positive number", (long long)o,
                           (double)op->w_scale[o]);
        if (op->bias && (op->bias[o] > AIM_PROGRAM_MAX_BIAS || op->bias[o] < -AIM_PROGRAM_MAX_BIAS))
            return OP_FAIL(v, "bias %lld is %d, beyond +-2^30", (long long)o, (int)op->bias[o]);
    }
    return AIM_OK;
}

/* A conv reads quantized tensors; its output is quantized, or float32 (a program output
 * computed without requantization: acc * s_x * s_w[o], activation in real units). */
static aim_status check_conv_io(const vctx *v) {
    const aim_prog_tensor *x = tin(v, 0), *y = tout(v);
    if (!is_quant(x->dtype))
        return OP_FAIL(v, "tensor %s is not uint8/int8", x->name ? x->name : "?");
    if (!is_quant(y->dtype) && y->dtype != AIM_DTYPE_FLOAT)
        return OP_FAIL(v, "output %s is not uint8/int8/float32", y->name ? y->name : "?");
    if (x->rank != 4 || y->rank != 4) return OP_FAIL(v, "tensors must be rank 4 (NCHW)");
    return AIM_OK;
}

static aim_status check_conv(const vctx *v) {
    aim_status st = check_conv_io(v);
    if (st == AIM_OK) st = check_window(v, true);
    if (st == AIM_OK) st = check_conv_params(v);
    if (st != AIM_OK || v->op->residual < 0) return st;
    const aim_prog_tensor *r = &v->p->tensors[v->op->residual];
    if (!is_quant(r->dtype) || !same_shape(r, tout(v)))
        return OP_FAIL(v, "residual tensor %d is not quantized with the output's shape",
                       v->op->residual);
    return AIM_OK;
}

static bool same_qparams(const aim_prog_tensor *a, const aim_prog_tensor *b) {
    return a->dtype == b->dtype && a->scale == b->scale && a->zero_point == b->zero_point;
}

static aim_status check_pool(const vctx *v) {
    aim_status st = check_quantized(v, true);
    if (st == AIM_OK) st = check_window(v, false);
    if (st == AIM_OK && tin(v, 0)->dims[1] != tout(v)->dims[1])
        return OP_FAIL(v, "channel counts differ");
    return st;
}

static aim_status check_elementwise(const vctx *v) {
    aim_status st = check_quantized(v, false);
    for (int i = 0; st == AIM_OK && i < v->op->n_in; i++)
        if (!same_shape(tin(v, i), tout(v))) return OP_FAIL(v, "shapes differ");
    return st;
}

static aim_status check_concat(const vctx *v) {
    aim_status st = check_quantized(v, false);
    if (st != AIM_OK) return st;
    const aim_prog_tensor *y = tout(v);
    if (v->op->axis < 0 || v->op->axis >= y->rank)
        return OP_FAIL(v, "axis %lld outside 0..%d", (long long)v->op->axis, y->rank - 1);
    int64_t sum = 0;
    for (int i = 0; i < v->op->n_in; i++) {
        const aim_prog_tensor *x = tin(v, i);
        if (x->rank != y->rank) return OP_FAIL(v, "input %d has another rank", i);
        for (int d = 0; d < y->rank; d++)
            if (d != v->op->axis && x->dims[d] != y->dims[d])
                return OP_FAIL(v, "input %d differs outside the axis", i);
        sum += x->dims[v->op->axis];
    }
    if (sum != y->dims[v->op->axis]) return OP_FAIL(v, "inputs do not add up to the output");
    return AIM_OK;
}

/* SLICE: the output is the part of the input along `axis` (not the batch) that starts at index
 * pads[0]; every other dimension is the input's. */
static aim_status check_slice(const vctx *v) {
    aim_status st = check_quantized(v, false);
    if (st != AIM_OK) return st;
    const aim_prog_tensor *x = tin(v, 0), *y = tout(v);
    int64_t axis = v->op->axis, start = v->op->pads[0];
    if (x->rank != y->rank || axis < 1 || axis >= y->rank)
        return OP_FAIL(v, "axis %lld outside 1..%d", (long long)axis, y->rank - 1);
    for (int d = 0; d < y->rank; d++)
        if (d != axis && x->dims[d] != y->dims[d]) return OP_FAIL(v, "differs outside the axis");
    if (start < 0 || start > x->dims[axis] - y->dims[axis])
        return OP_FAIL(v, "part from %lld, %lld long, outside the input's %lld", (long long)start,
                       (long long)y->dims[axis], (long long)x->dims[axis]);
    return AIM_OK;
}

static aim_status check_resize(const vctx *v) {
    aim_status st = check_quantized(v, true);
    if (st != AIM_OK) return st;
    const aim_prog_tensor *x = tin(v, 0), *y = tout(v);
    if (!same_qparams(x, y)) return OP_FAIL(v, "nearest resize keeps dtype, scale, zero point");
    for (int i = 0; i < 2; i++)
        if (v->op->strides[i] < 1 || v->op->strides[i] > 64 ||
            y->dims[2 + i] != x->dims[2 + i] * v->op->strides[i])
            return OP_FAIL(v, "scale factor %lld (1..64) does not give output dimension %d",
                           (long long)v->op->strides[i], 2 + i);
    if (x->dims[0] != y->dims[0] || x->dims[1] != y->dims[1])
        return OP_FAIL(v, "batch or channels differ");
    return AIM_OK;
}

static aim_status check_act(const vctx *v) {
    const aim_prog_op *op = v->op;
    bool fusable = op->kind == AIM_PROG_CONV || op->kind == AIM_PROG_ADD ||
                   op->kind == AIM_PROG_MUL || op->kind == AIM_PROG_ACTIVATION;
    if ((unsigned)op->act >= AIM_PROG_ACT_COUNT)
        return OP_FAIL(v, "unknown activation %d", (int)op->act);
    if (op->act != AIM_PROG_ACT_NONE && !fusable) return OP_FAIL(v, "cannot carry an activation");
    if (!isfinite(op->act_alpha) || !isfinite(op->act_beta))
        return OP_FAIL(v, "activation parameters are not finite");
    if (op->act == AIM_PROG_ACT_CLIP && op->act_alpha > op->act_beta)
        return OP_FAIL(v, "clip min above max");
    return AIM_OK;
}

static aim_status check_kind(const vctx *v) {
    switch (v->op->kind) {
    case AIM_PROG_QUANTIZE: return check_convert(v, true);
    case AIM_PROG_DEQUANTIZE: return check_convert(v, false);
    case AIM_PROG_CONV: return check_conv(v);
    case AIM_PROG_MAXPOOL:
    case AIM_PROG_AVGPOOL: return check_pool(v);
    case AIM_PROG_ADD:
    case AIM_PROG_MUL:
    case AIM_PROG_ACTIVATION: return check_elementwise(v);
    case AIM_PROG_CONCAT: return check_concat(v);
    case AIM_PROG_RESIZE: return check_resize(v);
    case AIM_PROG_SLICE: return check_slice(v);
    default: return OP_FAIL(v, "unknown op kind %d", (int)v->op->kind);
    }
}

static bool n_in_ok(aim_prog_op_kind kind, int n) {
    if (kind == AIM_PROG_ADD || kind == AIM_PROG_MUL) return n == 2;
    if (kind == AIM_PROG_CONCAT) return n >= 1 && n <= AIM_PROGRAM_MAX_INPUTS;
    return n == 1;
}

/* Indices in range, inputs defined by an earlier op (or program inputs), one writer each. */
static aim_status check_links(const vctx *v, const bool *defined) {
    const aim_prog_op *op = v->op;
    size_t n = v->p->n_tensors;
    if ((unsigned)op->kind >= AIM_PROG_OP_COUNT)
        return OP_FAIL(v, "unknown op kind %d", (int)op->kind);
    if (!n_in_ok(op->kind, op->n_in)) return OP_FAIL(v, "%d inputs", op->n_in);
    for (int i = 0; i < op->n_in; i++)
        if (op->in[i] < 0 || (size_t)op->in[i] >= n || !defined[op->in[i]])
            return OP_FAIL(v, "input %d names tensor %d, out of range or not yet computed", i,
                           op->in[i]);
    if (op->out < 0 || (size_t)op->out >= n || defined[op->out])
        return OP_FAIL(v, "output names tensor %d, out of range or already computed", op->out);
    int r = op->residual;
    if (op->kind == AIM_PROG_CONV && r != -1 && (r < 0 || (size_t)r >= n || !defined[r]))
        return OP_FAIL(v, "residual names tensor %d, out of range or not yet computed", r);
    return AIM_OK;
}

static aim_status check_ops(const aim_program *p, bool *defined) {
    for (size_t i = 0; i < p->n_inputs; i++)
        defined[p->inputs[i]] = true;
    for (size_t i = 0; i < p->n_ops; i++) {
        vctx v = {p, &p->ops[i], i};
        aim_status st = check_links(&v, defined);
        if (st == AIM_OK) st = check_kind(&v);
        if (st == AIM_OK) st = check_act(&v);
        if (st != AIM_OK) return st;
        defined[p->ops[i].out] = true;
    }
    for (size_t i = 0; i < p->n_outputs; i++)
        if (!defined[p->outputs[i]])
            return aim_error(AIM_ERR_INVALID_ARG,
                             "program: output %zu (tensor %d) is never "
                             "computed",
                             i, p->outputs[i]);
    return AIM_OK;
}

aim_status aim_program_validate(const aim_program *p) {
    if (!p) return aim_error(AIM_ERR_INVALID_ARG, "program: NULL");
    if (!memchr(p->target, 0, sizeof p->target) || !p->target[0])
        return aim_error(AIM_ERR_INVALID_ARG, "program: empty or unterminated target");
    if (p->n_tensors > AIM_PROGRAM_MAX_TENSORS || p->n_ops > AIM_PROGRAM_MAX_OPS)
        return aim_error(AIM_ERR_INVALID_ARG, "program: %zu tensors and %zu ops, limits %d",
                         p->n_tensors, p->n_ops, AIM_PROGRAM_MAX_TENSORS);
    for (size_t i = 0; i < p->n_tensors; i++) {
        aim_status st = check_tensor(&p->tensors[i], i);
        if (st != AIM_OK) return st;
    }
    aim_status st = check_io(p, p->inputs, p->n_inputs, "inputs");
    if (st == AIM_OK) st = check_io(p, p->outputs, p->n_outputs, "outputs");
    if (st != AIM_OK) return st;
    bool *defined = calloc(p->n_tensors, sizeof *defined);
    if (!defined) return aim_error(AIM_ERR_NOMEM, "out of memory");
    st = check_ops(p, defined);
    free(defined);
    return st;
}
