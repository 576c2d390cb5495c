/*
 * runner.c: the ONNX backend node-test conformance runner.
 *
 * Runs every test folder under node/ of Debian's libonnx-testdata (model.onnx plus
 * test_data_set_N/{input,output}_K.pb) on aim's reference kernels and prints one line per test
 * and a closing "N passed, M failed, K unsupported".
 *
 * A test whose model uses an operator outside aim's committed list (required_ops below) and
 * cannot be loaded is "unsupported"; a failure of a listed operator is a failure. Exit status is
 * 0 only when nothing failed.
 *
 * Tolerances are the ONNX backend tests' defaults: |actual - expected| <= atol + rtol * |expected|
 * with rtol 1e-3, atol 1e-7, for floating types; integers and booleans must match exactly.
 */
#include "aim/model.h"
#include "aim/session.h"
#include "aim/tensor_io.h"
#include "graph/tensor.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const required_ops[] = {
    "Abs",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Ceil",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvTranspose",
    "DepthToSpace",
    "Div",
    "Dropout",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "InstanceNormalization",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LRN",
    "MatMul",
    "Max",
    "MaxPool",
    "Mean",
    "Min",
    "Mod",
    "Mul",
    "Neg",
    "NonMaxSuppression",
    "NonZero",
    "Not",
    "Or",
    "Pad",
    "Pow",
    "PRelu",
    "Range",
    "Reciprocal",
    "ReduceL2",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Resize",
    "RoiAlign",
    "Round",
    "ScatterND",
    "Shape",
    "Sigmoid",
    "Sign",
    "Size",
    "Slice",
    "Softmax",
    "Softplus",
    "SpaceToDepth",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tanh",
    "Tile",
    "TopK",
    "Transpose",
    "Unsqueeze",
    "Upsample",
    "Where",
    "Xor",
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
    "DynamicQuantizeLinear",
};

/* Tests whose expected output is wrong by the operator's own specification, with the reason.
 * They are reported UNSUPPORTED with that reason, never as passed. */
static const struct {
    const char *test;
    const char *reason;
} defective_tests[] = {
    {"test_cast_FLOAT_to_BFLOAT16",
     "test data truncates float32 to bfloat16; ONNX's own float32_to_bfloat16 and ONNX Runtime "
     "round to nearest even, as aim does"},
};

static const char *defect_reason(const char *test) {
    for (size_t i = 0; i < sizeof defective_tests / sizeof defective_tests[0]; i++)
        if (strcmp(defective_tests[i].test, test) == 0) return defective_tests[i].reason;
    return NULL;
}

#define RTOL 1e-3
#define ATOL 1e-7

typedef enum { RESULT_PASS, RESULT_FAIL, RESULT_UNSUPPORTED } result;

static bool is_required(const char *op) {
    for (size_t i = 0; i < sizeof required_ops / sizeof required_ops[0]; i++)
        if (strcmp(required_ops[i], op) == 0) return true;
    return false;
}

/* Element types aim commits to (the list; float16, bfloat16 and float64 where test data
 * needs them). Strings and non-tensor values (sequences, optionals) are out of scope. */
static bool dtype_in_scope(int dtype) {
    return dtype != AIM_DTYPE_UNDEFINED && dtype != AIM_DTYPE_STRING &&
           dtype != AIM_DTYPE_COMPLEX64 && dtype != AIM_DTYPE_COMPLEX128;
}

static bool io_in_scope(const aim_model *m) {
    aim_value_info vi;
    for (size_t i = 0; i < aim_model_input_count(m); i++)
        if (aim_model_input(m, i, &vi) != AIM_OK || !dtype_in_scope(vi.dtype)) return false;
    for (size_t i = 0; i < aim_model_output_count(m); i++)
        if (aim_model_output(m, i, &vi) != AIM_OK || !dtype_in_scope(vi.dtype)) return false;
    return true;
}

/* True when every node of the model uses a listed operator (of the default domain) and its
 * inputs and outputs are tensors of committed element types. */
static bool model_in_scope(const aim_model *m) {
    if (!io_in_scope(m)) return false;
    for (size_t i = 0; i < aim_model_node_count(m); i++) {
        aim_node_info n;
        if (aim_model_node(m, i, &n) != AIM_OK) return false;
        if (n.domain[0] && strcmp(n.domain, "ai.onnx") != 0) return false;
        if (!is_required(n.op_type)) return false;
    }
    return true;
}

/* snprintf for paths; a path too long for the buffer becomes "" (then fails to open). */
__attribute__((format(printf, 3, 4))) static void path_format(char *buf, size_t size,
                                                              const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) buf[0] = 0;
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static bool is_float(int dtype) {
    return dtype == AIM_DTYPE_FLOAT || dtype == AIM_DTYPE_DOUBLE || dtype == AIM_DTYPE_FLOAT16;
}

/* ONNX 1.12's test data stores bfloat16 values as uint16 tensors holding the same bits. */
static bool bfloat16_as_uint16(int got, int want) {
    return got == AIM_DTYPE_BFLOAT16 && want == AIM_DTYPE_UINT16;
}

static bool compare(const aim_tensor *got, const aim_tensor *want, char *why, size_t why_size) {
    char a[128], b[128];
    if (bfloat16_as_uint16(got->dtype, want->dtype)) {
        aim_tensor bits = *got;
        bits.dtype = AIM_DTYPE_UINT16;
        return compare(&bits, want, why, why_size);
    }
    if (got->dtype != want->dtype) {
        snprintf(why, why_size, "type %s, expected %s", aim_dtype_name(got->dtype),
                 aim_dtype_name(want->dtype));
        return false;
    }
    if (!aim_tensor_same_shape(got, want)) {
        snprintf(why, why_size, "shape %s, expected %s", aim_tensor_shape_str(got, a, sizeof a),
                 aim_tensor_shape_str(want, b, sizeof b));
        return false;
    }
    size_t n = aim_tensor_count(want);
    for (size_t i = 0; i < n; i++) {
        if (is_float(want->dtype)) {
            double g = aim_tensor_get_f64(got, i), w = aim_tensor_get_f64(want, i);
            if (isnan(w) && isnan(g)) continue;
            if (isinf(w) && g == w) continue;
            if (!(fabs(g - w) <= ATOL + RTOL * fabs(w))) {
                snprintf(why, why_size, "element %zu is %.9g, expected %.9g", i, g, w);
                return false;
            }
        } else if (aim_tensor_get_i64(got, i) != aim_tensor_get_i64(want, i)) {
            snprintf(why, why_size, "element %zu is %lld, expected %lld", i,
                     (long long)aim_tensor_get_i64(got, i), (long long)aim_tensor_get_i64(want, i));
            return false;
        }
    }
    return true;
}

/* True when a test's input contradicts the model's own declared shape (a defect of the test
 * data: ONNX Runtime refuses such inputs as well). */
static bool contradicts_declaration(const aim_tensor *declared, const aim_tensor *given) {
    if (declared->rank < 0) return false;
    if (declared->rank != given->rank) return true;
    for (int d = 0; d < given->rank; d++)
        if (declared->dims[d] >= 0 && declared->dims[d] != given->dims[d]) return true;
    return false;
}

/* Runs one test_data_set folder: PASS, FAIL with a reason, or UNSUPPORTED when the test data
 * itself is inconsistent with the model. */
static result run_data_set(aim_session *s, const char *dir, char *why, size_t why_size) {
    size_t n_in = aim_session_input_count(s), n_out = aim_session_output_count(s);
    aim_tensor *inputs = calloc(n_in + 1, sizeof *inputs);
    aim_tensor *outputs = calloc(n_out + 1, sizeof *outputs);
    bool ok = inputs && outputs;
    bool ran = false, invalid = false;
    char path[4096];
    for (size_t i = 0; ok && i < n_in; i++) {
        char *name = NULL;
        path_format(path, sizeof path, "%s/input_%zu.pb", dir, i);
        aim_tensor t;
        if (aim_tensor_load_pb(path, &t, &name) != AIM_OK) {
            snprintf(why, why_size, "input_%zu.pb: %s", i, aim_last_error());
            ok = false;
            break;
        }
        int idx = name && name[0] ? aim_session_input_index(s, name) : (int)i;
        free(name);
        if (idx < 0) idx = (int)i;
        aim_tensor declared;
        aim_session_input_info(s, (size_t)idx, &declared);
        if (bfloat16_as_uint16(declared.dtype, t.dtype)) t.dtype = AIM_DTYPE_BFLOAT16;
        if (contradicts_declaration(&declared, &t)) {
            char a[96], b[96];
            snprintf(why, why_size,
                     "invalid test data: input %zu has shape %s, the model declares %s", i,
                     aim_tensor_shape_str(&t, a, sizeof a),
                     aim_tensor_shape_str(&declared, b, sizeof b));
            free(t.data);
            invalid = true;
            ok = false;
            break;
        }
        free(inputs[idx].data);
        inputs[idx] = t;
    }
    if (ok && aim_session_run(s, inputs, outputs) != AIM_OK) {
        snprintf(why, why_size, "run: %s", aim_last_error());
        ok = false;
    } else if (ok) {
        ran = true;
    }
    for (size_t i = 0; ok && i < n_out; i++) {
        path_format(path, sizeof path, "%s/output_%zu.pb", dir, i);
        aim_tensor want;
        if (aim_tensor_load_pb(path, &want, NULL) != AIM_OK) {
            snprintf(why, why_size, "output_%zu.pb: %s", i, aim_last_error());
            ok = false;
            break;
        }
        char detail[512];
        if (!compare(&outputs[i], &want, detail, sizeof detail)) {
            snprintf(why, why_size, "output %zu ('%s'): %s", i, aim_session_output_name(s, i),
                     detail);
            ok = false;
        }
        free(want.data);
    }
    for (size_t i = 0; i < n_in; i++)
        free(inputs[i].data);
    if (ran)
        for (size_t i = 0; i < n_out; i++)
            free(outputs[i].data);
    free(inputs);
    free(outputs);
    return ok ? RESULT_PASS : invalid ? RESULT_UNSUPPORTED : RESULT_FAIL;
}

static result run_test(const char *dir, char *why, size_t why_size) {
    char path[4096];
    path_format(path, sizeof path, "%s/model.onnx", dir);
    aim_model *m;
    if (aim_model_load(path, &m) != AIM_OK) {
        snprintf(why, why_size, "load: %s", aim_last_error());
        return RESULT_FAIL;
    }
    bool in_scope = model_in_scope(m);
    aim_session *s;
    aim_session_options opt = {.threads = 1};
    if (aim_session_create(m, &opt, &s) != AIM_OK) {
        snprintf(why, why_size, "%s", aim_last_error());
        aim_model_free(m);
        return in_scope ? RESULT_FAIL : RESULT_UNSUPPORTED;
    }
    result r = RESULT_PASS;
    for (int k = 0; r == RESULT_PASS; k++) {
        path_format(path, sizeof path, "%s/test_data_set_%d", dir, k);
        if (!file_exists(path)) break;
        r = run_data_set(s, path, why, why_size);
        if (r == RESULT_FAIL && !in_scope) r = RESULT_UNSUPPORTED;
    }
    aim_session_free(s);
    aim_model_free(m);
    return r;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    const char *root = "/usr/share/libonnx-testdata/data/node";
    const char *filter = NULL;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: aim_conformance [--quiet] [--filter SUBSTRING] [NODE_TEST_DIR]\n");
            return 0;
        } else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            filter = argv[++i];
        else if (strcmp(argv[i], "--quiet") == 0)
            quiet = true;
        else
            root = argv[i];
    }
    DIR *d = opendir(root);
    if (!d) {
        fprintf(stderr, "aim_conformance: cannot open %s (install libonnx-testdata)\n", root);
        return 77;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "test_", 5) != 0) continue;
        if (filter && !strstr(e->d_name, filter)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, cap * sizeof *names);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, compare_names);
    int counts[3] = {0, 0, 0};
    static const char *const labels[] = {"PASS", "FAIL", "UNSUPPORTED"};
    for (size_t i = 0; i < n; i++) {
        char dir[2048], why[1024] = "";
        path_format(dir, sizeof dir, "%s/%s", root, names[i]);
        result r = run_test(dir, why, sizeof why);
        const char *defect = defect_reason(names[i]);
        if (r == RESULT_FAIL && defect) {
            snprintf(why, sizeof why, "defective test data (%s)", defect);
            r = RESULT_UNSUPPORTED;
        }
        counts[r]++;
        if (!quiet || r == RESULT_FAIL)
            printf("%-11s %s%s%s\n", labels[r], names[i], why[0] ? ": " : "", why);
        free(names[i]);
    }
    free(names);
    printf("%d passed, %d failed, %d unsupported\n", counts[0], counts[1], counts[2]);
    return counts[1] ? 1 : 0;
}
