/*
 * accuracy.c: what the accuracy search (compile.c, fit_accuracy) measures. The model's own
 * output agreement is judged where the automatic region ends, at its boundary tensors (the
 * feature maps the post-processing reads: score logits, box regressors), never at the graph
 * outputs, which after NMS differ in length between two runs. Both models run on the held-out
 * images; the worst boundary tensor's SNR decides. The tensors keep their names whether the
 * AimProgram node or the fp32 nodes after a shortened region produce them.
 *
 * Why shorten a region instead of only tuning scales: detectors such as BlazeFace carry score
 * logits of magnitude 10^3..10^4 whose decisions happen within +-3, and their last stages
 * amplify every rounding of the layers before; quantizing everything but those stages keeps
 * the int8 work where the multiply-accumulates are (the high-resolution stages) and the
 * decisions in float32, as accuracy-aware quantization in other toolchains does.
 */
#include "compile/internal.h"

#include "graph/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

aim_status aim_compile_boundary_snr(aim_compile_ctx *c, const aim_model *ref, const aim_model *test,
                                    const char *const *names, size_t n, double *worst_db) {
    aim_compile_runner rr = {0}, rt = {0};
    aim_quant_agree *agree = calloc(n + 1, sizeof *agree);
    aim_tensor *a = calloc(n + 1, sizeof *a), *b = calloc(n + 1, sizeof *b);
    aim_status st = agree && a && b ? AIM_OK : aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st == AIM_OK) st = aim_compile_runner_open(c, ref, names, n, &rr);
    if (st == AIM_OK) st = aim_compile_runner_open(c, test, names, n, &rt);
    size_t first = c->n_calib < c->n_images ? c->n_calib : 0; /* no hold-out: all images */
    for (size_t img = first; img < c->n_images && st == AIM_OK; img++) {
        if ((st = aim_compile_run_image(c, rr.s, img, a)) != AIM_OK) break;
        if ((st = aim_compile_run_image(c, rt.s, img, b)) == AIM_OK) {
            for (size_t k = 0; k < n; k++)
                if (aim_tensor_count(&a[k]) == aim_tensor_count(&b[k]))
                    aim_quant_agree_add(&agree[k], a[k].data, b[k].data, aim_tensor_count(&a[k]));
                else
                    st = aim_error(AIM_ERR_INTERNAL, "tensor '%s' changed size", names[k]);
            aim_compile_free_outputs(b, n);
        }
        aim_compile_free_outputs(a, n);
        aim_compile_progress(c, "accuracy", img - first + 1, c->n_images - first);
    }
    *worst_db = INFINITY;
    for (size_t k = 0; st == AIM_OK && k < n; k++)
        *worst_db = fmin(*worst_db, aim_quant_agree_snr_db(&agree[k]));
    aim_compile_runner_close(&rr);
    aim_compile_runner_close(&rt);
    free(agree);
    free(a);
    free(b);
    return st == AIM_OK ? st : aim_error_context(st, "measuring the output agreement");
}

static double conv_macs(const aim_compile_ctx *c, size_t node) {
    const Onnx__TensorProto *w = aim_quant_graph_initializer(c->g, c->g->node[node]->input[1]);
    int out = c->nout[node][0];
    if (!w || w->n_dims != 4 || out < 0 || c->t[out].rank != 4) return 0;
    return (double)w->dims[0] * (double)w->dims[1] * (double)w->dims[2] * (double)w->dims[3] *
           (double)c->t[out].dims[2] * (double)c->t[out].dims[3];
}

double aim_compile_region_macs(const aim_compile_ctx *c) {
    double macs = 0;
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->in_region[i] && strcmp(c->g->node[i]->op_type, "Conv") == 0) macs += conv_macs(c, i);
    return macs;
}

size_t aim_compile_cut_points(const aim_compile_ctx *c, long *cuts) {
    size_t n = 0;
    for (size_t i = 0; i < c->n_nodes; i++) {
        const aim_compile_group *g = &c->grp[i];
        if (!c->in_region[i] || !g->emits || g->lead < 0) continue;
        const char *op = c->g->node[g->lead]->op_type;
        if (strcmp(op, "Conv") == 0 || strcmp(op, "Add") == 0) cuts[n++] = (long)i;
    }
    return n;
}
