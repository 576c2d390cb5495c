/*
 * cmd_convert.c: `aim convert MODEL -o OUT`: load and save, the round-trip check of the ONNX
 * layer (external data is rewritten beside OUT).
 */
#include "aim/model.h"
#include "cli.h"

#include <string.h>

static const char convert_help[] =
    "usage: aim convert MODEL -o OUT\n\n"
    "Loads MODEL and writes it to OUT unchanged (every field kept, external data files\n"
    "written beside OUT). Useful to validate a file and to normalise its encoding.\n\n"
    "options:\n"
    "  -o, --output OUT   where to write the model (required)\n"
    "  -h, --help         show this help\n";

int aim_cmd_convert(int argc, char **argv) {
    const char *input = NULL, *output = NULL;
    for (int i = 1; i < argc; i++) {
        if (aim_cli_is_help(argv[i])) {
            fputs(convert_help, stdout);
            return AIM_EXIT_OK;
        } else if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) {
            if (++i >= argc) return aim_cli_fail("convert", "%s needs a file name", argv[i - 1]);
            output = argv[i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return aim_cli_fail("convert", "unknown option '%s' (see --help)", argv[i]);
        } else if (!input) {
            input = argv[i];
        } else {
            return aim_cli_fail("convert", "unexpected argument '%s' (see --help)", argv[i]);
        }
    }
    if (!input || !output) return aim_cli_fail("convert", "needs MODEL and -o OUT (see --help)");
    aim_model *m;
    aim_status st = aim_model_load(input, &m);
    if (st != AIM_OK) return aim_cli_fail_status("convert", st);
    st = aim_model_save(m, output);
    aim_model_free(m);
    if (st != AIM_OK) return aim_cli_fail_status("convert", st);
    return AIM_EXIT_OK;
}
