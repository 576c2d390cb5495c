/*
 * shape.c: reference kernels of the shape family (see families.h). Portable C: the correctness
 * oracle every faster kernel is compared with.
 */
#include "ops/families.h"

const aim_op_def aim_ops_shape[] = {
    {0},
};
