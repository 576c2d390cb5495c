/*
 * families.h: the list of operator family tables. Each family is one file in src/ops holding
 * its kernels and a table `const aim_op_def aim_ops_<family>[]` ending in a row with op_type
 * NULL. A new family is one line here and one file.
 */
#ifndef AIM_OPS_FAMILIES_H
#define AIM_OPS_FAMILIES_H

#include "ops/op.h"

#define AIM_OPS_FAMILIES(X)                                                                        \
    X(math)   /* element-wise arithmetic, activations, comparisons, logic, Cast, Where */          \
    X(reduce) /* Reduce*, ArgMax/ArgMin, Softmax, TopK */                                          \
    X(nn)     /* Conv, ConvTranspose, pooling, Gemm, MatMul, normalisations, LRN */                \
    X(shape)  /* Reshape ... Gather, Scatter, Pad, Tile, Expand, Constant, Range, NonZero */       \
    X(vision) /* Resize, Upsample, NonMaxSuppression, RoiAlign, DepthToSpace, SpaceToDepth */      \
    X(quant)  /* QuantizeLinear, DequantizeLinear, QLinear*, *Integer, DynamicQuantizeLinear */

#define AIM_OPS_FAMILY_DECLARE(name) extern const aim_op_def aim_ops_##name[];
AIM_OPS_FAMILIES(AIM_OPS_FAMILY_DECLARE)
#undef AIM_OPS_FAMILY_DECLARE

#endif
