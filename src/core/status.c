/*
 * status.c: the status-code table and the per-thread error message.
 *
 * The message lives in thread-local storage so that concurrent sessions never see each other's
 * errors. Messages are truncated at AIM_ERROR_MAX bytes; context is prepended, never appended, so
 * the outermost caller's words come first ("model.onnx: initializer 'w': ...").
 */
#include "aim/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define AIM_ERROR_MAX 1024

static _Thread_local char error_message[AIM_ERROR_MAX];

static const char *const status_names[] = {
#define AIM_STATUS_NAME(name, desc) #name,
    AIM_STATUS_LIST(AIM_STATUS_NAME)
#undef AIM_STATUS_NAME
};

static const char *const status_descriptions[] = {
#define AIM_STATUS_DESC(name, desc) desc,
    AIM_STATUS_LIST(AIM_STATUS_DESC)
#undef AIM_STATUS_DESC
};

_Static_assert(sizeof(status_names) / sizeof(status_names[0]) == AIM_STATUS_COUNT,
               "status name table out of step with the enum");

const char *aim_status_name(aim_status status) {
    if ((unsigned)status >= AIM_STATUS_COUNT) return "AIM_ERR_UNKNOWN";
    return status_names[status];
}

const char *aim_status_describe(aim_status status) {
    if ((unsigned)status >= AIM_STATUS_COUNT) return "unknown status";
    return status_descriptions[status];
}

const char *aim_last_error(void) {
    return error_message;
}

aim_status aim_error(aim_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return status;
}

aim_status aim_error_context(aim_status status, const char *fmt, ...) {
    char context[AIM_ERROR_MAX];
    char previous[AIM_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof context, fmt, ap);
    va_end(ap);
    memcpy(previous, error_message, sizeof previous);
    /* Built by hand: snprintf with two full-size buffers trips -Wformat-truncation. */
    size_t n = strnlen(context, AIM_ERROR_MAX - 1);
    memcpy(error_message, context, n);
    if (previous[0] && n + 2 < AIM_ERROR_MAX) {
        memcpy(error_message + n, ": ", 2);
        n += 2;
        size_t rest = strnlen(previous, AIM_ERROR_MAX - 1 - n);
        memcpy(error_message + n, previous, rest);
        n += rest;
    }
    error_message[n] = '\0';
    return status;
}

void aim_error_clear(void) {
    error_message[0] = '\0';
}
