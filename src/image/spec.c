/*
 * spec.c: what a model's `image-` input wants (layout, size, channels, normalisation from the
 * graph doc_string) and the conversion of an image into that tensor.
 */
#include "aim/image.h"

#include "core/json.h"

#include <stdlib.h>
#include <string.h>

/* Layout and static dims from the shape: NCHW when dim 1 is 1 or 3, else NHWC when dim 3 is. */
static aim_status spec_layout(const aim_value_info *v, aim_image_spec *out) {
    if (v->dtype != AIM_DTYPE_FLOAT || v->rank != 4)
        return aim_error(AIM_ERR_UNSUPPORTED,
                         "image input '%s' must be float32 of rank 4 ([1,C,H,W] or [1,H,W,C])",
                         v->name ? v->name : "");
    int64_t d1 = v->dims[1].value, d3 = v->dims[3].value;
    if (d1 == 1 || d1 == 3) {
        *out = (aim_image_spec){.nchw = true, .channels = (int)d1};
        out->height = (int)(v->dims[2].value > 0 ? v->dims[2].value : -1);
        out->width = (int)(d3 > 0 ? d3 : -1);
    } else if (d3 == 1 || d3 == 3) {
        *out = (aim_image_spec){.nchw = false, .channels = (int)d3};
        out->height = (int)(d1 > 0 ? d1 : -1);
        out->width = (int)(v->dims[2].value > 0 ? v->dims[2].value : -1);
    } else {
        return aim_error(AIM_ERR_UNSUPPORTED,
                         "image input '%s': neither dim 1 nor dim 3 is a channel count of 1 or 3",
                         v->name ? v->name : "");
    }
    return AIM_OK;
}

/* "means" or "vars": one number or one per channel. */
static aim_status read_channels(const aim_json *doc, const char *key, int channels, float *dst) {
    const aim_json *arr = aim_json_get(doc, key);
    size_t n = aim_json_count(arr);
    if (!arr || arr->type != AIM_JSON_ARRAY || (n != 1 && n != (size_t)channels))
        return aim_error(AIM_ERR_PARSE,
                         "doc_string normalisation: '%s' must be an array of 1 or %d numbers", key,
                         channels);
    for (int c = 0; c < channels; c++) {
        double v;
        if (!aim_json_get_number(aim_json_at(arr, n == 1 ? 0 : (size_t)c), &v))
            return aim_error(AIM_ERR_PARSE, "doc_string normalisation: '%s'[%d] is not a number",
                             key, c);
        dst[c] = (float)v;
    }
    return AIM_OK;
}

/* Optional integer field that must agree with a known dim (or fills an unknown one). */
static aim_status merge_dim(const aim_json *doc, const char *key, int *dim) {
    double v;
    if (!aim_json_get_number(aim_json_get(doc, key), &v)) return AIM_OK;
    if (v <= 0 || v > AIM_IMAGE_MAX_SIDE || v != (int)v)
        return aim_error(AIM_ERR_PARSE, "doc_string '%s' is %g, not a usable size", key, v);
    if (*dim > 0 && *dim != (int)v)
        return aim_error(AIM_ERR_PARSE, "doc_string '%s' is %d but the image input has %d", key,
                         (int)v, *dim);
    *dim = (int)v;
    return AIM_OK;
}

static aim_status apply_doc(const aim_json *doc, aim_image_spec *out) {
    if (doc->type != AIM_JSON_OBJECT)
        return aim_error(AIM_ERR_PARSE, "graph doc_string is a JSON %s, not an object",
                         aim_json_type_name(doc->type));
    aim_status st;
    if ((st = merge_dim(doc, "height", &out->height)) != AIM_OK) return st;
    if ((st = merge_dim(doc, "width", &out->width)) != AIM_OK) return st;
    int channels = out->channels;
    if ((st = merge_dim(doc, "channels", &channels)) != AIM_OK) return st;
    double order;
    if (aim_json_get_number(aim_json_get(doc, "order"), &order)) out->order = (int)order;
    if (!aim_json_get(doc, "means") && !aim_json_get(doc, "vars")) return AIM_OK;
    if ((st = read_channels(doc, "means", out->channels, out->means)) != AIM_OK) return st;
    if ((st = read_channels(doc, "vars", out->channels, out->vars)) != AIM_OK) return st;
    for (int c = 0; c < out->channels; c++)
        if (out->vars[c] == 0.f)
            return aim_error(AIM_ERR_PARSE,
                             "doc_string 'vars'[%d] is 0 (input = (pixel - mean) "
                             "/ var)",
                             c);
    out->has_normalisation = true;
    return AIM_OK;
}

aim_status aim_image_spec_parse(const aim_value_info *input, const char *doc_string,
                                aim_image_spec *out) {
    aim_status st = spec_layout(input, out);
    if (st != AIM_OK) return st;
    out->order = -1;
    for (int c = 0; c < 3; c++) {
        out->means[c] = 0.f;
        out->vars[c] = 1.f;
    }
    if (doc_string && doc_string[0]) {
        aim_json *doc;
        if ((st = aim_json_parse(doc_string, strlen(doc_string), &doc)) != AIM_OK)
            return aim_error_context(st, "graph doc_string is not normalisation JSON");
        st = apply_doc(doc, out);
        aim_json_free(doc);
        if (st != AIM_OK) return st;
    }
    if (out->height <= 0 || out->width <= 0)
        return aim_error(AIM_ERR_UNSUPPORTED,
                         "image input '%s' has no static height and width, and the doc_string "
                         "gives none",
                         input->name ? input->name : "");
    return AIM_OK;
}

aim_status aim_image_model_spec(const aim_model *m, aim_image_spec *out) {
    for (size_t i = 0; i < aim_model_input_count(m); i++) {
        aim_value_info v;
        aim_status st = aim_model_input(m, i, &v);
        if (st != AIM_OK) return st;
        if (v.name && strcmp(v.name, "image-") == 0)
            return aim_image_spec_parse(&v, aim_model_doc_string(m), out);
    }
    return aim_error(AIM_ERR_NOT_FOUND, "the model has no input named 'image-'");
}

/* Writes the normalised pixels of a same-channel image into `dst` in the spec's layout. */
static void fill_tensor(const aim_image *img, const aim_image_spec *s, float *dst) {
    size_t plane = (size_t)s->width * (size_t)s->height, c_n = (size_t)s->channels;
    float var[3], mean[3];
    for (size_t c = 0; c < c_n; c++) {
        var[c] = s->vars[c];
        mean[c] = s->means[c];
    }
    for (size_t p = 0; p < plane; p++)
        for (size_t c = 0; c < c_n; c++) {
            float v = ((float)img->data[p * c_n + c] - mean[c]) / var[c];
            dst[s->nchw ? c * plane + p : p * c_n + c] = v;
        }
}

aim_status aim_image_to_tensor(const aim_image *img, const aim_image_spec *spec, aim_tensor *out) {
    memset(out, 0, sizeof *out);
    if (img->width != spec->width || img->height != spec->height)
        return aim_error(AIM_ERR_INVALID_ARG, "image is %dx%d but the model wants %dx%d",
                         img->width, img->height, spec->width, spec->height);
    aim_image conv = {0};
    const aim_image *src = img;
    if (img->channels != spec->channels) {
        aim_status st = aim_image_convert(img, spec->channels, &conv);
        if (st != AIM_OK) return st;
        src = &conv;
    }
    size_t n = (size_t)spec->width * (size_t)spec->height * (size_t)spec->channels;
    float *data = malloc(n * sizeof *data);
    if (!data) {
        aim_image_free(&conv);
        return aim_error(AIM_ERR_NOMEM, "image tensor: out of memory");
    }
    fill_tensor(src, spec, data);
    aim_image_free(&conv);
    out->dtype = AIM_DTYPE_FLOAT;
    out->rank = 4;
    int64_t c = spec->channels, h = spec->height, w = spec->width;
    int64_t dims_nchw[4] = {1, c, h, w}, dims_nhwc[4] = {1, h, w, c};
    memcpy(out->dims, spec->nchw ? dims_nchw : dims_nhwc, sizeof dims_nchw);
    out->data = data;
    return AIM_OK;
}
