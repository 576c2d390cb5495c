/*
 * onnx.h: the onnx module's internal interface, for the graph, runtime and compiler layers.
 *
 * It exposes the protobuf-c structures generated at build time from Debian's onnx.proto
 * (onnx.pb-c.h), the model handle's layout, and helpers that every layer needs to read tensor
 * payloads without caring whether they are stored inline, in typed fields or externally.
 */
#ifndef AIM_ONNX_INTERNAL_H
#define AIM_ONNX_INTERNAL_H

#include "aim/model.h"
#include "onnx.pb-c.h"

/* Deepest message nesting accepted (graphs inside attributes inside nodes ...). protobuf-c
 * decodes recursively, so this bounds its stack use on hostile input. */
#define AIM_ONNX_MAX_DEPTH 64

/* Bytes of a tensor stored outside the model file, read at load time. */
typedef struct {
    const Onnx__TensorProto *tensor; /* the tensor these bytes belong to (not owned) */
    uint8_t *data;                   /* owned */
    size_t size;
} aim_external_blob;

struct aim_model {
    Onnx__ModelProto *proto; /* owned; freed with protobuf_c_message_free_unpacked */
    char *dir;               /* folder for external data, or NULL */
    aim_external_blob *blobs;
    size_t blob_count;
};

/* The decoded protobuf of a model (owned by the model). */
static inline Onnx__ModelProto *aim_model_proto(const aim_model *m) {
    return m->proto;
}

/* Checks a serialized message against `desc` without decoding it: well-formed wire format and
 * nesting no deeper than AIM_ONNX_MAX_DEPTH. */
aim_status aim_onnx_prescan(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                            size_t size);

/* Number of elements a tensor declares, checked for negative dims and overflow, and bounded by
 * `limit` (callers pass the size of what could possibly hold the data). */
aim_status aim_onnx_tensor_count(const Onnx__TensorProto *t, size_t limit, size_t *count);

/* Checks that a tensor's payload is as large as its dims say (see aim_onnx_tensor_count). */
aim_status aim_onnx_tensor_validate(const Onnx__TensorProto *t, size_t external_size);

/* The bytes of an external tensor read at load; NULL when the tensor is not external. */
const aim_external_blob *aim_model_external(const aim_model *m, const Onnx__TensorProto *t);

/* Decodes any tensor into a contiguous little-endian array of its element type (strings are not
 * supported). `m` resolves external data and may be NULL for standalone tensors. The caller
 * frees *data (which is non-NULL even for zero elements). */
aim_status aim_onnx_tensor_decode(const aim_model *m, const Onnx__TensorProto *t, void **data,
                                  size_t *byte_size);

/* The tensor's bytes where they already lie in memory as one little-endian array, 16-byte
 * aligned (raw_data, or external data read at load): *data points into m and stays valid, and
 * unchanged, while m does. *data is NULL when the values must be decoded (typed fields). */
aim_status aim_onnx_tensor_bytes(const aim_model *m, const Onnx__TensorProto *t, const void **data,
                                 size_t *byte_size);

/* Loads a serialized TensorProto file (the ONNX test-data layout: input_0.pb ...). The caller
 * frees it with protobuf_c_message_free_unpacked(&t->base, NULL). */
aim_status aim_onnx_tensor_load(const char *path, Onnx__TensorProto **out);

/* The same from a serialized TensorProto in memory (the bytes are not kept). Same ownership. */
aim_status aim_onnx_tensor_load_memory(const void *data, size_t size, Onnx__TensorProto **out);

/* The attribute of a node named `name`, or NULL. */
const Onnx__AttributeProto *aim_onnx_node_attr(const Onnx__NodeProto *n, const char *name);

/* Calls `fn` on every tensor of the model: initializers, sparse initializers' parts and tensor
 * attributes, in the main graph and in every subgraph. Stops at the first error. */
typedef aim_status (*aim_onnx_tensor_fn)(Onnx__TensorProto *t, void *ctx);
aim_status aim_onnx_walk_tensors(Onnx__ModelProto *model, aim_onnx_tensor_fn fn, void *ctx);

/* Calls `fn` on the main graph and on every subgraph (attributes g and graphs), depth first. */
typedef aim_status (*aim_onnx_graph_fn)(Onnx__GraphProto *g, void *ctx);
aim_status aim_onnx_walk_graphs(Onnx__ModelProto *model, aim_onnx_graph_fn fn, void *ctx);

#endif
