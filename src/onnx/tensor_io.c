/*
 * tensor_io.c: standalone TensorProto files <-> aim_tensor (see aim/tensor_io.h).
 */
#include "aim/tensor_io.h"

#include "core/util.h"
#include "onnx/onnx.h"

#include <stdlib.h>
#include <string.h>

static aim_status from_proto(const Onnx__TensorProto *t, aim_tensor *out, char **name) {
    if (t->n_dims > AIM_MAX_RANK)
        return aim_error(AIM_ERR_UNSUPPORTED, "tensor has rank %zu (max %d)", t->n_dims,
                         AIM_MAX_RANK);
    size_t bytes;
    void *data;
    aim_status st = aim_onnx_tensor_decode(NULL, t, &data, &bytes);
    if (st != AIM_OK) return st;
    char *copy = NULL;
    if (name && !(copy = aim_strdup(t->name ? t->name : ""))) {
        free(data);
        return aim_error(AIM_ERR_NOMEM, "out of memory");
    }
    memset(out, 0, sizeof *out);
    out->dtype = t->data_type;
    out->rank = (int)t->n_dims;
    for (size_t i = 0; i < t->n_dims; i++)
        out->dims[i] = t->dims[i];
    out->data = data;
    if (name) *name = copy;
    return AIM_OK;
}

aim_status aim_tensor_decode_pb(const void *data, size_t size, aim_tensor *out, char **name) {
    if (name) *name = NULL;
    Onnx__TensorProto *t;
    aim_status st = aim_onnx_tensor_load_memory(data, size, &t);
    if (st != AIM_OK) return st;
    st = from_proto(t, out, name);
    onnx__tensor_proto__free_unpacked(t, NULL);
    return st;
}

aim_status aim_tensor_load_pb(const char *path, aim_tensor *out, char **name) {
    uint8_t *bytes;
    size_t size;
    if (name) *name = NULL;
    aim_status st = aim_file_read(path, AIM_MODEL_MAX_BYTES, &bytes, &size);
    if (st != AIM_OK) return st;
    st = aim_tensor_decode_pb(bytes, size, out, name);
    free(bytes);
    if (st != AIM_OK) return aim_error_context(st, "%s", path);
    return AIM_OK;
}

aim_status aim_tensor_save_pb(const char *path, const char *name, const aim_tensor *t) {
    if (t->rank < 0 || t->rank > AIM_MAX_RANK || aim_dtype_size(t->dtype) == 0)
        return aim_error(AIM_ERR_INVALID_ARG, "%s: cannot save a tensor of type %s, rank %d", path,
                         aim_dtype_name(t->dtype), t->rank);
    Onnx__TensorProto p = ONNX__TENSOR_PROTO__INIT;
    int64_t dims[AIM_MAX_RANK];
    size_t count = 1;
    for (int i = 0; i < t->rank; i++) {
        dims[i] = t->dims[i];
        count *= (size_t)t->dims[i];
    }
    p.n_dims = (size_t)t->rank;
    p.dims = dims;
    p.has_data_type = 1;
    p.data_type = t->dtype;
    p.name = (char *)name;
    p.has_raw_data = 1;
    p.raw_data.len = count * aim_dtype_size(t->dtype);
    p.raw_data.data = t->data;
    size_t n = onnx__tensor_proto__get_packed_size(&p);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return aim_error(AIM_ERR_NOMEM, "out of memory");
    onnx__tensor_proto__pack(&p, buf);
    aim_status st = aim_file_write_atomic(path, buf, n);
    free(buf);
    return st;
}
