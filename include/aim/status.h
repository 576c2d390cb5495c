/*
 * aim/status.h: status codes and error messages shared by every aim call.
 *
 * Every fallible function returns an aim_status. AIM_OK is zero; any other value is an error
 * whose human-readable message, with context (file, node, tensor), is kept per thread and read
 * with aim_last_error() until the next failing call on the same thread.
 */
#ifndef AIM_STATUS_H
#define AIM_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, description): one list generates the enum, the names and the descriptions. */
#define AIM_STATUS_LIST(X)                                                                         \
    X(AIM_OK, "success")                                                                           \
    X(AIM_ERR_INVALID_ARG, "invalid argument")                                                     \
    X(AIM_ERR_IO, "input/output error")                                                            \
    X(AIM_ERR_PARSE, "malformed data")                                                             \
    X(AIM_ERR_UNSUPPORTED, "unsupported")                                                          \
    X(AIM_ERR_NOMEM, "out of memory")                                                              \
    X(AIM_ERR_LIMIT, "size limit exceeded")                                                        \
    X(AIM_ERR_NOT_FOUND, "not found")                                                              \
    X(AIM_ERR_SECURITY, "refused for safety")                                                      \
    X(AIM_ERR_INTERNAL, "internal error")

typedef enum {
#define AIM_STATUS_ENUM(name, desc) name,
    AIM_STATUS_LIST(AIM_STATUS_ENUM)
#undef AIM_STATUS_ENUM
        AIM_STATUS_COUNT
} aim_status;

/* Symbolic name of a status ("AIM_ERR_PARSE"); never NULL. */
const char *aim_status_name(aim_status status);

/* Short description of a status ("malformed data"); never NULL. */
const char *aim_status_describe(aim_status status);

/* The message of the last error set on this thread; "" when none. Owned by aim. */
const char *aim_last_error(void);

/* Sets this thread's error message (printf format) and returns `status`, so that library code
 * can write `return aim_error(AIM_ERR_PARSE, "tensor '%s': ...", name);`. */
aim_status aim_error(aim_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends context to the current message: "CONTEXT: previous message". Returns `status`. */
aim_status aim_error_context(aim_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears this thread's error message. */
void aim_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
