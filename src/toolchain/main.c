/*
 * main.c: `aim-toolchain <input-path> <output-directory>`, the OAAX toolchain program. The
 * input is an archive (one .onnx model, an optional JSON config, calibration images) extracted
 * safely into a temporary folder, or a bare .onnx file (refused: int8 needs calibration images).
 * Writes <name>.<target>.onnx (same input/output names and shapes as the original) and
 * logs.json into the output folder, which it creates. Exit 0 converted, 1 conversion failed,
 * 2 bad usage or input; messages on stderr. No network, no root.
 */
#include "toolchain.h"

#include "aim/compile.h"
#include "aim/model.h"
#include "compile/archive.h"
#include "core/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROG "aim-toolchain"

typedef struct {
    const char *input, *output_dir;
    const char *kind;
    aim_archive archive;
    tc_inputs inputs;
    bool have_inputs;
    tc_config config;
    aim_compile_options options;
    bool have_options;
    aim_model *model;
    aim_compile_result result;
    bool compiled;
    char *output_model;
    char *error;
    double t0;
} job;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: " PROG " <input-path> <output-directory>\n"
            "       " PROG " --help | --version\n\n"
            "Compiles an ONNX vision model into aim's int8 CPU program (the OAAX toolchain\n"
            "contract). Writes <output-directory>/<name>.cpu-int8.onnx, which keeps the model's\n"
            "input and output names and shapes, and <output-directory>/logs.json. The output\n"
            "folder is created when missing (it must not be a file).\n\n%s\n"
            "Exit status: 0 converted, 1 conversion failed, 2 bad arguments or input.\n",
            tc_layout_help);
}

/* Records the message (printf format) as the job's error and returns `code`. */
static int fail(job *j, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(job *j, int code, const char *fmt, ...) {
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(j->error);
    j->error = aim_strdup(buf);
    return code;
}

static int fail_last(job *j, int code) {
    return fail(j, code, "%s", aim_last_error()[0] ? aim_last_error() : "failed");
}

/* ---- Output folder ------------------------------------------------------------------------- */

static int prepare_output(const char *dir) {
    struct stat st;
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        fprintf(stderr, PROG ": output %s exists and is not a folder\n", dir);
        return TC_EXIT_USAGE;
    }
    if (aim_dir_create(dir) != AIM_OK) {
        fprintf(stderr, PROG ": output folder: %s\n", aim_last_error());
        return TC_EXIT_USAGE;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, PROG ": output folder %s is not a writable folder\n", dir);
        return TC_EXIT_USAGE;
    }
    return TC_EXIT_OK;
}

/* ---- Input --------------------------------------------------------------------------------- */

static bool ends_with_ci(const char *s, const char *ext) {
    size_t n = strlen(s), e = strlen(ext);
    return n >= e && strcasecmp(s + n - e, ext) == 0;
}

static int bare_model(job *j) {
    j->kind = "onnx";
    if (aim_model_load(j->input, &j->model) != AIM_OK) return fail_last(j, TC_EXIT_USAGE);
    return fail(j, TC_EXIT_USAGE,
                "%s is a bare .onnx model, but int8 compilation needs calibration images.\n"
                "Pack the model and the images (and optionally a config) into an archive.\n%s",
                j->input, tc_layout_help);
}

static int from_archive(job *j) {
    j->kind = "archive";
    if (aim_archive_extract(j->input, NULL, NULL, &j->archive) != AIM_OK)
        return fail_last(j, TC_EXIT_USAGE);
    if (tc_inputs_scan(j->archive.dir, j->archive.files, j->archive.file_count, &j->inputs) !=
        AIM_OK)
        return fail(j, TC_EXIT_USAGE, "%s: %s", j->input, aim_last_error());
    j->have_inputs = true;
    return TC_EXIT_OK;
}

static int gather(job *j) {
    struct stat st;
    if (stat(j->input, &st) != 0)
        return fail(j, TC_EXIT_USAGE, "input %s: %s", j->input, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return fail(j, TC_EXIT_USAGE, "input %s is a folder: pass an .onnx file or an archive",
                    j->input);
    if (!S_ISREG(st.st_mode)) return fail(j, TC_EXIT_USAGE, "input %s is not a file", j->input);
    if (aim_archive_sniff(j->input)) return from_archive(j);
    if (ends_with_ci(j->input, ".onnx")) return bare_model(j);
    return fail(j, TC_EXIT_USAGE,
                "input %s is neither an .onnx model nor a zip, tar or tar.gz archive.\n%s",
                j->input, tc_layout_help);
}

/* ---- Compiling ----------------------------------------------------------------------------- */

static void progress(void *ctx, const char *phase, size_t done, size_t total) {
    (void)ctx;
    size_t step = total > 10 ? total / 10 : 1;
    if (done == total || done % step == 0)
        fprintf(stderr, PROG ": %s %zu/%zu\n", phase ? phase : "progress", done, total);
}

/* "det" for "models/det.onnx". The caller frees it. */
static char *model_stem(const char *rel) {
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    size_t n = strlen(base);
    if (ends_with_ci(base, ".onnx")) n -= 5;
    if (n == 0) return aim_strdup("model");
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, base, n);
        s[n] = '\0';
    }
    return s;
}

static int configure(job *j, const char *stem) {
    aim_compile_options *o = &j->options;
    aim_compile_options_init(o);
    j->have_options = true;
    if (tc_config_load(j->inputs.config, j->inputs.config_rel, o, &j->config) != AIM_OK)
        return fail_last(j, TC_EXIT_USAGE);
    for (size_t i = 0; i < j->config.warnings.count; i++)
        fprintf(stderr, PROG ": warning: %s\n", j->config.warnings.items[i]);
    o->images = (const char *const *)j->inputs.images.items;
    o->image_count = j->inputs.images.count;
    o->progress = progress;
    o->model_name = stem;
    return TC_EXIT_OK;
}

static bool same_value_info(const aim_value_info *a, const aim_value_info *b) {
    if (strcmp(a->name, b->name) != 0 || a->dtype != b->dtype || a->rank != b->rank) return false;
    for (int d = 0; d < a->rank; d++) {
        if (a->dims[d].value != b->dims[d].value) return false;
        if (a->dims[d].param && b->dims[d].param && strcmp(a->dims[d].param, b->dims[d].param))
            return false;
    }
    return true;
}

/* The converted model must keep the original's input and output names, types and shapes. */
static int check_interface(job *j) {
    const aim_model *a = j->model, *b = j->result.model;
    size_t ni = aim_model_input_count(a), no = aim_model_output_count(a);
    if (ni != aim_model_input_count(b) || no != aim_model_output_count(b))
        return fail(j, TC_EXIT_FAILED,
                    "internal: the compiled model changed the number of "
                    "inputs or outputs");
    for (size_t i = 0; i < ni + no; i++) {
        aim_value_info x, y;
        bool in = i < ni;
        size_t k = in ? i : i - ni;
        if ((in ? aim_model_input(a, k, &x) : aim_model_output(a, k, &x)) != AIM_OK ||
            (in ? aim_model_input(b, k, &y) : aim_model_output(b, k, &y)) != AIM_OK ||
            !same_value_info(&x, &y))
            return fail(j, TC_EXIT_FAILED,
                        "internal: the compiled model changed %s %zu ('%s'): name, type or shape",
                        in ? "input" : "output", k, x.name ? x.name : "?");
    }
    return TC_EXIT_OK;
}

static int save_output(job *j, const char *stem) {
    const char *target = j->options.target ? j->options.target : "cpu-int8";
    size_t n = strlen(stem) + strlen(target) + 8;
    j->output_model = malloc(n);
    if (!j->output_model) return fail(j, TC_EXIT_FAILED, "out of memory");
    snprintf(j->output_model, n, "%s.%s.onnx", stem, target);
    char *path = aim_path_join(j->output_dir, j->output_model);
    aim_status st = path ? aim_model_save(j->result.model, path) : AIM_ERR_NOMEM;
    free(path);
    return st == AIM_OK ? TC_EXIT_OK : fail_last(j, TC_EXIT_FAILED);
}

static int compile_model(job *j, const char *stem) {
    int rc = configure(j, stem);
    if (rc != TC_EXIT_OK) return rc;
    if (aim_model_load(j->inputs.model, &j->model) != AIM_OK)
        return fail(j, TC_EXIT_USAGE, "model %s: %s", j->inputs.model_rel, aim_last_error());
    fprintf(stderr, PROG ": compiling %s with %zu calibration image(s)\n", j->inputs.model_rel,
            j->inputs.images.count);
    if (aim_compile(j->model, &j->options, &j->result) != AIM_OK)
        return fail(j, TC_EXIT_FAILED, "compiling %s failed: %s", j->inputs.model_rel,
                    aim_last_error());
    j->compiled = true;
    rc = check_interface(j);
    return rc != TC_EXIT_OK ? rc : save_output(j, stem);
}

static int convert(job *j) {
    int rc = gather(j);
    if (rc != TC_EXIT_OK) return rc;
    char *stem = model_stem(j->inputs.model_rel);
    if (!stem) return fail(j, TC_EXIT_FAILED, "out of memory");
    rc = compile_model(j, stem);
    free(stem);
    return rc;
}

/* ---- Main ---------------------------------------------------------------------------------- */

static int finish(job *j, int rc) {
    tc_log log = {
        .input = j->input,
        .output_dir = j->output_dir,
        .input_kind = j->kind,
        .inputs = j->have_inputs ? &j->inputs : NULL,
        .options = j->have_options ? &j->options : NULL,
        .config = j->have_options ? &j->config : NULL,
        .result = j->compiled ? &j->result : NULL,
        .output_model = rc == TC_EXIT_OK ? j->output_model : NULL,
        .error = rc == TC_EXIT_OK ? NULL : (j->error ? j->error : "failed"),
        .exit_code = rc,
        .seconds = now_seconds() - j->t0,
    };
    if (tc_log_write(&log) != AIM_OK) {
        fprintf(stderr, PROG ": cannot write logs.json: %s\n", aim_last_error());
        if (rc == TC_EXIT_OK) rc = TC_EXIT_FAILED;
    }
    if (rc != TC_EXIT_OK)
        fprintf(stderr, PROG ": %s\n", log.error);
    else
        printf("%s/%s (%zu calibration image(s) used, method %s, %zu node(s) in the int8 "
               "program)\n",
               j->output_dir, j->output_model, j->result.images_used,
               aim_calib_method_name(j->result.method_used), j->result.region_nodes);
    return rc;
}

static void cleanup(job *j) {
    if (j->archive.dir && aim_archive_remove(&j->archive) != AIM_OK)
        fprintf(stderr, PROG ": warning: %s\n", aim_last_error());
    if (j->compiled) aim_compile_result_free(&j->result);
    aim_model_free(j->model);
    tc_config_free(&j->config);
    tc_inputs_free(&j->inputs);
    free(j->output_model);
    free(j->error);
}

static int run(const char *input, const char *output_dir) {
    int rc = prepare_output(output_dir);
    if (rc != TC_EXIT_OK) return rc;
    job j = {.input = input, .output_dir = output_dir, .t0 = now_seconds()};
    rc = finish(&j, convert(&j));
    cleanup(&j);
    return rc;
}

static bool is_flag(const char *arg, const char *a, const char *b) {
    return strcmp(arg, a) == 0 || (b && strcmp(arg, b) == 0);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (is_flag(argv[i], "--help", "-h")) {
            usage(stdout);
            return TC_EXIT_OK;
        }
        if (is_flag(argv[i], "--version", NULL)) {
            printf(PROG " %s (aim)\n", AIM_VERSION_STRING);
            return TC_EXIT_OK;
        }
    }
    if (argc != 3 || !argv[1][0] || !argv[2][0]) {
        fprintf(stderr,
                PROG ": expected exactly two arguments, <input-path> and "
                     "<output-directory> (got %d)\n\n",
                argc - 1);
        usage(stderr);
        return TC_EXIT_USAGE;
    }
    return run(argv[1], argv[2]);
}
