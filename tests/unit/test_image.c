/*
 * test_image.c: the image module: PNG of every colour type (written with aim's own writer and
 * with libpng directly) decoded back, JPEG written with libjpeg decoded back, truncated and
 * corrupt JPEG/PNG data (every prefix) failing cleanly, declared sizes over the limits refused,
 * both resize filters and letterboxing on small arrays computed by hand, the model input spec
 * and normalisation, drawing, and (when ../shared is there) the resize of faces.jpg against
 * the face-locator's reference input.
 */
#include "aim/image.h"
#include "aim/tensor_io.h"
#include "core/util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jpeglib.h>
#include <png.h>

/* ---- Helpers: writing test files with libpng and libjpeg directly -------------------------- */

typedef struct {
    uint8_t *data;
    size_t size, cap;
} membuf;

static void mem_write(png_structp png, png_bytep src, size_t n) {
    membuf *b = png_get_io_ptr(png);
    if (b->size + n > b->cap) {
        b->cap = (b->size + n) * 2;
        b->data = realloc(b->data, b->cap);
        assert_non_null(b->data);
    }
    memcpy(b->data + b->size, src, n);
    b->size += n;
}

static void mem_flush(png_structp png) {
    (void)png;
}

typedef struct {
    int color_type, bit_depth, interlace;
    png_colorp palette;
    int palette_n;
} png_kind;

/* Writes a w x h PNG whose raw rows (already packed for the bit depth) are in `rows`. */
static membuf write_png_raw(int w, int h, const png_kind *k, const uint8_t *rows, size_t stride) {
    membuf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png))) fail_msg("libpng failed writing the test image");
    png_set_write_fn(png, &b, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, k->bit_depth, k->color_type,
                 k->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (k->palette) png_set_PLTE(png, info, k->palette, k->palette_n);
    png_bytep *rp = malloc((size_t)h * sizeof *rp);
    for (int y = 0; y < h; y++)
        rp[y] = (png_bytep)rows + (size_t)y * stride;
    png_set_rows(png, info, rp);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    free(rp);
    return b;
}

static void decode_ok(const membuf *b, int channels, aim_image *img) {
    aim_status st = aim_image_decode(b->data, b->size, channels, img);
    if (st != AIM_OK) fail_msg("decode failed: %s", aim_last_error());
}

static void assert_pixels(const aim_image *img, int w, int h, int c, const uint8_t *expect) {
    assert_int_equal(img->width, w);
    assert_int_equal(img->height, h);
    assert_int_equal(img->channels, c);
    assert_memory_equal(img->data, expect, (size_t)w * h * c);
}

/* A w x h RGB JPEG of a smooth gradient, quality 95. */
static membuf write_jpeg(int w, int h) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    unsigned char *out = NULL;
    unsigned long size = 0;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &out, &size);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    uint8_t *row = malloc((size_t)w * 3);
    while (c.next_scanline < c.image_height) {
        for (int x = 0; x < w; x++) {
            row[x * 3] = (uint8_t)(x * 255 / (w - 1));
            row[x * 3 + 1] = (uint8_t)(c.next_scanline * 255 / (unsigned)(h - 1));
            row[x * 3 + 2] = 128;
        }
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    return (membuf){out, size, size};
}

/* ---- PNG decoding -------------------------------------------------------------------------- */

static void test_png_own_writer_roundtrip(void **state) {
    (void)state;
    const uint8_t rgb[] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90};
    const uint8_t gray[] = {0, 50, 100, 150, 200, 255};
    for (int c = 1; c <= 3; c += 2) {
        aim_image img, back;
        assert_int_equal(aim_image_alloc(&img, 3, 2, c), AIM_OK);
        memcpy(img.data, c == 3 ? rgb : gray, (size_t)6 * c);
        membuf b = {0};
        assert_int_equal(aim_image_encode_png(&img, &b.data, &b.size), AIM_OK);
        decode_ok(&b, 0, &back);
        assert_pixels(&back, 3, 2, c, img.data);
        aim_image_free(&back);
        aim_image_free(&img);
        free(b.data);
    }
}

static void test_png_gray_types(void **state) {
    (void)state;
    const uint8_t g8[] = {0, 128, 255, 7};
    membuf b = write_png_raw(2, 2, &(png_kind){PNG_COLOR_TYPE_GRAY, 8, 0, NULL, 0}, g8, 2);
    aim_image img;
    decode_ok(&b, 0, &img);
    assert_pixels(&img, 2, 2, 1, g8);
    aim_image_free(&img);
    free(b.data);
    /* 1-bit gray: row 0 = 1,0,1  row 1 = 0,1,1 (packed MSB first) */
    const uint8_t g1[] = {0xA0, 0x60};
    b = write_png_raw(3, 2, &(png_kind){PNG_COLOR_TYPE_GRAY, 1, 0, NULL, 0}, g1, 1);
    decode_ok(&b, 0, &img);
    assert_pixels(&img, 3, 2, 1, (const uint8_t[]){255, 0, 255, 0, 255, 255});
    aim_image_free(&img);
    free(b.data);
    /* 16-bit gray (big-endian samples): high byte kept */
    const uint8_t g16[] = {0x12, 0x34, 0xAB, 0xCD};
    b = write_png_raw(2, 1, &(png_kind){PNG_COLOR_TYPE_GRAY, 16, 0, NULL, 0}, g16, 4);
    decode_ok(&b, 0, &img);
    assert_pixels(&img, 2, 1, 1, (const uint8_t[]){0x12, 0xAB});
    aim_image_free(&img);
    free(b.data);
    /* gray + alpha: alpha dropped */
    const uint8_t ga[] = {10, 255, 20, 0};
    b = write_png_raw(2, 1, &(png_kind){PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, NULL, 0}, ga, 4);
    decode_ok(&b, 0, &img);
    assert_pixels(&img, 2, 1, 1, (const uint8_t[]){10, 20});
    aim_image_free(&img);
    decode_ok(&b, 3, &img); /* asked for RGB */
    assert_pixels(&img, 2, 1, 3, (const uint8_t[]){10, 10, 10, 20, 20, 20});
    aim_image_free(&img);
    free(b.data);
}

static void test_png_color_types(void **state) {
    (void)state;
    aim_image img;
    const uint8_t rgba[] = {1, 2, 3, 255, 4, 5, 6, 0};
    membuf b = write_png_raw(2, 1, &(png_kind){PNG_COLOR_TYPE_RGBA, 8, 0, NULL, 0}, rgba, 8);
    decode_ok(&b, 0, &img);
    assert_pixels(&img, 2, 1, 3, (const uint8_t[]){1, 2, 3, 4, 5, 6});
    aim_image_free(&img);
    decode_ok(&b, 1, &img); /* asked for gray: BT.601 luma */
    assert_pixels(&img, 2, 1, 1, (const uint8_t[]){2, 5});
    aim_image_free(&img);
    free(b.data);
    const uint8_t rgb16[] = {0xFF, 0x00, 0x80, 0x01, 0x00, 0xFF};
    b = write_png_raw(1, 1, &(png_kind){PNG_COLOR_TYPE_RGB, 16, 0, NULL, 0}, rgb16, 6);
    decode_ok(&b, 0, &img);
    assert_pixels(&img, 1, 1, 3, (const uint8_t[]){0xFF, 0x80, 0x00});
    aim_image_free(&img);
    free(b.data);
    png_color pal[3] = {{200, 0, 0}, {0, 150, 0}, {0, 0, 100}};
    const uint8_t idx[] = {2, 0, 1, 1}; /* 8-bit palette indices */
    b = write_png_raw(2, 2, &(png_kind){PNG_COLOR_TYPE_PALETTE, 8, 0, pal, 3}, idx, 2);
    decode_ok(&b, 0, &img);
    assert_pixels(&img, 2, 2, 3, (const uint8_t[]){0, 0, 100, 200, 0, 0, 0, 150, 0, 0, 150, 0});
    aim_image_free(&img);
    free(b.data);
    const uint8_t idx2[] = {0x90}; /* 2-bit palette: 2, 1 */
    b = write_png_raw(2, 1, &(png_kind){PNG_COLOR_TYPE_PALETTE, 2, 0, pal, 3}, idx2, 1);
    decode_ok(&b, 0, &img);
    assert_pixels(&img, 2, 1, 3, (const uint8_t[]){0, 0, 100, 0, 150, 0});
    aim_image_free(&img);
    free(b.data);
}

static void test_png_interlaced(void **state) {
    (void)state;
    enum { W = 9, H = 7 };
    uint8_t px[W * H * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 7);
    membuf b = write_png_raw(W, H, &(png_kind){PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, NULL, 0},
                             px, W * 3);
    aim_image img;
    decode_ok(&b, 0, &img);
    assert_pixels(&img, W, H, 3, px);
    aim_image_free(&img);
    free(b.data);
}

/* ---- Corrupt and hostile inputs ------------------------------------------------------------ */

/* Every proper prefix of a valid file must fail with a message (and not crash or leak). */
static void assert_prefixes_fail(const membuf *b, size_t min_len) {
    for (size_t n = 0; n < b->size; n++) {
        if (n < min_len && n > 0) continue;
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan catches any over-read */
        memcpy(copy, b->data, n);
        aim_image img = {0};
        aim_status st = aim_image_decode(copy, n, 0, &img);
        if (st == AIM_OK) fail_msg("prefix of %zu of %zu bytes decoded", n, b->size);
        assert_true(aim_last_error()[0] != '\0');
        assert_null(img.data);
        free(copy);
    }
}

static void test_png_truncated(void **state) {
    (void)state;
    uint8_t px[16 * 16 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 31 + i / 7);
    membuf b = write_png_raw(16, 16, &(png_kind){PNG_COLOR_TYPE_RGB, 8, 0, NULL, 0}, px, 48);
    /* The IEND chunk (last 12 bytes) is not needed for the pixels: stop before it. */
    membuf body = {b.data, b.size - 12, 0};
    assert_prefixes_fail(&body, 0);
    free(b.data);
}

static void test_png_corrupt(void **state) {
    (void)state;
    uint8_t px[8 * 8];
    memset(px, 99, sizeof px);
    membuf b = write_png_raw(8, 8, &(png_kind){PNG_COLOR_TYPE_GRAY, 8, 0, NULL, 0}, px, 8);
    aim_image img;
    b.data[b.size - 20] ^= 0x55; /* inside IDAT: CRC mismatch */
    assert_int_equal(aim_image_decode(b.data, b.size, 0, &img), AIM_ERR_PARSE);
    assert_non_null(strstr(aim_last_error(), "PNG"));
    free(b.data);
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A PNG signature and IHDR (correct CRC) declaring w x h RGB, and nothing else. */
static size_t huge_png(uint8_t *out, uint32_t w, uint32_t h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    memcpy(out, sig, 8);
    put_be32(out + 8, 13);
    memcpy(out + 12, "IHDR", 4);
    put_be32(out + 16, w);
    put_be32(out + 20, h);
    const uint8_t rest[5] = {8, 2, 0, 0, 0};
    memcpy(out + 24, rest, 5);
    put_be32(out + 29, crc32_of(out + 12, 17));
    return 33;
}

static void test_png_huge_declared(void **state) {
    (void)state;
    uint8_t buf[64];
    aim_image img;
    size_t n = huge_png(buf, 100000, 100000);
    assert_int_equal(aim_image_decode(buf, n, 0, &img), AIM_ERR_LIMIT);
    assert_non_null(strstr(aim_last_error(), "100000x100000"));
    n = huge_png(buf, 16384, 16385);
    assert_int_equal(aim_image_decode(buf, n, 0, &img), AIM_ERR_LIMIT);
    n = huge_png(buf, 0x7FFFFFFF, 1);
    assert_int_not_equal(aim_image_decode(buf, n, 0, &img), AIM_OK);
    n = huge_png(buf, 64, 64); /* allowed size, but the data stops after IHDR */
    assert_int_equal(aim_image_decode(buf, n, 0, &img), AIM_ERR_PARSE);
}

static void test_jpeg_decode(void **state) {
    (void)state;
    membuf b = write_jpeg(32, 24);
    aim_image img;
    decode_ok(&b, 0, &img);
    assert_int_equal(img.width, 32);
    assert_int_equal(img.height, 24);
    assert_int_equal(img.channels, 3);
    /* A smooth gradient survives quality 95 within a few levels. */
    const uint8_t *p = img.data + ((size_t)12 * 32 + 16) * 3;
    assert_in_range(p[0], 16 * 255 / 31 - 6, 16 * 255 / 31 + 6);
    assert_in_range(p[1], 12 * 255 / 23 - 6, 12 * 255 / 23 + 6);
    assert_in_range(p[2], 122, 134);
    aim_image_free(&img);
    decode_ok(&b, 1, &img);
    assert_int_equal(img.channels, 1);
    aim_image_free(&img);
    free(b.data);
}

static void test_jpeg_truncated(void **state) {
    (void)state;
    membuf b = write_jpeg(24, 16);
    membuf body = {b.data, b.size - 2, 0}; /* without the EOI marker is still fine to cut */
    assert_prefixes_fail(&body, 0);
    free(b.data);
}

static void test_jpeg_corrupt(void **state) {
    (void)state;
    membuf b = write_jpeg(24, 16);
    aim_image img;
    uint8_t *bad = malloc(b.size);
    memcpy(bad, b.data, b.size);
    memset(bad + 3, 0x00, 40); /* destroy the segment headers after SOI */
    assert_int_equal(aim_image_decode(bad, b.size, 0, &img), AIM_ERR_PARSE);
    assert_non_null(strstr(aim_last_error(), "JPEG"));
    assert_null(img.data);
    /* garbage after the signature */
    for (size_t i = 3; i < b.size; i++)
        bad[i] = (uint8_t)(i * 131 + 7);
    assert_int_equal(aim_image_decode(bad, b.size, 0, &img), AIM_ERR_PARSE);
    free(bad);
    free(b.data);
}

static void test_not_an_image(void **state) {
    (void)state;
    aim_image img;
    assert_int_equal(aim_image_decode("", 0, 0, &img), AIM_ERR_PARSE);
    assert_int_equal(aim_image_decode("GIF89a......", 12, 0, &img), AIM_ERR_UNSUPPORTED);
    assert_non_null(strstr(aim_last_error(), "not a JPEG or PNG"));
    assert_int_equal(aim_image_load("/nonexistent/x.png", 0, &img), AIM_ERR_IO);
    assert_non_null(strstr(aim_last_error(), "/nonexistent/x.png"));
}

/* ---- Resize -------------------------------------------------------------------------------- */

static aim_image gray_image(int w, int h, const uint8_t *px) {
    aim_image img;
    assert_int_equal(aim_image_alloc(&img, w, h, 1), AIM_OK);
    memcpy(img.data, px, (size_t)w * h);
    return img;
}

static void check_resize(const aim_image *src, int w, int h, aim_image_filter f,
                         const uint8_t *expect) {
    aim_image out;
    assert_int_equal(aim_image_resize_with(src, w, h, f, &out), AIM_OK);
    assert_pixels(&out, w, h, src->channels, expect);
    aim_image_free(&out);
}

static void test_resize_upscale(void **state) {
    (void)state;
    /* 2 -> 4: sx = (x + 0.5) / 2 - 0.5 = -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped 1). */
    aim_image a = gray_image(2, 1, (const uint8_t[]){0, 100});
    const uint8_t row[] = {0, 25, 75, 100};
    check_resize(&a, 4, 1, AIM_IMAGE_BILINEAR_2TAP, row);
    check_resize(&a, 4, 1, AIM_IMAGE_BILINEAR, row);
    aim_image_free(&a);
    /* 2x2 -> 3x3: sx = -1/6 (0), 0.5, 7/6 (1), rows likewise. */
    aim_image b = gray_image(2, 2, (const uint8_t[]){0, 90, 90, 180});
    const uint8_t grid[] = {0, 45, 90, 45, 90, 135, 90, 135, 180};
    check_resize(&b, 3, 3, AIM_IMAGE_BILINEAR_2TAP, grid);
    check_resize(&b, 3, 3, AIM_IMAGE_BILINEAR, grid);
    aim_image_free(&b);
}

static void test_resize_downscale(void **state) {
    (void)state;
    aim_image a = gray_image(4, 1, (const uint8_t[]){0, 100, 200, 40});
    /* 2-tap: sx = 0.5 -> (0+100)/2 = 50; sx = 2.5 -> (200+40)/2 = 120. */
    check_resize(&a, 2, 1, AIM_IMAGE_BILINEAR_2TAP, (const uint8_t[]){50, 120});
    /* Triangle of radius 2 around centres 1 and 3 (pixel centres at i + 0.5):
     * out0 = (0*.75 + 100*.75 + 200*.25) / 1.75 = 71.43; out1 = (100*.25 + 200*.75 + 40*.75)
     * / 1.75 = 117.14. */
    check_resize(&a, 2, 1, AIM_IMAGE_BILINEAR, (const uint8_t[]){71, 117});
    /* To one pixel: a triangle of radius 4 around 2 weighs the centres 0.5 .. 3.5 by .625 .875
     * .875 .625 -> (0*.625 + 100*.875 + 200*.875 + 40*.625) / 3 = 95.83. */
    check_resize(&a, 1, 1, AIM_IMAGE_BILINEAR, (const uint8_t[]){96});
    check_resize(&a, 4, 1, AIM_IMAGE_BILINEAR, a.data); /* same size: a copy */
    aim_image_free(&a);
    /* RGB channels stay separate. */
    aim_image c;
    assert_int_equal(aim_image_alloc(&c, 2, 1, 3), AIM_OK);
    memcpy(c.data, (const uint8_t[]){10, 20, 30, 50, 60, 70}, 6);
    check_resize(&c, 1, 1, AIM_IMAGE_BILINEAR, (const uint8_t[]){30, 40, 50});
    check_resize(&c, 1, 1, AIM_IMAGE_BILINEAR_2TAP, (const uint8_t[]){30, 40, 50});
    aim_image_free(&c);
}

static void test_resize_limits(void **state) {
    (void)state;
    aim_image a = gray_image(1, 1, (const uint8_t[]){5}), out;
    assert_int_equal(aim_image_resize(&a, 0, 4, &out), AIM_ERR_PARSE);
    assert_int_equal(aim_image_resize(&a, 20000, 4, &out), AIM_ERR_LIMIT);
    check_resize(&a, 3, 2, AIM_IMAGE_BILINEAR, (const uint8_t[]){5, 5, 5, 5, 5, 5});
    aim_image_free(&a);
}

static void test_letterbox(void **state) {
    (void)state;
    aim_image a = gray_image(4, 2, (const uint8_t[]){1, 2, 3, 4, 5, 6, 7, 8}), out;
    aim_image_letterbox_info info;
    assert_int_equal(aim_image_letterbox(&a, 4, 4, 114, AIM_IMAGE_BILINEAR, &out, &info), AIM_OK);
    const uint8_t expect[] = {114, 114, 114, 114, 1, 2, 3, 4, 5, 6, 7, 8, 114, 114, 114, 114};
    assert_pixels(&out, 4, 4, 1, expect);
    assert_int_equal(info.offset_x, 0);
    assert_int_equal(info.offset_y, 1);
    assert_true(info.scale_x == 1.0 && info.scale_y == 1.0);
    aim_image_free(&out);
    /* 4x2 into 2x4: scale 0.5, content 2x1 at (0, 1). */
    assert_int_equal(aim_image_letterbox(&a, 2, 4, 0, AIM_IMAGE_BILINEAR, &out, &info), AIM_OK);
    assert_int_equal(info.content_width, 2);
    assert_int_equal(info.content_height, 1);
    assert_int_equal(info.offset_y, 1);
    assert_true(info.scale_x == 0.5);
    assert_int_equal(out.data[0], 0);
    assert_int_not_equal(out.data[2], 0);
    aim_image_free(&out);
    aim_image_free(&a);
}

/* ---- Model input spec and normalisation ---------------------------------------------------- */

static aim_value_info image_info(int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    aim_value_info v = {.name = "image-", .dtype = AIM_DTYPE_FLOAT, .rank = 4};
    int64_t d[4] = {d0, d1, d2, d3};
    for (int i = 0; i < 4; i++)
        v.dims[i].value = d[i];
    return v;
}

static void test_spec_and_nchw(void **state) {
    (void)state;
    aim_value_info v = image_info(1, 3, 2, 2);
    aim_image_spec s;
    assert_int_equal(aim_image_spec_parse(&v, "{\"means\":[10,20,30],\"vars\":[2,4,5]}", &s),
                     AIM_OK);
    assert_true(s.nchw && s.has_normalisation);
    assert_int_equal(s.channels, 3);
    assert_int_equal(s.height, 2);
    assert_int_equal(s.width, 2);
    assert_int_equal(s.order, -1);
    aim_image img;
    assert_int_equal(aim_image_alloc(&img, 2, 2, 3), AIM_OK);
    const uint8_t px[] = {10, 20, 30, 12, 24, 35, 0, 0, 0, 255, 255, 255};
    memcpy(img.data, px, sizeof px);
    aim_tensor t;
    assert_int_equal(aim_image_to_tensor(&img, &s, &t), AIM_OK);
    assert_int_equal(t.rank, 4);
    assert_int_equal(t.dims[1], 3);
    const float *f = t.data;
    /* R plane: (10-10)/2, (12-10)/2, (0-10)/2, (255-10)/2 */
    const float expect[12] = {0, 1, -5, 122.5f, 0, 1, -5, 58.75f, 0, 1, -6, 45};
    for (int i = 0; i < 12; i++)
        assert_float_equal(f[i], expect[i], 1e-6);
    free(t.data);
    aim_image_free(&img);
}

static void test_spec_nhwc_gray(void **state) {
    (void)state;
    aim_value_info v = image_info(1, 2, 2, 1);
    aim_image_spec s;
    assert_int_equal(aim_image_spec_parse(&v, "{\"means\":[100],\"vars\":[50],\"order\":1}", &s),
                     AIM_OK);
    assert_false(s.nchw);
    assert_int_equal(s.channels, 1);
    assert_int_equal(s.order, 1);
    aim_image img; /* RGB in, gray out: BT.601 */
    assert_int_equal(aim_image_alloc(&img, 2, 2, 3), AIM_OK);
    const uint8_t px[] = {200, 200, 200, 0, 0, 0, 255, 0, 0, 100, 100, 100};
    memcpy(img.data, px, sizeof px);
    aim_tensor t;
    assert_int_equal(aim_image_to_tensor(&img, &s, &t), AIM_OK);
    assert_int_equal(t.dims[3], 1);
    const float *f = t.data;
    assert_float_equal(f[0], 2.0f, 1e-6);
    assert_float_equal(f[1], -2.0f, 1e-6);
    assert_float_equal(f[2], (76 - 100) / 50.0f, 1e-6); /* 0.299 * 255 = 76.2 -> 76 */
    assert_float_equal(f[3], 0.0f, 1e-6);
    free(t.data);
    /* wrong size is refused */
    aim_image small;
    assert_int_equal(aim_image_alloc(&small, 1, 2, 3), AIM_OK);
    assert_int_equal(aim_image_to_tensor(&small, &s, &t), AIM_ERR_INVALID_ARG);
    aim_image_free(&small);
    aim_image_free(&img);
}

static void test_spec_doc_rules(void **state) {
    (void)state;
    aim_image_spec s;
    aim_value_info v = image_info(1, 3, 240, 320);
    assert_int_equal(aim_image_spec_parse(&v, "", &s), AIM_OK); /* none: identity */
    assert_false(s.has_normalisation);
    assert_float_equal(s.vars[2], 1.0f, 0);
    assert_int_equal(aim_image_spec_parse(&v,
                                          "{\"channels\": 3, \"height\": 240, \"width\": 320, "
                                          "\"order\": 0, \"means\": [0,0,0], \"vars\": [1,1,1]}",
                                          &s),
                     AIM_OK);
    assert_int_equal(s.order, 0);
    assert_int_equal(aim_image_spec_parse(&v, "{\"means\":[0],\"vars\":[0]}", &s), AIM_ERR_PARSE);
    assert_non_null(strstr(aim_last_error(), "vars"));
    assert_int_equal(aim_image_spec_parse(&v, "{\"means\":[0,0],\"vars\":[1]}", &s), AIM_ERR_PARSE);
    assert_int_equal(aim_image_spec_parse(&v, "not json", &s), AIM_ERR_PARSE);
    assert_non_null(strstr(aim_last_error(), "doc_string"));
    assert_int_equal(aim_image_spec_parse(&v, "[1]", &s), AIM_ERR_PARSE);
    assert_int_equal(aim_image_spec_parse(&v, "{\"height\": 100}", &s), AIM_ERR_PARSE);
    v = image_info(1, 3, -1, -1); /* symbolic H/W: the doc_string fills them */
    assert_int_equal(aim_image_spec_parse(&v, "{}", &s), AIM_ERR_UNSUPPORTED);
    assert_int_equal(aim_image_spec_parse(&v, "{\"height\": 100, \"width\": 50}", &s), AIM_OK);
    assert_int_equal(s.height, 100);
    assert_int_equal(s.width, 50);
    v = image_info(1, 4, 4, 4);
    assert_int_equal(aim_image_spec_parse(&v, "", &s), AIM_ERR_UNSUPPORTED);
    v = image_info(1, 3, 4, 4);
    v.dtype = AIM_DTYPE_UINT8;
    assert_int_equal(aim_image_spec_parse(&v, "", &s), AIM_ERR_UNSUPPORTED);
}

/* ---- Drawing ------------------------------------------------------------------------------- */

static void test_draw(void **state) {
    (void)state;
    aim_image img;
    assert_int_equal(aim_image_alloc(&img, 10, 8, 3), AIM_OK);
    const uint8_t red[3] = {255, 0, 0};
    aim_image_draw_rect(&img, 7, 6, 2, 1, red, 1); /* corners in any order */
    const uint8_t *at = img.data + (1 * 10 + 2) * 3;
    assert_int_equal(at[0], 255);
    assert_int_equal(img.data[(3 * 10 + 4) * 3], 0);   /* inside stays */
    assert_int_equal(img.data[(6 * 10 + 7) * 3], 255); /* far corner */
    assert_int_equal(img.data[(0 * 10 + 0) * 3], 0);
    aim_image_draw_rect(&img, -5, -5, 100, 100, red, 3); /* clipped */
    aim_image_draw_text(&img, -3, 50, "clipped", red, 2);
    aim_image_free(&img);
    assert_int_equal(aim_image_alloc(&img, 12, 8, 1), AIM_OK);
    const uint8_t white[3] = {255, 255, 255};
    aim_image_draw_text(&img, 0, 0, "1", white, 1);
    /* '1' = 0x04,0x0C,0x04,...,0x0E: row 0 has only column 2 set. */
    assert_int_equal(img.data[2], 255);
    assert_int_equal(img.data[1], 0);
    assert_int_equal(img.data[6 * 12 + 1], 255); /* bottom bar */
    assert_int_equal(aim_image_text_width("face 0.99", 2), 9 * 6 * 2);
    aim_image_draw_text(&img, 6, 0, "\x01~", white, 1); /* no glyph: a box, no crash */
    aim_image_free(&img);
}

/* ---- The face-locator's reference input ---------------------------------------------------- */

static void test_face_locator_resize(void **state) {
    (void)state;
    const char *shared = getenv("AIM_SHARED");
    char jpg[1024], pb[1024];
    snprintf(jpg, sizeof jpg, "%s/models/face-locator/faces.jpg", shared ? shared : "../shared");
    snprintf(pb, sizeof pb, "%s/models/face-locator/test_data_set_0/input_0.pb",
             shared ? shared : "../shared");
    FILE *probe = fopen(pb, "rb");
    if (!probe) {
        print_message("SKIPPED: %s not found (set AIM_SHARED)\n", pb);
        skip();
    }
    fclose(probe);
    aim_image img, small;
    aim_tensor ref;
    assert_int_equal(aim_image_load(jpg, 3, &img), AIM_OK);
    assert_int_equal(aim_tensor_load_pb(pb, &ref, NULL), AIM_OK);
    assert_int_equal(ref.dims[2] * ref.dims[3], 240 * 320);
    for (int f = 0; f <= 1; f++) {
        assert_int_equal(aim_image_resize_with(&img, 320, 240, f, &small), AIM_OK);
        const float *r = ref.data;
        double max = 0, sum = 0;
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 240 * 320; p++) {
                double d = r[c * 240 * 320 + p] - small.data[p * 3 + c];
                d = d < 0 ? -d : d;
                max = d > max ? d : max;
                sum += d;
            }
        print_message("faces.jpg -> 320x240 %s vs input_0.pb: max abs diff %g, mean %g\n",
                      f ? "2-tap bilinear" : "Pillow bilinear", max, sum / (3 * 240 * 320));
        if (f == AIM_IMAGE_BILINEAR) assert_true(max <= 1.0);
        aim_image_free(&small);
    }
    free(ref.data);
    aim_image_free(&img);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_own_writer_roundtrip),
        cmocka_unit_test(test_png_gray_types),
        cmocka_unit_test(test_png_color_types),
        cmocka_unit_test(test_png_interlaced),
        cmocka_unit_test(test_png_truncated),
        cmocka_unit_test(test_png_corrupt),
        cmocka_unit_test(test_png_huge_declared),
        cmocka_unit_test(test_jpeg_decode),
        cmocka_unit_test(test_jpeg_truncated),
        cmocka_unit_test(test_jpeg_corrupt),
        cmocka_unit_test(test_not_an_image),
        cmocka_unit_test(test_resize_upscale),
        cmocka_unit_test(test_resize_downscale),
        cmocka_unit_test(test_resize_limits),
        cmocka_unit_test(test_letterbox),
        cmocka_unit_test(test_spec_and_nchw),
        cmocka_unit_test(test_spec_nhwc_gray),
        cmocka_unit_test(test_spec_doc_rules),
        cmocka_unit_test(test_draw),
        cmocka_unit_test(test_face_locator_resize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
