/*
 * tensor.h: aim's one tensor type, used by the IR, every kernel and the session.
 *
 * A tensor is an element type, a shape and a pointer to dense row-major data. During load-time
 * inference `data` is NULL for values that are not constant, and `rank` is AIM_RANK_UNKNOWN for
 * values whose shape depends on data not known until run time.
 */
#ifndef AIM_GRAPH_TENSOR_H
#define AIM_GRAPH_TENSOR_H

#include "aim/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aim/tensor.h"

#define AIM_RANK_UNKNOWN (-1)

/* Element count (1 for a scalar). Shapes in a tensor are always validated before use. */
size_t aim_tensor_count(const aim_tensor *t);

/* Byte size: count * element size. */
size_t aim_tensor_bytes(const aim_tensor *t);

/* Sets dtype and shape (data untouched). Fails on rank > AIM_MAX_RANK or negative dims. */
aim_status aim_tensor_set_shape(aim_tensor *t, int dtype, int rank, const int64_t *dims);

/* True when both tensors have the same rank and dims. */
bool aim_tensor_same_shape(const aim_tensor *a, const aim_tensor *b);

/* "[1,3,240,320]" into buf (truncated to size); returns buf. */
const char *aim_tensor_shape_str(const aim_tensor *t, char *buf, size_t size);

/* Reads element i of any numeric type as double / int64 (bool and ints exact; float16 decoded). */
double aim_tensor_get_f64(const aim_tensor *t, size_t i);
int64_t aim_tensor_get_i64(const aim_tensor *t, size_t i);

/* Writes element i of any numeric type from a double (saturation and rounding as C casts). */
void aim_tensor_set_f64(aim_tensor *t, size_t i, double v);

/* IEEE half <-> float. */
float aim_half_to_float(uint16_t h);
uint16_t aim_float_to_half(float f);

#endif
