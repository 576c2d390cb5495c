/*
 * cli_util.h: helpers the model subcommands share: loading with the command's error format,
 * option values, NAME=VALUE and 1x3xHxW arguments, shape text and JSON, finding accelerator
 * nodes, and listing the known `chip` targets.
 */
#ifndef AIM_CLI_UTIL_H
#define AIM_CLI_UTIL_H

#include "aim/model.h"
#include "core/json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Loads `path`; on failure prints "aim CMD: ..." and returns false. */
bool aim_cli_load(const char *cmd, const char *path, aim_model **m);

/* Saves `m` to `path` (atomically); on failure prints "aim CMD: ..." and returns false. */
bool aim_cli_save(const char *cmd, aim_model *m, const char *path);

/* The value of option argv[*i] (argv[*i + 1]); advances *i. Prints an error and returns NULL
 * when it is missing. */
const char *aim_cli_option_value(const char *cmd, int argc, char **argv, int *i);

/* Splits "KEY=VALUE" at the first '=' (KEY non-empty). The caller frees *key; *value points
 * into arg. False (nothing allocated) when there is no '=' or the key is empty. */
bool aim_cli_split_pair(const char *arg, char **key, const char **value);

/* Parses "1x3x640x640" (or "1") into positive dims; false on anything else. */
bool aim_cli_parse_dims(const char *text, int *rank, int64_t dims[AIM_MAX_RANK]);

/* "[1,3,240,320]", "[N,6]" ("?" for a dim with neither value nor name), "unknown" when the
 * rank is unknown. Always NUL-terminated (truncated if size is too small). */
void aim_cli_format_shape(const aim_value_info *v, char *buf, size_t size);

/* True when every dim of v is known (and the rank too). */
bool aim_cli_shape_static(const aim_value_info *v);

/* Writes {"name": ..., "type": ..., "shape": [1, "N", null]} (null shape when unknown). */
void aim_cli_json_value_info(aim_json_writer *w, const aim_value_info *v);

/* `s` as one shell word: unchanged when it holds only safe characters, else in single quotes.
 * Truncated to fit `size`. */
void aim_cli_shell_quote(const char *s, char *buf, size_t size);

/* An accelerator program embedded as a node. */
typedef struct {
    const char *node_name; /* "" when unnamed */
    const char *op_type;
    const char *domain;
    char target[64];  /* "hailo" for HailoOp, the `target` attribute for AimProgram, or "" */
    size_t payload;   /* bytes of the hef / program attribute */
    bool has_payload; /* the attribute exists */
    bool magic_ok;    /* HailoOp: the HEF magic bytes are there; AimProgram: always true */
} aim_cli_accel;

/* Accelerator nodes of the main graph, in node order: fills at most `max`, returns how many
 * there are. */
size_t aim_cli_find_accel(const aim_model *m, aim_cli_accel *out, size_t max);

/* Prints "  NAME   description" for every known target. */
void aim_cli_print_targets(FILE *out);

/* A message for a bad `chip` value: its correction when known, then the list of targets. Prints
 * to stderr with the command's prefix. */
void aim_cli_explain_target(const char *cmd, const char *value);

#endif
