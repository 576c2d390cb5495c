/*
 * aim/tensor.h: aim's one tensor type: an element type, a shape and dense row-major data.
 *
 * The same struct carries values between the caller and a session, between kernels, and between
 * the runtime and an accelerator program.
 */
#ifndef AIM_TENSOR_H
#define AIM_TENSOR_H

#include "aim/types.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aim_tensor {
    int dtype; /* aim_dtype */
    int rank;  /* 0 for scalars; -1 while unknown (load-time inference only) */
    int64_t dims[AIM_MAX_RANK];
    void *data; /* dense row-major */
} aim_tensor;

#ifdef __cplusplus
}
#endif
#endif
