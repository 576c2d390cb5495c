/*
 * cmd_bench.c: `aim bench MODEL`: measures a model on the CPU runtime: load time (file parse and
 * session creation), latency percentiles over repeated aim_session_run calls, throughput, peak
 * resident memory (getrusage ru_maxrss and VmHWM) and the session's planned arena. Inputs are
 * random (deterministic seed) or read from TensorProto .pb files; --json is for scripts such as
 * bench/run. --profile adds where the time goes: per step of the plan and per kind of step.
 */
#include "aim/model.h"
#include "aim/session.h"
#include "aim/tensor_io.h"
#include "cli.h"
#include "cli_util.h"
#include "core/json.h"
#include "graph/tensor.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char bench_help[] =
    "usage: aim bench MODEL [--threads N] [--iterations N] [--warmup N] [--seed N] [--reference]\n"
    "                       [--input NAME=FILE.pb]... [--profile [--top N]] [--json]\n\n"
    "Loads MODEL, creates a session and times aim_session_run: WARMUP untimed runs, then\n"
    "ITERATIONS timed runs, one after the other. Prints the load time (parse + session\n"
    "creation), latency p50/p90/p99/mean/min/max in ms, throughput (inferences/s), peak\n"
    "resident memory of the process (getrusage ru_maxrss and VmHWM from /proc/self/status),\n"
    "the resident memory before the model was loaded, and the session's arena bytes.\n\n"
    "Inputs not given with --input are random, from a fixed seed: float inputs uniform in\n"
    "0..255 when the name starts with 'image-', else 0..1; integer inputs 0..9; bool 0/1.\n"
    "An input with a symbolic or unknown dimension must be given with --input.\n\n"
    "options:\n"
    "  --threads N          threads per run (0 = all cores; default 0)\n"
    "  --reference          time the portable reference kernels only (no oneDNN)\n"
    "  --iterations N       timed runs (default 50)\n"
    "  --warmup N           untimed runs first (default 5)\n"
    "  --seed N             seed of the random inputs (default 1)\n"
    "  --input NAME=FILE    read input NAME from a serialized TensorProto (.pb)\n"
    "  --profile            time every step of the timed runs and print where the time\n"
    "                       goes: per kind of step (a fused kernel such as conv+bias+relu,\n"
    "                       a layout reorder, a reference node's op type) and the slowest\n"
    "                       steps (adds two clock reads per step to each run)\n"
    "  --top N              slowest steps listed with --profile (default 15)\n"
    "  --json               print one JSON object instead of text\n"
    "  -h, --help           show this help\n";

#define CMD "bench"

/* ---- Small helpers ------------------------------------------------------------------------- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Parses a non-negative integer no larger than `max`; false on anything else. */
static bool parse_count(const char *text, long max, long *out) {
    if (!text[0] || text[0] == '-' || text[0] == '+') return false;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < 0 || v > max) return false;
    *out = v;
    return true;
}

/* A line "KEY:   N kB" of /proc/self/status, in bytes; -1 when absent. */
static long long proc_status_bytes(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    size_t klen = strlen(key);
    long long value = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            value = strtoll(line + klen + 1, NULL, 10) * 1024;
            break;
        }
    fclose(f);
    return value;
}

static long long maxrss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (long long)ru.ru_maxrss * 1024; /* kilobytes on Linux */
}

/* splitmix64: small, fast and the same on every platform. */
static uint64_t next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double random_unit(uint64_t *state) {
    return (double)(next_random(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* Linear interpolation between closest ranks (numpy's default); `v` sorted, n >= 1. */
static double percentile(const double *v, size_t n, double p) {
    double pos = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)floor(pos);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (v[hi] - v[lo]) * (pos - (double)lo);
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static bool is_float_type(int dtype) {
    return dtype == AIM_DTYPE_FLOAT || dtype == AIM_DTYPE_DOUBLE || dtype == AIM_DTYPE_FLOAT16 ||
           dtype == AIM_DTYPE_BFLOAT16;
}

static bool is_filled_type(int dtype) {
    return is_float_type(dtype) || dtype == AIM_DTYPE_BOOL || dtype == AIM_DTYPE_UINT8 ||
           dtype == AIM_DTYPE_INT8 || dtype == AIM_DTYPE_UINT16 || dtype == AIM_DTYPE_INT16 ||
           dtype == AIM_DTYPE_INT32 || dtype == AIM_DTYPE_INT64 || dtype == AIM_DTYPE_UINT32 ||
           dtype == AIM_DTYPE_UINT64;
}

/* ---- Inputs -------------------------------------------------------------------------------- */

typedef struct {
    const char *name; /* from the command line: NAME of NAME=FILE (malloc'ed) */
    const char *file;
    bool used;
} input_arg;

typedef struct {
    const char *name; /* owned by the session */
    aim_tensor t;
    const char *source; /* a file name, or NULL when random */
} bench_input;

/* Random data for input i of `s` (declared type and static shape). */
/* The declared shape of input `name` as the model writes it ("[N,3]"). */
static void declared_shape(const aim_model *m, const char *name, char *buf, size_t size) {
    aim_value_info v;
    snprintf(buf, size, "unknown");
    for (size_t k = 0; k < aim_model_input_count(m); k++)
        if (aim_model_input(m, k, &v) == AIM_OK && strcmp(v.name, name) == 0)
            aim_cli_format_shape(&v, buf, size);
}

static bool make_random_input(const aim_model *m, aim_session *s, size_t i, uint64_t *seed,
                              aim_tensor *out) {
    aim_tensor info;
    aim_session_input_info(s, i, &info);
    const char *name = aim_session_input_name(s, i);
    char shape[128];
    bool symbolic = info.rank < 0;
    for (int d = 0; d < info.rank; d++)
        if (info.dims[d] < 0) symbolic = true;
    if (symbolic) {
        declared_shape(m, name, shape, sizeof shape);
        aim_cli_fail(CMD,
                     "input '%s' has shape %s with symbolic or unknown dimensions: give it with "
                     "--input %s=FILE.pb",
                     name, shape, name);
        return false;
    }
    if (!is_filled_type(info.dtype)) {
        aim_cli_fail(CMD, "input '%s' is %s: random data is not supported, give --input %s=FILE.pb",
                     name, aim_dtype_name(info.dtype), name);
        return false;
    }
    *out = info;
    out->data = NULL;
    size_t n = aim_tensor_count(out), bytes = aim_tensor_bytes(out);
    out->data = malloc(bytes ? bytes : 1);
    if (!out->data) {
        aim_cli_fail(CMD, "out of memory for input '%s' (%zu bytes)", name, bytes);
        return false;
    }
    double scale = strncmp(name, "image-", 6) == 0 ? 255.0 : 1.0;
    for (size_t k = 0; k < n; k++) {
        double v;
        if (is_float_type(out->dtype))
            v = random_unit(seed) * scale;
        else if (out->dtype == AIM_DTYPE_BOOL)
            v = (double)(next_random(seed) & 1);
        else if (out->dtype == AIM_DTYPE_UINT8 && scale > 1.0)
            v = (double)(next_random(seed) % 256);
        else
            v = (double)(next_random(seed) % 10);
        aim_tensor_set_f64(out, k, v);
    }
    return true;
}

static bool load_file_input(const aim_model *m, aim_session *s, size_t i, const char *file,
                            aim_tensor *out) {
    const char *name = aim_session_input_name(s, i);
    aim_status st = aim_tensor_load_pb(file, out, NULL);
    if (st != AIM_OK) {
        aim_cli_fail(CMD, "input '%s': %s", name, aim_last_error());
        return false;
    }
    aim_tensor info;
    aim_session_input_info(s, i, &info);
    char a[128], b[128];
    if (info.dtype && out->dtype != info.dtype) {
        aim_cli_fail(CMD, "input '%s': %s holds %s, the model expects %s", name, file,
                     aim_dtype_name(out->dtype), aim_dtype_name(info.dtype));
        return false;
    }
    bool ok = info.rank < 0 || info.rank == out->rank;
    for (int d = 0; ok && info.rank >= 0 && d < out->rank; d++)
        ok = info.dims[d] < 0 || info.dims[d] == out->dims[d];
    if (!ok) {
        declared_shape(m, name, b, sizeof b);
        aim_cli_fail(CMD, "input '%s': %s has shape %s, the model expects %s", name, file,
                     aim_tensor_shape_str(out, a, sizeof a), b);
        return false;
    }
    return true;
}

/* ---- The command --------------------------------------------------------------------------- */

typedef struct {
    const char *model;
    long threads, iterations, warmup, seed;
    bool json;
    bool reference; /* --reference: every node on the portable reference kernels */
    bool profile;   /* --profile: per-step times of the timed runs */
    long top;       /* steps listed with --profile */
    input_arg *inputs;
    size_t n_inputs;
} bench_args;

typedef struct {
    const char *kind, *output; /* owned by the session */
    double ms;                 /* per timed run */
    size_t steps;              /* in a per-kind sum: how many steps */
} step_time;

typedef struct {
    double parse_ms, session_ms;
    double p50, p90, p99, mean, min, max, total_ms;
    long long rss_before, maxrss, hwm;
    size_t arena, nodes;
    step_time *steps, *kinds; /* --profile: per step in plan order, per kind by time */
    size_t n_steps, n_kinds;
} bench_result;

static void free_args(bench_args *a) {
    for (size_t i = 0; i < a->n_inputs; i++)
        free((char *)a->inputs[i].name);
    free(a->inputs);
}

static int parse_args(int argc, char **argv, bench_args *a) {
    memset(a, 0, sizeof *a);
    a->iterations = 50;
    a->warmup = 5;
    a->seed = 1;
    a->top = 15;
    a->inputs = calloc((size_t)argc, sizeof *a->inputs);
    if (!a->inputs) return aim_cli_fail(CMD, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        long *target = NULL;
        long max = 0;
        if (aim_cli_is_help(arg)) {
            fputs(bench_help, stdout);
            return -1;
        } else if (strcmp(arg, "--threads") == 0) {
            target = &a->threads, max = 1024;
        } else if (strcmp(arg, "--iterations") == 0) {
            target = &a->iterations, max = 100000000;
        } else if (strcmp(arg, "--warmup") == 0) {
            target = &a->warmup, max = 100000000;
        } else if (strcmp(arg, "--seed") == 0) {
            target = &a->seed, max = 2147483647;
        } else if (strcmp(arg, "--top") == 0) {
            target = &a->top, max = 100000;
        } else if (strcmp(arg, "--profile") == 0) {
            a->profile = true;
        } else if (strcmp(arg, "--json") == 0) {
            a->json = true;
        } else if (strcmp(arg, "--reference") == 0) {
            a->reference = true;
        } else if (strcmp(arg, "--input") == 0) {
            const char *v = aim_cli_option_value(CMD, argc, argv, &i);
            if (!v) return AIM_EXIT_ERROR;
            char *key;
            const char *file;
            if (!aim_cli_split_pair(v, &key, &file))
                return aim_cli_fail(CMD, "--input wants NAME=FILE.pb, got '%s'", v);
            if (!file[0]) {
                free(key);
                return aim_cli_fail(CMD, "--input wants NAME=FILE.pb, got '%s'", v);
            }
            for (size_t k = 0; k < a->n_inputs; k++)
                if (strcmp(a->inputs[k].name, key) == 0) {
                    free(key);
                    return aim_cli_fail(CMD, "input '%s' given twice", a->inputs[k].name);
                }
            a->inputs[a->n_inputs++] = (input_arg){key, file, false};
        } else if (arg[0] == '-' && arg[1]) {
            return aim_cli_fail(CMD, "unknown option '%s' (see --help)", arg);
        } else if (!a->model) {
            a->model = arg;
        } else {
            return aim_cli_fail(CMD, "unexpected argument '%s' (see --help)", arg);
        }
        if (target) {
            const char *v = aim_cli_option_value(CMD, argc, argv, &i);
            if (!v) return AIM_EXIT_ERROR;
            if (!parse_count(v, max, target))
                return aim_cli_fail(CMD, "%s wants a whole number 0..%ld, got '%s'", arg, max, v);
        }
    }
    if (!a->model) return aim_cli_fail(CMD, "needs MODEL (see --help)");
    if (a->iterations < 1) return aim_cli_fail(CMD, "--iterations must be at least 1");
    return AIM_EXIT_OK;
}

/* Progress on stderr, only for a terminal and only once a run has taken a while. */
static void progress(bool timed, long done, long total, double started, double *last) {
    if (!isatty(STDERR_FILENO)) return;
    double t = now_ms();
    if (t - started < 1000.0 || t - *last < 250.0) return;
    *last = t;
    fprintf(stderr, "\raim bench: %s %ld/%ld", timed ? "run" : "warmup", done, total);
}

static void progress_done(double last) {
    if (last > 0) fputs("\r\033[K", stderr);
}

/* ---- Profile ------------------------------------------------------------------------------ */

/* Each step's total so far (ms), to subtract the warmup runs from the final totals. */
static double *profile_totals(const aim_session *s) {
    size_t n = aim_session_step_count(s);
    double *t = calloc(n + 1, sizeof *t);
    aim_session_step_info info;
    for (size_t i = 0; t && i < n; i++)
        t[i] = aim_session_step_profile(s, i, &info) ? info.total_ms : 0.0;
    return t;
}

static int by_kind(const void *a, const void *b) {
    return strcmp(((const step_time *)a)->kind, ((const step_time *)b)->kind);
}

static int by_time_desc(const void *a, const void *b) {
    double x = ((const step_time *)a)->ms, y = ((const step_time *)b)->ms;
    return (x < y) - (x > y);
}

/* Per-step times of the timed runs (totals minus `warm`), and their sums per kind. */
static bool profile_collect(const aim_session *s, const double *warm, long runs, bench_result *r) {
    size_t n = aim_session_step_count(s);
    r->steps = calloc(n + 1, sizeof *r->steps);
    r->kinds = calloc(n + 1, sizeof *r->kinds);
    if (!r->steps || !r->kinds) return false;
    for (size_t i = 0; i < n; i++) {
        aim_session_step_info info;
        aim_session_step_profile(s, i, &info);
        r->steps[i] = (step_time){info.kind, info.output, (info.total_ms - warm[i]) / runs, 1};
    }
    r->n_steps = n;
    memcpy(r->kinds, r->steps, n * sizeof *r->kinds);
    qsort(r->kinds, n, sizeof *r->kinds, by_kind);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && strcmp(r->kinds[k - 1].kind, r->kinds[i].kind) == 0) {
            r->kinds[k - 1].ms += r->kinds[i].ms;
            r->kinds[k - 1].steps++;
        } else {
            r->kinds[k++] = r->kinds[i];
        }
    }
    r->n_kinds = k;
    qsort(r->kinds, k, sizeof *r->kinds, by_time_desc);
    return true;
}

static double steps_total_ms(const bench_result *r) {
    double sum = 0;
    for (size_t i = 0; i < r->n_steps; i++)
        sum += r->steps[i].ms;
    return sum;
}

static void print_profile(const bench_args *a, const bench_result *r) {
    double total = steps_total_ms(r);
    double share = total > 0 ? 100.0 / total : 0.0;
    printf(
        "profile      %zu steps, %.4g ms per run in steps (the rest of the latency: run set-up,\n"
        "             inference of dynamic shapes, output hand-over)\n",
        r->n_steps, total);
    printf("  %-36s %6s %9s %7s\n", "kind", "steps", "ms/run", "share");
    for (size_t i = 0; i < r->n_kinds; i++)
        printf("  %-36s %6zu %9.4f %6.1f%%\n", r->kinds[i].kind, r->kinds[i].steps, r->kinds[i].ms,
               r->kinds[i].ms * share);
    step_time *slow = malloc((r->n_steps + 1) * sizeof *slow);
    if (!slow) return;
    memcpy(slow, r->steps, r->n_steps * sizeof *slow);
    qsort(slow, r->n_steps, sizeof *slow, by_time_desc);
    size_t top = (size_t)a->top < r->n_steps ? (size_t)a->top : r->n_steps;
    printf("  slowest %zu step(s):\n  %9s %7s  %-28s %s\n", top, "ms/run", "share", "kind",
           "output");
    for (size_t i = 0; i < top; i++)
        printf("  %9.4f %6.1f%%  %-28s %s\n", slow[i].ms, slow[i].ms * share, slow[i].kind,
               slow[i].output);
    free(slow);
}

static void json_steps(aim_json_writer *w, const step_time *t, size_t n, bool kinds) {
    aim_json_begin_array(w);
    for (size_t i = 0; i < n; i++) {
        aim_json_begin_object(w);
        aim_json_key(w, "kind");
        aim_json_string(w, t[i].kind);
        if (kinds) {
            aim_json_key(w, "steps");
            aim_json_int(w, (int64_t)t[i].steps);
        } else {
            aim_json_key(w, "output");
            aim_json_string(w, t[i].output);
        }
        aim_json_key(w, "ms_per_run");
        aim_json_number(w, t[i].ms);
        aim_json_end_object(w);
    }
    aim_json_end_array(w);
}

/* ---- Output -------------------------------------------------------------------------------- */

static void print_text(const bench_args *a, const bench_result *r, bench_input *in, size_t n_in) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("model        %s\n", a->model);
    if (a->threads)
        printf("threads      %ld\n", a->threads);
    else
        printf("threads      0 (all cores: %ld)\n", cores);
    for (size_t i = 0; i < n_in; i++) {
        char shape[128];
        printf("input        %s %s %s (%s)\n", in[i].name, aim_dtype_name(in[i].t.dtype),
               aim_tensor_shape_str(&in[i].t, shape, sizeof shape),
               in[i].source ? in[i].source : "random");
    }
    printf("nodes        %zu\n", r->nodes);
    printf("load         %.4g ms (parse %.4g ms, session %.4g ms)\n", r->parse_ms + r->session_ms,
           r->parse_ms, r->session_ms);
    printf("runs         %ld warmup, %ld timed\n", a->warmup, a->iterations);
    printf("latency      p50 %.4g  p90 %.4g  p99 %.4g  mean %.4g  min %.4g  max %.4g ms\n", r->p50,
           r->p90, r->p99, r->mean, r->min, r->max);
    printf("throughput   %.5g inferences/s\n", r->mean > 0 ? 1000.0 / r->mean : 0.0);
    printf(
        "memory       peak RSS %.1f MB (VmHWM %.1f MB), RSS before load %.1f MB, arena %.1f MB\n",
        (double)r->maxrss / 1048576.0, (double)r->hwm / 1048576.0,
        (double)r->rss_before / 1048576.0, (double)r->arena / 1048576.0);
    if (a->profile) print_profile(a, r);
}

static void print_json(const bench_args *a, const bench_result *r, bench_input *in, size_t n_in) {
    aim_json_writer w;
    aim_json_writer_init_file(&w, stdout, 2);
    aim_json_begin_object(&w);
    aim_json_key(&w, "model");
    aim_json_string(&w, a->model);
    aim_json_key(&w, "threads");
    aim_json_int(&w, a->threads);
    aim_json_key(&w, "cores");
    aim_json_int(&w, sysconf(_SC_NPROCESSORS_ONLN));
    aim_json_key(&w, "iterations");
    aim_json_int(&w, a->iterations);
    aim_json_key(&w, "warmup");
    aim_json_int(&w, a->warmup);
    aim_json_key(&w, "seed");
    aim_json_int(&w, a->seed);
    aim_json_key(&w, "inputs");
    aim_json_begin_array(&w);
    for (size_t i = 0; i < n_in; i++) {
        aim_json_begin_object(&w);
        aim_json_key(&w, "name");
        aim_json_string(&w, in[i].name);
        aim_json_key(&w, "type");
        aim_json_string(&w, aim_dtype_name(in[i].t.dtype));
        aim_json_key(&w, "shape");
        aim_json_begin_array(&w);
        for (int d = 0; d < in[i].t.rank; d++)
            aim_json_int(&w, in[i].t.dims[d]);
        aim_json_end_array(&w);
        aim_json_key(&w, "source");
        if (in[i].source)
            aim_json_string(&w, in[i].source);
        else
            aim_json_string(&w, "random");
        aim_json_end_object(&w);
    }
    aim_json_end_array(&w);
    aim_json_key(&w, "nodes");
    aim_json_int(&w, (int64_t)r->nodes);
    aim_json_key(&w, "load_ms");
    aim_json_number(&w, r->parse_ms + r->session_ms);
    aim_json_key(&w, "parse_ms");
    aim_json_number(&w, r->parse_ms);
    aim_json_key(&w, "session_ms");
    aim_json_number(&w, r->session_ms);
    aim_json_key(&w, "latency_ms");
    aim_json_begin_object(&w);
    aim_json_key(&w, "p50");
    aim_json_number(&w, r->p50);
    aim_json_key(&w, "p90");
    aim_json_number(&w, r->p90);
    aim_json_key(&w, "p99");
    aim_json_number(&w, r->p99);
    aim_json_key(&w, "mean");
    aim_json_number(&w, r->mean);
    aim_json_key(&w, "min");
    aim_json_number(&w, r->min);
    aim_json_key(&w, "max");
    aim_json_number(&w, r->max);
    aim_json_end_object(&w);
    aim_json_key(&w, "throughput_per_s");
    aim_json_number(&w, r->total_ms > 0 ? (double)a->iterations * 1000.0 / r->total_ms : 0.0);
    aim_json_key(&w, "peak_rss_bytes");
    aim_json_int(&w, r->maxrss);
    aim_json_key(&w, "vm_hwm_bytes");
    aim_json_int(&w, r->hwm);
    aim_json_key(&w, "rss_before_load_bytes");
    aim_json_int(&w, r->rss_before);
    aim_json_key(&w, "arena_bytes");
    aim_json_int(&w, (int64_t)r->arena);
    if (a->profile) {
        aim_json_key(&w, "profile");
        aim_json_begin_object(&w);
        aim_json_key(&w, "step_ms_per_run");
        aim_json_number(&w, steps_total_ms(r));
        aim_json_key(&w, "kinds");
        json_steps(&w, r->kinds, r->n_kinds, true);
        aim_json_key(&w, "steps");
        json_steps(&w, r->steps, r->n_steps, false);
        aim_json_end_object(&w);
    }
    aim_json_end_object(&w);
    aim_json_writer_finish(&w);
}

/* Loads, creates the session, makes the inputs, runs and reports. */
static int run_bench(bench_args *a) {
    bench_result r;
    memset(&r, 0, sizeof r);
    r.rss_before = proc_status_bytes("VmRSS");

    double t0 = now_ms();
    aim_model *m;
    if (!aim_cli_load(CMD, a->model, &m)) return AIM_EXIT_ERROR;
    double t1 = now_ms();
    aim_session_options opt = {
        .threads = (int)a->threads, .reference_only = a->reference, .profile = a->profile};
    aim_session *s;
    aim_status st = aim_session_create(m, &opt, &s);
    double t2 = now_ms();
    if (st != AIM_OK) {
        int rc = aim_cli_fail_status(CMD, st);
        aim_model_free(m);
        return rc;
    }
    r.parse_ms = t1 - t0;
    r.session_ms = t2 - t1;
    r.nodes = aim_session_node_count(s);
    r.arena = aim_session_arena_bytes(s);

    int rc = AIM_EXIT_ERROR;
    size_t n_in = aim_session_input_count(s), n_out = aim_session_output_count(s);
    bench_input *in = calloc(n_in ? n_in : 1, sizeof *in);
    aim_tensor *out = calloc(n_out ? n_out : 1, sizeof *out);
    double *lat = calloc((size_t)a->iterations, sizeof *lat);
    if (!in || !out || !lat) {
        aim_cli_fail(CMD, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < a->n_inputs; k++)
        if (aim_session_input_index(s, a->inputs[k].name) < 0) {
            aim_strbuf names;
            aim_strbuf_init(&names);
            for (size_t i = 0; i < n_in; i++)
                aim_strbuf_printf(&names, "%s'%s'", i ? ", " : "", aim_session_input_name(s, i));
            aim_cli_fail(CMD, "the model has no input '%s' (inputs: %s)", a->inputs[k].name,
                         names.len ? names.data : "none");
            aim_strbuf_free(&names);
            goto done;
        }
    uint64_t seed = (uint64_t)a->seed;
    for (size_t i = 0; i < n_in; i++) {
        const char *name = aim_session_input_name(s, i);
        const char *file = NULL;
        for (size_t k = 0; k < a->n_inputs; k++)
            if (strcmp(a->inputs[k].name, name) == 0) file = a->inputs[k].file;
        in[i].name = name;
        in[i].source = file;
        if (file ? !load_file_input(m, s, i, file, &in[i].t)
                 : !make_random_input(m, s, i, &seed, &in[i].t))
            goto done;
    }
    aim_tensor *inputs = calloc(n_in ? n_in : 1, sizeof *inputs);
    if (!inputs) {
        aim_cli_fail(CMD, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_in; i++)
        inputs[i] = in[i].t;

    double last = 0, started = now_ms();
    long total = a->warmup + a->iterations;
    double loop_start = 0;
    double *warm = NULL; /* --profile: the step totals after the warmup runs */
    for (long it = 0; it < total; it++) {
        bool timed = it >= a->warmup;
        if (it == a->warmup && a->profile && !(warm = profile_totals(s))) {
            aim_cli_fail(CMD, "out of memory");
            free(inputs);
            goto done;
        }
        if (it == a->warmup) loop_start = now_ms();
        double b = now_ms();
        st = aim_session_run(s, inputs, out);
        double e = now_ms();
        if (st != AIM_OK) {
            progress_done(last);
            aim_cli_fail(CMD, "run %ld failed: %s", it + 1,
                         aim_last_error()[0] ? aim_last_error() : aim_status_describe(st));
            free(inputs);
            free(warm);
            goto done;
        }
        for (size_t k = 0; k < n_out; k++) {
            free(out[k].data);
            out[k].data = NULL;
        }
        if (timed) lat[it - a->warmup] = e - b;
        progress(timed, timed ? it - a->warmup + 1 : it + 1, timed ? a->iterations : a->warmup,
                 started, &last);
    }
    r.total_ms = now_ms() - loop_start;
    progress_done(last);
    free(inputs);
    bool profiled = !a->profile || profile_collect(s, warm, a->iterations, &r);
    free(warm);
    if (!profiled) {
        aim_cli_fail(CMD, "out of memory");
        goto done;
    }

    size_t n = (size_t)a->iterations;
    double sum = 0;
    for (size_t k = 0; k < n; k++)
        sum += lat[k];
    r.mean = sum / (double)n;
    qsort(lat, n, sizeof *lat, compare_double);
    r.min = lat[0];
    r.max = lat[n - 1];
    r.p50 = percentile(lat, n, 50);
    r.p90 = percentile(lat, n, 90);
    r.p99 = percentile(lat, n, 99);
    r.maxrss = maxrss_bytes();
    r.hwm = proc_status_bytes("VmHWM");

    if (a->json)
        print_json(a, &r, in, n_in);
    else
        print_text(a, &r, in, n_in);
    rc = fflush(stdout) == 0 ? AIM_EXIT_OK : AIM_EXIT_ERROR;

done:
    if (in)
        for (size_t i = 0; i < n_in; i++)
            free(in[i].t.data);
    free(in);
    free(out);
    free(lat);
    free(r.steps);
    free(r.kinds);
    aim_session_free(s);
    aim_model_free(m);
    return rc;
}

int aim_cmd_bench(int argc, char **argv) {
    bench_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc == 0) rc = run_bench(&a);
    free_args(&a);
    return rc < 0 ? AIM_EXIT_OK : rc;
}
