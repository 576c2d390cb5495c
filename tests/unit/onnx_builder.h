/*
 * onnx_builder.h: helpers for unit tests that build small ONNX models in code.
 *
 * Models are built on the heap exactly as protobuf-c would decode them (every string, array and
 * message malloc'd), packed to bytes with tb_pack(), and freed with free_unpacked, so tests can
 * write model files or feed bytes to aim_model_load_memory() without any fixture on disk.
 * Shapes are written as text: "1,N,3" gives dims 1, N (a dim_param) and 3.
 */
#ifndef AIM_TESTS_ONNX_BUILDER_H
#define AIM_TESTS_ONNX_BUILDER_H

#include "core/util.h"
#include "onnx/onnx.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Aborts on allocation failure: a test helper has nothing better to do. */
static inline void *tb_alloc(size_t size) {
    void *p = calloc(1, size ? size : 1);
    if (!p) abort();
    return p;
}

static inline char *tb_str(const char *s) {
    char *copy = aim_strdup(s);
    if (!copy) abort();
    return copy;
}

/* Appends `item` to a protobuf-c repeated field (`arr`, `n`). */
#define TB_APPEND(arr, n, item)                                                                    \
    do {                                                                                           \
        void *tb_grown_ = realloc((arr), ((n) + 1) * sizeof *(arr));                               \
        if (!tb_grown_) abort();                                                                   \
        (arr) = tb_grown_;                                                                         \
        (arr)[(n)++] = (item);                                                                     \
    } while (0)

/* Splits "a,b,,c" into malloc'd strings (empty entries kept). */
static inline void tb_split(const char *csv, char ***out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (!csv) return;
    const char *p = csv;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *s = tb_alloc(len + 1);
        memcpy(s, p, len);
        TB_APPEND(*out, *n, s);
        if (!comma) break;
        p = comma + 1;
    }
}

static inline Onnx__TensorShapeProto *tb_shape(const char *dims) {
    Onnx__TensorShapeProto *shape = tb_alloc(sizeof *shape);
    onnx__tensor_shape_proto__init(shape);
    char **parts;
    size_t n;
    tb_split(*dims ? dims : NULL, &parts, &n);
    for (size_t i = 0; i < n; i++) {
        Onnx__TensorShapeProto__Dimension *d = tb_alloc(sizeof *d);
        onnx__tensor_shape_proto__dimension__init(d);
        char *end;
        long long v = strtoll(parts[i], &end, 10);
        if (*parts[i] && !*end) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = v;
            free(parts[i]);
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = parts[i];
        }
        TB_APPEND(shape->dim, shape->n_dim, d);
    }
    free(parts);
    return shape;
}

/* A tensor value: dtype 0 leaves elem_type unset; dims NULL leaves the shape unknown. */
static inline Onnx__ValueInfoProto *tb_value(const char *name, int dtype, const char *dims) {
    Onnx__ValueInfoProto *vi = tb_alloc(sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = tb_str(name);
    Onnx__TypeProto *type = tb_alloc(sizeof *type);
    onnx__type_proto__init(type);
    Onnx__TypeProto__Tensor *tt = tb_alloc(sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    if (dtype) {
        tt->has_elem_type = 1;
        tt->elem_type = dtype;
    }
    if (dims) tt->shape = tb_shape(dims);
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tt;
    vi->type = type;
    return vi;
}

/* A value without any type. */
static inline Onnx__ValueInfoProto *tb_value_untyped(const char *name) {
    Onnx__ValueInfoProto *vi = tb_alloc(sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = tb_str(name);
    return vi;
}

/* A sequence of float tensors. */
static inline Onnx__ValueInfoProto *tb_value_sequence(const char *name) {
    Onnx__ValueInfoProto *vi = tb_value_untyped(name);
    Onnx__TypeProto *type = tb_alloc(sizeof *type);
    onnx__type_proto__init(type);
    Onnx__TypeProto__Sequence *seq = tb_alloc(sizeof *seq);
    onnx__type_proto__sequence__init(seq);
    Onnx__ValueInfoProto *elem = tb_value("e", AIM_DTYPE_FLOAT, NULL);
    seq->elem_type = elem->type;
    elem->type = NULL;
    onnx__value_info_proto__free_unpacked(elem, NULL);
    type->value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
    type->sequence_type = seq;
    vi->type = type;
    return vi;
}

static inline Onnx__TensorProto *tb_tensor(const char *name, int dtype, size_t rank,
                                           const int64_t *dims, const void *raw, size_t len) {
    Onnx__TensorProto *t = tb_alloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = tb_str(name);
    t->has_data_type = 1;
    t->data_type = dtype;
    for (size_t i = 0; i < rank; i++)
        TB_APPEND(t->dims, t->n_dims, dims[i]);
    if (raw) {
        t->has_raw_data = 1;
        t->raw_data.data = tb_alloc(len);
        memcpy(t->raw_data.data, raw, len);
        t->raw_data.len = len;
    }
    return t;
}

static inline void tb_tensor_entry(Onnx__TensorProto *t, const char *key, const char *value) {
    Onnx__StringStringEntryProto *e = tb_alloc(sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = tb_str(key);
    e->value = tb_str(value);
    TB_APPEND(t->external_data, t->n_external_data, e);
}

/* A tensor whose bytes live in `location` (offset/length NULL to leave them out). */
static inline Onnx__TensorProto *tb_tensor_external(const char *name, int dtype, size_t rank,
                                                    const int64_t *dims, const char *location,
                                                    const char *offset, const char *length) {
    Onnx__TensorProto *t = tb_tensor(name, dtype, rank, dims, NULL, 0);
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if (location) tb_tensor_entry(t, "location", location);
    if (offset) tb_tensor_entry(t, "offset", offset);
    if (length) tb_tensor_entry(t, "length", length);
    return t;
}

static inline Onnx__NodeProto *tb_node(const char *name, const char *op, const char *inputs,
                                       const char *outputs) {
    Onnx__NodeProto *n = tb_alloc(sizeof *n);
    onnx__node_proto__init(n);
    if (name) n->name = tb_str(name);
    n->op_type = tb_str(op);
    tb_split(inputs, &n->input, &n->n_input);
    tb_split(outputs, &n->output, &n->n_output);
    return n;
}

/* Adds an attribute to `node` and returns it for the caller to fill. */
static inline Onnx__AttributeProto *tb_attr(Onnx__NodeProto *node, const char *name,
                                            Onnx__AttributeProto__AttributeType type) {
    Onnx__AttributeProto *a = tb_alloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = tb_str(name);
    a->has_type = 1;
    a->type = type;
    TB_APPEND(node->attribute, node->n_attribute, a);
    return a;
}

static inline void tb_opset(Onnx__ModelProto *m, const char *domain, int64_t version) {
    Onnx__OperatorSetIdProto *op = tb_alloc(sizeof *op);
    onnx__operator_set_id_proto__init(op);
    op->domain = tb_str(domain);
    op->has_version = 1;
    op->version = version;
    TB_APPEND(m->opset_import, m->n_opset_import, op);
}

static inline void tb_meta(Onnx__ModelProto *m, const char *key, const char *value) {
    Onnx__StringStringEntryProto *e = tb_alloc(sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = tb_str(key);
    e->value = tb_str(value);
    TB_APPEND(m->metadata_props, m->n_metadata_props, e);
}

/* An empty model: IR 8, opset 13, graph "main". */
static inline Onnx__ModelProto *tb_model(void) {
    Onnx__ModelProto *m = tb_alloc(sizeof *m);
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = 8;
    tb_opset(m, "", 13);
    m->graph = tb_alloc(sizeof *m->graph);
    onnx__graph_proto__init(m->graph);
    m->graph->name = tb_str("main");
    return m;
}

/* Packs and frees a model; the caller frees the bytes. */
static inline uint8_t *tb_pack(Onnx__ModelProto *m, size_t *size) {
    *size = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = tb_alloc(*size);
    onnx__model_proto__pack(m, buf);
    onnx__model_proto__free_unpacked(m, NULL);
    return buf;
}

/* Packs, frees and writes a model to `path`; returns 0 on success. */
static inline int tb_write(Onnx__ModelProto *m, const char *path) {
    size_t size;
    uint8_t *buf = tb_pack(m, &size);
    aim_status st = aim_file_write_atomic(path, buf, size);
    free(buf);
    return st == AIM_OK ? 0 : -1;
}

static inline int tb_write_bytes(const char *dir, const char *name, const void *data, size_t n) {
    char *path = aim_path_join(dir, name);
    if (!path) abort();
    aim_status st = aim_file_write_atomic(path, data, n);
    free(path);
    return st == AIM_OK ? 0 : -1;
}

/* A fresh temporary folder; the caller frees the name after tb_rmtree(). */
static inline char *tb_tempdir(void) {
    char *dir = tb_str("/tmp/aim-unit-XXXXXX");
    if (!mkdtemp(dir)) abort();
    return dir;
}

static inline int tb_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void tb_rmtree(const char *dir) {
    nftw(dir, tb_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
