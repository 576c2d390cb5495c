/*
 * aim/tensor_io.h: reading and writing single tensors as serialized ONNX TensorProto files
 * (the layout of ONNX test data: input_0.pb, output_0.pb, ...).
 */
#ifndef AIM_TENSOR_IO_H
#define AIM_TENSOR_IO_H

#include "aim/status.h"
#include "aim/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads a TensorProto file into `out` (out->data malloc'ed) and its name into *name (malloc'ed,
 * "" when unnamed; pass NULL to ignore). The caller frees both. */
aim_status aim_tensor_load_pb(const char *path, aim_tensor *out, char **name);

/* Decodes a TensorProto from memory (see aim_tensor_load_pb). */
aim_status aim_tensor_decode_pb(const void *data, size_t size, aim_tensor *out, char **name);

/* Writes a tensor as a named TensorProto file (raw_data), atomically. */
aim_status aim_tensor_save_pb(const char *path, const char *name, const aim_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
