/*
 * internal.h: what the files of the image module share: the size limits check done before a
 * decoder allocates pixels, and the per-format decoders behind aim_image_decode.
 */
#ifndef AIM_IMAGE_INTERNAL_H
#define AIM_IMAGE_INTERNAL_H

#include "aim/image.h"

/* AIM_OK when a width x height image is within AIM_IMAGE_MAX_SIDE / AIM_IMAGE_MAX_PIXELS; an
 * AIM_ERR_LIMIT (or AIM_ERR_PARSE for zero sizes) naming `what` otherwise. */
aim_status aim_image_check_size(const char *what, int64_t width, int64_t height);

bool aim_image_is_jpeg(const uint8_t *data, size_t size);
bool aim_image_is_png(const uint8_t *data, size_t size);

/* Decode into natural channels: gray (1) or RGB (3). */
aim_status aim_image_decode_jpeg(const uint8_t *data, size_t size, aim_image *out);
aim_status aim_image_decode_png(const uint8_t *data, size_t size, aim_image *out);

#endif
