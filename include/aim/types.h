/*
 * aim/types.h: element types and limits shared by the model API, the runtime and the OAAX layer.
 *
 * Element type values are ONNX's TensorProto.DataType numbers, which are also OAAX's
 * tensor_data_type numbers, so no translation table is needed at either boundary.
 */
#ifndef AIM_TYPES_H
#define AIM_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AIM_MAX_RANK 8

/* X(enum name, onnx number, byte size, printable name) */
#define AIM_DTYPE_LIST(X)                                                                          \
    X(AIM_DTYPE_UNDEFINED, 0, 0, "undefined")                                                      \
    X(AIM_DTYPE_FLOAT, 1, 4, "float32")                                                            \
    X(AIM_DTYPE_UINT8, 2, 1, "uint8")                                                              \
    X(AIM_DTYPE_INT8, 3, 1, "int8")                                                                \
    X(AIM_DTYPE_UINT16, 4, 2, "uint16")                                                            \
    X(AIM_DTYPE_INT16, 5, 2, "int16")                                                              \
    X(AIM_DTYPE_INT32, 6, 4, "int32")                                                              \
    X(AIM_DTYPE_INT64, 7, 8, "int64")                                                              \
    X(AIM_DTYPE_STRING, 8, 0, "string")                                                            \
    X(AIM_DTYPE_BOOL, 9, 1, "bool")                                                                \
    X(AIM_DTYPE_FLOAT16, 10, 2, "float16")                                                         \
    X(AIM_DTYPE_DOUBLE, 11, 8, "float64")                                                          \
    X(AIM_DTYPE_UINT32, 12, 4, "uint32")                                                           \
    X(AIM_DTYPE_UINT64, 13, 8, "uint64")                                                           \
    X(AIM_DTYPE_COMPLEX64, 14, 8, "complex64")                                                     \
    X(AIM_DTYPE_COMPLEX128, 15, 16, "complex128")                                                  \
    X(AIM_DTYPE_BFLOAT16, 16, 2, "bfloat16")

typedef enum {
#define AIM_DTYPE_ENUM(name, num, size, text) name = num,
    AIM_DTYPE_LIST(AIM_DTYPE_ENUM)
#undef AIM_DTYPE_ENUM
        AIM_DTYPE_COUNT
} aim_dtype;

/* Bytes per element; 0 for undefined, string and unknown numbers. */
size_t aim_dtype_size(int dtype);

/* "float32", "int64", ...; "unknown" for numbers outside the list. Never NULL. */
const char *aim_dtype_name(int dtype);

/* float32, float64 and float16: the floating types the generic element accessors decode. */
int aim_dtype_is_float(int dtype);

/* The eight signed and unsigned integer types (not bool). */
int aim_dtype_is_integer(int dtype);

/* Parses a printable name ("float32", also "float") back; AIM_DTYPE_UNDEFINED if unknown. */
aim_dtype aim_dtype_parse(const char *name);

#ifdef __cplusplus
}
#endif
#endif
