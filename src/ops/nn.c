/*
 * nn.c: reference kernels of the nn family (see families.h): Conv, ConvTranspose, the pools,
 * Gemm, MatMul and the normalisations. Portable C: the correctness oracle every faster kernel is
 * compared with, yet fast enough to run vision models (Conv and MatMul go through one blocked
 * GEMM; convolutions use im2col tiles bounded in size, depthwise ones a direct loop).
 *
 * Floating-point kernels compute in float32: float16 and float64 tensors are converted to a
 * float32 scratch copy on the way in and back on the way out.
 */
#include "core/parallel.h"
#include "core/util.h"
#include "ops/families.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SPATIAL (AIM_MAX_RANK - 2)
/* Window attributes (kernel, stride, dilation, pads) and spatial sizes are bounded so that every
 * geometry computation stays far from int64 overflow. */
#define MAX_WINDOW_VALUE ((int64_t)1 << 30)
#define MAX_SPATIAL_SIZE ((int64_t)1 << 31)
/* im2col/col2im tiles are cut to stay under this many floats (8 MiB). */
#define SCRATCH_FLOATS ((int64_t)1 << 21)

static int64_t min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b) {
    return a > b ? a : b;
}

static int64_t product(const int64_t *dims, int n) {
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        p *= dims[i];
    return p;
}

/* ---- float32 views of tensors -------------------------------------------------------------- */

static aim_status check_float(const aim_op_ctx *c, const aim_tensor *t, const char *what) {
    if (!aim_dtype_is_float(t->dtype))
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "%s has type %s (float32/16/64 expected)", what,
                           aim_dtype_name(t->dtype));
    return AIM_OK;
}

static aim_status check_known(const aim_op_ctx *c, const aim_tensor *t, const char *what) {
    if (t->rank < 0) return aim_op_fail(c, AIM_ERR_PARSE, "%s has an unknown shape", what);
    return AIM_OK;
}

/* An input read as float32: the tensor's own data, or a converted copy (owned). */
typedef struct {
    const float *p;
    float *owned;
} fin;

static aim_status fin_load(const aim_op_ctx *c, const aim_tensor *t, fin *v) {
    v->owned = NULL;
    v->p = t->data;
    if (t->dtype == AIM_DTYPE_FLOAT) return AIM_OK;
    size_t n = aim_tensor_count(t);
    v->owned = malloc((n ? n : 1) * sizeof *v->owned);
    if (!v->owned) return aim_op_fail(c, AIM_ERR_NOMEM, "cannot allocate %zu floats", n);
    if (t->dtype == AIM_DTYPE_FLOAT16) {
        const uint16_t *h = t->data;
        for (size_t i = 0; i < n; i++)
            v->owned[i] = aim_half_to_float(h[i]);
    } else {
        for (size_t i = 0; i < n; i++)
            v->owned[i] = (float)aim_tensor_get_f64(t, i);
    }
    v->p = v->owned;
    return AIM_OK;
}

static void fin_free(fin *v) {
    free(v->owned);
    v->owned = NULL;
}

/* An output written as float32: the tensor's own data, or scratch converted by fout_commit. */
typedef struct {
    float *p;
    aim_tensor *t;
} fout;

static aim_status fout_begin(const aim_op_ctx *c, aim_tensor *t, fout *v) {
    v->t = t;
    v->p = t->data;
    if (t->dtype == AIM_DTYPE_FLOAT) return AIM_OK;
    size_t n = aim_tensor_count(t);
    v->p = malloc((n ? n : 1) * sizeof *v->p);
    if (!v->p) return aim_op_fail(c, AIM_ERR_NOMEM, "cannot allocate %zu floats", n);
    return AIM_OK;
}

/* Converts the scratch into the output (when commit) and frees it. */
static void fout_end(fout *v, bool commit) {
    if (!v->t || v->t->dtype == AIM_DTYPE_FLOAT) return;
    size_t n = commit ? aim_tensor_count(v->t) : 0;
    if (v->t->dtype == AIM_DTYPE_FLOAT16) {
        uint16_t *h = v->t->data;
        for (size_t i = 0; i < n; i++)
            h[i] = aim_float_to_half(v->p[i]);
    } else {
        for (size_t i = 0; i < n; i++)
            aim_tensor_set_f64(v->t, i, v->p[i]);
    }
    free(v->p);
    v->p = NULL;
}

/* ---- GEMM ---------------------------------------------------------------------------------- */

/* Strided view of a matrix: element (r, k) at p[r * rs + k * cs]. */
typedef struct {
    const float *p;
    int64_t rs, cs;
} matrix;

/* c0..c3[j] += a0..a3 * b[j]: four output rows share each load of b. */
static void axpy4(int64_t n, const float *restrict b, float a0, float a1, float a2, float a3,
                  float *restrict c0, float *restrict c1, float *restrict c2, float *restrict c3) {
    for (int64_t j = 0; j < n; j++) {
        float bj = b[j];
        c0[j] += a0 * bj;
        c1[j] += a1 * bj;
        c2[j] += a2 * bj;
        c3[j] += a3 * bj;
    }
}

static void axpy1(int64_t n, const float *restrict b, float a, float *restrict c) {
    for (int64_t j = 0; j < n; j++)
        c[j] += a * b[j];
}

/* C += alpha * A * B for B with contiguous rows: blocked so a tile of B stays in cache while
 * every row of A sweeps it. */
static void gemm_rows(int64_t m, int64_t n, int64_t k, float alpha, matrix a, const float *b,
                      int64_t ldb, float *c, int64_t ldc) {
    enum { NB = 512, KB = 128 };
    for (int64_t j0 = 0; j0 < n; j0 += NB) {
        int64_t nb = min64(NB, n - j0);
        for (int64_t k0 = 0; k0 < k; k0 += KB) {
            int64_t kend = min64(k, k0 + KB);
            int64_t i = 0;
            for (; i + 4 <= m; i += 4) {
                float *c0 = c + i * ldc + j0;
                const float *a0 = a.p + i * a.rs;
                for (int64_t q = k0; q < kend; q++)
                    axpy4(nb, b + q * ldb + j0, alpha * a0[q * a.cs], alpha * a0[a.rs + q * a.cs],
                          alpha * a0[2 * a.rs + q * a.cs], alpha * a0[3 * a.rs + q * a.cs], c0,
                          c0 + ldc, c0 + 2 * ldc, c0 + 3 * ldc);
            }
            for (; i < m; i++)
                for (int64_t q = k0; q < kend; q++)
                    axpy1(nb, b + q * ldb + j0, alpha * a.p[i * a.rs + q * a.cs], c + i * ldc + j0);
        }
    }
}

/* Dot product with four partial sums (the compiler may not reorder float additions itself). */
static float dot(int64_t n, const float *restrict x, const float *restrict y) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i] * y[i];
        s1 += x[i + 1] * y[i + 1];
        s2 += x[i + 2] * y[i + 2];
        s3 += x[i + 3] * y[i + 3];
    }
    for (; i < n; i++)
        s0 += x[i] * y[i];
    return (s0 + s1) + (s2 + s3);
}

/* C[m,n] (row-major, leading dimension ldc) += alpha * A[m,k] * B[k,n], split between threads.
 * Each output element is computed by exactly one thread with the same summation order as a
 * single-threaded run, so results are bit-identical for any thread count. */
typedef struct {
    int64_t m, n, k;
    float alpha;
    matrix a, b; /* b.cs == 1 (contiguous rows) or b.rs == 1 && a.cs == 1 (B transposed) */
    float *c;
    int64_t ldc;
    bool by_rows; /* split over blocks of 4 rows of C, else over columns */
} gemm_task;

/* Below this many multiply-adds a GEMM runs on the calling thread only. */
#define PARALLEL_MIN_WORK ((int64_t)1 << 18)

/* Threads worth using for `work` elementary operations: 1 for small jobs. */
static int threads_for(int threads, double work) {
    return work < (double)PARALLEL_MIN_WORK ? 1 : threads;
}

static void gemm_block(const gemm_task *t, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    matrix a = {t->a.p + i0 * t->a.rs, t->a.rs, t->a.cs};
    float *c = t->c + i0 * t->ldc + j0;
    if (t->b.cs == 1) {
        gemm_rows(i1 - i0, j1 - j0, t->k, t->alpha, a, t->b.p + j0, t->b.rs, c, t->ldc);
        return;
    }
    for (int64_t i = 0; i < i1 - i0; i++)
        for (int64_t j = 0; j < j1 - j0; j++)
            c[i * t->ldc + j] += t->alpha * dot(t->k, a.p + i * a.rs, t->b.p + (j0 + j) * t->b.cs);
}

static void gemm_chunk(void *ctx, size_t begin, size_t end) {
    const gemm_task *t = ctx;
    if (t->by_rows)
        gemm_block(t, (int64_t)begin * 4, min64(t->m, (int64_t)end * 4), 0, t->n);
    else
        gemm_block(t, 0, t->m, (int64_t)begin, (int64_t)end);
}

/* Runs the task on up to `threads` threads: over row blocks when there are enough of them. */
static void gemm_parallel(gemm_task *t, int threads) {
    int64_t row_blocks = (t->m + 3) / 4;
    threads = threads_for(threads, (double)t->m * (double)t->n * (double)t->k);
    if (threads <= 1) {
        gemm_block(t, 0, t->m, 0, t->n);
        return;
    }
    t->by_rows = row_blocks >= threads;
    aim_parallel_for(threads, (size_t)(t->by_rows ? row_blocks : t->n), gemm_chunk, t);
}

static aim_status gemm(const aim_op_ctx *c, int64_t m, int64_t n, int64_t k, float alpha, matrix a,
                       matrix b, float *out, int64_t ldc) {
    if (m <= 0 || n <= 0 || k <= 0) return AIM_OK;
    gemm_task t = {m, n, k, alpha, a, b, out, ldc, true};
    if (b.cs == 1 || (b.rs == 1 && a.cs == 1)) {
        gemm_parallel(&t, c->threads);
        return AIM_OK;
    }
    /* Anything else: repack B with contiguous rows (as large as B itself). */
    size_t bytes;
    if (!aim_mul_size((size_t)k * (size_t)n, sizeof(float), &bytes))
        return aim_op_fail(c, AIM_ERR_LIMIT, "matrix too large");
    float *packed = malloc(bytes);
    if (!packed) return aim_op_fail(c, AIM_ERR_NOMEM, "cannot allocate %zu bytes", bytes);
    for (int64_t q = 0; q < k; q++)
        for (int64_t j = 0; j < n; j++)
            packed[q * n + j] = b.p[q * b.rs + j * b.cs];
    t.b = (matrix){packed, n, 1};
    gemm_parallel(&t, c->threads);
    free(packed);
    return AIM_OK;
}

/* ---- Window attributes and geometry (Conv, ConvTranspose, pools) --------------------------- */

typedef enum { PAD_NOTSET, PAD_SAME_UPPER, PAD_SAME_LOWER, PAD_VALID } pad_mode;

typedef struct {
    int nsp; /* spatial dimensions */
    pad_mode mode;
    bool has_kernel; /* kernel_shape attribute present */
    bool ceil_mode;
    int64_t kernel[MAX_SPATIAL], stride[MAX_SPATIAL], dilation[MAX_SPATIAL];
    int64_t pads[2 * MAX_SPATIAL]; /* begins, then ends */
} window_attrs;

/* Geometry of a sliding window: grid positions p and taps k touch the image at
 * p * stride - pad_begin + k * dilation. For Conv and pools the grid is the output and the image
 * the input; for ConvTranspose it is the other way round. */
typedef struct {
    int nsp;
    int64_t grid[MAX_SPATIAL], image[MAX_SPATIAL];
    int64_t kernel[MAX_SPATIAL], stride[MAX_SPATIAL], dilation[MAX_SPATIAL];
    int64_t pad_begin[MAX_SPATIAL], pad_end[MAX_SPATIAL];
} geometry;

static aim_status read_pad_mode(const aim_op_ctx *c, pad_mode *mode) {
    const char *s = aim_op_attr_string(c, "auto_pad", "NOTSET");
    if (strcmp(s, "NOTSET") == 0 || s[0] == 0)
        *mode = PAD_NOTSET;
    else if (strcmp(s, "SAME_UPPER") == 0)
        *mode = PAD_SAME_UPPER;
    else if (strcmp(s, "SAME_LOWER") == 0)
        *mode = PAD_SAME_LOWER;
    else if (strcmp(s, "VALID") == 0)
        *mode = PAD_VALID;
    else
        return aim_op_fail(c, AIM_ERR_PARSE, "auto_pad '%s' is not valid", s);
    return AIM_OK;
}

/* Reads an ints attribute of exactly `count` values in [lo, MAX_WINDOW_VALUE], or fills def.
 * count < 0: any count up to `cap` (prepare, before shapes are known). */
static aim_status read_ints(const aim_op_ctx *c, const char *name, int count, int cap, int64_t def,
                            int64_t lo, int64_t *out, bool *present) {
    size_t n;
    const int64_t *v = aim_op_attr_ints(c, name, &n);
    if (present) *present = v != NULL;
    if (!v) {
        for (int i = 0; i < (count > 0 ? count : 0); i++)
            out[i] = def;
        return AIM_OK;
    }
    if ((count >= 0 && n != (size_t)count) || n > (size_t)cap)
        return aim_op_fail(c, AIM_ERR_PARSE, "attribute %s has %zu values, expected %d", name, n,
                           count >= 0 ? count : cap);
    for (size_t i = 0; i < n; i++) {
        if (v[i] < lo || v[i] > MAX_WINDOW_VALUE)
            return aim_op_fail(c, AIM_ERR_PARSE, "attribute %s has value %lld out of range", name,
                               (long long)v[i]);
        out[i] = v[i];
    }
    return AIM_OK;
}

/* Reads kernel_shape, strides, dilations, pads, auto_pad and ceil_mode for nsp spatial dims
 * (nsp < 0: validate values only). */
static aim_status read_window_attrs(const aim_op_ctx *c, int nsp, window_attrs *a) {
    memset(a, 0, sizeof *a);
    a->nsp = nsp;
    aim_status st = read_pad_mode(c, &a->mode);
    int cap = MAX_SPATIAL;
    if (st == AIM_OK) st = read_ints(c, "kernel_shape", nsp, cap, 1, 1, a->kernel, &a->has_kernel);
    if (st == AIM_OK) st = read_ints(c, "strides", nsp, cap, 1, 1, a->stride, NULL);
    if (st == AIM_OK) st = read_ints(c, "dilations", nsp, cap, 1, 1, a->dilation, NULL);
    if (st == AIM_OK)
        st = read_ints(c, "pads", nsp < 0 ? -1 : 2 * nsp, 2 * cap, 0, 0, a->pads, NULL);
    int64_t ceil_mode = aim_op_attr_int(c, "ceil_mode", 0);
    if (st == AIM_OK && ceil_mode != 0 && ceil_mode != 1)
        return aim_op_fail(c, AIM_ERR_PARSE, "ceil_mode must be 0 or 1");
    a->ceil_mode = ceil_mode == 1;
    return st;
}

/* Checks an input has layout [N, C, spatial...] with nsp in 1..MAX_SPATIAL. */
static aim_status check_image(const aim_op_ctx *c, const aim_tensor *x, const char *what) {
    aim_status st = check_known(c, x, what);
    if (st != AIM_OK) return st;
    if (x->rank < 3)
        return aim_op_fail(c, AIM_ERR_PARSE, "%s has rank %d (N, C and a spatial dim expected)",
                           what, x->rank);
    for (int d = 2; d < x->rank; d++)
        if (x->dims[d] > MAX_SPATIAL_SIZE)
            return aim_op_fail(c, AIM_ERR_LIMIT, "%s is too large", what);
    return AIM_OK;
}

static int64_t ceil_div(int64_t a, int64_t b) {
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

/* Output sizes and pads of a convolution or pool over input sizes `in` (spatial only). */
static aim_status window_geometry(const aim_op_ctx *c, const window_attrs *a, const int64_t *in,
                                  geometry *g) {
    g->nsp = a->nsp;
    for (int d = 0; d < a->nsp; d++) {
        int64_t k = a->kernel[d], s = a->stride[d], extent = (k - 1) * a->dilation[d] + 1;
        int64_t pb = a->pads[d], pe = a->pads[d + a->nsp], out;
        if (a->mode == PAD_SAME_UPPER || a->mode == PAD_SAME_LOWER) {
            out = ceil_div(in[d], s);
            int64_t total = max64(0, (out - 1) * s + extent - in[d]);
            pb = a->mode == PAD_SAME_UPPER ? total / 2 : total - total / 2;
            pe = total - pb;
        } else {
            if (a->mode == PAD_VALID) pb = pe = 0;
            int64_t span = in[d] + pb + pe - extent;
            if (span < 0)
                return aim_op_fail(c, AIM_ERR_PARSE,
                                   "kernel extent %lld is larger than the padded input %lld "
                                   "(spatial dim %d)",
                                   (long long)extent, (long long)(in[d] + pb + pe), d);
            out = (a->ceil_mode ? ceil_div(span, s) : span / s) + 1;
            /* A last window starting in the end padding is dropped (as ONNX and PyTorch do). */
            if (a->ceil_mode && (out - 1) * s >= in[d] + pb) out--;
        }
        g->grid[d] = out;
        g->image[d] = in[d];
        g->kernel[d] = k;
        g->stride[d] = s;
        g->dilation[d] = a->dilation[d];
        g->pad_begin[d] = pb;
        g->pad_end[d] = pe;
    }
    return AIM_OK;
}

/* Grid positions [lo, hi) of [0, count) for which pos * s + off falls inside [0, n). */
static void valid_range(int64_t off, int64_t s, int64_t n, int64_t count, int64_t *lo,
                        int64_t *hi) {
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = n - 1 - off < 0 ? 0 : (n - 1 - off) / s + 1;
    h = min64(h, count);
    *lo = min64(l, h);
    *hi = h;
}

/* Walks grid positions in runs along the last spatial dim, for one kernel tap. */
typedef struct {
    const geometry *g;
    const int64_t *tap;
    int64_t coord[MAX_SPATIAL];
    int64_t left; /* grid positions still to visit */
} walker;

static void walker_start(walker *w, const geometry *g, const int64_t *tap, int64_t p0, int64_t p1) {
    w->g = g;
    w->tap = tap;
    w->left = p1 - p0;
    if (w->left <= 0) return; /* also avoids dividing by an empty grid dim */
    for (int d = g->nsp - 1; d >= 0; d--) {
        w->coord[d] = p0 % g->grid[d];
        p0 /= g->grid[d];
    }
}

/* Next run: grid positions [*first, *first + *count) along the last dim. *offset is the image
 * offset of the run's other coordinates, -1 when they fall in the padding. */
static bool walker_next(walker *w, int64_t *first, int64_t *count, int64_t *offset) {
    const geometry *g = w->g;
    int last = g->nsp - 1;
    if (w->left <= 0) return false;
    *first = w->coord[last];
    *count = min64(g->grid[last] - *first, w->left);
    int64_t off = 0, stride = g->image[last];
    for (int d = last - 1; d >= 0 && off >= 0; d--) {
        int64_t x = w->coord[d] * g->stride[d] - g->pad_begin[d] + w->tap[d] * g->dilation[d];
        off = (x < 0 || x >= g->image[d]) ? -1 : off + x * stride;
        stride *= g->image[d];
    }
    *offset = off;
    w->left -= *count;
    w->coord[last] = 0;
    for (int d = last - 1; d >= 0; d--) {
        if (++w->coord[d] < g->grid[d]) break;
        w->coord[d] = 0;
    }
    return true;
}

static bool next_tap(const geometry *g, int64_t *tap) {
    for (int d = g->nsp - 1; d >= 0; d--) {
        if (++tap[d] < g->kernel[d]) return true;
        tap[d] = 0;
    }
    return false;
}

/* One im2col row: row[p - p0] = image at grid position p and this tap (0 in the padding). With
 * scatter, the reverse (col2im): image += row. */
static void patch_row(const geometry *g, const int64_t *tap, int64_t p0, int64_t p1, float *image,
                      float *row, bool scatter) {
    int last = g->nsp - 1;
    int64_t s = g->stride[last], shift = tap[last] * g->dilation[last] - g->pad_begin[last];
    int64_t lo_all, hi_all, first, count, offset;
    valid_range(shift, s, g->image[last], g->grid[last], &lo_all, &hi_all);
    walker w;
    walker_start(&w, g, tap, p0, p1);
    float *r = row;
    while (walker_next(&w, &first, &count, &offset)) {
        int64_t end = first + count;
        int64_t lo = offset < 0 ? end : min64(max64(lo_all, first), end);
        int64_t hi = offset < 0 ? end : max64(min64(hi_all, end), lo);
        int64_t base = offset + shift; /* image index of grid position 0 of this run */
        if (scatter) {
            for (int64_t j = lo; j < hi; j++)
                image[base + j * s] += r[j - first];
        } else {
            for (int64_t j = first; j < lo; j++)
                r[j - first] = 0;
            for (int64_t j = lo; j < hi; j++)
                r[j - first] = image[base + j * s];
            for (int64_t j = hi; j < end; j++)
                r[j - first] = 0;
        }
        r += count;
    }
}

/* im2col (scatter: col2im) of grid positions [p0, p1) for `channels` image planes: col has
 * channels * kernel-size rows of p1 - p0 columns. */
static void patches(const geometry *g, int64_t channels, int64_t p0, int64_t p1, float *image,
                    float *col, bool scatter) {
    int64_t image_size = product(g->image, g->nsp), width = p1 - p0;
    float *row = col;
    for (int64_t ch = 0; ch < channels; ch++) {
        int64_t tap[MAX_SPATIAL] = {0};
        do {
            patch_row(g, tap, p0, p1, image + ch * image_size, row, scatter);
            row += width;
        } while (next_tap(g, tap));
    }
}

/* out (one grid plane) += sum over taps of w[tap] * image(tap): the direct loop of depthwise
 * convolutions, where im2col would only copy. */
static void direct_plane(const geometry *g, const float *image, const float *w, float *out) {
    int last = g->nsp - 1;
    int64_t s = g->stride[last], grid_size = product(g->grid, g->nsp);
    int64_t tap[MAX_SPATIAL] = {0};
    do {
        float wv = *w++;
        int64_t shift = tap[last] * g->dilation[last] - g->pad_begin[last];
        int64_t lo, hi, first, count, offset;
        valid_range(shift, s, g->image[last], g->grid[last], &lo, &hi);
        walker wk;
        walker_start(&wk, g, tap, 0, grid_size);
        float *o = out;
        while (walker_next(&wk, &first, &count, &offset)) {
            if (offset >= 0) {
                int64_t base = offset + shift;
                for (int64_t j = max64(lo, first); j < min64(hi, first + count); j++)
                    o[j - first] += wv * image[base + j * s];
            }
            o += count;
        }
    } while (next_tap(g, tap));
}

/* ---- Conv ---------------------------------------------------------------------------------- */

/* Load-time validation of the window attributes (counts are checked once shapes are known). */
static aim_status window_prepare(aim_op_ctx *c) {
    window_attrs a;
    return read_window_attrs(c, -1, &a);
}

/* Common checks of Conv and ConvTranspose: X [N, C, ...], W [., ., k...], attributes, group. */
static aim_status conv_common(const aim_op_ctx *c, window_attrs *a, int64_t *group) {
    aim_status st = aim_op_check_inputs(c, 2, 3);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0], *w = c->in[1], *b = aim_op_input(c, 2);
    if ((st = check_image(c, x, "input X")) != AIM_OK) return st;
    if ((st = check_known(c, w, "weight W")) != AIM_OK) return st;
    if ((st = check_float(c, x, "input X")) != AIM_OK) return st;
    if ((st = check_float(c, w, "weight W")) != AIM_OK) return st;
    int nsp = x->rank - 2;
    if (w->rank != x->rank)
        return aim_op_fail(c, AIM_ERR_PARSE, "weight W has rank %d, input X rank %d", w->rank,
                           x->rank);
    if ((st = read_window_attrs(c, nsp, a)) != AIM_OK) return st;
    for (int d = 0; d < nsp; d++) {
        if (a->has_kernel && a->kernel[d] != w->dims[d + 2])
            return aim_op_fail(c, AIM_ERR_PARSE, "kernel_shape does not match weight W");
        if (w->dims[d + 2] < 1 || w->dims[d + 2] > MAX_WINDOW_VALUE)
            return aim_op_fail(c, AIM_ERR_PARSE, "weight W has an invalid kernel size");
        a->kernel[d] = w->dims[d + 2];
    }
    *group = aim_op_attr_int(c, "group", 1);
    if (*group < 1 || x->dims[1] % *group != 0)
        return aim_op_fail(c, AIM_ERR_PARSE, "group %lld does not divide the %lld input channels",
                           (long long)*group, (long long)x->dims[1]);
    if (b) {
        if ((st = check_known(c, b, "bias B")) != AIM_OK) return st;
        if ((st = check_float(c, b, "bias B")) != AIM_OK) return st;
    }
    return AIM_OK;
}

static aim_status check_bias(const aim_op_ctx *c, int64_t channels) {
    const aim_tensor *b = aim_op_input(c, 2);
    if (b && (b->rank != 1 || b->dims[0] != channels))
        return aim_op_fail(c, AIM_ERR_PARSE, "bias B must have shape [%lld]", (long long)channels);
    return AIM_OK;
}

static aim_status conv_shape(const aim_op_ctx *c, geometry *g, int64_t *group) {
    window_attrs a;
    aim_status st = conv_common(c, &a, group);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0], *w = c->in[1];
    int64_t m = w->dims[0];
    if (w->dims[1] * *group != x->dims[1])
        return aim_op_fail(c, AIM_ERR_PARSE, "weight W has %lld input channels, expected %lld",
                           (long long)w->dims[1], (long long)(x->dims[1] / *group));
    if (m % *group != 0)
        return aim_op_fail(c, AIM_ERR_PARSE, "group %lld does not divide the %lld output channels",
                           (long long)*group, (long long)m);
    if ((st = check_bias(c, m)) != AIM_OK) return st;
    return window_geometry(c, &a, x->dims + 2, g);
}

static aim_status conv_infer(aim_op_ctx *c) {
    geometry g;
    int64_t group;
    aim_status st = conv_shape(c, &g, &group);
    if (st != AIM_OK) return st;
    int64_t dims[AIM_MAX_RANK] = {c->in[0]->dims[0], c->in[1]->dims[0]};
    memcpy(dims + 2, g.grid, (size_t)g.nsp * sizeof *dims);
    return aim_op_set_output(c, 0, c->in[0]->dtype, g.nsp + 2, dims);
}

/* Fills `channels` planes of `size` floats with the bias (or zeros). */
static void fill_bias(float *out, const float *bias, int64_t channels, int64_t size) {
    for (int64_t ch = 0; ch < channels; ch++)
        for (int64_t i = 0; i < size; i++)
            out[ch * size + i] = bias ? bias[ch] : 0.0f;
}

static bool is_pointwise(const geometry *g) {
    for (int d = 0; d < g->nsp; d++)
        if (g->kernel[d] != 1 || g->stride[d] != 1 || g->pad_begin[d] != 0 || g->pad_end[d] != 0)
            return false;
    return true;
}

/* One group of one image: y[mg, out] += w[mg, cg * taps] * patches(x[cg, in]). Depthwise
 * groups (cg == 1) take depthwise_chunk instead. */
static aim_status conv_group(const aim_op_ctx *c, const geometry *g, int64_t cg, int64_t mg,
                             const float *x, const float *w, float *y) {
    int64_t in_size = product(g->image, g->nsp), out_size = product(g->grid, g->nsp);
    int64_t taps = product(g->kernel, g->nsp), k = cg * taps;
    if (out_size == 0 || mg == 0 || k == 0) return AIM_OK; /* y already holds the bias */
    matrix wm = {w, k, 1};
    if (is_pointwise(g))
        return gemm(c, mg, out_size, k, 1.0f, wm, (matrix){x, in_size, 1}, y, out_size);
    int64_t width = min64(out_size, max64(1, SCRATCH_FLOATS / k));
    float *col = malloc((size_t)(k * width) * sizeof *col);
    if (!col) return aim_op_fail(c, AIM_ERR_NOMEM, "cannot allocate the im2col buffer");
    aim_status st = AIM_OK;
    for (int64_t p0 = 0; p0 < out_size && st == AIM_OK; p0 += width) {
        int64_t p1 = min64(out_size, p0 + width);
        patches(g, cg, p0, p1, (float *)x, col, false);
        st = gemm(c, mg, p1 - p0, k, 1.0f, wm, (matrix){col, p1 - p0, 1}, y + p0, out_size);
    }
    free(col);
    return st;
}

/* Depthwise Conv (one input channel per group): every (image, group) pair is independent. */
typedef struct {
    const geometry *g;
    int64_t mg, group, wsize, in_size, out_size;
    const float *x, *w;
    float *y;
} depthwise_task;

static void depthwise_chunk(void *ctx, size_t begin, size_t end) {
    const depthwise_task *t = ctx;
    for (size_t p = begin; p < end; p++) {
        int64_t gi = (int64_t)p % t->group, first = (int64_t)p * t->mg; /* first output plane */
        if (t->out_size == 0 || t->mg == 0 || t->wsize == 0) return;
        for (int64_t m = 0; m < t->mg; m++)
            direct_plane(t->g, t->x + (int64_t)p * t->in_size, t->w + (gi * t->mg + m) * t->wsize,
                         t->y + (first + m) * t->out_size);
    }
}

static aim_status conv_run(aim_op_ctx *c) {
    geometry g;
    int64_t group;
    aim_status st = conv_shape(c, &g, &group);
    if (st != AIM_OK) return st;
    const aim_tensor *xt = c->in[0], *wt = c->in[1], *bt = aim_op_input(c, 2);
    int64_t n = xt->dims[0], ch = xt->dims[1], m = wt->dims[0], cg = ch / group, mg = m / group;
    int64_t in_size = product(g.image, g.nsp), out_size = product(g.grid, g.nsp);
    int64_t wsize = cg * product(g.kernel, g.nsp);
    fin x = {0}, w = {0}, b = {0};
    fout y = {0};
    if ((st = fin_load(c, xt, &x)) == AIM_OK && (st = fin_load(c, wt, &w)) == AIM_OK &&
        (!bt || (st = fin_load(c, bt, &b)) == AIM_OK))
        st = fout_begin(c, c->out[0], &y);
    for (int64_t i = 0; i < n && st == AIM_OK; i++)
        fill_bias(y.p + i * m * out_size, b.p, m, out_size);
    if (st == AIM_OK && cg == 1) { /* depthwise: independent direct planes, split by threads */
        depthwise_task t = {&g, mg, group, wsize, in_size, out_size, x.p, w.p, y.p};
        aim_parallel_for(
            threads_for(c->threads, (double)(n * m) * (double)out_size * (double)wsize),
            (size_t)(n * group), depthwise_chunk, &t);
    }
    for (int64_t i = 0; i < n && st == AIM_OK && cg != 1; i++)
        for (int64_t gi = 0; gi < group && st == AIM_OK; gi++)
            st = conv_group(c, &g, cg, mg, x.p + (i * ch + gi * cg) * in_size,
                            w.p + gi * mg * wsize, y.p + (i * m + gi * mg) * out_size);
    fout_end(&y, st == AIM_OK);
    fin_free(&x);
    fin_free(&w);
    fin_free(&b);
    return st;
}

/* ---- ConvTranspose ------------------------------------------------------------------------- */

/* Output sizes and pads of a transposed convolution; grid = input, image = output. */
static aim_status convtranspose_shape(const aim_op_ctx *c, geometry *g, int64_t *group) {
    window_attrs a;
    aim_status st = conv_common(c, &a, group);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0], *w = c->in[1];
    int nsp = a.nsp;
    if (w->dims[0] != x->dims[1])
        return aim_op_fail(c, AIM_ERR_PARSE, "weight W has %lld input channels, X has %lld",
                           (long long)w->dims[0], (long long)x->dims[1]);
    if ((st = check_bias(c, w->dims[1] * *group)) != AIM_OK) return st;
    int64_t out_pad[MAX_SPATIAL], shape[MAX_SPATIAL + 2];
    if ((st = read_ints(c, "output_padding", nsp, MAX_SPATIAL, 0, 0, out_pad, NULL)) != AIM_OK)
        return st;
    size_t n_shape;
    const int64_t *os = aim_op_attr_ints(c, "output_shape", &n_shape);
    if (os && n_shape != (size_t)nsp && n_shape != (size_t)nsp + 2)
        return aim_op_fail(c, AIM_ERR_PARSE, "output_shape has %zu values for %d spatial dims",
                           n_shape, nsp);
    bool given = os != NULL;
    if (os) memcpy(shape, os + (n_shape - (size_t)nsp), (size_t)nsp * sizeof *shape);
    g->nsp = nsp;
    for (int d = 0; d < nsp; d++) {
        int64_t in = x->dims[d + 2], s = a.stride[d];
        int64_t full = s * (in - 1) + out_pad[d] + (a.kernel[d] - 1) * a.dilation[d] + 1;
        int64_t pb = a.pads[d], pe = a.pads[d + nsp], out;
        if (given && (shape[d] < 0 || shape[d] > MAX_SPATIAL_SIZE))
            return aim_op_fail(c, AIM_ERR_PARSE, "output_shape has an invalid value");
        if (given || a.mode == PAD_SAME_UPPER || a.mode == PAD_SAME_LOWER) {
            out = given ? shape[d] : in * s;
            /* Positions past the full output (total < 0) receive no contribution. */
            int64_t total = max64(0, full - out);
            pb = a.mode == PAD_SAME_UPPER ? total / 2 : total - total / 2;
            pe = total - pb;
        } else {
            if (a.mode == PAD_VALID) pb = pe = 0;
            out = full - pb - pe;
            if (out < 0)
                return aim_op_fail(c, AIM_ERR_PARSE, "pads exceed the output (spatial dim %d)", d);
        }
        g->grid[d] = in;
        g->image[d] = out;
        g->kernel[d] = a.kernel[d];
        g->stride[d] = s;
        g->dilation[d] = a.dilation[d];
        g->pad_begin[d] = pb;
        g->pad_end[d] = pe;
    }
    return AIM_OK;
}

static aim_status convtranspose_infer(aim_op_ctx *c) {
    geometry g;
    int64_t group;
    aim_status st = convtranspose_shape(c, &g, &group);
    if (st != AIM_OK) return st;
    int64_t dims[AIM_MAX_RANK] = {c->in[0]->dims[0], c->in[1]->dims[1] * group};
    memcpy(dims + 2, g.image, (size_t)g.nsp * sizeof *dims);
    return aim_op_set_output(c, 0, c->in[0]->dtype, g.nsp + 2, dims);
}

/* One group of one image: col[mg * taps, in] = W^T x, then scattered into y (col2im). */
static aim_status convtranspose_group(const aim_op_ctx *c, const geometry *g, int64_t cg,
                                      int64_t mg, const float *x, const float *w, float *y,
                                      float *col, int64_t width) {
    int64_t in_size = product(g->grid, g->nsp), rows = mg * product(g->kernel, g->nsp);
    aim_status st = AIM_OK;
    for (int64_t p0 = 0; p0 < in_size && st == AIM_OK; p0 += width) {
        int64_t p1 = min64(in_size, p0 + width);
        memset(col, 0, (size_t)(rows * (p1 - p0)) * sizeof *col);
        st = gemm(c, rows, p1 - p0, cg, 1.0f, (matrix){w, 1, rows}, (matrix){x + p0, in_size, 1},
                  col, p1 - p0);
        if (st == AIM_OK) patches(g, mg, p0, p1, y, col, true);
    }
    return st;
}

static aim_status convtranspose_run(aim_op_ctx *c) {
    geometry g;
    int64_t group;
    aim_status st = convtranspose_shape(c, &g, &group);
    if (st != AIM_OK) return st;
    const aim_tensor *xt = c->in[0], *wt = c->in[1], *bt = aim_op_input(c, 2);
    int64_t n = xt->dims[0], ch = xt->dims[1], cg = ch / group, mg = wt->dims[1], m = mg * group;
    int64_t in_size = product(g.grid, g.nsp), out_size = product(g.image, g.nsp);
    int64_t rows = mg * product(g.kernel, g.nsp);
    int64_t width = max64(1, min64(in_size, SCRATCH_FLOATS / max64(rows, 1)));
    fin x = {0}, w = {0}, b = {0};
    fout y = {0};
    float *col = malloc((size_t)(rows * width + 1) * sizeof *col);
    if (!col) return aim_op_fail(c, AIM_ERR_NOMEM, "cannot allocate the col2im buffer");
    if ((st = fin_load(c, xt, &x)) == AIM_OK && (st = fin_load(c, wt, &w)) == AIM_OK &&
        (!bt || (st = fin_load(c, bt, &b)) == AIM_OK))
        st = fout_begin(c, c->out[0], &y);
    for (int64_t i = 0; i < n && st == AIM_OK; i++) {
        fill_bias(y.p + i * m * out_size, b.p, m, out_size);
        for (int64_t gi = 0; gi < group && st == AIM_OK; gi++)
            st = convtranspose_group(c, &g, cg, mg, x.p + (i * ch + gi * cg) * in_size,
                                     w.p + gi * cg * rows, y.p + (i * m + gi * mg) * out_size, col,
                                     width);
    }
    fout_end(&y, st == AIM_OK);
    fin_free(&x);
    fin_free(&w);
    fin_free(&b);
    free(col);
    return st;
}

/* ---- AveragePool, MaxPool ------------------------------------------------------------------ */

typedef enum { POOL_AVG, POOL_MAX } pool_kind;

static aim_status pool_shape(const aim_op_ctx *c, pool_kind kind, geometry *g) {
    aim_status st = aim_op_check_inputs(c, 1, 1);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if ((st = check_image(c, x, "input X")) != AIM_OK) return st;
    bool small_ints = x->dtype == AIM_DTYPE_INT8 || x->dtype == AIM_DTYPE_UINT8;
    if (!(kind == POOL_MAX && c->opset >= 12 && small_ints) &&
        (st = check_float(c, x, "input X")) != AIM_OK)
        return st;
    window_attrs a;
    if ((st = read_window_attrs(c, x->rank - 2, &a)) != AIM_OK) return st;
    if (!a.has_kernel) return aim_op_fail(c, AIM_ERR_PARSE, "attribute kernel_shape is required");
    if (kind == POOL_AVG) /* AveragePool has dilations only from opset 19 */
        for (int d = 0; d < a.nsp; d++)
            a.dilation[d] = 1;
    if ((st = window_geometry(c, &a, x->dims + 2, g)) != AIM_OK) return st;
    for (int d = 0; d < g->nsp; d++)
        if (g->pad_begin[d] >= (g->kernel[d] - 1) * g->dilation[d] + 1 ||
            g->pad_end[d] >= (g->kernel[d] - 1) * g->dilation[d] + 1)
            return aim_op_fail(c, AIM_ERR_PARSE, "pads must be smaller than the kernel");
    return AIM_OK;
}

static aim_status pool_infer_kind(aim_op_ctx *c, pool_kind kind) {
    geometry g;
    aim_status st = pool_shape(c, kind, &g);
    if (st != AIM_OK) return st;
    if (c->n_out > (kind == POOL_MAX && c->opset >= 8 ? 2 : 1))
        return aim_op_fail(c, AIM_ERR_PARSE, "has %d outputs", c->n_out);
    int64_t dims[AIM_MAX_RANK] = {c->in[0]->dims[0], c->in[0]->dims[1]};
    memcpy(dims + 2, g.grid, (size_t)g.nsp * sizeof *dims);
    st = aim_op_set_output(c, 0, c->in[0]->dtype, g.nsp + 2, dims);
    if (st == AIM_OK) st = aim_op_set_output(c, 1, AIM_DTYPE_INT64, g.nsp + 2, dims);
    return st;
}

static aim_status averagepool_infer(aim_op_ctx *c) {
    return pool_infer_kind(c, POOL_AVG);
}

static aim_status maxpool_infer(aim_op_ctx *c) {
    return pool_infer_kind(c, POOL_MAX);
}

/* The window of one output position: valid taps [lo, hi) per dim, and where they start. */
typedef struct {
    int64_t start[MAX_SPATIAL], lo[MAX_SPATIAL], hi[MAX_SPATIAL];
    int64_t valid;  /* taps inside the image */
    double divisor; /* taps inside the padded image (count_include_pad); may be huge */
} pool_window;

static void pool_window_at(const geometry *g, const int64_t *out, pool_window *pw) {
    pw->valid = pw->divisor = 1;
    for (int d = 0; d < g->nsp; d++) {
        int64_t start = out[d] * g->stride[d] - g->pad_begin[d];
        valid_range(start, g->dilation[d], g->image[d], g->kernel[d], &pw->lo[d], &pw->hi[d]);
        pw->start[d] = start;
        pw->valid *= pw->hi[d] - pw->lo[d];
        pw->divisor *= (double)(min64(start + g->kernel[d], g->image[d] + g->pad_end[d]) - start);
    }
}

/* Image index of a tap: row-major, or column-major (MaxPool storage_order 1). */
static int64_t tap_index(const geometry *g, const pool_window *pw, const int64_t *tap,
                         bool column_major) {
    int64_t index = 0;
    for (int i = 0; i < g->nsp; i++) {
        int d = column_major ? g->nsp - 1 - i : i;
        index = index * g->image[d] + pw->start[d] + tap[d] * g->dilation[d];
    }
    return index;
}

static bool next_in_window(const geometry *g, const pool_window *pw, int64_t *tap) {
    for (int d = g->nsp - 1; d >= 0; d--) {
        if (++tap[d] < pw->hi[d]) return true;
        tap[d] = pw->lo[d];
    }
    return false;
}

typedef struct {
    pool_kind kind;
    bool include_pad;
    bool column_major;
} pool_options;

/* Pools one channel plane. indices (MaxPool) gets the flat index plus index_base. */
static void pool_plane(const geometry *g, const pool_options *o, const float *x, float *y,
                       int64_t *indices, int64_t index_base) {
    int64_t out[MAX_SPATIAL] = {0}, tap[MAX_SPATIAL];
    int64_t out_size = product(g->grid, g->nsp);
    for (int64_t p = 0; p < out_size; p++) {
        pool_window pw;
        pool_window_at(g, out, &pw);
        float acc = 0.0f;
        int64_t best = -1; /* MaxPool: index of the maximum in the requested storage order */
        if (pw.valid > 0) {
            memcpy(tap, pw.lo, sizeof tap);
            do {
                float v = x[tap_index(g, &pw, tap, false)];
                if (o->kind == POOL_AVG) {
                    acc += v;
                } else if (best < 0 || v > acc) {
                    acc = v;
                    best = tap_index(g, &pw, tap, o->column_major);
                }
            } while (next_in_window(g, &pw, tap));
        }
        if (o->kind == POOL_AVG) {
            double n = o->include_pad ? pw.divisor : (double)pw.valid;
            y[p] = n > 0 ? (float)(acc / n) : 0.0f;
        } else {
            y[p] = acc; /* 0 for a window entirely in the padding (it has no maximum) */
            if (indices) indices[p] = best < 0 ? -1 : index_base + best;
        }
        for (int d = g->nsp - 1; d >= 0; d--) {
            if (++out[d] < g->grid[d]) break;
            out[d] = 0;
        }
    }
}

/* Pool planes (image, channel) are independent: split between threads. */
typedef struct {
    const geometry *g;
    const pool_options *o;
    int64_t in_size, out_size;
    const float *x;
    float *y;
    int64_t *indices;
} pool_task;

static void pool_chunk(void *ctx, size_t begin, size_t end) {
    const pool_task *t = ctx;
    for (int64_t p = (int64_t)begin; p < (int64_t)end; p++)
        pool_plane(t->g, t->o, t->x + p * t->in_size, t->y + p * t->out_size,
                   t->indices ? t->indices + p * t->out_size : NULL, p * t->in_size);
}

static aim_status pool_run(aim_op_ctx *c, pool_kind kind) {
    geometry g;
    aim_status st = pool_shape(c, kind, &g);
    if (st != AIM_OK) return st;
    pool_options o = {kind, aim_op_attr_int(c, "count_include_pad", 0) != 0,
                      aim_op_attr_int(c, "storage_order", 0) != 0};
    const aim_tensor *xt = c->in[0];
    aim_tensor *it = c->n_out > 1 ? c->out[1] : NULL;
    int64_t planes = xt->dims[0] * xt->dims[1];
    int64_t in_size = product(g.image, g.nsp), out_size = product(g.grid, g.nsp);
    fin x = {0};
    fout y = {0};
    if ((st = fin_load(c, xt, &x)) == AIM_OK) st = fout_begin(c, c->out[0], &y);
    if (st == AIM_OK) {
        pool_task t = {&g, &o, in_size, out_size, x.p, y.p, it ? (int64_t *)it->data : NULL};
        aim_parallel_for(threads_for(c->threads, (double)planes * (double)in_size), (size_t)planes,
                         pool_chunk, &t);
    }
    fout_end(&y, st == AIM_OK);
    fin_free(&x);
    return st;
}

static aim_status averagepool_run(aim_op_ctx *c) {
    return pool_run(c, POOL_AVG);
}

static aim_status maxpool_run(aim_op_ctx *c) {
    return pool_run(c, POOL_MAX);
}

/* ---- GlobalAveragePool, GlobalMaxPool ------------------------------------------------------ */

static aim_status global_pool_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 1, 1);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    if ((st = check_image(c, x, "input X")) != AIM_OK) return st;
    if ((st = check_float(c, x, "input X")) != AIM_OK) return st;
    int64_t dims[AIM_MAX_RANK];
    for (int d = 0; d < x->rank; d++)
        dims[d] = d < 2 ? x->dims[d] : 1;
    return aim_op_set_output(c, 0, x->dtype, x->rank, dims);
}

typedef struct {
    pool_kind kind;
    int64_t size;
    const float *x;
    float *y;
} global_pool_task;

static void global_pool_chunk(void *ctx, size_t begin, size_t end) {
    const global_pool_task *t = ctx;
    for (int64_t p = (int64_t)begin; p < (int64_t)end; p++) {
        const float *v = t->x + p * t->size;
        double acc = t->kind == POOL_MAX ? (t->size ? v[0] : 0.0) : 0.0;
        for (int64_t i = 0; i < t->size; i++)
            acc = t->kind == POOL_MAX ? (v[i] > acc ? v[i] : acc) : acc + v[i];
        t->y[p] = (float)(t->kind == POOL_AVG && t->size ? acc / (double)t->size : acc);
    }
}

static aim_status global_pool_run(aim_op_ctx *c, pool_kind kind) {
    const aim_tensor *xt = c->in[0];
    int64_t planes = xt->dims[0] * xt->dims[1], size = product(xt->dims + 2, xt->rank - 2);
    fin x = {0};
    fout y = {0};
    aim_status st = fin_load(c, xt, &x);
    if (st == AIM_OK) st = fout_begin(c, c->out[0], &y);
    if (st == AIM_OK) {
        global_pool_task t = {kind, size, x.p, y.p};
        aim_parallel_for(threads_for(c->threads, (double)planes * (double)size), (size_t)planes,
                         global_pool_chunk, &t);
    }
    fout_end(&y, st == AIM_OK);
    fin_free(&x);
    return st;
}

static aim_status globalaveragepool_run(aim_op_ctx *c) {
    return global_pool_run(c, POOL_AVG);
}

static aim_status globalmaxpool_run(aim_op_ctx *c) {
    return global_pool_run(c, POOL_MAX);
}

/* ---- Gemm ---------------------------------------------------------------------------------- */

static aim_status gemm_shape(const aim_op_ctx *c, int64_t *m, int64_t *n, int64_t *k) {
    aim_status st = aim_op_check_inputs(c, 2, 3);
    if (st != AIM_OK) return st;
    const aim_tensor *a = c->in[0], *b = c->in[1], *bias = aim_op_input(c, 2);
    const char *names[3] = {"input A", "input B", "input C"};
    for (int i = 0; i < 3; i++) {
        const aim_tensor *t = aim_op_input(c, i);
        if (!t) continue;
        if ((st = check_known(c, t, names[i])) != AIM_OK) return st;
        if ((st = check_float(c, t, names[i])) != AIM_OK) return st;
    }
    if (a->rank != 2 || b->rank != 2)
        return aim_op_fail(c, AIM_ERR_PARSE, "A and B must be matrices (ranks %d and %d)", a->rank,
                           b->rank);
    bool ta = aim_op_attr_int(c, "transA", 0) != 0, tb = aim_op_attr_int(c, "transB", 0) != 0;
    *m = a->dims[ta ? 1 : 0];
    *k = a->dims[ta ? 0 : 1];
    *n = b->dims[tb ? 0 : 1];
    if (b->dims[tb ? 1 : 0] != *k)
        return aim_op_fail(c, AIM_ERR_PARSE, "inner dimensions differ (%lld and %lld)",
                           (long long)*k, (long long)b->dims[tb ? 1 : 0]);
    if (bias) { /* C broadcasts one way to [M, N] */
        int64_t want[2] = {*m, *n};
        bool ok = bias->rank <= 2;
        for (int i = 0; ok && i < bias->rank; i++) {
            int64_t d = bias->dims[i], w = want[2 - bias->rank + i];
            ok = d == 1 || d == w;
        }
        if (!ok)
            return aim_op_fail(c, AIM_ERR_PARSE, "C cannot be broadcast to [%lld, %lld]",
                               (long long)*m, (long long)*n);
    }
    return AIM_OK;
}

static aim_status gemm_infer(aim_op_ctx *c) {
    int64_t m, n, k;
    aim_status st = gemm_shape(c, &m, &n, &k);
    if (st != AIM_OK) return st;
    int64_t dims[2] = {m, n};
    return aim_op_set_output(c, 0, c->in[0]->dtype, 2, dims);
}

static aim_status gemm_run(aim_op_ctx *c) {
    int64_t m, n, k;
    aim_status st = gemm_shape(c, &m, &n, &k);
    if (st != AIM_OK) return st;
    const aim_tensor *bias_t = aim_op_input(c, 2);
    bool ta = aim_op_attr_int(c, "transA", 0) != 0, tb = aim_op_attr_int(c, "transB", 0) != 0;
    float alpha = aim_op_attr_float(c, "alpha", 1.0f), beta = aim_op_attr_float(c, "beta", 1.0f);
    fin a = {0}, b = {0}, bias = {0};
    fout y = {0};
    if ((st = fin_load(c, c->in[0], &a)) == AIM_OK && (st = fin_load(c, c->in[1], &b)) == AIM_OK &&
        (!bias_t || (st = fin_load(c, bias_t, &bias)) == AIM_OK))
        st = fout_begin(c, c->out[0], &y);
    if (st == AIM_OK) {
        int64_t bias_dims[2] = {1, 1}, rs = 0, cs = 0;
        if (bias_t)
            for (int i = 0; i < bias_t->rank; i++)
                bias_dims[2 - bias_t->rank + i] = bias_t->dims[i];
        rs = bias_dims[0] == 1 ? 0 : bias_dims[1];
        cs = bias_dims[1] == 1 ? 0 : 1;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                y.p[i * n + j] = bias.p ? beta * bias.p[i * rs + j * cs] : 0.0f;
        matrix am = ta ? (matrix){a.p, 1, m} : (matrix){a.p, k, 1};
        matrix bm = tb ? (matrix){b.p, 1, k} : (matrix){b.p, n, 1};
        st = gemm(c, m, n, k, alpha, am, bm, y.p, n);
    }
    fout_end(&y, st == AIM_OK);
    fin_free(&a);
    fin_free(&b);
    fin_free(&bias);
    return st;
}

/* ---- MatMul -------------------------------------------------------------------------------- */

/* numpy matmul shapes: 1-D operands become [1, K] / [K, 1], batch dims broadcast. */
typedef struct {
    int batch_rank;
    int64_t batch[AIM_MAX_RANK];
    int64_t a_batch[AIM_MAX_RANK], b_batch[AIM_MAX_RANK]; /* strides in matrices, 0: broadcast */
    int64_t m, n, k;
    int out_rank;
    int64_t out[AIM_MAX_RANK];
} matmul_shape;

static bool is_matmul_type(int dtype) {
    return aim_dtype_is_float(dtype) || dtype == AIM_DTYPE_INT32 || dtype == AIM_DTYPE_INT64 ||
           dtype == AIM_DTYPE_UINT32 || dtype == AIM_DTYPE_UINT64;
}

static aim_status matmul_shape_of(const aim_op_ctx *c, matmul_shape *s) {
    aim_status st = aim_op_check_inputs(c, 2, 2);
    if (st != AIM_OK) return st;
    const aim_tensor *a = c->in[0], *b = c->in[1];
    if ((st = check_known(c, a, "input A")) != AIM_OK) return st;
    if ((st = check_known(c, b, "input B")) != AIM_OK) return st;
    if (a->dtype != b->dtype || !is_matmul_type(a->dtype))
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "unsupported input types %s and %s",
                           aim_dtype_name(a->dtype), aim_dtype_name(b->dtype));
    if (a->rank < 1 || b->rank < 1)
        return aim_op_fail(c, AIM_ERR_PARSE, "operands must have rank >= 1");
    s->m = a->rank > 1 ? a->dims[a->rank - 2] : 1;
    s->k = a->dims[a->rank - 1];
    s->n = b->rank > 1 ? b->dims[b->rank - 1] : 1;
    int64_t kb = b->dims[b->rank > 1 ? b->rank - 2 : 0];
    if (kb != s->k)
        return aim_op_fail(c, AIM_ERR_PARSE, "inner dimensions differ (%lld and %lld)",
                           (long long)s->k, (long long)kb);
    int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
    s->batch_rank = ra > rb ? ra : rb;
    int64_t sa = 1, sb = 1;
    for (int i = s->batch_rank - 1; i >= 0; i--) {
        int ia = i - (s->batch_rank - ra), ib = i - (s->batch_rank - rb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return aim_op_fail(c, AIM_ERR_PARSE, "batch dimensions %lld and %lld do not broadcast",
                               (long long)da, (long long)db);
        s->batch[i] = da == 1 ? db : da;
        s->a_batch[i] = da == 1 ? 0 : sa;
        s->b_batch[i] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
    }
    s->out_rank = s->batch_rank;
    memcpy(s->out, s->batch, (size_t)s->batch_rank * sizeof *s->out);
    if (a->rank > 1) s->out[s->out_rank++] = s->m;
    if (b->rank > 1) s->out[s->out_rank++] = s->n;
    return AIM_OK;
}

static aim_status matmul_infer(aim_op_ctx *c) {
    matmul_shape s;
    aim_status st = matmul_shape_of(c, &s);
    if (st != AIM_OK) return st;
    return aim_op_set_output(c, 0, c->in[0]->dtype, s.out_rank, s.out);
}

/* Integer matmul (wrapping, as two's complement hardware does). */
static void matmul_ints(const aim_tensor *a, const aim_tensor *b, aim_tensor *y, int64_t m,
                        int64_t n, int64_t k, int64_t ao, int64_t bo, int64_t yo) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            uint64_t acc = 0;
            for (int64_t q = 0; q < k; q++)
                acc += (uint64_t)aim_tensor_get_i64(a, (size_t)(ao + i * k + q)) *
                       (uint64_t)aim_tensor_get_i64(b, (size_t)(bo + q * n + j));
            size_t at = (size_t)(yo + i * n + j);
            switch (y->dtype) {
            case AIM_DTYPE_INT32: ((int32_t *)y->data)[at] = (int32_t)(uint32_t)acc; break;
            case AIM_DTYPE_UINT32: ((uint32_t *)y->data)[at] = (uint32_t)acc; break;
            case AIM_DTYPE_INT64: ((int64_t *)y->data)[at] = (int64_t)acc; break;
            default: ((uint64_t *)y->data)[at] = acc; break;
            }
        }
}

static aim_status matmul_run(aim_op_ctx *c) {
    matmul_shape s;
    aim_status st = matmul_shape_of(c, &s);
    if (st != AIM_OK) return st;
    int64_t m = s.m, n = s.n, k = s.k, batches = product(s.batch, s.batch_rank);
    bool floats = aim_dtype_is_float(c->in[0]->dtype);
    fin a = {0}, b = {0};
    fout y = {0};
    if (floats && (st = fin_load(c, c->in[0], &a)) == AIM_OK &&
        (st = fin_load(c, c->in[1], &b)) == AIM_OK)
        st = fout_begin(c, c->out[0], &y);
    if (floats && st == AIM_OK) memset(y.p, 0, (size_t)(batches * m * n) * sizeof *y.p);
    /* A batched A times one B is a single taller GEMM. */
    bool b_shared = true;
    for (int i = 0; i < s.batch_rank; i++)
        b_shared = b_shared && s.b_batch[i] == 0 && (s.a_batch[i] != 0 || s.batch[i] == 1);
    if (floats && st == AIM_OK && b_shared && batches > 1) {
        st = gemm(c, batches * m, n, k, 1.0f, (matrix){a.p, k, 1}, (matrix){b.p, n, 1}, y.p, n);
        batches = 0;
    }
    int64_t idx[AIM_MAX_RANK] = {0};
    for (int64_t p = 0; p < batches && st == AIM_OK; p++) {
        int64_t ao = 0, bo = 0;
        for (int i = 0; i < s.batch_rank; i++) {
            ao += idx[i] * s.a_batch[i];
            bo += idx[i] * s.b_batch[i];
        }
        if (floats)
            st = gemm(c, m, n, k, 1.0f, (matrix){a.p + ao * m * k, k, 1},
                      (matrix){b.p + bo * k * n, n, 1}, y.p + p * m * n, n);
        else
            matmul_ints(c->in[0], c->in[1], c->out[0], m, n, k, ao * m * k, bo * k * n, p * m * n);
        for (int i = s.batch_rank - 1; i >= 0; i--) {
            if (++idx[i] < s.batch[i]) break;
            idx[i] = 0;
        }
    }
    if (floats) fout_end(&y, st == AIM_OK);
    fin_free(&a);
    fin_free(&b);
    return st;
}

/* ---- BatchNormalization, InstanceNormalization --------------------------------------------- */

/* Checks the per-channel parameter inputs [first, last] have shape [channels]. */
static aim_status check_channel_params(const aim_op_ctx *c, int first, int last, int64_t channels) {
    for (int i = first; i <= last; i++) {
        const aim_tensor *t = c->in[i];
        aim_status st = check_known(c, t, "a parameter input");
        if (st == AIM_OK) st = check_float(c, t, "a parameter input");
        if (st != AIM_OK) return st;
        if (t->rank != 1 || t->dims[0] != channels)
            return aim_op_fail(c, AIM_ERR_PARSE, "input %d must have shape [%lld]", i,
                               (long long)channels);
    }
    return AIM_OK;
}

static aim_status check_nc_input(const aim_op_ctx *c, int min_rank) {
    const aim_tensor *x = c->in[0];
    aim_status st = check_known(c, x, "input X");
    if (st == AIM_OK) st = check_float(c, x, "input X");
    if (st == AIM_OK && x->rank < min_rank)
        st = aim_op_fail(c, AIM_ERR_PARSE, "input X has rank %d, at least %d expected", x->rank,
                         min_rank);
    return st;
}

static bool batchnorm_training(const aim_op_ctx *c) {
    return c->opset >= 14 && aim_op_attr_int(c, "training_mode", 0) != 0;
}

static aim_status batchnorm_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 5, 5);
    if (st == AIM_OK) st = check_nc_input(c, 2);
    if (st == AIM_OK) st = check_channel_params(c, 1, 4, c->in[0]->dims[1]);
    if (st != AIM_OK) return st;
    if (aim_op_attr_int(c, "spatial", 1) != 1)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "spatial=0 is not supported");
    bool training = batchnorm_training(c);
    int wanted = 0;
    for (int i = 1; i < c->n_out; i++)
        wanted += c->out[i] != NULL;
    if (wanted && !training)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED,
                           "training outputs are supported only with training_mode (opset 14+)");
    if (c->n_out > 3) return aim_op_fail(c, AIM_ERR_PARSE, "has %d outputs", c->n_out);
    const aim_tensor *x = c->in[0];
    st = aim_op_set_output(c, 0, x->dtype, x->rank, x->dims);
    if (st == AIM_OK) st = aim_op_set_output(c, 1, c->in[3]->dtype, 1, c->in[3]->dims);
    if (st == AIM_OK) st = aim_op_set_output(c, 2, c->in[4]->dtype, 1, c->in[4]->dims);
    return st;
}

/* Mean and population variance of `planes` planes of `size` values, `stride` apart. */
static void moments(const float *x, int64_t planes, int64_t size, int64_t stride, double *mean,
                    double *var) {
    double sum = 0, sq = 0, count = (double)(planes * size);
    for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < size; i++)
            sum += x[p * stride + i];
    *mean = count > 0 ? sum / count : 0;
    for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < size; i++) {
            double d = x[p * stride + i] - *mean;
            sq += d * d;
        }
    *var = count > 0 ? sq / count : 0;
}

/* y = (x - mean) * scale / sqrt(var + eps) + bias on one plane. */
static void normalize_plane(const float *x, float *y, int64_t size, double mean, double var,
                            double eps, double scale, double bias) {
    float k = (float)(scale / sqrt(var + eps)),
          shift = (float)(bias - mean * scale / sqrt(var + eps));
    for (int64_t i = 0; i < size; i++)
        y[i] = x[i] * k + shift;
}

static aim_status batchnorm_run(aim_op_ctx *c) {
    const aim_tensor *xt = c->in[0];
    int64_t n = xt->dims[0], ch = xt->dims[1], size = product(xt->dims + 2, xt->rank - 2);
    double eps = aim_op_attr_float(c, "epsilon", 1e-5f);
    double momentum = aim_op_attr_float(c, "momentum", 0.9f);
    bool training = batchnorm_training(c);
    fin x = {0}, p[4] = {{0}};
    fout y = {0}, running[2] = {{0}};
    aim_status st = fin_load(c, xt, &x);
    for (int i = 0; i < 4 && st == AIM_OK; i++)
        st = fin_load(c, c->in[i + 1], &p[i]);
    if (st == AIM_OK) st = fout_begin(c, c->out[0], &y);
    for (int i = 0; i < 2 && st == AIM_OK; i++)
        if (c->n_out > i + 1 && c->out[i + 1]) st = fout_begin(c, c->out[i + 1], &running[i]);
    for (int64_t k = 0; k < ch && st == AIM_OK; k++) {
        double mean = p[2].p[k], var = p[3].p[k];
        if (training) {
            moments(x.p + k * size, n, size, ch * size, &mean, &var);
            if (running[0].p)
                running[0].p[k] = (float)(p[2].p[k] * momentum + mean * (1 - momentum));
            if (running[1].p)
                running[1].p[k] = (float)(p[3].p[k] * momentum + var * (1 - momentum));
        }
        for (int64_t b = 0; b < n; b++)
            normalize_plane(x.p + (b * ch + k) * size, y.p + (b * ch + k) * size, size, mean, var,
                            eps, p[0].p[k], p[1].p[k]);
    }
    fout_end(&y, st == AIM_OK);
    for (int i = 0; i < 2; i++)
        fout_end(&running[i], st == AIM_OK);
    fin_free(&x);
    for (int i = 0; i < 4; i++)
        fin_free(&p[i]);
    return st;
}

static aim_status instancenorm_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 3, 3);
    if (st == AIM_OK) st = check_nc_input(c, 3);
    if (st == AIM_OK) st = check_channel_params(c, 1, 2, c->in[0]->dims[1]);
    if (st != AIM_OK) return st;
    return aim_op_set_output(c, 0, c->in[0]->dtype, c->in[0]->rank, c->in[0]->dims);
}

static aim_status instancenorm_run(aim_op_ctx *c) {
    const aim_tensor *xt = c->in[0];
    int64_t ch = xt->dims[1], planes = xt->dims[0] * ch;
    int64_t size = product(xt->dims + 2, xt->rank - 2);
    double eps = aim_op_attr_float(c, "epsilon", 1e-5f);
    fin x = {0}, scale = {0}, bias = {0};
    fout y = {0};
    aim_status st = fin_load(c, xt, &x);
    if (st == AIM_OK) st = fin_load(c, c->in[1], &scale);
    if (st == AIM_OK) st = fin_load(c, c->in[2], &bias);
    if (st == AIM_OK) st = fout_begin(c, c->out[0], &y);
    for (int64_t p = 0; p < planes && st == AIM_OK; p++) {
        double mean, var;
        moments(x.p + p * size, 1, size, size, &mean, &var);
        normalize_plane(x.p + p * size, y.p + p * size, size, mean, var, eps, scale.p[p % ch],
                        bias.p[p % ch]);
    }
    fout_end(&y, st == AIM_OK);
    fin_free(&x);
    fin_free(&scale);
    fin_free(&bias);
    return st;
}

/* ---- LayerNormalization -------------------------------------------------------------------- */

/* Checks Scale/B broadcast one way to the normalised shape x[axis:]. */
static aim_status check_layernorm_param(const aim_op_ctx *c, int i, int axis) {
    const aim_tensor *x = c->in[0], *t = c->in[i];
    aim_status st = check_known(c, t, i == 1 ? "Scale" : "B");
    if (st == AIM_OK) st = check_float(c, t, i == 1 ? "Scale" : "B");
    if (st != AIM_OK) return st;
    bool ok = t->rank <= x->rank - axis;
    for (int d = 0; ok && d < t->rank; d++) {
        int64_t want = x->dims[x->rank - t->rank + d];
        ok = t->dims[d] == want || t->dims[d] == 1;
    }
    if (!ok)
        return aim_op_fail(c, AIM_ERR_PARSE, "%s does not broadcast to the normalised shape",
                           i == 1 ? "Scale" : "B");
    return AIM_OK;
}

static aim_status layernorm_shape(const aim_op_ctx *c, int *axis) {
    aim_status st = aim_op_check_inputs(c, 2, 3);
    if (st == AIM_OK) st = check_nc_input(c, 1);
    if (st == AIM_OK) st = aim_op_axis(c, aim_op_attr_int(c, "axis", -1), c->in[0]->rank, axis);
    if (st == AIM_OK) st = check_layernorm_param(c, 1, *axis);
    if (st == AIM_OK && aim_op_input(c, 2)) st = check_layernorm_param(c, 2, *axis);
    if (st == AIM_OK && c->n_out > 3)
        st = aim_op_fail(c, AIM_ERR_PARSE, "has %d outputs", c->n_out);
    int64_t stash = aim_op_attr_int(c, "stash_type", 1);
    if (st == AIM_OK && stash != AIM_DTYPE_FLOAT && stash != AIM_DTYPE_DOUBLE)
        st = aim_op_fail(c, AIM_ERR_UNSUPPORTED, "stash_type %lld", (long long)stash);
    return st;
}

static aim_status layernorm_infer(aim_op_ctx *c) {
    int axis;
    aim_status st = layernorm_shape(c, &axis);
    if (st != AIM_OK) return st;
    const aim_tensor *x = c->in[0];
    int64_t dims[AIM_MAX_RANK];
    for (int d = 0; d < x->rank; d++)
        dims[d] = d < axis ? x->dims[d] : 1;
    int stash = (int)aim_op_attr_int(c, "stash_type", 1);
    st = aim_op_set_output(c, 0, x->dtype, x->rank, x->dims);
    if (st == AIM_OK) st = aim_op_set_output(c, 1, stash, x->rank, dims);
    if (st == AIM_OK) st = aim_op_set_output(c, 2, stash, x->rank, dims);
    return st;
}

/* Expands Scale or B to one value per element of the normalised block. */
static void expand_param(const aim_tensor *x, int axis, const aim_tensor *t, const float *v,
                         float *out, int64_t size) {
    int rank = x->rank - axis;
    int64_t strides[AIM_MAX_RANK], idx[AIM_MAX_RANK] = {0};
    aim_op_broadcast_strides(t, rank, x->dims + axis, strides);
    for (int64_t i = 0; i < size; i++) {
        int64_t at = 0;
        for (int d = 0; d < rank; d++)
            at += idx[d] * strides[d];
        out[i] = v[at];
        for (int d = rank - 1; d >= 0; d--) {
            if (++idx[d] < x->dims[axis + d]) break;
            idx[d] = 0;
        }
    }
}

static aim_status layernorm_run(aim_op_ctx *c) {
    int axis;
    aim_status st = layernorm_shape(c, &axis);
    if (st != AIM_OK) return st;
    const aim_tensor *xt = c->in[0], *bt = aim_op_input(c, 2);
    int64_t rows = product(xt->dims, axis), size = product(xt->dims + axis, xt->rank - axis);
    double eps = aim_op_attr_float(c, "epsilon", 1e-5f);
    fin x = {0}, scale = {0}, bias = {0};
    fout y = {0}, stats[2] = {{0}};
    float *expanded = malloc((size_t)(2 * size + 1) * sizeof *expanded);
    if (!expanded)
        return aim_op_fail(c, AIM_ERR_NOMEM, "cannot allocate %lld floats", (long long)size);
    if ((st = fin_load(c, xt, &x)) == AIM_OK && (st = fin_load(c, c->in[1], &scale)) == AIM_OK &&
        (!bt || (st = fin_load(c, bt, &bias)) == AIM_OK))
        st = fout_begin(c, c->out[0], &y);
    for (int i = 0; i < 2 && st == AIM_OK; i++)
        if (c->n_out > i + 1 && c->out[i + 1]) st = fout_begin(c, c->out[i + 1], &stats[i]);
    if (st == AIM_OK) {
        expand_param(xt, axis, c->in[1], scale.p, expanded, size);
        if (bt)
            expand_param(xt, axis, bt, bias.p, expanded + size, size);
        else
            memset(expanded + size, 0, (size_t)size * sizeof *expanded);
    }
    for (int64_t r = 0; r < rows && st == AIM_OK; r++) {
        const float *xr = x.p + r * size;
        float *yr = y.p + r * size;
        double mean, var;
        moments(xr, 1, size, size, &mean, &var);
        float inv = (float)(1.0 / sqrt(var + eps)), m = (float)mean;
        for (int64_t i = 0; i < size; i++)
            yr[i] = (xr[i] - m) * inv * expanded[i] + expanded[size + i];
        if (stats[0].p) stats[0].p[r] = m;
        if (stats[1].p) stats[1].p[r] = inv;
    }
    fout_end(&y, st == AIM_OK);
    for (int i = 0; i < 2; i++)
        fout_end(&stats[i], st == AIM_OK);
    fin_free(&x);
    fin_free(&scale);
    fin_free(&bias);
    free(expanded);
    return st;
}

/* ---- LRN ----------------------------------------------------------------------------------- */

static aim_status lrn_prepare(aim_op_ctx *c) {
    int64_t size = aim_op_attr_int(c, "size", 0);
    if (size < 1 || size > MAX_WINDOW_VALUE)
        return aim_op_fail(c, AIM_ERR_PARSE, "attribute size must be a positive count");
    return AIM_OK;
}

static aim_status lrn_infer(aim_op_ctx *c) {
    aim_status st = aim_op_check_inputs(c, 1, 1);
    if (st == AIM_OK) st = lrn_prepare(c);
    if (st == AIM_OK) st = check_nc_input(c, 3);
    if (st != AIM_OK) return st;
    return aim_op_set_output(c, 0, c->in[0]->dtype, c->in[0]->rank, c->in[0]->dims);
}

static aim_status lrn_run(aim_op_ctx *c) {
    const aim_tensor *xt = c->in[0];
    int64_t n = xt->dims[0], ch = xt->dims[1], size = product(xt->dims + 2, xt->rank - 2);
    int64_t window = aim_op_attr_int(c, "size", 1);
    int64_t before = (window - 1) / 2, after = window - 1 - before;
    double alpha = aim_op_attr_float(c, "alpha", 1e-4f), beta = aim_op_attr_float(c, "beta", 0.75f);
    double bias = aim_op_attr_float(c, "bias", 1.0f);
    fin x = {0};
    fout y = {0};
    aim_status st = fin_load(c, xt, &x);
    if (st == AIM_OK) st = fout_begin(c, c->out[0], &y);
    for (int64_t b = 0; b < n && st == AIM_OK; b++)
        for (int64_t k = 0; k < ch; k++)
            for (int64_t i = 0; i < size; i++) {
                const float *base = x.p + b * ch * size + i;
                double sq = 0;
                for (int64_t j = max64(0, k - before); j <= min64(ch - 1, k + after); j++)
                    sq += (double)base[j * size] * base[j * size];
                y.p[(b * ch + k) * size + i] =
                    (float)(base[k * size] / pow(bias + alpha / (double)window * sq, beta));
            }
    fout_end(&y, st == AIM_OK);
    fin_free(&x);
    return st;
}

/* ---- Table --------------------------------------------------------------------------------- */

const aim_op_def aim_ops_nn[] = {
    {"Conv", "", 1, 18, window_prepare, conv_infer, conv_run, NULL},
    {"ConvTranspose", "", 1, 18, window_prepare, convtranspose_infer, convtranspose_run, NULL},
    {"AveragePool", "", 1, 18, window_prepare, averagepool_infer, averagepool_run, NULL},
    {"MaxPool", "", 1, 18, window_prepare, maxpool_infer, maxpool_run, NULL},
    {"GlobalAveragePool", "", 1, 18, NULL, global_pool_infer, globalaveragepool_run, NULL},
    {"GlobalMaxPool", "", 1, 18, NULL, global_pool_infer, globalmaxpool_run, NULL},
    {"Gemm", "", 1, 18, NULL, gemm_infer, gemm_run, NULL},
    {"MatMul", "", 1, 18, NULL, matmul_infer, matmul_run, NULL},
    {"BatchNormalization", "", 1, 18, NULL, batchnorm_infer, batchnorm_run, NULL},
    {"InstanceNormalization", "", 1, 18, NULL, instancenorm_infer, instancenorm_run, NULL},
    {"LayerNormalization", "", 17, 18, NULL, layernorm_infer, layernorm_run, NULL},
    {"LRN", "", 1, 18, lrn_prepare, lrn_infer, lrn_run, NULL},
    {0},
};
