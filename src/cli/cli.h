/*
 * cli.h: what the subcommands of `aim` share: the command table entry, and small helpers for
 * argument parsing and error reporting so every command behaves the same way.
 *
 * Conventions: each command parses its own arguments, prints `--help` to stdout and exits 0,
 * prints errors to stderr as "aim CMD: message" and exits 2 for usage errors or unreadable
 * input (1 is kept for "ran fine, answer is no", as in `aim check`).
 */
#ifndef AIM_CLI_H
#define AIM_CLI_H

#include "aim/status.h"

#include <stdbool.h>
#include <stdio.h>

enum { AIM_EXIT_OK = 0, AIM_EXIT_NO = 1, AIM_EXIT_ERROR = 2 };

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} aim_cli_command;

/* Prints "aim CMD: message\n" to stderr and returns AIM_EXIT_ERROR. */
int aim_cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints the last library error ("aim CMD: <aim_last_error()>") and returns AIM_EXIT_ERROR. */
int aim_cli_fail_status(const char *cmd, aim_status st);

/* True when argv[i] is -h or --help. */
bool aim_cli_is_help(const char *arg);

#define AIM_CLI_COMMANDS(X)                                                                        \
    X(inspect, "show a model's inputs, outputs, metadata, operators and parameters")               \
    X(check, "check a model against the manager's conventions")                                    \
    X(io, "rename, reshape and conform a model's inputs and outputs")                              \
    X(meta, "show or change a model's metadata_props (chip, ...)")                                 \
    X(convert, "load a model and save it again (round trip)")                                      \
    X(run, "run a model on TensorProto inputs and summarise its outputs")                          \
    X(detect, "find objects in JPEG/PNG images with a conventions model")                          \
    X(bench, "time a model on the CPU runtime: load, latency, throughput, memory")                 \
    X(compile, "quantize a model's accelerable region to an int8 AimProgram with images")

#define AIM_CLI_DECLARE(name, summary) int aim_cmd_##name(int argc, char **argv);
AIM_CLI_COMMANDS(AIM_CLI_DECLARE)
#undef AIM_CLI_DECLARE

#endif
