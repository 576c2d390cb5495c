/*
 * image.c: the image struct's lifetime, format detection and dispatch for decoding, file
 * loading, and gray/RGB conversion.
 */
#include "internal.h"

#include "core/util.h"

#include <stdlib.h>
#include <string.h>

aim_status aim_image_check_size(const char *what, int64_t width, int64_t height) {
    if (width <= 0 || height <= 0)
        return aim_error(AIM_ERR_PARSE, "%s: invalid image size %lldx%lld", what, (long long)width,
                         (long long)height);
    if (width > AIM_IMAGE_MAX_SIDE || height > AIM_IMAGE_MAX_SIDE ||
        width * height > AIM_IMAGE_MAX_PIXELS)
        return aim_error(AIM_ERR_LIMIT,
                         "%s: image of %lldx%lld pixels is larger than aim accepts (at most %d "
                         "per side and %lld pixels)",
                         what, (long long)width, (long long)height, AIM_IMAGE_MAX_SIDE,
                         (long long)AIM_IMAGE_MAX_PIXELS);
    return AIM_OK;
}

aim_status aim_image_alloc(aim_image *img, int width, int height, int channels) {
    memset(img, 0, sizeof *img);
    if (channels != 1 && channels != 3)
        return aim_error(AIM_ERR_INVALID_ARG, "image: %d channels (1 or 3 supported)", channels);
    aim_status st = aim_image_check_size("image", width, height);
    if (st != AIM_OK) return st;
    size_t bytes = (size_t)width * (size_t)height * (size_t)channels;
    img->data = calloc(bytes, 1);
    if (!img->data) return aim_error(AIM_ERR_NOMEM, "image: out of memory (%zu bytes)", bytes);
    img->width = width;
    img->height = height;
    img->channels = channels;
    return AIM_OK;
}

void aim_image_free(aim_image *img) {
    if (!img) return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

bool aim_image_is_jpeg(const uint8_t *data, size_t size) {
    return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

bool aim_image_is_png(const uint8_t *data, size_t size) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    return size >= 8 && memcmp(data, sig, 8) == 0;
}

static void gray_from_rgb(const uint8_t *src, uint8_t *dst, size_t pixels) {
    for (size_t i = 0; i < pixels; i++, src += 3) {
        unsigned v = 299u * src[0] + 587u * src[1] + 114u * src[2];
        dst[i] = (uint8_t)((v + 500) / 1000);
    }
}

static void rgb_from_gray(const uint8_t *src, uint8_t *dst, size_t pixels) {
    for (size_t i = 0; i < pixels; i++, dst += 3)
        dst[0] = dst[1] = dst[2] = src[i];
}

aim_status aim_image_convert(const aim_image *src, int channels, aim_image *out) {
    aim_status st = aim_image_alloc(out, src->width, src->height, channels);
    if (st != AIM_OK) return st;
    size_t pixels = (size_t)src->width * (size_t)src->height;
    if (src->channels == channels)
        memcpy(out->data, src->data, pixels * (size_t)channels);
    else if (channels == 1)
        gray_from_rgb(src->data, out->data, pixels);
    else
        rgb_from_gray(src->data, out->data, pixels);
    return AIM_OK;
}

/* Converts *img in place (by replacement) to `channels` when it differs. */
static aim_status to_channels(aim_image *img, int channels) {
    if (channels == 0 || channels == img->channels) return AIM_OK;
    aim_image conv;
    aim_status st = aim_image_convert(img, channels, &conv);
    aim_image_free(img);
    if (st == AIM_OK) *img = conv;
    return st;
}

aim_status aim_image_decode(const void *data, size_t size, int channels, aim_image *out) {
    const uint8_t *bytes = data;
    memset(out, 0, sizeof *out);
    if (channels != 0 && channels != 1 && channels != 3)
        return aim_error(AIM_ERR_INVALID_ARG, "image: %d channels asked (0, 1 or 3)", channels);
    aim_status st;
    if (size == 0)
        return aim_error(AIM_ERR_PARSE, "empty data: not an image");
    else if (aim_image_is_jpeg(bytes, size))
        st = aim_image_decode_jpeg(bytes, size, out);
    else if (aim_image_is_png(bytes, size))
        st = aim_image_decode_png(bytes, size, out);
    else
        return aim_error(AIM_ERR_UNSUPPORTED, "not a JPEG or PNG image (unknown signature)");
    if (st == AIM_OK) st = to_channels(out, channels);
    return st;
}

aim_status aim_image_load(const char *path, int channels, aim_image *out) {
    uint8_t *data;
    size_t size;
    memset(out, 0, sizeof *out);
    aim_status st = aim_file_read(path, AIM_IMAGE_MAX_FILE_BYTES, &data, &size);
    if (st != AIM_OK) return st;
    st = aim_image_decode(data, size, channels, out);
    free(data);
    if (st != AIM_OK) return aim_error_context(st, "%s", path);
    return AIM_OK;
}
