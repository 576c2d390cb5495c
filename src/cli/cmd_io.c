/* cmd_io.c: placeholder until the command lands (see issue 2). */
#include "cli.h"

int aim_cmd_io(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return aim_cli_fail("io", "not built yet");
}
