/*
 * program.h: aim's compiled int8 program: the in-memory form, its binary format, and its
 * execution. This is the contract between the compiler (which builds a program from a quantized
 * region of an ONNX graph) and the runtime (which executes the `AimProgram` node carrying it).
 *
 * A program is a small static graph: tensors with fixed shapes and quantization parameters, and
 * ops in execution order. Its inputs and outputs are float32 (the region's original interface),
 * so the ONNX nodes before and after it are unchanged; QUANTIZE and DEQUANTIZE ops at its edges
 * convert. Inside, activations are uint8 or int8 with one scale and zero point per tensor
 * (real = scale * (q - zero_point)); weights are int8 with one scale per output channel and zero
 * point 0; biases are int32 in units of input_scale * weight_scale[c].
 *
 * The binary form (docs/program-format.md) is versioned and checksummed, and names the target
 * and the CPU features it needs, so a runtime can refuse a program it cannot run, at load time,
 * with a clear message.
 */
#ifndef AIM_CPU_PROGRAM_H
#define AIM_CPU_PROGRAM_H

#include "aim/status.h"
#include "aim/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The ONNX node that carries a program. */
#define AIM_PROGRAM_OP_TYPE      "AimProgram"
#define AIM_PROGRAM_DOMAIN       "ai.aim"
#define AIM_PROGRAM_ATTR_PROGRAM "program" /* bytes (AttributeProto.s) */
#define AIM_PROGRAM_ATTR_TARGET  "target"  /* string, e.g. "cpu-int8" */

#define AIM_PROGRAM_FORMAT_VERSION 1
#define AIM_PROGRAM_MAX_INPUTS     64
/* The spelling aim_prog_op uses (the struct referred to it without it being defined). */
#define AIM_PROG_MAX_INPUTS AIM_PROGRAM_MAX_INPUTS

/* CPU features a program may require (bit mask). */
enum {
    AIM_CPU_FEATURE_AVX2 = 1u << 0,
    AIM_CPU_FEATURE_AVX512 = 1u << 1,
    AIM_CPU_FEATURE_VNNI = 1u << 2,
    AIM_CPU_FEATURE_AMX = 1u << 3,
};

typedef struct {
    int dtype; /* AIM_DTYPE_FLOAT, AIM_DTYPE_UINT8 or AIM_DTYPE_INT8 */
    int rank;  /* 1..4; activations are NCHW [1,C,H,W] */
    int64_t dims[4];
    float scale;        /* quantized tensors only */
    int32_t zero_point; /* quantized tensors only */
    char *name;         /* the ONNX tensor it stands for (for reports and errors); owned */
} aim_prog_tensor;

typedef enum {
    AIM_PROG_QUANTIZE,   /* f32 -> u8/s8 with the output tensor's scale/zero point */
    AIM_PROG_DEQUANTIZE, /* u8/s8 -> f32 */
    AIM_PROG_CONV,       /* int8 conv (also Gemm/1x1), bias, fused activation, residual */
    AIM_PROG_MAXPOOL,
    AIM_PROG_AVGPOOL,    /* also GlobalAveragePool (kernel = input H,W) */
    AIM_PROG_ADD,        /* element-wise, same shapes, requantized */
    AIM_PROG_MUL,        /* element-wise, same shapes, requantized */
    AIM_PROG_CONCAT,     /* along axis; inputs may have different scales */
    AIM_PROG_RESIZE,     /* nearest, integer scale factors */
    AIM_PROG_ACTIVATION, /* a stand-alone activation (act below) */
    AIM_PROG_SLICE,      /* one part along axis (a Split output), requantized */
    AIM_PROG_OP_COUNT
} aim_prog_op_kind;

typedef enum {
    AIM_PROG_ACT_NONE,
    AIM_PROG_ACT_RELU,
    AIM_PROG_ACT_LEAKY_RELU, /* alpha */
    AIM_PROG_ACT_CLIP,       /* alpha = min, beta = max */
    AIM_PROG_ACT_SIGMOID,
    AIM_PROG_ACT_SILU, /* x * sigmoid(x) */
    AIM_PROG_ACT_HARDSWISH,
    AIM_PROG_ACT_COUNT
} aim_prog_act;

typedef struct {
    aim_prog_op_kind kind;
    int n_in;
    int in[AIM_PROG_MAX_INPUTS]; /* tensor indices */
    int out;
    /* CONV: weights [O, I/group, KH, KW] int8 (owned), w_scale[O] (owned), bias[O] int32 or
     * NULL (owned). POOL: kernel/strides/pads used. CONCAT: axis. RESIZE: scale factors in
     * strides[] (integers). SLICE: axis, and in pads[0] the index along it where the part
     * starts (its length is the output's). */
    int64_t kernel[2], strides[2], pads[4], dilations[2], group;
    int64_t axis;
    int8_t *weights;
    float *w_scale;
    int32_t *bias;
    aim_prog_act act; /* fused after the op (CONV, ADD) or the op itself (ACTIVATION) */
    float act_alpha, act_beta;
    int residual;           /* CONV: tensor added before the activation, -1 for none */
    bool count_include_pad; /* AVGPOOL */
} aim_prog_op;

typedef struct {
    char target[32]; /* "cpu-int8" */
    uint32_t required_features;
    aim_prog_tensor *tensors;
    size_t n_tensors;
    aim_prog_op *ops; /* in execution order */
    size_t n_ops;
    int *inputs; /* float32 program inputs, in the AimProgram node's input order */
    size_t n_inputs;
    int *outputs; /* float32 program outputs, in the node's output order */
    size_t n_outputs;
} aim_program;

/* ---- Building and freeing ------------------------------------------------------------------ */

aim_program *aim_program_new(const char *target);
void aim_program_free(aim_program *p);
/* Appends a tensor / op; returns its index or -1 on allocation failure. Pointers inside `op`
 * (weights, w_scale, bias) become owned by the program (freed by it even when the append
 * fails); the tensor's name is copied. */
int aim_program_add_tensor(aim_program *p, const aim_prog_tensor *t);
int aim_program_add_op(aim_program *p, const aim_prog_op *op);
/* Sets the program's float32 inputs and outputs (tensor indices, copied). Added because the
 * contract had no builder call for them. */
aim_status aim_program_set_io(aim_program *p, const int *inputs, size_t n_inputs,
                              const int *outputs, size_t n_outputs);
/* Checks indices, shapes, dtypes and parameters (the same checks deserialize applies). */
aim_status aim_program_validate(const aim_program *p);

/* ---- Binary format ------------------------------------------------------------------------- */

/* Serializes (caller frees *data). */
aim_status aim_program_serialize(const aim_program *p, uint8_t **data, size_t *size);
/* Parses and validates bytes from an untrusted file: bounded, checksummed; refuses other format
 * versions with a message naming both versions. */
aim_status aim_program_deserialize(const uint8_t *data, size_t size, aim_program **out);

/* ---- Execution ----------------------------------------------------------------------------- */

/* The CPU features of this machine (AIM_CPU_FEATURE_*). */
uint32_t aim_cpu_features(void);

/* Refuses (AIM_ERR_UNSUPPORTED, clear message) a program whose target is not `cpu-int8` or
 * whose required features this machine lacks. */
aim_status aim_program_check_runnable(const aim_program *p);

/* Portable reference execution (the oracle the oneDNN execution is tested against): float32
 * inputs in, float32 outputs out (caller-allocated, sizes from the program's tensors). */
aim_status aim_program_run_reference(const aim_program *p, const float *const *inputs,
                                     float *const *outputs);

/* The same, calling `trace` after each op with the op's output tensor dequantized to float
 * (count elements; valid only during the call). The compiler's report uses it to compare every
 * quantized tensor with its float32 counterpart. */
typedef void (*aim_program_trace_fn)(void *ctx, int tensor, const float *values, size_t count);
aim_status aim_program_run_reference_traced(const aim_program *p, const float *const *inputs,
                                            float *const *outputs, aim_program_trace_fn trace,
                                            void *ctx);

/* ---- Additions by the program implementation (issue 5) -------------------------------------
 * The contract above says what a program is and how the reference runs it; the fast executor
 * and the limits below were missing: the ONNX kernel (program_op.c) needs an object that holds
 * the oneDNN primitives built once at load, and the tests need to run it directly. */

/* Limits applied by aim_program_validate (and so by deserialize), so that no count or size in
 * an untrusted file can overflow an allocation or the int32 conv accumulator. */
#define AIM_PROGRAM_MAX_TENSORS  65536
#define AIM_PROGRAM_MAX_OPS      65536
#define AIM_PROGRAM_MAX_ELEMENTS (1ll << 30) /* per tensor and per weight array */
#define AIM_PROGRAM_MAX_NAME     4096
/* Conv reduction length (I/group*KH*KW) and |bias| are bounded so that the exact accumulator,
 * at most 32768 * 255 * 128 + 2^30, stays below 2^31. */
#define AIM_PROGRAM_MAX_REDUCTION 32768
#define AIM_PROGRAM_MAX_BIAS      (1 << 30)

/* The fast executor: one oneDNN int8 primitive per op, built once (weights re-laid-out once);
 * ops oneDNN cannot do exactly run the reference code for that op only. `p` must outlive it.
 * A run allocates its own buffers and scratchpad, so concurrent runs on one executor are safe.
 * `threads` is what runs will use: oneDNN splits a primitive's work when it is created, and a
 * primitive made for more threads than a run has starts them anyway. */
typedef struct aim_program_exec aim_program_exec;
aim_status aim_program_exec_create(const aim_program *p, int threads, aim_program_exec **out);
void aim_program_exec_free(aim_program_exec *e);
/* Same interface as aim_program_run_reference; `threads` >= 1 (OpenMP threads of this call). */
aim_status aim_program_exec_run(const aim_program_exec *e, const float *const *inputs,
                                float *const *outputs, int threads);
/* Ops running on the reference code instead of oneDNN (reports, tests). */
size_t aim_program_exec_fallbacks(const aim_program_exec *e);

/* Internal to src/cpu/program*.c: element count of a tensor, the quantized range of a dtype,
 * and one op of the reference executed on plain row-major buffers (bufs[t] for tensor t), which
 * the fast executor reuses for the ops it does not map to oneDNN. */
size_t aim_program_tensor_count(const aim_prog_tensor *t);
/* CRC-32 (IEEE 802.3 polynomial, as zlib's crc32) of the format's payload; also used by the fuzz
 * target to repair the checksum of mutated bytes so that the parser behind it gets exercised. */
uint32_t aim_program_crc32(const void *data, size_t size);
void aim_program_qrange(int dtype, int32_t *lo, int32_t *hi);
/* The conv requantization multiplier of output channel o: (s_x * s_w[o]) / s_y, computed in one
 * place so that the reference and oneDNN use the very same float. */
float aim_program_conv_scale(const aim_program *p, const aim_prog_op *op, int64_t o);
aim_status aim_program_ref_op(const aim_program *p, const aim_prog_op *op, void *const *bufs);

#endif
