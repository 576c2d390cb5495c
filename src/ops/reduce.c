/*
 * reduce.c: reference kernels of the reduce family (see families.h): the Reduce* operators,
 * ArgMax/ArgMin, Softmax/LogSoftmax/Hardmax and TopK. Portable C: the correctness oracle every
 * faster kernel is compared with.
 *
 * Floating reductions accumulate in double. Integer Sum/Prod/Max/Min/L1/SumSquare accumulate in
 * int64 so that int64 data keeps every bit; the others go through double. Every result is stored
 * saturated to the element type (never an out-of-range float-to-int conversion).
 */
#include "ops/families.h"

#include "core/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Element types and access ------------------------------------------------------------- */

static bool is_numeric_type(int dt) {
    return aim_dtype_is_float(dt) || aim_dtype_is_integer(dt);
}

static double load_f64(const aim_tensor *t, size_t i) {
    if (t->dtype == AIM_DTYPE_FLOAT) return ((const float *)t->data)[i];
    return aim_tensor_get_f64(t, i);
}

/* Range of a signed or unsigned integer type up to 32 bits (64-bit types are handled apart). */
static void small_int_range(int dt, int64_t *lo, int64_t *hi) {
    switch (dt) {
    case AIM_DTYPE_INT8: *lo = INT8_MIN, *hi = INT8_MAX; break;
    case AIM_DTYPE_UINT8: *lo = 0, *hi = UINT8_MAX; break;
    case AIM_DTYPE_INT16: *lo = INT16_MIN, *hi = INT16_MAX; break;
    case AIM_DTYPE_UINT16: *lo = 0, *hi = UINT16_MAX; break;
    case AIM_DTYPE_INT32: *lo = INT32_MIN, *hi = INT32_MAX; break;
    default: *lo = 0, *hi = UINT32_MAX; break;
    }
}

/* Stores an int64 into an integer element, saturating to the element type. */
static void store_i64_sat(aim_tensor *t, size_t i, int64_t v) {
    if (t->dtype == AIM_DTYPE_INT64) {
        ((int64_t *)t->data)[i] = v;
        return;
    }
    if (t->dtype == AIM_DTYPE_UINT64) {
        ((uint64_t *)t->data)[i] = v < 0 ? 0 : (uint64_t)v;
        return;
    }
    int64_t lo, hi;
    small_int_range(t->dtype, &lo, &hi);
    aim_tensor_set_f64(t, i, (double)(v < lo ? lo : v > hi ? hi : v));
}

/* Stores a double into any numeric element; integers saturate and NaN becomes 0. */
static void store_f64_sat(aim_tensor *t, size_t i, double v) {
    if (t->dtype == AIM_DTYPE_FLOAT) {
        ((float *)t->data)[i] = (float)v;
    } else if (aim_dtype_is_float(t->dtype)) {
        aim_tensor_set_f64(t, i, v);
    } else if (isnan(v)) {
        store_i64_sat(t, i, 0);
    } else if (t->dtype == AIM_DTYPE_UINT64) {
        ((uint64_t *)t->data)[i] = v <= 0                        ? 0
                                   : v >= 18446744073709551616.0 ? UINT64_MAX
                                                                 : (uint64_t)v;
    } else {
        store_i64_sat(t, i,
                      v >= 9223372036854775808.0   ? INT64_MAX
                      : v < -9223372036854775808.0 ? INT64_MIN
                                                   : (int64_t)v);
    }
}

/* Three-way comparison of elements a and b of t; NaN sorts above every number. */
static int compare_elems(const aim_tensor *t, size_t a, size_t b) {
    if (t->dtype == AIM_DTYPE_UINT64) {
        uint64_t x = ((const uint64_t *)t->data)[a], y = ((const uint64_t *)t->data)[b];
        return (x > y) - (x < y);
    }
    if (aim_dtype_is_integer(t->dtype)) {
        int64_t x = aim_tensor_get_i64(t, a), y = aim_tensor_get_i64(t, b);
        return (x > y) - (x < y);
    }
    double x = load_f64(t, a), y = load_f64(t, b);
    if (isnan(x) || isnan(y)) return isnan(x) - isnan(y);
    return (x > y) - (x < y);
}

/* ---- Attributes ---------------------------------------------------------------------------- */

/* A present attribute of the wrong type is a malformed model. */
static aim_status check_attr_type(const aim_op_ctx *c, const char *name, int type) {
    const Onnx__AttributeProto *a = aim_op_attr(c, name);
    if (a && (int)a->type != type)
        return aim_op_fail(c, AIM_ERR_PARSE, "attribute '%s' has the wrong type", name);
    return AIM_OK;
}

/* Reads an int attribute that must be 0 or 1. */
static aim_status attr_flag(const aim_op_ctx *c, const char *name, int def, bool *out) {
    aim_status st = check_attr_type(c, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (st != AIM_OK) return st;
    int64_t v = aim_op_attr_int(c, name, def);
    if (v != 0 && v != 1)
        return aim_op_fail(c, AIM_ERR_PARSE, "attribute '%s' is %lld, expected 0 or 1", name,
                           (long long)v);
    *out = v == 1;
    return AIM_OK;
}

static aim_status attr_int(const aim_op_ctx *c, const char *name, int64_t def, int64_t *out) {
    aim_status st = check_attr_type(c, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    *out = aim_op_attr_int(c, name, def);
    return st;
}

static int64_t dims_product(const int64_t *dims, int from, int to) {
    int64_t n = 1;
    for (int d = from; d < to; d++)
        n *= dims[d];
    return n;
}

/* A tensor viewed as `outer` x `n` x `inner`: lanes of n elements, inner apart. */
typedef struct {
    size_t outer, n, inner;
} lanes;

static lanes lanes_around(const aim_tensor *t, int axis) {
    lanes l = {(size_t)dims_product(t->dims, 0, axis), (size_t)t->dims[axis],
               (size_t)dims_product(t->dims, axis + 1, t->rank)};
    return l;
}

/* Offset of element k of lane `lane` (lane = outer index * inner + inner index). */
static size_t lane_at(const lanes *l, size_t lane, size_t k) {
    size_t o = lane / l->inner, i = lane % l->inner;
    return (o * l->n + k) * l->inner + i;
}

/* ---- Reduce* ------------------------------------------------------------------------------- */

typedef enum {
    RK_SUM,
    RK_MEAN,
    RK_MAX,
    RK_MIN,
    RK_PROD,
    RK_L1,
    RK_L2,
    RK_LOG_SUM,
    RK_LOG_SUM_EXP,
    RK_SUM_SQUARE
} reduce_kind;

static const struct {
    const char *op_type;
    reduce_kind kind;
} reduce_ops[] = {
    {"ReduceSum", RK_SUM},
    {"ReduceMean", RK_MEAN},
    {"ReduceMax", RK_MAX},
    {"ReduceMin", RK_MIN},
    {"ReduceProd", RK_PROD},
    {"ReduceL1", RK_L1},
    {"ReduceL2", RK_L2},
    {"ReduceLogSum", RK_LOG_SUM},
    {"ReduceLogSumExp", RK_LOG_SUM_EXP},
    {"ReduceSumSquare", RK_SUM_SQUARE},
};

static reduce_kind reduce_kind_of(const aim_op_ctx *c) {
    for (size_t i = 0; i < AIM_ARRAY_LEN(reduce_ops); i++)
        if (strcmp(c->node->op_type, reduce_ops[i].op_type) == 0) return reduce_ops[i].kind;
    return RK_SUM; /* unreachable: the registry only routes the names above here */
}

/* ReduceSum took axes as an input at opset 13, the other reductions at opset 18. */
static int axes_input_since(reduce_kind k) {
    return k == RK_SUM ? 13 : 18;
}

typedef struct {
    bool known; /* false while the axes input has no data (load time) */
    bool noop;  /* empty axes with noop_with_empty_axes: output = input */
    bool reduced[AIM_MAX_RANK];
    int out_rank;
    int64_t out_dims[AIM_MAX_RANK];
    int64_t group; /* input elements per output element */
} reduce_plan;

/* Reads the axes (attribute or input) into axes[], *n of them; *known false if not yet known. */
static aim_status reduce_read_axes(const aim_op_ctx *c, int rank, int64_t *axes, size_t *n,
                                   bool *known) {
    bool from_input = c->opset >= axes_input_since(reduce_kind_of(c));
    size_t limit = rank > 0 ? (size_t)rank : 1;
    const int64_t *values;
    *known = true;
    if (from_input) {
        if (aim_op_attr(c, "axes"))
            return aim_op_fail(c, AIM_ERR_PARSE, "has an 'axes' attribute; axes is an input");
        const aim_tensor *a = aim_op_input(c, 1);
        *n = 0;
        if (!a) return AIM_OK;
        if (a->dtype != AIM_DTYPE_INT64 || a->rank != 1)
            return aim_op_fail(c, AIM_ERR_PARSE, "axes must be a 1-D int64 tensor");
        if (!a->data) {
            *known = false;
            return AIM_OK;
        }
        *n = (size_t)a->dims[0];
        values = a->data;
    } else {
        aim_status st = check_attr_type(c, "axes", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
        if (st != AIM_OK) return st;
        values = aim_op_attr_ints(c, "axes", n);
    }
    if (*n > limit)
        return aim_op_fail(c, AIM_ERR_PARSE, "has %zu axes for an input of rank %d", *n, rank);
    if (*n) memcpy(axes, values, *n * sizeof *axes);
    return AIM_OK;
}

static aim_status reduce_plan_make(const aim_op_ctx *c, reduce_plan *p) {
    memset(p, 0, sizeof *p);
    bool from_input = c->opset >= axes_input_since(reduce_kind_of(c));
    aim_status st = aim_op_check_inputs(c, 1, from_input ? 2 : 1);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if (!is_numeric_type(x->dtype))
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "element type %s is not supported",
                           aim_dtype_name(x->dtype));
    bool keepdims = true, noop = false;
    if ((st = attr_flag(c, "keepdims", 1, &keepdims)) != AIM_OK) return st;
    if ((st = attr_flag(c, "noop_with_empty_axes", 0, &noop)) != AIM_OK) return st;
    int64_t axes[AIM_MAX_RANK];
    size_t n;
    if ((st = reduce_read_axes(c, x->rank, axes, &n, &p->known)) != AIM_OK || !p->known) return st;
    if (n == 0 && noop && from_input) p->noop = true;
    for (int d = 0; d < x->rank; d++)
        p->reduced[d] = n == 0 && !p->noop;
    for (size_t i = 0; i < n; i++) {
        int axis;
        if ((st = aim_op_axis(c, axes[i], x->rank, &axis)) != AIM_OK) return st;
        if (x->rank == 0) continue; /* a scalar reduces to itself */
        if (p->reduced[axis])
            return aim_op_fail(c, AIM_ERR_PARSE, "axis %lld is repeated", (long long)axes[i]);
        p->reduced[axis] = true;
    }
    p->group = 1;
    for (int d = 0; d < x->rank; d++) {
        if (p->reduced[d]) p->group *= x->dims[d];
        if (!p->reduced[d])
            p->out_dims[p->out_rank++] = x->dims[d];
        else if (keepdims)
            p->out_dims[p->out_rank++] = 1;
    }
    return AIM_OK;
}

static aim_status reduce_infer(aim_op_ctx *c) {
    reduce_plan p;
    aim_status st = reduce_plan_make(c, &p);
    if (st != AIM_OK) return st;
    if (!p.known) {
        aim_op_dynamic(c, 0);
        return AIM_OK;
    }
    return aim_op_set_output(c, 0, c->in[0]->dtype, p.out_rank, p.out_dims);
}

/* Walks an input in row-major order, tracking the offset of the output element it reduces to. */
typedef struct {
    int rank;
    int64_t dims[AIM_MAX_RANK];
    int64_t idx[AIM_MAX_RANK];
    int64_t out_stride[AIM_MAX_RANK]; /* 0 along reduced axes */
    int64_t out;
} reduce_walker;

static void walker_init(reduce_walker *w, const aim_tensor *x, const reduce_plan *p) {
    memset(w, 0, sizeof *w);
    w->rank = x->rank;
    int64_t stride = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        w->dims[d] = x->dims[d];
        w->out_stride[d] = p->reduced[d] ? 0 : stride;
        if (!p->reduced[d]) stride *= x->dims[d];
    }
}

static void walker_next(reduce_walker *w) {
    for (int d = w->rank - 1; d >= 0; d--) {
        w->out += w->out_stride[d];
        if (++w->idx[d] < w->dims[d]) return;
        w->out -= w->out_stride[d] * w->dims[d];
        w->idx[d] = 0;
    }
}

static double reduce_identity(reduce_kind k) {
    switch (k) {
    case RK_MAX: return -INFINITY;
    case RK_MIN: return INFINITY;
    case RK_PROD: return 1;
    default: return 0;
    }
}

static double reduce_combine(reduce_kind k, double acc, double v) {
    switch (k) {
    case RK_MAX: return v > acc || isnan(v) ? v : acc;
    case RK_MIN: return v < acc || isnan(v) ? v : acc;
    case RK_PROD: return acc * v;
    case RK_L1: return acc + fabs(v);
    case RK_L2:
    case RK_SUM_SQUARE: return acc + v * v;
    default: return acc + v;
    }
}

/* Per-output maxima that LogSumExp subtracts before exp, so that large inputs do not overflow. */
static double *reduce_lse_shifts(const aim_tensor *x, const reduce_plan *p, size_t n_out) {
    double *shift = malloc(n_out * sizeof *shift);
    if (!shift) return NULL;
    for (size_t o = 0; o < n_out; o++)
        shift[o] = -INFINITY;
    reduce_walker w;
    walker_init(&w, x, p);
    size_t n_in = aim_tensor_count(x);
    for (size_t i = 0; i < n_in; i++, walker_next(&w))
        shift[w.out] = fmax(shift[w.out], load_f64(x, i));
    for (size_t o = 0; o < n_out; o++)
        if (!isfinite(shift[o])) shift[o] = 0;
    return shift;
}

static aim_status reduce_run_f64(aim_op_ctx *c, const reduce_plan *p, reduce_kind k) {
    const aim_tensor *x = c->in[0];
    aim_tensor *y = c->out[0];
    size_t n_out = aim_tensor_count(y), n_in = aim_tensor_count(x);
    double *acc = malloc(n_out * sizeof *acc);
    double *shift = k == RK_LOG_SUM_EXP ? reduce_lse_shifts(x, p, n_out) : NULL;
    if (!acc || (k == RK_LOG_SUM_EXP && !shift)) {
        free(acc);
        free(shift);
        return aim_op_fail(c, AIM_ERR_NOMEM, "out of memory");
    }
    for (size_t o = 0; o < n_out; o++)
        acc[o] = reduce_identity(k);
    reduce_walker w;
    walker_init(&w, x, p);
    for (size_t i = 0; i < n_in; i++, walker_next(&w)) {
        double v = load_f64(x, i);
        if (shift) v = exp(v - shift[w.out]);
        acc[w.out] = reduce_combine(k, acc[w.out], v);
    }
    for (size_t o = 0; o < n_out; o++) {
        double v = acc[o];
        if (k == RK_MEAN) v /= (double)p->group;
        if (k == RK_L2) v = sqrt(v);
        if (k == RK_LOG_SUM) v = log(v);
        if (k == RK_LOG_SUM_EXP) v = log(v) + shift[o];
        store_f64_sat(y, o, v);
    }
    free(acc);
    free(shift);
    return AIM_OK;
}

/* Integer kinds whose result is an integer computation (exact in int64, wrapping on overflow). */
static bool reduce_exact_in_int(reduce_kind k, int dtype) {
    if (!aim_dtype_is_integer(dtype) || dtype == AIM_DTYPE_UINT64) return false;
    return k == RK_SUM || k == RK_PROD || k == RK_MAX || k == RK_MIN || k == RK_L1 ||
           k == RK_SUM_SQUARE;
}

static int64_t reduce_combine_int(reduce_kind k, int64_t acc, int64_t v) {
    uint64_t a = (uint64_t)acc, u = (uint64_t)v; /* unsigned: overflow wraps, never traps */
    switch (k) {
    case RK_MAX: return v > acc ? v : acc;
    case RK_MIN: return v < acc ? v : acc;
    case RK_PROD: return (int64_t)(a * u);
    case RK_L1: return (int64_t)(a + (v < 0 ? 0 - u : u));
    case RK_SUM_SQUARE: return (int64_t)(a + u * u);
    default: return (int64_t)(a + u);
    }
}

static aim_status reduce_run_int(aim_op_ctx *c, const reduce_plan *p, reduce_kind k) {
    const aim_tensor *x = c->in[0];
    aim_tensor *y = c->out[0];
    size_t n_out = aim_tensor_count(y), n_in = aim_tensor_count(x);
    int64_t *acc = malloc(n_out * sizeof *acc);
    if (!acc) return aim_op_fail(c, AIM_ERR_NOMEM, "out of memory");
    int64_t init = k == RK_MAX ? INT64_MIN : k == RK_MIN ? INT64_MAX : k == RK_PROD ? 1 : 0;
    for (size_t o = 0; o < n_out; o++)
        acc[o] = init;
    reduce_walker w;
    walker_init(&w, x, p);
    for (size_t i = 0; i < n_in; i++, walker_next(&w))
        acc[w.out] = reduce_combine_int(k, acc[w.out], aim_tensor_get_i64(x, i));
    for (size_t o = 0; o < n_out; o++)
        store_i64_sat(y, o, acc[o]);
    free(acc);
    return AIM_OK;
}

static aim_status reduce_run(aim_op_ctx *c) {
    reduce_plan p;
    aim_status st = reduce_plan_make(c, &p);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    aim_tensor *y = c->out[0];
    if (!y || aim_tensor_count(y) == 0) return AIM_OK;
    if (p.noop) {
        memcpy(y->data, x->data, aim_tensor_bytes(x));
        return AIM_OK;
    }
    reduce_kind k = reduce_kind_of(c);
    if (reduce_exact_in_int(k, x->dtype)) return reduce_run_int(c, &p, k);
    return reduce_run_f64(c, &p, k);
}

/* ---- ArgMax / ArgMin ----------------------------------------------------------------------- */

typedef struct {
    int axis;
    bool keepdims, select_last;
} arg_plan;

static aim_status arg_plan_make(const aim_op_ctx *c, arg_plan *p) {
    aim_status st = aim_op_check_inputs(c, 1, 1);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if (!is_numeric_type(x->dtype))
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "element type %s is not supported",
                           aim_dtype_name(x->dtype));
    if (x->rank == 0) return aim_op_fail(c, AIM_ERR_PARSE, "input must have rank >= 1");
    int64_t axis;
    if ((st = attr_int(c, "axis", 0, &axis)) != AIM_OK) return st;
    if ((st = aim_op_axis(c, axis, x->rank, &p->axis)) != AIM_OK) return st;
    if ((st = attr_flag(c, "keepdims", 1, &p->keepdims)) != AIM_OK) return st;
    if ((st = attr_flag(c, "select_last_index", 0, &p->select_last)) != AIM_OK) return st;
    if (x->dims[p->axis] == 0)
        return aim_op_fail(c, AIM_ERR_PARSE, "axis %d is empty: no index to select", p->axis);
    return AIM_OK;
}

static aim_status arg_infer(aim_op_ctx *c) {
    arg_plan p;
    aim_status st = arg_plan_make(c, &p);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    int64_t dims[AIM_MAX_RANK];
    int rank = 0;
    for (int d = 0; d < x->rank; d++)
        if (d != p.axis)
            dims[rank++] = x->dims[d];
        else if (p.keepdims)
            dims[rank++] = 1;
    return aim_op_set_output(c, 0, AIM_DTYPE_INT64, rank, dims);
}

static aim_status arg_run(aim_op_ctx *c) {
    arg_plan p;
    aim_status st = arg_plan_make(c, &p);
    if (st != AIM_OK || !c->out[0]) return st;
    const aim_tensor *x = c->in[0];
    int64_t *y = c->out[0]->data;
    int want = strcmp(c->node->op_type, "ArgMax") == 0 ? 1 : -1; /* sign of a better element */
    lanes l = lanes_around(x, p.axis);
    for (size_t lane = 0; lane < l.outer * l.inner; lane++) {
        size_t best = 0;
        for (size_t k = 1; k < l.n; k++) {
            int cmp = compare_elems(x, lane_at(&l, lane, k), lane_at(&l, lane, best)) * want;
            if (cmp > 0 || (cmp == 0 && p.select_last)) best = k;
        }
        y[lane] = (int64_t)best;
    }
    return AIM_OK;
}

/* ---- Softmax / LogSoftmax / Hardmax -------------------------------------------------------- */

/* Before opset 13 the input is coerced to 2-D [prod(dims < axis), prod(dims >= axis)] and the
 * rows are normalised; from opset 13 on, lanes run along the one axis. */
static aim_status softmax_lanes(const aim_op_ctx *c, lanes *l) {
    aim_status st = aim_op_check_inputs(c, 1, 1);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if (!aim_dtype_is_float(x->dtype))
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "element type %s is not supported",
                           aim_dtype_name(x->dtype));
    int64_t axis_attr;
    if ((st = attr_int(c, "axis", c->opset >= 13 ? -1 : 1, &axis_attr)) != AIM_OK) return st;
    int axis;
    if ((st = aim_op_axis(c, axis_attr, x->rank, &axis)) != AIM_OK) return st;
    if (x->rank == 0) {
        *l = (lanes){1, 1, 1};
    } else if (c->opset >= 13) {
        *l = lanes_around(x, axis);
    } else {
        *l = (lanes){(size_t)dims_product(x->dims, 0, axis),
                     (size_t)dims_product(x->dims, axis, x->rank), 1};
    }
    return AIM_OK;
}

static aim_status softmax_infer(aim_op_ctx *c) {
    lanes l;
    aim_status st = softmax_lanes(c, &l);
    if (st != AIM_OK) return st;
    return aim_op_set_output(c, 0, c->in[0]->dtype, c->in[0]->rank, c->in[0]->dims);
}

static void softmax_lane(const char *op, double *v, size_t n) {
    size_t arg = 0;
    for (size_t k = 1; k < n; k++)
        if (v[k] > v[arg]) arg = k;
    double max = v[arg];
    if (strcmp(op, "Hardmax") == 0) {
        for (size_t k = 0; k < n; k++)
            v[k] = k == arg;
        return;
    }
    double sum = 0;
    for (size_t k = 0; k < n; k++)
        sum += exp(v[k] - max);
    bool log_out = strcmp(op, "LogSoftmax") == 0;
    for (size_t k = 0; k < n; k++)
        v[k] = log_out ? v[k] - max - log(sum) : exp(v[k] - max) / sum;
}

static aim_status softmax_run(aim_op_ctx *c) {
    lanes l;
    aim_status st = softmax_lanes(c, &l);
    if (st != AIM_OK || !c->out[0] || l.n == 0) return st;
    const aim_tensor *x = c->in[0];
    aim_tensor *y = c->out[0];
    double *buf = malloc(l.n * sizeof *buf);
    if (!buf) return aim_op_fail(c, AIM_ERR_NOMEM, "out of memory");
    for (size_t lane = 0; lane < l.outer * l.inner; lane++) {
        for (size_t k = 0; k < l.n; k++)
            buf[k] = load_f64(x, lane_at(&l, lane, k));
        softmax_lane(c->node->op_type, buf, l.n);
        for (size_t k = 0; k < l.n; k++)
            store_f64_sat(y, lane_at(&l, lane, k), buf[k]);
    }
    free(buf);
    return AIM_OK;
}

/* ---- TopK ---------------------------------------------------------------------------------- */

typedef struct {
    int axis;
    bool known; /* false while K has no data (load time) */
    int64_t k;
    bool largest;
} topk_plan;

/* K: an attribute before opset 10, then a one-element int64 input. */
static aim_status topk_read_k(const aim_op_ctx *c, topk_plan *p) {
    p->known = true;
    if (c->opset < 10) {
        aim_status st = check_attr_type(c, "k", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
        if (st != AIM_OK) return st;
        if (!aim_op_attr(c, "k")) return aim_op_fail(c, AIM_ERR_PARSE, "attribute 'k' is missing");
        p->k = aim_op_attr_int(c, "k", 0);
        return AIM_OK;
    }
    const aim_tensor *k = c->in[1];
    if (k->dtype != AIM_DTYPE_INT64 || k->rank > 1 || aim_tensor_count(k) != 1)
        return aim_op_fail(c, AIM_ERR_PARSE, "K must be a one-element int64 tensor");
    if (!k->data)
        p->known = false;
    else
        p->k = ((const int64_t *)k->data)[0];
    return AIM_OK;
}

static aim_status topk_plan_make(const aim_op_ctx *c, topk_plan *p) {
    aim_status st = aim_op_check_inputs(c, c->opset < 10 ? 1 : 2, c->opset < 10 ? 1 : 2);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if (!is_numeric_type(x->dtype))
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "element type %s is not supported",
                           aim_dtype_name(x->dtype));
    if (x->rank == 0) return aim_op_fail(c, AIM_ERR_PARSE, "input must have rank >= 1");
    int64_t axis;
    bool sorted;
    if ((st = attr_int(c, "axis", -1, &axis)) != AIM_OK) return st;
    if ((st = aim_op_axis(c, axis, x->rank, &p->axis)) != AIM_OK) return st;
    if ((st = attr_flag(c, "largest", 1, &p->largest)) != AIM_OK) return st;
    /* sorted=0 leaves the order unspecified; sorted order is a valid answer for it. */
    if ((st = attr_flag(c, "sorted", 1, &sorted)) != AIM_OK) return st;
    if ((st = topk_read_k(c, p)) != AIM_OK || !p->known) return st;
    if (p->k < 0 || p->k > x->dims[p->axis])
        return aim_op_fail(c, AIM_ERR_PARSE, "K = %lld is outside 0..%lld (axis %d)",
                           (long long)p->k, (long long)x->dims[p->axis], p->axis);
    return AIM_OK;
}

static aim_status topk_infer(aim_op_ctx *c) {
    topk_plan p;
    aim_status st = topk_plan_make(c, &p);
    if (st != AIM_OK) return st;
    if (!p.known) {
        aim_op_dynamic(c, 0);
        aim_op_dynamic(c, 1);
        return AIM_OK;
    }
    const aim_tensor *x = c->in[0];
    int64_t dims[AIM_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[p.axis] = p.k;
    if ((st = aim_op_set_output(c, 0, x->dtype, x->rank, dims)) != AIM_OK) return st;
    return aim_op_set_output(c, 1, AIM_DTYPE_INT64, x->rank, dims);
}

/* One candidate of a lane; `t` and `sign` let the comparator stay free of global state. */
typedef struct {
    const aim_tensor *t;
    size_t offset;
    int64_t index;
    int sign; /* 1: largest first, -1: smallest first */
} topk_item;

static int topk_order(const void *pa, const void *pb) {
    const topk_item *a = pa, *b = pb;
    int cmp = compare_elems(a->t, b->offset, a->offset) * a->sign;
    if (cmp) return cmp;
    return (a->index > b->index) - (a->index < b->index); /* ties: lower index first */
}

static aim_status topk_run(aim_op_ctx *c) {
    topk_plan p;
    aim_status st = topk_plan_make(c, &p);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    aim_tensor *values = c->out[0], *indices = c->n_out > 1 ? c->out[1] : NULL;
    lanes in = lanes_around(x, p.axis), out = in;
    out.n = (size_t)p.k;
    if (in.n == 0 || out.n == 0) return AIM_OK;
    topk_item *items = malloc(in.n * sizeof *items);
    if (!items) return aim_op_fail(c, AIM_ERR_NOMEM, "out of memory");
    size_t esize = aim_dtype_size(x->dtype);
    for (size_t lane = 0; lane < in.outer * in.inner; lane++) {
        for (size_t k = 0; k < in.n; k++)
            items[k] = (topk_item){x, lane_at(&in, lane, k), (int64_t)k, p.largest ? 1 : -1};
        qsort(items, in.n, sizeof *items, topk_order);
        for (size_t k = 0; k < out.n; k++) {
            size_t o = lane_at(&out, lane, k);
            if (values)
                memcpy((char *)values->data + o * esize,
                       (const char *)x->data + items[k].offset * esize, esize);
            if (indices) ((int64_t *)indices->data)[o] = items[k].index;
        }
    }
    free(items);
    return AIM_OK;
}

/* ---- Table --------------------------------------------------------------------------------- */

#define REDUCE_ROW(name)                                                                           \
    { name, "", 1, 18, NULL, reduce_infer, reduce_run, NULL }

const aim_op_def aim_ops_reduce[] = {
    REDUCE_ROW("ReduceSum"),
    REDUCE_ROW("ReduceMean"),
    REDUCE_ROW("ReduceMax"),
    REDUCE_ROW("ReduceMin"),
    REDUCE_ROW("ReduceProd"),
    REDUCE_ROW("ReduceL1"),
    REDUCE_ROW("ReduceL2"),
    REDUCE_ROW("ReduceLogSum"),
    REDUCE_ROW("ReduceLogSumExp"),
    REDUCE_ROW("ReduceSumSquare"),
    {"ArgMax", "", 1, 18, NULL, arg_infer, arg_run, NULL},
    {"ArgMin", "", 1, 18, NULL, arg_infer, arg_run, NULL},
    {"Softmax", "", 1, 18, NULL, softmax_infer, softmax_run, NULL},
    {"LogSoftmax", "", 1, 18, NULL, softmax_infer, softmax_run, NULL},
    {"Hardmax", "", 1, 18, NULL, softmax_infer, softmax_run, NULL},
    {"TopK", "", 1, 18, NULL, topk_infer, topk_run, NULL},
    {0},
};
