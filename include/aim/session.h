/*
 * aim/session.h: running a model.
 *
 *     aim_model *m;  aim_session *s;
 *     aim_model_load("det.onnx", &m);
 *     aim_session_create(m, NULL, &s);            // all checks happen here
 *     aim_tensor in[2] = {...}, out[1];
 *     aim_session_run(s, in, out);                // inputs in aim_session_input order
 *     ... out[0].data ...  free(out[0].data);
 *     aim_session_free(s);  aim_model_free(m);
 *
 * A session is created once and serves any number of concurrent aim_session_run calls: runs
 * share only read-only state (weights, kernels' prepared state); each run has its own scratch.
 * The model must outlive the session.
 */
#ifndef AIM_SESSION_H
#define AIM_SESSION_H

#include "aim/model.h"
#include "aim/tensor.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aim_session aim_session;

typedef struct {
    int threads; /* threads per run; 0 = all cores */
    /* Run every node on its portable reference kernel (src/ops) instead of the fast oneDNN
     * kernels, with no fusion and plain layouts: the oracle the fast path is tested against.
     * Both paths accept the same models; only speed and rounding differ. */
    bool reference_only;
    /* Time every step of every run (two clock reads per step) for aim_session_step_profile:
     * where a model spends its time, as ONNX Runtime's enable_profiling tells. */
    bool profile;
} aim_session_options;

/* Builds a session: resolves every operator, checks attributes and shapes, folds constants,
 * removes dead nodes, orders the graph. `options` may be NULL. */
aim_status aim_session_create(const aim_model *m, const aim_session_options *options,
                              aim_session **out);
void aim_session_free(aim_session *s);

size_t aim_session_input_count(const aim_session *s);
size_t aim_session_output_count(const aim_session *s);
const char *aim_session_input_name(const aim_session *s, size_t i);
const char *aim_session_output_name(const aim_session *s, size_t i);
/* Declared type and shape of input i (dims of -1 where symbolic or unknown). */
void aim_session_input_info(const aim_session *s, size_t i, aim_tensor *info);
/* Index of the input named `name`, or -1. */
int aim_session_input_index(const aim_session *s, const char *name);

/* Number of nodes a run executes (after constant folding and dead-node removal). */
size_t aim_session_node_count(const aim_session *s);

/* How many of those nodes run on fast (oneDNN) kernels, fused ones included; 0 with
 * reference_only. */
size_t aim_session_fast_node_count(const aim_session *s);

/* Bytes of scratch memory each run uses for intermediates planned at load time (values whose
 * shape depends on data are allocated separately). */
size_t aim_session_arena_bytes(const aim_session *s);

/* Steps a run executes: a fast kernel (with the nodes fused into it), a layout reorder, or one
 * node on its reference kernel. */
size_t aim_session_step_count(const aim_session *s);

typedef struct {
    const char *kind;   /* "conv+bias+relu", "reorder", "pool"...; a reference node: its op */
    const char *output; /* the value the step writes */
    double total_ms;    /* summed over the runs so far */
    uint64_t runs;
} aim_session_step_info;

/* What step i is and, with the `profile` option, the time spent in it so far; false when i is
 * out of range. Concurrent runs all add to the same totals. */
bool aim_session_step_profile(const aim_session *s, size_t i, aim_session_step_info *out);

/* Runs the model. `inputs` holds aim_session_input_count() tensors in input order (the caller
 * keeps them); `outputs` receives aim_session_output_count() tensors whose data the caller
 * frees with free(). On failure no output is allocated. */
aim_status aim_session_run(aim_session *s, const aim_tensor *inputs, aim_tensor *outputs);

#ifdef __cplusplus
}
#endif
#endif
