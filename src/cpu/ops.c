/*
 * ops.c: the fast kernels other than convolutions, pooling (pool.c) and softmax (softmax.c):
 * element-wise activations, Add/Sub/Mul/Div, Concat, Resize, Transpose, Gemm and MatMul. Each
 * accepts only parameters whose oneDNN semantics match ONNX exactly and returns NULL otherwise,
 * so that the node keeps its reference kernel.
 */
#include "cpu/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Creates the primitive for an initialised op descriptor and the kernel around it. Sources
 * 0..n_src-1 read the layouts given in src_md (NULL: query them from the primitive). */
aim_cpu_kernel *aim_cpu_make_kernel(const aim_cpu_build *b, const char *name, const void *desc,
                                    int n_src, const int *src_arg, bool query_src) {
    dnnl_primitive_attr_t attr = aim_cpu_attr(b);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st =
        attr ? dnnl_primitive_desc_create(&pd, desc, attr, b->engine, NULL) : dnnl_out_of_memory;
    if (attr) dnnl_primitive_attr_destroy(attr);
    aim_cpu_kernel *k = st == dnnl_success ? aim_cpu_kernel_new(name) : NULL;
    if (!k) {
        if (pd) dnnl_primitive_desc_destroy(pd);
        return NULL;
    }
    k->n_src = n_src;
    for (int i = 0; i < n_src; i++) {
        k->src_arg[i] = src_arg[i];
        k->src_md[i] =
            query_src ? *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, i) : *b->src_md[i];
    }
    if (aim_cpu_kernel_finish(k, pd, DNNL_ARG_DST) != AIM_OK) {
        aim_cpu_kernel_free(k);
        return NULL;
    }
    return k;
}

void aim_cpu_out_md(const aim_cpu_build *b, dnnl_memory_desc_t *md) {
    const aim_tensor *y = aim_cpu_out(b);
    if (b->plain_dst) {
        aim_cpu_plain_md(md, y->rank, y->dims);
        return;
    }
    dnnl_dims_t d;
    for (int i = 0; i < y->rank; i++)
        d[i] = y->dims[i];
    dnnl_memory_desc_init_by_tag(md, y->rank, d, dnnl_f32, dnnl_format_tag_any);
}

bool aim_cpu_float_in(const aim_cpu_build *b, int i) {
    const aim_tensor *t = aim_cpu_in(b, b->node, i);
    return t && t->dtype == AIM_DTYPE_FLOAT && t->rank >= 1 && t->rank <= 6;
}

/* ---- Element-wise -------------------------------------------------------------------------- */

aim_cpu_kernel *aim_cpu_eltwise_create(const aim_cpu_build *b) {
    aim_cpu_post p;
    if (b->swish) { /* the SiLU pattern the planner matched */
        p = (aim_cpu_post){.alg = dnnl_eltwise_swish, .alpha = 1.0f};
    } else if (!aim_cpu_activation(b->g, b->node, &p)) {
        return NULL;
    }
    if (!aim_cpu_float_in(b, 0)) return NULL;
    /* The destination has the source's layout: a graph output reads a plain source. */
    dnnl_memory_desc_t src = *b->src_md[0];
    const aim_tensor *x = aim_cpu_in(b, b->node, 0);
    if (b->plain_dst) aim_cpu_plain_md(&src, x->rank, x->dims);
    dnnl_eltwise_desc_t desc;
    if (dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_inference, p.alg, &src, p.alpha,
                                       p.beta) != dnnl_success)
        return NULL;
    int arg = DNNL_ARG_SRC;
    aim_cpu_build plain = *b;
    plain.n_post = 0;
    plain.src_md[0] = &src;
    return aim_cpu_make_kernel(&plain, b->swish ? "swish" : "eltwise", &desc, 1, &arg, false);
}

/* Rows of a concatenation: each source's part of a destination row is contiguous when the
 * layout is plain, or channel-blocked along channels with whole blocks. oneDNN's generic concat
 * for blocked layouts (simple:any) is ~10x slower than these copies. */
static void run_copy_concat(const aim_cpu_kernel *k, void *const *src, void *dst, void *scratch,
                            int threads) {
    (void)scratch, (void)threads;
    char *out = dst;
    for (size_t o = 0; o < k->outer; o++)
        for (int i = 0; i < k->n_src; i++) {
            memcpy(out, (const char *)src[i] + o * k->chunk[i], k->chunk[i]);
            out += k->chunk[i];
        }
}

static bool rows_contiguous(const dnnl_memory_desc_t *md, int axis) {
    dnnl_memory_desc_t plain;
    if (aim_cpu_plain_md(&plain, md->ndims, md->dims) == dnnl_success &&
        dnnl_memory_desc_equal(&plain, md))
        return true;
    const dnnl_blocking_desc_t *blk = &md->format_desc.blocking;
    if (md->format_kind != dnnl_blocked || axis != 1 || blk->inner_nblks != 1 ||
        blk->inner_idxs[0] != 1 || md->padded_dims[1] != md->dims[1])
        return false;
    for (int d = 2; d < md->ndims; d++) /* channel blocks outermost after N: nChw8c, not nhwc */
        if (blk->strides[1] < blk->strides[d]) return false;
    return blk->strides[0] >= blk->strides[1];
}

static aim_cpu_kernel *copy_concat(const aim_cpu_build *b, int axis,
                                   const dnnl_memory_desc_t *dst) {
    const aim_cpu_node *n = b->node;
    if (!rows_contiguous(dst, axis)) return NULL;
    aim_cpu_kernel *k = aim_cpu_kernel_new("concat");
    if (!k) return NULL;
    k->outer = 1;
    for (int d = 0; d < axis; d++)
        k->outer *= (size_t)dst->dims[d];
    k->n_src = n->n_in;
    for (int i = 0; i < n->n_in; i++) {
        const aim_tensor *t = aim_cpu_in(b, n, i);
        dnnl_dims_t d;
        for (int j = 0; j < t->rank; j++)
            d[j] = t->dims[j];
        aim_cpu_like(dst, t->rank, d, &k->src_md[i]);
        if (!rows_contiguous(&k->src_md[i], axis)) {
            aim_cpu_kernel_free(k);
            return NULL;
        }
        k->chunk[i] = dnnl_memory_desc_get_size(&k->src_md[i]) / k->outer;
    }
    k->dst_md = *dst;
    k->custom = run_copy_concat;
    return k;
}

/* ---- Binary element-wise ------------------------------------------------------------------- */

static bool binary_alg(const aim_cpu_node *n, dnnl_alg_kind_t *alg, bool *commutes) {
    static const struct {
        const char *op;
        dnnl_alg_kind_t alg;
        bool commutes;
    } table[] = {{"Add", dnnl_binary_add, true},
                 {"Mul", dnnl_binary_mul, true},
                 {"Sub", dnnl_binary_sub, false},
                 {"Div", dnnl_binary_div, false}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (aim_cpu_op_is(n, table[i].op)) {
            *alg = table[i].alg;
            *commutes = table[i].commutes;
            return true;
        }
    return false;
}

/* A plain layout of t's bytes with ones prepended to rank `rank` (numpy broadcasting). */
static bool broadcast_md(const aim_tensor *t, int rank, dnnl_memory_desc_t *md) {
    int64_t dims[6];
    int lead = rank - t->rank;
    if (lead < 0) return false;
    for (int i = 0; i < rank; i++)
        dims[i] = i < lead ? 1 : t->dims[i - lead];
    return aim_cpu_plain_md(md, rank, dims) == dnnl_success;
}

/* Add, Sub, Mul and Div of two float tensors where one (the first for Sub and Div) has the
 * output's shape and the other has it too or broadcasts to it (a per-channel gate or scale, a
 * scalar), on oneDNN's binary primitive: the full operand in its own layout, the other and the
 * output in the same kind of layout (oneDNN's fast code wants that), an activation reordered to
 * it where need be, a constant re-laid out once at load (of a lower rank, too). Only for a full
 * operand in a blocked layout, where the reference kernel would need reorders both ways: on
 * plain tensors the reference is as fast or faster (face-locator's box decoding on [1,4420,2]:
 * ~100 us per node on oneDNN's binary, 10-40 us on the reference). NULL otherwise, and where
 * oneDNN would run reference code. */
aim_cpu_kernel *aim_cpu_binary_create(const aim_cpu_build *b) {
    const aim_cpu_node *n = b->node;
    dnnl_alg_kind_t alg;
    bool commutes;
    if (!binary_alg(n, &alg, &commutes) || n->n_in != 2 || n->n_out != 1) return NULL;
    const aim_tensor *y = aim_cpu_out(b), *in0 = aim_cpu_in(b, n, 0), *in1 = aim_cpu_in(b, n, 1);
    if (!in0 || !in1 || in0->dtype != AIM_DTYPE_FLOAT || in1->dtype != AIM_DTYPE_FLOAT) return NULL;
    int big = aim_tensor_same_shape(in0, y)               ? 0
              : commutes && aim_tensor_same_shape(in1, y) ? 1
                                                          : -1;
    dnnl_memory_desc_t plain;
    if (big < 0 || (aim_cpu_plain_md(&plain, y->rank, y->dims) == dnnl_success &&
                    dnnl_memory_desc_equal(&plain, b->src_md[big])))
        return NULL; /* plain: the reference kernel needs no reorder and is as fast or faster */
    const aim_tensor *other = aim_cpu_in(b, n, 1 - big);
    bool full = aim_tensor_same_shape(other, y), constant = aim_cpu_is_const(b->g, n, 1 - big);
    dnnl_memory_desc_t src[2], dst, stored;
    dnnl_dims_t d;
    for (int i = 0; i < y->rank; i++)
        d[i] = y->dims[i];
    src[0] = *b->src_md[big];
    if (full) {
        src[1] = src[0];
    } else if (constant) {
        if (!broadcast_md(other, y->rank, &stored)) return NULL;
        aim_cpu_like(&src[0], y->rank, stored.dims, &src[1]);
    } else if (other->rank == y->rank) {
        dnnl_dims_t od;
        for (int i = 0; i < other->rank; i++)
            od[i] = other->dims[i];
        aim_cpu_like(&src[0], y->rank, od, &src[1]);
    } else {
        return NULL;
    }
    aim_cpu_like(&src[0], y->rank, d, &dst); /* a graph output gets a reorder to plain after */
    dnnl_binary_desc_t desc;
    if (dnnl_binary_desc_init(&desc, alg, &src[0], &src[1], &dst) != dnnl_success) return NULL;
    dnnl_primitive_attr_t attr = aim_cpu_attr(NULL);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st =
        attr ? dnnl_primitive_desc_create(&pd, &desc, attr, b->engine, NULL) : dnnl_out_of_memory;
    if (attr) dnnl_primitive_attr_destroy(attr);
    const char *impl = NULL;
    if (st == dnnl_success) dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    aim_cpu_kernel *k = st == dnnl_success && impl && strncmp(impl, "ref", 3) != 0
                            ? aim_cpu_kernel_new("binary")
                            : NULL;
    if (!k) {
        if (pd) dnnl_primitive_desc_destroy(pd);
        return NULL;
    }
    /* Sources: the node's inputs in order, but for a broadcast constant, which the kernel keeps
     * (then the full operand is the only source). */
    bool kept = constant && !full;
    int at = kept ? 0 : big; /* the full operand's source index */
    k->first_src = kept ? big : 0;
    k->n_src = kept ? 1 : 2;
    k->src_arg[at] = DNNL_ARG_SRC_0;
    k->src_md[at] = src[0];
    if (!kept) {
        k->src_arg[1 - big] = DNNL_ARG_SRC_1;
        k->src_md[1 - big] = src[1];
    }
    bool ok = !kept || aim_cpu_kernel_const(k, b->engine, pd, dnnl_query_src_md, 1, DNNL_ARG_SRC_1,
                                            &stored, other->data) == AIM_OK;
    return aim_cpu_kernel_complete(k, pd, ok);
}

/* ---- Concat -------------------------------------------------------------------------------- */

aim_cpu_kernel *aim_cpu_concat_create(const aim_cpu_build *b) {
    const aim_cpu_node *n = b->node;
    const aim_tensor *y = aim_cpu_out(b);
    if (n->n_in < 1 || n->n_in > AIM_CPU_MAX_SRC || y->rank < 1) return NULL;
    int64_t axis = aim_cpu_attr_int(n, "axis", 0);
    if (axis < 0) axis += y->rank;
    if (axis < 0 || axis >= y->rank) return NULL;
    dnnl_memory_desc_t srcs[AIM_CPU_MAX_SRC], dst;
    int lead = -1; /* the first non-constant source: the destination takes its kind of layout */
    bool blocked = false;
    for (int i = 0; i < n->n_in; i++) {
        const aim_tensor *t = aim_cpu_in(b, n, i);
        if (!aim_cpu_float_in(b, i) || t->dims[axis] == 0) return NULL;
        srcs[i] = *b->src_md[i];
        if (lead < 0 && !aim_cpu_is_const(b->g, n, i)) lead = i;
        dnnl_memory_desc_t plain;
        aim_cpu_plain_md(&plain, t->rank, t->dims);
        blocked = blocked || !dnnl_memory_desc_equal(&plain, &srcs[i]);
    }
    /* Plain tensors concatenate as well on the reference kernel (row copies), and oneDNN's
     * generic concat is much slower when the rows are short (a detector's [N,4420,2] heads). */
    if (!blocked) return NULL;
    aim_cpu_out_md(b, &dst);
    /* oneDNN's own choice for `any` is plain as soon as one source is (a constant padding
     * block, say), which would push every reader back to plain layouts. */
    if (!b->plain_dst && lead >= 0) aim_cpu_like(&srcs[lead], y->rank, dst.dims, &dst);
    aim_cpu_kernel *copy = copy_concat(b, (int)axis, &dst);
    if (copy) return copy;
    dnnl_primitive_attr_t attr = aim_cpu_attr(NULL);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = attr ? dnnl_concat_primitive_desc_create(&pd, &dst, n->n_in, (int)axis, srcs,
                                                                attr, b->engine)
                            : dnnl_out_of_memory;
    if (attr) dnnl_primitive_attr_destroy(attr);
    aim_cpu_kernel *k = st == dnnl_success ? aim_cpu_kernel_new("concat") : NULL;
    if (!k) {
        if (pd) dnnl_primitive_desc_destroy(pd);
        return NULL;
    }
    k->n_src = n->n_in;
    for (int i = 0; i < n->n_in; i++) {
        k->src_arg[i] = DNNL_ARG_MULTIPLE_SRC + i;
        k->src_md[i] = srcs[i];
    }
    if (aim_cpu_kernel_finish(k, pd, DNNL_ARG_DST) != AIM_OK) {
        aim_cpu_kernel_free(k);
        return NULL;
    }
    return k;
}

/* ---- Transpose ----------------------------------------------------------------------------- */

/* A oneDNN reorder that reads the source through a descriptor with its axes permuted (same
 * bytes, in whatever layout the source has, blocked included) and writes plain row-major. */
aim_cpu_kernel *aim_cpu_transpose_create(const aim_cpu_build *b) {
    const aim_tensor *x = aim_cpu_in(b, b->node, 0), *y = aim_cpu_out(b);
    if (!aim_cpu_float_in(b, 0) || y->rank != x->rank) return NULL;
    int rank = x->rank;
    int64_t perm[6];
    if (!aim_cpu_attr_ints(b->node, "perm", rank, -1, perm)) return NULL;
    bool given = aim_cpu_attr_find(b->node, "perm") != NULL; /* default: axes reversed */
    int to_new[6], seen = 0; /* oneDNN's permutation: where each source axis goes */
    for (int d = 0; d < rank; d++) {
        int64_t p = given ? perm[d] : rank - 1 - d;
        if (p < 0 || p >= rank || (seen >> p & 1)) return NULL;
        seen |= 1 << p;
        to_new[p] = d;
    }
    dnnl_memory_desc_t permuted, dst;
    if (dnnl_memory_desc_permute_axes(&permuted, b->src_md[0], to_new) != dnnl_success ||
        aim_cpu_plain_md(&dst, rank, y->dims) != dnnl_success)
        return NULL;
    aim_cpu_kernel *k = aim_cpu_reorder_create(b->engine, &permuted, &dst);
    if (k) {
        snprintf(k->name, sizeof k->name, "transpose");
        k->view = true;
    }
    return k;
}

/* ---- Resize -------------------------------------------------------------------------------- */

/* The scale ONNX uses for axis d: the scales input when given, else out/in. */
static bool resize_scale(const aim_cpu_build *b, int d, double *scale) {
    const aim_cpu_node *n = b->node;
    const aim_tensor *x = aim_cpu_in(b, n, 0), *y = aim_cpu_out(b);
    int si = n->opset < 11 ? 1 : 2;
    const aim_tensor *sc = aim_cpu_in(b, n, si);
    *scale = (double)y->dims[d] / (double)x->dims[d];
    if (!sc || aim_tensor_count(sc) == 0) return true;
    if (!aim_cpu_is_const(b->g, n, si) || sc->dtype != AIM_DTYPE_FLOAT ||
        aim_tensor_count(sc) != (size_t)x->rank)
        return false;
    return (double)((const float *)sc->data)[d] == *scale;
}

/* Nearest: ONNX and oneDNN agree exactly for integer up-scaling (source = floor(dst / k)) under
 * these coordinate and rounding modes; everything else stays on the reference. */
static bool nearest_matches(const aim_cpu_node *n, int64_t k) {
    if (k == 1) return true;
    bool floor_mode = aim_cpu_attr_is(n, "nearest_mode", "round_prefer_floor", "floor");
    if (n->opset < 11) return true; /* Upsample-style asymmetric + floor */
    if (aim_cpu_attr_is(n, "coordinate_transformation_mode", "half_pixel", "asymmetric"))
        return floor_mode;
    if (aim_cpu_attr_is(n, "coordinate_transformation_mode", "half_pixel", "tf_half_pixel_for_nn"))
        return floor_mode;
    return (aim_cpu_attr_is(n, "coordinate_transformation_mode", "half_pixel", "half_pixel") ||
            aim_cpu_attr_is(n, "coordinate_transformation_mode", "half_pixel",
                            "pytorch_half_pixel")) &&
           !aim_cpu_attr_is(n, "nearest_mode", "round_prefer_floor", "ceil");
}

static bool resize_supported(const aim_cpu_build *b, bool *linear) {
    const aim_cpu_node *n = b->node;
    const aim_tensor *x = aim_cpu_in(b, n, 0), *y = aim_cpu_out(b);
    if (!aim_cpu_float_in(b, 0) || x->rank < 3 || x->rank > 5 || y->rank != x->rank) return false;
    if (x->dims[0] != y->dims[0] || x->dims[1] != y->dims[1]) return false;
    if (aim_cpu_attr_int(n, "antialias", 0) || aim_cpu_attr_find(n, "axes")) return false;
    *linear = aim_cpu_attr_is(n, "mode", "nearest", "linear");
    if (!*linear && !aim_cpu_attr_is(n, "mode", "nearest", "nearest")) return false;
    if (*linear && n->opset >= 11 &&
        !aim_cpu_attr_is(n, "coordinate_transformation_mode", "half_pixel", "half_pixel"))
        return false;
    if (*linear && n->opset < 11) return false;
    for (int d = 2; d < x->rank; d++) {
        double scale;
        if (x->dims[d] < 1 || !resize_scale(b, d, &scale)) return false;
        if (*linear) continue;
        if (y->dims[d] % x->dims[d] || !nearest_matches(n, y->dims[d] / x->dims[d])) return false;
    }
    return true;
}

/* oneDNN 2.6's AVX2 resampling of a plain (nchw) source crashes inside its JIT code when made
 * for one thread (a null read, 1x256x20x20 nearest x2): such sources keep the reference. */
static bool plain_source(const aim_cpu_build *b) {
    const aim_tensor *x = aim_cpu_in(b, b->node, 0);
    dnnl_memory_desc_t plain;
    return aim_cpu_plain_md(&plain, x->rank, x->dims) == dnnl_success &&
           dnnl_memory_desc_equal(&plain, b->src_md[0]);
}

aim_cpu_kernel *aim_cpu_resize_create(const aim_cpu_build *b) {
    bool linear;
    if (!resize_supported(b, &linear) || plain_source(b)) return NULL;
    dnnl_memory_desc_t dst;
    aim_cpu_out_md(b, &dst);
    dnnl_resampling_desc_t desc;
    if (dnnl_resampling_forward_desc_init(&desc, dnnl_forward_inference,
                                          linear ? dnnl_resampling_linear : dnnl_resampling_nearest,
                                          NULL, b->src_md[0], &dst) != dnnl_success)
        return NULL;
    int arg = DNNL_ARG_SRC;
    aim_cpu_build plain = *b;
    plain.n_post = 0;
    return aim_cpu_make_kernel(&plain, "resize", &desc, 1, &arg, false);
}

/* ---- Gemm and MatMul ----------------------------------------------------------------------- */

/* Stores weights (and bias) into a kernel from a finished primitive descriptor. */
static aim_cpu_kernel *with_constants(aim_cpu_kernel *k, const aim_cpu_build *b,
                                      dnnl_primitive_desc_t pd, const dnnl_memory_desc_t *wmd,
                                      const float *w, const dnnl_memory_desc_t *bmd,
                                      const float *bias) {
    bool ok = aim_cpu_kernel_const(k, b->engine, pd, dnnl_query_weights_md, 0, DNNL_ARG_WEIGHTS,
                                   wmd, w) == AIM_OK &&
              (!bias || aim_cpu_kernel_const(k, b->engine, pd, dnnl_query_weights_md, 1,
                                             DNNL_ARG_BIAS, bmd, bias) == AIM_OK);
    return aim_cpu_kernel_complete(k, pd, ok);
}

static dnnl_primitive_desc_t make_pd(const aim_cpu_build *b, const void *desc) {
    dnnl_primitive_attr_t attr = aim_cpu_attr(b);
    dnnl_primitive_desc_t pd = NULL;
    if (attr && dnnl_primitive_desc_create(&pd, desc, attr, b->engine, NULL) != dnnl_success)
        pd = NULL;
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (pd && b->n_post > 0 && aim_cpu_slow_fusion(b, pd)) {
        dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    return pd;
}

/* Gemm as an inner product: A activations [M,K], B and C constant; alpha and beta are
 * folded into the constants. */
static bool gemm_constants(const aim_cpu_build *b, int64_t n_out, float **w, float **bias) {
    const aim_cpu_node *n = b->node;
    const aim_tensor *bt = aim_cpu_in(b, n, 1), *ct = aim_cpu_in(b, n, 2);
    float alpha = aim_cpu_attr_float(n, "alpha", 1.0f), beta = aim_cpu_attr_float(n, "beta", 1.0f);
    size_t count = aim_tensor_count(bt);
    *w = malloc(count * sizeof **w + 4);
    *bias = calloc((size_t)n_out + 1, sizeof **bias);
    if (!*w || !*bias) return false;
    for (size_t i = 0; i < count; i++)
        (*w)[i] = ((const float *)bt->data)[i] * alpha;
    if (!ct) return true;
    if (!aim_cpu_is_const(b->g, n, 2) || ct->dtype != AIM_DTYPE_FLOAT) return false;
    size_t cc = aim_tensor_count(ct);
    if (cc != 1 && (cc != (size_t)n_out || ct->dims[ct->rank - 1] != n_out)) return false;
    for (int64_t j = 0; j < n_out; j++)
        (*bias)[j] = ((const float *)ct->data)[cc == 1 ? 0 : j] * beta;
    return true;
}

aim_cpu_kernel *aim_cpu_gemm_create(const aim_cpu_build *b) {
    const aim_cpu_node *n = b->node;
    const aim_tensor *a = aim_cpu_in(b, n, 0), *bt = aim_cpu_in(b, n, 1), *y = aim_cpu_out(b);
    if (!aim_cpu_float_in(b, 0) || a->rank != 2 || !bt || !aim_cpu_is_const(b->g, n, 1) ||
        bt->dtype != AIM_DTYPE_FLOAT || bt->rank != 2 || y->rank != 2)
        return NULL;
    if (aim_cpu_attr_int(n, "transA", 0) != 0) return NULL;
    bool trans_b = aim_cpu_attr_int(n, "transB", 0) != 0;
    int64_t m = a->dims[0], k = a->dims[1], nn = y->dims[1];
    if ((trans_b ? bt->dims[1] : bt->dims[0]) != k) return NULL;
    dnnl_memory_desc_t src, wmd, wany, bmd, dst;
    dnnl_dims_t sd = {m, k}, wd = {nn, k}, bd = {nn}, dd = {m, nn};
    dnnl_memory_desc_init_by_tag(&src, 2, sd, dnnl_f32, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&wmd, 2, wd, dnnl_f32, trans_b ? dnnl_ab : dnnl_ba);
    dnnl_memory_desc_init_by_tag(&wany, 2, wd, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_a);
    dnnl_memory_desc_init_by_tag(&dst, 2, dd, dnnl_f32, dnnl_ab);
    dnnl_inner_product_desc_t desc;
    if (dnnl_inner_product_forward_desc_init(&desc, dnnl_forward_inference, &src, &wany, &bmd,
                                             &dst) != dnnl_success)
        return NULL;
    float *w = NULL, *bias = NULL;
    aim_cpu_kernel *kern = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (gemm_constants(b, nn, &w, &bias) && (pd = make_pd(b, &desc)) &&
        (kern = aim_cpu_kernel_new("gemm"))) {
        kern->n_src = 1;
        kern->src_arg[0] = DNNL_ARG_SRC;
        kern->src_md[0] = src;
        aim_cpu_kernel_post_srcs(kern, b);
        kern = with_constants(kern, b, pd, &wmd, w, &bmd, bias);
    } else if (pd) {
        dnnl_primitive_desc_destroy(pd);
    }
    free(w);
    free(bias);
    return kern;
}

/* Plain descriptor of t with leading 1s up to `rank`. */
static void padded_md(const aim_tensor *t, int rank, dnnl_memory_desc_t *md) {
    int64_t dims[AIM_MAX_RANK];
    int lead = rank - t->rank;
    for (int i = 0; i < rank; i++)
        dims[i] = i < lead ? 1 : t->dims[i - lead];
    aim_cpu_plain_md(md, rank, dims);
}

aim_cpu_kernel *aim_cpu_matmul_create(const aim_cpu_build *b) {
    const aim_cpu_node *n = b->node;
    const aim_tensor *a = aim_cpu_in(b, n, 0), *w = aim_cpu_in(b, n, 1), *y = aim_cpu_out(b);
    if (!aim_cpu_float_in(b, 0) || !aim_cpu_float_in(b, 1) || a->rank < 2 || w->rank < 2 ||
        y->rank > 4 || y->rank < 2 || a->rank > y->rank || w->rank > y->rank)
        return NULL;
    int r = y->rank;
    dnnl_memory_desc_t src, wmd, dst, wany;
    padded_md(a, r, &src);
    padded_md(w, r, &wmd);
    aim_cpu_plain_md(&dst, r, y->dims);
    for (int i = 0; i < r - 2; i++) /* oneDNN broadcasts a batch dim only from 1 */
        if (src.dims[i] != dst.dims[i] && src.dims[i] != 1) return NULL;
    for (int i = 0; i < r - 2; i++)
        if (wmd.dims[i] != dst.dims[i] && wmd.dims[i] != 1) return NULL;
    bool const_w = aim_cpu_is_const(b->g, n, 1);
    wany = wmd;
    if (const_w) dnnl_memory_desc_init_by_tag(&wany, r, wmd.dims, dnnl_f32, dnnl_format_tag_any);
    dnnl_matmul_desc_t desc;
    if (dnnl_matmul_desc_init(&desc, &src, &wany, NULL, &dst) != dnnl_success) return NULL;
    dnnl_primitive_desc_t pd = make_pd(b, &desc);
    aim_cpu_kernel *k = pd ? aim_cpu_kernel_new("matmul") : NULL;
    if (!k) {
        if (pd) dnnl_primitive_desc_destroy(pd);
        return NULL;
    }
    k->src_arg[0] = DNNL_ARG_SRC;
    k->src_md[0] = src;
    k->n_src = 1;
    if (const_w) return with_constants(k, b, pd, &wmd, w->data, NULL, NULL);
    k->src_arg[k->n_src] = DNNL_ARG_WEIGHTS;
    k->src_md[k->n_src++] = wmd;
    if (aim_cpu_kernel_finish(k, pd, DNNL_ARG_DST) != AIM_OK) {
        aim_cpu_kernel_free(k);
        return NULL;
    }
    return k;
}

/* ---- Parts of a tensor (Split) ------------------------------------------------------------- */

void aim_cpu_like(const dnnl_memory_desc_t *whole, int rank, const dnnl_dims_t dims,
                  dnnl_memory_desc_t *out) {
    static const dnnl_format_tag_t tags[6][5] = {
        [3] = {dnnl_abc, dnnl_aBc8b, dnnl_aBc16b, dnnl_acb},
        [4] = {dnnl_abcd, dnnl_aBcd8b, dnnl_aBcd16b, dnnl_acdb, dnnl_aBcd4b},
        [5] = {dnnl_abcde, dnnl_aBcde8b, dnnl_aBcde16b, dnnl_acdeb},
    };
    dnnl_memory_desc_t probe;
    for (int i = 0; rank >= 3 && rank <= 5 && i < 5 && tags[rank][i]; i++)
        if (dnnl_memory_desc_init_by_tag(&probe, rank, whole->dims, dnnl_f32, tags[rank][i]) ==
                dnnl_success &&
            dnnl_memory_desc_equal(&probe, whole) &&
            dnnl_memory_desc_init_by_tag(out, rank, dims, dnnl_f32, tags[rank][i]) == dnnl_success)
            return;
    dnnl_memory_desc_init_by_tag(out, rank, dims, dnnl_f32, aim_cpu_plain_tag(rank));
}

aim_cpu_kernel *aim_cpu_part_create(dnnl_engine_t engine, const dnnl_memory_desc_t *whole, int rank,
                                    const int64_t *dims, const int64_t *offsets, bool plain_dst) {
    dnnl_dims_t d, o;
    for (int i = 0; i < rank; i++)
        d[i] = dims[i], o[i] = offsets[i];
    dnnl_memory_desc_t part, dst;
    if (dnnl_memory_desc_init_submemory(&part, whole, d, o) != dnnl_success) return NULL;
    if (plain_dst)
        dnnl_memory_desc_init_by_tag(&dst, rank, d, dnnl_f32, aim_cpu_plain_tag(rank));
    else
        aim_cpu_like(whole, rank, d, &dst);
    aim_cpu_kernel *k = aim_cpu_reorder_create(engine, &part, &dst);
    if (k) {
        snprintf(k->name, sizeof k->name, "split");
        k->view = true;
    }
    return k;
}
