/*
 * aim/model.h: reading, editing and writing ONNX models.
 *
 *     aim_model *m;
 *     if (aim_model_load("det.onnx", &m) != AIM_OK) { puts(aim_last_error()); return 1; }
 *     aim_model_rename(m, "input0", "image-");
 *     aim_model_meta_set(m, "chip", "hailo-8l");
 *     aim_model_save(m, "det.fixed.onnx");
 *     aim_model_free(m);
 *
 * A model keeps every field of the file, including ones aim does not know, so load + save is
 * lossless. Tensors stored as external data (data_location = EXTERNAL) are read at load time
 * from files inside the model's folder only, and written back beside the saved model.
 *
 * Strings returned by accessors are owned by the model and stay valid until the model is changed
 * or freed.
 */
#ifndef AIM_MODEL_H
#define AIM_MODEL_H

#include "aim/status.h"
#include "aim/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aim_model aim_model;

/* Largest model file aim reads (protobuf's own limit is 2 GiB). */
#define AIM_MODEL_MAX_BYTES ((size_t)2147483647)

/* ---- Lifetime ------------------------------------------------------------------------------ */

/* Loads a model file. External data is resolved relative to the file's folder. */
aim_status aim_model_load(const char *path, aim_model **out);

/* Loads a model from memory (the bytes are copied). `dir` is the folder for external data, or
 * NULL to refuse external data. */
aim_status aim_model_load_memory(const void *data, size_t size, const char *dir, aim_model **out);

/* Writes the model atomically; external data files are written into the same folder. */
aim_status aim_model_save(aim_model *m, const char *path);

/* Serializes the model; external tensors stay references. The caller frees *data. */
aim_status aim_model_save_memory(const aim_model *m, uint8_t **data, size_t *size);

void aim_model_free(aim_model *m);

/* ---- Header facts -------------------------------------------------------------------------- */

int64_t aim_model_ir_version(const aim_model *m);
const char *aim_model_producer_name(const aim_model *m);    /* "" when unset */
const char *aim_model_producer_version(const aim_model *m); /* "" when unset */
aim_status aim_model_set_producer(aim_model *m, const char *name, const char *version);
const char *aim_model_graph_name(const aim_model *m); /* "" when unset */
/* The graph's doc_string (where the conventions keep the normalisation JSON); "" when unset. */
const char *aim_model_doc_string(const aim_model *m);
aim_status aim_model_set_doc_string(aim_model *m, const char *text);

/* ---- Opset imports ------------------------------------------------------------------------- */

size_t aim_model_opset_count(const aim_model *m);
const char *aim_model_opset_domain(const aim_model *m, size_t i); /* "" is the default domain */
int64_t aim_model_opset_version(const aim_model *m, size_t i);
/* Version imported for a domain ("" or "ai.onnx" for the default one); -1 when not imported. */
int64_t aim_model_opset_for(const aim_model *m, const char *domain);
aim_status aim_model_set_opset(aim_model *m, const char *domain, int64_t version);

/* ---- Graph inputs and outputs -------------------------------------------------------------- */

typedef struct {
    int64_t value;     /* >= 0 when known */
    const char *param; /* symbolic name, or NULL */
} aim_dim;

typedef struct {
    const char *name;
    int dtype; /* aim_dtype; 0 when the value is not a tensor or the type is unset */
    int rank;  /* -1 when the shape is unknown */
    aim_dim dims[AIM_MAX_RANK];
} aim_value_info;

/* Graph inputs that are not initializers: what a caller must feed. */
size_t aim_model_input_count(const aim_model *m);
aim_status aim_model_input(const aim_model *m, size_t i, aim_value_info *out);
size_t aim_model_output_count(const aim_model *m);
aim_status aim_model_output(const aim_model *m, size_t i, aim_value_info *out);

/* Renames a tensor everywhere it is referenced: node inputs and outputs (subgraphs included),
 * graph inputs, outputs, initializers and value_info. Fails if `to` already names a tensor. */
aim_status aim_model_rename(aim_model *m, const char *from, const char *to);

/* Sets a static shape on a graph input, output or value_info entry named `name`. */
aim_status aim_model_set_shape(aim_model *m, const char *name, int rank, const int64_t *dims);

/* ---- Initializers -------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int dtype;
    int rank;
    int64_t dims[AIM_MAX_RANK];
    size_t element_count;
    size_t byte_size;
    bool external;
} aim_tensor_info;

size_t aim_model_initializer_count(const aim_model *m);
aim_status aim_model_initializer(const aim_model *m, size_t i, aim_tensor_info *out);
/* Removes an initializer (and the graph input of the same name, if any). */
aim_status aim_model_initializer_remove(aim_model *m, const char *name);

/* ---- Nodes --------------------------------------------------------------------------------- */

typedef struct {
    const char *name; /* "" when unnamed */
    const char *op_type;
    const char *domain; /* "" for the default domain */
    size_t input_count;
    const char *const *inputs; /* "" for an omitted optional input */
    size_t output_count;
    const char *const *outputs;
} aim_node_info;

size_t aim_model_node_count(const aim_model *m);
aim_status aim_model_node(const aim_model *m, size_t i, aim_node_info *out);
aim_status aim_model_node_set_name(aim_model *m, size_t i, const char *name);
aim_status aim_model_node_remove(aim_model *m, size_t i);

/* ---- metadata_props ------------------------------------------------------------------------ */

size_t aim_model_meta_count(const aim_model *m);
const char *aim_model_meta_key(const aim_model *m, size_t i);
const char *aim_model_meta_value(const aim_model *m, size_t i);
const char *aim_model_meta_get(const aim_model *m, const char *key); /* NULL when absent */
aim_status aim_model_meta_set(aim_model *m, const char *key, const char *value);
aim_status aim_model_meta_unset(aim_model *m, const char *key); /* AIM_ERR_NOT_FOUND if absent */

#ifdef __cplusplus
}
#endif
#endif
