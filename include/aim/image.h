/*
 * aim/image.h: images for vision models: decoding JPEG and PNG, bilinear resizing and
 * letterboxing, conversion into a model's `image-` tensor with the normalisation of the graph
 * doc_string, drawing boxes and labels, and writing PNG.
 *
 *     aim_image img, small;
 *     aim_image_spec spec;
 *     aim_tensor t;
 *     aim_image_load("faces.jpg", 3, &img);               // 8-bit RGB
 *     aim_image_model_spec(model, &spec);                 // layout, size, means/vars
 *     aim_image_resize(&img, spec.width, spec.height, &small);  // Pillow-style bilinear
 *     aim_image_to_tensor(&small, &spec, &t);             // float32 [1,C,H,W] or [1,H,W,C]
 *     ...  free(t.data); aim_image_free(&small); aim_image_free(&img);
 *
 * Pixels are 8-bit, interleaved, row-major, top row first: gray (1 channel) or RGB (3). Alpha
 * is dropped when decoding (not blended); 16-bit PNG samples keep their high byte.
 *
 * Decoding is defensive: the declared size is checked against AIM_IMAGE_MAX_SIDE and
 * AIM_IMAGE_MAX_PIXELS before any pixel buffer is allocated, and truncated or corrupt data is an
 * error (AIM_ERR_PARSE, AIM_ERR_LIMIT or AIM_ERR_UNSUPPORTED with a message), never an exit.
 * A JPEG whose data ends early is an error too, not a gray-filled image.
 */
#ifndef AIM_IMAGE_H
#define AIM_IMAGE_H

#include "aim/model.h"
#include "aim/status.h"
#include "aim/tensor.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AIM_IMAGE_MAX_SIDE   16384
#define AIM_IMAGE_MAX_PIXELS ((int64_t)1 << 28)
/* Largest image file aim_image_load reads. */
#define AIM_IMAGE_MAX_FILE_BYTES ((size_t)256 << 20)

typedef struct {
    int width, height;
    int channels;  /* 1 (gray) or 3 (RGB) */
    uint8_t *data; /* width * height * channels bytes, malloc'ed */
} aim_image;

/* ---- Lifetime and decoding ----------------------------------------------------------------- */

/* Allocates an image of the given size (pixels zeroed). */
aim_status aim_image_alloc(aim_image *img, int width, int height, int channels);
/* Frees the pixels and zeroes the struct; safe on a zeroed struct. */
void aim_image_free(aim_image *img);

/* Decodes a JPEG or PNG (recognised by its signature). `channels`: 0 keeps the file's own
 * (gray stays gray, everything else becomes RGB), 1 gives gray, 3 gives RGB. */
aim_status aim_image_decode(const void *data, size_t size, int channels, aim_image *out);
/* Reads and decodes a file (at most AIM_IMAGE_MAX_FILE_BYTES); errors name the file. */
aim_status aim_image_load(const char *path, int channels, aim_image *out);

/* Converts between gray and RGB into a new image. RGB to gray uses the BT.601 luma weights
 * (0.299 R + 0.587 G + 0.114 B, rounded); gray to RGB repeats the value. */
aim_status aim_image_convert(const aim_image *src, int channels, aim_image *out);

/* ---- Geometry ------------------------------------------------------------------------------ */

typedef enum {
    /* Pillow's Image.resize(size, BILINEAR), reproduced exactly: a triangle filter of radius
     * max(1, in/out) source pixels around each output pixel's centre (so a reduction averages
     * all the pixels it covers: antialiasing), output centre o maps to source (o + 0.5) * in/out,
     * weights normalised over the taps inside the image, 22-bit fixed point, horizontal pass
     * first into an 8-bit intermediate, then vertical. For enlargements this is the 2-tap
     * formula below. It is what the face-locator's reference tooling used (measured: at most 1
     * level apart on its test input, against 58 for the 2-tap filter). */
    AIM_IMAGE_BILINEAR = 0,
    /* Classic bilinear with half-pixel centres, no antialiasing (OpenCV INTER_LINEAR, ONNX
     * Resize half_pixel): for output column x, sx = (x + 0.5) * in_width / out_width - 0.5,
     * clamped to [0, in_width - 1]; x0 = floor(sx), x1 = min(x0 + 1, in_width - 1),
     * fx = sx - x0; rows likewise; the output is
     *     (1-fy)*((1-fx)*p[y0][x0] + fx*p[y0][x1]) + fy*((1-fx)*p[y1][x0] + fx*p[y1][x1])
     * in float, rounded to the nearest integer. */
    AIM_IMAGE_BILINEAR_2TAP = 1,
} aim_image_filter;

/* Resizes with `filter` into a new image. */
aim_status aim_image_resize_with(const aim_image *src, int width, int height,
                                 aim_image_filter filter, aim_image *out);
/* aim_image_resize_with(..., AIM_IMAGE_BILINEAR, ...): what `aim detect` uses. */
aim_status aim_image_resize(const aim_image *src, int width, int height, aim_image *out);

/* Where a letterboxed image sits in its canvas: canvas = original * scale + offset, so a point
 * maps back with original = (canvas - offset) / scale. */
typedef struct {
    double scale_x, scale_y; /* content size / original size (equal up to rounding) */
    int offset_x, offset_y;  /* top-left corner of the content in the canvas */
    int content_width, content_height;
} aim_image_letterbox_info;

/* Resizes keeping the aspect ratio (scale = min(width/in_w, height/in_h), content size rounded
 * to the nearest pixel, at least 1) and centres the result on a width x height canvas filled
 * with `pad` in every channel. `info` may be NULL. */
aim_status aim_image_letterbox(const aim_image *src, int width, int height, uint8_t pad,
                               aim_image_filter filter, aim_image *out,
                               aim_image_letterbox_info *info);

/* ---- Model input --------------------------------------------------------------------------- */

/* What a model's `image-` input wants. */
typedef struct {
    bool nchw;                   /* [1,C,H,W] (true) or [1,H,W,C] */
    int channels, height, width; /* C is 1 or 3 */
    float means[3], vars[3];     /* per channel, 0..255 scale: input = (pixel - mean) / var */
    bool has_normalisation;      /* the doc_string held means/vars (else 0 and 1) */
    int order; /* doc_string "order" when present, else -1; informational, not applied */
} aim_image_spec;

/* Builds a spec from an image input's declared type and shape and the graph doc_string
 * ("" or NULL: no normalisation). The layout comes from the shape (NCHW when dim 1 is 1 or 3,
 * else NHWC when dim 3 is); H and W come from the shape, or from the doc_string's "height" /
 * "width" where the shape leaves them symbolic, and must agree with it otherwise. "means" and
 * "vars" hold one number (used for every channel) or one per channel; a var of 0 is an error,
 * as is a doc_string that is not a JSON object. */
aim_status aim_image_spec_parse(const aim_value_info *input, const char *doc_string,
                                aim_image_spec *out);

/* aim_image_spec_parse on the model's `image-` input and graph doc_string. */
aim_status aim_image_model_spec(const aim_model *m, aim_image_spec *out);

/* Converts an image of exactly spec->width x spec->height into a float32 tensor of rank 4 in
 * the spec's layout, applying (pixel - mean[c]) / var[c]; gray and RGB are converted to the
 * spec's channel count first. out->data is malloc'ed; the caller frees it. */
aim_status aim_image_to_tensor(const aim_image *img, const aim_image_spec *spec, aim_tensor *out);

/* ---- Drawing and writing ------------------------------------------------------------------- */

/* Draws the outline of the rectangle with corners (x1,y1) and (x2,y2) (inclusive, any order),
 * `thickness` pixels wide inwards, clipped to the image. `rgb` is used as gray's first value. */
void aim_image_draw_rect(aim_image *img, int x1, int y1, int x2, int y2, const uint8_t rgb[3],
                         int thickness);
/* Fills the rectangle (inclusive corners), clipped. */
void aim_image_fill_rect(aim_image *img, int x1, int y1, int x2, int y2, const uint8_t rgb[3]);

/* Glyph cell of the built-in 5x7 font: 5 columns plus 1 of spacing, 7 rows plus 1. */
#define AIM_IMAGE_GLYPH_W 6
#define AIM_IMAGE_GLYPH_H 8
/* Draws text with the built-in 5x7 bitmap font, each font pixel a scale x scale square, top-left
 * corner at (x, y), clipped. Covers digits, letters (lower case drawn as upper case) and
 * ` .,:;-_+=%#()[]/!?'"<>*&@`; other characters are drawn as a hollow box. */
void aim_image_draw_text(aim_image *img, int x, int y, const char *text, const uint8_t rgb[3],
                         int scale);
/* Width in pixels of text drawn at `scale`. */
int aim_image_text_width(const char *text, int scale);

/* Encodes an 8-bit gray or RGB PNG into memory; the caller frees *data. */
aim_status aim_image_encode_png(const aim_image *img, uint8_t **data, size_t *size);
/* Writes a PNG file atomically. */
aim_status aim_image_save_png(const char *path, const aim_image *img);

#ifdef __cplusplus
}
#endif
#endif
