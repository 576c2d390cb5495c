/*
 * conventions.h: the manager's model conventions (REFERENCE.md section 2) as code, shared by
 * `aim check` (which reports deviations), `aim io --conform` (which fixes them) and
 * `aim inspect` (which shows them):
 *
 * - inputs `image-` (float32 [1,C,H,W] or [1,H,W,C], C in {1,3}), optional `nms_sensitivity-`
 *   (float32 [1]) and `mask-` (bool [H,W]);
 * - output names `kind-key:value;key:value` with kind scores, alarm or bboxes (bboxes starts with
 *   format:xyxy|xyxyc|xyxysc), then class entries `N:Label`;
 * - opset of the default domain at most 17;
 * - graph doc_string: normalisation JSON {"means": [...], "vars": [...]}.
 */
#ifndef AIM_CLI_CONVENTIONS_H
#define AIM_CLI_CONVENTIONS_H

#include "aim/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AIM_CONV_IMAGE     "image-"
#define AIM_CONV_NMS       "nms_sensitivity-"
#define AIM_CONV_MASK      "mask-"
#define AIM_CONV_MAX_OPSET 17

typedef enum { AIM_OUT_SCORES, AIM_OUT_ALARM, AIM_OUT_BBOXES } aim_out_kind;

/* A parsed output name. */
typedef struct {
    aim_out_kind kind;
    const char *format; /* bboxes: "xyxy", "xyxyc" or "xyxysc"; NULL otherwise */
    int64_t width;      /* bboxes: values per box (4, 5 or 6); scores/alarm: 0 */
    size_t class_count; /* class entries N:Label */
} aim_out_name;

/* Parses an output name against the grammar. On failure writes why (one sentence) into `why`
 * and returns false; `code` (may be NULL) receives "output-name" for grammar errors,
 * "output-kind" for an unknown kind, "output-format" or "output-classes". */
bool aim_conv_parse_output(const char *name, aim_out_name *out, const char **code, char *why,
                           size_t why_size);

/* "scores", "alarm", "bboxes". */
const char *aim_conv_kind_name(aim_out_kind kind);

/* Image layout read from a rank-4 shape: NCHW when dim 1 is 1 or 3, else NHWC when dim 3 is. */
typedef struct {
    bool nchw;
    int64_t c, h, w; /* -1 when not static */
} aim_conv_image;

/* False when v is not rank 4 or neither layout fits. */
bool aim_conv_image_layout(const aim_value_info *v, aim_conv_image *out);

/* True for a float32 rank-4 value whose layout aim_conv_image_layout accepts, or whose channel
 * dims are symbolic: what an image input looks like. */
bool aim_conv_image_like(const aim_value_info *v);

#endif
