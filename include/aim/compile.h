/*
 * aim/compile.h: compiling part of an ONNX model into an int8 accelerator program.
 *
 *     aim_compile_options o;
 *     aim_compile_result r;
 *     aim_compile_options_init(&o);
 *     const char *imgs[] = {"a.jpg", "b.png"};
 *     o.images = imgs; o.image_count = 2;
 *     if (aim_compile(model, &o, &r) != AIM_OK) { puts(aim_last_error()); return 1; }
 *     aim_model_save(r.model, "det.cpu-int8.onnx");   // one AimProgram node inside
 *     fputs(r.logs_json, logf);
 *     aim_compile_result_free(&r);
 *
 * Steps: pick the region (between start/end nodes, or the largest quantizable region), fold
 * BatchNormalization and fuse activations/residual adds, run the fp32 model on the calibration
 * images with the region's tensors exposed and collect statistics, choose scales (minmax,
 * percentile, entropy, mse, or "auto": each tried, the best agreement with fp32 on held-out images
 * wins), equalize the channel ranges of Conv pairs (src/compile/equalize.c), quantize weights
 * per output channel, correct the biases for the weight rounding (src/compile/biascorr.c),
 * lower to an aim_program (src/cpu/program.h; a Conv that produces a region output writes it
 * as float32, unclipped),
 * and replace the region by one `AimProgram` node (domain ai.aim) carrying the serialized
 * program. Everything outside the region stays ordinary ONNX; graph inputs and outputs keep
 * their names and shapes; metadata_props gets chip=<target>.
 *
 * Quantization scheme: activations uint8 asymmetric (real = scale * (q - zero_point)), one scale
 * per tensor; weights int8 symmetric per output channel; bias int32 in units of
 * input_scale * weight_scale[c].
 */
#ifndef AIM_COMPILE_H
#define AIM_COMPILE_H

#include "aim/model.h"
#include "aim/status.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Targets aim_compile can produce (a subset of the `chip` values in src/cli/accel.h). */
#define AIM_COMPILE_TARGETS(X) X("cpu-int8", "aim's int8 CPU program (AimProgram node, oneDNN)")

#define AIM_COMPILE_MAX_NODES 64 /* start / end node names */

typedef enum {
    AIM_CALIB_AUTO = 0, /* try the others, keep the best output agreement on held-out images
                         * (centered cosine: each channel's fp32 mean removed, so clipped
                         * rare strong responses and shifts count) */
    AIM_CALIB_MINMAX,
    AIM_CALIB_PERCENTILE, /* 99.99th percentile of |x| (one-sided for non-negative tensors) */
    AIM_CALIB_ENTROPY,    /* KL-divergence threshold search (TensorRT style) */
    AIM_CALIB_MSE,        /* clipping range with the least expected squared quantization error */
    AIM_CALIB_COUNT
} aim_calib_method;

/* "auto", "minmax", "percentile", "entropy", "mse"; "unknown" outside the enum. */
const char *aim_calib_method_name(aim_calib_method m);
/* Parses a name above; false when unknown. */
bool aim_calib_method_parse(const char *name, aim_calib_method *out);

/* Pre-processing that replaces what the model's doc_string says (the OAAX/Hailo toolchain JSON
 * config fields). Zero fields (and set = false) mean "take it from the model". */
typedef struct {
    bool set;       /* false: use the model's `image-` input and doc_string entirely */
    int width;      /* 0: from the model */
    int height;     /* 0: from the model */
    int channels;   /* 0: from the model; 1 or 3 */
    int nchw;       /* -1: from the model; 1 NCHW; 0 NHWC */
    bool has_norm;  /* means/stds below are valid */
    float means[3]; /* 0..255 scale: input = (pixel - mean) / std */
    float stds[3];
} aim_compile_preproc;

/* Progress: called after each image of a phase ("range", "histogram", "evaluate"): done of
 * total. */
typedef void (*aim_compile_progress_fn)(void *ctx, const char *phase, size_t done, size_t total);

/* Messages while compiling: level 0 info (what was chosen and why), 1 warning (a skipped
 * image, ...). The same messages go into logs.json. */
typedef void (*aim_compile_log_fn)(void *ctx, int level, const char *message);

typedef struct {
    const char *target; /* "cpu-int8" (default); others are refused listing the known ones */
    const char *start_nodes[AIM_COMPILE_MAX_NODES]; /* ONNX node names; none: automatic */
    size_t start_count;
    const char *end_nodes[AIM_COMPILE_MAX_NODES];
    size_t end_count;
    aim_calib_method method;
    size_t calib_size;         /* at most this many images are used; 0: all */
    const char *const *images; /* image file paths (not owned) */
    size_t image_count;
    aim_compile_preproc preproc;
    int threads;                      /* fp32 runs; 0 = all cores */
    aim_compile_progress_fn progress; /* may be NULL */
    void *progress_ctx;
    aim_compile_log_fn log; /* may be NULL */
    void *log_ctx;
    bool report;             /* build the per-layer report */
    double holdout_fraction; /* share of images kept for evaluation (auto/report); 0.2 */
    const char *model_name;  /* for logs/metadata (e.g. the input file); may be NULL */
    const char *output_name; /* for logs only: where the caller will write the model */
    bool no_equalize;        /* skip cross-layer range equalization of Conv pairs */
    bool no_bias_correction; /* skip the per-channel bias correction of region Convs */
    /* Accuracy target of an automatic region (no start/end nodes): the worst SNR, in dB, of the
     * region's boundary tensors (what the post-processing reads) against fp32 on the held-out
     * images. When the whole region misses it, the region is cut shorter (the later nodes stay
     * float32) at the longest cut that meets it, found by bisection over the Conv/Add group
     * ends, one pipeline run per try. 0 disables the search. Default 10. */
    double min_snr_db;
    /* Also try GPTQ rounding of the Conv weights (Hessian-aware, from the Conv inputs on the
     * calibration images) and keep it where the region outputs agree better with fp32 on the
     * held-out images than with round-to-nearest; costs about one more compile. Off by
     * default: it lowered each Conv's own output error 4-6x on the BlazeFace models yet changed
     * no detection result of the accuracy targets. */
    bool gptq;
} aim_compile_options;

/* Defaults: target cpu-int8, auto method, all images, holdout 0.2, no report, min_snr_db 10,
 * no GPTQ. */
void aim_compile_options_init(aim_compile_options *o);

typedef struct {
    aim_model *model;  /* the compiled model (owned; freed by aim_compile_result_free) */
    char *logs_json;   /* OAAX logs.json text (owned) */
    char *report_json; /* per-layer report as JSON, NULL without options.report (owned) */
    char *report_text; /* the same as a text table, NULL without options.report (owned) */
    char *region;      /* human description of the chosen region and why (owned) */
    aim_calib_method method_used; /* the method whose scales were used (never AUTO) */
    size_t images_used;           /* decoded and run */
    size_t images_skipped;        /* unreadable or not images (warned about) */
    size_t region_nodes;          /* ONNX nodes replaced by the AimProgram node */
    double output_cosine; /* mean cosine of region outputs vs fp32 on held-out images, or -1 */
    double output_snr_db; /* worst boundary SNR (see min_snr_db); NAN when not measured */
    double int8_macs;     /* multiply-accumulates per image in the program's Conv nodes */
    double total_macs;    /* ... in every Conv of the automatic region before any cut */
    /* Kept for aim_compile_export_qdq: the original model with the chosen region/scales. */
    void *internal;
} aim_compile_result;

/* Compiles `m` (not modified). On failure *out is zeroed and nothing needs freeing; the message
 * (aim_last_error) says why: unknown target (listing the known ones), a start/end node that does
 * not exist (naming it), nothing quantizable, zero usable images. */
aim_status aim_compile(const aim_model *m, const aim_compile_options *o, aim_compile_result *out);

void aim_compile_result_free(aim_compile_result *r);

/* Writes a standard ONNX QDQ model: the original model where every quantized tensor of the
 * region is followed by a QuantizeLinear/DequantizeLinear pair with the same scales (uint8
 * activations) and the weights are stored as int8 initializers behind DequantizeLinear (per
 * channel, axis 0). Runnable by ONNX Runtime (opset >= 13). The caller frees *out. */
aim_status aim_compile_export_qdq(const aim_compile_result *r, aim_model **out);

#ifdef __cplusplus
}
#endif
#endif
