/*
 * internal.h: what the files of src/cpu share: the kernel object, the description a kernel is
 * built from (one node plus what is fused into it), and oneDNN helpers.
 */
#ifndef AIM_CPU_INTERNAL_H
#define AIM_CPU_INTERNAL_H

#include "cpu/cpu.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <string.h>

#define AIM_CPU_MAX_SRC 64 /* activation sources of one kernel (Concat inputs) */

/* aim's own kernels' hot loops, compiled for AVX2 and for baseline x86-64, the one to run
 * chosen by the dynamic loader for the CPU at hand (GCC and clang target_clones): a portable
 * binary whose loops still use 256-bit vectors where the CPU has them. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CPU_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CPU_CLONES
#endif
#define AIM_CPU_MAX_POST 6 /* post-ops fused into one kernel */

typedef struct {
    bool sum;                   /* residual Add: a binary-add post-op reading a second source */
    dnnl_memory_desc_t src1_md; /* the residual's layout (sum) */
    dnnl_alg_kind_t alg;
    float alpha, beta;
} aim_cpu_post;

/* Everything a kernel is built from. */
typedef struct {
    dnnl_engine_t engine;
    const aim_cpu_graph *g;
    const aim_cpu_node *node; /* the main node */
    const aim_cpu_node *bn;   /* BatchNormalization folded into a Conv, or NULL */
    const dnnl_memory_desc_t *src_md[AIM_CPU_MAX_SRC]; /* layouts the sources have now */
    int n_post;
    aim_cpu_post post[AIM_CPU_MAX_POST];
    bool plain_dst; /* the destination is a graph output: row-major */
    bool swish;     /* node is a Sigmoid whose Mul with its input was matched: x * sigmoid(x) */
    int out_value;  /* value the kernel writes */
} aim_cpu_build;

struct aim_cpu_kernel {
    char name[48];
    dnnl_primitive_t prim;
    int n_src;
    int first_src; /* node input read as source 0 (inputs before it are kept as constants) */
    int src_arg[AIM_CPU_MAX_SRC];
    dnnl_memory_desc_t src_md[AIM_CPU_MAX_SRC]; /* layouts the primitive reads */
    int dst_arg;
    dnnl_memory_desc_t dst_md;
    int n_const; /* weights and bias, re-laid-out at load */
    int const_arg[2];
    dnnl_memory_desc_t const_md[2];
    void *const_data[2];
    size_t scratch_bytes;
    int threads; /* OpenMP threads it was made for and runs on; 0: the session's count */
    bool view;   /* src_md are views (sub-memories) of the sources' whole layouts: no reorder */
    /* A kernel of aim's own instead of a primitive (Winograd conv, maxpool, softmax,
     * concatenation by block copies), run on up to `threads` threads. */
    void (*custom)(const aim_cpu_kernel *k, void *const *src, void *dst, void *scratch,
                   int threads);   /* scratch: scratch_bytes, the run's own */
    size_t outer;                  /* custom concat: rows; softmax: blocks before the axis */
    size_t chunk[AIM_CPU_MAX_SRC]; /* custom concat: bytes per row from each source */
    size_t lane, inner;            /* softmax: length of the axis, elements after it */
    bool log_softmax;              /* softmax: LogSoftmax */
    void *state;                   /* other custom kernels' parameters, freed with the kernel */
};

/* Plain row-major descriptor of a tensor (rank 1..6), f32. */
dnnl_status_t aim_cpu_plain_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims);
dnnl_format_tag_t aim_cpu_plain_tag(int rank);

/* Kernel lifecycle: make an empty one, finish from a primitive descriptor, free. */
aim_cpu_kernel *aim_cpu_kernel_new(const char *name);
aim_status aim_cpu_kernel_finish(aim_cpu_kernel *k, dnnl_primitive_desc_t pd, int dst_arg);
/* Finishes k from pd (destination DNNL_ARG_DST) when `constants_ok` (its re-laid-out constants
 * stored); otherwise, or when finishing fails, destroys pd and frees k. Returns k or NULL. */
aim_cpu_kernel *aim_cpu_kernel_complete(aim_cpu_kernel *k, dnnl_primitive_desc_t pd,
                                        bool constants_ok);
void aim_cpu_kernel_free(aim_cpu_kernel *k);
/* Stores a constant re-laid-out from `data` (plain layout `from`) to the layout the primitive
 * wants for `arg` (queried as what/index). */
aim_status aim_cpu_kernel_const(aim_cpu_kernel *k, dnnl_engine_t engine,
                                const dnnl_primitive_desc_t pd, dnnl_query_t what, int index,
                                int arg, const dnnl_memory_desc_t *from, const void *data);

/* Attributes: user scratchpad and the build's post-ops. NULL on failure. */
dnnl_primitive_attr_t aim_cpu_attr(const aim_cpu_build *b);
/* Adds the post-ops' second sources (residuals) to k's sources, after the main ones. */
void aim_cpu_kernel_post_srcs(aim_cpu_kernel *k, const aim_cpu_build *b);
/* True when pd's implementation is oneDNN's slow reference code while post-ops are asked for:
 * fusing fewer nodes then gets a fast implementation. */
bool aim_cpu_slow_fusion(const aim_cpu_build *b, const_dnnl_primitive_desc_t pd);

/* A reorder kernel between two layouts of one tensor. NULL when oneDNN cannot. */
aim_cpu_kernel *aim_cpu_reorder_create(dnnl_engine_t engine, const dnnl_memory_desc_t *from,
                                       const dnnl_memory_desc_t *to);

/* A kernel copying the part (dims at offsets) of a tensor laid out as `whole` into a tensor of
 * its own, in the same kind of layout (plain when `plain_dst`). NULL when the part does not
 * start on a block boundary. */
aim_cpu_kernel *aim_cpu_part_create(dnnl_engine_t engine, const dnnl_memory_desc_t *whole, int rank,
                                    const int64_t *dims, const int64_t *offsets, bool plain_dst);

/* A layout of the same kind as `whole` (plain, channels-last or channel-blocked) for `dims`. */
void aim_cpu_like(const dnnl_memory_desc_t *whole, int rank, const dnnl_dims_t dims,
                  dnnl_memory_desc_t *out);

/* Creates the primitive for an initialised op descriptor and the kernel around it. Sources
 * 0..n_src-1 read the layouts given in b->src_md (or those the primitive wants: query_src). */
aim_cpu_kernel *aim_cpu_make_kernel(const aim_cpu_build *b, const char *name, const void *desc,
                                    int n_src, const int *src_arg, bool query_src);
/* The destination layout of b's node: plain for a graph output, else oneDNN's choice (any). */
void aim_cpu_out_md(const aim_cpu_build *b, dnnl_memory_desc_t *md);
/* True when input i of b's node is float32 of rank 1..6. */
bool aim_cpu_float_in(const aim_cpu_build *b, int i);
/* A 4-D layout that is plain or blocked on channels only (nChw8c, nChw16c): element
 * (n, c, h, w) lives at n * s[0] + (c / block) * s[1] + h * s[2] + w * s[3] + c % block. */
typedef struct {
    int64_t block;           /* 1 when plain */
    int64_t n, blocks, h, w; /* blocks: padded channels / block */
    int64_t s[4];
} aim_cpu_chan_layout;

/* md as an aim_cpu_chan_layout; false when it is not one (offset, other blockings, rank). */
bool aim_cpu_chan_layout_of(const dnnl_memory_desc_t *md, aim_cpu_chan_layout *out);

/* Where channel c of image 0 starts at (h, w) = (0, 0). */
static inline int64_t aim_cpu_chan_at(const aim_cpu_chan_layout *l, int64_t c) {
    return c / l->block * l->s[1] + c % l->block;
}

/* For aim's own AVX2 kernels over channel blocks (avx2.h): the source layout to read (the source's
 * own when blocked by 8 or 16 channels, else nChw8c, which the plan reorders to) and the
 * destination of the same kind, for b's 4-D node; false when there is none (rank, a graph
 * output wanting a plain layout, channels not a multiple of 8). */
bool aim_cpu_own_layouts(const aim_cpu_build *b, dnnl_memory_desc_t *src, dnnl_memory_desc_t *dst,
                         aim_cpu_chan_layout *in, aim_cpu_chan_layout *out);
/* Copies b's post-ops into post[*n] when the own kernels implement every one (ReLU, LeakyReLU,
 * Clip, HardSwish, Sigmoid, SiLU, residual Add), residuals read in layout `dst`; false if not. */
bool aim_cpu_own_posts(const aim_cpu_build *b, const dnnl_memory_desc_t *dst, int *n,
                       aim_cpu_post *post);

/* Finishes an own kernel (state, custom set by the caller): it reads `src` and the residuals
 * of post[0..n) (in their src1_md), and writes `dst`. */
void aim_cpu_own_io(aim_cpu_kernel *k, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                    int n, const aim_cpu_post *post);

/* A convolution's spatial parameters (oneDNN's conventions: dilation counted from 0). */
typedef struct {
    int sp; /* spatial rank */
    int64_t group;
    dnnl_dims_t strides, dilates, pad_l, pad_r, kernel;
} aim_cpu_conv_geom;

/* 3x3 stride-1 convolutions as Winograd F(2x2, 3x3) (winograd.c), from float OIHW weights and
 * bias with any BatchNormalization folded in; NULL when the convolution, its layouts or
 * post-ops or the CPU are not ones it handles. */
aim_cpu_kernel *aim_cpu_winograd_create(const aim_cpu_build *b, const aim_cpu_conv_geom *c,
                                        const float *w, const float *bias);

/* e^x for x <= 0: x = n ln2 + r with |r| <= ln2/2 (n by round-to-nearest through the
 * 1.5 * 2^23 trick), e^r by its degree-6 Taylor polynomial, 2^n by building the float's exponent
 * bits, n clamped at -126 (results below 2^-126 ~ 1.2e-38 come out as tiny values instead of 0).
 * Relative error at most 2.6e-7 over [-87, 0] (checked against double exp in steps of 1e-5). No
 * branch and no libm call, so that the loops calling it vectorise. */
static inline float aim_cpu_exp_neg(float x) {
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    float n = (x * 1.44269504f + shifter) - shifter;
    float r = x - n * 0.693145752f - n * 1.42860677e-6f; /* ln2 in two parts */
    float p =
        1.0f +
        r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r / 720)))));
    int32_t e = (int32_t)n;
    e = e < -126 ? -126 : e;
    int32_t bits = (e + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* Node kernels (conv.c, ops.c, pool.c, softmax.c, norm.c): NULL when the node's parameters are not
 * supported. */
aim_cpu_kernel *aim_cpu_conv_create(const aim_cpu_build *b);
aim_cpu_kernel *aim_cpu_deconv_create(const aim_cpu_build *b);
aim_cpu_kernel *aim_cpu_pool_create(const aim_cpu_build *b);
aim_cpu_kernel *aim_cpu_eltwise_create(const aim_cpu_build *b);
aim_cpu_kernel *aim_cpu_concat_create(const aim_cpu_build *b);
aim_cpu_kernel *aim_cpu_resize_create(const aim_cpu_build *b);
aim_cpu_kernel *aim_cpu_transpose_create(const aim_cpu_build *b);
aim_cpu_kernel *aim_cpu_softmax_create(const aim_cpu_build *b);
aim_cpu_kernel *aim_cpu_batchnorm_create(const aim_cpu_build *b);
aim_cpu_kernel *aim_cpu_binary_create(const aim_cpu_build *b);
aim_cpu_kernel *aim_cpu_gemm_create(const aim_cpu_build *b);
aim_cpu_kernel *aim_cpu_matmul_create(const aim_cpu_build *b);

/* An activation node as a oneDNN eltwise algorithm; false when it is not one. */
bool aim_cpu_activation(const aim_cpu_graph *g, const aim_cpu_node *n, aim_cpu_post *out);

/* Small accessors over the graph view. */
const aim_tensor *aim_cpu_in(const aim_cpu_build *b, const aim_cpu_node *n, int i);
const aim_tensor *aim_cpu_out(const aim_cpu_build *b);
bool aim_cpu_is_const(const aim_cpu_graph *g, const aim_cpu_node *n, int i);
bool aim_cpu_op_is(const aim_cpu_node *n, const char *op_type);

/* Node attributes (ONNX attributes by name), without an aim_op_ctx. */
const Onnx__AttributeProto *aim_cpu_attr_find(const aim_cpu_node *n, const char *name);
int64_t aim_cpu_attr_int(const aim_cpu_node *n, const char *name, int64_t def);
float aim_cpu_attr_float(const aim_cpu_node *n, const char *name, float def);
/* True when string attribute `name` (or `def` when absent) equals `want`. */
bool aim_cpu_attr_is(const aim_cpu_node *n, const char *name, const char *def, const char *want);
/* Copies an ints attribute into out[count] (default `def` for each when absent); false when
 * present with another length. */
bool aim_cpu_attr_ints(const aim_cpu_node *n, const char *name, int count, int64_t def,
                       int64_t *out);

/* Calls fn(ctx, begin, end) on disjoint contiguous chunks covering [0, n), on up to `threads`
 * OpenMP threads: aim's own kernels use the team oneDNN's primitives use, whose idle threads
 * spin between kernels and would fight separate pthreads for the cores. */
void aim_cpu_parallel_for(int threads, size_t n, void (*fn)(void *ctx, size_t begin, size_t end),
                          void *ctx);
/* Sets the calling thread's OpenMP thread count; returns the previous one. */
int aim_cpu_set_threads(int threads);

#endif
