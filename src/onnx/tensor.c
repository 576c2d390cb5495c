/*
 * tensor.c: TensorProto payloads: size checks, decoding to native arrays, and walking every
 * tensor and subgraph of a model.
 *
 * A TensorProto may keep its data in raw_data, in one of the typed repeated fields (which field
 * depends on the element type), or in an external file. The checks here make sure the declared
 * dims match the bytes actually present before anyone multiplies or allocates with them.
 */
#include "core/util.h"
#include "onnx/onnx.h"

#include <stdlib.h>
#include <string.h>

aim_status aim_onnx_tensor_count(const Onnx__TensorProto *t, size_t limit, size_t *count) {
    const char *name = t->name ? t->name : "";
    bool empty = false;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0)
            return aim_error(AIM_ERR_PARSE, "tensor '%s': negative dimension %lld", name,
                             (long long)t->dims[i]);
        if (t->dims[i] == 0) empty = true;
    }
    if (empty) { /* [2, 0] holds nothing, however large the other dims */
        *count = 0;
        return AIM_OK;
    }
    /* Every dim is >= 1 now, so the running product only grows: checking the limit at each
     * step is exact and stops before any overflow. */
    size_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (!aim_mul_size(n, (size_t)t->dims[i], &n) || n > limit)
            return aim_error(AIM_ERR_LIMIT,
                             "tensor '%s': declares more elements than its data could hold "
                             "(limit %zu)",
                             name, limit);
    }
    *count = n;
    return AIM_OK;
}

/* Number of typed-field entries a tensor of this type holds, and how many entries make one
 * element (2 for complex types). */
static size_t typed_count(const Onnx__TensorProto *t, size_t *per_element) {
    *per_element = 1;
    switch (t->data_type) {
    case AIM_DTYPE_COMPLEX64: *per_element = 2; /* fall through */
    case AIM_DTYPE_FLOAT: return t->n_float_data;
    case AIM_DTYPE_COMPLEX128: *per_element = 2; /* fall through */
    case AIM_DTYPE_DOUBLE: return t->n_double_data;
    case AIM_DTYPE_INT64: return t->n_int64_data;
    case AIM_DTYPE_UINT32:
    case AIM_DTYPE_UINT64: return t->n_uint64_data;
    case AIM_DTYPE_STRING: return t->n_string_data;
    default: return t->n_int32_data;
    }
}

aim_status aim_onnx_tensor_validate(const Onnx__TensorProto *t, size_t external_size) {
    const char *name = t->name ? t->name : "";
    bool external =
        t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    size_t esize = aim_dtype_size(t->data_type);
    size_t per = 1;
    size_t typed = typed_count(t, &per);
    /* Whatever holds the data bounds the element count: one element needs at least one byte in
     * raw or external form, and at least one typed entry otherwise. */
    size_t limit = external ? external_size : t->raw_data.len ? t->raw_data.len : typed;
    size_t count;
    aim_status st = aim_onnx_tensor_count(t, limit, &count);
    if (st != AIM_OK) return st;
    if (t->data_type == AIM_DTYPE_STRING) {
        if (external || t->raw_data.len)
            return aim_error(AIM_ERR_PARSE, "tensor '%s': string tensors must use string_data",
                             name);
        if (typed != count)
            return aim_error(AIM_ERR_PARSE, "tensor '%s': %zu strings for %zu elements", name,
                             typed, count);
        return AIM_OK;
    }
    if (esize == 0) {
        if (count == 0) return AIM_OK;
        return aim_error(AIM_ERR_PARSE, "tensor '%s': unknown element type %d", name, t->data_type);
    }
    size_t bytes = count * esize; /* count <= limit <= a real buffer size, so no overflow */
    if (external) {
        if (bytes != external_size)
            return aim_error(AIM_ERR_PARSE,
                             "tensor '%s': external data holds %zu bytes, dims need %zu", name,
                             external_size, bytes);
    } else if (t->raw_data.len) {
        if (bytes != t->raw_data.len)
            return aim_error(AIM_ERR_PARSE, "tensor '%s': raw_data holds %zu bytes, dims need %zu",
                             name, t->raw_data.len, bytes);
    } else if (typed != count * per) {
        return aim_error(AIM_ERR_PARSE, "tensor '%s': holds %zu values, dims need %zu", name, typed,
                         count * per);
    }
    return AIM_OK;
}

static void narrow_int32(const int32_t *src, size_t n, size_t esize, uint8_t *dst) {
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)src[i];
        if (esize == 1)
            dst[i] = (uint8_t)v;
        else {
            uint16_t h = (uint16_t)v;
            memcpy(dst + 2 * i, &h, 2);
        }
    }
}

static void copy_typed(const Onnx__TensorProto *t, size_t count, size_t esize, uint8_t *dst) {
    switch (t->data_type) {
    case AIM_DTYPE_FLOAT:
    case AIM_DTYPE_COMPLEX64: memcpy(dst, t->float_data, count * esize); break;
    case AIM_DTYPE_DOUBLE:
    case AIM_DTYPE_COMPLEX128: memcpy(dst, t->double_data, count * esize); break;
    case AIM_DTYPE_INT64: memcpy(dst, t->int64_data, count * esize); break;
    case AIM_DTYPE_UINT64: memcpy(dst, t->uint64_data, count * esize); break;
    case AIM_DTYPE_UINT32:
        for (size_t i = 0; i < count; i++) {
            uint32_t v = (uint32_t)t->uint64_data[i];
            memcpy(dst + 4 * i, &v, 4);
        }
        break;
    case AIM_DTYPE_INT32: memcpy(dst, t->int32_data, count * esize); break;
    default: narrow_int32(t->int32_data, count, esize, dst); break;
    }
}

/* Checks t for decoding: its external bytes (or NULL) and its size in bytes. */
static aim_status decodable(const aim_model *m, const Onnx__TensorProto *t,
                            const aim_external_blob **blob_out, size_t *bytes) {
    const char *name = t->name ? t->name : "";
    if (t->data_type == AIM_DTYPE_STRING)
        return aim_error(AIM_ERR_UNSUPPORTED, "tensor '%s': string tensors are not supported",
                         name);
    const aim_external_blob *blob = m ? aim_model_external(m, t) : NULL;
    bool external =
        t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if (external && !blob)
        return aim_error(AIM_ERR_NOT_FOUND, "tensor '%s': external data was not loaded", name);
    aim_status st = aim_onnx_tensor_validate(t, blob ? blob->size : 0);
    if (st != AIM_OK) return st;
    size_t count;
    aim_onnx_tensor_count(t, SIZE_MAX, &count);
    *bytes = count * aim_dtype_size(t->data_type);
    *blob_out = blob;
    return AIM_OK;
}

aim_status aim_onnx_tensor_bytes(const aim_model *m, const Onnx__TensorProto *t, const void **data,
                                 size_t *byte_size) {
    const aim_external_blob *blob;
    *data = NULL;
    aim_status st = decodable(m, t, &blob, byte_size);
    if (st != AIM_OK) return st;
    const void *at = blob ? blob->data : t->raw_data.len ? t->raw_data.data : NULL;
    if ((uintptr_t)at % 16 == 0) *data = at; /* the alignment malloc gives */
    return AIM_OK;
}

aim_status aim_onnx_tensor_decode(const aim_model *m, const Onnx__TensorProto *t, void **data,
                                  size_t *byte_size) {
    const char *name = t->name ? t->name : "";
    const aim_external_blob *blob;
    size_t bytes, count, esize = aim_dtype_size(t->data_type);
    *data = NULL;
    *byte_size = 0;
    aim_status st = decodable(m, t, &blob, &bytes);
    if (st != AIM_OK) return st;
    count = esize ? bytes / esize : 0;
    uint8_t *buf = malloc(bytes ? bytes : 1);
    if (!buf)
        return aim_error(AIM_ERR_NOMEM, "tensor '%s': cannot allocate %zu bytes", name, bytes);
    if (blob)
        memcpy(buf, blob->data, bytes);
    else if (t->raw_data.len)
        memcpy(buf, t->raw_data.data, bytes);
    else if (count) /* a NULL typed field with 0 elements: memcpy(dst, NULL, 0) is UB */
        copy_typed(t, count, esize, buf);
    *data = buf;
    *byte_size = bytes;
    return AIM_OK;
}

aim_status aim_onnx_tensor_load_memory(const void *data, size_t size, Onnx__TensorProto **out) {
    *out = NULL;
    if (size > AIM_MODEL_MAX_BYTES)
        return aim_error(AIM_ERR_LIMIT, "tensor of %zu bytes is larger than 2 GiB", size);
    aim_status st = aim_onnx_prescan(&onnx__tensor_proto__descriptor, data, size);
    if (st != AIM_OK) return st;
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, size, data);
    if (!t) return aim_error(AIM_ERR_PARSE, "not a valid serialized TensorProto");
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        st = aim_error(AIM_ERR_UNSUPPORTED, "external data in a standalone tensor file");
    else
        st = aim_onnx_tensor_validate(t, 0);
    if (st != AIM_OK) {
        onnx__tensor_proto__free_unpacked(t, NULL);
        return st;
    }
    *out = t;
    return AIM_OK;
}

aim_status aim_onnx_tensor_load(const char *path, Onnx__TensorProto **out) {
    *out = NULL;
    uint8_t *bytes;
    size_t size;
    aim_status st = aim_file_read(path, AIM_MODEL_MAX_BYTES, &bytes, &size);
    if (st != AIM_OK) return st;
    st = aim_onnx_tensor_load_memory(bytes, size, out);
    free(bytes);
    if (st != AIM_OK) return aim_error_context(st, "%s", path);
    return AIM_OK;
}

const Onnx__AttributeProto *aim_onnx_node_attr(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

/* ---- Walking the model --------------------------------------------------------------------- */

static aim_status walk_graph(Onnx__GraphProto *g, aim_onnx_graph_fn fn, void *ctx) {
    aim_status st = fn(g, ctx);
    if (st != AIM_OK) return st;
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *node = g->node[i];
        for (size_t a = 0; a < node->n_attribute; a++) {
            Onnx__AttributeProto *attr = node->attribute[a];
            if (attr->g && (st = walk_graph(attr->g, fn, ctx)) != AIM_OK) return st;
            for (size_t k = 0; k < attr->n_graphs; k++)
                if ((st = walk_graph(attr->graphs[k], fn, ctx)) != AIM_OK) return st;
        }
    }
    return AIM_OK;
}

aim_status aim_onnx_walk_graphs(Onnx__ModelProto *model, aim_onnx_graph_fn fn, void *ctx) {
    if (!model->graph) return AIM_OK;
    return walk_graph(model->graph, fn, ctx);
}

typedef struct {
    aim_onnx_tensor_fn fn;
    void *ctx;
} tensor_walk;

static aim_status visit_sparse(Onnx__SparseTensorProto *s, tensor_walk *w) {
    aim_status st = AIM_OK;
    if (s->values && (st = w->fn(s->values, w->ctx)) != AIM_OK) return st;
    if (s->indices) st = w->fn(s->indices, w->ctx);
    return st;
}

static aim_status visit_graph_tensors(Onnx__GraphProto *g, void *ctx) {
    tensor_walk *w = ctx;
    aim_status st;
    for (size_t i = 0; i < g->n_initializer; i++)
        if ((st = w->fn(g->initializer[i], w->ctx)) != AIM_OK) return st;
    for (size_t i = 0; i < g->n_sparse_initializer; i++)
        if ((st = visit_sparse(g->sparse_initializer[i], w)) != AIM_OK) return st;
    for (size_t i = 0; i < g->n_node; i++) {
        Onnx__NodeProto *node = g->node[i];
        for (size_t a = 0; a < node->n_attribute; a++) {
            Onnx__AttributeProto *attr = node->attribute[a];
            if (attr->t && (st = w->fn(attr->t, w->ctx)) != AIM_OK) return st;
            for (size_t k = 0; k < attr->n_tensors; k++)
                if ((st = w->fn(attr->tensors[k], w->ctx)) != AIM_OK) return st;
            if (attr->sparse_tensor && (st = visit_sparse(attr->sparse_tensor, w)) != AIM_OK)
                return st;
            for (size_t k = 0; k < attr->n_sparse_tensors; k++)
                if ((st = visit_sparse(attr->sparse_tensors[k], w)) != AIM_OK) return st;
        }
    }
    return AIM_OK;
}

aim_status aim_onnx_walk_tensors(Onnx__ModelProto *model, aim_onnx_tensor_fn fn, void *ctx) {
    tensor_walk w = {fn, ctx};
    return aim_onnx_walk_graphs(model, visit_graph_tensors, &w);
}
