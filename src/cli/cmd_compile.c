/*
 * cmd_compile.c: `aim compile MODEL --calib DIR|ARCHIVE`: quantizes the accelerable part of a
 * model with calibration images and writes OUTDIR/<stem>.<target>.onnx (one AimProgram node
 * inside, everything else unchanged) and OUTDIR/logs.json (OAAX toolchain convention, also on
 * failure), optionally a per-layer report and a standard QDQ model for ONNX Runtime.
 */
#include "aim/compile.h"
#include "cli.h"
#include "cli_util.h"
#include "compile/archive.h"
#include "core/json.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char compile_help[] =
    "usage: aim compile MODEL --calib DIR|ARCHIVE [-o OUTDIR] [--target cpu-int8]\n"
    "                   [--start NODE]... [--end NODE]... [--calib-method METHOD]\n"
    "                   [--calib-size N] [--report] [--export-qdq OUT.onnx] [--threads N]\n"
    "                   [--no-equalize] [--no-bias-correction] [--min-snr DB] [--gptq]\n"
    "                   [--json]\n\n"
    "Quantizes the part of MODEL an accelerator can run to int8 with calibration images and\n"
    "writes OUTDIR/<name>.<target>.onnx, where that part is one AimProgram node (domain ai.aim)\n"
    "and the pre- and post-processing stay ordinary ONNX nodes; graph inputs and outputs keep\n"
    "their names and shapes; metadata_props gets chip=<target>. OUTDIR/logs.json records the\n"
    "outcome (also on failure). Images are decoded, resized and normalised as the model's\n"
    "doc_string says; files that are not readable JPEG/PNG images are skipped and counted.\n\n"
    "options:\n"
    "  --calib DIR|ARCHIVE   calibration images: a folder (every file in it, sorted by name)\n"
    "                        or a zip/tar(.gz/.bz2/.xz) archive (extracted safely)\n"
    "  -o, --output DIR      output folder (created; default: the current folder)\n"
    "  --target NAME         cpu-int8 (the only compile target)\n"
    "  --start NODE          first node(s) of the region (repeatable); a node name, or for an\n"
    "                        unnamed node the name of its first output tensor\n"
    "  --end NODE            last node(s) of the region (repeatable); without --start/--end the\n"
    "                        largest connected group of quantizable nodes is chosen\n"
    "  --calib-method M      auto (default: each of the others is tried and the one whose\n"
    "                        outputs agree best with fp32 on held-out images wins; minmax\n"
    "                        on a near tie, as it clips no strong response), minmax,\n"
    "                        percentile (99.99%), entropy (KL divergence) or mse (least\n"
    "                        squared quantization error)\n"
    "  --calib-size N        use at most N images (default: all)\n"
    "  --no-equalize         keep the weights as they are (default: Conv pairs are rescaled\n"
    "                        per channel so that one activation scale suits all channels)\n"
    "  --no-bias-correction  keep the biases (default: the mean output shift each Conv's\n"
    "                        weight rounding causes, with input means measured on the\n"
    "                        calibration images, is subtracted from its bias)\n"
    "  --min-snr DB          accuracy target of an automatic region (default 10): the worst\n"
    "                        SNR, in dB, of the tensors the post-processing reads, int8 vs\n"
    "                        fp32 on the held-out images; when the whole region misses it,\n"
    "                        the region is cut shorter (bisection, one compile per try) and\n"
    "                        the nodes after the cut stay float32. 0: quantize the whole\n"
    "                        region whatever its accuracy\n"
    "  --gptq                also try GPTQ rounding of the Conv weights (from the Conv inputs\n"
    "                        on the calibration images) and keep it where the region agrees\n"
    "                        better with fp32 on the held-out images (about one more compile)\n"
    "  --report              per-layer cosine/SNR table of the program vs fp32 (stdout and\n"
    "                        OUTDIR/report.json)\n"
    "  --export-qdq FILE     also write a QuantizeLinear/DequantizeLinear model (ONNX Runtime)\n"
    "  --threads N           threads for the fp32 runs (default 0: all cores)\n"
    "  --json                print logs.json to stdout instead of the text summary\n"
    "  -h, --help            show this help\n\n"
    "targets:\n"
    "  cpu-int8   aim's int8 CPU program (AimProgram node, oneDNN)\n";

#define COMPILE_MAX_FILES 100000

typedef struct {
    const char *model, *calib, *outdir, *qdq;
    bool json;
    aim_compile_options o;
} compile_args;

typedef struct {
    char **paths;
    size_t n;
    aim_archive archive;
    bool extracted;
} calib_files;

static int parse_count(const char *opt, const char *text, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || end == text || v < 0 || v > max)
        return aim_cli_fail("compile", "%s needs a number from 0 to %ld, not '%s'", opt, max, text);
    *out = v;
    return -1;
}

static int add_node(const char **list, size_t *n, const char *name) {
    if (*n == AIM_COMPILE_MAX_NODES)
        return aim_cli_fail("compile", "more than %d --start or --end nodes",
                            AIM_COMPILE_MAX_NODES);
    list[(*n)++] = name;
    return -1;
}

static int parse_value(compile_args *a, const char *opt, const char *v) {
    long n = 0;
    if (!strcmp(opt, "--calib"))
        a->calib = v;
    else if (!strcmp(opt, "-o") || !strcmp(opt, "--output"))
        a->outdir = v;
    else if (!strcmp(opt, "--target"))
        a->o.target = v;
    else if (!strcmp(opt, "--start"))
        return add_node(a->o.start_nodes, &a->o.start_count, v);
    else if (!strcmp(opt, "--end"))
        return add_node(a->o.end_nodes, &a->o.end_count, v);
    else if (!strcmp(opt, "--calib-method")) {
        if (!aim_calib_method_parse(v, &a->o.method))
            return aim_cli_fail("compile",
                                "unknown --calib-method '%s' (auto, minmax, "
                                "percentile, entropy, mse)",
                                v);
    } else if (!strcmp(opt, "--calib-size")) {
        int rc = parse_count(opt, v, 1000000, &n);
        a->o.calib_size = (size_t)n;
        return rc;
    } else if (!strcmp(opt, "--threads")) {
        int rc = parse_count(opt, v, 1024, &n);
        a->o.threads = (int)n;
        return rc;
    } else if (!strcmp(opt, "--min-snr")) {
        char *end;
        errno = 0;
        double db = strtod(v, &end);
        if (errno || *end || end == v || !(db >= 0 && db <= 200))
            return aim_cli_fail("compile", "--min-snr needs a number of dB from 0 to 200, not '%s'",
                                v);
        a->o.min_snr_db = db;
    } else if (!strcmp(opt, "--export-qdq"))
        a->qdq = v;
    return -1;
}

static bool takes_value(const char *opt) {
    static const char *const opts[] = {
        "--calib",        "-o",           "--output",  "--target",     "--start",  "--end",
        "--calib-method", "--calib-size", "--threads", "--export-qdq", "--min-snr"};
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
        if (!strcmp(opt, opts[i])) return true;
    return false;
}

/* -1: go on; otherwise the exit code. */
static int parse_args(compile_args *a, int argc, char **argv) {
    aim_compile_options_init(&a->o);
    a->outdir = ".";
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (aim_cli_is_help(arg)) {
            fputs(compile_help, stdout);
            return AIM_EXIT_OK;
        }
        int rc = -1;
        if (takes_value(arg)) {
            const char *v = aim_cli_option_value("compile", argc, argv, &i);
            rc = v ? parse_value(a, arg, v) : AIM_EXIT_ERROR;
        } else if (!strcmp(arg, "--report"))
            a->o.report = true;
        else if (!strcmp(arg, "--no-equalize"))
            a->o.no_equalize = true;
        else if (!strcmp(arg, "--gptq"))
            a->o.gptq = true;
        else if (!strcmp(arg, "--no-bias-correction"))
            a->o.no_bias_correction = true;
        else if (!strcmp(arg, "--json"))
            a->json = true;
        else if (arg[0] == '-' && arg[1])
            rc = aim_cli_fail("compile", "unknown option '%s' (see --help)", arg);
        else if (!a->model)
            a->model = arg;
        else
            rc = aim_cli_fail("compile", "more than one MODEL given ('%s')", arg);
        if (rc >= 0) return rc;
    }
    if (!a->model) return aim_cli_fail("compile", "no MODEL given (see --help)");
    if (!a->calib) return aim_cli_fail("compile", "no --calib DIR|ARCHIVE given (see --help)");
    return -1;
}

/* ---- Calibration files --------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_regular(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int push_path(calib_files *f, char *path) {
    char **grown =
        path && f->n < COMPILE_MAX_FILES ? realloc(f->paths, (f->n + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(path);
        return aim_cli_fail("compile", "too many calibration files or out of memory");
    }
    f->paths = grown;
    f->paths[f->n++] = path;
    return -1;
}

static int list_dir(calib_files *f, const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return aim_cli_fail("compile", "cannot read calibration folder '%s': %s", dir,
                            strerror(errno));
    int rc = -1;
    struct dirent *e;
    while (rc < 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* hidden files and . .. */
        char *path = aim_path_join(dir, e->d_name);
        if (path && !is_regular(path)) {
            free(path);
            continue;
        }
        rc = push_path(f, path);
    }
    closedir(d);
    if (rc < 0 && f->n) qsort(f->paths, f->n, sizeof *f->paths, cmp_str);
    return rc;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

static int list_archive(calib_files *f, const char *path) {
    if (aim_archive_extract(path, NULL, NULL, &f->archive) != AIM_OK)
        return aim_cli_fail("compile", "calibration archive '%s': %s", path, aim_last_error());
    f->extracted = true;
    int rc = -1;
    for (size_t i = 0; i < f->archive.file_count && rc < 0; i++) {
        const char *name = f->archive.files[i];
        /* a toolchain archive also holds the model and its JSON config: not images */
        if (ends_with(name, ".onnx") || ends_with(name, ".json")) continue;
        rc = push_path(f, aim_path_join(f->archive.dir, name));
    }
    if (rc < 0 && f->n) qsort(f->paths, f->n, sizeof *f->paths, cmp_str);
    return rc;
}

static void calib_free(calib_files *f) {
    for (size_t i = 0; i < f->n; i++)
        free(f->paths[i]);
    free(f->paths);
    if (f->extracted) aim_archive_remove(&f->archive);
}

static int list_calib(calib_files *f, const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return aim_cli_fail("compile", "calibration input '%s': %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return list_dir(f, path);
    if (aim_archive_sniff(path)) return list_archive(f, path);
    return aim_cli_fail("compile",
                        "calibration input '%s' is neither a folder nor a zip/tar archive", path);
}

/* ---- Progress and messages ----------------------------------------------------------------- */

typedef struct {
    bool tty;
    bool open_line; /* a \r progress line is on screen */
} cli_progress;

static void on_progress(void *ctx, const char *phase, size_t done, size_t total) {
    cli_progress *p = ctx;
    int pct = total ? (int)(100 * done / total) : 100;
    int bar = pct / 5;
    /* On a terminal the bar redraws in place; in a log file only finished phases appear. */
    if (!p->tty && done != total) return;
    fprintf(stderr, "%s%-9s [%.*s%*s] %zu/%zu %3d%%%s", p->tty ? "\r" : "", phase, bar,
            "####################", 20 - bar, "", done, total, pct, p->tty ? "" : "\n");
    p->open_line = p->tty && done != total;
    if (p->tty && done == total) fputc('\n', stderr);
    fflush(stderr);
}

static void on_log(void *ctx, int level, const char *message) {
    cli_progress *p = ctx;
    if (p->open_line) fputc('\n', stderr);
    p->open_line = false;
    if (level > 0)
        fprintf(stderr, "aim compile: warning: %s\n", message);
    else
        fprintf(stderr, "%s%s", message,
                message[0] && message[strlen(message) - 1] == '\n' ? "" : "\n");
}

/* ---- Outputs ------------------------------------------------------------------------------- */

static int make_dir(const char *dir) {
    aim_status st = aim_dir_create(dir);
    return st == AIM_OK ? -1 : aim_cli_fail_status("compile", st);
}

/* "<dir>/<stem>.<target>.onnx" where stem is the model's file name without ".onnx". */
static char *output_path(const char *dir, const char *model, const char *target) {
    const char *base = strrchr(model, '/');
    base = base ? base + 1 : model;
    size_t n = strlen(base);
    if (ends_with(base, ".onnx")) n -= 5;
    char name[1024];
    snprintf(name, sizeof name, "%.*s.%s.onnx", (int)(n < 900 ? n : 900), base, target);
    return aim_path_join(dir, name);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char *path = aim_path_join(dir, name);
    if (path && aim_file_write_atomic(path, text, strlen(text)) != AIM_OK)
        fprintf(stderr, "aim compile: %s\n", aim_last_error());
    free(path);
}

/* logs.json when compiling failed: the OAAX convention wants it either way. */
static void write_error_logs(const compile_args *a, const char *message) {
    aim_strbuf sb;
    aim_json_writer w;
    aim_strbuf_init(&sb);
    aim_json_writer_init_buf(&w, &sb, 2);
    aim_json_begin_object(&w);
    aim_json_key(&w, "status");
    aim_json_string(&w, "error");
    aim_json_key(&w, "error");
    aim_json_string(&w, message);
    aim_json_key(&w, "input_file");
    aim_json_string(&w, a->model);
    aim_json_key(&w, "target");
    aim_json_string(&w, a->o.target ? a->o.target : "");
    aim_json_end_object(&w);
    aim_json_writer_finish(&w);
    if (sb.data) write_text(a->outdir, "logs.json", sb.data);
    aim_strbuf_free(&sb);
}

static int fail_logged(const compile_args *a, aim_status st) {
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", aim_last_error());
    write_error_logs(a, msg);
    return aim_cli_fail_status("compile", st);
}

static int write_outputs(const compile_args *a, aim_compile_result *r, const char *out) {
    if (!aim_cli_save("compile", r->model, out)) return AIM_EXIT_ERROR;
    if (r->report_json) write_text(a->outdir, "report.json", r->report_json);
    if (a->qdq) {
        aim_model *q;
        aim_status st = aim_compile_export_qdq(r, &q);
        if (st != AIM_OK) return aim_cli_fail_status("compile", st);
        bool ok = aim_cli_save("compile", q, a->qdq);
        aim_model_free(q);
        if (!ok) return AIM_EXIT_ERROR;
    }
    write_text(a->outdir, "logs.json", r->logs_json);
    return -1;
}

static void print_summary(const compile_args *a, const aim_compile_result *r, const char *out) {
    if (a->json) {
        fputs(r->logs_json, stdout);
        return;
    }
    if (r->report_text) printf("%s", r->report_text);
    printf("method: %s (region outputs vs fp32 on held-out images: cosine %.6f)\n",
           aim_calib_method_name(r->method_used), r->output_cosine);
    printf("images: %zu used, %zu skipped\n", r->images_used, r->images_skipped);
    printf("wrote %s (%zu nodes replaced by one AimProgram node)\n", out, r->region_nodes);
    printf("wrote %s/logs.json\n", a->outdir);
    if (a->qdq) printf("wrote %s\n", a->qdq);
}

static int compile_model(compile_args *a, calib_files *f) {
    aim_model *m;
    if (!aim_cli_load("compile", a->model, &m)) {
        write_error_logs(a, aim_last_error());
        return AIM_EXIT_ERROR;
    }
    cli_progress prog = {isatty(2) != 0, false};
    char *out = output_path(a->outdir, a->model, a->o.target ? a->o.target : "");
    a->o.images = (const char *const *)f->paths;
    a->o.image_count = f->n;
    a->o.progress = on_progress;
    a->o.progress_ctx = &prog;
    a->o.log = on_log;
    a->o.log_ctx = &prog;
    a->o.model_name = a->model;
    a->o.output_name = out;
    aim_compile_result r;
    aim_status st = aim_compile(m, &a->o, &r);
    int rc = st == AIM_OK ? write_outputs(a, &r, out) : fail_logged(a, st);
    if (rc < 0) {
        print_summary(a, &r, out);
        rc = AIM_EXIT_OK;
    }
    aim_compile_result_free(&r);
    free(out);
    aim_model_free(m);
    return rc;
}

int aim_cmd_compile(int argc, char **argv) {
    compile_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(&a, argc, argv);
    if (rc >= 0) return rc;
    if ((rc = make_dir(a.outdir)) >= 0) return rc;
    calib_files f = {0};
    rc = list_calib(&f, a.calib);
    if (rc < 0)
        rc = compile_model(&a, &f);
    else
        write_error_logs(&a, "calibration input unusable (see the message above)");
    calib_free(&f);
    return rc;
}
