/*
 * jpeg.c: JPEG decoding with libjpeg(-turbo) from memory. libjpeg reports fatal errors through
 * error_exit, which must not return: ours longjmps back to the decoder, which frees what it
 * allocated and returns AIM_ERR_PARSE with libjpeg's message. Corrupt-data warnings (most
 * importantly "premature end of data", which libjpeg would otherwise paper over with gray
 * pixels) are treated as fatal too; only "extraneous bytes before marker" is tolerated.
 */
#include "internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_error;

static void on_error_exit(j_common_ptr cinfo) {
    jpeg_error *err = (jpeg_error *)cinfo->err;
    cinfo->err->format_message(cinfo, err->message);
    longjmp(err->jump, 1);
}

/* msg_level -1 is a corrupt-data warning; higher levels are trace messages. */
static void on_emit_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level >= 0 || cinfo->err->msg_code == JWRN_EXTRANEOUS_DATA) return;
    on_error_exit(cinfo);
}

static void on_output_message(j_common_ptr cinfo) {
    (void)cinfo; /* never print to stderr */
}

typedef struct {
    struct jpeg_decompress_struct cinfo;
    jpeg_error err;
    aim_image *out;
} jpeg_job;

/* Reads header, checks the size, and decodes every scanline. May longjmp. */
static aim_status decode_body(jpeg_job *job, const uint8_t *data, size_t size) {
    struct jpeg_decompress_struct *c = &job->cinfo;
    jpeg_mem_src(c, data, (unsigned long)size);
    jpeg_read_header(c, TRUE);
    aim_status st = aim_image_check_size("JPEG", c->image_width, c->image_height);
    if (st != AIM_OK) return st;
    c->out_color_space = c->jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(c);
    int channels = c->output_components;
    if (channels != 1 && channels != 3)
        return aim_error(AIM_ERR_UNSUPPORTED, "JPEG with %d output components", channels);
    st = aim_image_alloc(job->out, (int)c->output_width, (int)c->output_height, channels);
    if (st != AIM_OK) return st;
    size_t stride = (size_t)c->output_width * (size_t)channels;
    while (c->output_scanline < c->output_height) {
        JSAMPROW row = job->out->data + (size_t)c->output_scanline * stride;
        jpeg_read_scanlines(c, &row, 1);
    }
    jpeg_finish_decompress(c);
    return AIM_OK;
}

aim_status aim_image_decode_jpeg(const uint8_t *data, size_t size, aim_image *out) {
    jpeg_job *job = calloc(1, sizeof *job); /* on the heap: nothing volatile across longjmp */
    if (!job) return aim_error(AIM_ERR_NOMEM, "JPEG: out of memory");
    job->out = out;
    job->cinfo.err = jpeg_std_error(&job->err.base);
    job->err.base.error_exit = on_error_exit;
    job->err.base.emit_message = on_emit_message;
    job->err.base.output_message = on_output_message;
    aim_status st;
    if (setjmp(job->err.jump)) {
        st = aim_error(AIM_ERR_PARSE, "corrupt or truncated JPEG: %s", job->err.message);
    } else {
        jpeg_create_decompress(&job->cinfo);
        st = decode_body(job, data, size);
    }
    jpeg_destroy_decompress(&job->cinfo);
    if (st != AIM_OK) aim_image_free(out);
    free(job);
    return st;
}
