/* cmd_inspect.c: placeholder until the command lands (see issue 2). */
#include "cli.h"

int aim_cmd_inspect(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return aim_cli_fail("inspect", "not built yet");
}
