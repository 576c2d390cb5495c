/*
 * cmd_meta.c: `aim meta MODEL [-o OUT] [--set KEY=VALUE]... [--unset KEY]... [--json]`: lists a
 * model's metadata_props, or changes them and writes OUT. The `chip` key only takes the known
 * targets of accel.h; the vendor script's known-wrong spellings get the right one suggested.
 */
#include "accel.h"
#include "aim/model.h"
#include "cli.h"
#include "cli_util.h"
#include "core/json.h"

#include <stdlib.h>
#include <string.h>

static const char meta_help[] =
    "usage: aim meta MODEL [-o OUT] [--set KEY=VALUE]... [--unset KEY]... [--json]\n\n"
    "Without --set/--unset, lists MODEL's metadata_props. With them, applies the changes in\n"
    "order and writes OUT (required; give -o MODEL to change the file in place).\n\n"
    "options:\n"
    "  -o, --output OUT    where to write the changed model\n"
    "  --set KEY=VALUE     add or replace an entry (split at the first '=')\n"
    "  --unset KEY         remove an entry (an error if it is absent)\n"
    "  --json              print the (resulting) metadata as one JSON document\n"
    "  -h, --help          show this help\n\n"
    "The key 'chip' names the target a compiled model needs and takes only these values:\n";

static const char meta_help_tail[] =
    "('hailo8' and 'hailo8l', written by the vendor's update script, are wrong: use 'hailo'\n"
    "and 'hailo-8l'.)\n";

typedef struct {
    const char *input, *output;
    const char **ops; /* "--set"/"--unset" and their argument, in pairs; argc long */
    size_t n_ops;
    bool json;
} meta_args;

/* ---- Listing ------------------------------------------------------------------------------- */

static void warn_chip(const aim_model *m) {
    const char *chip = aim_model_meta_get(m, AIM_META_CHIP);
    if (!chip || aim_target_known(chip)) return;
    const char *right = aim_target_correction(chip);
    if (right)
        fprintf(stderr,
                "aim meta: warning: chip '%s' is the vendor script's known-wrong spelling; "
                "fix with --set chip=%s\n",
                chip, right);
    else
        fprintf(stderr, "aim meta: warning: chip '%s' is not a known target (see --help)\n", chip);
}

static void print_text(const aim_model *m) {
    size_t n = aim_model_meta_count(m), width = 4;
    if (n == 0) printf("(no metadata_props)\n");
    for (size_t i = 0; i < n; i++)
        if (strlen(aim_model_meta_key(m, i)) > width) width = strlen(aim_model_meta_key(m, i));
    for (size_t i = 0; i < n; i++)
        printf("%-*s  %s\n", (int)width, aim_model_meta_key(m, i), aim_model_meta_value(m, i));
}

static int print_json(const aim_model *m, const char *path) {
    aim_json_writer w;
    aim_json_writer_init_file(&w, stdout, 2);
    aim_json_begin_object(&w);
    aim_json_key(&w, "file");
    aim_json_string(&w, path);
    aim_json_key(&w, "metadata");
    aim_json_begin_object(&w);
    for (size_t i = 0; i < aim_model_meta_count(m); i++) {
        aim_json_key(&w, aim_model_meta_key(m, i));
        aim_json_string(&w, aim_model_meta_value(m, i));
    }
    aim_json_end_object(&w);
    aim_json_end_object(&w);
    aim_status st = aim_json_writer_finish(&w);
    return st == AIM_OK ? AIM_EXIT_OK : aim_cli_fail_status("meta", st);
}

/* ---- Changes ------------------------------------------------------------------------------- */

static int apply_set(aim_model *m, const char *arg, FILE *log) {
    char *key;
    const char *value;
    if (!aim_cli_split_pair(arg, &key, &value))
        return aim_cli_fail("meta", "--set needs KEY=VALUE, got '%s'", arg);
    int rc = AIM_EXIT_OK;
    if (strcmp(key, AIM_META_CHIP) == 0 && !aim_target_known(value)) {
        aim_cli_explain_target("meta", value);
        rc = AIM_EXIT_ERROR;
    } else {
        const char *old = aim_model_meta_get(m, key);
        char *before = old ? aim_strdup(old) : NULL;
        aim_status st = aim_model_meta_set(m, key, value);
        if (st != AIM_OK)
            rc = aim_cli_fail_status("meta", st);
        else if (before)
            fprintf(log, "set %s: '%s' -> '%s'\n", key, before, value);
        else
            fprintf(log, "set %s = '%s'\n", key, value);
        free(before);
    }
    free(key);
    return rc;
}

static int apply_unset(aim_model *m, const char *key, FILE *log) {
    if (!aim_model_meta_get(m, key))
        return aim_cli_fail("meta", "--unset %s: the model has no such metadata key", key);
    aim_status st = aim_model_meta_unset(m, key);
    if (st != AIM_OK) return aim_cli_fail_status("meta", st);
    fprintf(log, "unset %s\n", key);
    return AIM_EXIT_OK;
}

static int apply_changes(aim_model *m, const meta_args *a) {
    FILE *log = a->json ? stderr : stdout; /* keep stdout one JSON document */
    for (size_t i = 0; i + 1 < a->n_ops; i += 2) {
        bool set = strcmp(a->ops[i], "--set") == 0;
        int rc = set ? apply_set(m, a->ops[i + 1], log) : apply_unset(m, a->ops[i + 1], log);
        if (rc != AIM_EXIT_OK) return rc;
    }
    if (!aim_cli_save("meta", m, a->output)) return AIM_EXIT_ERROR;
    fprintf(log, "%s written\n", a->output);
    return AIM_EXIT_OK;
}

/* ---- Command ------------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, meta_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *value;
        if (aim_cli_is_help(opt)) {
            fputs(meta_help, stdout);
            aim_cli_print_targets(stdout);
            fputs(meta_help_tail, stdout);
            return -1;
        } else if (strcmp(opt, "--json") == 0) {
            a->json = true;
        } else if (strcmp(opt, "-o") == 0 || strcmp(opt, "--output") == 0 ||
                   strcmp(opt, "--set") == 0 || strcmp(opt, "--unset") == 0) {
            if (!(value = aim_cli_option_value("meta", argc, argv, &i))) return AIM_EXIT_ERROR;
            if (strcmp(opt, "-o") == 0 || strcmp(opt, "--output") == 0) {
                a->output = value;
            } else {
                a->ops[a->n_ops++] = opt;
                a->ops[a->n_ops++] = value;
            }
        } else if (opt[0] == '-' && opt[1]) {
            return aim_cli_fail("meta", "unknown option '%s' (see --help)", opt);
        } else if (!a->input) {
            a->input = opt;
        } else {
            return aim_cli_fail("meta", "unexpected argument '%s' (see --help)", opt);
        }
    }
    if (!a->input) return aim_cli_fail("meta", "needs MODEL (see --help)");
    if (a->n_ops && !a->output)
        return aim_cli_fail("meta",
                            "changing metadata needs -o OUT (give -o %s to change the "
                            "file in place)",
                            a->input);
    if (!a->n_ops && a->output)
        return aim_cli_fail("meta", "-o given but no --set or --unset (see --help)");
    return AIM_EXIT_OK;
}

int aim_cmd_meta(int argc, char **argv) {
    meta_args a = {0};
    a.ops = calloc((size_t)argc * 2, sizeof *a.ops);
    if (!a.ops) return aim_cli_fail("meta", "out of memory");
    int rc = parse_args(argc, argv, &a);
    aim_model *m = NULL;
    if (rc == AIM_EXIT_OK && !aim_cli_load("meta", a.input, &m)) rc = AIM_EXIT_ERROR;
    if (rc == AIM_EXIT_OK && a.n_ops) rc = apply_changes(m, &a);
    if (rc == AIM_EXIT_OK) {
        warn_chip(m);
        if (a.json)
            rc = print_json(m, a.n_ops ? a.output : a.input);
        else if (!a.n_ops)
            print_text(m);
    }
    aim_model_free(m);
    free(a.ops);
    return rc < 0 ? AIM_EXIT_OK : rc;
}
