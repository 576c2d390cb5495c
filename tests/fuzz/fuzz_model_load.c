/*
 * fuzz_model_load.c: libFuzzer target for the model loader (aim_model_load_memory).
 *
 * Any input must either be refused with a status and a message, or load; a loaded model must
 * save, and the saved bytes must load again (a model aim accepts is one it can write back).
 * External data is refused here (dir is NULL), so the target never touches the file system.
 */
#include "aim/model.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what) {
    fprintf(stderr, "fuzz_model_load: %s: %s\n", what, aim_last_error());
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    aim_model *m;
    if (aim_model_load_memory(data, size, NULL, &m) != AIM_OK) {
        if (m != NULL) fail("failed load left a model behind");
        if (aim_last_error()[0] == '\0') fail("failed load set no message");
        return 0;
    }
    uint8_t *saved;
    size_t saved_size;
    if (aim_model_save_memory(m, &saved, &saved_size) != AIM_OK) fail("save of a loaded model");
    aim_model *again;
    if (aim_model_load_memory(saved, saved_size, NULL, &again) != AIM_OK)
        fail("reload of a saved model");
    uint8_t *saved2;
    size_t saved2_size;
    if (aim_model_save_memory(again, &saved2, &saved2_size) != AIM_OK) fail("second save");
    /* protobuf-c writes fields in a fixed order, so a second save is byte-identical. */
    if (saved2_size != saved_size || memcmp(saved, saved2, saved_size) != 0)
        fail("save -> load -> save changed the bytes");
    free(saved2);
    free(saved);
    aim_model_free(again);
    aim_model_free(m);
    return 0;
}
