/*
 * model_io.c: loading and saving ONNX models, including external data.
 *
 * Load = read the file (bounded) -> prescan the wire format (bounded depth) -> protobuf-c decode
 * -> read external data (confined to the model's folder) -> check every tensor's size against
 * the bytes present. Only then is the model handed out, so later layers may trust sizes.
 *
 * Save = pack -> write external data files -> write the model, each file atomically. External
 * tensors keep their location/offset/length entries, so a saved copy is byte-for-byte the same
 * message as the original.
 */
#include "core/util.h"
#include "onnx/onnx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- External data ------------------------------------------------------------------------- */

typedef struct {
    const char *location;
    uint64_t offset;
    uint64_t length;
    bool has_length;
} external_ref;

static aim_status parse_u64(const char *text, const char *what, const char *tensor, uint64_t *out) {
    char *end;
    errno = 0;
    if (!text || !*text || *text == '-') goto bad;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end) goto bad;
    *out = v;
    return AIM_OK;
bad:
    return aim_error(AIM_ERR_PARSE, "tensor '%s': external data %s '%s' is not a number", tensor,
                     what, text ? text : "");
}

static aim_status parse_external_ref(const Onnx__TensorProto *t, external_ref *ref) {
    const char *name = t->name ? t->name : "";
    memset(ref, 0, sizeof *ref);
    for (size_t i = 0; i < t->n_external_data; i++) {
        const char *key = t->external_data[i]->key ? t->external_data[i]->key : "";
        const char *value = t->external_data[i]->value;
        aim_status st = AIM_OK;
        if (strcmp(key, "location") == 0)
            ref->location = value;
        else if (strcmp(key, "offset") == 0)
            st = parse_u64(value, "offset", name, &ref->offset);
        else if (strcmp(key, "length") == 0) {
            st = parse_u64(value, "length", name, &ref->length);
            ref->has_length = true;
        }
        if (st != AIM_OK) return st;
    }
    if (!ref->location)
        return aim_error(AIM_ERR_PARSE, "tensor '%s': external data without a location", name);
    return AIM_OK;
}

/* Expected byte size from dims, bounded by what the file could hold. */
static aim_status external_expected_size(const Onnx__TensorProto *t, uint64_t available,
                                         size_t *bytes) {
    size_t count, esize = aim_dtype_size(t->data_type);
    if (esize == 0)
        return aim_error(AIM_ERR_PARSE, "tensor '%s': external data of element type %s",
                         t->name ? t->name : "", aim_dtype_name(t->data_type));
    aim_status st = aim_onnx_tensor_count(t, (size_t)available, &count);
    if (st != AIM_OK) return st;
    *bytes = count * esize;
    return AIM_OK;
}

static aim_status read_external(aim_model *m, const Onnx__TensorProto *t, aim_external_blob *blob) {
    const char *name = t->name ? t->name : "";
    if (!m->dir)
        return aim_error(AIM_ERR_UNSUPPORTED,
                         "tensor '%s': external data needs the model's folder (load from a file)",
                         name);
    external_ref ref;
    aim_status st = parse_external_ref(t, &ref);
    if (st != AIM_OK) return st;
    if ((st = aim_path_confined(m->dir, ref.location)) != AIM_OK)
        return aim_error_context(st, "tensor '%s': external data", name);
    char *path = aim_path_join(m->dir, ref.location);
    if (!path) return aim_error(AIM_ERR_NOMEM, "out of memory");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = aim_error(AIM_ERR_IO, "tensor '%s': cannot read external data file '%s': %s", name,
                       ref.location, fd < 0 ? strerror(errno) : "not a regular file");
        goto done;
    }
    uint64_t file_size = (uint64_t)sb.st_size;
    if (ref.offset > file_size) {
        st = aim_error(AIM_ERR_PARSE, "tensor '%s': offset %llu is past the end of '%s'", name,
                       (unsigned long long)ref.offset, ref.location);
        goto done;
    }
    size_t expected = 0;
    if ((st = external_expected_size(t, file_size - ref.offset, &expected)) != AIM_OK) goto done;
    if (expected > file_size - ref.offset) { /* the count bound above ignores the element size */
        st = aim_error(AIM_ERR_PARSE,
                       "tensor '%s': needs %zu bytes at offset %llu, past the end "
                       "of '%s'",
                       name, expected, (unsigned long long)ref.offset, ref.location);
        goto done;
    }
    if (ref.has_length && ref.length != expected) {
        st = aim_error(AIM_ERR_PARSE, "tensor '%s': external length %llu, dims need %zu bytes",
                       name, (unsigned long long)ref.length, expected);
        goto done;
    }
    blob->tensor = t;
    blob->size = expected;
    blob->data = malloc(expected ? expected : 1);
    if (!blob->data) {
        st = aim_error(AIM_ERR_NOMEM, "tensor '%s': cannot allocate %zu bytes", name, expected);
        goto done;
    }
    size_t got = 0;
    while (got < expected) {
        ssize_t r = pread(fd, blob->data + got, expected - got, (off_t)(ref.offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            st = aim_error(AIM_ERR_IO, "tensor '%s': short read from '%s'", name, ref.location);
            goto done;
        }
        got += (size_t)r;
    }
done:
    if (fd >= 0) close(fd);
    free(path);
    return st;
}

static bool is_external(const Onnx__TensorProto *t) {
    return t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

static aim_status load_tensor(Onnx__TensorProto *t, void *ctx) {
    aim_model *m = ctx;
    if (!is_external(t)) return aim_onnx_tensor_validate(t, 0);
    aim_external_blob *grown = realloc(m->blobs, (m->blob_count + 1) * sizeof *grown);
    if (!grown) return aim_error(AIM_ERR_NOMEM, "out of memory");
    m->blobs = grown;
    aim_external_blob *blob = &m->blobs[m->blob_count];
    memset(blob, 0, sizeof *blob);
    aim_status st = read_external(m, t, blob);
    if (st != AIM_OK) {
        free(blob->data);
        return st;
    }
    m->blob_count++;
    return aim_onnx_tensor_validate(t, blob->size);
}

const aim_external_blob *aim_model_external(const aim_model *m, const Onnx__TensorProto *t) {
    for (size_t i = 0; i < m->blob_count; i++)
        if (m->blobs[i].tensor == t) return &m->blobs[i];
    return NULL;
}

/* ---- Load ---------------------------------------------------------------------------------- */

static aim_status decode(const uint8_t *data, size_t size, aim_model *m) {
    aim_status st = aim_onnx_prescan(&onnx__model_proto__descriptor, data, size);
    if (st != AIM_OK) return st;
    m->proto = onnx__model_proto__unpack(NULL, size, data);
    if (!m->proto)
        return aim_error(AIM_ERR_PARSE, "not a valid ONNX model (protobuf decoding failed)");
    if (!m->proto->graph) return aim_error(AIM_ERR_PARSE, "the model has no graph");
    return aim_onnx_walk_tensors(m->proto, load_tensor, m);
}

aim_status aim_model_load_memory(const void *data, size_t size, const char *dir, aim_model **out) {
    *out = NULL;
    if (size > AIM_MODEL_MAX_BYTES)
        return aim_error(AIM_ERR_LIMIT, "model of %zu bytes is larger than 2 GiB", size);
    aim_model *m = calloc(1, sizeof *m);
    if (!m) return aim_error(AIM_ERR_NOMEM, "out of memory");
    if (dir && !(m->dir = aim_strdup(dir))) {
        free(m);
        return aim_error(AIM_ERR_NOMEM, "out of memory");
    }
    aim_status st = decode(data, size, m);
    if (st != AIM_OK) {
        aim_model_free(m);
        return st;
    }
    *out = m;
    return AIM_OK;
}

aim_status aim_model_load(const char *path, aim_model **out) {
    *out = NULL;
    uint8_t *data;
    size_t size;
    aim_status st = aim_file_read(path, AIM_MODEL_MAX_BYTES, &data, &size);
    if (st != AIM_OK) return st;
    char *dir = aim_path_dirname(path);
    if (!dir) {
        free(data);
        return aim_error(AIM_ERR_NOMEM, "out of memory");
    }
    st = aim_model_load_memory(data, size, dir, out);
    free(dir);
    free(data);
    if (st != AIM_OK) return aim_error_context(st, "%s", path);
    return AIM_OK;
}

void aim_model_free(aim_model *m) {
    if (!m) return;
    if (m->proto) onnx__model_proto__free_unpacked(m->proto, NULL);
    for (size_t i = 0; i < m->blob_count; i++)
        free(m->blobs[i].data);
    free(m->blobs);
    free(m->dir);
    free(m);
}

/* ---- Save ---------------------------------------------------------------------------------- */

aim_status aim_model_save_memory(const aim_model *m, uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    size_t n = onnx__model_proto__get_packed_size(m->proto);
    if (n > AIM_MODEL_MAX_BYTES)
        return aim_error(AIM_ERR_LIMIT, "the model would be %zu bytes, over protobuf's 2 GiB", n);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return aim_error(AIM_ERR_NOMEM, "cannot allocate %zu bytes", n);
    onnx__model_proto__pack(m->proto, buf);
    *data = buf;
    *size = n;
    return AIM_OK;
}

/* Writes every external tensor that points at `location` into one file in `dir`. */
static aim_status write_external_file(const aim_model *m, const char *dir, const char *location) {
    uint64_t file_size = 0;
    for (size_t i = 0; i < m->blob_count; i++) {
        external_ref ref;
        if (parse_external_ref(m->blobs[i].tensor, &ref) != AIM_OK) continue;
        if (strcmp(ref.location, location) != 0) continue;
        if (ref.offset + m->blobs[i].size > file_size) file_size = ref.offset + m->blobs[i].size;
    }
    if (file_size > AIM_MODEL_MAX_BYTES * 8ull)
        return aim_error(AIM_ERR_LIMIT, "external data file '%s' would be too large", location);
    uint8_t *buf = calloc(1, file_size ? (size_t)file_size : 1);
    if (!buf)
        return aim_error(AIM_ERR_NOMEM, "cannot allocate %llu bytes",
                         (unsigned long long)file_size);
    for (size_t i = 0; i < m->blob_count; i++) {
        external_ref ref;
        if (parse_external_ref(m->blobs[i].tensor, &ref) != AIM_OK) continue;
        if (strcmp(ref.location, location) == 0)
            memcpy(buf + ref.offset, m->blobs[i].data, m->blobs[i].size);
    }
    char *path = aim_path_join(dir, location);
    aim_status st = path ? aim_file_write_atomic(path, buf, (size_t)file_size)
                         : aim_error(AIM_ERR_NOMEM, "out of memory");
    free(path);
    free(buf);
    return st;
}

static aim_status write_external(const aim_model *m, const char *dir) {
    for (size_t i = 0; i < m->blob_count; i++) {
        external_ref ref;
        aim_status st = parse_external_ref(m->blobs[i].tensor, &ref);
        if (st != AIM_OK) return st;
        bool seen = false; /* write each file once, at its first tensor */
        for (size_t j = 0; j < i && !seen; j++) {
            external_ref other;
            if (parse_external_ref(m->blobs[j].tensor, &other) == AIM_OK &&
                strcmp(other.location, ref.location) == 0)
                seen = true;
        }
        if (!seen && (st = write_external_file(m, dir, ref.location)) != AIM_OK) return st;
    }
    return AIM_OK;
}

aim_status aim_model_save(aim_model *m, const char *path) {
    uint8_t *data;
    size_t size;
    aim_status st = aim_model_save_memory(m, &data, &size);
    if (st == AIM_OK && m->blob_count) {
        char *dir = aim_path_dirname(path);
        st = dir ? write_external(m, dir) : aim_error(AIM_ERR_NOMEM, "out of memory");
        free(dir);
    }
    if (st == AIM_OK) st = aim_file_write_atomic(path, data, size);
    free(data);
    if (st != AIM_OK) return aim_error_context(st, "%s", path);
    return AIM_OK;
}
