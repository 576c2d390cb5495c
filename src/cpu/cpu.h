/*
 * cpu.h: fast fp32 CPU execution on oneDNN, as the session sees it.
 *
 * The session hands a read-only view of its graph (values and live nodes in execution order) to
 * aim_cpu_plan_create, which returns the steps a run executes:
 *
 *   - a node step runs a node's reference kernel (src/ops), reading plain row-major tensors;
 *   - a kernel step runs a oneDNN primitive built at load time: one graph node, or a node with
 *     the nodes fused into it (BatchNormalization folded into Conv weights, activations, SiLU
 *     and a residual Add as post-ops), or a reorder between two layouts of one value; a few
 *     kernels are aim's own code instead (Concat by block copies, Softmax in softmax.c);
 *   - a Transpose is a reorder kernel that reads its source through permuted axes;
 *   - a channel Concat whose inputs are all written by kernel steps has no step: its inputs are
 *     aliases, written straight into their place in its buffer (alias_of, alias_offset); a run
 *     gives the concatenation a buffer that lives from its first input's step to its last reader.
 *
 * Values produced by kernel steps keep the layout their primitive prefers (nChw8c on AVX2,
 * nChw16c on AVX-512...). A consumer that needs another layout (a reference kernel needs plain)
 * reads a copy made by a reorder step; copies are extra values numbered after the graph's, so
 * the session's memory plan treats them like any intermediate. Every primitive, reorder and
 * re-laid-out weight is made once here; a run only creates oneDNN memory objects around its
 * own buffers, so concurrent runs share nothing mutable.
 *
 * Threads: oneDNN is built on OpenMP here (Debian's build: no threadpool interop); a run sets
 * the calling thread's OpenMP thread count (omp_set_num_threads is per thread in libgomp) to the
 * session's count for its duration, and planning does the same, since oneDNN sizes its work
 * split when a primitive is created. Kernels with little work (plan.c: SMALL_FLOPS,
 * SMALL_BYTES) are made for and run on one thread, so they start no OpenMP team. libgomp's
 * wait policy (OMP_WAIT_POLICY, GOMP_SPINCOUNT) is read from the environment when it is
 * loaded: the user's choice (README, "Threads").
 *
 * AIM_CPU_PLAN=1 in the environment prints each session's steps to stderr when it is created
 * (kernel names such as conv+bn+relu, layouts, reorders, reference nodes).
 */
#ifndef AIM_CPU_CPU_H
#define AIM_CPU_CPU_H

#include "graph/tensor.h"
#include "onnx/onnx.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct aim_cpu_kernel aim_cpu_kernel;

typedef struct {
    const aim_tensor *info; /* static dtype/shape from load-time inference; data if constant */
    bool constant, graph_input, graph_output;
} aim_cpu_value;

typedef struct {
    const Onnx__NodeProto *proto;
    int opset;
    int n_in, n_out;
    const int *in, *out; /* value indices, -1 for omitted */
} aim_cpu_node;

typedef struct {
    const aim_cpu_value *values;
    size_t n_values;
    const aim_cpu_node *nodes; /* live nodes in execution order */
    size_t n_nodes;
    int threads;         /* threads per run (>= 1) */
    bool reference_only; /* every node on its reference kernel, no oneDNN at all */
} aim_cpu_graph;

typedef struct {
    int node;               /* >= 0: run nodes[node]'s reference kernel; -1: run `kernel` */
    aim_cpu_kernel *kernel; /* kernel steps: owned by the plan */
    int n_in, n_out;
    int *in;  /* node step: a value per node input (a plain copy where needed), -1 omitted;
                 kernel step: the kernel's activation sources in its order */
    int *out; /* node step: the node's outputs; kernel step: one destination */
} aim_cpu_step;

typedef struct {
    aim_cpu_step *steps;
    size_t n_steps;
    size_t n_values;      /* the graph's values, then the copies this plan added */
    int *copy_of;         /* per value: -1, or the value whose dtype/shape a copy has */
    size_t *bytes;        /* per value: bytes its layout needs; 0: dense row-major */
    int *alias_of;        /* per value: -1, or the value whose buffer holds it (Concat) */
    size_t *alias_offset; /* per value: where in that buffer it starts, in bytes */
    size_t scratch_bytes; /* per-run oneDNN scratchpad (largest over kernels) */
    size_t fast_nodes;    /* graph nodes executed inside kernel steps */
    void *engine;         /* dnnl_engine_t; NULL in reference-only plans */
} aim_cpu_plan;

/* Threads for a kernel doing `flops` (2 x multiply-adds) or writing `bytes`: 1 when the work is
 * too small to pay for an OpenMP team (plan.c: SMALL_FLOPS, SMALL_BYTES), else `threads`.
 * The int8 programs' executor (program_dnnl.c) sizes its ops the same way. */
int aim_cpu_threads_for(double flops, double bytes, int threads);

/* Plans a graph. Never fails because a node is unsupported: such nodes get node steps. */
aim_status aim_cpu_plan_create(const aim_cpu_graph *g, aim_cpu_plan **out);
void aim_cpu_plan_free(aim_cpu_plan *p);

/* Per-run execution context (a oneDNN stream and the caller's OpenMP thread count). */
typedef struct aim_cpu_run aim_cpu_run;
aim_status aim_cpu_run_begin(const aim_cpu_plan *p, int threads, aim_cpu_run **out);
void aim_cpu_run_end(aim_cpu_run *r);

/* Runs a kernel step: src[i] are the buffers of step->in[i], dst of step->out[0]; scratch has
 * plan->scratch_bytes. */
aim_status aim_cpu_kernel_run(aim_cpu_run *r, const aim_cpu_kernel *k, void *const *src, void *dst,
                              void *scratch);

/* "conv+relu", "reorder"... for listings. */
const char *aim_cpu_kernel_name(const aim_cpu_kernel *k);

/* True when aim's own AVX2 convolutions (Winograd F(2x2, 3x3) for 3x3 stride-1) run on this CPU: it
 * has AVX2 and FMA, and AVX2 is the best ISA oneDNN finds on it (with AVX-512, oneDNN's kernels are
 * twice as wide). */
bool aim_cpu_avx2_kernels_available(void);

#endif
