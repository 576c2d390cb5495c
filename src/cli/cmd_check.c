/* cmd_check.c: placeholder until the command lands (see issue 2). */
#include "cli.h"

int aim_cmd_check(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return aim_cli_fail("check", "not built yet");
}
