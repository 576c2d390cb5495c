/*
 * conv.c: Conv and ConvTranspose on oneDNN, or on aim's own Winograd kernel where it applies
 * (winograd.c). Weights (with a following BatchNormalization folded in) are re-laid-out once,
 * at load, into the layout the chosen implementation wants; source and destination layouts are
 * left to oneDNN (format any) except for graph outputs.
 */
#include "cpu/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Spatial parameters from the attributes and the inferred shapes; false when unsupported. */
static bool conv_geometry(const aim_cpu_node *n, const aim_tensor *x, const aim_tensor *w,
                          const aim_tensor *y, bool transposed, aim_cpu_conv_geom *c) {
    c->sp = x->rank - 2;
    if (c->sp < 1 || c->sp > 3 || w->rank != x->rank || y->rank != x->rank) return false;
    int64_t s[3], d[3], pads[6], k[3], op[3];
    if (!aim_cpu_attr_ints(n, "strides", c->sp, 1, s) ||
        !aim_cpu_attr_ints(n, "dilations", c->sp, 1, d) ||
        !aim_cpu_attr_ints(n, "pads", 2 * c->sp, 0, pads) ||
        !aim_cpu_attr_ints(n, "output_padding", c->sp, 0, op))
        return false;
    c->group = aim_cpu_attr_int(n, "group", 1);
    bool notset = aim_cpu_attr_is(n, "auto_pad", "NOTSET", "NOTSET");
    bool valid = aim_cpu_attr_is(n, "auto_pad", "NOTSET", "VALID");
    bool lower = aim_cpu_attr_is(n, "auto_pad", "NOTSET", "SAME_LOWER");
    if (transposed && (!notset || aim_cpu_attr_find(n, "output_shape"))) return false;
    for (int i = 0; i < c->sp; i++) {
        k[i] = w->dims[2 + i];
        int64_t in = x->dims[2 + i], out = y->dims[2 + i], ext = (k[i] - 1) * d[i] + 1;
        if (s[i] < 1 || d[i] < 1 || k[i] < 1) return false;
        int64_t pl = pads[i];
        if (valid) pl = 0;
        if (!notset && !valid) { /* SAME_*: ONNX's split of the total padding */
            int64_t total = (out - 1) * s[i] + ext - in;
            if (total < 0) total = 0;
            pl = lower ? total - total / 2 : total / 2;
        }
        /* The right padding that gives the inferred output size (ceil/floor differences). */
        int64_t pr =
            transposed ? (in - 1) * s[i] + ext - pl - out : (out - 1) * s[i] + ext - in - pl;
        /* A strided conv whose last window ends before the input does (ResNet's 1x1 stride-2
         * shortcuts on even sizes: the last row and column are not read): oneDNN takes a right
         * padding of 0 there, its output size (in + pl + pr - ext) / s + 1 rounding down. */
        if (!transposed && pr < 0 && pr > -s[i]) pr = 0;
        if (pl < 0 || pr < 0) return false;
        if (notset && !transposed && pr > pads[c->sp + i]) return false;
        c->strides[i] = s[i];
        c->dilates[i] = d[i] - 1; /* oneDNN counts dilation from 0 */
        c->pad_l[i] = pl;
        c->pad_r[i] = pr;
        c->kernel[i] = k[i];
    }
    return c->group >= 1;
}

/* Weights and bias with a BatchNormalization folded in: w' = w * g / sqrt(v + eps),
 * b' = (b - m) * g / sqrt(v + eps) + beta. Returns false when the BN is not foldable. */
static bool fold_bn(const aim_cpu_build *b, const aim_tensor *w, float *wf, float *bias,
                    int64_t oc) {
    const aim_cpu_node *bn = b->bn;
    for (int i = 1; i <= 4; i++) {
        const aim_tensor *t = aim_cpu_in(b, bn, i);
        if (!aim_cpu_is_const(b->g, bn, i) || t->dtype != AIM_DTYPE_FLOAT ||
            aim_tensor_count(t) != (size_t)oc)
            return false;
    }
    const float *g = aim_cpu_in(b, bn, 1)->data, *beta = aim_cpu_in(b, bn, 2)->data;
    const float *mean = aim_cpu_in(b, bn, 3)->data, *var = aim_cpu_in(b, bn, 4)->data;
    float eps = aim_cpu_attr_float(bn, "epsilon", 1e-5f);
    size_t per = aim_tensor_count(w) / (size_t)oc;
    for (int64_t o = 0; o < oc; o++) {
        float f = g[o] / sqrtf(var[o] + eps);
        for (size_t i = 0; i < per; i++)
            wf[(size_t)o * per + i] *= f;
        bias[o] = (bias[o] - mean[o]) * f + beta[o];
    }
    return true;
}

/* Float copies of the weights and bias (zeros when absent), BN folded. */
static bool conv_constants(const aim_cpu_build *b, int64_t oc, float **wf, float **bias) {
    const aim_tensor *w = aim_cpu_in(b, b->node, 1), *bt = aim_cpu_in(b, b->node, 2);
    *wf = malloc(aim_tensor_bytes(w) + 4);
    *bias = calloc((size_t)oc + 1, sizeof **bias);
    if (!*wf || !*bias) return false;
    memcpy(*wf, w->data, aim_tensor_bytes(w));
    if (bt) {
        if (!aim_cpu_is_const(b->g, b->node, 2) || bt->dtype != AIM_DTYPE_FLOAT ||
            aim_tensor_count(bt) != (size_t)oc)
            return false;
        memcpy(*bias, bt->data, (size_t)oc * sizeof **bias);
    }
    return !b->bn || fold_bn(b, w, *wf, *bias, oc);
}

/* oneDNN's plain weights layout: ONNX's order, with groups split out for grouped convs. */
static void user_weights_md(const aim_tensor *w, const aim_cpu_conv_geom *c, bool transposed,
                            dnnl_memory_desc_t *md) {
    dnnl_dims_t d;
    int nd = 0;
    int64_t o = transposed ? w->dims[1] * c->group : w->dims[0];
    int64_t i = transposed ? w->dims[0] : w->dims[1] * c->group;
    if (c->group > 1) d[nd++] = c->group;
    d[nd++] = o / c->group;
    d[nd++] = i / c->group;
    for (int k = 0; k < c->sp; k++)
        d[nd++] = c->kernel[k];
    dnnl_dims_t strides;
    /* Conv weights are [g][o][i][k...]; ConvTranspose's are [g][i][o][k...] in memory. */
    int64_t ks = 1;
    for (int k = c->sp - 1; k >= 0; k--) {
        strides[nd - c->sp + k] = ks;
        ks *= c->kernel[k];
    }
    int oi = c->group > 1 ? 1 : 0;
    int64_t per_o = transposed ? ks : d[oi + 1] * ks, per_i = transposed ? d[oi] * ks : ks;
    strides[oi] = per_o;
    strides[oi + 1] = per_i;
    if (c->group > 1) strides[0] = d[1] * d[2] * ks;
    dnnl_memory_desc_init_by_strides(md, nd, d, dnnl_f32, strides);
}

static void any_md(dnnl_memory_desc_t *md, const aim_tensor *t) {
    dnnl_dims_t d;
    for (int i = 0; i < t->rank; i++)
        d[i] = t->dims[i];
    dnnl_memory_desc_init_by_tag(md, t->rank, d, dnnl_f32, dnnl_format_tag_any);
}

static dnnl_status_t conv_desc(const aim_cpu_build *b, const aim_cpu_conv_geom *c, bool transposed,
                               const dnnl_memory_desc_t *wmd, void *desc) {
    const aim_tensor *x = aim_cpu_in(b, b->node, 0), *y = aim_cpu_out(b);
    dnnl_memory_desc_t src, dst, bias, wany;
    any_md(&src, x);
    if (b->plain_dst)
        aim_cpu_plain_md(&dst, y->rank, y->dims);
    else
        any_md(&dst, y);
    dnnl_dims_t bd = {y->dims[1]};
    dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_x);
    dnnl_memory_desc_init_by_tag(&wany, wmd->ndims, wmd->dims, dnnl_f32, dnnl_format_tag_any);
    if (transposed)
        return dnnl_dilated_deconvolution_forward_desc_init(
            desc, dnnl_forward_inference, dnnl_deconvolution_direct, &src, &wany, &bias, &dst,
            c->strides, c->dilates, c->pad_l, c->pad_r);
    return dnnl_dilated_convolution_forward_desc_init(
        desc, dnnl_forward_inference, dnnl_convolution_direct, &src, &wany, &bias, &dst, c->strides,
        c->dilates, c->pad_l, c->pad_r);
}

/* The layout the convolution picks for its destination without post-ops: residuals added by
 * a post-op are read in that layout (reordered to it once if needed), since a binary post-op
 * with another layout falls back to much slower implementations. */
static void residual_layout(aim_cpu_build *b, const aim_cpu_conv_geom *c, bool transposed,
                            const dnnl_memory_desc_t *wmd) {
    bool any = false;
    for (int i = 0; i < b->n_post; i++)
        any = any || b->post[i].sum;
    if (!any) return;
    union {
        dnnl_convolution_desc_t conv;
        dnnl_deconvolution_desc_t deconv;
    } desc;
    dnnl_primitive_desc_t pd = NULL;
    aim_cpu_build plain = *b;
    plain.n_post = 0;
    dnnl_primitive_attr_t attr = aim_cpu_attr(&plain);
    if (attr && conv_desc(b, c, transposed, wmd, &desc) == dnnl_success &&
        dnnl_primitive_desc_create(&pd, &desc, attr, b->engine, NULL) == dnnl_success) {
        const dnnl_memory_desc_t *dst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
        for (int i = 0; dst && i < b->n_post; i++)
            if (b->post[i].sum) b->post[i].src1_md = *dst;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
}

static aim_cpu_kernel *conv_build(const aim_cpu_build *given, const aim_cpu_conv_geom *c,
                                  bool transposed, const float *wf, const float *bias) {
    aim_cpu_build local = *given, *b = &local;
    const aim_tensor *w = aim_cpu_in(b, b->node, 1);
    dnnl_memory_desc_t wmd, bmd;
    user_weights_md(w, c, transposed, &wmd);
    residual_layout(b, c, transposed, &wmd);
    union {
        dnnl_convolution_desc_t conv;
        dnnl_deconvolution_desc_t deconv;
    } desc;
    if (conv_desc(b, c, transposed, &wmd, &desc) != dnnl_success) return NULL;
    dnnl_primitive_attr_t attr = aim_cpu_attr(b);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st =
        attr ? dnnl_primitive_desc_create(&pd, &desc, attr, b->engine, NULL) : dnnl_out_of_memory;
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st == dnnl_success && b->n_post > 0 && aim_cpu_slow_fusion(b, pd)) st = dnnl_unimplemented;
    aim_cpu_kernel *k =
        st == dnnl_success ? aim_cpu_kernel_new(transposed ? "deconv" : "conv") : NULL;
    if (!k) {
        if (pd) dnnl_primitive_desc_destroy(pd);
        return NULL;
    }
    const aim_tensor *y = aim_cpu_out(b);
    dnnl_dims_t bd = {y->dims[1]};
    dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x);
    k->n_src = 1;
    k->src_arg[0] = DNNL_ARG_SRC;
    k->src_md[0] = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    aim_cpu_kernel_post_srcs(k, b);
    bool ok = aim_cpu_kernel_const(k, b->engine, pd, dnnl_query_weights_md, 0, DNNL_ARG_WEIGHTS,
                                   &wmd, wf) == AIM_OK &&
              aim_cpu_kernel_const(k, b->engine, pd, dnnl_query_weights_md, 1, DNNL_ARG_BIAS, &bmd,
                                   bias) == AIM_OK;
    return aim_cpu_kernel_complete(k, pd, ok);
}

static aim_cpu_kernel *conv_common(const aim_cpu_build *b, bool transposed) {
    const aim_cpu_node *n = b->node;
    const aim_tensor *x = aim_cpu_in(b, n, 0), *w = aim_cpu_in(b, n, 1), *y = aim_cpu_out(b);
    if (!x || !w || x->dtype != AIM_DTYPE_FLOAT || w->dtype != AIM_DTYPE_FLOAT ||
        !aim_cpu_is_const(b->g, n, 1) || n->n_out != 1)
        return NULL;
    aim_cpu_conv_geom c;
    if (!conv_geometry(n, x, w, y, transposed, &c)) return NULL;
    int64_t oc = y->dims[1];
    if (transposed ? w->dims[0] != x->dims[1] || w->dims[1] * c.group != oc
                   : w->dims[0] != oc || w->dims[1] * c.group != x->dims[1] || oc % c.group)
        return NULL;
    if (transposed && b->bn) return NULL;
    float *wf = NULL, *bias = NULL;
    aim_cpu_kernel *k = NULL;
    if (conv_constants(b, oc, &wf, &bias)) {
        k = transposed ? NULL : aim_cpu_winograd_create(b, &c, wf, bias);
        if (!k) k = conv_build(b, &c, transposed, wf, bias);
    }
    free(wf);
    free(bias);
    return k;
}

aim_cpu_kernel *aim_cpu_conv_create(const aim_cpu_build *b) {
    return conv_common(b, false);
}

aim_cpu_kernel *aim_cpu_deconv_create(const aim_cpu_build *b) {
    return conv_common(b, true);
}
