/*
 * vision.c: reference kernels of the vision family (see families.h): image resampling (Resize,
 * Upsample), detection post-processing (NonMaxSuppression, RoiAlign) and block rearrangement
 * (DepthToSpace, SpaceToDepth).
 *
 * Resize follows the ONNX reference (onnx/backend/test/case/node/resize.py): each output
 * coordinate is mapped back to the input per axis, each axis contributes a few weighted taps
 * (1-2 for nearest/linear, 4 for cubic), and the output is the tensor product of the taps, which
 * equals the reference's axis-by-axis 1-D interpolation. Values are computed in double.
 *
 * Portable C: the correctness oracle every faster kernel is compared with.
 */
#include "core/util.h"
#include "ops/families.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool available(const aim_tensor *t) {
    return t->data || aim_tensor_count(t) == 0;
}

static bool is_numeric(int dtype) {
    return aim_dtype_size(dtype) > 0 && dtype != AIM_DTYPE_BOOL && dtype != AIM_DTYPE_COMPLEX64 &&
           dtype != AIM_DTYPE_COMPLEX128 && dtype != AIM_DTYPE_BFLOAT16;
}

/* Index of s in names (n entries); -1 when absent. */
static int lookup(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

/* ---- Resize, Upsample: attributes ---------------------------------------------------------- */

enum { MODE_NEAREST, MODE_LINEAR, MODE_CUBIC };
enum {
    CT_HALF_PIXEL,
    CT_PYTORCH_HALF_PIXEL,
    CT_ALIGN_CORNERS,
    CT_ASYMMETRIC,
    CT_TF_CROP_AND_RESIZE,
    CT_TF_HALF_PIXEL_FOR_NN
};
enum { NEAR_PREFER_FLOOR, NEAR_PREFER_CEIL, NEAR_FLOOR, NEAR_CEIL, NEAR_SIMPLE };
enum { KEEP_STRETCH, KEEP_NOT_LARGER, KEEP_NOT_SMALLER };

typedef struct {
    bool legacy; /* Upsample and Resize-10: scales only, asymmetric, "simple" nearest */
    int mode, coord, nearest, keep;
    double cubic_a, extrapolation;
    bool exclude_outside;
    int n_axes; /* -1: all axes */
    int64_t axes[AIM_MAX_RANK];
    int n_scales; /* Upsample-7's scales attribute */
    float scales[AIM_MAX_RANK];
} resize_attrs;

static aim_status resize_parse_modes(aim_op_ctx *c, resize_attrs *a) {
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    static const char *const coords[] = {"half_pixel",         "pytorch_half_pixel",
                                         "align_corners",      "asymmetric",
                                         "tf_crop_and_resize", "tf_half_pixel_for_nn"};
    static const char *const nearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                          "ceil"};
    static const char *const keep[] = {"stretch", "not_larger", "not_smaller"};
    const char *s = aim_op_attr_string(c, "mode", "nearest");
    a->mode = lookup(s, modes, a->legacy ? 2 : 3);
    if (a->mode < 0 && strcmp(s, "bilinear") == 0 && a->legacy) a->mode = MODE_LINEAR;
    if (a->mode < 0) return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "mode '%s' is not supported", s);
    if (a->legacy) {
        a->coord = CT_ASYMMETRIC;
        a->nearest = NEAR_SIMPLE;
        return AIM_OK;
    }
    s = aim_op_attr_string(c, "coordinate_transformation_mode", "half_pixel");
    if ((a->coord = lookup(s, coords, c->opset >= 13 ? 5 : 6)) < 0)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "coordinate_transformation_mode '%s'", s);
    s = aim_op_attr_string(c, "nearest_mode", "round_prefer_floor");
    if ((a->nearest = lookup(s, nearest, 4)) < 0)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "nearest_mode '%s' is not supported", s);
    s = aim_op_attr_string(c, "keep_aspect_ratio_policy", "stretch");
    if ((a->keep = lookup(s, keep, c->opset >= 18 ? 3 : 1)) < 0)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "keep_aspect_ratio_policy '%s'", s);
    return AIM_OK;
}

static aim_status resize_parse(aim_op_ctx *c, resize_attrs *a) {
    aim_status st = resize_parse_modes(c, a);
    if (st != AIM_OK) return st;
    a->cubic_a = aim_op_attr_float(c, "cubic_coeff_a", -0.75f);
    a->extrapolation = aim_op_attr_float(c, "extrapolation_value", 0.0f);
    a->exclude_outside = aim_op_attr_int(c, "exclude_outside", 0) != 0;
    if (aim_op_attr_int(c, "antialias", 0) != 0)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "antialias is not supported");
    size_t n;
    const int64_t *axes = aim_op_attr_ints(c, "axes", &n);
    a->n_axes = -1;
    if (c->opset >= 18 && aim_op_attr(c, "axes")) {
        if (n > AIM_MAX_RANK) return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "too many axes");
        a->n_axes = (int)n;
        if (n) memcpy(a->axes, axes, n * sizeof *axes);
    }
    const float *scales = aim_op_attr_floats(c, "scales", &n);
    a->n_scales = -1;
    if (strcmp(c->node->op_type, "Upsample") == 0 && c->opset < 9) {
        if (n == 0 || n > AIM_MAX_RANK)
            return aim_op_fail(c, AIM_ERR_PARSE, "attribute 'scales' is missing or too long");
        a->n_scales = (int)n;
        memcpy(a->scales, scales, n * sizeof *scales);
    }
    return AIM_OK;
}

static aim_status resize_prepare(aim_op_ctx *c) {
    resize_attrs *a = calloc(1, sizeof *a);
    if (!a) return aim_op_fail(c, AIM_ERR_NOMEM, "out of memory");
    a->legacy = strcmp(c->node->op_type, "Upsample") == 0 || c->opset < 11;
    aim_status st = resize_parse(c, a);
    if (st != AIM_OK) {
        free(a);
        return st;
    }
    c->state = a;
    return AIM_OK;
}

/* ---- Resize: output shape ------------------------------------------------------------------ */

typedef struct {
    int64_t out[AIM_MAX_RANK];
    double scale[AIM_MAX_RANK];
    double roi_start[AIM_MAX_RANK], roi_end[AIM_MAX_RANK];
} resize_plan;

/* Where scales, sizes and roi come from for this op and opset (NULL when absent or empty). */
static void resize_inputs(const aim_op_ctx *c, const aim_tensor **roi, const aim_tensor **scales,
                          const aim_tensor **sizes) {
    const resize_attrs *a = c->state;
    *roi = *scales = *sizes = NULL;
    if (a->legacy) {
        *scales = aim_op_input(c, 1);
        return;
    }
    *roi = aim_op_input(c, 1);
    *scales = aim_op_input(c, 2);
    *sizes = aim_op_input(c, 3);
    if (*roi && aim_tensor_count(*roi) == 0) *roi = NULL;
    if (*scales && aim_tensor_count(*scales) == 0) *scales = NULL;
    if (*sizes && aim_tensor_count(*sizes) == 0) *sizes = NULL;
}

/* The axes that scales/sizes/roi list (all axes unless opset 18's axes attribute). */
static aim_status resize_axes(const aim_op_ctx *c, int rank, int *axes, int *n) {
    const resize_attrs *a = c->state;
    *n = a->n_axes < 0 ? rank : a->n_axes;
    for (int i = 0; i < *n; i++) {
        aim_status st = aim_op_axis(c, a->n_axes < 0 ? i : a->axes[i], rank, &axes[i]);
        if (st != AIM_OK) return st;
        for (int j = 0; j < i; j++)
            if (axes[j] == axes[i])
                return aim_op_fail(c, AIM_ERR_PARSE, "axis %d is repeated", axes[i]);
    }
    return AIM_OK;
}

static aim_status resize_from_scales(const aim_op_ctx *c, const aim_tensor *scales, const int *axes,
                                     int n, resize_plan *p) {
    const resize_attrs *a = c->state;
    const aim_tensor *x = c->in[0];
    int count = a->n_scales >= 0 ? a->n_scales : (int)aim_tensor_count(scales);
    if (count != n)
        return aim_op_fail(c, AIM_ERR_PARSE, "scales has %d values for %d axes", count, n);
    if (scales && !aim_dtype_is_float(scales->dtype))
        return aim_op_fail(c, AIM_ERR_PARSE, "scales must be floating point");
    for (int i = 0; i < n; i++) {
        double s = a->n_scales >= 0 ? a->scales[i] : aim_tensor_get_f64(scales, (size_t)i);
        int d = axes[i];
        if (!(s > 0) || (double)x->dims[d] * s > 4e18)
            return aim_op_fail(c, AIM_ERR_PARSE, "scale %g of axis %d is invalid", s, d);
        p->scale[d] = s;
        p->out[d] = (int64_t)floor((double)x->dims[d] * s);
    }
    return AIM_OK;
}

static aim_status resize_from_sizes(const aim_op_ctx *c, const aim_tensor *sizes, const int *axes,
                                    int n, resize_plan *p) {
    const resize_attrs *a = c->state;
    const aim_tensor *x = c->in[0];
    if (sizes->dtype != AIM_DTYPE_INT64 || (int)aim_tensor_count(sizes) != n)
        return aim_op_fail(c, AIM_ERR_PARSE, "sizes must be %d int64 values", n);
    double common = a->keep == KEEP_NOT_LARGER ? INFINITY : 0;
    for (int i = 0; i < n; i++) {
        int64_t size = aim_tensor_get_i64(sizes, (size_t)i);
        int d = axes[i];
        if (size < 0 || (x->dims[d] == 0 && size > 0))
            return aim_op_fail(c, AIM_ERR_PARSE, "size %lld of axis %d is invalid", (long long)size,
                               d);
        p->out[d] = size;
        p->scale[d] = x->dims[d] ? (double)size / (double)x->dims[d] : 1.0;
        if (a->keep == KEEP_NOT_LARGER) common = fmin(common, p->scale[d]);
        if (a->keep == KEEP_NOT_SMALLER) common = fmax(common, p->scale[d]);
    }
    if (a->keep == KEEP_STRETCH) return AIM_OK;
    for (int i = 0; i < n; i++) {
        int d = axes[i];
        p->scale[d] = common;
        p->out[d] = (int64_t)floor((double)x->dims[d] * common + 0.5);
    }
    return AIM_OK;
}

static aim_status resize_make_plan(const aim_op_ctx *c, resize_plan *p, bool *ready) {
    const resize_attrs *a = c->state;
    const aim_tensor *x = c->in[0], *roi, *scales, *sizes;
    resize_inputs(c, &roi, &scales, &sizes);
    if (a->coord != CT_TF_CROP_AND_RESIZE) roi = NULL;
    *ready =
        (!scales || available(scales)) && (!sizes || available(sizes)) && (!roi || available(roi));
    if (!*ready) return AIM_OK;
    int axes[AIM_MAX_RANK], n;
    aim_status st = resize_axes(c, x->rank, axes, &n);
    if (st != AIM_OK) return st;
    for (int d = 0; d < x->rank; d++) {
        p->out[d] = x->dims[d];
        p->scale[d] = 1.0;
        p->roi_start[d] = 0.0;
        p->roi_end[d] = 1.0;
    }
    if (a->n_scales >= 0 || (scales && !sizes))
        st = resize_from_scales(c, scales, axes, n, p);
    else if (sizes && !scales)
        st = resize_from_sizes(c, sizes, axes, n, p);
    else
        st = aim_op_fail(c, AIM_ERR_PARSE, "exactly one of scales and sizes must be given");
    if (st != AIM_OK || !roi) return st;
    if (aim_tensor_count(roi) != (size_t)(2 * n) || !aim_dtype_is_float(roi->dtype))
        return aim_op_fail(c, AIM_ERR_PARSE, "roi must hold %d floating-point values", 2 * n);
    for (int i = 0; i < n; i++) {
        p->roi_start[axes[i]] = aim_tensor_get_f64(roi, (size_t)i);
        p->roi_end[axes[i]] = aim_tensor_get_f64(roi, (size_t)(n + i));
    }
    return AIM_OK;
}

static aim_status resize_infer(aim_op_ctx *c) {
    const resize_attrs *a = c->state;
    int max_in = a->legacy ? (a->n_scales >= 0 ? 1 : 2) : 4;
    aim_status st = aim_op_check_inputs(c, a->legacy && a->n_scales < 0 ? 2 : 1, max_in);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if (a->mode == MODE_NEAREST ? aim_dtype_size(x->dtype) == 0 : !is_numeric(x->dtype))
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "input type %s", aim_dtype_name(x->dtype));
    resize_plan p;
    bool ready;
    if ((st = resize_make_plan(c, &p, &ready)) != AIM_OK) return st;
    if (!ready) {
        aim_op_dynamic(c, 0);
        return AIM_OK;
    }
    return aim_op_set_output(c, 0, x->dtype, x->rank, p.out);
}

/* ---- Resize: interpolation ----------------------------------------------------------------- */

typedef struct {
    int n;
    bool outside; /* tf_crop_and_resize: the point is outside the input */
    int64_t idx[4];
    double w[4];
} resize_taps;

/* Input coordinate of output index o along one axis (reference's x_ori). */
static double resize_source(const resize_attrs *a, const resize_plan *p, int d, int64_t in,
                            int64_t o, bool *outside) {
    double scale = p->scale[d], out_w = scale * (double)in, x = (double)o;
    *outside = false;
    switch (a->coord) {
    case CT_PYTORCH_HALF_PIXEL: return out_w == 1 ? -0.5 : (x + 0.5) / scale - 0.5;
    case CT_ALIGN_CORNERS: return out_w == 1 ? 0.0 : x * (double)(in - 1) / (out_w - 1);
    case CT_ASYMMETRIC: return x / scale;
    case CT_TF_HALF_PIXEL_FOR_NN: return (x + 0.5) / scale;
    case CT_TF_CROP_AND_RESIZE: {
        double r0 = p->roi_start[d], r1 = p->roi_end[d], span = (double)(in - 1);
        double v = out_w == 1 ? (r1 - r0) * span / 2 : x * (r1 - r0) * span / (out_w - 1);
        v += r0 * span;
        *outside = !(v >= 0 && v <= span); /* NaN from a hostile roi counts as outside */
        return v;
    }
    default: return (x + 0.5) / scale - 0.5;
    }
}

static int64_t resize_nearest(const resize_attrs *a, double x, double scale) {
    if (a->nearest == NEAR_SIMPLE) return scale < 1 ? (int64_t)ceil(x) : (int64_t)x;
    double base = floor(x), r = x - base;
    if (r == 0) return (int64_t)x;
    bool up = a->nearest == NEAR_CEIL || (a->nearest == NEAR_PREFER_FLOOR && r > 0.5) ||
              (a->nearest == NEAR_PREFER_CEIL && r >= 0.5);
    return (int64_t)base + up;
}

static void cubic_weights(double r, double A, double *w) {
    double s = 1 - r;
    w[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
    w[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
    w[2] = ((A + 2) * s - (A + 3)) * s * s + 1;
    w[3] = ((A * (s + 1) - 5 * A) * (s + 1) + 8 * A) * (s + 1) - 4 * A;
}

/* The taps of output index o along axis d: input indices (clamped) and weights (non-zero). */
static void resize_axis_taps(const resize_attrs *a, const resize_plan *p, int d, int64_t in,
                             int64_t o, resize_taps *t) {
    double x = resize_source(a, p, d, in, o, &t->outside);
    int64_t idx[4];
    double w[4];
    int n;
    if (p->scale[d] == 1.0 && a->coord != CT_TF_CROP_AND_RESIZE && a->coord != CT_ALIGN_CORNERS &&
        a->coord != CT_TF_HALF_PIXEL_FOR_NN) {
        n = 1, idx[0] = o, w[0] = 1; /* identity axis */
    } else if (a->mode == MODE_NEAREST) {
        n = 1, idx[0] = resize_nearest(a, x, p->scale[d]), w[0] = 1;
    } else {
        /* The reference prefers the left neighbour: an integral x has ratio 1 from x - 1. */
        double base = floor(x), r = x - base;
        if (r == 0) base -= 1, r = 1;
        if (a->mode == MODE_LINEAR) {
            n = 2, idx[0] = (int64_t)base, w[0] = 1 - r, w[1] = r;
        } else {
            n = 4, idx[0] = (int64_t)base - 1;
            cubic_weights(r, a->cubic_a, w);
        }
        for (int k = 1; k < n; k++)
            idx[k] = idx[0] + k;
        if (a->exclude_outside) {
            double sum = 0;
            for (int k = 0; k < n; k++)
                sum += (w[k] = idx[k] < 0 || idx[k] >= in ? 0 : w[k]);
            for (int k = 0; k < n; k++)
                w[k] = sum != 0 ? w[k] / sum : 0;
        }
    }
    t->n = 0;
    for (int k = 0; k < n; k++) {
        if (w[k] == 0) continue;
        t->idx[t->n] = idx[k] < 0 ? 0 : idx[k] >= in ? in - 1 : idx[k];
        t->w[t->n++] = w[k];
    }
}

/* One output element: the weighted sum over the product of every axis' taps. */
static double resize_point(const aim_tensor *x, const resize_taps *taps, const int64_t *strides) {
    int rank = x->rank, k[AIM_MAX_RANK] = {0};
    for (int d = 0; d < rank; d++)
        if (taps[d].n == 0) return 0;
    double sum = 0;
    for (;;) {
        double w = 1;
        int64_t offset = 0;
        for (int d = 0; d < rank; d++) {
            w *= taps[d].w[k[d]];
            offset += taps[d].idx[k[d]] * strides[d];
        }
        sum += w * aim_tensor_get_f64(x, (size_t)offset);
        int d = rank - 1;
        for (; d >= 0 && ++k[d] == taps[d].n; d--)
            k[d] = 0;
        if (d < 0) return sum;
    }
}

static aim_status resize_run(aim_op_ctx *c) {
    const resize_attrs *a = c->state;
    const aim_tensor *x = c->in[0];
    aim_tensor *y = c->out[0];
    resize_plan p;
    bool ready;
    aim_status st = resize_make_plan(c, &p, &ready);
    if (st != AIM_OK) return st;
    size_t count = aim_tensor_count(y), es = aim_dtype_size(x->dtype);
    if (count == 0) return AIM_OK;
    if (aim_tensor_count(x) == 0) return aim_op_fail(c, AIM_ERR_INVALID_ARG, "input is empty");
    int rank = x->rank;
    int64_t strides[AIM_MAX_RANK], pos[AIM_MAX_RANK] = {0};
    aim_op_strides(rank, x->dims, strides);
    resize_taps taps[AIM_MAX_RANK];
    int changed = 0; /* axes from here on need their taps recomputed */
    for (size_t e = 0; e < count; e++) {
        bool outside = false;
        for (int d = changed; d < rank; d++)
            resize_axis_taps(a, &p, d, x->dims[d], pos[d], &taps[d]);
        for (int d = 0; d < rank; d++)
            outside |= taps[d].outside;
        if (outside) {
            aim_tensor_set_f64(y, e, a->extrapolation);
        } else if (a->mode == MODE_NEAREST) {
            int64_t offset = 0;
            for (int d = 0; d < rank; d++)
                offset += taps[d].idx[0] * strides[d];
            memcpy((char *)y->data + e * es, (const char *)x->data + (size_t)offset * es, es);
        } else {
            aim_tensor_set_f64(y, e, resize_point(x, taps, strides));
        }
        int d = rank - 1;
        for (; d >= 0 && ++pos[d] == y->dims[d]; d--)
            pos[d] = 0;
        changed = d < 0 ? 0 : d;
    }
    return AIM_OK;
}

/* ---- NonMaxSuppression --------------------------------------------------------------------- */

typedef struct {
    float score;
    int64_t index;
} nms_candidate;

static int nms_by_score(const void *pa, const void *pb) {
    const nms_candidate *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Corners (y1, x1, y2, x2) with y1 <= y2 and x1 <= x2. */
static void nms_corners(const aim_tensor *boxes, size_t at, bool center, double *b) {
    double v[4];
    for (int i = 0; i < 4; i++)
        v[i] = aim_tensor_get_f64(boxes, at + (size_t)i);
    if (center) {
        b[0] = v[1] - v[3] / 2, b[2] = v[1] + v[3] / 2;
        b[1] = v[0] - v[2] / 2, b[3] = v[0] + v[2] / 2;
        return;
    }
    b[0] = fmin(v[0], v[2]), b[2] = fmax(v[0], v[2]);
    b[1] = fmin(v[1], v[3]), b[3] = fmax(v[1], v[3]);
}

static bool nms_overlaps(const double *a, const double *b, double threshold) {
    double ih = fmin(a[2], b[2]) - fmax(a[0], b[0]), iw = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    if (ih <= 0 || iw <= 0) return false;
    double area_a = (a[2] - a[0]) * (a[3] - a[1]), area_b = (b[2] - b[0]) * (b[3] - b[1]);
    double inter = ih * iw, uni = area_a + area_b - inter;
    if (area_a <= 0 || area_b <= 0 || uni <= 0) return false;
    return inter / uni > threshold;
}

static aim_status nms_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 2, 5);
    if (st != AIM_OK) return st;
    const aim_tensor *boxes = c->in[0], *scores = c->in[1];
    if (!aim_dtype_is_float(boxes->dtype) || !aim_dtype_is_float(scores->dtype))
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "boxes and scores must be floating point");
    if (boxes->rank != 3 || boxes->dims[2] != 4 || scores->rank != 3 ||
        scores->dims[0] != boxes->dims[0] || scores->dims[2] != boxes->dims[1])
        return aim_op_fail(c, AIM_ERR_PARSE, "boxes must be [B,N,4] and scores [B,C,N]");
    for (int i = 2; i < c->n_in; i++)
        if (c->in[i] && aim_tensor_count(c->in[i]) != 1)
            return aim_op_fail(c, AIM_ERR_PARSE, "input %d must hold one value", i);
    int64_t center = aim_op_attr_int(c, "center_point_box", 0);
    if (center != 0 && center != 1)
        return aim_op_fail(c, AIM_ERR_PARSE, "center_point_box must be 0 or 1");
    aim_op_dynamic(c, 0); /* the number of selected boxes is the computation itself */
    return AIM_OK;
}

/* Greedy selection for one batch and class; appends (b, class, box) triples to out. */
static size_t nms_select(const aim_op_ctx *c, nms_candidate *cand, double *kept, int64_t b,
                         int64_t cls, int64_t max_out, double iou, const float *score_min,
                         int64_t *out) {
    const aim_tensor *boxes = c->in[0], *scores = c->in[1];
    int64_t n = boxes->dims[1], n_cand = 0;
    bool center = aim_op_attr_int(c, "center_point_box", 0) != 0;
    size_t base = (size_t)((b * scores->dims[1] + cls) * n);
    for (int64_t i = 0; i < n; i++) {
        float s = (float)aim_tensor_get_f64(scores, base + (size_t)i);
        if (!isnan(s) && (!score_min || s > *score_min)) cand[n_cand++] = (nms_candidate){s, i};
    }
    qsort(cand, (size_t)n_cand, sizeof *cand, nms_by_score);
    size_t selected = 0;
    for (int64_t i = 0; i < n_cand && (int64_t)selected < max_out; i++) {
        double box[4];
        nms_corners(boxes, (size_t)((b * n + cand[i].index) * 4), center, box);
        bool keep = true;
        for (size_t j = 0; j < selected && keep; j++)
            keep = !nms_overlaps(&kept[j * 4], box, iou);
        if (!keep) continue;
        memcpy(&kept[selected * 4], box, sizeof box);
        out[selected * 3] = b, out[selected * 3 + 1] = cls, out[selected * 3 + 2] = cand[i].index;
        selected++;
    }
    return selected;
}

static aim_status nms_run(aim_op_ctx *c) {
    const aim_tensor *boxes = c->in[0], *scores = c->in[1];
    const aim_tensor *max_t = aim_op_input(c, 2), *iou_t = aim_op_input(c, 3);
    const aim_tensor *score_t = aim_op_input(c, 4);
    int64_t max_out = max_t ? aim_tensor_get_i64(max_t, 0) : 0;
    double iou = iou_t ? aim_tensor_get_f64(iou_t, 0) : 0;
    float score_min = score_t ? (float)aim_tensor_get_f64(score_t, 0) : 0;
    if (iou < 0 || iou > 1) return aim_op_fail(c, AIM_ERR_INVALID_ARG, "iou_threshold %g", iou);
    int64_t batches = boxes->dims[0], classes = scores->dims[1], n = boxes->dims[1];
    if (max_out > n) max_out = n;
    if (max_out < 0) max_out = 0;
    size_t groups = (size_t)(batches * classes), cap = groups * (size_t)max_out;
    nms_candidate *cand = malloc(((size_t)n + 1) * sizeof *cand);
    double *kept = malloc(((size_t)max_out + 1) * 4 * sizeof *kept);
    int64_t *found = malloc((cap + 1) * 3 * sizeof *found);
    size_t total = 0;
    if (!cand || !kept || !found) {
        free(cand), free(kept), free(found);
        return aim_op_fail(c, AIM_ERR_NOMEM, "out of memory");
    }
    for (int64_t b = 0; b < batches; b++)
        for (int64_t k = 0; k < classes; k++)
            total += nms_select(c, cand, kept, b, k, max_out, iou, score_t ? &score_min : NULL,
                                found + total * 3);
    int64_t dims[2] = {(int64_t)total, 3};
    aim_status st = aim_op_alloc(c, 0, AIM_DTYPE_INT64, 2, dims);
    if (st == AIM_OK && c->out[0]) memcpy(c->out[0]->data, found, total * 3 * sizeof *found);
    free(cand), free(kept), free(found);
    return st;
}

/* ---- RoiAlign ------------------------------------------------------------------------------ */

typedef struct {
    bool max_mode, half_pixel;
    int64_t out_h, out_w, sampling;
    double scale;
} roi_attrs;

static aim_status roi_parse(const aim_op_ctx *c, roi_attrs *a) {
    const char *mode = aim_op_attr_string(c, "mode", "avg");
    if (strcmp(mode, "avg") != 0 && strcmp(mode, "max") != 0)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "mode '%s'", mode);
    a->max_mode = strcmp(mode, "max") == 0;
    const char *ct = c->opset >= 16
                         ? aim_op_attr_string(c, "coordinate_transformation_mode", "half_pixel")
                         : "output_half_pixel";
    if (strcmp(ct, "half_pixel") != 0 && strcmp(ct, "output_half_pixel") != 0)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "coordinate_transformation_mode '%s'", ct);
    a->half_pixel = strcmp(ct, "half_pixel") == 0;
    a->out_h = aim_op_attr_int(c, "output_height", 1);
    a->out_w = aim_op_attr_int(c, "output_width", 1);
    a->sampling = aim_op_attr_int(c, "sampling_ratio", 0);
    a->scale = aim_op_attr_float(c, "spatial_scale", 1.0f);
    if (a->out_h < 1 || a->out_w < 1 || a->out_h > (1 << 20) || a->out_w > (1 << 20) ||
        a->sampling < 0 || a->sampling > 1024)
        return aim_op_fail(c, AIM_ERR_PARSE, "invalid output size or sampling_ratio");
    return AIM_OK;
}

static aim_status roi_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 3, 3);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0], *rois = c->in[1], *bi = c->in[2];
    roi_attrs a;
    if ((st = roi_parse(c, &a)) != AIM_OK) return st;
    if (!aim_dtype_is_float(x->dtype) || x->rank != 4 || x->dims[2] < 1 || x->dims[3] < 1)
        return aim_op_fail(c, AIM_ERR_PARSE,
                           "X must be a floating-point [N,C,H,W] tensor, H, W > 0");
    if (rois->rank != 2 || rois->dims[1] != 4 || !aim_dtype_is_float(rois->dtype))
        return aim_op_fail(c, AIM_ERR_PARSE, "rois must be [R,4] floating point");
    if (bi->rank != 1 || bi->dims[0] != rois->dims[0] ||
        (bi->dtype != AIM_DTYPE_INT64 && bi->dtype != AIM_DTYPE_INT32))
        return aim_op_fail(c, AIM_ERR_PARSE, "batch_indices must be [R] integers");
    int64_t dims[4] = {rois->dims[0], x->dims[1], a.out_h, a.out_w};
    return aim_op_set_output(c, 0, x->dtype, 4, dims);
}

/* Bilinear sample of one channel plane at (y, x), as the ONNX/Caffe2 RoiAlign does it. In max
 * mode the largest weighted corner counts instead of the sum. */
static double roi_sample(const aim_tensor *x, size_t plane, int64_t h, int64_t w, double y,
                         double xx, bool max_mode) {
    if (!(y >= -1.0 && y <= (double)h && xx >= -1.0 && xx <= (double)w)) return 0; /* or NaN */
    if (y <= 0) y = 0;
    if (xx <= 0) xx = 0;
    int64_t y0 = (int64_t)y, x0 = (int64_t)xx, y1, x1;
    if (y0 >= h - 1)
        y0 = y1 = h - 1, y = (double)y0;
    else
        y1 = y0 + 1;
    if (x0 >= w - 1)
        x0 = x1 = w - 1, xx = (double)x0;
    else
        x1 = x0 + 1;
    double ly = y - (double)y0, lx = xx - (double)x0, hy = 1 - ly, hx = 1 - lx;
    double v[4] = {hy * hx * aim_tensor_get_f64(x, plane + (size_t)(y0 * w + x0)),
                   hy * lx * aim_tensor_get_f64(x, plane + (size_t)(y0 * w + x1)),
                   ly * hx * aim_tensor_get_f64(x, plane + (size_t)(y1 * w + x0)),
                   ly * lx * aim_tensor_get_f64(x, plane + (size_t)(y1 * w + x1))};
    if (max_mode) return fmax(fmax(v[0], v[1]), fmax(v[2], v[3]));
    return v[0] + v[1] + v[2] + v[3];
}

/* Adaptive sampling grid: ceil(bin size), bounded so a hostile roi cannot demand unbounded
 * work (or a NaN cast). */
static int64_t roi_grid(double bin) {
    double g = ceil(bin);
    return g >= 1 ? (g < 1024 ? (int64_t)g : 1024) : 0;
}

/* One output bin of one roi and channel. */
static double roi_bin(const aim_tensor *x, size_t plane, const roi_attrs *a, const double *box,
                      int64_t ph, int64_t pw) {
    int64_t h = x->dims[2], w = x->dims[3];
    double rh = box[3] - box[1], rw = box[2] - box[0];
    if (!a->half_pixel) rh = fmax(rh, 1.0), rw = fmax(rw, 1.0);
    double bin_h = rh / (double)a->out_h, bin_w = rw / (double)a->out_w;
    int64_t gh = a->sampling > 0 ? a->sampling : roi_grid(rh / (double)a->out_h);
    int64_t gw = a->sampling > 0 ? a->sampling : roi_grid(rw / (double)a->out_w);
    double count = gh * gw > 0 ? (double)(gh * gw) : 1.0, acc = 0;
    bool first = true;
    for (int64_t iy = 0; iy < gh; iy++) {
        double y = box[1] + (double)ph * bin_h + ((double)iy + 0.5) * bin_h / (double)gh;
        for (int64_t ix = 0; ix < gw; ix++) {
            double xx = box[0] + (double)pw * bin_w + ((double)ix + 0.5) * bin_w / (double)gw;
            double v = roi_sample(x, plane, h, w, y, xx, a->max_mode);
            acc = a->max_mode ? (first ? v : fmax(acc, v)) : acc + v;
            first = false;
        }
    }
    return a->max_mode ? acc : acc / count;
}

static aim_status roi_run(aim_op_ctx *c) {
    const aim_tensor *x = c->in[0], *rois = c->in[1], *bi = c->in[2];
    aim_tensor *y = c->out[0];
    roi_attrs a;
    aim_status st = roi_parse(c, &a);
    if (st != AIM_OK) return st;
    int64_t n_rois = rois->dims[0], channels = x->dims[1];
    double offset = a.half_pixel ? 0.5 : 0.0;
    size_t plane_size = (size_t)(x->dims[2] * x->dims[3]), e = 0;
    for (int64_t r = 0; r < n_rois; r++) {
        int64_t b = aim_tensor_get_i64(bi, (size_t)r);
        if (b < 0 || b >= x->dims[0])
            return aim_op_fail(c, AIM_ERR_INVALID_ARG, "batch index %lld is out of range",
                               (long long)b);
        double box[4];
        for (int i = 0; i < 4; i++)
            box[i] = aim_tensor_get_f64(rois, (size_t)(r * 4 + i)) * a.scale - offset;
        for (int64_t ch = 0; ch < channels; ch++) {
            size_t plane = (size_t)(b * channels + ch) * plane_size;
            for (int64_t ph = 0; ph < a.out_h; ph++)
                for (int64_t pw = 0; pw < a.out_w; pw++)
                    aim_tensor_set_f64(y, e++, roi_bin(x, plane, &a, box, ph, pw));
        }
    }
    return AIM_OK;
}

/* ---- DepthToSpace, SpaceToDepth ------------------------------------------------------------ */

/* dst = transpose(src viewed as 6-D dims, perm), element size es. */
static void permute6(char *dst, const char *src, const int64_t *dims, const int *perm, size_t es) {
    int64_t strides[6], src_strides[6], out_dims[6];
    aim_op_strides(6, dims, strides);
    for (int d = 0; d < 6; d++) {
        out_dims[d] = dims[perm[d]];
        src_strides[d] = strides[perm[d]];
    }
    aim_op_strided_copy(dst, NULL, src, src_strides, 6, out_dims, es);
}

static aim_status block_size(const aim_op_ctx *c, int64_t *b) {
    *b = aim_op_attr_int(c, "blocksize", 0);
    if (*b < 1 || *b > (1 << 16))
        return aim_op_fail(c, AIM_ERR_PARSE, "blocksize %lld is invalid", (long long)*b);
    return AIM_OK;
}

/* DepthToSpace's 6-D view of the input and the permutation that makes the output. */
static aim_status d2s_view(const aim_op_ctx *c, const aim_tensor *x, int64_t *view, int *perm) {
    int64_t b;
    aim_status st = block_size(c, &b);
    if (st != AIM_OK) return st;
    const char *mode = c->opset >= 11 ? aim_op_attr_string(c, "mode", "DCR") : "DCR";
    bool crd = strcmp(mode, "CRD") == 0;
    if (!crd && strcmp(mode, "DCR") != 0)
        return aim_op_fail(c, AIM_ERR_PARSE, "mode '%s' is not DCR or CRD", mode);
    if (x->rank != 4 || x->dims[1] % (b * b) != 0)
        return aim_op_fail(c, AIM_ERR_PARSE, "input must be [N,C,H,W] with C divisible by %lld",
                           (long long)(b * b));
    int64_t n = x->dims[0], ch = x->dims[1] / (b * b), h = x->dims[2], w = x->dims[3];
    static const int dcr[6] = {0, 3, 4, 1, 5, 2}, crdp[6] = {0, 1, 4, 2, 5, 3};
    int64_t v_dcr[6] = {n, b, b, ch, h, w}, v_crd[6] = {n, ch, b, b, h, w};
    memcpy(view, crd ? v_crd : v_dcr, sizeof v_dcr);
    memcpy(perm, crd ? crdp : dcr, sizeof dcr);
    return AIM_OK;
}

static aim_status s2d_view(const aim_op_ctx *c, const aim_tensor *x, int64_t *view, int *perm) {
    int64_t b;
    aim_status st = block_size(c, &b);
    if (st != AIM_OK) return st;
    if (x->rank != 4 || x->dims[2] % b != 0 || x->dims[3] % b != 0)
        return aim_op_fail(c, AIM_ERR_PARSE,
                           "input must be [N,C,H,W] with H and W divisible by %lld", (long long)b);
    int64_t v[6] = {x->dims[0], x->dims[1], x->dims[2] / b, b, x->dims[3] / b, b};
    static const int p[6] = {0, 3, 5, 1, 2, 4};
    memcpy(view, v, sizeof v);
    memcpy(perm, p, sizeof p);
    return AIM_OK;
}

typedef aim_status (*block_view_fn)(const aim_op_ctx *, const aim_tensor *, int64_t *, int *);

static aim_status block_infer(aim_op_ctx *c, block_view_fn view_of) {
    aim_status st = aim_op_check_inputs(c, 1, 1);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if (aim_dtype_size(x->dtype) == 0)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "input type %s", aim_dtype_name(x->dtype));
    int64_t view[6];
    int perm[6];
    if ((st = view_of(c, x, view, perm)) != AIM_OK) return st;
    int64_t o[6];
    for (int d = 0; d < 6; d++)
        o[d] = view[perm[d]];
    /* DepthToSpace makes [N, C', H, b, W, b], SpaceToDepth [N, b, b, C, H', W']. */
    int64_t d2s[4] = {o[0], o[1], o[2] * o[3], o[4] * o[5]};
    int64_t s2d[4] = {o[0], o[1] * o[2] * o[3], o[4], o[5]};
    const int64_t *dims = view_of == s2d_view ? s2d : d2s;
    return aim_op_set_output(c, 0, x->dtype, 4, dims);
}

static aim_status block_run(aim_op_ctx *c, block_view_fn view_of) {
    const aim_tensor *x = c->in[0];
    int64_t view[6];
    int perm[6];
    aim_status st = view_of(c, x, view, perm);
    if (st != AIM_OK) return st;
    permute6(c->out[0]->data, x->data, view, perm, aim_dtype_size(x->dtype));
    return AIM_OK;
}

static aim_status d2s_infer(aim_op_ctx *c) {
    return block_infer(c, d2s_view);
}
static aim_status d2s_run(aim_op_ctx *c) {
    return block_run(c, d2s_view);
}
static aim_status s2d_infer(aim_op_ctx *c) {
    return block_infer(c, s2d_view);
}
static aim_status s2d_run(aim_op_ctx *c) {
    return block_run(c, s2d_view);
}

/* ---- Table --------------------------------------------------------------------------------- */

const aim_op_def aim_ops_vision[] = {
    {"Resize", "", 10, 18, resize_prepare, resize_infer, resize_run, free},
    {"Upsample", "", 7, 9, resize_prepare, resize_infer, resize_run, free},
    {"NonMaxSuppression", "", 10, 18, NULL, nms_infer, nms_run, NULL},
    {"RoiAlign", "", 10, 18, NULL, roi_infer, roi_run, NULL},
    {"DepthToSpace", "", 1, 18, NULL, d2s_infer, d2s_run, NULL},
    {"SpaceToDepth", "", 1, 18, NULL, s2d_infer, s2d_run, NULL},
    {0},
};
