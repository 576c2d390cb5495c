/*
 * program_io.c: the binary form of a compiled int8 program (docs/program-format.md).
 *
 * Little-endian, versioned, checksummed. The reader treats its bytes as hostile: every length
 * and count is checked against the bytes that remain before anything is allocated, records
 * must be consumed exactly (no slack, no trailing bytes, reserved fields zero), and the result
 * goes through aim_program_validate. Because the reader accepts exactly one encoding of each
 * program, deserialize followed by serialize gives back the same bytes.
 */
#include "cpu/program.h"

#include "core/util.h"

#include <stdlib.h>
#include <string.h>

#define MAGIC             "AIMP"
#define HEADER_LEN        24u
#define TENSOR_RECORD_MIN 52u  /* a tensor record without its name */
#define OP_RECORD_MIN     144u /* an op record without inputs and arrays */

/* ---- CRC-32 -------------------------------------------------------------------------------- */

uint32_t aim_program_crc32(const void *data, size_t size) {
    /* Table built per call (2 K operations, nothing next to the payload) so that there is no
     * shared mutable state between threads. */
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    const uint8_t *b = data;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++)
        crc = table[(crc ^ b[i]) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

/* ---- Writer -------------------------------------------------------------------------------- */

typedef struct {
    uint8_t *data;
    size_t len, cap;
    bool failed;
} writer;

static void put(writer *w, const void *v, size_t n) {
    if (w->failed || n == 0) return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *grown = realloc(w->data, cap);
        if (!grown) {
            w->failed = true;
            return;
        }
        w->data = grown;
        w->cap = cap;
    }
    memcpy(w->data + w->len, v, n);
    w->len += n;
}

static void put_u8(writer *w, uint8_t v) {
    put(w, &v, 1);
}
static void put_u32(writer *w, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(w, b, 4);
}
static void put_u64(writer *w, uint64_t v) {
    put_u32(w, (uint32_t)v);
    put_u32(w, (uint32_t)(v >> 32));
}
static void put_i32(writer *w, int32_t v) {
    put_u32(w, (uint32_t)v);
}
static void put_i64(writer *w, int64_t v) {
    put_u64(w, (uint64_t)v);
}
static void put_f32(writer *w, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    put_u32(w, u);
}

/* Overwrites 4 bytes at `at` (record lengths and the header, known only afterwards). */
static void patch_u32(writer *w, size_t at, uint32_t v) {
    if (w->failed) return;
    for (int i = 0; i < 4; i++)
        w->data[at + i] = (uint8_t)(v >> (8 * i));
}

static void write_tensor(writer *w, const aim_prog_tensor *t) {
    size_t at = w->len;
    uint32_t name_len = t->name ? (uint32_t)strlen(t->name) : 0;
    put_u32(w, 0);
    put_i32(w, t->dtype);
    put_u32(w, (uint32_t)t->rank);
    for (int d = 0; d < 4; d++)
        put_i64(w, d < t->rank ? t->dims[d] : 0);
    put_f32(w, t->scale);
    put_i32(w, t->zero_point);
    put_u32(w, name_len);
    put(w, t->name, name_len);
    patch_u32(w, at, (uint32_t)(w->len - at - 4));
}

static void put_i64s(writer *w, const int64_t *v, int n) {
    for (int i = 0; i < n; i++)
        put_i64(w, v[i]);
}

/* Weight array lengths of a conv (zero for other ops). */
static void op_counts(const aim_program *p, const aim_prog_op *op, uint64_t *nw, uint32_t *ns,
                      uint32_t *nb) {
    *nw = 0;
    *ns = *nb = 0;
    if (op->kind != AIM_PROG_CONV) return;
    const aim_prog_tensor *x = &p->tensors[op->in[0]], *y = &p->tensors[op->out];
    *ns = (uint32_t)y->dims[1];
    *nb = op->bias ? *ns : 0;
    *nw = (uint64_t)y->dims[1] * (uint64_t)(x->dims[1] / op->group) * (uint64_t)op->kernel[0] *
          (uint64_t)op->kernel[1];
}

static void write_op(writer *w, const aim_program *p, const aim_prog_op *op) {
    size_t at = w->len;
    uint64_t nw;
    uint32_t ns, nb;
    op_counts(p, op, &nw, &ns, &nb);
    put_u32(w, 0);
    put_u32(w, (uint32_t)op->kind);
    put_u32(w, (uint32_t)op->n_in);
    for (int i = 0; i < op->n_in; i++)
        put_i32(w, op->in[i]);
    put_i32(w, op->out);
    put_i32(w, op->residual);
    put_i64s(w, op->kernel, 2);
    put_i64s(w, op->strides, 2);
    put_i64s(w, op->pads, 4);
    put_i64s(w, op->dilations, 2);
    put_i64(w, op->group);
    put_i64(w, op->axis);
    put_u32(w, (uint32_t)op->act);
    put_f32(w, op->act_alpha);
    put_f32(w, op->act_beta);
    put_u8(w, op->count_include_pad ? 1 : 0);
    put(w, "\0\0\0", 3); /* reserved */
    put_u64(w, nw);
    put_u32(w, ns);
    put_u32(w, nb);
    put(w, op->weights, (size_t)nw);
    for (uint32_t i = 0; i < ns; i++)
        put_f32(w, op->w_scale[i]);
    for (uint32_t i = 0; i < nb; i++)
        put_i32(w, op->bias[i]);
    patch_u32(w, at, (uint32_t)(w->len - at - 4));
}

static void put_index_list(writer *w, const int *v, size_t n) {
    put_u32(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        put_i32(w, v[i]);
}

static void write_payload(writer *w, const aim_program *p) {
    uint32_t target_len = (uint32_t)strlen(p->target);
    put_u32(w, target_len);
    put(w, p->target, target_len);
    put_u32(w, p->required_features);
    put_u32(w, (uint32_t)p->n_tensors);
    for (size_t i = 0; i < p->n_tensors; i++)
        write_tensor(w, &p->tensors[i]);
    put_u32(w, (uint32_t)p->n_ops);
    for (size_t i = 0; i < p->n_ops; i++)
        write_op(w, p, &p->ops[i]);
    put_index_list(w, p->inputs, p->n_inputs);
    put_index_list(w, p->outputs, p->n_outputs);
}

aim_status aim_program_serialize(const aim_program *p, uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    aim_status st = aim_program_validate(p);
    if (st != AIM_OK) return aim_error_context(st, "serializing a program");
    writer w = {0};
    put(&w, MAGIC, 4);
    put_u32(&w, AIM_PROGRAM_FORMAT_VERSION);
    put_u32(&w, HEADER_LEN);
    put_u32(&w, 0); /* CRC-32, patched below */
    put_u64(&w, 0); /* payload length, patched below */
    write_payload(&w, p);
    if (w.failed) {
        free(w.data);
        return aim_error(AIM_ERR_NOMEM, "out of memory serializing a program");
    }
    uint64_t payload = w.len - HEADER_LEN;
    patch_u32(&w, 12, aim_program_crc32(w.data + HEADER_LEN, (size_t)payload));
    patch_u32(&w, 16, (uint32_t)payload);
    patch_u32(&w, 20, (uint32_t)(payload >> 32));
    *data = w.data;
    *size = w.len;
    return AIM_OK;
}

/* ---- Reader -------------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *base;
    size_t pos, end; /* pos advances; end is the end of the current record or payload */
    aim_status st;   /* first error, AIM_OK while good */
} reader;

static aim_status rfail(reader *r, const char *what) {
    if (r->st == AIM_OK) r->st = aim_error(AIM_ERR_PARSE, "program: %s at byte %zu", what, r->pos);
    return r->st;
}

/* Pointer to the next n bytes, or NULL (and the error) when fewer remain. */
static const uint8_t *take(reader *r, size_t n) {
    if (r->st != AIM_OK) return NULL;
    if (n > r->end - r->pos) {
        rfail(r, "truncated data");
        return NULL;
    }
    const uint8_t *b = r->base + r->pos;
    r->pos += n;
    return b;
}

static uint32_t le32(const uint8_t *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint32_t get_u32(reader *r) {
    const uint8_t *b = take(r, 4);
    return b ? le32(b) : 0;
}
static uint64_t get_u64(reader *r) {
    uint64_t lo = get_u32(r);
    return lo | (uint64_t)get_u32(r) << 32;
}
static int32_t get_i32(reader *r) {
    return (int32_t)get_u32(r);
}
static int64_t get_i64(reader *r) {
    return (int64_t)get_u64(r);
}
static float get_f32(reader *r) {
    uint32_t u = get_u32(r);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* A count of items of `item` bytes each: refused when they cannot fit in what remains, so a
 * hostile count never becomes a large allocation. */
static size_t get_count(reader *r, uint64_t n, size_t item, uint64_t max) {
    if (r->st != AIM_OK) return 0;
    if (n > max || (item && n > (r->end - r->pos) / item)) {
        rfail(r, "count larger than the data or the limit");
        return 0;
    }
    return (size_t)n;
}

/* Enters a length-prefixed record; returns the end to restore afterwards. */
static size_t record_begin(reader *r, size_t min) {
    size_t outer = r->end;
    uint32_t len = get_u32(r);
    if (r->st == AIM_OK && (len < min || len > r->end - r->pos)) rfail(r, "bad record length");
    if (r->st == AIM_OK) r->end = r->pos + len;
    return outer;
}

static void record_end(reader *r, size_t outer) {
    if (r->st == AIM_OK && r->pos != r->end) rfail(r, "record longer than its fields");
    r->end = outer;
}

/* A name without NUL bytes (NUL would make the round trip lossy). */
static char *get_name(reader *r) {
    size_t n = get_count(r, get_u32(r), 1, AIM_PROGRAM_MAX_NAME);
    const uint8_t *b = take(r, n);
    if (!b || n == 0) return NULL;
    if (memchr(b, 0, n)) {
        rfail(r, "NUL byte inside a name");
        return NULL;
    }
    char *s = malloc(n + 1);
    if (!s) {
        r->st = aim_error(AIM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(s, b, n);
    s[n] = 0;
    return s;
}

static void read_tensor(reader *r, aim_prog_tensor *t) {
    size_t outer = record_begin(r, TENSOR_RECORD_MIN);
    t->dtype = get_i32(r);
    uint32_t rank = get_u32(r);
    if (rank > 4 && r->st == AIM_OK) rfail(r, "tensor rank above 4");
    t->rank = rank <= 4 ? (int)rank : 0;
    for (int d = 0; d < 4; d++) {
        t->dims[d] = get_i64(r);
        if (r->st == AIM_OK && d >= t->rank && t->dims[d] != 0) rfail(r, "unused dimension not 0");
    }
    t->scale = get_f32(r);
    t->zero_point = get_i32(r);
    t->name = get_name(r);
    record_end(r, outer);
}

static void *get_array(reader *r, uint64_t n, size_t item) {
    size_t count = get_count(r, n, item, AIM_PROGRAM_MAX_ELEMENTS);
    const uint8_t *b = take(r, count * item);
    if (!b || count == 0) return NULL;
    uint8_t *a = malloc(count * item);
    if (!a) {
        r->st = aim_error(AIM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    /* Little-endian on disk; element-wise decode keeps this right on any host. */
    for (size_t i = 0; i < count; i++) {
        if (item == 1)
            a[i] = b[i];
        else {
            uint32_t v = le32(b + 4 * i);
            memcpy(a + 4 * i, &v, 4);
        }
    }
    return a;
}

static void read_op_params(reader *r, aim_prog_op *op) {
    op->out = get_i32(r);
    op->residual = get_i32(r);
    for (int i = 0; i < 2; i++)
        op->kernel[i] = get_i64(r);
    for (int i = 0; i < 2; i++)
        op->strides[i] = get_i64(r);
    for (int i = 0; i < 4; i++)
        op->pads[i] = get_i64(r);
    for (int i = 0; i < 2; i++)
        op->dilations[i] = get_i64(r);
    op->group = get_i64(r);
    op->axis = get_i64(r);
    op->act = (aim_prog_act)get_u32(r);
    op->act_alpha = get_f32(r);
    op->act_beta = get_f32(r);
    const uint8_t *flags = take(r, 4);
    if (flags && (flags[0] > 1 || flags[1] || flags[2] || flags[3]))
        rfail(r, "bad flag or reserved byte");
    op->count_include_pad = flags && flags[0];
}

/* Reads an op; nw, ns and nb get the file's weight, scale and bias counts. */
static void read_op(reader *r, aim_prog_op *op, uint64_t *nw, uint32_t *ns, uint32_t *nb) {
    size_t outer = record_begin(r, OP_RECORD_MIN);
    op->kind = (aim_prog_op_kind)get_u32(r);
    uint32_t n_in = get_u32(r);
    if (r->st == AIM_OK && n_in > AIM_PROGRAM_MAX_INPUTS) rfail(r, "too many op inputs");
    op->n_in = r->st == AIM_OK ? (int)n_in : 0;
    for (int i = 0; i < op->n_in; i++)
        op->in[i] = get_i32(r);
    read_op_params(r, op);
    *nw = get_u64(r);
    *ns = get_u32(r);
    *nb = get_u32(r);
    op->weights = get_array(r, *nw, 1);
    op->w_scale = get_array(r, *ns, 4);
    op->bias = get_array(r, *nb, 4);
    record_end(r, outer);
}

static int *read_index_list(reader *r, size_t *n) {
    *n = get_count(r, get_u32(r), 4, AIM_PROGRAM_MAX_INPUTS);
    int *v = calloc(*n ? *n : 1, sizeof *v);
    if (!v) {
        r->st = aim_error(AIM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < *n; i++)
        v[i] = get_i32(r);
    return v;
}

static void read_target(reader *r, aim_program *p) {
    size_t n = get_count(r, get_u32(r), 1, sizeof p->target - 1);
    const uint8_t *b = take(r, n);
    if (b && (n == 0 || memchr(b, 0, n))) rfail(r, "empty target or NUL inside it");
    if (b) memcpy(p->target, b, n);
}

/* Weight counts must match the shapes before validate reads the arrays. When the op's
 * structure is too broken to compute them, validate refuses it before touching the arrays. */
static aim_status check_counts(const aim_program *p, const aim_prog_op *op, size_t i, uint64_t nw,
                               uint32_t ns, uint32_t nb) {
    if ((unsigned)op->kind >= AIM_PROG_OP_COUNT) return AIM_OK; /* validate names it */
    if (op->kind != AIM_PROG_CONV) {
        if (nw || ns || nb)
            return aim_error(AIM_ERR_PARSE, "program op %zu: weights on a non-conv op", i);
        return AIM_OK;
    }
    if (op->n_in < 1 || op->in[0] < 0 || (size_t)op->in[0] >= p->n_tensors || op->out < 0 ||
        (size_t)op->out >= p->n_tensors)
        return AIM_OK;
    const aim_prog_tensor *x = &p->tensors[op->in[0]], *y = &p->tensors[op->out];
    if (x->rank != 4 || y->rank != 4 || x->dims[1] < 1 || y->dims[1] < 1 ||
        y->dims[1] > AIM_PROGRAM_MAX_ELEMENTS || op->group < 1 || x->dims[1] % op->group ||
        op->kernel[0] < 1 || op->kernel[1] < 1 || op->kernel[0] > 65536 || op->kernel[1] > 65536)
        return AIM_OK;
    uint64_t want;
    bool ok =
        !__builtin_mul_overflow((uint64_t)y->dims[1], (uint64_t)(x->dims[1] / op->group), &want) &&
        !__builtin_mul_overflow(want, (uint64_t)op->kernel[0], &want) &&
        !__builtin_mul_overflow(want, (uint64_t)op->kernel[1], &want);
    if (!ok || nw != want)
        return aim_error(AIM_ERR_PARSE,
                         "program op %zu (conv): %llu weights, the shapes need "
                         "O*(I/group)*KH*KW = %llu",
                         i, (unsigned long long)nw, ok ? (unsigned long long)want : 0ull);
    if (ns != (uint64_t)y->dims[1] || (nb != 0 && nb != ns))
        return aim_error(AIM_ERR_PARSE,
                         "program op %zu (conv): %u weight scales and %u biases "
                         "for %lld output channels",
                         i, ns, nb, (long long)y->dims[1]);
    return AIM_OK;
}

static void read_tensors(reader *r, aim_program *p) {
    size_t n = get_count(r, get_u32(r), TENSOR_RECORD_MIN + 4, AIM_PROGRAM_MAX_TENSORS);
    if (r->st != AIM_OK || n == 0) return;
    if (!(p->tensors = calloc(n, sizeof *p->tensors))) {
        r->st = aim_error(AIM_ERR_NOMEM, "out of memory");
        return;
    }
    for (; p->n_tensors < n && r->st == AIM_OK; p->n_tensors++)
        read_tensor(r, &p->tensors[p->n_tensors]);
}

static void read_ops(reader *r, aim_program *p) {
    size_t n = get_count(r, get_u32(r), OP_RECORD_MIN + 4, AIM_PROGRAM_MAX_OPS);
    if (r->st != AIM_OK || n == 0) return;
    if (!(p->ops = calloc(n, sizeof *p->ops))) {
        r->st = aim_error(AIM_ERR_NOMEM, "out of memory");
        return;
    }
    for (; p->n_ops < n && r->st == AIM_OK; p->n_ops++) {
        uint64_t nw;
        uint32_t ns, nb;
        read_op(r, &p->ops[p->n_ops], &nw, &ns, &nb);
        if (r->st == AIM_OK) r->st = check_counts(p, &p->ops[p->n_ops], p->n_ops, nw, ns, nb);
    }
}

static aim_status read_payload(reader *r, aim_program *p) {
    read_target(r, p);
    p->required_features = get_u32(r);
    read_tensors(r, p);
    read_ops(r, p);
    p->inputs = read_index_list(r, &p->n_inputs);
    p->outputs = read_index_list(r, &p->n_outputs);
    if (r->st == AIM_OK && r->pos != r->end) rfail(r, "trailing bytes after the program");
    return r->st;
}

static aim_status check_header(const uint8_t *data, size_t size) {
    if (size < 4 || memcmp(data, MAGIC, 4) != 0)
        return aim_error(AIM_ERR_PARSE, "not an aim program (no \"AIMP\" magic)");
    if (size < 8) return aim_error(AIM_ERR_PARSE, "program: truncated header (%zu bytes)", size);
    uint32_t version = le32(data + 4);
    if (version != AIM_PROGRAM_FORMAT_VERSION)
        return aim_error(AIM_ERR_UNSUPPORTED,
                         "program format version %u, this aim reads "
                         "version %d",
                         version, AIM_PROGRAM_FORMAT_VERSION);
    if (size < HEADER_LEN)
        return aim_error(AIM_ERR_PARSE, "program: %zu bytes, shorter than its %u-byte header", size,
                         HEADER_LEN);
    if (le32(data + 8) != HEADER_LEN)
        return aim_error(AIM_ERR_PARSE, "program: header length %u, version 1 has %u",
                         le32(data + 8), HEADER_LEN);
    uint64_t payload = (uint64_t)le32(data + 16) | (uint64_t)le32(data + 20) << 32;
    if (payload != size - HEADER_LEN)
        return aim_error(AIM_ERR_PARSE,
                         "program: header says %llu payload bytes, %zu present "
                         "(truncated or trailing data)",
                         (unsigned long long)payload, size - HEADER_LEN);
    uint32_t want = le32(data + 12), got = aim_program_crc32(data + HEADER_LEN, size - HEADER_LEN);
    if (want != got)
        return aim_error(AIM_ERR_PARSE,
                         "program: checksum mismatch (header CRC-32 %08x, "
                         "payload %08x): the program is corrupted",
                         want, got);
    return AIM_OK;
}

aim_status aim_program_deserialize(const uint8_t *data, size_t size, aim_program **out) {
    *out = NULL;
    aim_status st = check_header(data, size);
    if (st != AIM_OK) return st;
    aim_program *p = calloc(1, sizeof *p);
    if (!p) return aim_error(AIM_ERR_NOMEM, "out of memory");
    reader r = {data, HEADER_LEN, size, AIM_OK};
    st = read_payload(&r, p);
    if (st == AIM_OK && (st = aim_program_validate(p)) != AIM_OK)
        st = aim_error_context(AIM_ERR_PARSE, "invalid program");
    if (st != AIM_OK) {
        aim_program_free(p);
        return st;
    }
    *out = p;
    return AIM_OK;
}
