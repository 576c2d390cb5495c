/*
 * internal.h: the compile module's shared state and the steps aim_compile (compile.c) runs:
 *   1. prepare.c  copy the model, fold BatchNormalization into the Conv before it;
 *   2. graph.c    tensor table (producer, consumers, shapes from one probe run);
 *   3. region.c   pick the region (start/end nodes or the largest quantizable component);
 *   4. fuse.c     group region nodes into program ops (activation / SiLU / residual fusion);
 *      equalize.c rescale Conv pairs per channel so that one activation scale fits all channels;
 *   5. calib.c    decode images, run fp32 with the region's tensors exposed, statistics;
 *   6. lower.c    quantize weights and biases, build and serialize the aim_program;
 *      rounding.c after the method choice: GPTQ re-rounding of the int8 weights from the
 *                 Conv inputs' second moments on the calibration images (kept when better);
 *   7. embed.c    replace the region by one AimProgram node, metadata;
 *   8. report.c   fake-quantized evaluation (QDQ model on aim's session): method choice,
 *                 per-layer agreement, logs.json;
 *      biascorr.c after the method choice: biases corrected for the weight rounding;
 *   9. accuracy.c what the accuracy search measures: the worst SNR of the automatic region's
 *                 boundary tensors on the held-out images (compile.c shortens the region, one
 *                 whole pipeline run per try, until it meets options.min_snr_db).
 * Invariant: node indices always refer to the prepared model's graph (cg->g), whose nodes are
 * not changed after step 1 (equalize.c only points Conv weight/bias inputs at new, rescaled
 * initializers, before any statistics are taken); later edits work on copies.
 */
#ifndef AIM_COMPILE_INTERNAL_H
#define AIM_COMPILE_INTERNAL_H

#include "aim/compile.h"
#include "aim/image.h"
#include "aim/session.h"
#include "core/util.h"
#include "cpu/program.h"
#include "onnx/onnx.h"
#include "quant/edit.h"
#include "quant/quant.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name; /* owned by the prepared model */
    int dtype, rank;  /* from the probe run; rank -1 when never seen */
    int64_t dims[AIM_MAX_RANK];
    int producer; /* node index, -1 for graph inputs and initializers */
    int *consumers;
    size_t n_consumers;
    bool initializer, graph_input, graph_output;
} aim_compile_tensor;

/* How a region node becomes part of a program op. */
typedef struct {
    aim_prog_op_kind kind;
    int x;      /* ACTIVATION: its input tensor */
    int lead;   /* node carrying the op (Conv, Add, pool, ...), -1 outside the region */
    bool emits; /* this node ends its group: the op is emitted here, its output is stored */
    aim_prog_act act;
    float alpha, beta;
    int residual; /* tensor added to a Conv's result (before act), -1 */
    int out;      /* tensor the group writes (the last node's output) */
} aim_compile_group;

typedef struct {
    const aim_compile_options *o;
    aim_model *m; /* prepared model (owned) */
    Onnx__GraphProto *g;
    size_t n_nodes;
    aim_compile_tensor *t;
    size_t n_t;
    int **nin, **nout; /* per node: tensor index of each input / output, -1 for "" */
    const char **why;  /* per node: NULL when quantizable, else the reason */
    bool *in_region;
    size_t region_nodes;
    long cut;        /* an automatic region keeps only nodes with index <= cut; -1: no limit */
    int *rin, *rout; /* region input / output tensors */
    size_t n_rin, n_rout;
    aim_compile_group *grp; /* per node */
    int *acts;              /* quantized tensors (region inputs first), in emission order */
    size_t n_acts;
    aim_strbuf region_text; /* what was chosen and why */
    aim_strbuf log_json;    /* messages for logs.json, one JSON object per line */
    size_t bn_folded;
    /* calibration */
    aim_image_spec spec;
    const char *image_input; /* the model input images feed */
    aim_tensor *images;      /* decoded inputs */
    size_t n_images, n_calib, skipped;
    aim_quant_stats *stats; /* per acts[] entry */
    aim_quant_params *params;
} aim_compile_ctx;

/* compile.c */
void aim_compile_log(aim_compile_ctx *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void aim_compile_progress(aim_compile_ctx *c, const char *phase, size_t done, size_t total);
int aim_compile_tensor_find(const aim_compile_ctx *c, const char *name);
const char *aim_compile_node_label(const aim_compile_ctx *c, size_t node, char *buf, size_t size);

/* prepare.c */
aim_status aim_compile_copy_model(const aim_model *m, aim_model **out);
aim_status aim_compile_fold_bn(aim_compile_ctx *c);

/* graph.c */
/* Decoded copy of float initializer `name` holding exactly `count` values, else NULL (the
 * caller frees it; no error is left set). */
float *aim_compile_read_floats(const aim_compile_ctx *c, const char *name, size_t count);
aim_status aim_compile_graph_build(aim_compile_ctx *c);
aim_status aim_compile_graph_probe(aim_compile_ctx *c);
void aim_compile_graph_free(aim_compile_ctx *c);
/* A session over a copy of a model whose graph outputs are exactly `names`. */
typedef struct {
    aim_model *m; /* the copy (the session reads it) */
    aim_session *s;
} aim_compile_runner;
aim_status aim_compile_runner_open(aim_compile_ctx *c, const aim_model *base,
                                   const char *const *names, size_t n, aim_compile_runner *r);
void aim_compile_runner_close(aim_compile_runner *r);
/* Runs `s` on image i (other inputs get neutral values); outputs in session output order. */
aim_status aim_compile_run_image(aim_compile_ctx *c, aim_session *s, size_t image,
                                 aim_tensor *outputs);
void aim_compile_free_outputs(aim_tensor *outs, size_t n);

/* region.c */
void aim_compile_classify(aim_compile_ctx *c);
aim_status aim_compile_select_region(aim_compile_ctx *c);

/* fuse.c */
aim_status aim_compile_fuse(aim_compile_ctx *c);

/* equalize.c: cross-layer range equalization of Conv pairs (changes the prepared model's
 * weights, not its function); skipped when the options say no_equalize. */
aim_status aim_compile_equalize(aim_compile_ctx *c);

/* calib.c */
aim_status aim_compile_load_images(aim_compile_ctx *c);
aim_status aim_compile_collect(aim_compile_ctx *c);
void aim_compile_choose(aim_compile_ctx *c, aim_calib_method m, aim_quant_params *out);

/* lower.c: weights of every region Conv, quantized once (their scales do not depend on the
 * activation method). */
typedef struct {
    int node;
    int64_t dims[4];
    int8_t *q;
    float *scales;
    float *bias; /* float bias (folded), NULL when the Conv has none */
} aim_compile_weight;
aim_status aim_compile_weights(aim_compile_ctx *c, aim_compile_weight **out, size_t *n);
void aim_compile_weights_free(aim_compile_weight *w, size_t n);
/* Whether region output tensor t leaves the program as float32 straight from its Conv (no
 * requantization, so no clipping to the calibration range): t is a region output written by a
 * CONV group and read by no region node. */
bool aim_compile_float_output(const aim_compile_ctx *c, int t);
/* The Conv's kernel, strides, dilations, pads (auto_pad resolved) and group into op. */
void aim_compile_conv_window(const aim_compile_ctx *c, const aim_compile_weight *w,
                             aim_prog_op *op);
aim_status aim_compile_lower(aim_compile_ctx *c, const aim_quant_params *params,
                             const aim_compile_weight *w, size_t n_w, aim_program **out);

/* rounding.c: re-rounds every region Conv's int8 weights with GPTQ (quant/rounding.c), using
 * the second moments of the Conv's input patches (fp32, rounded to the input's grid in
 * params) on the calibration images; the scales stay. Runs after the method choice, before
 * bias correction; compile.c keeps the result only when the region outputs agree better. */
aim_status aim_compile_round_weights(aim_compile_ctx *c, const aim_quant_params *params,
                                     aim_compile_weight *w, size_t n_w);

/* biascorr.c: subtracts from each region Conv's float bias the expected output drift of its
 * weight rounding, sum (Wq - W) * E[x] per output channel, with the input channel means
 * measured on the calibration images (params is unused, kept for symmetry). */
aim_status aim_compile_bias_correct(aim_compile_ctx *c, const aim_quant_params *params,
                                    aim_compile_weight *w, size_t n_w);

/* embed.c */
aim_status aim_compile_embed(aim_compile_ctx *c, const uint8_t *prog, size_t size,
                             const char *summary_json, aim_model **out);

/* report.c */
aim_status aim_compile_qdq_model(aim_compile_ctx *c, const aim_quant_params *params,
                                 const aim_compile_weight *w, size_t n_w, aim_model **out);
/* Mean cosine of the region outputs, fake-quantized vs fp32, over the held-out images, and
 * (centered, may be NULL) the mean cosine after subtracting the fp32 mean of each channel of
 * each image from both: blind to neither a shift nor clipped rare strong responses, which a
 * large constant part of a tensor (background score logits) hides from the plain cosine. */
aim_status aim_compile_evaluate(aim_compile_ctx *c, const aim_quant_params *params,
                                const aim_compile_weight *w, size_t n_w, double *cosine,
                                double *centered);
/* Per-layer agreement with fp32 (fake quantization) and of the region outputs of the lowered
 * program (reference executor). */
aim_status aim_compile_report(aim_compile_ctx *c, const aim_quant_params *params,
                              const aim_compile_weight *w, size_t n_w, const aim_program *p,
                              char **json, char **text);

/* accuracy.c: the worst (lowest) SNR in dB, over `names`, of `test` against `ref` on the
 * held-out images (all images when none is held out). */
aim_status aim_compile_boundary_snr(aim_compile_ctx *c, const aim_model *ref, const aim_model *test,
                                    const char *const *names, size_t n, double *worst_db);
/* Multiply-accumulates of the region's Conv nodes (one image). */
double aim_compile_region_macs(const aim_compile_ctx *c);
/* Where a region may be cut: the indices of region nodes that end a Conv or Add group, in graph
 * order (cuts has room for n_nodes entries). */
size_t aim_compile_cut_points(const aim_compile_ctx *c, long *cuts);

#endif
