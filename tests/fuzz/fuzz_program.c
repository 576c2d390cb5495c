/*
 * fuzz_program.c: libFuzzer target for the compiled-program format (src/cpu/program_io.c):
 * aim_program_deserialize on the raw bytes and on a copy whose CRC-32 is repaired (otherwise
 * almost every mutation stops at the checksum and the parser behind it is never reached).
 *
 * A program that deserializes passed validation, so serializing it must succeed and give back
 * exactly the bytes it came from (the reader accepts one encoding per program).
 */
#include "cpu/program.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(const char *what) {
    fprintf(stderr, "fuzz_program: %s: %s\n", what, aim_last_error());
    abort();
}

static void check(const uint8_t *data, size_t size) {
    aim_program *p = NULL;
    if (aim_program_deserialize(data, size, &p) != AIM_OK) {
        if (p) fail("failed deserialize left a program behind");
        return;
    }
    uint8_t *again = NULL;
    size_t n = 0;
    if (aim_program_serialize(p, &again, &n) != AIM_OK) fail("serialize of a loaded program");
    if (n != size || memcmp(again, data, size) != 0) fail("round trip changed the bytes");
    free(again);
    aim_program_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check(data, size);
    if (size < 24) return 0;
    uint8_t *copy = malloc(size);
    if (!copy) return 0;
    memcpy(copy, data, size);
    uint32_t crc = aim_program_crc32(copy + 24, size - 24);
    for (int i = 0; i < 4; i++)
        copy[12 + i] = (uint8_t)(crc >> (8 * i));
    check(copy, size);
    free(copy);
    return 0;
}
