/*
 * norm.c: BatchNormalization that no convolution absorbs (after a Concat, an Add, the graph
 * input), in inference form: with the stored mean and variance it is one multiply-add per
 * element, y = x * a[c] + b[c] with a = scale / sqrt(var + eps) and b = B - mean * a, computed
 * once at load. aim's own loop over the source's layout (plain of rank 2..6, or nChw8c/nChw16c),
 * written for the vectoriser and split over threads by rows; padded channels of a blocked
 * layout get a = b = 0 and stay 0. NULL (the reference kernel) for training mode, non-constant
 * parameters and other layouts.
 */
#include "cpu/internal.h"

#include <math.h>
#include <stdlib.h>

/* The tensor seen as [rows][inner][block]: row r holds channels (r % blocks) * block .. + block
 * of image r / blocks, its `inner` positions `block` floats apart, contiguous. */
typedef struct {
    int64_t blocks, block, inner;
    int64_t rows;
    int64_t row_stride; /* floats from one row to the next (same in source and destination) */
    float *a, *b;       /* [blocks * block] */
} affine;

typedef struct {
    const affine *p;
    const float *x;
    float *y;
} affine_job;

/* One row; `block` is a constant at each call (1, 8 or 16), so the inner loop vectorises. */
static inline void affine_row(const affine *p, const float *restrict x, float *restrict y,
                              const float *a, const float *b, int64_t block) {
    for (int64_t i = 0; i < p->inner; i++)
        for (int64_t j = 0; j < block; j++)
            y[i * block + j] = x[i * block + j] * a[j] + b[j];
}

CPU_CLONES static void affine_rows(void *ctx, size_t begin, size_t end) {
    const affine_job *j = ctx;
    const affine *p = j->p;
    for (size_t r = begin; r < end; r++) {
        int64_t c = (int64_t)r % p->blocks * p->block, at = (int64_t)r * p->row_stride;
        const float *a = p->a + c, *b = p->b + c;
        if (p->block == 8)
            affine_row(p, j->x + at, j->y + at, a, b, 8);
        else if (p->block == 16)
            affine_row(p, j->x + at, j->y + at, a, b, 16);
        else
            affine_row(p, j->x + at, j->y + at, a, b, 1);
    }
}

static void run_affine(const aim_cpu_kernel *k, void *const *src, void *dst, void *scratch,
                       int threads) {
    (void)scratch;
    affine_job j = {k->state, src[0], dst};
    aim_cpu_parallel_for(threads, (size_t)j.p->rows, affine_rows, &j);
}

/* The rows of md: plain (any rank >= 2) or blocked by channels only with dense rows (4-D). */
static bool affine_shape(const dnnl_memory_desc_t *md, affine *p) {
    if (md->format_kind != dnnl_blocked || md->offset0 != 0 || md->ndims < 2) return false;
    dnnl_memory_desc_t plain;
    if (aim_cpu_plain_md(&plain, md->ndims, md->dims) == dnnl_success &&
        dnnl_memory_desc_equal(&plain, md)) {
        p->block = 1;
        p->blocks = md->dims[1];
        p->inner = 1;
        for (int d = 2; d < md->ndims; d++)
            p->inner *= md->dims[d];
        p->rows = md->dims[0] * p->blocks;
        p->row_stride = p->inner;
        return true;
    }
    aim_cpu_chan_layout l;
    if (!aim_cpu_chan_layout_of(md, &l) || (l.block != 8 && l.block != 16)) return false;
    if (l.s[3] != l.block || l.s[2] != l.w * l.block || l.s[1] != l.h * l.s[2] ||
        l.s[0] != l.blocks * l.s[1])
        return false;
    p->block = l.block;
    p->blocks = l.blocks;
    p->inner = l.h * l.w;
    p->rows = l.n * l.blocks;
    p->row_stride = l.s[1];
    return true;
}

/* a and b from the node's constant scale, B, mean and variance; false when they are not. */
static bool affine_params(const aim_cpu_build *b, int64_t c, float *a, float *sh) {
    const aim_cpu_node *n = b->node;
    const float *v[4];
    for (int i = 1; i <= 4; i++) {
        const aim_tensor *t = aim_cpu_in(b, n, i);
        if (!aim_cpu_is_const(b->g, n, i) || t->dtype != AIM_DTYPE_FLOAT ||
            aim_tensor_count(t) != (size_t)c)
            return false;
        v[i - 1] = t->data;
    }
    float eps = aim_cpu_attr_float(n, "epsilon", 1e-5f);
    for (int64_t i = 0; i < c; i++) {
        a[i] = v[0][i] / sqrtf(v[3][i] + eps);
        sh[i] = v[1][i] - v[2][i] * a[i];
    }
    return true;
}

aim_cpu_kernel *aim_cpu_batchnorm_create(const aim_cpu_build *b) {
    const aim_cpu_node *n = b->node;
    const aim_tensor *x = aim_cpu_in(b, n, 0), *y = aim_cpu_out(b);
    if (!aim_cpu_float_in(b, 0) || x->rank < 2 || n->n_out != 1 || n->n_in != 5 ||
        aim_cpu_attr_int(n, "training_mode", 0) != 0 || aim_cpu_attr_int(n, "spatial", 1) != 1)
        return NULL;
    affine geo;
    dnnl_memory_desc_t dst;
    dnnl_dims_t d;
    for (int i = 0; i < y->rank; i++)
        d[i] = y->dims[i];
    aim_cpu_like(b->src_md[0], y->rank, d, &dst); /* a graph output gets a reorder to plain */
    if (!affine_shape(b->src_md[0], &geo) || !dnnl_memory_desc_equal(&dst, b->src_md[0]))
        return NULL;
    size_t channels = (size_t)(geo.blocks * geo.block);
    aim_cpu_kernel *k = aim_cpu_kernel_new("batchnorm");
    affine *p = malloc(sizeof *p + 2 * channels * sizeof(float));
    if (!k || !p) {
        free(p);
        aim_cpu_kernel_free(k);
        return NULL;
    }
    *p = geo;
    p->a = (float *)(p + 1);
    p->b = p->a + channels;
    for (size_t i = 0; i < 2 * channels; i++)
        p->a[i] = 0; /* padded channels */
    k->state = p;
    if (!affine_params(b, x->dims[1], p->a, p->b)) {
        aim_cpu_kernel_free(k);
        return NULL;
    }
    k->n_src = 1;
    k->src_md[0] = *b->src_md[0];
    k->dst_md = dst;
    k->custom = run_affine;
    return k;
}
