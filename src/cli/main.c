/*
 * main.c: the `aim` entry point: dispatches to one subcommand per file in src/cli.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const aim_cli_command commands[] = {
#define AIM_CLI_ROW(name, summary) {#name, summary, aim_cmd_##name},
    AIM_CLI_COMMANDS(AIM_CLI_ROW)
#undef AIM_CLI_ROW
};

int aim_cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "aim %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return AIM_EXIT_ERROR;
}

int aim_cli_fail_status(const char *cmd, aim_status st) {
    const char *msg = aim_last_error();
    return aim_cli_fail(cmd, "%s", msg[0] ? msg : aim_status_describe(st));
}

bool aim_cli_is_help(const char *arg) {
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

static void usage(FILE *out) {
    fprintf(out, "usage: aim COMMAND [ARGS...]\n\n"
                 "aim: an edge AI manager and accelerator toolchain.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'aim COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return AIM_EXIT_ERROR;
    }
    if (aim_cli_is_help(argv[1])) {
        usage(stdout);
        return AIM_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("aim %s\n", AIM_VERSION_STRING);
        return AIM_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "aim: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return AIM_EXIT_ERROR;
}
