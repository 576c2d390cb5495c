/*
 * tensor.c: shape helpers and generic element access for aim_tensor (see tensor.h).
 *
 * The generic getters are for shape arithmetic and for kernels where speed does not matter
 * (indices, small parameter tensors); hot loops use typed pointers.
 */
#include "graph/tensor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

size_t aim_tensor_count(const aim_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= (size_t)t->dims[i];
    return n;
}

size_t aim_tensor_bytes(const aim_tensor *t) {
    return aim_tensor_count(t) * aim_dtype_size(t->dtype);
}

aim_status aim_tensor_set_shape(aim_tensor *t, int dtype, int rank, const int64_t *dims) {
    if (rank < 0 || rank > AIM_MAX_RANK)
        return aim_error(AIM_ERR_UNSUPPORTED, "rank %d is outside 0..%d", rank, AIM_MAX_RANK);
    for (int i = 0; i < rank; i++)
        if (dims[i] < 0)
            return aim_error(AIM_ERR_INVALID_ARG, "negative dimension %lld", (long long)dims[i]);
    t->dtype = dtype;
    t->rank = rank;
    if (rank) memmove(t->dims, dims, (size_t)rank * sizeof dims[0]);
    return AIM_OK;
}

bool aim_tensor_same_shape(const aim_tensor *a, const aim_tensor *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

const char *aim_tensor_shape_str(const aim_tensor *t, char *buf, size_t size) {
    size_t n = 0;
    if (size == 0) return buf;
    buf[0] = 0;
    if (t->rank == AIM_RANK_UNKNOWN) {
        snprintf(buf, size, "[?]");
        return buf;
    }
    n += (size_t)snprintf(buf + n, size - n, "[");
    for (int i = 0; i < t->rank && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ",%lld" : "%lld", (long long)t->dims[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

float aim_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    int exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    float f;
    if (exp == 0)
        f = ldexpf((float)mant, -24);
    else if (exp == 31)
        f = mant ? NAN : INFINITY;
    else
        f = ldexpf((float)(mant | 0x400), exp - 25);
    uint32_t bits;
    memcpy(&bits, &f, 4);
    bits |= sign;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t aim_float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t absx = x & 0x7fffffff;
    if (absx >= 0x7f800000) return sign | (absx > 0x7f800000 ? 0x7e00 : 0x7c00);
    if (absx >= 0x477ff000) return sign | 0x7c00; /* rounds to infinity */
    if (absx < 0x38800000) {                      /* subnormal or zero in half */
        float a;
        memcpy(&a, &absx, 4);
        return sign | (uint16_t)lrintf(a * 16777216.0f);
    }
    uint32_t mant = absx & 0x7fffff;
    int exp = (int)(absx >> 23) - 127 + 15;
    uint32_t half = ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fff; /* round to nearest even */
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) half++;
    return sign | (uint16_t)half;
}

double aim_tensor_get_f64(const aim_tensor *t, size_t i) {
    const void *d = t->data;
    switch (t->dtype) {
    case AIM_DTYPE_FLOAT: return ((const float *)d)[i];
    case AIM_DTYPE_DOUBLE: return ((const double *)d)[i];
    case AIM_DTYPE_FLOAT16: return aim_half_to_float(((const uint16_t *)d)[i]);
    case AIM_DTYPE_UINT64: return (double)((const uint64_t *)d)[i];
    default: return (double)aim_tensor_get_i64(t, i);
    }
}

int64_t aim_tensor_get_i64(const aim_tensor *t, size_t i) {
    const void *d = t->data;
    switch (t->dtype) {
    case AIM_DTYPE_INT8: return ((const int8_t *)d)[i];
    case AIM_DTYPE_UINT8:
    case AIM_DTYPE_BOOL: return ((const uint8_t *)d)[i];
    case AIM_DTYPE_INT16: return ((const int16_t *)d)[i];
    case AIM_DTYPE_UINT16: return ((const uint16_t *)d)[i];
    case AIM_DTYPE_INT32: return ((const int32_t *)d)[i];
    case AIM_DTYPE_UINT32: return ((const uint32_t *)d)[i];
    case AIM_DTYPE_INT64: return ((const int64_t *)d)[i];
    case AIM_DTYPE_UINT64: return (int64_t)((const uint64_t *)d)[i];
    case AIM_DTYPE_FLOAT:
    case AIM_DTYPE_DOUBLE:
    case AIM_DTYPE_FLOAT16: return (int64_t)aim_tensor_get_f64(t, i);
    default: return 0;
    }
}

void aim_tensor_set_f64(aim_tensor *t, size_t i, double v) {
    void *d = t->data;
    switch (t->dtype) {
    case AIM_DTYPE_FLOAT: ((float *)d)[i] = (float)v; break;
    case AIM_DTYPE_DOUBLE: ((double *)d)[i] = v; break;
    case AIM_DTYPE_FLOAT16: ((uint16_t *)d)[i] = aim_float_to_half((float)v); break;
    case AIM_DTYPE_INT8: ((int8_t *)d)[i] = (int8_t)v; break;
    case AIM_DTYPE_UINT8: ((uint8_t *)d)[i] = (uint8_t)v; break;
    case AIM_DTYPE_BOOL: ((uint8_t *)d)[i] = v != 0; break;
    case AIM_DTYPE_INT16: ((int16_t *)d)[i] = (int16_t)v; break;
    case AIM_DTYPE_UINT16: ((uint16_t *)d)[i] = (uint16_t)v; break;
    case AIM_DTYPE_INT32: ((int32_t *)d)[i] = (int32_t)v; break;
    case AIM_DTYPE_UINT32: ((uint32_t *)d)[i] = (uint32_t)v; break;
    case AIM_DTYPE_INT64: ((int64_t *)d)[i] = (int64_t)v; break;
    case AIM_DTYPE_UINT64: ((uint64_t *)d)[i] = (uint64_t)v; break;
    default: break;
    }
}
