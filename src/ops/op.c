/*
 * op.c: the operator registry (family tables) and the helpers kernels share: errors naming the
 * node, attribute getters, axis normalisation and broadcasting.
 */
#include "ops/op.h"

#include "core/util.h"
#include "ops/families.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const aim_op_def *const families[] = {
#define AIM_OPS_FAMILY_ROW(name) aim_ops_##name,
    AIM_OPS_FAMILIES(AIM_OPS_FAMILY_ROW)
#undef AIM_OPS_FAMILY_ROW
};

size_t aim_ops_count(void) {
    size_t n = 0;
    for (size_t f = 0; f < AIM_ARRAY_LEN(families); f++)
        for (const aim_op_def *d = families[f]; d->op_type; d++)
            n++;
    return n;
}

const aim_op_def *aim_ops_at(size_t i) {
    for (size_t f = 0; f < AIM_ARRAY_LEN(families); f++)
        for (const aim_op_def *d = families[f]; d->op_type; d++)
            if (i-- == 0) return d;
    return NULL;
}

static bool same_domain(const char *a, const char *b) {
    if (strcmp(a, "ai.onnx") == 0) a = "";
    if (strcmp(b, "ai.onnx") == 0) b = "";
    return strcmp(a, b) == 0;
}

aim_status aim_ops_find(const char *op_type, const char *domain, int opset,
                        const aim_op_def **out) {
    *out = NULL;
    bool known = false;
    for (size_t f = 0; f < AIM_ARRAY_LEN(families); f++) {
        for (const aim_op_def *d = families[f]; d->op_type; d++) {
            if (strcmp(d->op_type, op_type) != 0 || !same_domain(d->domain, domain)) continue;
            known = true;
            if (opset >= d->since && opset <= d->until) {
                *out = d;
                return AIM_OK;
            }
        }
    }
    if (known)
        return aim_error(AIM_ERR_UNSUPPORTED, "operator %s is not supported at opset %d", op_type,
                         opset);
    return aim_error(AIM_ERR_UNSUPPORTED, "operator %s%s%s is not supported",
                     domain[0] ? domain : "", domain[0] ? "." : "", op_type);
}

aim_status aim_op_fail(const aim_op_ctx *c, aim_status status, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const Onnx__NodeProto *n = c->node;
    return aim_error(status, "node '%s' (%s, opset %d): %s", n->name ? n->name : "",
                     n->op_type ? n->op_type : "?", c->opset, msg);
}

void aim_op_dynamic(aim_op_ctx *c, int i) {
    if (i < c->n_out && c->out[i]) c->out[i]->rank = AIM_RANK_UNKNOWN;
}

aim_status aim_op_set_output(aim_op_ctx *c, int i, int dtype, int rank, const int64_t *dims) {
    if (i >= c->n_out || !c->out[i]) return AIM_OK;
    aim_status st = aim_tensor_set_shape(c->out[i], dtype, rank, dims);
    if (st != AIM_OK) return aim_op_fail(c, st, "output %d: %s", i, aim_last_error());
    return AIM_OK;
}

aim_status aim_op_alloc(aim_op_ctx *c, int i, int dtype, int rank, const int64_t *dims) {
    if (i >= c->n_out || !c->out[i]) return AIM_OK;
    aim_status st = aim_op_set_output(c, i, dtype, rank, dims);
    if (st != AIM_OK) return st;
    return c->alloc(c, i);
}

const aim_tensor *aim_op_input(const aim_op_ctx *c, int i) {
    return i < c->n_in ? c->in[i] : NULL;
}

aim_status aim_op_check_inputs(const aim_op_ctx *c, int min, int max) {
    int present = c->n_in;
    while (present > 0 && !c->in[present - 1])
        present--;
    if (present < min || c->n_in > max)
        return aim_op_fail(c, AIM_ERR_PARSE, "has %d inputs, expected %d to %d", c->n_in, min, max);
    for (int i = 0; i < min; i++)
        if (!c->in[i]) return aim_op_fail(c, AIM_ERR_PARSE, "required input %d is missing", i);
    return AIM_OK;
}

/* ---- Attributes ---------------------------------------------------------------------------- */

const Onnx__AttributeProto *aim_op_attr(const aim_op_ctx *c, const char *name) {
    return aim_onnx_node_attr(c->node, name);
}

int64_t aim_op_attr_int(const aim_op_ctx *c, const char *name, int64_t def) {
    const Onnx__AttributeProto *a = aim_op_attr(c, name);
    return a && a->has_i ? a->i : def;
}

float aim_op_attr_float(const aim_op_ctx *c, const char *name, float def) {
    const Onnx__AttributeProto *a = aim_op_attr(c, name);
    return a && a->has_f ? a->f : def;
}

const char *aim_op_attr_string(const aim_op_ctx *c, const char *name, const char *def) {
    const Onnx__AttributeProto *a = aim_op_attr(c, name);
    /* Strings are bytes in ONNX; aim keeps a NUL-terminated view only for printable ones. */
    static _Thread_local char buf[256];
    if (!a || !a->has_s) return def;
    size_t n = a->s.len < sizeof buf - 1 ? a->s.len : sizeof buf - 1;
    memcpy(buf, a->s.data, n);
    buf[n] = 0;
    return buf;
}

const int64_t *aim_op_attr_ints(const aim_op_ctx *c, const char *name, size_t *n) {
    const Onnx__AttributeProto *a = aim_op_attr(c, name);
    *n = a ? a->n_ints : 0;
    return a && a->n_ints ? a->ints : NULL;
}

const float *aim_op_attr_floats(const aim_op_ctx *c, const char *name, size_t *n) {
    const Onnx__AttributeProto *a = aim_op_attr(c, name);
    *n = a ? a->n_floats : 0;
    return a && a->n_floats ? a->floats : NULL;
}

aim_status aim_op_attr_tensor(const aim_op_ctx *c, const char *name, aim_tensor *t) {
    const Onnx__AttributeProto *a = aim_op_attr(c, name);
    if (!a || !a->t) return aim_op_fail(c, AIM_ERR_NOT_FOUND, "attribute '%s' is missing", name);
    const Onnx__TensorProto *p = a->t;
    if (p->n_dims > AIM_MAX_RANK)
        return aim_op_fail(c, AIM_ERR_UNSUPPORTED, "attribute '%s' has rank %zu", name, p->n_dims);
    void *data;
    size_t bytes;
    aim_status st = aim_onnx_tensor_decode(NULL, p, &data, &bytes);
    if (st != AIM_OK) return aim_op_fail(c, st, "attribute '%s': %s", name, aim_last_error());
    memset(t, 0, sizeof *t);
    t->dtype = p->data_type;
    t->rank = (int)p->n_dims;
    for (size_t i = 0; i < p->n_dims; i++)
        t->dims[i] = p->dims[i];
    t->data = data;
    return AIM_OK;
}

/* ---- Shapes -------------------------------------------------------------------------------- */

aim_status aim_op_axis(const aim_op_ctx *c, int64_t axis, int rank, int *out) {
    if (axis < -rank || axis >= (rank ? rank : 1))
        return aim_op_fail(c, AIM_ERR_PARSE, "axis %lld is out of range for rank %d",
                           (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return AIM_OK;
}

aim_status aim_op_broadcast(const aim_op_ctx *c, const aim_tensor *a, const aim_tensor *b,
                            int *rank, int64_t *dims) {
    int r = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[96], sb[96];
            return aim_op_fail(c, AIM_ERR_PARSE, "shapes %s and %s cannot be broadcast",
                               aim_tensor_shape_str(a, sa, sizeof sa),
                               aim_tensor_shape_str(b, sb, sizeof sb));
        }
        dims[i] = da == 1 ? db : da;
    }
    *rank = r;
    return AIM_OK;
}

void aim_op_strides(int rank, const int64_t *dims, int64_t *strides) {
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

void aim_op_broadcast_strides(const aim_tensor *t, int rank, const int64_t *dims,
                              int64_t *strides) {
    int64_t own[AIM_MAX_RANK];
    aim_op_strides(t->rank, t->dims, own);
    for (int i = 0; i < rank; i++) {
        int j = i - (rank - t->rank);
        strides[i] = (j >= 0 && t->dims[j] == dims[i] && dims[i] != 1) ? own[j] : 0;
    }
}

/* Adjacent axes contiguous in both tensors are merged first, so the inner loop is one memcpy
 * where possible. */
void aim_op_strided_copy(char *dst, const int64_t *dst_strides, const char *src,
                         const int64_t *src_strides, int rank, const int64_t *dims, size_t esize) {
    int64_t d_dims[AIM_OP_COPY_MAX_RANK], d_dst[AIM_OP_COPY_MAX_RANK], d_src[AIM_OP_COPY_MAX_RANK];
    int64_t own_dst[AIM_OP_COPY_MAX_RANK], own_src[AIM_OP_COPY_MAX_RANK];
    aim_op_strides(rank, dims, own_dst);
    aim_op_strides(rank, dims, own_src);
    if (!dst_strides) dst_strides = own_dst;
    if (!src_strides) src_strides = own_src;
    int r = 0;
    for (int d = 0; d < rank; d++) {
        if (dims[d] == 0) return;
        if (dims[d] == 1) continue;
        if (r > 0 && d_dst[r - 1] == dst_strides[d] * dims[d] &&
            d_src[r - 1] == src_strides[d] * dims[d]) {
            d_dims[r - 1] *= dims[d];
            d_dst[r - 1] = dst_strides[d];
            d_src[r - 1] = src_strides[d];
            continue;
        }
        d_dims[r] = dims[d];
        d_dst[r] = dst_strides[d];
        d_src[r] = src_strides[d];
        r++;
    }
    if (r == 0) {
        memcpy(dst, src, esize);
        return;
    }
    int inner = r - 1;
    int64_t n = d_dims[inner], ds = d_dst[inner], ss = d_src[inner];
    bool block = ds == 1 && ss == 1;
    int64_t idx[AIM_OP_COPY_MAX_RANK] = {0};
    int64_t so = 0, doff = 0;
    for (;;) {
        if (block)
            memcpy(dst + doff * (int64_t)esize, src + so * (int64_t)esize, (size_t)n * esize);
        else
            for (int64_t k = 0; k < n; k++)
                memcpy(dst + (doff + k * ds) * (int64_t)esize, src + (so + k * ss) * (int64_t)esize,
                       esize);
        int d = inner - 1;
        for (; d >= 0; d--) {
            so += d_src[d];
            doff += d_dst[d];
            if (++idx[d] < d_dims[d]) break;
            so -= d_src[d] * d_dims[d];
            doff -= d_dst[d] * d_dims[d];
            idx[d] = 0;
        }
        if (d < 0) break;
    }
}
