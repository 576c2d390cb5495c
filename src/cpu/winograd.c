/*
 * winograd.c: 3x3, stride-1 convolutions as Winograd F(2x2, 3x3) on AVX2 + FMA, aim's own
 * kernel. Each 2x2 block of outputs (a tile) comes from a 4x4 window of the input; in the
 * transformed domain the 36 multiplications per tile, input and output channel of the direct
 * method become 16, so the work of the big 3x3 convolutions of detectors shrinks by up to 2.25x
 * (oneDNN 2.6 has Winograd only for AVX-512). YOLOv4-tiny's 384->256 conv on 26x26 took
 * 14.7-17.0 ms on oneDNN's jit:avx2 at one thread and takes 8.7-9.6 ms here, its 64-channel
 * conv on 104x104 10.4 ms and 6.7-7.4 ms (`aim bench --profile`, runs minutes apart).
 *
 * The tiles are cut into blocks whose transformed data stays in a core's L2; for each block:
 *   1. input transform: V[xi][tile][ic] = (B^T d B)[xi] for each tile's 4x4 window d;
 *   2. 16 matrix products M[xi] = V[xi] x U[xi], U[xi][ic][oc] being the weights transformed
 *      once at load (G g G^T), in panels of 16 output channels; a 6-tile x 16-channel register
 *      block (12 accumulators) keeps the FMA units busy;
 *   3. output transform: the 2x2 outputs A^T m A, plus bias and the fused post-ops (activations,
 *      residual add), written in the destination's channel-blocked layout.
 * Threads take whole blocks, or work on each block together when blocks are too few to share
 * out evenly (see run_winograd).
 *
 * Accuracy: the transforms only add, subtract and halve, but they sum values several times
 * larger than the inputs, so the rounding error is a few ulps of those sums: on whole models it
 * is of the order of oneDNN's (YOLOv4-tiny against the reference kernels: largest difference
 * 3.0e-6 of the output's range here, 4.1e-6 with oneDNN's direct kernels), on a single layer
 * whose outputs cancel to near 0 it can be larger than a direct sum's (tests: unit
 * test_cpu_equiv test_winograd, e2e fast_equivalence).
 *
 * Used where it pays: AVX2 is oneDNN's best ISA on the machine (with AVX-512, oneDNN's direct
 * kernels are twice as wide; not measured here), channels are multiples of 8, there are enough
 * channels and tiles for the transforms to be cheap next to the products, and every post-op is
 * one this file implements. NULL otherwise, and the caller makes a oneDNN convolution instead.
 */
#include "cpu/avx2.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The 4x4 windows are loops over constants; unrolled, their arrays live in registers. */
#define UNROLL _Pragma("GCC unroll 16")

#define TILES_PER_BLOCK 6 /* tiles per register block of the products */
#define OC_PANEL        16
#define K_CHUNK         256 /* input channels per pass over a weight panel (16 KB, in L1) */
#define MIN_CHANNELS    64  /* fewer input or output channels: the transforms dominate */
#define MIN_TILES       16
#define BLOCK_BYTES     (256 * 1024) /* V and M of a block of tiles: half of a core's L2 */
#define MIN_BLOCK       48

typedef struct {
    int64_t n, ic, oc, h, w, oh, ow, pad_t, pad_l;
    int64_t th, tw, tiles; /* tile rows, tile columns, tiles per image */
    int64_t icp, ocp;      /* ic (a multiple of 8), oc rounded up to OC_PANEL */
    int64_t nb;            /* tiles per block (the work of one thread at a time) */
    int slots;             /* threads the scratch has room for */
    aim_cpu_chan_layout in, out;
    dnnl_memory_desc_t src_md, dst_md; /* the layouts read and written */
    int n_post;
    aim_cpu_post post[AIM_CPU_MAX_POST];
    float *u;                /* [16][ocp / 16][icp][16] transformed weights */
    float *bias;             /* [ocp] */
    int64_t window[4][4];    /* offsets of a 4x4 input window's elements from its corner */
    int64_t *in_at, *out_at; /* aim_cpu_chan_at(8g) for each group g of 8 channels */
} wino;

#ifdef AIM_AVX2

/* ---- Load: the transformed weights --------------------------------------------------------- */

/* U = G g G^T for one 3x3 kernel g, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], written
 * out (halving is exact, so each value is a sum of three rounded once or twice). */
static void transform_kernel(const float *g, float u[16]) {
    float t[4][3];
    for (int j = 0; j < 3; j++) {
        t[0][j] = g[j];
        t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
        t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
        t[3][j] = g[6 + j];
    }
    for (int i = 0; i < 4; i++) {
        u[i * 4 + 0] = t[i][0];
        u[i * 4 + 1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        u[i * 4 + 2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        u[i * 4 + 3] = t[i][2];
    }
}

/* U in the order the products read it, 16 output channels side by side. */
static void transform_weights(wino *p, const float *w) {
    int64_t panels = p->ocp / OC_PANEL;
    for (int64_t o = 0; o < p->oc; o++)
        for (int64_t i = 0; i < p->ic; i++) {
            float u[16];
            transform_kernel(w + (o * p->ic + i) * 9, u);
            for (int xi = 0; xi < 16; xi++)
                p->u[((xi * panels + o / OC_PANEL) * p->icp + i) * OC_PANEL + o % OC_PANEL] = u[xi];
        }
}

/* ---- Phase 1: input transform -------------------------------------------------------------- */

/* One run over one image, and the block of tiles one thread works on. */
typedef struct {
    const wino *p;
    const float *x; /* this image */
    float *y;
    const float *res[AIM_CPU_MAX_POST]; /* residual sources (this image), per post-op */
    char *scratch;                      /* 64-byte aligned, block_bytes per team member */
    bool shared; /* the threads work on each block together, else on blocks of their own */
    size_t blocks, teams;
} wino_run;

typedef struct {
    const wino_run *r;
    float *v, *m;           /* V [16][nb][icp] and M [16][nb][ocp] of this block */
    int64_t t0, n;          /* first tile, tiles */
    int64_t group0, group1; /* the groups of 8 input channels this thread transforms */
    int64_t panel0, panel1; /* the panels of 16 output channels it computes */
} wino_block;

/* B^T d B along one axis: B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
#define BT(d0, d1, d2, d3, e0, e1, e2, e3)                                                         \
    do {                                                                                           \
        e0 = _mm256_sub_ps(d0, d2);                                                                \
        e1 = _mm256_add_ps(d1, d2);                                                                \
        e2 = _mm256_sub_ps(d2, d1);                                                                \
        e3 = _mm256_sub_ps(d1, d3);                                                                \
    } while (0)

/* The 4x4 window at (ih0, iw0) of 8 channels at x, zeros outside the input. */
AVX2 static inline void load_window(const wino *p, const float *x, int64_t ih0, int64_t iw0,
                                    __m256 d[4][4]) {
    const float *at = x + ih0 * p->in.s[2] + iw0 * p->in.s[3];
    if (ih0 >= 0 && iw0 >= 0 && ih0 + 4 <= p->h && iw0 + 4 <= p->w) { /* inside: no tests */
        UNROLL for (int r = 0; r < 4; r++) UNROLL for (int q = 0; q < 4; q++) d[r][q] =
            _mm256_loadu_ps(at + p->window[r][q]);
        return;
    }
    UNROLL for (int r = 0; r < 4; r++) UNROLL for (int q = 0; q < 4; q++) {
        bool inside = ih0 + r >= 0 && ih0 + r < p->h && iw0 + q >= 0 && iw0 + q < p->w;
        d[r][q] = inside ? _mm256_loadu_ps(at + p->window[r][q]) : _mm256_setzero_ps();
    }
}

/* V[xi][t - t0][8g..8g+7] for the block's tiles t, one group g of 8 input channels at a time:
 * each group reads its own rows of the input in order, which the prefetchers follow. */
AVX2 static void input_block(const wino_block *bk) {
    const wino *p = bk->r->p;
    int64_t xi_step = p->nb * p->icp;
    for (int64_t g = bk->group0; g < bk->group1; g++) {
        const float *x = bk->r->x + p->in_at[g];
        float *v = bk->v + 8 * g;
        int64_t th = bk->t0 / p->tw, tw = bk->t0 % p->tw;
        for (int64_t t = 0; t < bk->n; t++, v += p->icp) {
            __m256 d[4][4], e[4][4];
            load_window(p, x, 2 * th - p->pad_t, 2 * tw - p->pad_l, d);
            UNROLL for (int q = 0; q < 4; q++)
                BT(d[0][q], d[1][q], d[2][q], d[3][q], e[0][q], e[1][q], e[2][q], e[3][q]);
            UNROLL for (int r = 0; r < 4; r++)
                BT(e[r][0], e[r][1], e[r][2], e[r][3], d[r][0], d[r][1], d[r][2], d[r][3]);
            UNROLL for (int xi = 0; xi < 16; xi++)
                _mm256_store_ps(v + xi * xi_step, d[xi / 4][xi % 4]);
            if (++tw == p->tw) tw = 0, th++;
        }
    }
}

/* ---- Phase 2: the 16 products -------------------------------------------------------------- */

/* m[t][0..15] (+)= sum over k < kc of v[t][k] * u[k][0..15] for tiles t < nt (at most 6; rows
 * of v are ldv apart, rows of m ldm apart), fetching the kc / 8 cache lines at pf into L2 on
 * the way. The 12 accumulators are spelled out: as arrays, GCC keeps them in memory. */
AVX2 static void block_6x16(const float *v, int64_t ldv, const float *u, int64_t kc, float *m,
                            int64_t ldm, int nt, bool add, const char *pf) {
    /* missing tiles repeat the last one and are not stored */
    const float *r0 = v, *r1 = v + (nt > 1 ? 1 : 0) * ldv, *r2 = v + (nt > 2 ? 2 : nt - 1) * ldv;
    const float *r3 = v + (nt > 3 ? 3 : nt - 1) * ldv, *r4 = v + (nt > 4 ? 4 : nt - 1) * ldv;
    const float *r5 = v + (nt > 5 ? 5 : nt - 1) * ldv;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t k = 0; k < kc; k++, u += OC_PANEL) {
        if (k % 8 == 0) _mm_prefetch(pf + k * 8, _MM_HINT_T1);
        __m256 w0 = _mm256_load_ps(u), w1 = _mm256_load_ps(u + 8), b;
#define FMA2(r, lo, hi)                                                                            \
    b = _mm256_broadcast_ss(r + k);                                                                \
    lo = _mm256_fmadd_ps(b, w0, lo);                                                               \
    hi = _mm256_fmadd_ps(b, w1, hi)
        FMA2(r0, c00, c01);
        FMA2(r1, c10, c11);
        FMA2(r2, c20, c21);
        FMA2(r3, c30, c31);
        FMA2(r4, c40, c41);
        FMA2(r5, c50, c51);
#undef FMA2
    }
    __m256 c[TILES_PER_BLOCK][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                                    {c30, c31}, {c40, c41}, {c50, c51}};
    for (int t = 0; t < nt; t++) {
        float *out = m + t * ldm;
        if (add) {
            c[t][0] = _mm256_add_ps(c[t][0], _mm256_load_ps(out));
            c[t][1] = _mm256_add_ps(c[t][1], _mm256_load_ps(out + 8));
        }
        _mm256_store_ps(out, c[t][0]);
        _mm256_store_ps(out + 8, c[t][1]);
    }
}

/* M[xi] = V[xi] x U[xi] for the block, one panel of 16 output channels at a time, the input
 * channels in chunks that keep the panel's part in L1. U is stored in the order used, and each
 * call fetches a share of the next chunk into L2: deep layers' U does not fit the caches, and
 * the hardware prefetchers alone leave the first tiles of each chunk waiting for memory. */
static void product_block(const wino_block *bk) {
    const wino *p = bk->r->p;
    int64_t panels = p->ocp / OC_PANEL, nb = p->nb;
    for (int64_t xi = 0; xi < 16; xi++)
        for (int64_t panel = bk->panel0; panel < bk->panel1; panel++) {
            const float *v = bk->v + xi * nb * p->icp;
            const float *u = p->u + (xi * panels + panel) * p->icp * OC_PANEL;
            float *m = bk->m + xi * nb * p->ocp + panel * OC_PANEL;
            for (int64_t k0 = 0; k0 < p->icp; k0 += K_CHUNK) {
                int64_t kc = p->icp - k0 < K_CHUNK ? p->icp - k0 : K_CHUNK;
                const float *chunk = u + k0 * OC_PANEL;
                const char *next = (const char *)(chunk + kc * OC_PANEL);
                for (int64_t t = 0; t < bk->n; t += TILES_PER_BLOCK) {
                    int nt = (int)(bk->n - t < TILES_PER_BLOCK ? bk->n - t : TILES_PER_BLOCK);
                    const char *pf = next + t / TILES_PER_BLOCK * kc * 8; /* kc / 8 lines */
                    block_6x16(v + t * p->icp + k0, p->icp, chunk, kc, m + t * p->ocp, p->ocp, nt,
                               k0 > 0, pf);
                }
            }
        }
}

/* ---- Phase 3: output transform and post-ops ------------------------------------------------ */

/* A^T m A along one axis: A^T = [1 1 1 0; 0 1 -1 -1]. */
#define AT(m0, m1, m2, m3, s0, s1)                                                                 \
    do {                                                                                           \
        s0 = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);                                             \
        s1 = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);                                             \
    } while (0)

/* Writes one output position's 8 channels: bias, post-ops, store. */
AVX2 static void output_store(const wino_run *r, __m256 acc, __m256 bias, int64_t at) {
    const wino *p = r->p;
    __m256 y = _mm256_add_ps(acc, bias);
    for (int i = 0; i < p->n_post; i++)
        y = aim_avx2_post(&p->post[i], y, p->post[i].sum ? r->res[i] + at : NULL);
    _mm256_storeu_ps(r->y + at, y);
}

/* The outputs of the block's tiles, one group g of 8 output channels at a time. */
AVX2 static void output_block(const wino_block *bk) {
    const wino *p = bk->r->p;
    int64_t xi_step = p->nb * p->ocp, g1 = p->oc / 8;
    if (g1 > bk->panel1 * (OC_PANEL / 8)) g1 = bk->panel1 * (OC_PANEL / 8);
    for (int64_t g = bk->panel0 * (OC_PANEL / 8); g < g1; g++) {
        const float *m = bk->m + 8 * g;
        __m256 bias = _mm256_load_ps(p->bias + g * 8);
        int64_t th = bk->t0 / p->tw, tw = bk->t0 % p->tw;
        for (int64_t t = 0; t < bk->n; t++, m += p->ocp) {
            __m256 d[16], s[2][4], y[2][2];
            UNROLL for (int xi = 0; xi < 16; xi++) d[xi] = _mm256_load_ps(m + xi * xi_step);
            UNROLL for (int q = 0; q < 4; q++)
                AT(d[q], d[4 + q], d[8 + q], d[12 + q], s[0][q], s[1][q]);
            UNROLL for (int r = 0; r < 2; r++)
                AT(s[r][0], s[r][1], s[r][2], s[r][3], y[r][0], y[r][1]);
            int64_t oh = 2 * th, ow = 2 * tw;
            int64_t at = p->out_at[g] + oh * p->out.s[2] + ow * p->out.s[3];
            int64_t rows = oh + 1 < p->oh ? 2 : 1, cols = ow + 1 < p->ow ? 2 : 1;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t q = 0; q < cols; q++)
                    output_store(bk->r, y[r][q], bias, at + r * p->out.s[2] + q * p->out.s[3]);
            if (++tw == p->tw) tw = 0, th++;
        }
    }
}

/* Scratch of one team member: V then M for a block of nb tiles, each 64-byte aligned. */
static size_t block_bytes(const wino *p, int64_t nb) {
    return (size_t)(16 * nb * (p->icp + p->ocp)) * sizeof(float);
}

/* One block of tiles, with the channel ranges that a share of the threads takes (t of n). */
static wino_block block_for(const wino_run *r, float *scratch, int64_t t0, int64_t t, int64_t n) {
    const wino *p = r->p;
    int64_t groups = p->icp / 8, panels = p->ocp / OC_PANEL;
    return (wino_block){.r = r,
                        .v = scratch,
                        .m = scratch + 16 * p->nb * p->icp,
                        .t0 = t0,
                        .n = p->tiles - t0 < p->nb ? p->tiles - t0 : p->nb,
                        .group0 = groups * t / n,
                        .group1 = groups * (t + 1) / n,
                        .panel0 = panels * t / n,
                        .panel1 = panels * (t + 1) / n};
}

/* Team members [slot, end) each take blocks slot, slot + teams, ... in a scratch of their own. */
static void run_own_blocks(void *ctx, size_t slot, size_t end) {
    const wino_run *r = ctx;
    const wino *p = r->p;
    for (; slot < end; slot++) {
        float *own = (float *)(r->scratch + slot * block_bytes(p, p->nb));
        for (size_t b = slot; b < r->blocks; b += r->teams) {
            wino_block bk = block_for(r, own, (int64_t)b * p->nb, 0, 1);
            input_block(&bk);
            product_block(&bk);
            output_block(&bk);
        }
    }
}

/* The team works on every block together: each member transforms a share of the input
 * channels into the one scratch, then, once all have, computes a share of the output channels
 * (products and output transform). Shares follow the team OpenMP really started. */
static void run_shared_blocks(void *ctx, size_t begin, size_t end) {
    (void)begin, (void)end;
    const wino_run *r = ctx;
    const wino *p = r->p;
    int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
    for (size_t b = 0; b < r->blocks; b++) {
        wino_block bk = block_for(r, (float *)r->scratch, (int64_t)b * p->nb, t, n);
        input_block(&bk);
#pragma omp barrier
        product_block(&bk);
        output_block(&bk);
#pragma omp barrier
    }
}

static void run_winograd(const aim_cpu_kernel *k, void *const *src, void *dst, void *scratch,
                         int threads) {
    const wino *p = k->state;
    wino_run r = {.p = p, .scratch = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63)};
    size_t teams = (size_t)(threads < 1 ? 1 : threads < p->slots ? threads : p->slots);
    r.blocks = (size_t)((p->tiles + p->nb - 1) / p->nb);
    /* Few blocks that do not share out evenly (a deep layer's one block; 3 blocks on 2
     * threads) are worked on by the whole team, rather than cut into smaller blocks that would
     * each stream all of U again. */
    r.shared = teams > 1 && r.blocks % teams && r.blocks < 8 * teams;
    r.teams = r.shared || teams < r.blocks ? teams : r.blocks;
    for (int64_t n = 0; n < p->n; n++) {
        r.x = (const float *)src[0] + n * p->in.s[0];
        r.y = (float *)dst + n * p->out.s[0];
        for (int i = 0, s = 1; i < p->n_post; i++)
            if (p->post[i].sum) r.res[i] = (const float *)src[s++] + n * p->out.s[0];
        aim_cpu_parallel_for((int)r.teams, r.teams, r.shared ? run_shared_blocks : run_own_blocks,
                             &r);
    }
}

/* ---- Choosing and making the kernel -------------------------------------------------------- */

/* The geometry of b's convolution when it is one this file computes; false otherwise. */
static bool wino_geometry(const aim_cpu_build *b, const aim_cpu_conv_geom *c, wino *p) {
    const aim_tensor *x = aim_cpu_in(b, b->node, 0), *y = aim_cpu_out(b);
    if (c->sp != 2 || c->group != 1 || b->plain_dst || x->rank != 4) return false;
    for (int i = 0; i < 2; i++)
        if (c->kernel[i] != 3 || c->strides[i] != 1 || c->dilates[i] != 0) return false;
    *p = (wino){.n = x->dims[0],
                .ic = x->dims[1],
                .oc = y->dims[1],
                .h = x->dims[2],
                .w = x->dims[3],
                .oh = y->dims[2],
                .ow = y->dims[3],
                .pad_t = c->pad_l[0],
                .pad_l = c->pad_l[1]};
    p->th = (p->oh + 1) / 2, p->tw = (p->ow + 1) / 2, p->tiles = p->th * p->tw;
    p->icp = p->ic, p->ocp = (p->oc + OC_PANEL - 1) / OC_PANEL * OC_PANEL;
    /* Blocks whose V and M stay in L2, but of at least MIN_BLOCK tiles: every block streams
     * all of U, which outgrows the caches on deep layers. */
    int64_t nb = BLOCK_BYTES / (16 * (p->icp + p->ocp) * (int64_t)sizeof(float));
    nb = nb < MIN_BLOCK ? MIN_BLOCK : nb;
    int64_t blocks = p->tiles / nb > 1 ? p->tiles / nb : 1; /* blocks of equal size */
    nb = (p->tiles + blocks - 1) / blocks;
    p->nb = (nb + TILES_PER_BLOCK - 1) / TILES_PER_BLOCK * TILES_PER_BLOCK;
    p->slots = omp_get_max_threads(); /* the count the plan makes this kernel for */
    if (p->ic % 8 || p->oc % 8 || p->ic < MIN_CHANNELS || p->oc < MIN_CHANNELS ||
        p->tiles < MIN_TILES)
        return false;
    if (!aim_cpu_own_layouts(b, &p->src_md, &p->dst_md, &p->in, &p->out)) return false;
    return aim_cpu_own_posts(b, &p->dst_md, &p->n_post, p->post);
}

aim_cpu_kernel *aim_cpu_winograd_create(const aim_cpu_build *b, const aim_cpu_conv_geom *c,
                                        const float *w, const float *bias) {
    wino geo;
    if (!wino_geometry(b, c, &geo) || !aim_cpu_avx2_kernels_available()) return NULL;
    size_t u_floats = (size_t)(16 * geo.icp * geo.ocp);
    size_t head = (sizeof geo + 63) / 64 * 64;
    size_t groups = (size_t)(geo.icp / 8 + geo.ocp / 8);
    size_t bytes = head + (u_floats + (size_t)geo.ocp) * sizeof(float) + groups * sizeof(int64_t);
    aim_cpu_kernel *k = aim_cpu_kernel_new("winograd");
    wino *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!k || !p) {
        free(p);
        aim_cpu_kernel_free(k);
        return NULL;
    }
    *p = geo;
    p->u = (float *)((char *)p + head);
    p->bias = p->u + u_floats;
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++)
            p->window[r][q] = r * p->in.s[2] + q * p->in.s[3];
    p->in_at = (int64_t *)(p->bias + p->ocp);
    p->out_at = p->in_at + p->icp / 8;
    for (int64_t g = 0; g < p->icp / 8; g++)
        p->in_at[g] = aim_cpu_chan_at(&p->in, 8 * g);
    for (int64_t g = 0; g < p->ocp / 8; g++)
        p->out_at[g] = aim_cpu_chan_at(&p->out, 8 * g);
    memset(p->u, 0, (u_floats + (size_t)p->ocp) * sizeof(float));
    memcpy(p->bias, bias, (size_t)p->oc * sizeof(float));
    transform_weights(p, w);
    k->state = p;
    aim_cpu_own_io(k, &p->src_md, &p->dst_md, p->n_post, p->post);
    k->scratch_bytes = (size_t)p->slots * block_bytes(p, p->nb) + 64;
    k->custom = run_winograd;
    return k;
}

#else /* not x86-64 with GCC or clang: oneDNN's convolution everywhere */

aim_cpu_kernel *aim_cpu_winograd_create(const aim_cpu_build *b, const aim_cpu_conv_geom *c,
                                        const float *w, const float *bias) {
    (void)b, (void)c, (void)w, (void)bias;
    return NULL;
}

#endif
