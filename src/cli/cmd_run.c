/*
 * cmd_run.c: `aim run MODEL`: runs a model on aim's runtime with inputs read from
 * TensorProto files (--input NAME=FILE.pb, or a folder of input_N.pb as in the ONNX test data
 * layout), prints each output's name, type, shape and a short summary plus the run latency
 * (or all of it as JSON), and optionally writes the outputs as output_N.pb.
 */
#include "aim/session.h"
#include "aim/tensor_io.h"
#include "cli.h"
#include "cli_util.h"
#include "core/json.h"
#include "core/util.h"
#include "graph/tensor.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char run_help[] =
    "usage: aim run MODEL [--input NAME=FILE.pb]... [--inputs-dir DIR] [--output-dir DIR]\n"
    "               [--threads N] [--json] [--reference]\n\n"
    "Runs MODEL once: oneDNN kernels where they apply, the reference kernels elsewhere\n"
    "(--reference: reference kernels only). Inputs are serialized ONNX TensorProto files.\n"
    "--inputs-dir reads DIR/input_0.pb, input_1.pb, ... until one is missing; a file whose\n"
    "tensor name is a model input feeds that input, any other feeds the input of its position.\n"
    "--input NAME=FILE feeds one input and takes precedence over --inputs-dir. Every output is\n"
    "printed with its type, shape, min/max/mean (numeric types) and first values, then the\n"
    "latency of the run.\n\n"
    "options:\n"
    "  --input NAME=FILE   feed input NAME from a TensorProto file (repeatable)\n"
    "  --inputs-dir DIR    feed inputs from DIR/input_N.pb\n"
    "  --output-dir DIR    write every output as DIR/output_N.pb (named; DIR is created)\n"
    "  --threads N         threads per run (default 0: all cores)\n"
    "  --json              print the results as JSON\n"
    "  --reference         run every node on the portable reference kernels (no oneDNN)\n"
    "  -h, --help          show this help\n";

#define RUN_MAX_PAIRS 64
#define RUN_FIRST     6 /* values shown per output */

typedef struct {
    const char *model, *inputs_dir, *output_dir;
    char *pair_name[RUN_MAX_PAIRS];
    const char *pair_file[RUN_MAX_PAIRS];
    int pairs, threads;
    bool json;
    bool reference; /* --reference: aim_session_options.reference_only */
} run_args;

typedef struct {
    aim_session *s;
    size_t n_in, n_out;
    aim_tensor *in, *out;
    char **in_file; /* where each input came from (NULL: not fed yet) */
    double latency_ms;
} run_job;

static void args_free(run_args *a) {
    for (int i = 0; i < a->pairs; i++)
        free(a->pair_name[i]);
}

static int add_pair(run_args *a, const char *arg) {
    const char *file;
    if (a->pairs == RUN_MAX_PAIRS) return aim_cli_fail("run", "too many --input options");
    if (!aim_cli_split_pair(arg, &a->pair_name[a->pairs], &file) || !file[0])
        return aim_cli_fail("run", "--input needs NAME=FILE.pb, not '%s'", arg);
    a->pair_file[a->pairs++] = file;
    return AIM_EXIT_OK;
}

static int parse_threads(const char *text, int *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || end == text || v < 0 || v > 1024)
        return aim_cli_fail("run", "--threads needs a number from 0 to 1024, not '%s'", text);
    *out = (int)v;
    return AIM_EXIT_OK;
}

/* Returns -1 to continue, or the exit code (help printed, or an error). */
static int parse_option(run_args *a, int argc, char **argv, int *i) {
    const char *arg = argv[*i], *v;
    if (aim_cli_is_help(arg)) {
        fputs(run_help, stdout);
        return AIM_EXIT_OK;
    }
    if (strcmp(arg, "--json") == 0) {
        a->json = true;
        return -1;
    }
    if (strcmp(arg, "--reference") == 0) {
        a->reference = true;
        return -1;
    }
    bool known = !strcmp(arg, "--input") || !strcmp(arg, "--inputs-dir") ||
                 !strcmp(arg, "--output-dir") || !strcmp(arg, "--threads");
    if (!known) return aim_cli_fail("run", "unknown option '%s' (see --help)", arg);
    if (!(v = aim_cli_option_value("run", argc, argv, i))) return AIM_EXIT_ERROR;
    int rc = -1;
    if (!strcmp(arg, "--input"))
        rc = add_pair(a, v);
    else if (!strcmp(arg, "--inputs-dir"))
        a->inputs_dir = v;
    else if (!strcmp(arg, "--output-dir"))
        a->output_dir = v;
    else
        rc = parse_threads(v, &a->threads);
    return rc == AIM_EXIT_OK ? -1 : rc;
}

/* Returns -1 when the arguments are fine, else the exit code. */
static int parse_args(run_args *a, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1]) {
            int rc = parse_option(a, argc, argv, &i);
            if (rc >= 0) return rc;
        } else if (!a->model) {
            a->model = argv[i];
        } else {
            return aim_cli_fail("run", "unexpected argument '%s' (see --help)", argv[i]);
        }
    }
    if (!a->model) return aim_cli_fail("run", "needs MODEL (see --help)");
    return -1;
}

/* ---- Feeding inputs ------------------------------------------------------------------------ */

/* Loads `path` into input `index` (replacing an earlier one). */
static int feed(run_job *j, size_t index, const char *path, const aim_tensor *t) {
    free(j->in[index].data);
    free(j->in_file[index]);
    j->in[index] = *t;
    j->in_file[index] = aim_strdup(path);
    return AIM_EXIT_OK;
}

static int load_pb(const char *path, aim_tensor *t, char **name) {
    aim_status st = aim_tensor_load_pb(path, t, name);
    if (st == AIM_OK) return AIM_EXIT_OK;
    const char *msg = aim_last_error();
    if (strstr(msg, path)) return aim_cli_fail("run", "%s", msg);
    return aim_cli_fail("run", "%s: %s", path, msg[0] ? msg : aim_status_describe(st));
}

static int feed_dir_file(run_job *j, size_t pos, const char *path) {
    aim_tensor t;
    char *name;
    if (load_pb(path, &t, &name) != AIM_EXIT_OK) return AIM_EXIT_ERROR;
    int index = name[0] ? aim_session_input_index(j->s, name) : -1;
    free(name);
    if (index < 0 && pos >= j->n_in) {
        free(t.data);
        return aim_cli_fail("run",
                            "%s: the model has only %zu input(s) and the tensor's name "
                            "is not one of them",
                            path, j->n_in);
    }
    return feed(j, index >= 0 ? (size_t)index : pos, path, &t);
}

static int feed_dir(run_job *j, const char *dir) {
    size_t pos = 0;
    for (;; pos++) {
        char file[64];
        snprintf(file, sizeof file, "input_%zu.pb", pos);
        char *path = aim_path_join(dir, file);
        if (!path) return aim_cli_fail("run", "out of memory");
        int rc = access(path, F_OK) == 0 ? feed_dir_file(j, pos, path) : -1;
        free(path);
        if (rc == -1) break;
        if (rc != AIM_EXIT_OK) return rc;
    }
    if (pos == 0) return aim_cli_fail("run", "%s: no input_0.pb there", dir);
    return AIM_EXIT_OK;
}

static int feed_pair(run_job *j, const char *name, const char *path) {
    int index = aim_session_input_index(j->s, name);
    if (index < 0) return aim_cli_fail("run", "the model has no input named '%s'", name);
    aim_tensor t;
    if (load_pb(path, &t, NULL) != AIM_EXIT_OK) return AIM_EXIT_ERROR;
    return feed(j, (size_t)index, path, &t);
}

static int feed_all(run_job *j, const run_args *a) {
    int rc;
    if (a->inputs_dir && (rc = feed_dir(j, a->inputs_dir)) != AIM_EXIT_OK) return rc;
    for (int i = 0; i < a->pairs; i++)
        if ((rc = feed_pair(j, a->pair_name[i], a->pair_file[i])) != AIM_EXIT_OK) return rc;
    for (size_t i = 0; i < j->n_in; i++)
        if (!j->in_file[i])
            return aim_cli_fail("run",
                                "input '%s' is not fed (use --input %s=FILE.pb or "
                                "--inputs-dir DIR)",
                                aim_session_input_name(j->s, i), aim_session_input_name(j->s, i));
    return AIM_EXIT_OK;
}

/* ---- Running and reporting ----------------------------------------------------------------- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool is_numeric(int dtype) {
    return dtype != AIM_DTYPE_STRING && dtype != AIM_DTYPE_UNDEFINED &&
           dtype != AIM_DTYPE_COMPLEX64 && dtype != AIM_DTYPE_COMPLEX128 &&
           aim_dtype_size(dtype) > 0;
}

typedef struct {
    size_t count, nan;
    double min, max, mean;
} summary;

static summary summarize(const aim_tensor *t) {
    summary s = {aim_tensor_count(t), 0, INFINITY, -INFINITY, 0};
    double sum = 0;
    for (size_t i = 0; i < s.count; i++) {
        double v = aim_tensor_get_f64(t, i);
        if (isnan(v)) {
            s.nan++;
            continue;
        }
        s.min = v < s.min ? v : s.min;
        s.max = v > s.max ? v : s.max;
        sum += v;
    }
    s.mean = s.count > s.nan ? sum / (double)(s.count - s.nan) : NAN;
    return s;
}

static void print_output(const run_job *j, size_t i) {
    const aim_tensor *t = &j->out[i];
    char shape[128];
    printf("output %zu: %s\n  type %s, shape %s\n", i, aim_session_output_name(j->s, i),
           aim_dtype_name(t->dtype), aim_tensor_shape_str(t, shape, sizeof shape));
    if (!is_numeric(t->dtype)) return;
    summary s = summarize(t);
    if (s.count == 0) {
        printf("  (empty)\n");
        return;
    }
    printf("  min %.6g, max %.6g, mean %.6g", s.min, s.max, s.mean);
    if (s.nan) printf(", %zu NaN", s.nan);
    printf("\n  first:");
    for (size_t k = 0; k < s.count && k < RUN_FIRST; k++)
        printf(" %.6g", aim_tensor_get_f64(t, k));
    printf("%s\n", s.count > RUN_FIRST ? " ..." : "");
}

static void json_output(aim_json_writer *w, const run_job *j, size_t i, const char *file) {
    const aim_tensor *t = &j->out[i];
    aim_json_begin_object(w);
    aim_json_key(w, "name");
    aim_json_string(w, aim_session_output_name(j->s, i));
    aim_json_key(w, "type");
    aim_json_string(w, aim_dtype_name(t->dtype));
    aim_json_key(w, "shape");
    aim_json_begin_array(w);
    for (int d = 0; d < t->rank; d++)
        aim_json_int(w, t->dims[d]);
    aim_json_end_array(w);
    if (is_numeric(t->dtype) && aim_tensor_count(t) > 0) {
        summary s = summarize(t);
        aim_json_key(w, "min");
        aim_json_number(w, s.min);
        aim_json_key(w, "max");
        aim_json_number(w, s.max);
        aim_json_key(w, "mean");
        aim_json_number(w, s.mean);
        aim_json_key(w, "first");
        aim_json_begin_array(w);
        for (size_t k = 0; k < s.count && k < RUN_FIRST; k++)
            aim_json_number(w, aim_tensor_get_f64(t, k));
        aim_json_end_array(w);
    }
    aim_json_key(w, "file");
    if (file)
        aim_json_string(w, file);
    else
        aim_json_null(w);
    aim_json_end_object(w);
}

static char *output_path(const char *dir, size_t i) {
    char file[64];
    snprintf(file, sizeof file, "output_%zu.pb", i);
    return dir ? aim_path_join(dir, file) : NULL;
}

static int write_outputs(const run_job *j, const char *dir) {
    if (!dir) return AIM_EXIT_OK;
    aim_status made = aim_dir_create(dir);
    if (made != AIM_OK) return aim_cli_fail_status("run", made);
    for (size_t i = 0; i < j->n_out; i++) {
        char *path = output_path(dir, i);
        if (!path) return aim_cli_fail("run", "out of memory");
        aim_status st = aim_tensor_save_pb(path, aim_session_output_name(j->s, i), &j->out[i]);
        free(path);
        if (st != AIM_OK) return aim_cli_fail_status("run", st);
    }
    return AIM_EXIT_OK;
}

static void report_json(const run_job *j, const run_args *a) {
    aim_json_writer w;
    aim_json_writer_init_file(&w, stdout, 2);
    aim_json_begin_object(&w);
    aim_json_key(&w, "model");
    aim_json_string(&w, a->model);
    aim_json_key(&w, "latency_ms");
    aim_json_number(&w, j->latency_ms);
    aim_json_key(&w, "outputs");
    aim_json_begin_array(&w);
    for (size_t i = 0; i < j->n_out; i++) {
        char *path = output_path(a->output_dir, i);
        json_output(&w, j, i, path);
        free(path);
    }
    aim_json_end_array(&w);
    aim_json_end_object(&w);
    aim_json_writer_finish(&w);
}

static void report_text(const run_job *j, const run_args *a) {
    for (size_t i = 0; i < j->n_out; i++)
        print_output(j, i);
    if (a->threads > 0)
        printf("latency: %.3f ms (one run, %d thread%s)\n", j->latency_ms, a->threads,
               a->threads == 1 ? "" : "s");
    else
        printf("latency: %.3f ms (one run, all cores)\n", j->latency_ms);
    if (a->output_dir) printf("wrote %zu output file(s) to %s\n", j->n_out, a->output_dir);
}

static int run_once(run_job *j) {
    double t0 = now_ms();
    aim_status st = aim_session_run(j->s, j->in, j->out);
    j->latency_ms = now_ms() - t0;
    if (st != AIM_OK) return aim_cli_fail_status("run", st);
    return AIM_EXIT_OK;
}

static int job_alloc(run_job *j) {
    j->n_in = aim_session_input_count(j->s);
    j->n_out = aim_session_output_count(j->s);
    j->in = calloc(j->n_in + 1, sizeof *j->in);
    j->out = calloc(j->n_out + 1, sizeof *j->out);
    j->in_file = calloc(j->n_in + 1, sizeof *j->in_file);
    if (!j->in || !j->out || !j->in_file) return aim_cli_fail("run", "out of memory");
    return AIM_EXIT_OK;
}

static void job_free(run_job *j, bool ran) {
    for (size_t i = 0; j->in && i < j->n_in; i++)
        free(j->in[i].data);
    for (size_t i = 0; ran && i < j->n_out; i++)
        free(j->out[i].data);
    for (size_t i = 0; j->in_file && i < j->n_in; i++)
        free(j->in_file[i]);
    free(j->in);
    free(j->out);
    free(j->in_file);
    aim_session_free(j->s);
}

static int run_model(const run_args *a, const aim_model *m) {
    run_job j = {0};
    aim_session_options opt = {.threads = a->threads, .reference_only = a->reference};
    aim_status st = aim_session_create(m, &opt, &j.s);
    if (st != AIM_OK) return aim_cli_fail_status("run", st);
    int rc = job_alloc(&j);
    if (rc == AIM_EXIT_OK) rc = feed_all(&j, a);
    if (rc == AIM_EXIT_OK) rc = run_once(&j);
    bool ran = rc == AIM_EXIT_OK;
    if (ran) rc = write_outputs(&j, a->output_dir);
    if (rc == AIM_EXIT_OK) {
        if (a->json)
            report_json(&j, a);
        else
            report_text(&j, a);
    }
    job_free(&j, ran);
    return rc;
}

int aim_cmd_run(int argc, char **argv) {
    run_args a = {0};
    int rc = parse_args(&a, argc, argv);
    if (rc < 0) {
        aim_model *m;
        if (aim_cli_load("run", a.model, &m)) {
            rc = run_model(&a, m);
            aim_model_free(m);
        } else {
            rc = AIM_EXIT_ERROR;
        }
    }
    args_free(&a);
    return rc;
}
