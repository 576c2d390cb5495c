/*
 * quant.h: the quant module: activation statistics from fp32 runs, the choice of scale and zero
 * point (minmax, percentile, entropy), per-output-channel int8 weights, int32 biases, agreement
 * metrics (cosine, SNR), and the standard ONNX QDQ form of a quantized region.
 *
 * Scheme (decided here, used by the compiler and the program contract in src/cpu/program.h):
 *   - activations: uint8, asymmetric, one scale and zero point per tensor. Most tensors in a CNN
 *     follow a ReLU and are non-negative, so asymmetric uint8 spends all 256 levels on the real
 *     range where symmetric int8 would waste half; oneDNN's int8 convolutions take u8 sources
 *     with s8 weights natively (the VNNI form), and a non-zero source zero point (inputs with
 *     negative values) is a supported oneDNN attribute.
 *   - weights: int8, symmetric (zero point 0), one scale per output channel, levels -127..127
 *     (never -128, so negation and the VNNI u8*s8 pair sums cannot overflow).
 *   - biases: int32 in units of input_scale * weight_scale[c].
 *   - the represented range always contains 0, so zero padding is exact.
 *
 * Statistics are collected in two passes over the calibration images: pass 1 the min/max of
 * each tensor, pass 2 a histogram of AIM_QUANT_BINS bins over [min(min,0), max(max,0)].
 */
#ifndef AIM_QUANT_H
#define AIM_QUANT_H

#include "aim/compile.h"
#include "aim/model.h"
#include "aim/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AIM_QUANT_BINS       2048
#define AIM_QUANT_PERCENTILE 99.99
#define AIM_QUANT_LEVELS     256 /* uint8 */

/* ---- Statistics ---------------------------------------------------------------------------- */

typedef struct {
    double min, max; /* over every value seen in pass 1 */
    uint64_t count;  /* values seen in pass 1 */
    double lo, hi;   /* histogram range, fixed by aim_quant_stats_begin_hist */
    uint64_t total;  /* values binned in pass 2 */
    uint64_t bins[AIM_QUANT_BINS];
} aim_quant_stats;

void aim_quant_stats_init(aim_quant_stats *s);
/* Pass 1: widens min/max. NaN values are ignored. */
void aim_quant_stats_observe(aim_quant_stats *s, const float *x, size_t n);
/* Fixes the histogram range from pass 1 (always containing 0). */
void aim_quant_stats_begin_hist(aim_quant_stats *s);
/* Pass 2: bins the values (clamped into the range). */
void aim_quant_stats_hist(aim_quant_stats *s, const float *x, size_t n);

/* ---- Scale choice -------------------------------------------------------------------------- */

typedef struct {
    float lo, hi;       /* the represented real range (lo <= 0 <= hi) */
    float scale;        /* (hi - lo) / 255 */
    int32_t zero_point; /* 0..255 */
} aim_quant_params;

/* uint8 asymmetric parameters for a real range; the range is widened to contain 0 and to at
 * least a tiny width (a constant-zero tensor still gets a valid scale). The zero point is
 * rounded, and lo/hi are moved to what scale and zero point really represent. */
void aim_quant_params_from_range(double lo, double hi, aim_quant_params *out);

/* The clipping range each method picks from the statistics. */
void aim_quant_range_minmax(const aim_quant_stats *s, double *lo, double *hi);
/* Drops (100 - pct)% of the values from each side that holds values (lo stays 0 for
 * non-negative tensors). */
void aim_quant_range_percentile(const aim_quant_stats *s, double pct, double *lo, double *hi);
/* TensorRT-style: of the ranges [z - f*z, z + f*(N - z)] bins around the zero bin z (shrinking
 * both sides by the same fraction f, at least 128 bins wide), the one whose 255-level
 * quantization loses the least information: smallest KL(P || Q), where P is the histogram
 * inside the range with the clipped tails added to its edge bins and Q is P merged into the
 * quantization levels and spread back uniformly over the non-empty bins of each level. */
void aim_quant_range_entropy(const aim_quant_stats *s, double *lo, double *hi);

/* The range of the same family as entropy's (both sides shrunk by one fraction, at least 16
 * bins wide) that minimises the expected squared error of 255-level quantization over the
 * histogram: rounding error step^2 / 12 inside the range, the squared distance to the edge
 * outside (clipping). */
void aim_quant_range_mse(const aim_quant_stats *s, double *lo, double *hi);

/* Method dispatch (AIM_CALIB_AUTO is not a range method: AIM_ERR_INVALID_ARG). */
aim_status aim_quant_choose(const aim_quant_stats *s, aim_calib_method m, aim_quant_params *out);

/* ---- Weights and biases -------------------------------------------------------------------- */

/* Per-output-channel symmetric int8: w is [channels, per_channel]; scales[c] = max|w_c| / 127
 * (1 for an all-zero channel, whose values all quantize to 0); q = clamp(round(w/s), -127, 127). */
void aim_quant_weights(const float *w, size_t channels, size_t per_channel, int8_t *q,
                       float *scales);

/* GPTQ rounding (rounding.c) of `rows` weight rows of length `per` that share the input
 * second-moment matrix h = sum x x^T (per x per, row-major; overwritten): q takes the levels
 * under the given scales that make the layer output error (w - q)^T h (w - q) small, instead
 * of rounding each weight to nearest. False (q unchanged) when h is unusable. */
bool aim_quant_round_gptq(const float *w, size_t rows, size_t per, double *h, const float *scales,
                          int8_t *q);

/* bias[c] = round(b[c] / (input_scale * w_scales[c])), saturated to int32. b may be NULL
 * (all zero). */
void aim_quant_bias(const float *b, size_t channels, float input_scale, const float *w_scales,
                    int32_t *out);

/* ---- Agreement metrics --------------------------------------------------------------------- */

/* Accumulates the sums the metrics need, so a tensor can be compared over several images. */
typedef struct {
    double dot, aa, bb, err; /* sum a*b, a*a, b*b, (a-b)^2; a = reference, b = test */
    uint64_t n;
} aim_quant_agree;

void aim_quant_agree_add(aim_quant_agree *g, const float *ref, const float *test, size_t n);
/* Cosine similarity (1 when both are all zero). */
double aim_quant_agree_cosine(const aim_quant_agree *g);
/* Signal-to-noise ratio in dB: 10 log10(sum ref^2 / sum (ref-test)^2), capped at 200. */
double aim_quant_agree_snr_db(const aim_quant_agree *g);

/* ---- QDQ form ------------------------------------------------------------------------------ */

/* A quantized activation tensor. */
typedef struct {
    const char *name;
    aim_quant_params p;
} aim_quant_act;

/* A quantized weight (and its bias) of one Conv node. */
typedef struct {
    size_t node;         /* index of the Conv node in the graph */
    int64_t dims[4];     /* [O, I/group, KH, KW] */
    const int8_t *q;     /* O * I/group * KH * KW values */
    const float *scales; /* O */
    const int32_t *bias; /* O, or NULL */
    float input_scale;   /* bias unit = input_scale * scales[c] */
} aim_quant_weight;

/* Rewrites `m` in place into the standard QDQ form: every tensor in acts gets a
 * QuantizeLinear/DequantizeLinear pair (uint8, per tensor): a tensor produced by a node is
 * renamed at its producer and the DequantizeLinear output takes its name, so every consumer
 * reads the quantized value; a tensor that is no node's output (a graph input) is only
 * rewired at the nodes marked in `in_region` (indexed like the graph's nodes on entry).
 * Each weight's Conv then reads, when the model imports opset >= 13 (per-axis
 * DequantizeLinear), DequantizeLinear(int8 initializer, per-channel scale, axis 0) and
 * DequantizeLinear(int32 bias, input_scale * scale[c]); below 13, float initializers holding
 * exactly those dequantized values (raising the opset would change other operators'
 * meaning, e.g. Squeeze and ReduceSum). Float initializers nobody reads are removed. */
aim_status aim_quant_make_qdq(aim_model *m, const bool *in_region, const aim_quant_act *acts,
                              size_t n_acts, const aim_quant_weight *weights, size_t n_weights);

#endif
