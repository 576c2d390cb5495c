/*
 * shape.c: reference kernels of the shape family (see families.h): the "movement" operators
 * that reshape, reorder, select, combine or repeat elements without doing arithmetic on them
 * (Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Split, Slice, Gather*, ScatterND,
 * Pad, Tile, Expand, Range, NonZero).
 *
 * Elements are moved as opaque byte blocks of the element size, so every fixed-size dtype works
 * without per-type code. Transpose, Slice, Concat, Split, Expand and Tile all reduce to one
 * strided copy (move_copy). Index inputs (shapes, starts, pads, repeats...) may be int32 or
 * int64. When an output shape depends on an input's values and those are not known yet (load
 * time, non-constant input), infer marks the outputs dynamic; the runtime infers again with data
 * before run. Out-of-range indices found in data are run-time errors, never memory accesses.
 *
 * Portable C: the correctness oracle every faster kernel is compared with.
 */
#include "core/util.h"
#include "ops/families.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Shared checks ------------------------------------------------------------------------- */

/* A value is available when its data is there (an empty tensor needs none). */
static bool available(const aim_tensor *t) {
    return t->data || aim_tensor_count(t) == 0;
}

static aim_status check_movable(const aim_op_ctx *c, const aim_tensor *t, const char *what) {
    if (aim_dtype_size(t->dtype) == 0)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "%s has unsupported element type %s", what,
                           aim_dtype_name(t->dtype));
    return AIM_OK;
}

static bool is_index_type(int dtype) {
    return dtype == AIM_DTYPE_INT32 || dtype == AIM_DTYPE_INT64;
}

static aim_status check_index_type(const aim_op_ctx *c, const aim_tensor *t, const char *what) {
    if (!is_index_type(t->dtype))
        return aim_op_fail(c, AIM_ERR_PARSE, "%s must be int32 or int64, got %s", what,
                           aim_dtype_name(t->dtype));
    return AIM_OK;
}

/* Reads a 1-D (or scalar) int32/int64 list of at most max values. */
static aim_status read_ints(const aim_op_ctx *c, const aim_tensor *t, const char *what,
                            int64_t *out, int max, int *n) {
    aim_status st = check_index_type(c, t, what);
    if (st != AIM_OK) return st;
    if (t->rank > 1)
        return aim_op_fail(c, AIM_ERR_PARSE, "%s must be 1-D, has rank %d", what, t->rank);
    size_t count = aim_tensor_count(t);
    if (count > (size_t)max)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "%s has %zu values (at most %d)", what, count,
                           max);
    for (size_t i = 0; i < count; i++)
        out[i] = aim_tensor_get_i64(t, i);
    *n = (int)count;
    return AIM_OK;
}

/* An integer list from an attribute (at most max values); *n = -1 when absent. */
static aim_status attr_ints(const aim_op_ctx *c, const char *name, int64_t *out, int max, int *n) {
    size_t count;
    const int64_t *v = aim_op_attr_ints(c, name, &count);
    *n = -1;
    if (!aim_op_attr(c, name)) return AIM_OK;
    if (count > (size_t)max)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "attribute '%s' has %zu values (at most %d)",
                           name, count, max);
    if (count) memcpy(out, v, count * sizeof *v);
    *n = (int)count;
    return AIM_OK;
}

/* Normalises a list of axes for a given rank, rejecting duplicates. */
static aim_status normalize_axes(const aim_op_ctx *c, const int64_t *axes, int n, int rank,
                                 int *out) {
    if (rank == 0 && n > 0) return aim_op_fail(c, AIM_ERR_PARSE, "a scalar has no axes");
    for (int i = 0; i < n; i++) {
        aim_status st = aim_op_axis(c, axes[i], rank, &out[i]);
        if (st != AIM_OK) return st;
        for (int j = 0; j < i; j++)
            if (out[j] == out[i])
                return aim_op_fail(c, AIM_ERR_PARSE, "axis %d is listed twice", out[i]);
    }
    return AIM_OK;
}

/* Marks every output dynamic: its shape needs input values not known yet. */
static aim_status all_dynamic(aim_op_ctx *c) {
    for (int i = 0; i < c->n_out; i++)
        aim_op_dynamic(c, i);
    return AIM_OK;
}

static size_t esize_of(const aim_tensor *t) {
    return aim_dtype_size(t->dtype);
}

/* Row-major element count of dims[from..to). */
static int64_t dims_product(const int64_t *dims, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= dims[i];
    return p;
}

/* Wraps a possibly negative index into [0, dim); false when out of range. */
static bool wrap_index(int64_t *i, int64_t dim) {
    if (*i < 0) *i += dim;
    return *i >= 0 && *i < dim;
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze: same data, new shape ---------------------------- */

static aim_status copy_run(aim_op_ctx *c) {
    size_t bytes = aim_tensor_bytes(c->in[0]);
    if (bytes) memcpy(c->out[0]->data, c->in[0]->data, bytes);
    return AIM_OK;
}

/* Resolves Reshape's 0 (copy) and -1 (infer) entries against the input shape. */
static aim_status reshape_resolve(aim_op_ctx *c, const aim_tensor *x, int64_t *dims, int n,
                                  bool allowzero) {
    int infer_at = -1;
    size_t known = 1;
    bool has_zero = false;
    for (int i = 0; i < n; i++) {
        if (dims[i] == -1) {
            if (infer_at >= 0) return aim_op_fail(c, AIM_ERR_PARSE, "shape has more than one -1");
            infer_at = i;
            continue;
        }
        if (dims[i] < -1)
            return aim_op_fail(c, AIM_ERR_PARSE, "shape has dimension %lld", (long long)dims[i]);
        if (dims[i] == 0 && !allowzero) {
            if (i >= x->rank)
                return aim_op_fail(c, AIM_ERR_PARSE, "shape copies dimension %d of a rank-%d input",
                                   i, x->rank);
            dims[i] = x->dims[i];
        }
        if (dims[i] == 0) has_zero = true;
        if (!aim_mul_size(known, (size_t)dims[i], &known))
            return aim_op_fail(c, AIM_ERR_LIMIT, "shape overflows");
    }
    size_t total = aim_tensor_count(x);
    if (infer_at >= 0) {
        if (has_zero && allowzero)
            return aim_op_fail(c, AIM_ERR_PARSE, "shape has both -1 and 0 with allowzero");
        if (known == 0 || total % known != 0)
            return aim_op_fail(c, AIM_ERR_PARSE, "cannot infer -1: %zu elements into blocks of %zu",
                               total, known);
        dims[infer_at] = (int64_t)(total / known);
    } else if (known != total) {
        return aim_op_fail(c, AIM_ERR_PARSE, "shape has %zu elements, the input %zu", known, total);
    }
    return AIM_OK;
}

static aim_status reshape_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, c->opset < 5 ? 1 : 2, c->opset < 5 ? 1 : 2);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if ((st = check_movable(c, x, "input")) != AIM_OK) return st;
    int64_t dims[AIM_MAX_RANK];
    int n;
    if (c->opset < 5) {
        if ((st = attr_ints(c, "shape", dims, AIM_MAX_RANK, &n)) != AIM_OK) return st;
        if (n < 0) return aim_op_fail(c, AIM_ERR_PARSE, "attribute 'shape' is missing");
    } else {
        if (!available(c->in[1])) return all_dynamic(c);
        if ((st = read_ints(c, c->in[1], "shape", dims, AIM_MAX_RANK, &n)) != AIM_OK) return st;
    }
    bool allowzero = c->opset >= 14 && aim_op_attr_int(c, "allowzero", 0) != 0;
    if ((st = reshape_resolve(c, x, dims, n, allowzero)) != AIM_OK) return st;
    return aim_op_set_output(c, 0, x->dtype, n, dims);
}

static aim_status flatten_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 1, 1);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if ((st = check_movable(c, x, "input")) != AIM_OK) return st;
    int64_t axis = aim_op_attr_int(c, "axis", 1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis > x->rank)
        return aim_op_fail(c, AIM_ERR_PARSE, "axis %lld is out of range for rank %d",
                           (long long)aim_op_attr_int(c, "axis", 1), x->rank);
    int64_t dims[2] = {dims_product(x->dims, 0, (int)axis),
                       dims_product(x->dims, (int)axis, x->rank)};
    return aim_op_set_output(c, 0, x->dtype, 2, dims);
}

/* Squeeze/Unsqueeze axes: attribute before opset 13, optional input after. *n = -1: none. */
static aim_status squeeze_axes(aim_op_ctx *c, int64_t *axes, int *n, bool *ready) {
    *ready = true;
    if (c->opset < 13) return attr_ints(c, "axes", axes, AIM_MAX_RANK, n);
    *n = -1;
    const aim_tensor *a = aim_op_input(c, 1);
    if (!a) return AIM_OK;
    if (!available(a)) {
        *ready = false;
        return AIM_OK;
    }
    return read_ints(c, a, "axes", axes, AIM_MAX_RANK, n);
}

static aim_status squeeze_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 1, c->opset < 13 ? 1 : 2);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if ((st = check_movable(c, x, "input")) != AIM_OK) return st;
    int64_t axes[AIM_MAX_RANK];
    int n, norm[AIM_MAX_RANK];
    bool ready;
    if ((st = squeeze_axes(c, axes, &n, &ready)) != AIM_OK) return st;
    if (!ready) return all_dynamic(c);
    bool drop[AIM_MAX_RANK] = {false};
    if (n < 0) {
        for (int d = 0; d < x->rank; d++)
            drop[d] = x->dims[d] == 1;
    } else {
        if ((st = normalize_axes(c, axes, n, x->rank, norm)) != AIM_OK) return st;
        for (int i = 0; i < n; i++) {
            if (x->dims[norm[i]] != 1)
                return aim_op_fail(c, AIM_ERR_PARSE, "cannot squeeze axis %d of size %lld", norm[i],
                                   (long long)x->dims[norm[i]]);
            drop[norm[i]] = true;
        }
    }
    int64_t dims[AIM_MAX_RANK];
    int r = 0;
    for (int d = 0; d < x->rank; d++)
        if (!drop[d]) dims[r++] = x->dims[d];
    return aim_op_set_output(c, 0, x->dtype, r, dims);
}

static aim_status unsqueeze_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, c->opset < 13 ? 1 : 2, c->opset < 13 ? 1 : 2);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if ((st = check_movable(c, x, "input")) != AIM_OK) return st;
    int64_t axes[AIM_MAX_RANK];
    int n, norm[AIM_MAX_RANK];
    bool ready;
    if ((st = squeeze_axes(c, axes, &n, &ready)) != AIM_OK) return st;
    if (!ready) return all_dynamic(c);
    if (n < 0) return aim_op_fail(c, AIM_ERR_PARSE, "axes are missing");
    int rank = x->rank + n;
    if (rank > AIM_MAX_RANK)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank, AIM_MAX_RANK);
    if ((st = normalize_axes(c, axes, n, rank, norm)) != AIM_OK) return st;
    bool inserted[AIM_MAX_RANK] = {false};
    for (int i = 0; i < n; i++)
        inserted[norm[i]] = true;
    int64_t dims[AIM_MAX_RANK];
    for (int d = 0, k = 0; d < rank; d++)
        dims[d] = inserted[d] ? 1 : x->dims[k++];
    return aim_op_set_output(c, 0, x->dtype, rank, dims);
}

/* ---- Transpose ----------------------------------------------------------------------------- */

static aim_status transpose_perm(const aim_op_ctx *c, int rank, int *perm) {
    size_t n;
    const int64_t *p = aim_op_attr_ints(c, "perm", &n);
    if (!aim_op_attr(c, "perm")) {
        for (int d = 0; d < rank; d++)
            perm[d] = rank - 1 - d;
        return AIM_OK;
    }
    if (n != (size_t)rank)
        return aim_op_fail(c, AIM_ERR_PARSE, "perm has %zu entries for rank %d", n, rank);
    bool seen[AIM_MAX_RANK] = {false};
    for (int d = 0; d < rank; d++) {
        if (p[d] < 0 || p[d] >= rank || seen[p[d]])
            return aim_op_fail(c, AIM_ERR_PARSE, "perm is not a permutation of 0..%d", rank - 1);
        seen[p[d]] = true;
        perm[d] = (int)p[d];
    }
    return AIM_OK;
}

static aim_status transpose_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 1, 1);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if ((st = check_movable(c, x, "input")) != AIM_OK) return st;
    int perm[AIM_MAX_RANK];
    if ((st = transpose_perm(c, x->rank, perm)) != AIM_OK) return st;
    int64_t dims[AIM_MAX_RANK];
    for (int d = 0; d < x->rank; d++)
        dims[d] = x->dims[perm[d]];
    return aim_op_set_output(c, 0, x->dtype, x->rank, dims);
}

static aim_status transpose_run(aim_op_ctx *c) {
    const aim_tensor *x = c->in[0];
    int perm[AIM_MAX_RANK];
    aim_status st = transpose_perm(c, x->rank, perm);
    if (st != AIM_OK) return st;
    int64_t in_strides[AIM_MAX_RANK], src_strides[AIM_MAX_RANK];
    aim_op_strides(x->rank, x->dims, in_strides);
    for (int d = 0; d < x->rank; d++)
        src_strides[d] = in_strides[perm[d]];
    aim_op_strided_copy(c->out[0]->data, NULL, x->data, src_strides, x->rank, c->out[0]->dims,
                        esize_of(x));
    return AIM_OK;
}

/* ---- Concat -------------------------------------------------------------------------------- */

static aim_status concat_axis(const aim_op_ctx *c, int rank, int *axis) {
    if (c->opset >= 4 && !aim_op_attr(c, "axis"))
        return aim_op_fail(c, AIM_ERR_PARSE, "attribute 'axis' is missing");
    return aim_op_axis(c, aim_op_attr_int(c, "axis", 1), rank, axis);
}

static aim_status concat_infer(aim_op_ctx *c) {
    if (c->n_in < 1) return aim_op_fail(c, AIM_ERR_PARSE, "needs at least one input");
    for (int i = 0; i < c->n_in; i++)
        if (!c->in[i]) return aim_op_fail(c, AIM_ERR_PARSE, "input %d is missing", i);
    const aim_tensor *first = c->in[0];
    aim_status st = check_movable(c, first, "input 0");
    if (st != AIM_OK) return st;
    if (first->rank < 1) return aim_op_fail(c, AIM_ERR_PARSE, "cannot concatenate scalars");
    int axis;
    if ((st = concat_axis(c, first->rank, &axis)) != AIM_OK) return st;
    int64_t dims[AIM_MAX_RANK];
    memcpy(dims, first->dims, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < c->n_in; i++) {
        const aim_tensor *t = c->in[i];
        bool ok = t->dtype == first->dtype && t->rank == first->rank;
        for (int d = 0; ok && d < t->rank; d++)
            ok = d == axis || t->dims[d] == first->dims[d];
        if (!ok) {
            char a[96], b[96];
            return aim_op_fail(c, AIM_ERR_PARSE, "input %d (%s %s) does not match input 0 (%s %s)",
                               i, aim_dtype_name(t->dtype), aim_tensor_shape_str(t, a, sizeof a),
                               aim_dtype_name(first->dtype),
                               aim_tensor_shape_str(first, b, sizeof b));
        }
        dims[axis] += t->dims[axis];
    }
    return aim_op_set_output(c, 0, first->dtype, first->rank, dims);
}

static aim_status concat_run(aim_op_ctx *c) {
    aim_tensor *y = c->out[0];
    int axis;
    aim_status st = concat_axis(c, y->rank, &axis);
    if (st != AIM_OK) return st;
    int64_t out_strides[AIM_MAX_RANK];
    aim_op_strides(y->rank, y->dims, out_strides);
    size_t es = esize_of(y);
    int64_t offset = 0;
    for (int i = 0; i < c->n_in; i++) {
        const aim_tensor *t = c->in[i];
        char *dst = (char *)y->data + offset * out_strides[axis] * (int64_t)es;
        aim_op_strided_copy(dst, out_strides, t->data, NULL, t->rank, t->dims, es);
        offset += t->dims[axis];
    }
    return AIM_OK;
}

/* ---- Split --------------------------------------------------------------------------------- */

/* Part sizes along the axis; *ready = false when a split input is not known yet. */
static aim_status split_sizes(const aim_op_ctx *c, int64_t dim, int64_t *sizes, bool *ready) {
    int64_t split[AIM_MAX_RANK * 32];
    int n = -1, max = (int)(sizeof split / sizeof split[0]);
    aim_status st;
    *ready = true;
    const aim_tensor *s = c->opset >= 13 || c->opset == 1 ? aim_op_input(c, 1) : NULL;
    if (s) {
        if (!available(s)) {
            *ready = false;
            return AIM_OK;
        }
        if ((st = read_ints(c, s, "split", split, max, &n)) != AIM_OK) return st;
    } else if (c->opset < 13 && (st = attr_ints(c, "split", split, max, &n)) != AIM_OK) {
        return st;
    }
    if (n >= 0) {
        if (n != c->n_out)
            return aim_op_fail(c, AIM_ERR_PARSE, "split has %d parts for %d outputs", n, c->n_out);
        int64_t sum = 0;
        for (int i = 0; i < n; i++) {
            if (split[i] < 0 || split[i] > dim)
                return aim_op_fail(c, AIM_ERR_PARSE, "split part %lld is invalid",
                                   (long long)split[i]);
            sizes[i] = split[i];
            sum += split[i];
        }
        if (sum != dim)
            return aim_op_fail(c, AIM_ERR_PARSE, "split parts sum to %lld, the axis has %lld",
                               (long long)sum, (long long)dim);
        return AIM_OK;
    }
    int64_t parts = c->n_out;
    if (c->opset >= 18 && aim_op_attr(c, "num_outputs")) {
        parts = aim_op_attr_int(c, "num_outputs", 0);
        if (parts != c->n_out)
            return aim_op_fail(c, AIM_ERR_PARSE, "num_outputs %lld differs from the %d outputs",
                               (long long)parts, c->n_out);
        int64_t chunk = (dim + parts - 1) / parts;
        for (int i = 0; i < c->n_out; i++) {
            int64_t left = dim - chunk * i;
            sizes[i] = left < 0 ? 0 : left < chunk ? left : chunk;
        }
        return AIM_OK;
    }
    if (dim % parts != 0)
        return aim_op_fail(c, AIM_ERR_PARSE, "axis of %lld cannot be split into %lld equal parts",
                           (long long)dim, (long long)parts);
    for (int i = 0; i < c->n_out; i++)
        sizes[i] = dim / parts;
    return AIM_OK;
}

static aim_status split_prepare_sizes(aim_op_ctx *c, int *axis, int64_t *sizes, bool *ready) {
    const aim_tensor *x = c->in[0];
    if (c->n_out < 1 || c->n_out > AIM_MAX_RANK * 32)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "has %d outputs", c->n_out);
    if (x->rank < 1) return aim_op_fail(c, AIM_ERR_PARSE, "cannot split a scalar");
    aim_status st = aim_op_axis(c, aim_op_attr_int(c, "axis", 0), x->rank, axis);
    if (st != AIM_OK) return st;
    return split_sizes(c, x->dims[*axis], sizes, ready);
}

static aim_status split_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 1, c->opset >= 13 || c->opset == 1 ? 2 : 1);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if ((st = check_movable(c, x, "input")) != AIM_OK) return st;
    int axis;
    int64_t sizes[AIM_MAX_RANK * 32];
    bool ready;
    if ((st = split_prepare_sizes(c, &axis, sizes, &ready)) != AIM_OK) return st;
    if (!ready) return all_dynamic(c);
    int64_t dims[AIM_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    for (int i = 0; i < c->n_out; i++) {
        dims[axis] = sizes[i];
        if ((st = aim_op_set_output(c, i, x->dtype, x->rank, dims)) != AIM_OK) return st;
    }
    return AIM_OK;
}

static aim_status split_run(aim_op_ctx *c) {
    const aim_tensor *x = c->in[0];
    int axis;
    int64_t sizes[AIM_MAX_RANK * 32];
    bool ready;
    aim_status st = split_prepare_sizes(c, &axis, sizes, &ready);
    if (st != AIM_OK) return st;
    int64_t in_strides[AIM_MAX_RANK];
    aim_op_strides(x->rank, x->dims, in_strides);
    size_t es = esize_of(x);
    int64_t offset = 0;
    for (int i = 0; i < c->n_out; i++) {
        aim_tensor *y = c->out[i];
        if (y) {
            const char *src = (const char *)x->data + offset * in_strides[axis] * (int64_t)es;
            aim_op_strided_copy(y->data, NULL, src, in_strides, y->rank, y->dims, es);
        }
        offset += sizes[i];
    }
    return AIM_OK;
}

/* ---- Slice --------------------------------------------------------------------------------- */

typedef struct {
    int64_t start[AIM_MAX_RANK], step[AIM_MAX_RANK], dims[AIM_MAX_RANK];
} slice_plan;

/* Clamps one axis' start/end as the spec says and returns the element count. */
static int64_t slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *first) {
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    if (step > 0) {
        start = start < 0 ? 0 : start > dim ? dim : start;
        end = end < 0 ? 0 : end > dim ? dim : end;
        *first = start;
        return end > start ? 1 + (end - start - 1) / step : 0;
    }
    start = start < 0 ? 0 : start > dim - 1 ? dim - 1 : start;
    end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
    *first = start;
    int64_t back = step == INT64_MIN ? INT64_MAX : -step;
    return start > end ? 1 + (start - end - 1) / back : 0;
}

/* Reads starts/ends/axes/steps (attributes before opset 10, inputs after). */
static aim_status slice_lists(const aim_op_ctx *c, int64_t lists[4][AIM_MAX_RANK], int n[4],
                              bool *ready) {
    static const char *const names[4] = {"starts", "ends", "axes", "steps"};
    aim_status st;
    *ready = true;
    for (int k = 0; k < 4; k++) {
        n[k] = -1;
        if (c->opset < 10) {
            if (k < 3 && (st = attr_ints(c, names[k], lists[k], AIM_MAX_RANK, &n[k])) != AIM_OK)
                return st;
            continue;
        }
        const aim_tensor *t = aim_op_input(c, k + 1);
        if (!t) continue;
        if (!available(t)) {
            *ready = false;
            return AIM_OK;
        }
        if ((st = read_ints(c, t, names[k], lists[k], AIM_MAX_RANK, &n[k])) != AIM_OK) return st;
    }
    if (n[0] < 0 || n[1] < 0) return aim_op_fail(c, AIM_ERR_PARSE, "starts or ends are missing");
    for (int k = 1; k < 4; k++)
        if (n[k] >= 0 && n[k] != n[0])
            return aim_op_fail(c, AIM_ERR_PARSE, "%s has %d values, starts %d", names[k], n[k],
                               n[0]);
    return AIM_OK;
}

static aim_status slice_make_plan(const aim_op_ctx *c, slice_plan *p, bool *ready) {
    const aim_tensor *x = c->in[0];
    int64_t lists[4][AIM_MAX_RANK];
    int n[4], axes[AIM_MAX_RANK];
    aim_status st = slice_lists(c, lists, n, ready);
    if (st != AIM_OK || !*ready) return st;
    for (int i = 0; i < n[0]; i++)
        if (n[2] < 0) lists[2][i] = i;
    if ((st = normalize_axes(c, lists[2], n[0], x->rank, axes)) != AIM_OK) return st;
    for (int d = 0; d < x->rank; d++) {
        p->start[d] = 0;
        p->step[d] = 1;
        p->dims[d] = x->dims[d];
    }
    for (int i = 0; i < n[0]; i++) {
        int64_t step = n[3] >= 0 ? lists[3][i] : 1;
        if (step == 0) return aim_op_fail(c, AIM_ERR_PARSE, "step of axis %d is 0", axes[i]);
        int d = axes[i];
        p->step[d] = step;
        p->dims[d] = slice_axis(x->dims[d], lists[0][i], lists[1][i], step, &p->start[d]);
    }
    return AIM_OK;
}

static aim_status slice_infer(aim_op_ctx *c) {
    aim_status st = c->opset < 10 ? aim_op_check_inputs(c, 1, 1) : aim_op_check_inputs(c, 3, 5);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if ((st = check_movable(c, x, "input")) != AIM_OK) return st;
    slice_plan p;
    bool ready;
    if ((st = slice_make_plan(c, &p, &ready)) != AIM_OK) return st;
    if (!ready) return all_dynamic(c);
    return aim_op_set_output(c, 0, x->dtype, x->rank, p.dims);
}

static aim_status slice_run(aim_op_ctx *c) {
    const aim_tensor *x = c->in[0];
    slice_plan p;
    bool ready;
    aim_status st = slice_make_plan(c, &p, &ready);
    if (st != AIM_OK) return st;
    if (aim_tensor_count(c->out[0]) == 0) return AIM_OK;
    int64_t in_strides[AIM_MAX_RANK], src_strides[AIM_MAX_RANK], offset = 0;
    aim_op_strides(x->rank, x->dims, in_strides);
    for (int d = 0; d < x->rank; d++) {
        /* A huge step only ever selects one element: keep its stride from overflowing. */
        src_strides[d] = p.dims[d] > 1 ? in_strides[d] * p.step[d] : 0;
        offset += p.start[d] * in_strides[d];
    }
    size_t es = esize_of(x);
    aim_op_strided_copy(c->out[0]->data, NULL, (const char *)x->data + offset * (int64_t)es,
                        src_strides, x->rank, p.dims, es);
    return AIM_OK;
}

/* ---- Gather, GatherElements, GatherND ------------------------------------------------------ */

static aim_status gather_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 2, 2);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0], *idx = c->in[1];
    if ((st = check_movable(c, x, "data")) != AIM_OK) return st;
    if ((st = check_index_type(c, idx, "indices")) != AIM_OK) return st;
    if (x->rank < 1) return aim_op_fail(c, AIM_ERR_PARSE, "data must have rank >= 1");
    int axis;
    if ((st = aim_op_axis(c, aim_op_attr_int(c, "axis", 0), x->rank, &axis)) != AIM_OK) return st;
    int rank = x->rank - 1 + idx->rank;
    if (rank > AIM_MAX_RANK)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank, AIM_MAX_RANK);
    int64_t dims[AIM_MAX_RANK];
    int r = 0;
    for (int d = 0; d < axis; d++)
        dims[r++] = x->dims[d];
    for (int d = 0; d < idx->rank; d++)
        dims[r++] = idx->dims[d];
    for (int d = axis + 1; d < x->rank; d++)
        dims[r++] = x->dims[d];
    return aim_op_set_output(c, 0, x->dtype, rank, dims);
}

static aim_status gather_run(aim_op_ctx *c) {
    const aim_tensor *x = c->in[0], *idx = c->in[1];
    int axis;
    aim_status st = aim_op_axis(c, aim_op_attr_int(c, "axis", 0), x->rank, &axis);
    if (st != AIM_OK) return st;
    int64_t outer = dims_product(x->dims, 0, axis), dim = x->dims[axis];
    size_t block = (size_t)dims_product(x->dims, axis + 1, x->rank) * esize_of(x);
    size_t n = aim_tensor_count(idx);
    char *out = c->out[0]->data;
    for (int64_t o = 0; o < outer; o++) {
        for (size_t j = 0; j < n; j++) {
            int64_t i = aim_tensor_get_i64(idx, j);
            if (!wrap_index(&i, dim))
                return aim_op_fail(
                    c, AIM_ERR_INVALID_ARG, "index %lld is out of range [-%lld, %lld)",
                    (long long)aim_tensor_get_i64(idx, j), (long long)dim, (long long)dim);
            memcpy(out, (const char *)x->data + ((size_t)(o * dim + i)) * block, block);
            out += block;
        }
    }
    return AIM_OK;
}

static aim_status gather_elements_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 2, 2);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0], *idx = c->in[1];
    if ((st = check_movable(c, x, "data")) != AIM_OK) return st;
    if ((st = check_index_type(c, idx, "indices")) != AIM_OK) return st;
    int axis;
    if ((st = aim_op_axis(c, aim_op_attr_int(c, "axis", 0), x->rank, &axis)) != AIM_OK) return st;
    if (idx->rank != x->rank || x->rank < 1)
        return aim_op_fail(c, AIM_ERR_PARSE, "indices rank %d differs from data rank %d", idx->rank,
                           x->rank);
    for (int d = 0; d < x->rank; d++)
        if (d != axis && idx->dims[d] > x->dims[d])
            return aim_op_fail(c, AIM_ERR_PARSE, "indices dimension %d exceeds the data's", d);
    return aim_op_set_output(c, 0, x->dtype, idx->rank, idx->dims);
}

static aim_status gather_elements_run(aim_op_ctx *c) {
    const aim_tensor *x = c->in[0], *idx = c->in[1];
    int axis;
    aim_status st = aim_op_axis(c, aim_op_attr_int(c, "axis", 0), x->rank, &axis);
    if (st != AIM_OK) return st;
    int64_t strides[AIM_MAX_RANK], pos[AIM_MAX_RANK] = {0};
    aim_op_strides(x->rank, x->dims, strides);
    size_t n = aim_tensor_count(idx), es = esize_of(x);
    for (size_t j = 0; j < n; j++) {
        int64_t i = aim_tensor_get_i64(idx, j);
        if (!wrap_index(&i, x->dims[axis]))
            return aim_op_fail(c, AIM_ERR_INVALID_ARG,
                               "index %lld is out of range for axis size %lld",
                               (long long)aim_tensor_get_i64(idx, j), (long long)x->dims[axis]);
        int64_t offset = 0;
        for (int d = 0; d < x->rank; d++)
            offset += (d == axis ? i : pos[d]) * strides[d];
        memcpy((char *)c->out[0]->data + j * es, (const char *)x->data + offset * (int64_t)es, es);
        for (int d = x->rank - 1; d >= 0 && ++pos[d] == idx->dims[d]; d--)
            pos[d] = 0;
    }
    return AIM_OK;
}

static int gathernd_batch_dims(const aim_op_ctx *c) {
    return c->opset >= 12 ? (int)aim_op_attr_int(c, "batch_dims", 0) : 0;
}

static aim_status gathernd_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 2, 2);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0], *idx = c->in[1];
    if ((st = check_movable(c, x, "data")) != AIM_OK) return st;
    if ((st = check_index_type(c, idx, "indices")) != AIM_OK) return st;
    int64_t b64 = c->opset >= 12 ? aim_op_attr_int(c, "batch_dims", 0) : 0;
    int r = x->rank, q = idx->rank;
    if (r < 1 || q < 1 || b64 < 0 || b64 >= (q < r ? q : r))
        return aim_op_fail(c, AIM_ERR_PARSE, "invalid ranks (data %d, indices %d, batch_dims %lld)",
                           r, q, (long long)b64);
    int b = (int)b64;
    int64_t k = idx->dims[q - 1];
    if (k > r - b)
        return aim_op_fail(c, AIM_ERR_PARSE, "index tuples of %lld exceed data rank %d",
                           (long long)k, r);
    for (int d = 0; d < b; d++)
        if (x->dims[d] != idx->dims[d])
            return aim_op_fail(c, AIM_ERR_PARSE, "batch dimension %d differs", d);
    int64_t dims[AIM_MAX_RANK * 2];
    int rank = 0;
    for (int d = 0; d < q - 1; d++)
        dims[rank++] = idx->dims[d];
    for (int d = b + (int)k; d < r; d++)
        dims[rank++] = x->dims[d];
    if (rank > AIM_MAX_RANK)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank, AIM_MAX_RANK);
    return aim_op_set_output(c, 0, x->dtype, rank, dims);
}

/* Element offset in data of index tuple t (k values) after batch dims b; false if out of range. */
static bool nd_offset(const aim_tensor *x, const aim_tensor *idx, size_t t, int k, int b,
                      const int64_t *strides, int64_t *offset) {
    *offset = 0;
    for (int j = 0; j < k; j++) {
        int64_t i = aim_tensor_get_i64(idx, t * (size_t)k + (size_t)j);
        if (!wrap_index(&i, x->dims[b + j])) return false;
        *offset += i * strides[b + j];
    }
    return true;
}

static aim_status gathernd_run(aim_op_ctx *c) {
    const aim_tensor *x = c->in[0], *idx = c->in[1];
    int b = gathernd_batch_dims(c), q = idx->rank;
    int k = (int)idx->dims[q - 1];
    int64_t strides[AIM_MAX_RANK];
    aim_op_strides(x->rank, x->dims, strides);
    int64_t batches = dims_product(idx->dims, 0, b), tuples = dims_product(idx->dims, b, q - 1);
    int64_t batch_stride = dims_product(x->dims, b, x->rank);
    size_t es = esize_of(x), slice = (size_t)dims_product(x->dims, b + k, x->rank) * es;
    char *out = c->out[0]->data;
    for (int64_t bi = 0; bi < batches; bi++) {
        for (int64_t t = 0; t < tuples; t++) {
            int64_t offset;
            if (!nd_offset(x, idx, (size_t)(bi * tuples + t), k, b, strides, &offset))
                return aim_op_fail(c, AIM_ERR_INVALID_ARG, "index tuple %lld is out of range",
                                   (long long)(bi * tuples + t));
            memcpy(out, (const char *)x->data + (size_t)(bi * batch_stride + offset) * es, slice);
            out += slice;
        }
    }
    return AIM_OK;
}

/* ---- ScatterND ----------------------------------------------------------------------------- */

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

static aim_status scatter_reduction(const aim_op_ctx *c, int *red) {
    const char *s = c->opset >= 16 ? aim_op_attr_string(c, "reduction", "none") : "none";
    static const char *const names[] = {"none", "add", "mul", "max", "min"};
    int allowed = c->opset >= 18 ? 5 : 3;
    for (int i = 0; i < allowed; i++)
        if (strcmp(s, names[i]) == 0) {
            *red = i;
            return AIM_OK;
        }
    return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "reduction '%s' is not supported", s);
}

/* Stores an integer into any integer type, wrapping like a two's-complement truncation. */
static void set_i64(aim_tensor *t, size_t i, int64_t v) {
    uint64_t u = (uint64_t)v;
    switch (t->dtype) {
    case AIM_DTYPE_INT64:
    case AIM_DTYPE_UINT64: ((uint64_t *)t->data)[i] = u; break;
    case AIM_DTYPE_INT32:
    case AIM_DTYPE_UINT32: ((uint32_t *)t->data)[i] = (uint32_t)u; break;
    case AIM_DTYPE_INT16:
    case AIM_DTYPE_UINT16: ((uint16_t *)t->data)[i] = (uint16_t)u; break;
    case AIM_DTYPE_INT8:
    case AIM_DTYPE_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)u; break;
    case AIM_DTYPE_BOOL: ((uint8_t *)t->data)[i] = v != 0; break;
    default: aim_tensor_set_f64(t, i, (double)v); break;
    }
}

/* out[i] = out[i] (op) u[j], exact for 64-bit integers. */
static void reduce_into(aim_tensor *out, size_t i, const aim_tensor *u, size_t j, int red) {
    if (aim_dtype_is_float(out->dtype)) {
        double a = aim_tensor_get_f64(out, i), b = aim_tensor_get_f64(u, j);
        double r = red == RED_ADD   ? a + b
                   : red == RED_MUL ? a * b
                   : red == RED_MAX ? fmax(a, b)
                                    : fmin(a, b);
        aim_tensor_set_f64(out, i, r);
        return;
    }
    int64_t a = aim_tensor_get_i64(out, i), b = aim_tensor_get_i64(u, j);
    int64_t r = red == RED_ADD   ? (int64_t)((uint64_t)a + (uint64_t)b)
                : red == RED_MUL ? (int64_t)((uint64_t)a * (uint64_t)b)
                : red == RED_MAX ? (a > b ? a : b)
                                 : (a < b ? a : b);
    set_i64(out, i, r);
}

static aim_status scatternd_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 3, 3);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0], *idx = c->in[1], *u = c->in[2];
    int red = RED_NONE;
    if ((st = scatter_reduction(c, &red)) != AIM_OK) return st;
    if ((st = check_movable(c, x, "data")) != AIM_OK) return st;
    if ((st = check_index_type(c, idx, "indices")) != AIM_OK) return st;
    if (u->dtype != x->dtype)
        return aim_op_fail(c, AIM_ERR_PARSE, "updates type differs from data");
    if (red != RED_NONE && !aim_dtype_is_float(x->dtype) && !aim_dtype_is_integer(x->dtype))
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "reduction on %s data",
                           aim_dtype_name(x->dtype));
    int r = x->rank, q = idx->rank;
    if (r < 1 || q < 1 || idx->dims[q - 1] > r)
        return aim_op_fail(c, AIM_ERR_PARSE, "invalid ranks (data %d, indices %d)", r, q);
    int k = (int)idx->dims[q - 1];
    bool ok = u->rank == q - 1 + r - k;
    for (int d = 0; ok && d < q - 1; d++)
        ok = u->dims[d] == idx->dims[d];
    for (int d = k; ok && d < r; d++)
        ok = u->dims[q - 1 + d - k] == x->dims[d];
    if (!ok) return aim_op_fail(c, AIM_ERR_PARSE, "updates shape does not match indices and data");
    return aim_op_set_output(c, 0, x->dtype, x->rank, x->dims);
}

static aim_status scatternd_run(aim_op_ctx *c) {
    const aim_tensor *x = c->in[0], *idx = c->in[1], *u = c->in[2];
    aim_tensor *y = c->out[0];
    int red = RED_NONE;
    aim_status st = scatter_reduction(c, &red);
    if (st != AIM_OK) return st;
    memcpy(y->data, x->data, aim_tensor_bytes(x));
    int q = idx->rank, k = (int)idx->dims[q - 1];
    int64_t strides[AIM_MAX_RANK];
    aim_op_strides(x->rank, x->dims, strides);
    size_t tuples = (size_t)dims_product(idx->dims, 0, q - 1);
    size_t slice = (size_t)dims_product(x->dims, k, x->rank), es = esize_of(x);
    for (size_t t = 0; t < tuples; t++) {
        int64_t offset;
        if (!nd_offset(x, idx, t, k, 0, strides, &offset))
            return aim_op_fail(c, AIM_ERR_INVALID_ARG, "index tuple %zu is out of range", t);
        if (red == RED_NONE) {
            memcpy((char *)y->data + (size_t)offset * es, (const char *)u->data + t * slice * es,
                   slice * es);
            continue;
        }
        for (size_t e = 0; e < slice; e++)
            reduce_into(y, (size_t)offset + e, u, t * slice + e, red);
    }
    return AIM_OK;
}

/* ---- Pad ----------------------------------------------------------------------------------- */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

typedef struct {
    int mode;
    int64_t begin[AIM_MAX_RANK], end[AIM_MAX_RANK], dims[AIM_MAX_RANK];
} pad_plan;

static aim_status pad_mode(const aim_op_ctx *c, int *mode) {
    const char *s = aim_op_attr_string(c, "mode", "constant");
    if (strcmp(s, "constant") == 0)
        *mode = PAD_CONSTANT;
    else if (strcmp(s, "reflect") == 0)
        *mode = PAD_REFLECT;
    else if (strcmp(s, "edge") == 0)
        *mode = PAD_EDGE;
    else if (strcmp(s, "wrap") == 0 && c->opset >= 19)
        *mode = PAD_WRAP;
    else
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "mode '%s' is not supported", s);
    return AIM_OK;
}

/* Pads as 2*n values (begins then ends) over the axes they apply to. */
static aim_status pad_values(const aim_op_ctx *c, int64_t *pads, int *n, int *axes, int *n_axes,
                             bool *ready) {
    const aim_tensor *x = c->in[0];
    aim_status st;
    *ready = true;
    *n_axes = x->rank;
    for (int d = 0; d < x->rank; d++)
        axes[d] = d;
    if (c->opset < 11) {
        const char *name = c->opset < 2 ? "paddings" : "pads";
        if ((st = attr_ints(c, name, pads, 2 * AIM_MAX_RANK, n)) != AIM_OK) return st;
        if (*n < 0) return aim_op_fail(c, AIM_ERR_PARSE, "attribute '%s' is missing", name);
        return AIM_OK;
    }
    const aim_tensor *p = c->in[1], *a = aim_op_input(c, 3);
    if (!available(p) || (a && !available(a))) {
        *ready = false;
        return AIM_OK;
    }
    if ((st = read_ints(c, p, "pads", pads, 2 * AIM_MAX_RANK, n)) != AIM_OK) return st;
    if (a) {
        int64_t raw[AIM_MAX_RANK];
        if ((st = read_ints(c, a, "axes", raw, AIM_MAX_RANK, n_axes)) != AIM_OK) return st;
        if ((st = normalize_axes(c, raw, *n_axes, x->rank, axes)) != AIM_OK) return st;
    }
    return AIM_OK;
}

static aim_status pad_make_plan(const aim_op_ctx *c, pad_plan *p, bool *ready) {
    const aim_tensor *x = c->in[0];
    int64_t pads[2 * AIM_MAX_RANK];
    int n, axes[AIM_MAX_RANK], n_axes;
    aim_status st = pad_mode(c, &p->mode);
    if (st != AIM_OK) return st;
    if ((st = pad_values(c, pads, &n, axes, &n_axes, ready)) != AIM_OK || !*ready) return st;
    if (n != 2 * n_axes)
        return aim_op_fail(c, AIM_ERR_PARSE, "pads has %d values for %d axes", n, n_axes);
    for (int d = 0; d < x->rank; d++)
        p->begin[d] = p->end[d] = 0;
    for (int i = 0; i < n_axes; i++) {
        p->begin[axes[i]] = pads[i];
        p->end[axes[i]] = pads[n_axes + i];
    }
    for (int d = 0; d < x->rank; d++) {
        int64_t b = p->begin[d], e = p->end[d];
        if (b < -x->dims[d] || e < -x->dims[d] || b > INT32_MAX * 64LL || e > INT32_MAX * 64LL)
            return aim_op_fail(c, AIM_ERR_PARSE, "pads of axis %d are out of range", d);
        p->dims[d] = x->dims[d] + b + e;
        if (p->dims[d] < 0) return aim_op_fail(c, AIM_ERR_PARSE, "pads make axis %d negative", d);
        if (p->mode != PAD_CONSTANT && x->dims[d] == 0 && p->dims[d] > 0)
            return aim_op_fail(c, AIM_ERR_PARSE, "cannot pad empty axis %d in this mode", d);
    }
    return AIM_OK;
}

static aim_status pad_infer(aim_op_ctx *c) {
    aim_status st = c->opset < 11 ? aim_op_check_inputs(c, 1, 1)
                                  : aim_op_check_inputs(c, 2, c->opset >= 18 ? 4 : 3);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0], *v = aim_op_input(c, 2);
    if ((st = check_movable(c, x, "data")) != AIM_OK) return st;
    if (v && (v->dtype != x->dtype || aim_tensor_count(v) != 1))
        return aim_op_fail(c, AIM_ERR_PARSE, "constant_value must be one %s",
                           aim_dtype_name(x->dtype));
    pad_plan p;
    bool ready;
    if ((st = pad_make_plan(c, &p, &ready)) != AIM_OK) return st;
    if (!ready) return all_dynamic(c);
    return aim_op_set_output(c, 0, x->dtype, x->rank, p.dims);
}

/* Source index of output position o along an axis; -1 for the constant. */
static int64_t pad_source(int mode, int64_t o, int64_t begin, int64_t n) {
    int64_t i = o - begin;
    if (i >= 0 && i < n) return i;
    if (mode == PAD_CONSTANT) return -1;
    if (mode == PAD_EDGE) return i < 0 ? 0 : n - 1;
    if (mode == PAD_WRAP) return ((i % n) + n) % n;
    if (n == 1) return 0;
    int64_t period = 2 * (n - 1);
    i = ((i % period) + period) % period;
    return i < n ? i : period - i;
}

/* The pad value as one element of the data's type. */
static void pad_fill_value(const aim_op_ctx *c, char *value) {
    const aim_tensor *x = c->in[0], *v = aim_op_input(c, 2);
    size_t es = esize_of(x);
    memset(value, 0, es);
    if (c->opset >= 11) {
        if (v) memcpy(value, v->data, es);
        return;
    }
    aim_tensor one = {.dtype = x->dtype, .rank = 0, .data = value};
    aim_tensor_set_f64(&one, 0, aim_op_attr_float(c, "value", 0.0f));
}

static aim_status pad_run(aim_op_ctx *c) {
    const aim_tensor *x = c->in[0];
    aim_tensor *y = c->out[0];
    pad_plan p;
    bool ready;
    aim_status st = pad_make_plan(c, &p, &ready);
    if (st != AIM_OK) return st;
    size_t count = aim_tensor_count(y), es = esize_of(x);
    if (count == 0) return AIM_OK;
    char value[16];
    pad_fill_value(c, value);
    int rank = x->rank;
    size_t total = 0;
    for (int d = 0; d < rank; d++)
        total += (size_t)p.dims[d];
    int64_t *maps = malloc((total + 1) * sizeof *maps), *map[AIM_MAX_RANK];
    if (!maps) return aim_op_fail(c, AIM_ERR_NOMEM, "out of memory");
    int64_t strides[AIM_MAX_RANK], pos[AIM_MAX_RANK] = {0};
    aim_op_strides(rank, x->dims, strides);
    int64_t *m = maps;
    for (int d = 0; d < rank; d++) {
        map[d] = m;
        for (int64_t o = 0; o < p.dims[d]; o++) {
            int64_t s = pad_source(p.mode, o, p.begin[d], x->dims[d]);
            m[o] = s < 0 ? -1 : s * strides[d];
        }
        m += p.dims[d];
    }
    for (size_t e = 0; e < count; e++) {
        int64_t offset = 0;
        for (int d = 0; d < rank && offset >= 0; d++)
            offset = map[d][pos[d]] < 0 ? -1 : offset + map[d][pos[d]];
        const char *src = offset < 0 ? value : (const char *)x->data + (size_t)offset * es;
        memcpy((char *)y->data + e * es, src, es);
        for (int d = rank - 1; d >= 0 && ++pos[d] == p.dims[d]; d--)
            pos[d] = 0;
    }
    free(maps);
    return AIM_OK;
}

/* ---- Tile, Expand -------------------------------------------------------------------------- */

/* Repeats per axis: input before opset 6 was (tiles, axis) scalars, after a 1-D repeats. */
static aim_status tile_repeats(const aim_op_ctx *c, int64_t *reps, bool *ready) {
    const aim_tensor *x = c->in[0];
    aim_status st;
    *ready = true;
    for (int i = 1; i < c->n_in; i++)
        if (!available(c->in[i])) {
            *ready = false;
            return AIM_OK;
        }
    if (c->opset < 6) {
        if ((st = check_index_type(c, c->in[1], "tiles")) != AIM_OK) return st;
        if ((st = check_index_type(c, c->in[2], "axis")) != AIM_OK) return st;
        if (aim_tensor_count(c->in[1]) != 1 || aim_tensor_count(c->in[2]) != 1)
            return aim_op_fail(c, AIM_ERR_PARSE, "tiles and axis must be scalars");
        int axis;
        if ((st = aim_op_axis(c, aim_tensor_get_i64(c->in[2], 0), x->rank, &axis)) != AIM_OK)
            return st;
        for (int d = 0; d < x->rank; d++)
            reps[d] = d == axis ? aim_tensor_get_i64(c->in[1], 0) : 1;
    } else {
        int n;
        if ((st = read_ints(c, c->in[1], "repeats", reps, AIM_MAX_RANK, &n)) != AIM_OK) return st;
        if (n != x->rank)
            return aim_op_fail(c, AIM_ERR_PARSE, "repeats has %d values for rank %d", n, x->rank);
    }
    for (int d = 0; d < x->rank; d++)
        if (reps[d] < 0)
            return aim_op_fail(c, AIM_ERR_PARSE, "repeat %lld of axis %d is negative",
                               (long long)reps[d], d);
    return AIM_OK;
}

static aim_status tile_infer(aim_op_ctx *c) {
    aim_status st = c->opset < 6 ? aim_op_check_inputs(c, 3, 3) : aim_op_check_inputs(c, 2, 2);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if ((st = check_movable(c, x, "input")) != AIM_OK) return st;
    int64_t reps[AIM_MAX_RANK], dims[AIM_MAX_RANK];
    bool ready;
    if ((st = tile_repeats(c, reps, &ready)) != AIM_OK) return st;
    if (!ready) return all_dynamic(c);
    for (int d = 0; d < x->rank; d++) {
        size_t n;
        if (!aim_mul_size((size_t)x->dims[d], (size_t)reps[d], &n) || n > (size_t)INT64_MAX)
            return aim_op_fail(c, AIM_ERR_LIMIT, "tiled axis %d overflows", d);
        dims[d] = (int64_t)n;
    }
    return aim_op_set_output(c, 0, x->dtype, x->rank, dims);
}

static aim_status tile_run(aim_op_ctx *c) {
    const aim_tensor *x = c->in[0];
    int64_t reps[AIM_MAX_RANK], strides[AIM_MAX_RANK];
    bool ready;
    aim_status st = tile_repeats(c, reps, &ready);
    if (st != AIM_OK) return st;
    /* The output viewed as [r0, d0, r1, d1, ...] reads the input with stride 0 on each r. */
    int64_t dims[AIM_OP_COPY_MAX_RANK], src[AIM_OP_COPY_MAX_RANK];
    aim_op_strides(x->rank, x->dims, strides);
    for (int d = 0; d < x->rank; d++) {
        dims[2 * d] = reps[d];
        dims[2 * d + 1] = x->dims[d];
        src[2 * d] = 0;
        src[2 * d + 1] = strides[d];
    }
    aim_op_strided_copy(c->out[0]->data, NULL, x->data, src, 2 * x->rank, dims, esize_of(x));
    return AIM_OK;
}

static aim_status expand_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 2, 2);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if ((st = check_movable(c, x, "input")) != AIM_OK) return st;
    if (!available(c->in[1])) return all_dynamic(c);
    aim_tensor target = {.dtype = x->dtype};
    int n;
    if ((st = read_ints(c, c->in[1], "shape", target.dims, AIM_MAX_RANK, &n)) != AIM_OK) return st;
    for (int d = 0; d < n; d++)
        if (target.dims[d] < 0)
            return aim_op_fail(c, AIM_ERR_PARSE, "shape has dimension %lld",
                               (long long)target.dims[d]);
    target.rank = n;
    int64_t dims[AIM_MAX_RANK];
    int rank;
    if ((st = aim_op_broadcast(c, x, &target, &rank, dims)) != AIM_OK) return st;
    return aim_op_set_output(c, 0, x->dtype, rank, dims);
}

static aim_status expand_run(aim_op_ctx *c) {
    const aim_tensor *x = c->in[0];
    aim_tensor *y = c->out[0];
    int64_t src[AIM_MAX_RANK];
    aim_op_broadcast_strides(x, y->rank, y->dims, src);
    aim_op_strided_copy(y->data, NULL, x->data, src, y->rank, y->dims, esize_of(x));
    return AIM_OK;
}

/* ---- Range, NonZero ------------------------------------------------------------------------ */

static aim_status range_count(const aim_op_ctx *c, int64_t *count) {
    const aim_tensor *s = c->in[0], *l = c->in[1], *d = c->in[2];
    double start = aim_tensor_get_f64(s, 0), limit = aim_tensor_get_f64(l, 0);
    double delta = aim_tensor_get_f64(d, 0);
    if (delta == 0 || isnan(delta) || isnan(start) || isnan(limit))
        return aim_op_fail(c, AIM_ERR_INVALID_ARG, "delta is zero or a value is NaN");
    double n = ceil((limit - start) / delta);
    if (!aim_dtype_is_float(s->dtype)) {
        int64_t a = aim_tensor_get_i64(s, 0), b = aim_tensor_get_i64(l, 0);
        int64_t dl = aim_tensor_get_i64(d, 0);
        n = ceil(((double)b - (double)a) / (double)dl);
    }
    if (n > (double)((int64_t)1 << 40))
        return aim_op_fail(c, AIM_ERR_LIMIT, "range of %.0f elements is too large", n);
    *count = n > 0 ? (int64_t)n : 0;
    return AIM_OK;
}

static aim_status range_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 3, 3);
    if (st != AIM_OK) return st;
    const aim_tensor *s = c->in[0];
    static const int types[] = {AIM_DTYPE_FLOAT, AIM_DTYPE_DOUBLE, AIM_DTYPE_INT16, AIM_DTYPE_INT32,
                                AIM_DTYPE_INT64};
    bool ok = false;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        ok |= s->dtype == types[i];
    if (!ok) return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "type %s", aim_dtype_name(s->dtype));
    for (int i = 0; i < 3; i++)
        if (c->in[i]->dtype != s->dtype || aim_tensor_count(c->in[i]) != 1 || c->in[i]->rank > 1)
            return aim_op_fail(c, AIM_ERR_PARSE, "input %d must be a scalar %s", i,
                               aim_dtype_name(s->dtype));
    for (int i = 0; i < 3; i++)
        if (!c->in[i]->data) return all_dynamic(c);
    int64_t n;
    if ((st = range_count(c, &n)) != AIM_OK) return st;
    return aim_op_set_output(c, 0, s->dtype, 1, &n);
}

static aim_status range_run(aim_op_ctx *c) {
    const aim_tensor *s = c->in[0], *d = c->in[2];
    aim_tensor *y = c->out[0];
    size_t n = aim_tensor_count(y);
    if (aim_dtype_is_float(s->dtype)) {
        double start = aim_tensor_get_f64(s, 0), delta = aim_tensor_get_f64(d, 0);
        for (size_t i = 0; i < n; i++)
            aim_tensor_set_f64(y, i, start + (double)i * delta);
    } else {
        int64_t start = aim_tensor_get_i64(s, 0), delta = aim_tensor_get_i64(d, 0);
        for (size_t i = 0; i < n; i++)
            set_i64(y, i, (int64_t)((uint64_t)start + (uint64_t)i * (uint64_t)delta));
    }
    return AIM_OK;
}

static aim_status nonzero_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 1, 1);
    if (st != AIM_OK) return st;
    if ((st = check_movable(c, c->in[0], "input")) != AIM_OK) return st;
    aim_op_dynamic(c, 0); /* the count of non-zeros is the computation itself */
    return AIM_OK;
}

static bool is_nonzero(const aim_tensor *x, size_t i) {
    if (aim_dtype_is_float(x->dtype)) return aim_tensor_get_f64(x, i) != 0;
    if (x->dtype == AIM_DTYPE_BFLOAT16) return (((const uint16_t *)x->data)[i] & 0x7fff) != 0;
    if (x->dtype == AIM_DTYPE_COMPLEX64 || x->dtype == AIM_DTYPE_COMPLEX128) {
        size_t half = esize_of(x) / 2;
        aim_tensor part = {.dtype = half == 4 ? AIM_DTYPE_FLOAT : AIM_DTYPE_DOUBLE,
                           .data = x->data};
        return aim_tensor_get_f64(&part, 2 * i) != 0 || aim_tensor_get_f64(&part, 2 * i + 1) != 0;
    }
    return aim_tensor_get_i64(x, i) != 0;
}

static aim_status nonzero_run(aim_op_ctx *c) {
    const aim_tensor *x = c->in[0];
    size_t n = aim_tensor_count(x), found = 0;
    for (size_t i = 0; i < n; i++)
        found += is_nonzero(x, i);
    int64_t dims[2] = {x->rank, (int64_t)found};
    aim_status st = aim_op_alloc(c, 0, AIM_DTYPE_INT64, 2, dims);
    if (st != AIM_OK || !c->out[0]) return st;
    int64_t *out = c->out[0]->data, pos[AIM_MAX_RANK] = {0};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_nonzero(x, i)) {
            for (int d = 0; d < x->rank; d++)
                out[(size_t)d * found + k] = pos[d];
            k++;
        }
        for (int d = x->rank - 1; d >= 0 && ++pos[d] == x->dims[d]; d--)
            pos[d] = 0;
    }
    return AIM_OK;
}

/* ---- Table --------------------------------------------------------------------------------- */

const aim_op_def aim_ops_shape[] = {
    {"Reshape", "", 1, 18, NULL, reshape_infer, copy_run, NULL},
    {"Flatten", "", 1, 18, NULL, flatten_infer, copy_run, NULL},
    {"Squeeze", "", 1, 18, NULL, squeeze_infer, copy_run, NULL},
    {"Unsqueeze", "", 1, 18, NULL, unsqueeze_infer, copy_run, NULL},
    {"Transpose", "", 1, 18, NULL, transpose_infer, transpose_run, NULL},
    {"Concat", "", 1, 18, NULL, concat_infer, concat_run, NULL},
    {"Split", "", 1, 18, NULL, split_infer, split_run, NULL},
    {"Slice", "", 1, 18, NULL, slice_infer, slice_run, NULL},
    {"Gather", "", 1, 18, NULL, gather_infer, gather_run, NULL},
    {"GatherElements", "", 11, 18, NULL, gather_elements_infer, gather_elements_run, NULL},
    {"GatherND", "", 11, 18, NULL, gathernd_infer, gathernd_run, NULL},
    {"ScatterND", "", 11, 18, NULL, scatternd_infer, scatternd_run, NULL},
    {"Pad", "", 1, 18, NULL, pad_infer, pad_run, NULL},
    {"Tile", "", 1, 18, NULL, tile_infer, tile_run, NULL},
    {"Expand", "", 8, 18, NULL, expand_infer, expand_run, NULL},
    {"Range", "", 11, 18, NULL, range_infer, range_run, NULL},
    {"NonZero", "", 9, 18, NULL, nonzero_infer, nonzero_run, NULL},
    {0},
};
