/*
 * plan.c: turning the session's ordered graph into steps: which nodes run on oneDNN, which
 * nodes are fused into which, each value's layout, and where reorders go.
 *
 * Fusion: a Conv, ConvTranspose or Gemm absorbs the chain of nodes that alone consume its
 * output: a BatchNormalization (folded into the weights), activations, x*Sigmoid(x) (SiLU) and
 * one residual Add (a binary-add post-op reading the other operand, which therefore stays
 * intact for its other readers). An intermediate absorbed this way has no other reader and is
 * not a graph output. The fused kernel is emitted at the position of the chain's last node,
 * where every input of every absorbed node exists. When oneDNN has only its slow reference
 * implementation for a chain's post-ops (e.g. an activation before the add on AVX2), the longest
 * prefix of the chain with a real implementation is fused and the rest runs node by node.
 *
 * Views: Reshape, Flatten, Squeeze, Unsqueeze and Identity of a plain intermediate run no step;
 * their output is an alias of the bytes of their input (view_in_place).
 *
 * Layouts: a kernel's destination keeps the layout its primitive chose; a reader that needs
 * another one (reference kernels and Gemm/MatMul need plain; a Conv may choose its own source
 * layout) reads a copy made by a reorder step just before it. Copies are cached per (value,
 * layout), so many readers share one.
 */
#include "cpu/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHAIN (AIM_CPU_MAX_POST + 2)

typedef struct {
    int n; /* nodes (positions), main node first */
    int nodes[MAX_CHAIN];
    int bn; /* position of a folded BatchNormalization, -1 none */
    int n_post;
    aim_cpu_post post[AIM_CPU_MAX_POST];
    int post_end[AIM_CPU_MAX_POST]; /* nodes covered once post i is applied */
    int post_out[AIM_CPU_MAX_POST]; /* value produced once post i is applied */
    int post_out_bn;                /* value the folded BatchNormalization produces */
    int residual;                   /* value the add post-op reads, -1 none */
    int out;                        /* value the chain produces */
    bool swish_only;                /* a standalone x*Sigmoid(x): node 0 is the Sigmoid */
} chain;

typedef struct {
    dnnl_memory_desc_t md;
    bool blocked; /* md is not plain row-major */
} layout;

typedef struct {
    const aim_cpu_graph *g;
    aim_cpu_plan *p;
    dnnl_engine_t engine;
    size_t cap_values, cap_steps;
    layout *lay;     /* per value */
    bool *ready;     /* per value: produced by an emitted step (or input/constant) */
    int *readers;    /* per graph value: node input references */
    int *emit_at;    /* per node position: where it is emitted; -1: where it stands */
    chain **chains;  /* per node position: the chain emitted there */
    int **consumers; /* per graph value: reading node positions */
} planner;

/* ---- Growing the plan ---------------------------------------------------------------------- */

static aim_status grow_values(planner *pl) {
    aim_cpu_plan *p = pl->p;
    if (p->n_values < pl->cap_values) return AIM_OK;
    size_t cap = pl->cap_values * 2 + 16;
    int *copy_of = realloc(p->copy_of, cap * sizeof *copy_of);
    if (copy_of) p->copy_of = copy_of;
    size_t *bytes = realloc(p->bytes, cap * sizeof *bytes);
    if (bytes) p->bytes = bytes;
    layout *lay = realloc(pl->lay, cap * sizeof *lay);
    if (lay) pl->lay = lay;
    bool *ready = realloc(pl->ready, cap * sizeof *ready);
    if (ready) pl->ready = ready;
    int *alias_of = realloc(p->alias_of, cap * sizeof *alias_of);
    if (alias_of) p->alias_of = alias_of;
    size_t *alias_offset = realloc(p->alias_offset, cap * sizeof *alias_offset);
    if (alias_offset) p->alias_offset = alias_offset;
    if (!copy_of || !bytes || !lay || !ready || !alias_of || !alias_offset)
        return aim_error(AIM_ERR_NOMEM, "out of memory");
    pl->cap_values = cap;
    return AIM_OK;
}

static aim_status new_value(planner *pl, int copy_of, int *out) {
    aim_status st = grow_values(pl);
    if (st != AIM_OK) return st;
    size_t v = pl->p->n_values++;
    pl->p->copy_of[v] = copy_of;
    pl->p->bytes[v] = 0;
    pl->p->alias_of[v] = -1;
    pl->p->alias_offset[v] = 0;
    memset(&pl->lay[v], 0, sizeof pl->lay[v]);
    pl->ready[v] = false;
    *out = (int)v;
    return AIM_OK;
}

static aim_status add_step(planner *pl, int node, aim_cpu_kernel *k, int n_in, const int *in,
                           int n_out, const int *out) {
    aim_cpu_plan *p = pl->p;
    if (p->n_steps == pl->cap_steps) {
        size_t cap = pl->cap_steps * 2 + 16;
        aim_cpu_step *grown = realloc(p->steps, cap * sizeof *grown);
        if (!grown) return aim_error(AIM_ERR_NOMEM, "out of memory");
        p->steps = grown;
        pl->cap_steps = cap;
    }
    aim_cpu_step *s = &p->steps[p->n_steps];
    s->node = node;
    s->kernel = k;
    s->n_in = n_in;
    s->n_out = n_out;
    s->in = malloc(((size_t)n_in + 1) * sizeof *s->in);
    s->out = malloc(((size_t)n_out + 1) * sizeof *s->out);
    if (!s->in || !s->out) {
        free(s->in);
        free(s->out);
        return aim_error(AIM_ERR_NOMEM, "out of memory");
    }
    memcpy(s->in, in, (size_t)n_in * sizeof *in);
    memcpy(s->out, out, (size_t)n_out * sizeof *out);
    p->n_steps++;
    for (int i = 0; i < n_out; i++)
        if (out[i] >= 0) pl->ready[out[i]] = true;
    if (k && k->scratch_bytes > p->scratch_bytes) p->scratch_bytes = k->scratch_bytes;
    return AIM_OK;
}

/* ---- Layouts and copies -------------------------------------------------------------------- */

static const aim_tensor *info(const planner *pl, int v) {
    int root = pl->p->copy_of[v] >= 0 ? pl->p->copy_of[v] : v;
    return pl->g->values[root].info;
}

/* Work below which a kernel runs on one thread (a few microseconds): starting and joining an
 * OpenMP team costs ~2-5 us while the other thread spins. The limits were 30x higher (kernels
 * up to ~100 us on one thread), but switching the team size from kernel to kernel cost more
 * than it saved: at two threads face-locator took 3.14 ms and 2.19 ms, BlazeFace-128 1.54 and
 * 1.28 ms, BlazeFace-256 6.88 and 6.39 ms with the old and the new limits (median p50 of five
 * alternating `aim bench --threads 2` runs each; every kernel on two threads was in between). */
#define SMALL_FLOPS 1e5
#define SMALL_BYTES (8 * 1024)

int aim_cpu_threads_for(double flops, double bytes, int threads) {
    return flops < SMALL_FLOPS && bytes < SMALL_BYTES ? 1 : threads;
}

static int threads_for(const planner *pl, double flops, double bytes) {
    return aim_cpu_threads_for(flops, bytes, pl->g->threads);
}

/* Threads for node n writing `out`: by its multiply-adds and the bytes it writes for
 * convolutions and products (a depthwise conv on [1,32,60,80] has few multiply-adds but moves
 * 1.2 MB: face-locator and BlazeFace-256 at two threads ran 5-10% faster once such convs were
 * split too), by the bytes alone for the rest. */
static int node_threads(const planner *pl, const aim_cpu_node *n, int out) {
    const aim_tensor *y = info(pl, out);
    double elems = (double)aim_tensor_count(y), flops = 0;
    bool product = aim_cpu_op_is(n, "Conv") || aim_cpu_op_is(n, "ConvTranspose") ||
                   aim_cpu_op_is(n, "Gemm") || aim_cpu_op_is(n, "MatMul");
    if (product && n->n_in > 1 && n->in[1] >= 0) {
        const aim_tensor *w = pl->g->values[n->in[1]].info;
        int64_t per =
            y->rank > 1
                ? y->dims[aim_cpu_op_is(n, "MatMul") || aim_cpu_op_is(n, "Gemm") ? y->rank - 1 : 1]
                : 1;
        flops = 2.0 * elems * (double)aim_tensor_count(w) / (double)(per > 0 ? per : 1);
        return threads_for(pl, flops, elems * 4);
    }
    return threads_for(pl, 0, elems * 4);
}

/* Makes a kernel with fn(b) for `threads` OpenMP threads (oneDNN sizes its work split when a
 * primitive is created) and records the count for runs. */
static aim_cpu_kernel *make_for(const planner *pl, int threads,
                                aim_cpu_kernel *(*fn)(const aim_cpu_build *b),
                                const aim_cpu_build *b) {
    aim_cpu_set_threads(threads);
    aim_cpu_kernel *k = fn(b);
    aim_cpu_set_threads(pl->g->threads);
    if (k) k->threads = threads;
    return k;
}

/* A reorder kernel between two layouts, for the threads its size deserves. */
static aim_cpu_kernel *reorder_for(const planner *pl, const dnnl_memory_desc_t *from,
                                   const dnnl_memory_desc_t *to) {
    int threads = threads_for(pl, 0, (double)dnnl_memory_desc_get_size(to));
    aim_cpu_set_threads(threads);
    aim_cpu_kernel *k = aim_cpu_reorder_create(pl->engine, from, to);
    aim_cpu_set_threads(pl->g->threads);
    if (k) k->threads = threads;
    return k;
}

/* The descriptor of v's current layout (plain when it has none). */
static bool current_md(const planner *pl, int v, dnnl_memory_desc_t *md) {
    if (pl->lay[v].blocked) {
        *md = pl->lay[v].md;
        return true;
    }
    const aim_tensor *t = info(pl, v);
    return aim_cpu_plain_md(md, t->rank, t->dims) == dnnl_success;
}

static void set_layout(planner *pl, int v, const dnnl_memory_desc_t *md) {
    dnnl_memory_desc_t plain;
    const aim_tensor *t = info(pl, v);
    bool is_plain = aim_cpu_plain_md(&plain, t->rank, t->dims) == dnnl_success &&
                    dnnl_memory_desc_equal(&plain, md);
    pl->lay[v].md = *md;
    pl->lay[v].blocked = !is_plain;
    pl->p->bytes[v] = is_plain ? 0 : dnnl_memory_desc_get_size(md);
}

/* A value holding v in layout md: v itself, a cached copy, or a new copy made right now. */
static aim_status copy_in(planner *pl, int v, const dnnl_memory_desc_t *md, int *out) {
    dnnl_memory_desc_t cur;
    *out = v;
    if (current_md(pl, v, &cur) && dnnl_memory_desc_equal(&cur, md)) return AIM_OK;
    int root = pl->p->copy_of[v] >= 0 ? pl->p->copy_of[v] : v;
    for (size_t c = pl->g->n_values; c < pl->p->n_values; c++) {
        dnnl_memory_desc_t have;
        if (pl->p->copy_of[c] == root && pl->ready[c] && current_md(pl, (int)c, &have) &&
            dnnl_memory_desc_equal(&have, md)) {
            *out = (int)c;
            return AIM_OK;
        }
    }
    aim_cpu_kernel *k = reorder_for(pl, &cur, md);
    if (!k) return aim_error(AIM_ERR_INTERNAL, "oneDNN cannot reorder a value");
    int c;
    aim_status st = new_value(pl, root, &c);
    if (st == AIM_OK) {
        set_layout(pl, c, md);
        st = add_step(pl, -1, k, 1, &v, 1, &c);
    }
    if (st != AIM_OK) {
        aim_cpu_kernel_free(k);
        return st;
    }
    *out = c;
    return AIM_OK;
}

static aim_status plain_copy(planner *pl, int v, int *out) {
    *out = v;
    if (v < 0 || !pl->lay[v].blocked) return AIM_OK;
    dnnl_memory_desc_t md;
    const aim_tensor *t = info(pl, v);
    aim_cpu_plain_md(&md, t->rank, t->dims);
    return copy_in(pl, v, &md, out);
}

/* ---- Emitting ------------------------------------------------------------------------------ */

static aim_status emit_reference(planner *pl, int pos) {
    const aim_cpu_node *n = &pl->g->nodes[pos];
    int in[n->n_in + 1];
    aim_status st = AIM_OK;
    for (int k = 0; k < n->n_in && st == AIM_OK; k++)
        st = plain_copy(pl, n->in[k], &in[k]);
    return st == AIM_OK ? add_step(pl, pos, NULL, n->n_in, in, n->n_out, n->out) : st;
}

/* Emits kernel k reading `src` (reordered to what k reads where needed) and writing out. */
static aim_status emit_kernel(planner *pl, aim_cpu_kernel *k, const int *src, int out) {
    int in[AIM_CPU_MAX_SRC];
    aim_status st = AIM_OK;
    for (int i = 0; i < k->n_src && st == AIM_OK; i++) {
        in[i] = src[i];
        if (!k->view) st = copy_in(pl, src[i], &k->src_md[i], &in[i]);
    }
    if (st == AIM_OK) {
        set_layout(pl, out, &k->dst_md);
        st = add_step(pl, -1, k, k->n_src, in, 1, &out);
    }
    if (st != AIM_OK) aim_cpu_kernel_free(k);
    return st;
}

static bool static_float(const planner *pl, int v) {
    if (v < 0) return false;
    const aim_tensor *t = pl->g->values[v].info;
    if (t->dtype != AIM_DTYPE_FLOAT || t->rank < 1 || t->rank > 6) return false;
    for (int d = 0; d < t->rank; d++)
        if (t->dims[d] < 0) return false;
    return true;
}

/* Whether a kernel of node n writing `out` must write plain row-major: graph outputs, except
 * from a convolution, which still picks its own layout; emit_to_output then reorders the result
 * to plain, far cheaper than a plain-destination convolution (a gemm fed by a reorder of its
 * whole source). */
static bool plain_output(const planner *pl, const aim_cpu_node *n, int out) {
    return pl->g->values[out].graph_output && !aim_cpu_op_is(n, "Conv") &&
           !aim_cpu_op_is(n, "ConvTranspose");
}

/* Common checks, then the build description with the sources' current layouts. */
static bool prepare_build(planner *pl, const aim_cpu_node *n, int out, aim_cpu_build *b,
                          dnnl_memory_desc_t *mds) {
    memset(b, 0, sizeof *b);
    if (!static_float(pl, out) || n->n_in > AIM_CPU_MAX_SRC) return false;
    for (int i = 0; i < n->n_in; i++) {
        int v = n->in[i];
        b->src_md[i] = v >= 0 ? &mds[i] : NULL;
        if (v < 0) continue;
        if (!pl->ready[v]) return false;
        if (!current_md(pl, v, &mds[i])) { /* rank 0: no oneDNN layout; a kernel keeps it */
            if (!pl->g->values[v].constant || info(pl, v)->rank != 0) return false;
            b->src_md[i] = NULL;
        }
    }
    b->engine = pl->engine;
    b->g = pl->g;
    b->node = n;
    b->out_value = out;
    b->plain_dst = plain_output(pl, n, out);
    return true;
}

typedef aim_cpu_kernel *(*creator)(const aim_cpu_build *b);

static creator creator_for(const aim_cpu_node *n) {
    static const struct {
        const char *op;
        creator fn;
    } table[] = {
        {"Conv", aim_cpu_conv_create},
        {"ConvTranspose", aim_cpu_deconv_create},
        {"Gemm", aim_cpu_gemm_create},
        {"MatMul", aim_cpu_matmul_create},
        {"MaxPool", aim_cpu_pool_create},
        {"AveragePool", aim_cpu_pool_create},
        {"GlobalMaxPool", aim_cpu_pool_create},
        {"GlobalAveragePool", aim_cpu_pool_create},
        {"Concat", aim_cpu_concat_create},
        {"Resize", aim_cpu_resize_create},
        {"Relu", aim_cpu_eltwise_create},
        {"LeakyRelu", aim_cpu_eltwise_create},
        {"Sigmoid", aim_cpu_eltwise_create},
        {"Tanh", aim_cpu_eltwise_create},
        {"Elu", aim_cpu_eltwise_create},
        {"HardSwish", aim_cpu_eltwise_create},
        {"Clip", aim_cpu_eltwise_create},
        {"Transpose", aim_cpu_transpose_create},
        {"Softmax", aim_cpu_softmax_create},
        {"LogSoftmax", aim_cpu_softmax_create},
        {"BatchNormalization", aim_cpu_batchnorm_create},
        {"Add", aim_cpu_binary_create},
        {"Sub", aim_cpu_binary_create},
        {"Mul", aim_cpu_binary_create},
        {"Div", aim_cpu_binary_create},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (aim_cpu_op_is(n, table[i].op)) return table[i].fn;
    return NULL;
}

/* Split: one copy of a part per output, read straight out of the input's layout (channel
 * blocks stay blocked). All or nothing: any part oneDNN cannot view keeps the reference. */
static aim_status emit_split(planner *pl, int pos) {
    const aim_cpu_node *n = &pl->g->nodes[pos];
    int x = n->in[0];
    aim_cpu_kernel *parts[AIM_CPU_MAX_SRC] = {0};
    dnnl_memory_desc_t whole;
    bool ok = x >= 0 && static_float(pl, x) && pl->ready[x] && n->n_out <= AIM_CPU_MAX_SRC &&
              current_md(pl, x, &whole);
    const aim_tensor *t = ok ? pl->g->values[x].info : NULL;
    int64_t axis = aim_cpu_attr_int(n, "axis", 0), offsets[AIM_MAX_RANK] = {0};
    if (t && axis < 0) axis += t->rank;
    ok = ok && axis >= 0 && axis < t->rank;
    int threads = ok ? node_threads(pl, n, x) : 1; /* a part copies at most its whole input */
    aim_cpu_set_threads(threads);
    for (int i = 0; ok && i < n->n_out; i++) {
        int v = n->out[i];
        ok = v >= 0 && static_float(pl, v);
        const aim_tensor *o = ok ? pl->g->values[v].info : NULL;
        /* a part nothing reads is not made (YOLOv4-tiny's routes keep one half) */
        bool dead = ok && pl->readers[v] == 0 && !pl->g->values[v].graph_output;
        ok = ok && o->rank == t->rank &&
             (dead || (parts[i] = aim_cpu_part_create(pl->engine, &whole, t->rank, o->dims, offsets,
                                                      pl->g->values[v].graph_output)));
        if (ok) offsets[axis] += o->dims[axis];
        if (ok && parts[i]) parts[i]->threads = threads;
    }
    aim_cpu_set_threads(pl->g->threads);
    if (!ok || offsets[axis] != t->dims[axis]) {
        for (int i = 0; i < n->n_out && i < AIM_CPU_MAX_SRC; i++)
            aim_cpu_kernel_free(parts[i]);
        return emit_reference(pl, pos);
    }
    pl->p->fast_nodes++;
    aim_status st = AIM_OK;
    for (int i = 0; i < n->n_out; i++) {
        if (!parts[i]) continue;
        if (st == AIM_OK)
            st = emit_kernel(pl, parts[i], &x, n->out[i]);
        else
            aim_cpu_kernel_free(parts[i]);
    }
    return st;
}

/* Emits kernel k writing `out`; when out is a graph output and k's destination is not plain, k
 * writes a copy in its own layout and a reorder step writes the plain graph output. */
static aim_status emit_to_output(planner *pl, aim_cpu_kernel *k, const int *src, int out) {
    dnnl_memory_desc_t plain;
    const aim_tensor *t = info(pl, out);
    if (!pl->g->values[out].graph_output ||
        aim_cpu_plain_md(&plain, t->rank, t->dims) != dnnl_success ||
        dnnl_memory_desc_equal(&plain, &k->dst_md))
        return emit_kernel(pl, k, src, out);
    aim_cpu_kernel *r = reorder_for(pl, &k->dst_md, &plain);
    int c = -1;
    aim_status st = r ? new_value(pl, out, &c) : aim_error(AIM_ERR_INTERNAL, "no output reorder");
    if (st == AIM_OK)
        st = emit_kernel(pl, k, src, c);
    else
        aim_cpu_kernel_free(k);
    if (st == AIM_OK) {
        set_layout(pl, out, &plain);
        st = add_step(pl, -1, r, 1, &c, 1, &out);
        r = st == AIM_OK ? NULL : r;
    }
    aim_cpu_kernel_free(r);
    return st;
}

/* True when md keeps each channel range of a batch-1 tensor contiguous: plain, or blocked on
 * channels only with the channel blocks outermost (nChw8c, not nhwc). */
static bool channel_ranges_contiguous(const dnnl_memory_desc_t *md) {
    dnnl_memory_desc_t plain;
    if (md->ndims < 2 || md->dims[0] != 1) return false;
    if (aim_cpu_plain_md(&plain, md->ndims, md->dims) == dnnl_success &&
        dnnl_memory_desc_equal(&plain, md))
        return true;
    const dnnl_blocking_desc_t *blk = &md->format_desc.blocking;
    if (md->format_kind != dnnl_blocked || blk->inner_nblks != 1 || blk->inner_idxs[0] != 1)
        return false;
    for (int d = 2; d < md->ndims; d++)
        if (blk->strides[1] < blk->strides[d]) return false;
    return true;
}

/* True when a step already emitted writes value v; with kernel_only, a kernel step (which can
 * then write into another buffer). */
static bool step_made(const planner *pl, int v, bool kernel_only) {
    for (size_t i = 0; i < pl->p->n_steps; i++) {
        const aim_cpu_step *st = &pl->p->steps[i];
        for (int k = 0; k < st->n_out && (st->kernel || !kernel_only); k++)
            if (st->out[k] == v) return true;
    }
    return false;
}

/* True when value v can become an alias (part) of another buffer. */
static bool can_alias(const planner *pl, int v) {
    const aim_cpu_value *x = v >= 0 ? &pl->g->values[v] : NULL;
    if (!x || x->constant || x->graph_input || x->graph_output || !pl->ready[v]) return false;
    if (!static_float(pl, v)) return false;
    for (size_t u = 0; u < pl->p->n_values; u++)
        if (pl->p->alias_of[u] == v) return false; /* already holds aliases itself */
    return pl->p->alias_of[v] < 0 && step_made(pl, v, true);
}

/* A Concat along channels of batch-1 tensors written by kernel steps: no step at all, each input
 * is written in place into the concatenation's buffer. False (nothing changed) otherwise. */
static bool concat_in_place(planner *pl, int pos) {
    const aim_cpu_node *n = &pl->g->nodes[pos];
    int out = n->n_out == 1 ? n->out[0] : -1;
    if (out < 0 || !static_float(pl, out) || pl->g->values[out].graph_output || n->n_in < 1)
        return false;
    const aim_tensor *y = info(pl, out);
    int64_t axis = aim_cpu_attr_int(n, "axis", 0);
    if (axis < 0) axis += y->rank;
    dnnl_memory_desc_t first, dst, want;
    dnnl_dims_t dims;
    for (int d = 0; d < y->rank; d++)
        dims[d] = y->dims[d];
    if (axis != 1 || !can_alias(pl, n->in[0]) || !current_md(pl, n->in[0], &first)) return false;
    aim_cpu_like(&first, y->rank, dims, &dst);
    if (!channel_ranges_contiguous(&dst)) return false;
    const dnnl_blocking_desc_t *blk = &dst.format_desc.blocking;
    int64_t block = blk->inner_nblks ? blk->inner_blks[0] : 1, c0 = 0, plane = 1;
    for (int d = 2; d < y->rank; d++)
        plane *= y->dims[d];
    for (int i = 0; i < n->n_in; i++) {
        int v = n->in[i];
        dnnl_memory_desc_t have;
        bool last = i == n->n_in - 1;
        for (int j = 0; j < i; j++)
            if (n->in[j] == v) return false;
        if (!can_alias(pl, v) || !current_md(pl, v, &have)) return false;
        const aim_tensor *t = info(pl, v);
        aim_cpu_like(&dst, t->rank, have.dims, &want);
        if (!dnnl_memory_desc_equal(&want, &have) || (!last && t->dims[1] % block)) return false;
        c0 += t->dims[1];
    }
    if (c0 != y->dims[1]) return false;
    c0 = 0;
    for (int i = 0; i < n->n_in; i++) {
        pl->p->alias_of[n->in[i]] = out;
        pl->p->alias_offset[n->in[i]] = (size_t)(c0 * plane) * sizeof(float);
        c0 += info(pl, n->in[i])->dims[1];
    }
    set_layout(pl, out, &dst);
    pl->ready[out] = true;
    pl->p->fast_nodes++;
    return true;
}

/* Nodes that only relabel the bytes of a plain tensor. */
static bool is_view_op(const aim_cpu_node *n) {
    return aim_cpu_op_is(n, "Reshape") || aim_cpu_op_is(n, "Flatten") ||
           aim_cpu_op_is(n, "Squeeze") || aim_cpu_op_is(n, "Unsqueeze") ||
           aim_cpu_op_is(n, "Identity");
}

/* A Reshape-like node on a plain intermediate that a step writes into the arena: no step at
 * all, its output is a view of the input's bytes (an alias of the buffer holding them, which
 * then stays intact until the view's last reader). False (nothing changed) otherwise. */
static bool view_in_place(planner *pl, int pos) {
    const aim_cpu_node *n = &pl->g->nodes[pos];
    int out = n->n_out == 1 ? n->out[0] : -1, x = n->n_in >= 1 ? n->in[0] : -1;
    if (out < 0 || x < 0 || !is_view_op(n) || pl->g->values[out].graph_output) return false;
    if (!static_float(pl, out) || !static_float(pl, x) || !pl->ready[x]) return false;
    if (aim_tensor_bytes(info(pl, out)) != aim_tensor_bytes(info(pl, x))) return false;
    const aim_cpu_value *v = &pl->g->values[x];
    if (v->constant || v->graph_input || v->graph_output) return false;
    int src; /* x, or its plain copy (which the reference kernel would read as well) */
    if (plain_copy(pl, x, &src) != AIM_OK) return false;
    int root = pl->p->alias_of[src]; /* else written by a step: then the arena holds it */
    if (root < 0 && !step_made(pl, src, false)) return false;
    pl->p->alias_of[out] = root >= 0 ? root : src;
    pl->p->alias_offset[out] = root >= 0 ? pl->p->alias_offset[src] : 0;
    pl->ready[out] = true;
    pl->p->fast_nodes++;
    return true;
}

/* A node on its own: a fast kernel when one fits, its reference kernel otherwise. */
static aim_status emit_single(planner *pl, int pos) {
    const aim_cpu_node *n = &pl->g->nodes[pos];
    if (view_in_place(pl, pos)) return AIM_OK;
    if (aim_cpu_op_is(n, "Split")) return emit_split(pl, pos);
    if (aim_cpu_op_is(n, "Concat") && concat_in_place(pl, pos)) return AIM_OK;
    creator fn = creator_for(n);
    aim_cpu_build b;
    dnnl_memory_desc_t mds[AIM_CPU_MAX_SRC];
    if (!fn || n->n_out < 1 || !prepare_build(pl, n, n->out[0], &b, mds))
        return emit_reference(pl, pos);
    aim_cpu_kernel *k = make_for(pl, node_threads(pl, n, n->out[0]), fn, &b);
    if (!k) return emit_reference(pl, pos);
    pl->p->fast_nodes++;
    return emit_to_output(pl, k, n->in + k->first_src, n->out[0]);
}

/* ---- Chains -------------------------------------------------------------------------------- */

static bool is_graph_output(const planner *pl, int v) {
    return pl->g->values[v].graph_output;
}

/* The single free reader of v (not yet in a chain), or -1. */
static int sole_reader(const planner *pl, int v) {
    if (pl->readers[v] != 1 || is_graph_output(pl, v)) return -1;
    int q = pl->consumers[v][0];
    return pl->emit_at[q] < 0 ? q : -1;
}

/* x * Sigmoid(x) reading v: returns the Mul's position (and the Sigmoid's in *sig), or -1. */
static int silu_at(const planner *pl, int v, int *sig) {
    if (pl->readers[v] != 2 || is_graph_output(pl, v)) return -1;
    for (int i = 0; i < 2; i++) {
        int s = pl->consumers[v][i], m = pl->consumers[v][1 - i];
        const aim_cpu_node *sn = &pl->g->nodes[s], *mn = &pl->g->nodes[m];
        if (!aim_cpu_op_is(sn, "Sigmoid") || !aim_cpu_op_is(mn, "Mul") || mn->n_in != 2) continue;
        if (pl->emit_at[s] >= 0 || pl->emit_at[m] >= 0 || sn->out[0] < 0) continue;
        int so = sn->out[0];
        bool pair = (mn->in[0] == v && mn->in[1] == so) || (mn->in[1] == v && mn->in[0] == so);
        if (pair && pl->readers[so] == 1 && !is_graph_output(pl, so) && mn->out[0] >= 0) {
            *sig = s;
            return m;
        }
    }
    return -1;
}

static bool same_shape(const planner *pl, int a, int b) {
    return static_float(pl, a) && static_float(pl, b) &&
           aim_tensor_same_shape(pl->g->values[a].info, pl->g->values[b].info);
}

/* Extends chain c by one node reading c->out; false when nothing more fuses. */
static bool extend(planner *pl, chain *c, bool allow_bn) {
    if (c->n + 2 > MAX_CHAIN || c->n_post >= AIM_CPU_MAX_POST) return false;
    int v = c->out, sig, q = sole_reader(pl, v);
    const aim_cpu_node *n = q >= 0 ? &pl->g->nodes[q] : NULL;
    aim_cpu_post post;
    if (n && (n->n_out < 1 || !static_float(pl, n->out[0]))) return false;
    if (n && allow_bn && c->n == 1 && aim_cpu_op_is(n, "BatchNormalization") && n->in[0] == v &&
        (n->n_out == 1 || (n->out[1] < 0 && (n->n_out < 3 || n->out[2] < 0))) &&
        aim_cpu_attr_int(n, "training_mode", 0) == 0) {
        c->bn = q;
        c->post_out_bn = n->out[0];
    } else if (n && n->in[0] == v && n->n_out == 1 && aim_cpu_activation(pl->g, n, &post)) {
        c->post[c->n_post++] = post;
    } else if (n && aim_cpu_op_is(n, "Add") && n->n_in == 2 && c->residual < 0 && n->out[0] >= 0 &&
               !is_graph_output(pl, n->out[0])) {
        int r = n->in[0] == v ? n->in[1] : n->in[0];
        if (r == v || !same_shape(pl, r, v) || !same_shape(pl, n->out[0], v)) return false;
        c->residual = r;
        c->post[c->n_post++] = (aim_cpu_post){.sum = true};
        if (!current_md(pl, r, &c->post[c->n_post - 1].src1_md)) return false;
    } else if (!n && (q = silu_at(pl, v, &sig)) >= 0) {
        n = &pl->g->nodes[q];
        if (!static_float(pl, n->out[0])) return false;
        c->nodes[c->n++] = sig;
        c->post[c->n_post++] = (aim_cpu_post){.alg = dnnl_eltwise_swish, .alpha = 1.0f};
    } else {
        return false;
    }
    c->nodes[c->n++] = q;
    c->out = n->out[0];
    if (c->n_post > 0) {
        c->post_end[c->n_post - 1] = c->n;
        c->post_out[c->n_post - 1] = c->out;
    }
    return true;
}

static int chain_last(const chain *c) {
    int last = c->nodes[0];
    for (int i = 1; i < c->n; i++)
        if (c->nodes[i] > last) last = c->nodes[i];
    return last;
}

/* Records a chain starting at pos; true when it absorbs later nodes (emitted later). */
static bool start_chain(planner *pl, int pos) {
    const aim_cpu_node *n = &pl->g->nodes[pos];
    bool fusable =
        aim_cpu_op_is(n, "Conv") || aim_cpu_op_is(n, "ConvTranspose") || aim_cpu_op_is(n, "Gemm");
    int sig = -1, mul = -1;
    if (n->n_out != 1 || n->out[0] < 0 || !static_float(pl, n->out[0])) return false;
    if (!fusable && !(aim_cpu_op_is(n, "Sigmoid") && n->in[0] >= 0 &&
                      (mul = silu_at(pl, n->in[0], &sig)) >= 0 && sig == pos))
        return false;
    chain *c = calloc(1, sizeof *c);
    if (!c) return false;
    c->bn = c->residual = -1;
    c->nodes[c->n++] = pos;
    c->out = n->out[0];
    if (mul >= 0) { /* standalone SiLU: Sigmoid then Mul */
        c->swish_only = true;
        c->nodes[c->n++] = mul;
        c->out = pl->g->nodes[mul].out[0];
    } else {
        while (extend(pl, c, aim_cpu_op_is(n, "Conv"))) {
        }
    }
    if (c->n == 1) {
        free(c);
        return false;
    }
    int last = chain_last(c);
    for (int i = 0; i < c->n; i++)
        pl->emit_at[c->nodes[i]] = last;
    pl->chains[last] = c;
    return true;
}

static aim_cpu_kernel *chain_kernel(planner *pl, const chain *c, int n_post, aim_cpu_build *b,
                                    dnnl_memory_desc_t *mds) {
    const aim_cpu_node *n = &pl->g->nodes[c->nodes[0]];
    if (!prepare_build(pl, n, c->out, b, mds)) return NULL;
    if (c->swish_only) {
        b->swish = true;
        return make_for(pl, node_threads(pl, n, c->out), aim_cpu_eltwise_create, b);
    }
    b->bn = c->bn >= 0 ? &pl->g->nodes[c->bn] : NULL;
    b->n_post = n_post;
    memcpy(b->post, c->post, sizeof b->post);
    b->out_value = n_post ? c->post_out[n_post - 1] : c->bn >= 0 ? c->post_out_bn : n->out[0];
    b->plain_dst = plain_output(pl, n, b->out_value);
    for (int i = 0; i < n_post; i++)
        if (b->post[i].sum) {
            /* the residual may have been produced after the chain was planned: its layout now */
            if (!pl->ready[c->residual] || !current_md(pl, c->residual, &b->post[i].src1_md))
                return NULL;
        }
    creator fn = creator_for(n);
    return fn ? make_for(pl, node_threads(pl, n, c->out), fn, b) : NULL;
}

/* "conv+bn+sum+relu": what a fused kernel does, for AIM_CPU_PLAN listings. */
static void name_chain(aim_cpu_kernel *k, const chain *c, int n_post) {
    size_t len = strlen(k->name);
    if (c->bn >= 0) len += (size_t)snprintf(k->name + len, sizeof k->name - len, "+bn");
    for (int i = 0; i < n_post && len < sizeof k->name; i++) {
        const aim_cpu_post *p = &c->post[i];
        const char *what = p->sum                            ? "add"
                           : p->alg == dnnl_eltwise_swish    ? "silu"
                           : p->alg == dnnl_eltwise_relu     ? "relu"
                           : p->alg == dnnl_eltwise_clip     ? "clip"
                           : p->alg == dnnl_eltwise_logistic ? "sigmoid"
                                                             : "act";
        len += (size_t)snprintf(k->name + len, sizeof k->name - len, "+%s", what);
    }
}

/* Emits the longest prefix of a chain oneDNN fuses well as one kernel, then the rest of the
 * chain node by node. */
static aim_status emit_chain(planner *pl, chain *c) {
    aim_cpu_build b;
    dnnl_memory_desc_t mds[AIM_CPU_MAX_SRC];
    aim_cpu_kernel *k = NULL;
    int n_post = c->n_post;
    for (; n_post >= 0 && !k; n_post--)
        k = chain_kernel(pl, c, n_post, &b, mds);
    n_post++;
    int covered = !k              ? 0
                  : c->swish_only ? c->n
                  : n_post        ? c->post_end[n_post - 1]
                  : c->bn >= 0    ? 2
                                  : 1;
    for (int i = 0; i < c->n; i++)
        pl->emit_at[c->nodes[i]] = -1;
    aim_status st = AIM_OK;
    if (k) {
        pl->p->fast_nodes += (size_t)covered;
        name_chain(k, c, n_post);
        int src[2] = {pl->g->nodes[c->nodes[0]].in[0], c->residual};
        st = emit_to_output(pl, k, src, b.out_value);
    }
    for (int i = covered; i < c->n && st == AIM_OK; i++)
        st = emit_single(pl, c->nodes[i]);
    return st;
}

/* ---- Setup --------------------------------------------------------------------------------- */

static aim_status count_readers(planner *pl) {
    const aim_cpu_graph *g = pl->g;
    pl->readers = calloc(g->n_values + 1, sizeof *pl->readers);
    pl->consumers = calloc(g->n_values + 1, sizeof *pl->consumers);
    if (!pl->readers || !pl->consumers) return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t p = 0; p < g->n_nodes; p++)
        for (int k = 0; k < g->nodes[p].n_in; k++)
            if (g->nodes[p].in[k] >= 0) pl->readers[g->nodes[p].in[k]]++;
    for (size_t v = 0; v < g->n_values; v++) {
        pl->consumers[v] = malloc(((size_t)pl->readers[v] + 1) * sizeof **pl->consumers);
        if (!pl->consumers[v]) return aim_error(AIM_ERR_NOMEM, "out of memory");
        pl->readers[v] = 0;
    }
    for (size_t p = 0; p < g->n_nodes; p++)
        for (int k = 0; k < g->nodes[p].n_in; k++) {
            int v = g->nodes[p].in[k];
            if (v >= 0) pl->consumers[v][pl->readers[v]++] = (int)p;
        }
    return AIM_OK;
}

static aim_status setup(planner *pl) {
    const aim_cpu_graph *g = pl->g;
    aim_status st = AIM_OK;
    for (size_t v = 0; v < g->n_values && st == AIM_OK; v++) {
        int idx;
        st = new_value(pl, -1, &idx);
        if (st == AIM_OK) pl->ready[idx] = g->values[v].constant || g->values[v].graph_input;
    }
    pl->emit_at = malloc((g->n_nodes + 1) * sizeof *pl->emit_at);
    pl->chains = calloc(g->n_nodes + 1, sizeof *pl->chains);
    if (!pl->emit_at || !pl->chains) return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t p = 0; p < g->n_nodes; p++)
        pl->emit_at[p] = -1;
    return st == AIM_OK ? count_readers(pl) : st;
}

static void teardown(planner *pl) {
    if (pl->consumers)
        for (size_t v = 0; v < pl->g->n_values; v++)
            free(pl->consumers[v]);
    if (pl->chains)
        for (size_t p = 0; p < pl->g->n_nodes; p++)
            free(pl->chains[p]);
    free(pl->consumers);
    free(pl->chains);
    free(pl->readers);
    free(pl->emit_at);
    free(pl->lay);
    free(pl->ready);
}

static aim_status plan_nodes(planner *pl) {
    aim_status st = AIM_OK;
    for (size_t p = 0; p < pl->g->n_nodes && st == AIM_OK; p++) {
        int pos = (int)p;
        if (pl->g->reference_only) {
            st = emit_reference(pl, pos);
        } else if (pl->chains[pos]) {
            st = emit_chain(pl, pl->chains[pos]);
        } else if (pl->emit_at[pos] >= 0) {
            continue;                       /* absorbed into a chain emitted later */
        } else if (!start_chain(pl, pos)) { /* a chain started here ends at a later node */
            st = emit_single(pl, pos);
        }
    }
    return st;
}

/* AIM_CPU_PLAN=1 in the environment prints the steps (for diagnosing performance). */
static void dump(const aim_cpu_graph *g, const aim_cpu_plan *p) {
    if (!getenv("AIM_CPU_PLAN")) return;
    for (size_t i = 0; i < p->n_steps; i++) {
        const aim_cpu_step *s = &p->steps[i];
        int v = s->out[0];
        int root = v >= 0 && p->copy_of[v] >= 0 ? p->copy_of[v] : v;
        const aim_tensor *t = root >= 0 ? g->values[root].info : NULL;
        char shape[64] = "";
        if (t) aim_tensor_shape_str(t, shape, sizeof shape);
        char threads[24] = "";
        if (s->kernel && s->kernel->threads > 0)
            snprintf(threads, sizeof threads, "threads=%d", s->kernel->threads);
        fprintf(stderr, "step %3zu %-12s %-24s -> v%d%s %s\n", i,
                s->node >= 0 ? "reference" : aim_cpu_kernel_name(s->kernel),
                s->node >= 0 ? g->nodes[s->node].proto->op_type : threads, v,
                v >= 0 && p->bytes[v] ? " (blocked)" : "", shape);
    }
}

aim_status aim_cpu_plan_create(const aim_cpu_graph *g, aim_cpu_plan **out) {
    *out = NULL;
    aim_cpu_plan *p = calloc(1, sizeof *p);
    planner pl = {.g = g, .p = p};
    if (!p) return aim_error(AIM_ERR_NOMEM, "out of memory");
    aim_status st = setup(&pl);
    int old_threads = aim_cpu_set_threads(g->threads);
    if (st == AIM_OK && !g->reference_only) {
        if (dnnl_engine_create(&pl.engine, dnnl_cpu, 0) != dnnl_success)
            st = aim_error(AIM_ERR_INTERNAL, "no oneDNN engine");
        p->engine = pl.engine;
    }
    if (st == AIM_OK) st = plan_nodes(&pl);
    aim_cpu_set_threads(old_threads);
    teardown(&pl);
    if (st != AIM_OK) {
        aim_cpu_plan_free(p);
        return st;
    }
    dump(g, p);
    *out = p;
    return AIM_OK;
}

void aim_cpu_plan_free(aim_cpu_plan *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_steps; i++) {
        aim_cpu_kernel_free(p->steps[i].kernel);
        free(p->steps[i].in);
        free(p->steps[i].out);
    }
    free(p->steps);
    free(p->copy_of);
    free(p->bytes);
    free(p->alias_of);
    free(p->alias_offset);
    if (p->engine) dnnl_engine_destroy(p->engine);
    free(p);
}
