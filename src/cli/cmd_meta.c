/* cmd_meta.c: placeholder until the command lands (see issue 2). */
#include "cli.h"

int aim_cmd_meta(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return aim_cli_fail("meta", "not built yet");
}
