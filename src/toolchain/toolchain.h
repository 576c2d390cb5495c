/*
 * toolchain.h: the parts of `aim-toolchain` (the OAAX toolchain program): finding the model,
 * config and calibration images of an input, reading the Hailo-style JSON config into compile
 * options, and writing logs.json.
 */
#ifndef AIM_TOOLCHAIN_H
#define AIM_TOOLCHAIN_H

#include "aim/compile.h"
#include "aim/status.h"
#include "core/json.h"

#include <stdbool.h>
#include <stddef.h>

/* Exit codes. */
enum { TC_EXIT_OK = 0, TC_EXIT_FAILED = 1, TC_EXIT_USAGE = 2 };

/* The expected input layout, for error messages and --help. */
extern const char tc_layout_help[];

/* A growable list of owned strings. */
typedef struct {
    char **items;
    size_t count;
} tc_list;

aim_status tc_list_add(tc_list *l, const char *s);
void tc_list_free(tc_list *l);

/* What an input holds, paths joined with the folder it was found in. */
typedef struct {
    char *model;     /* the one .onnx file */
    char *model_rel; /* its name inside the input */
    char *config;    /* the .json config, NULL when none */
    char *config_rel;
    tc_list images;  /* .jpg/.jpeg/.png, sorted */
    tc_list ignored; /* other files (relative names) */
} tc_inputs;

/* Sorts the files of an extracted archive (relative to dir) into model, config, images and
 * ignored ones; refuses zero or several models, several configs and zero images
 * (AIM_ERR_INVALID_ARG with the layout in the message). Hidden files and macOS `__MACOSX`
 * folders are ignored. */
aim_status tc_inputs_scan(const char *dir, char *const *files, size_t count, tc_inputs *out);
void tc_inputs_free(tc_inputs *in);

/* A parsed config: compile options whose strings point into `doc`. */
typedef struct {
    aim_json *doc;    /* NULL when there was no config */
    tc_list warnings; /* unknown keys and the like */
} tc_config;

/* Reads the JSON config at `path` (NULL: none) into `o` (already initialised). Errors are
 * AIM_ERR_INVALID_ARG / AIM_ERR_PARSE naming the file (as `display`) and the key. */
aim_status tc_config_load(const char *path, const char *display, aim_compile_options *o,
                          tc_config *cfg);
void tc_config_free(tc_config *cfg);

/* Everything logs.json reports. */
typedef struct {
    const char *input;
    const char *output_dir;
    const char *input_kind;             /* "onnx" or "archive" */
    const tc_inputs *inputs;            /* may be NULL */
    const aim_compile_options *options; /* may be NULL */
    const tc_config *config;            /* may be NULL */
    const aim_compile_result *result;   /* NULL unless compiled */
    const char *output_model;           /* file name written, or NULL */
    const char *error;                  /* NULL on success */
    int exit_code;
    double seconds;
} tc_log;

/* Writes <output_dir>/logs.json atomically. */
aim_status tc_log_write(const tc_log *log);

/* Writes a parsed JSON value with the writer (used to embed the compiler's own log). */
void tc_json_emit(aim_json_writer *w, const aim_json *v);

#endif
