/*
 * types.c: the element-type table (see aim/types.h).
 */
#include "aim/types.h"

#include <string.h>

typedef struct {
    size_t size;
    const char *name;
} dtype_row;

static const dtype_row dtype_rows[AIM_DTYPE_COUNT] = {
#define AIM_DTYPE_ROW(name, num, size, text) [num] = {size, text},
    AIM_DTYPE_LIST(AIM_DTYPE_ROW)
#undef AIM_DTYPE_ROW
};

size_t aim_dtype_size(int dtype) {
    if (dtype < 0 || dtype >= AIM_DTYPE_COUNT) return 0;
    return dtype_rows[dtype].size;
}

const char *aim_dtype_name(int dtype) {
    if (dtype < 0 || dtype >= AIM_DTYPE_COUNT || !dtype_rows[dtype].name) return "unknown";
    return dtype_rows[dtype].name;
}

aim_dtype aim_dtype_parse(const char *name) {
    if (strcmp(name, "float") == 0) return AIM_DTYPE_FLOAT;
    if (strcmp(name, "double") == 0) return AIM_DTYPE_DOUBLE;
    for (int i = 1; i < AIM_DTYPE_COUNT; i++)
        if (dtype_rows[i].name && strcmp(dtype_rows[i].name, name) == 0) return (aim_dtype)i;
    return AIM_DTYPE_UNDEFINED;
}

int aim_dtype_is_float(int dtype) {
    return dtype == AIM_DTYPE_FLOAT || dtype == AIM_DTYPE_DOUBLE || dtype == AIM_DTYPE_FLOAT16;
}

int aim_dtype_is_integer(int dtype) {
    switch (dtype) {
    case AIM_DTYPE_INT8:
    case AIM_DTYPE_UINT8:
    case AIM_DTYPE_INT16:
    case AIM_DTYPE_UINT16:
    case AIM_DTYPE_INT32:
    case AIM_DTYPE_UINT32:
    case AIM_DTYPE_INT64:
    case AIM_DTYPE_UINT64: return 1;
    default: return 0;
    }
}
