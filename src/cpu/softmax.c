/*
 * softmax.c: the fast Softmax and LogSoftmax kernel, aim's own code rather than a oneDNN
 * primitive: oneDNN 2.6 has a fast softmax only along the innermost axis and falls back to a
 * scalar reference implementation elsewhere (YOLOv8's box head normalises along axis 1 of
 * [1,16,4,8400]: 84 ms there against 1.6 ms here, one thread, `aim bench --profile`).
 *
 * The tensor is plain row-major, seen as [outer, lane, inner] around the axis. With inner == 1
 * each lane is contiguous (short lanes are handled a block of lanes at a time); otherwise tiles
 * of up to TILE neighbouring lanes are normalised together, so every loop runs over contiguous
 * memory and the compiler vectorises it. exp is computed by aim_cpu_exp_neg (internal.h; relative
 * error at most 2.6e-7), which vectorises where libm's expf does not. Work is split over threads by
 * lanes (aim_cpu_parallel_for).
 */
#include "cpu/internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define TILE        256  /* neighbouring lanes normalised together along a strided axis */
#define SHORT_LANE  16   /* contiguous lanes shorter than this go through lanes_short */
#define SHORT_BLOCK 4096 /* elements lanes_short handles at once */

/* y[k] = exp(x[k] - max) for k < n; returns their sum. */
static float exp_shifted(const float *restrict x, float *restrict y, size_t n, float max) {
    for (size_t k = 0; k < n; k++)
        y[k] = aim_cpu_exp_neg(x[k] - max);
    float part[8] = {0}; /* eight partial sums: a vectorisable order of addition */
    size_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int i = 0; i < 8; i++)
            part[i] += y[k + i];
    float sum = 0;
    for (; k < n; k++)
        sum += y[k];
    for (int i = 0; i < 8; i++)
        sum += part[i];
    return sum;
}

/* `count` short contiguous lanes of n values each (a detector's two class scores per box):
 * one lane at a time would leave exp's long dependency chain scalar and serial, so each lane's
 * maximum is spread over its elements first and exp runs once over the whole block. */
static void lanes_short(const float *restrict x, float *restrict y, size_t n, size_t count,
                        bool log_out) {
    float shift[SHORT_BLOCK];
    size_t per = SHORT_BLOCK / n; /* lanes per block */
    for (size_t first = 0; first < count; first += per) {
        size_t lanes = count - first < per ? count - first : per, len = lanes * n;
        const float *restrict in = x + first * n;
        float *restrict out = y + first * n;
        for (size_t l = 0; l < lanes; l++) {
            float max = in[l * n];
            for (size_t k = 1; k < n; k++)
                max = in[l * n + k] > max ? in[l * n + k] : max;
            for (size_t k = 0; k < n; k++)
                shift[l * n + k] = max;
        }
        for (size_t i = 0; i < len; i++)
            out[i] = aim_cpu_exp_neg(in[i] - shift[i]);
        for (size_t l = 0; l < lanes; l++) {
            float sum = 0;
            for (size_t k = 0; k < n; k++)
                sum += out[l * n + k];
            float s = log_out ? shift[l * n] + logf(sum) : 1.0f / sum;
            for (size_t k = 0; k < n; k++)
                shift[l * n + k] = s;
        }
        if (log_out)
            for (size_t i = 0; i < len; i++)
                out[i] = in[i] - shift[i];
        else
            for (size_t i = 0; i < len; i++)
                out[i] *= shift[i];
    }
}

/* One contiguous lane of n values. */
static void lane_contiguous(const float *restrict x, float *restrict y, size_t n, bool log_out) {
    float max = x[0];
    for (size_t k = 1; k < n; k++)
        max = x[k] > max ? x[k] : max;
    float sum = exp_shifted(x, y, n, max);
    if (log_out) {
        float shift = max + logf(sum);
        for (size_t k = 0; k < n; k++)
            y[k] = x[k] - shift;
    } else {
        float inv = 1.0f / sum;
        for (size_t k = 0; k < n; k++)
            y[k] *= inv;
    }
}

/* w neighbouring lanes (w <= TILE) of n values each, `stride` floats apart along the axis:
 * every loop runs along a row of w contiguous floats. */
static void lanes_strided(const float *restrict x, float *restrict y, size_t n, size_t stride,
                          size_t w, bool log_out) {
    float max[TILE], sum[TILE];
    memcpy(max, x, w * sizeof *max);
    for (size_t k = 1; k < n; k++) {
        const float *restrict row = x + k * stride;
        for (size_t j = 0; j < w; j++)
            max[j] = row[j] > max[j] ? row[j] : max[j];
    }
    memset(sum, 0, w * sizeof *sum);
    for (size_t k = 0; k < n; k++) {
        const float *restrict in = x + k * stride;
        float *restrict out = y + k * stride;
        for (size_t j = 0; j < w; j++) {
            out[j] = aim_cpu_exp_neg(in[j] - max[j]);
            sum[j] += out[j];
        }
    }
    if (log_out)
        for (size_t j = 0; j < w; j++)
            max[j] += logf(sum[j]);
    else
        for (size_t j = 0; j < w; j++)
            sum[j] = 1.0f / sum[j];
    for (size_t k = 0; k < n; k++) {
        const float *restrict in = x + k * stride;
        float *restrict out = y + k * stride;
        if (log_out)
            for (size_t j = 0; j < w; j++)
                out[j] = in[j] - max[j];
        else
            for (size_t j = 0; j < w; j++)
                out[j] *= sum[j];
    }
}

typedef struct {
    const aim_cpu_kernel *k;
    const float *x;
    float *y;
    size_t tiles_per_block; /* inner > 1: tiles of TILE lanes per outer block */
} softmax_job;

/* Items [begin, end): lanes when inner == 1 (short ones all at once), else tiles of lanes. */
CPU_CLONES static void softmax_items(void *ctx, size_t begin, size_t end) {
    const softmax_job *j = ctx;
    const aim_cpu_kernel *k = j->k;
    size_t n = k->lane, inner = k->inner;
    if (inner == 1 && n < SHORT_LANE) {
        lanes_short(j->x + begin * n, j->y + begin * n, n, end - begin, k->log_softmax);
        return;
    }
    for (size_t item = begin; item < end; item++) {
        if (inner == 1) {
            lane_contiguous(j->x + item * n, j->y + item * n, n, k->log_softmax);
            continue;
        }
        size_t block = item / j->tiles_per_block, first = item % j->tiles_per_block * TILE;
        size_t w = inner - first < TILE ? inner - first : TILE, at = block * n * inner + first;
        lanes_strided(j->x + at, j->y + at, n, inner, w, k->log_softmax);
    }
}

static void run_softmax(const aim_cpu_kernel *k, void *const *src, void *dst, void *scratch,
                        int threads) {
    (void)scratch;
    softmax_job j = {k, src[0], dst, (k->inner + TILE - 1) / TILE};
    size_t items = k->inner == 1 ? k->outer : k->outer * j.tiles_per_block;
    aim_cpu_parallel_for(threads, items, softmax_items, &j);
}

aim_cpu_kernel *aim_cpu_softmax_create(const aim_cpu_build *b) {
    const aim_tensor *x = aim_cpu_in(b, b->node, 0);
    if (!x || x->dtype != AIM_DTYPE_FLOAT || x->rank < 1 || x->rank > 6) return NULL;
    int rank = x->rank, opset = b->node->opset;
    int64_t axis = aim_cpu_attr_int(b->node, "axis", opset >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) return NULL;
    size_t outer = 1, inner = 1;
    for (int d = 0; d < rank; d++) {
        if (d < axis) outer *= (size_t)x->dims[d];
        if (d > axis) inner *= (size_t)x->dims[d];
    }
    /* Before opset 13 the input is coerced to 2-D at the axis: the same only with inner == 1. */
    if ((opset < 13 && inner != 1) || x->dims[axis] < 1) return NULL;
    aim_cpu_kernel *k = aim_cpu_kernel_new("softmax");
    if (!k) return NULL;
    k->n_src = 1;
    if (aim_cpu_plain_md(&k->src_md[0], rank, x->dims) != dnnl_success) {
        aim_cpu_kernel_free(k);
        return NULL;
    }
    k->dst_md = k->src_md[0];
    k->outer = outer;
    k->lane = (size_t)x->dims[axis];
    k->inner = inner;
    k->log_softmax = aim_cpu_op_is(b->node, "LogSoftmax");
    k->custom = run_softmax;
    return k;
}
