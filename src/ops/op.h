/*
 * op.h: the contract between the runtime and the operator kernels.
 *
 * An operator is a row in a family table (aim_op_def): op type, domain, the opset range it
 * implements, and up to four functions:
 *
 *   prepare  load time, once per node: validate attributes, fill per-node state. Every check
 *            that does not depend on input values belongs here or in infer, so that a run never
 *            fails for a reason a load could have found.
 *   infer    set every output's dtype and shape from the inputs. Called at load time (inputs'
 *            data is NULL unless constant) and again before every run with real data. When an
 *            output shape needs input values that are not available, call aim_op_dynamic() for
 *            it. When the shape depends on the computation itself (NonZero, NMS), mark the output
 *            dynamic even with data, and allocate it in run with aim_op_alloc().
 *   run      compute. Outputs with a known shape arrive allocated; write every element.
 *   release  free what prepare stored in state.
 *
 * Kernels never allocate outputs themselves (except dynamic ones through aim_op_alloc), never
 * keep pointers to tensors between calls, and are reentrant: the same node may run on several
 * threads at once with different tensors, so per-node state is read-only after prepare.
 *
 * Adding an operator touches one family file (its functions and one table row).
 */
#ifndef AIM_OPS_OP_H
#define AIM_OPS_OP_H

#include "graph/tensor.h"
#include "onnx/onnx.h"

#include <stdbool.h>

typedef struct aim_op_ctx aim_op_ctx;

struct aim_op_ctx {
    const Onnx__NodeProto *node;
    int opset;                   /* version of the node's domain imported by the model */
    int n_in;                    /* node->n_input */
    const aim_tensor *const *in; /* in[i] NULL: optional input omitted ("" name) */
    int n_out;
    aim_tensor *const *out; /* out[i] NULL: output not requested */
    void *state;            /* what prepare stored; read-only afterwards */
    int threads;            /* threads this kernel may use (>= 1) */
    /* Allocates out[i]->data for its current dtype and shape (for dynamic outputs). */
    aim_status (*alloc)(aim_op_ctx *c, int i);
    void *runtime; /* the runtime's own context for alloc */
};

typedef struct {
    const char *op_type;
    const char *domain;                   /* "" for the default ONNX domain */
    int since;                            /* first opset version implemented */
    int until;                            /* last opset version implemented (inclusive) */
    aim_status (*prepare)(aim_op_ctx *c); /* optional */
    aim_status (*infer)(aim_op_ctx *c);   /* required */
    aim_status (*run)(aim_op_ctx *c);     /* required */
    void (*release)(void *state);         /* optional */
    /* run reads only its inputs' shapes (Shape, Size): the node is folded at load time as soon
     * as those shapes are static, even when the values themselves are not constant. */
    bool reads_shapes_only;
} aim_op_def;

/* Finds the kernel for a node's op type, domain and opset. On failure the error message says
 * whether the op is unknown or only this opset version is unsupported. */
aim_status aim_ops_find(const char *op_type, const char *domain, int opset, const aim_op_def **out);

/* Number of registered definitions, and the i-th (for listings and tests). */
size_t aim_ops_count(void);
const aim_op_def *aim_ops_at(size_t i);

/* ---- Helpers for kernels ------------------------------------------------------------------- */

/* Error about this node: "node 'conv_3' (Conv): <message>". Returns status. */
aim_status aim_op_fail(const aim_op_ctx *c, aim_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Marks out[i] as dynamic (shape known only when run computes it). */
void aim_op_dynamic(aim_op_ctx *c, int i);

/* Sets out[i]'s shape and allocates it (for dynamic outputs inside run). */
aim_status aim_op_alloc(aim_op_ctx *c, int i, int dtype, int rank, const int64_t *dims);

/* Sets out[i]'s dtype and shape (in infer); skipped when out[i] is NULL. */
aim_status aim_op_set_output(aim_op_ctx *c, int i, int dtype, int rank, const int64_t *dims);

/* Input i, or NULL when omitted or beyond n_in. */
const aim_tensor *aim_op_input(const aim_op_ctx *c, int i);

/* Checks the input count is within [min, max] (optional trailing inputs may be omitted). */
aim_status aim_op_check_inputs(const aim_op_ctx *c, int min, int max);

/* Attributes. Getters return the default when the attribute is absent; a present attribute of
 * the wrong type is an error at prepare/infer time (aim_op_attr_check). */
const Onnx__AttributeProto *aim_op_attr(const aim_op_ctx *c, const char *name);
int64_t aim_op_attr_int(const aim_op_ctx *c, const char *name, int64_t def);
float aim_op_attr_float(const aim_op_ctx *c, const char *name, float def);
const char *aim_op_attr_string(const aim_op_ctx *c, const char *name, const char *def);
/* Array attributes: *n = 0 and NULL when absent. */
const int64_t *aim_op_attr_ints(const aim_op_ctx *c, const char *name, size_t *n);
const float *aim_op_attr_floats(const aim_op_ctx *c, const char *name, size_t *n);
/* Decodes a tensor attribute into t (t->data malloc'ed, caller frees). AIM_ERR_NOT_FOUND if
 * absent. */
aim_status aim_op_attr_tensor(const aim_op_ctx *c, const char *name, aim_tensor *t);

/* Normalises an axis in [-rank, rank-1] to [0, rank-1]; error naming the node otherwise. */
aim_status aim_op_axis(const aim_op_ctx *c, int64_t axis, int rank, int *out);

/* Numpy-style broadcast of shapes a and b into out (rank and dims). */
aim_status aim_op_broadcast(const aim_op_ctx *c, const aim_tensor *a, const aim_tensor *b,
                            int *rank, int64_t *dims);

/* Strides (in elements) for reading a tensor of shape `t` broadcast to rank/dims: 0 where the
 * dimension is broadcast. */
void aim_op_broadcast_strides(const aim_tensor *t, int rank, const int64_t *dims, int64_t *strides);

/* Copies a block of shape dims (rank <= AIM_OP_COPY_MAX_RANK) from src to dst, elements of esize
 * bytes; strides are in elements (negative for reversed slices, 0 for broadcast reads), NULL
 * for contiguous. The one copy loop of the movement operators (Transpose, Slice, Concat, Split,
 * Expand, Tile, DepthToSpace, ...). */
#define AIM_OP_COPY_MAX_RANK (2 * AIM_MAX_RANK) /* Tile views each axis as (repeat, dim) */
void aim_op_strided_copy(char *dst, const int64_t *dst_strides, const char *src,
                         const int64_t *src_strides, int rank, const int64_t *dims, size_t esize);

/* Row-major strides of a shape. */
void aim_op_strides(int rank, const int64_t *dims, int64_t *strides);

#endif
