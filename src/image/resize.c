/*
 * resize.c: resizing and letterboxing (definitions in aim/image.h).
 *
 * AIM_IMAGE_BILINEAR is Pillow's Image.resize(BILINEAR) reproduced step for step: a triangle
 * filter whose support widens with the reduction factor (so downscaling averages every source
 * pixel instead of skipping some), weights normalised per output pixel and rounded to 22-bit
 * fixed point, a horizontal pass into an 8-bit intermediate image, then a vertical pass.
 * AIM_IMAGE_BILINEAR_2TAP is the classic 2-tap half-pixel bilinear of OpenCV's INTER_LINEAR.
 * For enlargements the two agree up to rounding.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int i0, i1; /* source indices */
    float f;    /* weight of i1 */
} axis_tap;

/* Taps for one axis: out_n positions sampled from in_n. */
static axis_tap *axis_taps(int in_n, int out_n) {
    axis_tap *taps = malloc((size_t)out_n * sizeof *taps);
    if (!taps) return NULL;
    double ratio = (double)in_n / (double)out_n;
    for (int o = 0; o < out_n; o++) {
        double s = ((double)o + 0.5) * ratio - 0.5;
        if (s < 0) s = 0;
        if (s > in_n - 1) s = in_n - 1;
        int i0 = (int)floor(s);
        taps[o].i0 = i0;
        taps[o].i1 = i0 + 1 < in_n ? i0 + 1 : in_n - 1;
        taps[o].f = (float)(s - i0);
    }
    return taps;
}

static uint8_t to_u8(float v) {
    if (v <= 0.f) return 0;
    if (v >= 255.f) return 255;
    return (uint8_t)(v + 0.5f);
}

/* Blends one output row from source rows r0 and r1. */
static void blend_row(const uint8_t *r0, const uint8_t *r1, float fy, const axis_tap *xt, int width,
                      int c, uint8_t *dst) {
    for (int x = 0; x < width; x++) {
        const uint8_t *a = r0 + (size_t)xt[x].i0 * c, *b = r0 + (size_t)xt[x].i1 * c;
        const uint8_t *p = r1 + (size_t)xt[x].i0 * c, *q = r1 + (size_t)xt[x].i1 * c;
        float fx = xt[x].f;
        for (int k = 0; k < c; k++) {
            float top = a[k] + fx * (float)(b[k] - a[k]);
            float bottom = p[k] + fx * (float)(q[k] - p[k]);
            *dst++ = to_u8(top + fy * (bottom - top));
        }
    }
}

static aim_status resize_2tap(const aim_image *src, int width, int height, aim_image *out) {
    aim_status st = aim_image_alloc(out, width, height, src->channels);
    if (st != AIM_OK) return st;
    axis_tap *xt = axis_taps(src->width, width), *yt = axis_taps(src->height, height);
    if (!xt || !yt) {
        free(xt);
        free(yt);
        aim_image_free(out);
        return aim_error(AIM_ERR_NOMEM, "resize: out of memory");
    }
    size_t in_stride = (size_t)src->width * (size_t)src->channels;
    size_t out_stride = (size_t)width * (size_t)src->channels;
    for (int y = 0; y < height; y++)
        blend_row(src->data + (size_t)yt[y].i0 * in_stride,
                  src->data + (size_t)yt[y].i1 * in_stride, yt[y].f, xt, width, src->channels,
                  out->data + (size_t)y * out_stride);
    free(xt);
    free(yt);
    return AIM_OK;
}

/* ---- Pillow-compatible triangle filter ----------------------------------------------------- */

#define FIXED_BITS 22 /* Pillow's PRECISION_BITS for 8-bit images */

typedef struct {
    int *start;   /* first source index of each output index */
    int *count;   /* taps of each output index */
    int32_t *k;   /* taps_max weights per output index, fixed point */
    int taps_max; /* stride of k */
} filter_taps;

static void taps_free(filter_taps *t) {
    free(t->start);
    free(t->count);
    free(t->k);
}

static double triangle(double x) {
    if (x < 0) x = -x;
    return x < 1 ? 1 - x : 0;
}

/* Weights of output index o, as Pillow's precompute_coeffs computes them. */
static void taps_one(filter_taps *t, int in_n, double scale, double fscale, int o, double *w) {
    double support = fscale, center = (o + 0.5) * scale, total = 0;
    int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in_n) hi = in_n;
    int n = hi - lo;
    for (int i = 0; i < n; i++) {
        w[i] = triangle((i + lo - center + 0.5) / fscale);
        total += w[i];
    }
    int32_t *k = t->k + (size_t)o * (size_t)t->taps_max;
    for (int i = 0; i < n; i++) {
        double v = total != 0 ? w[i] / total : 0;
        k[i] = (int32_t)(v * (1 << FIXED_BITS) + (v < 0 ? -0.5 : 0.5));
    }
    t->start[o] = lo;
    t->count[o] = n;
}

static bool taps_make(filter_taps *t, int in_n, int out_n) {
    double scale = (double)in_n / out_n, fscale = scale > 1 ? scale : 1;
    t->taps_max = (int)ceil(fscale) * 2 + 1;
    t->start = malloc((size_t)out_n * sizeof *t->start);
    t->count = malloc((size_t)out_n * sizeof *t->count);
    t->k = calloc((size_t)out_n * (size_t)t->taps_max, sizeof *t->k);
    double *w = malloc((size_t)t->taps_max * sizeof *w);
    bool ok = t->start && t->count && t->k && w;
    for (int o = 0; ok && o < out_n; o++)
        taps_one(t, in_n, scale, fscale, o, w);
    free(w);
    if (!ok) taps_free(t);
    return ok;
}

static uint8_t fixed_to_u8(int64_t acc) {
    int64_t v = acc >> FIXED_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One pass along x (step = channels) or y (step = row stride): dst[o] from src taps. */
static void filter_line(const uint8_t *src, size_t step, const filter_taps *t, int out_n,
                        size_t out_step, int channels, uint8_t *dst) {
    for (int o = 0; o < out_n; o++) {
        const int32_t *k = t->k + (size_t)o * (size_t)t->taps_max;
        const uint8_t *s = src + (size_t)t->start[o] * step;
        for (int c = 0; c < channels; c++) {
            int64_t acc = (int64_t)1 << (FIXED_BITS - 1);
            for (int i = 0; i < t->count[o]; i++)
                acc += (int64_t)s[(size_t)i * step + (size_t)c] * k[i];
            dst[(size_t)o * out_step + (size_t)c] = fixed_to_u8(acc);
        }
    }
}

static aim_status pass_x(const aim_image *src, int width, aim_image *out) {
    aim_status st = aim_image_alloc(out, width, src->height, src->channels);
    filter_taps t;
    if (st != AIM_OK) return st;
    if (!taps_make(&t, src->width, width)) {
        aim_image_free(out);
        return aim_error(AIM_ERR_NOMEM, "resize: out of memory");
    }
    size_t c = (size_t)src->channels;
    for (int y = 0; y < src->height; y++)
        filter_line(src->data + (size_t)y * (size_t)src->width * c, c, &t, width, c, src->channels,
                    out->data + (size_t)y * (size_t)width * c);
    taps_free(&t);
    return AIM_OK;
}

static aim_status pass_y(const aim_image *src, int height, aim_image *out) {
    aim_status st = aim_image_alloc(out, src->width, height, src->channels);
    filter_taps t;
    if (st != AIM_OK) return st;
    if (!taps_make(&t, src->height, height)) {
        aim_image_free(out);
        return aim_error(AIM_ERR_NOMEM, "resize: out of memory");
    }
    size_t c = (size_t)src->channels, stride = (size_t)src->width * c;
    for (int x = 0; x < src->width; x++)
        filter_line(src->data + (size_t)x * c, stride, &t, height, stride, src->channels,
                    out->data + (size_t)x * c);
    taps_free(&t);
    return AIM_OK;
}

static aim_status resize_triangle(const aim_image *src, int width, int height, aim_image *out) {
    aim_image mid = {0};
    const aim_image *cur = src;
    aim_status st = AIM_OK;
    if (width != src->width) {
        if ((st = pass_x(src, width, &mid)) != AIM_OK) return st;
        cur = &mid;
    }
    if (height != src->height)
        st = pass_y(cur, height, out);
    else
        st = aim_image_convert(cur, cur->channels, out);
    aim_image_free(&mid);
    return st;
}

aim_status aim_image_resize_with(const aim_image *src, int width, int height,
                                 aim_image_filter filter, aim_image *out) {
    memset(out, 0, sizeof *out);
    if (!src->data || src->width <= 0 || src->height <= 0)
        return aim_error(AIM_ERR_INVALID_ARG, "resize: empty source image");
    aim_status st = aim_image_check_size("resize", width, height);
    if (st != AIM_OK) return st;
    if (filter == AIM_IMAGE_BILINEAR_2TAP) return resize_2tap(src, width, height, out);
    return resize_triangle(src, width, height, out);
}

aim_status aim_image_resize(const aim_image *src, int width, int height, aim_image *out) {
    return aim_image_resize_with(src, width, height, AIM_IMAGE_BILINEAR, out);
}

/* Copies `content` into `canvas` at (ox, oy); content fits by construction. */
static void paste(aim_image *canvas, const aim_image *content, int ox, int oy) {
    size_t c = (size_t)canvas->channels, row = (size_t)content->width * c;
    for (int y = 0; y < content->height; y++)
        memcpy(canvas->data + ((size_t)(y + oy) * (size_t)canvas->width + (size_t)ox) * c,
               content->data + (size_t)y * row, row);
}

static int scaled_side(int n, double scale, int limit) {
    int v = (int)lround(n * scale);
    if (v < 1) v = 1;
    return v > limit ? limit : v;
}

aim_status aim_image_letterbox(const aim_image *src, int width, int height, uint8_t pad,
                               aim_image_filter filter, aim_image *out,
                               aim_image_letterbox_info *info) {
    aim_status st = aim_image_alloc(out, width, height, src->channels);
    if (st != AIM_OK) return st;
    double sx = (double)width / src->width, sy = (double)height / src->height;
    double scale = sx < sy ? sx : sy;
    int cw = scaled_side(src->width, scale, width), ch = scaled_side(src->height, scale, height);
    aim_image content;
    if ((st = aim_image_resize_with(src, cw, ch, filter, &content)) != AIM_OK) {
        aim_image_free(out);
        return st;
    }
    memset(out->data, pad, (size_t)width * (size_t)height * (size_t)src->channels);
    int ox = (width - cw) / 2, oy = (height - ch) / 2;
    paste(out, &content, ox, oy);
    aim_image_free(&content);
    if (info)
        *info = (aim_image_letterbox_info){
            (double)cw / src->width, (double)ch / src->height, ox, oy, cw, ch};
    return AIM_OK;
}
