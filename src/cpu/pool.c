/*
 * pool.c: MaxPool, AveragePool and their global forms. 2-D max pooling over plain or
 * channel-blocked layouts (nChw8c, nChw16c) is aim's own loop over one channel block at a time
 * (vector code): YOLOv4-tiny's three 2x2 MaxPools took 3.7 ms per run on oneDNN 2.6's AVX2
 * pooling and take 2.0 ms here (one thread, `aim bench --profile`); oneDNN has no kernel at all
 * for plain layouts (16 ms on its reference code for [1,128,104,104], 4.5 ms here) nor for a
 * last window that ends before the input does. Everything else is a oneDNN primitive.
 * Only parameters whose meaning matches ONNX exactly are accepted; NULL keeps the reference.
 */
#include "cpu/internal.h"

#include <float.h>
#include <stdlib.h>

/* ---- Pooling ------------------------------------------------------------------------------- */

typedef struct {
    dnnl_dims_t strides, kernel, dilation, pad_l, pad_r;
    bool extra_pad; /* ceil_mode padded beyond the attribute's pads */
    bool trimmed;   /* the last window ends before the input does (pad_r < 0): not oneDNN's */
} pool_geom;

static bool pool_geometry(const aim_cpu_build *b, bool global, pool_geom *g) {
    const aim_cpu_node *n = b->node;
    const aim_tensor *x = aim_cpu_in(b, n, 0), *y = aim_cpu_out(b);
    int sp = x->rank - 2;
    int64_t k[3], s[3], d[3], pads[6];
    if (sp < 1 || sp > 3 || y->rank != x->rank) return false;
    if (global) {
        for (int i = 0; i < sp; i++)
            k[i] = x->dims[2 + i], s[i] = 1, d[i] = 1, pads[i] = pads[sp + i] = 0;
    } else if (!aim_cpu_attr_ints(n, "kernel_shape", sp, 0, k) ||
               !aim_cpu_attr_ints(n, "strides", sp, 1, s) ||
               !aim_cpu_attr_ints(n, "dilations", sp, 1, d) ||
               !aim_cpu_attr_ints(n, "pads", 2 * sp, 0, pads) ||
               !aim_cpu_attr_is(n, "auto_pad", "NOTSET", "NOTSET")) {
        return false;
    }
    g->extra_pad = g->trimmed = false;
    for (int i = 0; i < sp; i++) {
        int64_t ext = (k[i] - 1) * d[i] + 1;
        int64_t pr = (y->dims[2 + i] - 1) * s[i] + ext - x->dims[2 + i] - pads[i];
        if (k[i] < 1 || s[i] < 1 || d[i] < 1 || pads[i] < 0 || pr <= -s[i]) return false;
        if (pr < 0) g->trimmed = true;
        if (pr > pads[sp + i]) g->extra_pad = true;
        /* oneDNN wants every window to touch the input; ONNX drops such windows anyway. */
        if (pads[i] >= ext || pr >= ext) return false;
        g->kernel[i] = k[i], g->strides[i] = s[i], g->dilation[i] = d[i] - 1;
        g->pad_l[i] = pads[i], g->pad_r[i] = pr;
    }
    return true;
}

/* ---- aim's max pooling --------------------------------------------------------------------- */

typedef struct {
    aim_cpu_chan_layout in, out;                   /* the same block size */
    int64_t kernel[2], stride[2], step[2], pad[2]; /* step: dilation, in elements */
} max_pool;

/* The window taps k in [0, kernel) whose position base + k * step lies in [0, n): [*lo, *hi). */
static inline void taps_inside(int64_t base, int64_t step, int64_t kernel, int64_t n, int64_t *lo,
                               int64_t *hi) {
    *lo = base >= 0 ? 0 : (-base + step - 1) / step;
    *hi = base >= n ? 0 : (n - base + step - 1) / step;
    if (*hi > kernel) *hi = kernel;
    if (*lo > *hi) *lo = *hi;
}

/* One output row (n, channel block, oh): the maximum over each window, one channel block at a
 * time; `block` is a constant (8, 16 or 1) at each call, so the innermost loops become vector
 * code, and the taps inside the input are found once per row and column, not tested per tap. */
static inline void max_row(const max_pool *p, const float *in, float *out, int64_t oh,
                           int64_t block) {
    int64_t kh0, kh1, ih0 = oh * p->stride[0] - p->pad[0];
    taps_inside(ih0, p->step[0], p->kernel[0], p->in.h, &kh0, &kh1);
    float acc[16];
    for (int64_t ow = 0; ow < p->out.w; ow++) {
        int64_t kw0, kw1, iw0 = ow * p->stride[1] - p->pad[1];
        taps_inside(iw0, p->step[1], p->kernel[1], p->in.w, &kw0, &kw1);
        for (int64_t b = 0; b < block; b++)
            acc[b] = -FLT_MAX;
        for (int64_t kh = kh0; kh < kh1; kh++) {
            const float *row = in + (ih0 + kh * p->step[0]) * p->in.s[2];
            for (int64_t kw = kw0; kw < kw1; kw++) {
                const float *x = row + (iw0 + kw * p->step[1]) * p->in.s[3];
                for (int64_t b = 0; b < block; b++)
                    acc[b] = x[b] > acc[b] ? x[b] : acc[b];
            }
        }
        float *y = out + ow * p->out.s[3];
        for (int64_t b = 0; b < block; b++)
            y[b] = acc[b];
    }
}

typedef struct {
    const max_pool *p;
    const float *x;
    float *y;
} max_job;

/* Rows [begin, end) of n * blocks * out.h. Compiled twice, for AVX2 and for the baseline
 * x86-64 (SSE2), the one to run picked when the program loads (CPU_CLONES, internal.h). */
CPU_CLONES static void max_rows(void *ctx, size_t begin, size_t end) {
    const max_job *j = ctx;
    const max_pool *p = j->p;
    for (size_t r = begin; r < end; r++) {
        int64_t oh = (int64_t)r % p->out.h, nb = (int64_t)r / p->out.h;
        int64_t n = nb / p->in.blocks, cb = nb % p->in.blocks;
        const float *in = j->x + n * p->in.s[0] + cb * p->in.s[1];
        float *out = j->y + n * p->out.s[0] + cb * p->out.s[1] + oh * p->out.s[2];
        if (p->in.block == 8)
            max_row(p, in, out, oh, 8);
        else if (p->in.block == 16)
            max_row(p, in, out, oh, 16);
        else
            max_row(p, in, out, oh, 1);
    }
}

static void run_max_pool(const aim_cpu_kernel *k, void *const *src, void *dst, void *scratch,
                         int threads) {
    (void)scratch;
    const max_pool *p = k->state;
    max_job j = {p, src[0], dst};
    aim_cpu_parallel_for(threads, (size_t)(p->out.n * p->out.blocks * p->out.h), max_rows, &j);
}

/* 2-D MaxPool in the source's own layout (plain, or channel blocks of 8 or 16); NULL for other
 * layouts. */
static aim_cpu_kernel *max_pool_create(const aim_cpu_build *b, const pool_geom *g) {
    const aim_tensor *y = aim_cpu_out(b);
    max_pool p;
    dnnl_memory_desc_t dst;
    if (y->rank != 4 || !aim_cpu_chan_layout_of(b->src_md[0], &p.in)) return NULL;
    if (p.in.block != 1 && p.in.block != 8 && p.in.block != 16) return NULL;
    dnnl_dims_t d = {y->dims[0], y->dims[1], y->dims[2], y->dims[3]};
    aim_cpu_like(b->src_md[0], 4, d, &dst); /* a graph output gets a reorder to plain after */
    if (!aim_cpu_chan_layout_of(&dst, &p.out) || p.out.block != p.in.block) return NULL;
    for (int i = 0; i < 2; i++) {
        p.kernel[i] = g->kernel[i], p.stride[i] = g->strides[i];
        p.step[i] = g->dilation[i] + 1, p.pad[i] = g->pad_l[i];
    }
    aim_cpu_kernel *k = aim_cpu_kernel_new("maxpool");
    max_pool *state = malloc(sizeof *state);
    if (!k || !state) {
        free(state);
        aim_cpu_kernel_free(k);
        return NULL;
    }
    *state = p;
    k->state = state;
    k->n_src = 1;
    k->src_md[0] = *b->src_md[0];
    k->dst_md = dst;
    k->custom = run_max_pool;
    return k;
}

/* ---- The kernel ---------------------------------------------------------------------------- */

aim_cpu_kernel *aim_cpu_pool_create(const aim_cpu_build *b) {
    const aim_cpu_node *n = b->node;
    bool max = aim_cpu_op_is(n, "MaxPool") || aim_cpu_op_is(n, "GlobalMaxPool");
    bool global = aim_cpu_op_is(n, "GlobalMaxPool") || aim_cpu_op_is(n, "GlobalAveragePool");
    if (!aim_cpu_float_in(b, 0) || (n->n_out > 1 && n->out[1] >= 0)) return NULL;
    if (aim_cpu_attr_int(n, "storage_order", 0) != 0) return NULL;
    pool_geom g;
    if (!pool_geometry(b, global, &g)) return NULL;
    aim_cpu_kernel *own = max && !global ? max_pool_create(b, &g) : NULL;
    if (own || g.trimmed) return own;
    bool include = aim_cpu_attr_int(n, "count_include_pad", 0) != 0;
    /* ONNX divides ceil_mode's extra windows by their in-bounds-or-pads size, not the kernel. */
    if (!max && include && g.extra_pad) return NULL;
    dnnl_alg_kind_t alg = max       ? dnnl_pooling_max
                          : include ? dnnl_pooling_avg_include_padding
                                    : dnnl_pooling_avg_exclude_padding;
    dnnl_memory_desc_t dst;
    aim_cpu_out_md(b, &dst);
    dnnl_pooling_v2_desc_t desc;
    if (dnnl_pooling_v2_forward_desc_init(&desc, dnnl_forward_inference, alg, b->src_md[0], &dst,
                                          g.strides, g.kernel, g.dilation, g.pad_l,
                                          g.pad_r) != dnnl_success)
        return NULL;
    int arg = DNNL_ARG_SRC;
    return aim_cpu_make_kernel(b, "pool", &desc, 1, &arg, false);
}
