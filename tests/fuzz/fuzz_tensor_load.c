/*
 * fuzz_tensor_load.c: libFuzzer target for standalone TensorProto files (the input_N.pb files of
 * ONNX test cases): aim_onnx_tensor_load_memory, then aim_onnx_tensor_decode on what loads.
 *
 * A tensor that loads passed the size checks, so decoding it must succeed (strings aside) and
 * give exactly element count x element size bytes.
 */
#include "onnx/onnx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void fail(const char *what) {
    fprintf(stderr, "fuzz_tensor_load: %s: %s\n", what, aim_last_error());
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Onnx__TensorProto *t;
    if (aim_onnx_tensor_load_memory(data, size, &t) != AIM_OK) {
        if (t != NULL) fail("failed load left a tensor behind");
        return 0;
    }
    void *values;
    size_t bytes;
    aim_status st = aim_onnx_tensor_decode(NULL, t, &values, &bytes);
    if (t->data_type != AIM_DTYPE_STRING) {
        size_t count = 1;
        for (size_t i = 0; i < t->n_dims; i++)
            count *= (size_t)t->dims[i];
        if (st != AIM_OK) fail("decode of a loaded tensor");
        if (bytes != count * aim_dtype_size(t->data_type)) fail("decoded size");
        /* Touch every byte so ASan sees any short buffer. */
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < bytes; i++)
            sum += ((const uint8_t *)values)[i];
        (void)sum;
    }
    free(values);
    onnx__tensor_proto__free_unpacked(t, NULL);
    return 0;
}
