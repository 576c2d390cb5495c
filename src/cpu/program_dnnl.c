/*
 * program_dnnl.c: the fast executor of compiled int8 programs, on oneDNN int8 primitives.
 *
 * At creation, every op becomes one primitive (concat: one reorder per input) whose
 * arithmetic is arranged to match the reference (program_ref.c) step for step:
 *   conv        u8/s8 x s8 -> s32 accumulation, bias s32, per-channel output scales
 *               (sx * sw[c]) / sy (the very floats the reference uses), src/dst zero points,
 *               residual as a sum post-op (scale sr/sy, zero point zr) on a copy of the
 *               residual placed in the destination, activation post-ops in output units;
 *               a float32 output (a program output) is written NHWC into the run's buffer and
 *               reordered to NCHW (with a residual or an approximate activation: reference);
 *   pooling     int8 max/avg; a linear post-op when input and output parameters differ;
 *   add/act     binary add (binary max(a, a) for a stand-alone activation) with per-source
 *               scales and linear post-ops for the zero points;
 *   concat      a reorder per input into its part of the output, with scale and zero points
 *               when the input's parameters differ;
 *   resize      resampling nearest;
 *   slice       a reorder reading a sub-memory of the input, with scale and zero points;
 *   (de)quant   reorders with scales and zero points.
 * Weights are re-laid-out once into the layout the chosen implementation wants (format any);
 * activations are NHWC (oneDNN's fast int8 layout) for 4-D quantized tensors, plain otherwise.
 * Ops oneDNN cannot do exactly (mul with zero points, average pooling counting padding with a
 * nonzero zero point) or does not implement run the reference code for that op alone, on
 * plain copies. A run owns its buffers and scratchpad, so concurrent runs share nothing
 * mutable. Primitives are made for the run's thread count, small ones (cpu.h:
 * aim_cpu_threads_for) for one thread, and run on as many. AIM_PROGRAM_VERBOSE=1 in the environment
 * prints the oneDNN implementation chosen for each primitive (Debian's oneDNN is built without
 * DNNL_VERBOSE).
 */
#include "cpu/cpu.h"
#include "cpu/program.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS    6
#define PRE_BUFFER  (-2) /* argument tensor: the step's per-run source copy */
#define POST_BUFFER (-3) /* argument tensor: the step's per-run NHWC float32 result */

typedef struct {
    dnnl_primitive_t prim;
    int n_args;
    int arg[MAX_ARGS];
    dnnl_memory_desc_t md[MAX_ARGS];
    int tensor[MAX_ARGS];  /* the tensor whose buffer this argument is; -1: cdata */
    void *cdata[MAX_ARGS]; /* constants (weights, bias), owned */
} prim_call;

typedef struct {
    const aim_prog_op *op;
    bool ref; /* runs the reference code */
    int n_calls;
    prim_call *calls; /* one per input for concat, else one (descriptors are large: heap) */
    int residual;     /* conv with a sum post-op: copied into the destination first; -1 none */
    int pre_dup;      /* conv source copied into the per-run buffer at pre_offset: copies */
    bool pre_flip;    /* of each channel, and s8 -> u8 (see conv_plan) */
    size_t pre_offset;
    size_t post_offset; /* conv with a float32 output: where it writes NHWC before NCHW */
    bool one_thread;    /* little work: made for and run on one thread */
} step;

struct aim_program_exec {
    const aim_program *p;
    dnnl_engine_t engine;
    dnnl_memory_desc_t *md; /* per tensor: its layout during a run */
    size_t *offset;         /* per tensor: its place in a run's arena */
    size_t arena_bytes, scratch_bytes;
    step *steps;
    size_t n_fallbacks;
};

/* ---- Descriptors and attributes ------------------------------------------------------------ */

static bool is_quant(int dtype) {
    return dtype == AIM_DTYPE_UINT8 || dtype == AIM_DTYPE_INT8;
}

static dnnl_data_type_t dnnl_dt(int dtype) {
    return dtype == AIM_DTYPE_UINT8 ? dnnl_u8 : dtype == AIM_DTYPE_INT8 ? dnnl_s8 : dnnl_f32;
}

static dnnl_status_t tensor_md(const aim_prog_tensor *t, dnnl_memory_desc_t *md) {
    static const dnnl_format_tag_t plain[] = {dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc,
                                              dnnl_abcd};
    dnnl_dims_t d;
    for (int i = 0; i < t->rank; i++)
        d[i] = t->dims[i];
    dnnl_format_tag_t tag = is_quant(t->dtype) && t->rank == 4 ? dnnl_acdb : plain[t->rank];
    return dnnl_memory_desc_init_by_tag(md, t->rank, d, dnnl_dt(t->dtype), tag);
}

static const aim_prog_tensor *T(const aim_program_exec *e, int i) {
    return &e->p->tensors[i];
}

static dnnl_primitive_attr_t attr_new(void) {
    dnnl_primitive_attr_t a = NULL;
    if (dnnl_primitive_attr_create(&a) != dnnl_success) return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user) != dnnl_success) {
        dnnl_primitive_attr_destroy(a);
        return NULL;
    }
    return a;
}

static bool set_zp(dnnl_primitive_attr_t a, int arg, int32_t zp) {
    return zp == 0 || dnnl_primitive_attr_set_zero_points(a, arg, 1, 0, &zp) == dnnl_success;
}

static bool post_eltwise(dnnl_post_ops_t ops, float scale, dnnl_alg_kind_t alg, float a, float b) {
    return dnnl_post_ops_append_eltwise(ops, scale, alg, a, b) == dnnl_success;
}

/* oneDNN's algorithm for an activation that does not commute with scaling. */
static dnnl_alg_kind_t act_alg(aim_prog_act act) {
    return act == AIM_PROG_ACT_SIGMOID ? dnnl_eltwise_logistic
           : act == AIM_PROG_ACT_SILU  ? dnnl_eltwise_swish /* x * sigmoid(alpha x), alpha 1 */
                                       : dnnl_eltwise_hardswish;
}

/* The op's activation, in output units u (output scale sy): f(u * sy) / sy, computed directly
 * for the activations that commute with scaling (as the reference does). */
static bool post_act(dnnl_post_ops_t ops, const aim_prog_op *op, float sy) {
    switch (op->act) {
    case AIM_PROG_ACT_NONE: return true;
    case AIM_PROG_ACT_RELU: return post_eltwise(ops, 1, dnnl_eltwise_relu, 0, 0);
    case AIM_PROG_ACT_LEAKY_RELU: return post_eltwise(ops, 1, dnnl_eltwise_relu, op->act_alpha, 0);
    case AIM_PROG_ACT_CLIP:
        return post_eltwise(ops, 1, dnnl_eltwise_clip, op->act_alpha / sy, op->act_beta / sy);
    default: break;
    }
    return post_eltwise(ops, 1, dnnl_eltwise_linear, sy, 0) &&
           post_eltwise(ops, 1.0f / sy, act_alg(op->act), 1.0f, 0);
}

static bool attr_post_ops(dnnl_primitive_attr_t a, dnnl_post_ops_t ops) {
    bool ok = dnnl_primitive_attr_set_post_ops(a, ops) == dnnl_success;
    dnnl_post_ops_destroy(ops);
    return ok;
}

/* ---- Calls --------------------------------------------------------------------------------- */

static void call_arg(prim_call *c, int arg, const dnnl_memory_desc_t *md, int tensor) {
    c->arg[c->n_args] = arg;
    c->md[c->n_args] = *md;
    c->tensor[c->n_args++] = tensor;
}

/* Creates the primitive from pd (destroyed here) and notes its scratchpad size. */
static bool call_finish(aim_program_exec *e, prim_call *c, dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = sp ? dnnl_memory_desc_get_size(sp) : 0;
    if (bytes > e->scratch_bytes) e->scratch_bytes = bytes;
    const char *impl = NULL;
    if (getenv("AIM_PROGRAM_VERBOSE") &&
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success)
        fprintf(stderr, "aim program: %s\n", impl); /* which oneDNN implementation ran */
    bool ok = dnnl_primitive_create(&c->prim, pd) == dnnl_success;
    dnnl_primitive_desc_destroy(pd);
    return ok;
}

static dnnl_status_t execute(dnnl_engine_t eng, dnnl_stream_t s, dnnl_primitive_t prim, int n,
                             const int *arg, const dnnl_memory_desc_t *md, void *const *data) {
    dnnl_exec_arg_t args[MAX_ARGS + 1] = {{0, NULL}};
    dnnl_status_t st = dnnl_success;
    int made = 0;
    for (; made < n && st == dnnl_success; made++) {
        args[made].arg = arg[made];
        st = dnnl_memory_create(&args[made].memory, &md[made], eng, data[made]);
    }
    if (st == dnnl_success) st = dnnl_primitive_execute(prim, s, n, args);
    if (st == dnnl_success) st = dnnl_stream_wait(s);
    for (int i = 0; i < made; i++)
        if (args[i].memory) dnnl_memory_destroy(args[i].memory);
    return st;
}

/* A constant re-laid-out once from the plain layout `from` to what pd wants for (what, idx). */
static bool call_const(aim_program_exec *e, prim_call *c, dnnl_primitive_desc_t pd,
                       dnnl_query_t what, int idx, int arg, const dnnl_memory_desc_t *from,
                       const void *data) {
    const dnnl_memory_desc_t *to = dnnl_primitive_desc_query_md(pd, what, idx);
    if (!to) return false;
    size_t bytes = dnnl_memory_desc_get_size(to);
    void *buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!buf) return false;
    memset(buf, 0, bytes); /* blocked layouts pad channels with zeros */
    c->cdata[c->n_args] = buf;
    call_arg(c, arg, to, -1);
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_stream_t s = NULL;
    dnnl_status_t st =
        dnnl_reorder_primitive_desc_create(&rpd, from, e->engine, to, e->engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&prim, rpd);
    if (st == dnnl_success) st = dnnl_stream_create(&s, e->engine, dnnl_stream_default_flags);
    int args[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    dnnl_memory_desc_t mds[2] = {*from, *to};
    void *ptrs[2] = {(void *)data, buf};
    if (st == dnnl_success) st = execute(e->engine, s, prim, 2, args, mds, ptrs);
    if (s) dnnl_stream_destroy(s);
    if (prim) dnnl_primitive_destroy(prim);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    return st == dnnl_success;
}

/* ---- Op builders: each returns false when oneDNN cannot do the op (reference fallback) ----- */

/* How a conv feeds oneDNN. Without an int8 dot-product instruction (VNNI), oneDNN's int8 conv
 * multiplies u8 x s8 pairs with vpmaddubsw, whose 16-bit pair sums saturate once
 * 255 * (|w1| + |w2|) > 32767, and it halves the weights of s8 sources (rounding them); both
 * break exactness. So on such machines an s8 source is flipped to u8 (x ^ 0x80 = x + 128, zero
 * point + 128: the same real values), and when a weight exceeds 64 in magnitude (non-depthwise)
 * each input channel is duplicated and its weight split in two halves of at most 64, w/2 and
 * w - w/2: the accumulation is the same integer sum and cannot saturate. The copy goes into a
 * per-run buffer; depthwise convs multiply in 32 bits and need no split. */
typedef struct {
    int dup;    /* copies of each input channel (1 or 2) */
    bool flip;  /* s8 source read as u8 */
    bool copy;  /* the source goes through the per-run buffer */
    int32_t zx; /* source zero point as oneDNN sees it */
    int8_t *w;  /* weights as oneDNN sees them (owned), [O, dup * I/group, KH, KW] */
    dnnl_memory_desc_t src;
} conv_plan;

static bool has_vnni(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_vnni) == dnnl_cpu_isa_avx512_core_vnni ||
           (isa & dnnl_cpu_isa_avx2_vnni) == dnnl_cpu_isa_avx2_vnni;
}

static bool conv_plan_make(const aim_program_exec *e, const aim_prog_op *op, conv_plan *cp) {
    const aim_prog_tensor *x = T(e, op->in[0]), *y = T(e, op->out);
    int64_t cg = x->dims[1] / op->group, kk = op->kernel[0] * op->kernel[1];
    size_t nw = (size_t)(y->dims[1] * cg * kk);
    int big = 0;
    for (size_t i = 0; i < nw; i++)
        big |= op->weights[i] > 64 || op->weights[i] < -64;
    bool vnni = has_vnni();
    cp->flip = !vnni && x->dtype == AIM_DTYPE_INT8;
    cp->dup = !vnni && big && cg > 1 ? 2 : 1;
    cp->copy = cp->flip || cp->dup > 1;
    cp->zx = x->zero_point + (cp->flip ? 128 : 0);
    if (!(cp->w = malloc(nw * (size_t)cp->dup))) return false;
    for (int64_t o = 0; o < y->dims[1]; o++)
        for (int r = 0; r < cp->dup; r++)
            for (int64_t i = 0; i < cg * kk; i++) {
                int8_t w = op->weights[o * cg * kk + i], half = (int8_t)(w / 2);
                cp->w[(o * cp->dup + r) * cg * kk + i] = cp->dup == 1 ? w : r ? w - half : half;
            }
    dnnl_dims_t d = {x->dims[0], x->dims[1] * cp->dup, x->dims[2], x->dims[3]};
    if (!cp->copy) cp->src = e->md[op->in[0]];
    return cp->copy
               ? dnnl_memory_desc_init_by_tag(&cp->src, 4, d, dnnl_u8, dnnl_acdb) == dnnl_success
               : true;
}

static bool conv_attr(const aim_program_exec *e, const aim_prog_op *op, const conv_plan *cp,
                      dnnl_primitive_attr_t a) {
    const aim_prog_tensor *y = T(e, op->out);
    int64_t oc = y->dims[1];
    float *m = malloc((size_t)oc * sizeof *m);
    if (!m) return false;
    for (int64_t o = 0; o < oc; o++)
        m[o] = aim_program_conv_scale(e->p, op, o);
    bool ok = dnnl_primitive_attr_set_output_scales(a, oc, 1 << 1, m) == dnnl_success;
    free(m);
    ok = ok && set_zp(a, DNNL_ARG_SRC, cp->zx) && set_zp(a, DNNL_ARG_DST, y->zero_point);
    dnnl_post_ops_t ops = NULL;
    if (!ok || dnnl_post_ops_create(&ops) != dnnl_success) return false;
    if (op->residual >= 0) {
        const aim_prog_tensor *r = T(e, op->residual);
        ok = dnnl_post_ops_append_sum_v3(ops, r->scale / y->scale, r->zero_point,
                                         dnnl_dt(r->dtype)) == dnnl_success;
    }
    ok = ok && post_act(ops, op, y->scale);
    return attr_post_ops(a, ops) && ok;
}

static bool conv_pd(const aim_program_exec *e, const aim_prog_op *op, const conv_plan *cp,
                    const dnnl_memory_desc_t *dst, dnnl_primitive_desc_t *pd,
                    dnnl_memory_desc_t *wplain, dnnl_memory_desc_t *bplain) {
    const aim_prog_tensor *x = T(e, op->in[0]), *y = T(e, op->out);
    int64_t g = op->group, oc = y->dims[1], ic = x->dims[1] * cp->dup;
    dnnl_dims_t wd = {g, oc / g, ic / g, op->kernel[0], op->kernel[1]}, bd = {oc};
    dnnl_dims_t wd1 = {oc, ic, op->kernel[0], op->kernel[1]};
    dnnl_memory_desc_t wany;
    bool grouped = g > 1;
    int wr = grouped ? 5 : 4;
    dnnl_dims_t strides = {op->strides[0], op->strides[1]};
    dnnl_dims_t dil = {op->dilations[0] - 1, op->dilations[1] - 1}; /* oneDNN counts from 0 */
    dnnl_dims_t pl = {op->pads[0], op->pads[1]}, pr = {op->pads[2], op->pads[3]};
    if (dnnl_memory_desc_init_by_tag(wplain, wr, grouped ? wd : wd1, dnnl_s8,
                                     grouped ? dnnl_abcde : dnnl_abcd) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&wany, wr, grouped ? wd : wd1, dnnl_s8, dnnl_format_tag_any) !=
            dnnl_success ||
        dnnl_memory_desc_init_by_tag(bplain, 1, bd, dnnl_s32, dnnl_a) != dnnl_success)
        return false;
    dnnl_convolution_desc_t cd;
    if (dnnl_dilated_convolution_forward_desc_init(
            &cd, dnnl_forward_inference, dnnl_convolution_direct, &cp->src, &wany,
            op->bias ? bplain : NULL, dst, strides, dil, pl, pr) != dnnl_success)
        return false;
    dnnl_primitive_attr_t a = attr_new();
    bool ok = a && conv_attr(e, op, cp, a) &&
              dnnl_primitive_desc_create(pd, &cd, a, e->engine, NULL) == dnnl_success;
    if (a) dnnl_primitive_attr_destroy(a);
    return ok;
}

/* A float32 conv output (a program output) is NCHW, which oneDNN's int8 convs only write with
 * their slow reference code: such a conv writes NHWC into the per-run buffer and a reorder
 * makes the NCHW output (exact: it moves floats). */
static bool conv_dst(aim_program_exec *e, step *s, dnnl_memory_desc_t *dst) {
    const aim_prog_tensor *y = T(e, s->op->out);
    if (y->dtype != AIM_DTYPE_FLOAT || y->rank != 4) {
        *dst = e->md[s->op->out];
        return true;
    }
    dnnl_dims_t d = {y->dims[0], y->dims[1], y->dims[2], y->dims[3]};
    if (dnnl_memory_desc_init_by_tag(dst, 4, d, dnnl_f32, dnnl_acdb) != dnnl_success) return false;
    s->post_offset = e->arena_bytes;
    e->arena_bytes += (dnnl_memory_desc_get_size(dst) + 63) / 64 * 64;
    return true;
}

static bool add_to_nchw(aim_program_exec *e, step *s, const dnnl_memory_desc_t *from) {
    dnnl_primitive_attr_t a = attr_new();
    dnnl_primitive_desc_t pd = NULL;
    bool ok = a && dnnl_reorder_primitive_desc_create(&pd, from, e->engine, &e->md[s->op->out],
                                                      e->engine, a) == dnnl_success;
    if (a) dnnl_primitive_attr_destroy(a);
    if (!ok) return false;
    prim_call *c = &s->calls[s->n_calls++];
    call_arg(c, DNNL_ARG_FROM, from, POST_BUFFER);
    call_arg(c, DNNL_ARG_TO, &e->md[s->op->out], s->op->out);
    return call_finish(e, c, pd);
}

static bool build_conv(aim_program_exec *e, step *s) {
    const aim_prog_op *op = s->op;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t wplain, bplain, dst;
    conv_plan cp = {0};
    bool staged = T(e, op->out)->dtype == AIM_DTYPE_FLOAT && T(e, op->out)->rank == 4;
    bool ok = conv_plan_make(e, op, &cp) && conv_dst(e, s, &dst) &&
              conv_pd(e, op, &cp, &dst, &pd, &wplain, &bplain);
    if (ok) {
        prim_call *c = &s->calls[s->n_calls++];
        call_arg(c, DNNL_ARG_SRC, &cp.src, cp.copy ? PRE_BUFFER : op->in[0]);
        ok = call_const(e, c, pd, dnnl_query_weights_md, 0, DNNL_ARG_WEIGHTS, &wplain, cp.w);
        if (ok && op->bias)
            ok = call_const(e, c, pd, dnnl_query_weights_md, 1, DNNL_ARG_BIAS, &bplain, op->bias);
        call_arg(c, DNNL_ARG_DST, &dst, staged ? POST_BUFFER : op->out);
        s->residual = op->residual;
        if (cp.copy) {
            s->pre_dup = cp.dup;
            s->pre_flip = cp.flip;
            s->pre_offset = e->arena_bytes;
            e->arena_bytes += (dnnl_memory_desc_get_size(&cp.src) + 63) / 64 * 64;
        }
        ok = ok ? call_finish(e, c, pd) : (dnnl_primitive_desc_destroy(pd), false);
        ok = ok && (!staged || add_to_nchw(e, s, &dst));
    }
    free(cp.w);
    return ok;
}

/* Linear post-op mapping input units to output units when their parameters differ. */
static bool pool_attr(const aim_prog_tensor *x, const aim_prog_tensor *y, dnnl_primitive_attr_t a) {
    if (x->scale == y->scale && x->zero_point == y->zero_point) return true;
    float r = x->scale / y->scale;
    dnnl_post_ops_t ops = NULL;
    if (dnnl_post_ops_create(&ops) != dnnl_success) return false;
    bool ok = post_eltwise(ops, 1, dnnl_eltwise_linear, r,
                           (float)y->zero_point - (float)x->zero_point * r);
    return attr_post_ops(a, ops) && ok;
}

static bool build_pool(aim_program_exec *e, step *s) {
    const aim_prog_op *op = s->op;
    const aim_prog_tensor *x = T(e, op->in[0]), *y = T(e, op->out);
    /* oneDNN pads with raw 0, the reference with the zero point (real 0). */
    if (op->kind == AIM_PROG_AVGPOOL && op->count_include_pad && x->zero_point != 0) return false;
    dnnl_alg_kind_t alg = op->kind == AIM_PROG_MAXPOOL ? dnnl_pooling_max
                          : op->count_include_pad      ? dnnl_pooling_avg_include_padding
                                                       : dnnl_pooling_avg_exclude_padding;
    dnnl_dims_t st = {op->strides[0], op->strides[1]}, k = {op->kernel[0], op->kernel[1]};
    dnnl_dims_t dil = {0, 0}, pl = {op->pads[0], op->pads[1]}, pr = {op->pads[2], op->pads[3]};
    dnnl_pooling_v2_desc_t d;
    if (dnnl_pooling_v2_forward_desc_init(&d, dnnl_forward_inference, alg, &e->md[op->in[0]],
                                          &e->md[op->out], st, k, dil, pl, pr) != dnnl_success)
        return false;
    dnnl_primitive_attr_t a = attr_new();
    dnnl_primitive_desc_t pd = NULL;
    bool ok = a && pool_attr(x, y, a) &&
              dnnl_primitive_desc_create(&pd, &d, a, e->engine, NULL) == dnnl_success;
    if (a) dnnl_primitive_attr_destroy(a);
    if (!ok) return false;
    prim_call *c = &s->calls[s->n_calls++];
    call_arg(c, DNNL_ARG_SRC, &e->md[op->in[0]], op->in[0]);
    call_arg(c, DNNL_ARG_DST, &e->md[op->out], op->out);
    return call_finish(e, c, pd);
}

/* Post-ops of a binary op: u = pre + shift (output units), activation, + zy. oneDNN 2.6's
 * binary jit mis-computes a second linear eltwise post-op (it gets the first one's
 * parameters), so at most one linear is used: shift merges into it, and zy is added by a
 * binary post-op reading a one-element constant (*zy_at: its post-op index, or -1). */
static bool binary_post_ops(dnnl_post_ops_t ops, const aim_prog_op *op, float sy, float shift,
                            float zy, int *zy_at) {
    *zy_at = -1;
    if (op->act == AIM_PROG_ACT_NONE)
        return shift + zy == 0 || post_eltwise(ops, 1, dnnl_eltwise_linear, 1, shift + zy);
    bool ok = true;
    if (op->act <= AIM_PROG_ACT_CLIP) { /* commute with scaling: in output units */
        ok = shift == 0 || post_eltwise(ops, 1, dnnl_eltwise_linear, 1, shift);
        ok = ok && post_act(ops, op, sy);
    } else {
        ok = post_eltwise(ops, 1, dnnl_eltwise_linear, sy, shift * sy) &&
             post_eltwise(ops, 1.0f / sy, act_alg(op->act), 1.0f, 0);
    }
    if (!ok || zy == 0) return ok;
    dnnl_memory_desc_t one;
    dnnl_dims_t d = {1, 1, 1, 1};
    *zy_at = dnnl_post_ops_len(ops);
    return dnnl_memory_desc_init_by_tag(&one, 4, d, dnnl_f32, dnnl_abcd) == dnnl_success &&
           dnnl_post_ops_append_binary(ops, dnnl_binary_add, &one) == dnnl_success;
}

/* Binary: dst = act(s0 * a + s1 * b + shift) + zy, in output units. */
static bool binary_attr(const aim_program_exec *e, const aim_prog_op *op, dnnl_primitive_attr_t a,
                        int *zy_at) {
    const aim_prog_tensor *x0 = T(e, op->in[0]), *y = T(e, op->out);
    const aim_prog_tensor *x1 = op->n_in > 1 ? T(e, op->in[1]) : x0;
    bool mul = op->kind == AIM_PROG_MUL;
    if (mul && (x0->zero_point || x1->zero_point)) return false; /* no zero points inside */
    if (y->rank != 4) return false; /* the zero-point constant above is 4-D */
    float s0 = mul ? x0->scale : x0->scale / y->scale, s1 = x1->scale / y->scale;
    float shift = op->kind == AIM_PROG_ADD
                      ? -((float)x0->zero_point * s0 + (float)x1->zero_point * s1)
                  : mul ? 0.0f
                        : -(float)x0->zero_point * s0;
    dnnl_post_ops_t ops = NULL;
    bool ok = dnnl_primitive_attr_set_scales(a, DNNL_ARG_SRC_0, 1, 0, &s0) == dnnl_success &&
              dnnl_primitive_attr_set_scales(a, DNNL_ARG_SRC_1, 1, 0, &s1) == dnnl_success &&
              dnnl_post_ops_create(&ops) == dnnl_success;
    if (!ok) return false;
    ok = binary_post_ops(ops, op, y->scale, shift, (float)y->zero_point, zy_at);
    return attr_post_ops(a, ops) && ok;
}

static bool build_binary(aim_program_exec *e, step *s) {
    const aim_prog_op *op = s->op;
    int b = op->n_in > 1 ? op->in[1] : op->in[0], zy_at = -1;
    dnnl_alg_kind_t alg = op->kind == AIM_PROG_ADD   ? dnnl_binary_add
                          : op->kind == AIM_PROG_MUL ? dnnl_binary_mul
                                                     : dnnl_binary_max; /* max(a, a) = a */
    dnnl_binary_desc_t d;
    if (dnnl_binary_desc_init(&d, alg, &e->md[op->in[0]], &e->md[b], &e->md[op->out]) !=
        dnnl_success)
        return false;
    dnnl_primitive_attr_t a = attr_new();
    dnnl_primitive_desc_t pd = NULL;
    bool ok = a && binary_attr(e, op, a, &zy_at) &&
              dnnl_primitive_desc_create(&pd, &d, a, e->engine, NULL) == dnnl_success;
    if (a) dnnl_primitive_attr_destroy(a);
    if (!ok) return false;
    prim_call *c = &s->calls[s->n_calls++];
    call_arg(c, DNNL_ARG_SRC_0, &e->md[op->in[0]], op->in[0]);
    call_arg(c, DNNL_ARG_SRC_1, &e->md[b], b);
    call_arg(c, DNNL_ARG_DST, &e->md[op->out], op->out);
    if (zy_at >= 0) {
        float *zy = malloc(sizeof *zy);
        dnnl_memory_desc_t one;
        dnnl_dims_t dd = {1, 1, 1, 1};
        if (!zy || dnnl_memory_desc_init_by_tag(&one, 4, dd, dnnl_f32, dnnl_abcd) != dnnl_success) {
            free(zy);
            dnnl_primitive_desc_destroy(pd);
            return false;
        }
        *zy = (float)T(e, op->out)->zero_point;
        c->cdata[c->n_args] = zy;
        call_arg(c, DNNL_ARG_ATTR_MULTIPLE_POST_OP(zy_at) | DNNL_ARG_SRC_1, &one, -1);
    }
    return call_finish(e, c, pd);
}

/* A reorder from tensor `from` (layout *src) to `to_md`, requantizing when needed. */
static bool add_reorder(aim_program_exec *e, step *s, int from, const dnnl_memory_desc_t *src,
                        int to, const dnnl_memory_desc_t *to_md) {
    const aim_prog_tensor *x = T(e, from), *y = T(e, to);
    dnnl_primitive_attr_t a = attr_new();
    bool ok = a != NULL;
    float scale = 1;
    if (!is_quant(x->dtype))
        scale = 1.0f / y->scale; /* quantize */
    else if (!is_quant(y->dtype))
        scale = x->scale; /* dequantize */
    else if (x->scale != y->scale)
        scale = x->scale / y->scale;
    if (ok && scale != 1)
        ok = dnnl_primitive_attr_set_output_scales(a, 1, 0, &scale) == dnnl_success;
    if (ok && is_quant(x->dtype)) ok = set_zp(a, DNNL_ARG_SRC, x->zero_point);
    if (ok && is_quant(y->dtype)) ok = set_zp(a, DNNL_ARG_DST, y->zero_point);
    dnnl_primitive_desc_t pd = NULL;
    ok = ok && dnnl_reorder_primitive_desc_create(&pd, src, e->engine, to_md, e->engine, a) ==
                   dnnl_success;
    if (a) dnnl_primitive_attr_destroy(a);
    if (!ok) return false;
    prim_call *c = &s->calls[s->n_calls++];
    call_arg(c, DNNL_ARG_FROM, src, from);
    call_arg(c, DNNL_ARG_TO, to_md, to);
    return call_finish(e, c, pd);
}

static bool build_concat(aim_program_exec *e, step *s) {
    const aim_prog_op *op = s->op;
    const aim_prog_tensor *y = T(e, op->out);
    dnnl_dims_t offsets = {0, 0, 0, 0};
    for (int i = 0; i < op->n_in; i++) {
        const aim_prog_tensor *x = T(e, op->in[i]);
        dnnl_dims_t dims;
        for (int d = 0; d < y->rank; d++)
            dims[d] = x->dims[d];
        dnnl_memory_desc_t part;
        if (dnnl_memory_desc_init_submemory(&part, &e->md[op->out], dims, offsets) !=
                dnnl_success ||
            !add_reorder(e, s, op->in[i], &e->md[op->in[i]], op->out, &part))
            return false;
        offsets[op->axis] += x->dims[op->axis];
    }
    return true;
}

/* SLICE: a reorder (requantizing when the parameters differ) that reads the part of the input
 * through a sub-memory of its layout. */
static bool build_slice(aim_program_exec *e, step *s) {
    const aim_prog_op *op = s->op;
    const aim_prog_tensor *y = T(e, op->out);
    dnnl_dims_t dims, offsets = {0, 0, 0, 0};
    for (int d = 0; d < y->rank; d++)
        dims[d] = y->dims[d];
    offsets[op->axis] = op->pads[0];
    dnnl_memory_desc_t part;
    return dnnl_memory_desc_init_submemory(&part, &e->md[op->in[0]], dims, offsets) ==
               dnnl_success &&
           add_reorder(e, s, op->in[0], &part, op->out, &e->md[op->out]);
}

static bool build_resize(aim_program_exec *e, step *s) {
    const aim_prog_op *op = s->op;
    float f[2] = {(float)op->strides[0], (float)op->strides[1]};
    dnnl_resampling_desc_t d;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_resampling_forward_desc_init(&d, dnnl_forward_inference, dnnl_resampling_nearest, f,
                                          &e->md[op->in[0]], &e->md[op->out]) != dnnl_success)
        return false;
    dnnl_primitive_attr_t a = attr_new();
    bool ok = a && dnnl_primitive_desc_create(&pd, &d, a, e->engine, NULL) == dnnl_success;
    if (a) dnnl_primitive_attr_destroy(a);
    if (!ok) return false;
    prim_call *c = &s->calls[s->n_calls++];
    call_arg(c, DNNL_ARG_SRC, &e->md[op->in[0]], op->in[0]);
    call_arg(c, DNNL_ARG_DST, &e->md[op->out], op->out);
    return call_finish(e, c, pd);
}

/* Whether oneDNN writes exactly the reference's values: always into a quantized output (the
 * requantization rounds alike); into a float32 output (a program output, unrounded) only
 * without a residual and with an activation that needs no arithmetic of its own (scaling is
 * one float multiplication in both; the sum post-op and approximate activations differ in
 * the last bits). */
static bool conv_exact(const aim_program_exec *e, const aim_prog_op *op) {
    if (T(e, op->out)->dtype != AIM_DTYPE_FLOAT) return true;
    return op->residual < 0 && (op->act == AIM_PROG_ACT_NONE || op->act == AIM_PROG_ACT_RELU);
}

static bool build_step(aim_program_exec *e, step *s) {
    const aim_prog_op *op = s->op;
    switch (op->kind) {
    case AIM_PROG_QUANTIZE:
    case AIM_PROG_DEQUANTIZE:
        return add_reorder(e, s, op->in[0], &e->md[op->in[0]], op->out, &e->md[op->out]);
    case AIM_PROG_CONV: return conv_exact(e, op) && build_conv(e, s);
    case AIM_PROG_MAXPOOL:
    case AIM_PROG_AVGPOOL: return build_pool(e, s);
    case AIM_PROG_ADD:
    case AIM_PROG_MUL:
    case AIM_PROG_ACTIVATION: return build_binary(e, s);
    case AIM_PROG_CONCAT: return build_concat(e, s);
    case AIM_PROG_RESIZE: return build_resize(e, s);
    case AIM_PROG_SLICE: return build_slice(e, s);
    default: return false;
    }
}

/* ---- Creation ------------------------------------------------------------------------------ */

static void free_calls(step *s) {
    for (int i = 0; i < s->n_calls; i++) {
        prim_call *c = &s->calls[i];
        if (c->prim) dnnl_primitive_destroy(c->prim);
        for (int k = 0; k < c->n_args; k++)
            free(c->cdata[k]);
    }
    free(s->calls);
    s->calls = NULL;
    s->n_calls = 0;
}

void aim_program_exec_free(aim_program_exec *e) {
    if (!e) return;
    for (size_t i = 0; e->steps && i < e->p->n_ops; i++)
        free_calls(&e->steps[i]);
    free(e->steps);
    free(e->md);
    free(e->offset);
    if (e->engine) dnnl_engine_destroy(e->engine);
    free(e);
}

static aim_status plan_tensors(aim_program_exec *e) {
    const aim_program *p = e->p;
    e->md = calloc(p->n_tensors, sizeof *e->md);
    e->offset = calloc(p->n_tensors, sizeof *e->offset);
    if (!e->md || !e->offset) return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < p->n_tensors; i++) {
        if (tensor_md(&p->tensors[i], &e->md[i]) != dnnl_success)
            return aim_error(AIM_ERR_INTERNAL, "program tensor %zu: no oneDNN layout", i);
        e->offset[i] = e->arena_bytes;
        e->arena_bytes += (dnnl_memory_desc_get_size(&e->md[i]) + 63) / 64 * 64;
    }
    return AIM_OK;
}

/* Work of op: 2 * multiply-adds for a conv, else the bytes it writes. */
static void op_work(const aim_program *p, const aim_prog_op *op, double *flops, double *bytes) {
    const aim_prog_tensor *y = &p->tensors[op->out];
    double n = (double)aim_program_tensor_count(y);
    *bytes = n * (y->dtype == AIM_DTYPE_FLOAT ? 4 : 1);
    *flops = 0;
    if (op->kind == AIM_PROG_CONV)
        *flops = 2 * n * (double)(p->tensors[op->in[0]].dims[1] / op->group) *
                 (double)(op->kernel[0] * op->kernel[1]);
}

/* Builds step s for `threads` OpenMP threads, or for one when its work is small (cpu.h:
 * aim_cpu_threads_for), which it then also runs on. */
static bool build_for(aim_program_exec *e, step *s, int threads) {
    double flops, bytes;
    op_work(e->p, s->op, &flops, &bytes);
    s->one_thread = aim_cpu_threads_for(flops, bytes, threads) == 1;
    omp_set_num_threads(s->one_thread ? 1 : threads);
    bool ok = build_step(e, s);
    omp_set_num_threads(threads);
    return ok;
}

static aim_status exec_build(const aim_program *p, int threads, aim_program_exec **out) {
    *out = NULL;
    aim_status st = aim_program_validate(p);
    if (st != AIM_OK) return st;
    aim_program_exec *e = calloc(1, sizeof *e);
    if (!e) return aim_error(AIM_ERR_NOMEM, "out of memory");
    e->p = p;
    if (dnnl_engine_create(&e->engine, dnnl_cpu, 0) != dnnl_success) {
        aim_program_exec_free(e);
        return aim_error(AIM_ERR_INTERNAL, "cannot create the oneDNN CPU engine");
    }
    st = plan_tensors(e);
    if (st == AIM_OK && !(e->steps = calloc(p->n_ops ? p->n_ops : 1, sizeof *e->steps)))
        st = aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == AIM_OK && i < p->n_ops; i++) {
        step *s = &e->steps[i];
        s->op = &p->ops[i];
        s->residual = -1;
        /* concat: a reorder per input; conv: itself, and a reorder for a float32 output */
        s->calls =
            calloc(s->op->kind == AIM_PROG_CONCAT ? (size_t)s->op->n_in : 2, sizeof *s->calls);
        if (!s->calls) {
            st = aim_error(AIM_ERR_NOMEM, "out of memory");
            break;
        }
        if (!build_for(e, s, threads)) { /* what oneDNN refused: this op runs the reference */
            free_calls(s);
            s->ref = true;
            s->residual = -1;
            e->n_fallbacks++;
        }
    }
    if (st != AIM_OK) {
        aim_program_exec_free(e);
        return st;
    }
    *out = e;
    return AIM_OK;
}

aim_status aim_program_exec_create(const aim_program *p, int threads, aim_program_exec **out) {
    int old_threads = omp_get_max_threads(); /* per calling thread in libgomp */
    aim_status st = exec_build(p, threads > 0 ? threads : 1, out);
    omp_set_num_threads(old_threads);
    return st;
}

size_t aim_program_exec_fallbacks(const aim_program_exec *e) {
    return e->n_fallbacks;
}

/* ---- Running ------------------------------------------------------------------------------- */

typedef struct {
    const aim_program_exec *e;
    dnnl_stream_t stream;
    void **bufs;   /* per tensor */
    void *scratch; /* oneDNN scratchpad, scratch_bytes */
    uint8_t *arena;
} run_ctx;

/* NHWC <-> NCHW for one-byte elements (reference fallback on 4-D quantized tensors). */
static void relayout(const aim_prog_tensor *t, const uint8_t *from, uint8_t *to, bool to_plain) {
    int64_t N = t->dims[0], C = t->dims[1], HW = t->dims[2] * t->dims[3];
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < HW; i++) {
                size_t nchw = (size_t)((n * C + c) * HW + i), nhwc = (size_t)((n * HW + i) * C + c);
                if (to_plain)
                    to[nchw] = from[nhwc];
                else
                    to[nhwc] = from[nchw];
            }
}

static bool is_nhwc(const aim_prog_tensor *t) {
    return is_quant(t->dtype) && t->rank == 4;
}

/* Gives tensor t a plain buffer in pb (a copy when its run layout is NHWC). */
static bool plain_view(const run_ctx *r, int t, void **pb, bool fill) {
    const aim_prog_tensor *x = T(r->e, t);
    if (pb[t] || !is_nhwc(x)) {
        pb[t] = pb[t] ? pb[t] : r->bufs[t];
        return true;
    }
    if (!(pb[t] = malloc(aim_program_tensor_count(x)))) return false;
    if (fill) relayout(x, r->bufs[t], pb[t], true);
    return true;
}

static aim_status run_ref_step(const run_ctx *r, const aim_prog_op *op) {
    const aim_program *p = r->e->p;
    void **pb = calloc(p->n_tensors, sizeof *pb);
    bool ok = pb != NULL;
    for (int i = 0; ok && i < op->n_in; i++)
        ok = plain_view(r, op->in[i], pb, true);
    if (ok && op->kind == AIM_PROG_CONV && op->residual >= 0)
        ok = plain_view(r, op->residual, pb, true);
    ok = ok && plain_view(r, op->out, pb, false);
    aim_status st = ok ? aim_program_ref_op(p, op, pb) : aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st == AIM_OK && is_nhwc(T(r->e, op->out)))
        relayout(T(r->e, op->out), pb[op->out], r->bufs[op->out], false);
    for (size_t t = 0; pb && t < p->n_tensors; t++)
        if (pb[t] && pb[t] != r->bufs[t]) free(pb[t]);
    free(pb);
    return st;
}

static aim_status run_call(const run_ctx *r, const step *s, const prim_call *c) {
    void *data[MAX_ARGS + 1];
    int arg[MAX_ARGS + 1];
    dnnl_memory_desc_t md[MAX_ARGS + 1];
    int n = c->n_args;
    for (int i = 0; i < n; i++) {
        arg[i] = c->arg[i];
        md[i] = c->md[i];
        data[i] = c->tensor[i] >= 0             ? r->bufs[c->tensor[i]]
                  : c->tensor[i] == PRE_BUFFER  ? r->arena + s->pre_offset
                  : c->tensor[i] == POST_BUFFER ? r->arena + s->post_offset
                                                : c->cdata[i];
    }
    if (r->e->scratch_bytes) {
        dnnl_dims_t d = {(dnnl_dim_t)r->e->scratch_bytes};
        dnnl_memory_desc_init_by_tag(&md[n], 1, d, dnnl_u8, dnnl_a);
        arg[n] = DNNL_ARG_SCRATCHPAD;
        data[n++] = r->scratch;
    }
    dnnl_status_t st = execute(r->e->engine, r->stream, c->prim, n, arg, md, data);
    if (st != dnnl_success)
        return aim_error(AIM_ERR_INTERNAL, "oneDNN primitive failed (status %d)", (int)st);
    return AIM_OK;
}

/* n bytes from `in` to `out`, each XORed with `flip` (0 or 0x80), eight at a time. */
static void copy_flipped(uint8_t *out, const uint8_t *in, size_t n, uint8_t flip) {
    if (!flip) {
        memcpy(out, in, n);
        return;
    }
    const uint64_t mask = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, in + i, 8);
        v ^= mask;
        memcpy(out + i, &v, 8);
    }
    for (; i < n; i++)
        out[i] = in[i] ^ flip;
}

/* The conv source as conv_plan arranged it: each group's channels `pre_dup` times, s8 flipped
 * to u8 when `pre_flip`. */
static void pre_copy(const run_ctx *r, const step *s) {
    const aim_prog_tensor *x = T(r->e, s->op->in[0]);
    int64_t C = x->dims[1], cg = C / s->op->group, pixels = x->dims[0] * x->dims[2] * x->dims[3];
    const uint8_t *in = r->bufs[s->op->in[0]];
    uint8_t *out = r->arena + s->pre_offset, flip = s->pre_flip ? 0x80 : 0;
    if (s->pre_dup == 1) { /* the same order: one pass */
        copy_flipped(out, in, (size_t)(pixels * C), flip);
        return;
    }
    for (int64_t p = 0; p < pixels; p++)
        for (int64_t g = 0; g < s->op->group; g++)
            for (int rep = 0; rep < s->pre_dup; rep++, out += cg)
                copy_flipped(out, in + p * C + g * cg, (size_t)cg, flip);
}

static aim_status run_step(const run_ctx *r, const step *s) {
    if (s->ref) return run_ref_step(r, s->op);
    if (s->pre_dup) pre_copy(r, s);
    if (s->residual >= 0) /* the sum post-op accumulates onto what the destination holds */
        memcpy(r->bufs[s->op->out], r->bufs[s->residual],
               dnnl_memory_desc_get_size(&r->e->md[s->residual]));
    aim_status st = AIM_OK;
    for (int i = 0; i < s->n_calls && st == AIM_OK; i++)
        st = run_call(r, s, &s->calls[i]);
    return st;
}

/* Arena places, then the caller's inputs and outputs (an output that is an input: a copy). */
static void bind(const aim_program_exec *e, uint8_t *arena, const float *const *inputs,
                 float *const *outputs, void **bufs) {
    const aim_program *p = e->p;
    for (size_t i = 0; i < p->n_tensors; i++)
        bufs[i] = arena + e->offset[i];
    for (size_t i = 0; i < p->n_inputs; i++)
        bufs[p->inputs[i]] = (void *)inputs[i];
    for (size_t i = 0; i < p->n_outputs; i++) {
        for (size_t k = 0; k < p->n_inputs; k++)
            if (p->inputs[k] == p->outputs[i] && inputs[k] != outputs[i])
                memcpy(outputs[i], inputs[k], dnnl_memory_desc_get_size(&e->md[p->outputs[i]]));
        bufs[p->outputs[i]] = outputs[i];
    }
}

aim_status aim_program_exec_run(const aim_program_exec *e, const float *const *inputs,
                                float *const *outputs, int threads) {
    run_ctx r = {e, NULL, calloc(e->p->n_tensors ? e->p->n_tensors : 1, sizeof(void *)), NULL,
                 NULL};
    size_t scratch_at = e->arena_bytes, total = scratch_at + (e->scratch_bytes + 63) / 64 * 64;
    uint8_t *arena = aligned_alloc(64, total ? total : 64);
    if (!r.bufs || !arena ||
        dnnl_stream_create(&r.stream, e->engine, dnnl_stream_default_flags) != dnnl_success) {
        free(r.bufs);
        free(arena);
        return aim_error(AIM_ERR_NOMEM, "out of memory running a program");
    }
    r.scratch = arena + scratch_at;
    r.arena = arena;
    bind(e, arena, inputs, outputs, r.bufs);
    /* libgomp keeps the count per calling thread: concurrent runs do not disturb each other. */
    int old_threads = omp_get_max_threads(), current = -1;
    threads = threads > 0 ? threads : 1;
    aim_status st = AIM_OK;
    for (size_t i = 0; i < e->p->n_ops && st == AIM_OK; i++) {
        int want = e->steps[i].one_thread ? 1 : threads;
        if (want != current) omp_set_num_threads(current = want);
        st = run_step(&r, &e->steps[i]);
    }
    omp_set_num_threads(old_threads);
    dnnl_stream_destroy(r.stream);
    free(arena);
    free(r.bufs);
    return st;
}
