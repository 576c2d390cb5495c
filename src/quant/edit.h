/*
 * edit.h: small helpers that build and change ONNX protobuf graphs in place (nodes, attributes,
 * initializers, topological order, pruning), shared by the QDQ export and the compiler's
 * embedding. Everything is allocated with malloc, as protobuf-c's default allocator frees it.
 */
#ifndef AIM_QUANT_EDIT_H
#define AIM_QUANT_EDIT_H

#include "aim/status.h"
#include "onnx/onnx.h"

#include <stddef.h>
#include <stdint.h>

/* A new node (strings copied); NULL when memory is short. */
Onnx__NodeProto *aim_quant_node_new(const char *op_type, const char *domain, const char *name,
                                    size_t n_in, const char *const *inputs, size_t n_out,
                                    const char *const *outputs);
/* Appends a node to the graph (ownership moves to the graph; freed on failure). */
aim_status aim_quant_graph_append(Onnx__GraphProto *g, Onnx__NodeProto *n);

aim_status aim_quant_attr_int(Onnx__NodeProto *n, const char *name, int64_t v);
aim_status aim_quant_attr_string(Onnx__NodeProto *n, const char *name, const char *s);
/* A bytes attribute: AttributeProto type STRING with the bytes in field s (copied). */
aim_status aim_quant_attr_bytes(Onnx__NodeProto *n, const char *name, const uint8_t *data,
                                size_t size);

/* First attribute called name, or NULL. */
int64_t aim_quant_attr_get_int(const Onnx__NodeProto *n, const char *name, int64_t dflt);
float aim_quant_attr_get_float(const Onnx__NodeProto *n, const char *name, float dflt);
/* Copies at most max ints; returns how many the attribute holds (0 when absent). */
size_t aim_quant_attr_get_ints(const Onnx__NodeProto *n, const char *name, int64_t *out,
                               size_t max);

/* Adds an initializer with raw little-endian data (copied). */
aim_status aim_quant_graph_add_initializer(Onnx__GraphProto *g, const char *name, int dtype,
                                           int rank, const int64_t *dims, const void *data,
                                           size_t bytes);
/* The initializer named name, or NULL. */
Onnx__TensorProto *aim_quant_graph_initializer(const Onnx__GraphProto *g, const char *name);

/* Replaces a string field's text. */
aim_status aim_quant_set_string(char **slot, const char *text);

/* Sorts the nodes topologically (stable: keeps the file order where it can). Fails with a
 * message when the graph has a cycle. */
aim_status aim_quant_graph_toposort(Onnx__GraphProto *g);

/* Removes initializers that no node reads and that are not graph inputs or outputs, and
 * value_info entries of tensors no node produces. */
void aim_quant_graph_prune(Onnx__GraphProto *g);

#endif
