/*
 * png.c: PNG decoding and encoding with libpng, both in memory. libpng reports errors through
 * an error function that must not return: ours records the message and longjmps back (libpng's
 * own png_jmpbuf), so corrupt or truncated data becomes AIM_ERR_PARSE. Every colour type is
 * decoded into 8-bit gray or RGB: palettes are expanded, low bit depths widened, 16-bit samples
 * stripped to their high byte, alpha dropped.
 */
#include "internal.h"

#include "core/util.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    char message[256];
    aim_image *out;
    png_bytep *rows;
} png_reader;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_reader *r = png_get_error_ptr(png);
    snprintf(r->message, sizeof r->message, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* warnings are not errors; never print them */
}

static void on_png_read(png_structp png, png_bytep dst, size_t n) {
    png_reader *r = png_get_io_ptr(png);
    if (n > r->size - r->pos) png_error(png, "unexpected end of data (truncated file)");
    memcpy(dst, r->data + r->pos, n);
    r->pos += n;
}

/* Asks libpng for 8-bit gray or RGB whatever the file holds; returns the channel count. */
static int set_transforms(png_structp png, png_infop info) {
    int type = png_get_color_type(png, info);
    if (png_get_bit_depth(png, info) == 16) png_set_strip_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY) png_set_expand_gray_1_2_4_to_8(png);
    if (type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    png_set_packing(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    return (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) ? 1 : 3;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The size declared in IHDR (the first chunk) checked before libpng reads on, so a huge
 * declared size is reported as such even when the rest of the file is missing. */
static aim_status precheck_ihdr(const uint8_t *data, size_t size) {
    if (size < 8 + 8 + 8 || memcmp(data + 12, "IHDR", 4) != 0) return AIM_OK; /* libpng says */
    return aim_image_check_size("PNG", be32(data + 16), be32(data + 20));
}

/* Everything that may longjmp. */
static aim_status read_body(png_structp png, png_infop info, png_reader *r) {
    png_set_user_limits(png, 1000000, 1000000); /* our own limits follow, as AIM_ERR_LIMIT */
    png_set_chunk_malloc_max(png, (png_alloc_size_t)64 << 20);
    png_set_read_fn(png, r, on_png_read);
    png_read_info(png, info);
    aim_status st = aim_image_check_size("PNG", png_get_image_width(png, info),
                                         png_get_image_height(png, info));
    if (st != AIM_OK) return st;
    int channels = set_transforms(png, info);
    int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * (size_t)channels)
        return aim_error(AIM_ERR_INTERNAL, "PNG: unexpected row size after conversion");
    if ((st = aim_image_alloc(r->out, w, h, channels)) != AIM_OK) return st;
    r->rows = malloc((size_t)h * sizeof *r->rows);
    if (!r->rows) return aim_error(AIM_ERR_NOMEM, "PNG: out of memory");
    for (int y = 0; y < h; y++)
        r->rows[y] = r->out->data + (size_t)y * (size_t)w * (size_t)channels;
    png_read_image(png, r->rows);
    return AIM_OK;
}

aim_status aim_image_decode_png(const uint8_t *data, size_t size, aim_image *out) {
    aim_status st = precheck_ihdr(data, size);
    if (st != AIM_OK) return st;
    png_reader *r = calloc(1, sizeof *r); /* on the heap: nothing volatile across longjmp */
    if (!r) return aim_error(AIM_ERR_NOMEM, "PNG: out of memory");
    *r = (png_reader){.data = data, .size = size, .out = out};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, r, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info)
        st = aim_error(AIM_ERR_NOMEM, "PNG: out of memory");
    else if (setjmp(png_jmpbuf(png)))
        st = aim_error(AIM_ERR_PARSE, "corrupt or truncated PNG: %s", r->message);
    else
        st = read_body(png, info, r);
    png_destroy_read_struct(&png, &info, NULL);
    if (st != AIM_OK) aim_image_free(out);
    free(r->rows);
    free(r);
    return st;
}

/* ---- Encoding ------------------------------------------------------------------------------ */

typedef struct {
    aim_strbuf buf;
    char message[256];
    png_bytep *rows;
} png_writer;

static void on_png_write(png_structp png, png_bytep src, size_t n) {
    png_writer *w = png_get_io_ptr(png);
    aim_strbuf_append(&w->buf, (const char *)src, n);
    if (w->buf.failed) png_error(png, "out of memory");
}

static void on_png_flush(png_structp png) {
    (void)png;
}

static void on_png_write_error(png_structp png, png_const_charp msg) {
    png_writer *w = png_get_error_ptr(png);
    snprintf(w->message, sizeof w->message, "%s", msg);
    png_longjmp(png, 1);
}

static aim_status write_body(png_structp png, png_infop info, png_writer *w, const aim_image *img) {
    png_set_write_fn(png, w, on_png_write, on_png_flush);
    int type = img->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB;
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8, type,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    w->rows = malloc((size_t)img->height * sizeof *w->rows);
    if (!w->rows) return aim_error(AIM_ERR_NOMEM, "PNG: out of memory");
    size_t stride = (size_t)img->width * (size_t)img->channels;
    for (int y = 0; y < img->height; y++)
        w->rows[y] = img->data + (size_t)y * stride;
    png_set_rows(png, info, w->rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    return AIM_OK;
}

static aim_status check_writable(const aim_image *img) {
    if (!img->data || (img->channels != 1 && img->channels != 3))
        return aim_error(AIM_ERR_INVALID_ARG, "PNG: image must be 8-bit gray or RGB");
    return aim_image_check_size("PNG", img->width, img->height);
}

aim_status aim_image_encode_png(const aim_image *img, uint8_t **data, size_t *size) {
    aim_status st = check_writable(img);
    if (st != AIM_OK) return st;
    png_writer *w = calloc(1, sizeof *w);
    if (!w) return aim_error(AIM_ERR_NOMEM, "PNG: out of memory");
    aim_strbuf_init(&w->buf);
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, w, on_png_write_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info)
        st = aim_error(AIM_ERR_NOMEM, "PNG: out of memory");
    else if (setjmp(png_jmpbuf(png)))
        st = aim_error(AIM_ERR_INTERNAL, "PNG encoding failed: %s", w->message);
    else
        st = write_body(png, info, w, img);
    png_destroy_write_struct(&png, &info);
    if (st == AIM_OK) {
        *size = w->buf.len;
        *data = (uint8_t *)aim_strbuf_take(&w->buf);
        if (!*data) st = aim_error(AIM_ERR_NOMEM, "PNG: out of memory");
    }
    aim_strbuf_free(&w->buf);
    free(w->rows);
    free(w);
    return st;
}

aim_status aim_image_save_png(const char *path, const aim_image *img) {
    uint8_t *data;
    size_t size;
    aim_status st = aim_image_encode_png(img, &data, &size);
    if (st != AIM_OK) return aim_error_context(st, "%s", path);
    st = aim_file_write_atomic(path, data, size);
    free(data);
    return st;
}
