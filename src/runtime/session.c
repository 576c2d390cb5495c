/*
 * session.c: turning a model into something runnable, and running it.
 *
 * Load (aim_session_create):
 *   1. values: one slot per tensor name; initializers become constants (decoded once).
 *   2. nodes: each resolved to a kernel (aim_ops_find) and prepared; errors name the node.
 *   3. order: Kahn's topological sort; a name that nothing produces is an error.
 *   4. inference: in order, each node's infer runs on the static shapes; a node whose inputs are
 *      all constant, or that reads only shapes which are static (Shape, Size), is run right away
 *      and its outputs become constants (constant folding).
 *   5. liveness: nodes that no graph output depends on are dropped.
 *   6. steps (src/cpu): each live node runs on a fast oneDNN kernel, fused into a neighbour's,
 *      or on its reference kernel; values may be kept in blocked layouts, with reorder steps
 *      (and extra values for the copies) where a reader needs another layout. Each value's last
 *      reading step is recorded so a run can free or reuse its buffer as soon as it is dead.
 *   7. memory: every intermediate of static shape gets a fixed place in a per-run arena.
 *
 * Run (aim_session_run): a private array of tensors per run (so runs may be concurrent), inputs
 * checked against the declared types and shapes, each node inferred with real data, outputs
 * allocated, run, and dead buffers freed. Kernel steps write into the arena (or a malloc'ed
 * graph output) with oneDNN memory objects created for this run only.
 *
 * Profiling (the `profile` option): each step's wall time is added to a per-step total with an
 * atomic add, so concurrent runs may share a profiled session.
 *
 * Invariants: after load every live node has a kernel and its inputs are produced earlier in
 * `order`; constants are immutable; a run never writes into a constant or a caller's input.
 */
#include "aim/session.h"

#include "core/util.h"
#include "cpu/cpu.h"
#include "cpu/program.h"
#include "cpu/program_op.h"
#include "ops/op.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *name;
    aim_tensor info; /* static dtype/shape from inference; data set for constants */
    bool constant;   /* data is known at load time and owned by the session... */
    bool borrowed;   /* ...or, for an initializer stored raw, the model's own bytes */
    bool graph_input;
    int last_reader;      /* index of the last step reading it; -1 none */
    int64_t arena_offset; /* where a run keeps it in its arena; -1 when not planned */
    size_t arena_bytes;
    bool graph_output;
    size_t layout_bytes; /* bytes of a blocked layout (0: dense row-major) */
    int alias_of;        /* -1, or the value whose buffer holds this one (plan's alias_of) */
    size_t alias_offset; /* bytes into that buffer */
    bool alias_root;     /* holds aliases: its buffer is set at run start, as theirs */
} value_slot;

typedef struct {
    const Onnx__NodeProto *proto;
    const aim_op_def *def;
    int opset;
    int *in;  /* value indices, -1 for omitted inputs */
    int *out; /* value indices, -1 for omitted outputs */
    int n_in, n_out;
    void *state;
    bool live;
    bool folded;
} node_slot;

struct aim_session {
    const aim_model *model;
    value_slot *values;
    size_t n_values, cap_values;
    node_slot *nodes;
    size_t n_nodes;
    int *order; /* node indices in execution order (live, not folded) */
    size_t n_order;
    int *inputs; /* value index of each graph input */
    size_t n_inputs;
    int *outputs;
    size_t n_outputs;
    int threads;
    bool reference_only;
    int max_arity;
    size_t arena_bytes;        /* per-run scratch for every planned intermediate */
    aim_cpu_plan *plan;        /* the steps a run executes */
    _Atomic uint64_t *step_ns; /* per step, with the profile option; else NULL */
    _Atomic uint64_t profiled_runs;
};

/* ---- Values -------------------------------------------------------------------------------- */

static int value_find(const aim_session *s, const char *name) {
    for (size_t i = 0; i < s->n_values; i++)
        if (strcmp(s->values[i].name, name) == 0) return (int)i;
    return -1;
}

/* A new slot, even when the name exists (copies of a value in another layout share its name). */
static aim_status value_append(aim_session *s, const char *name, int *index) {
    if (s->n_values == s->cap_values) {
        size_t cap = s->cap_values ? s->cap_values * 2 : 64;
        value_slot *grown = realloc(s->values, cap * sizeof *grown);
        if (!grown) return aim_error(AIM_ERR_NOMEM, "out of memory");
        s->values = grown;
        s->cap_values = cap;
    }
    value_slot *v = &s->values[s->n_values];
    memset(v, 0, sizeof *v);
    v->name = name;
    v->info.rank = AIM_RANK_UNKNOWN;
    v->last_reader = -1;
    v->arena_offset = -1;
    v->alias_of = -1;
    *index = (int)s->n_values++;
    return AIM_OK;
}

static aim_status value_add(aim_session *s, const char *name, int *index) {
    int found = value_find(s, name);
    if (found >= 0) {
        *index = found;
        return AIM_OK;
    }
    return value_append(s, name, index);
}

static aim_status add_initializer(aim_session *s, const Onnx__TensorProto *t) {
    if (!t->name || !t->name[0]) return aim_error(AIM_ERR_PARSE, "an initializer has no name");
    if (t->n_dims > AIM_MAX_RANK)
        return aim_error(AIM_ERR_UNSUPPORTED, "initializer '%s' has rank %zu (max %d)", t->name,
                         t->n_dims, AIM_MAX_RANK);
    int idx;
    aim_status st = value_add(s, t->name, &idx);
    if (st != AIM_OK) return st;
    value_slot *v = &s->values[idx];
    size_t bytes;
    const void *stored;
    /* Raw bytes in the model are used where they lie (the model outlives the session, and
     * constants are never written): a copy would double the weights' memory. */
    st = aim_onnx_tensor_bytes(s->model, t, &stored, &bytes);
    if (st == AIM_OK && stored) {
        v->info.data = (void *)stored;
        v->borrowed = true;
    } else if (st == AIM_OK) {
        st = aim_onnx_tensor_decode(s->model, t, &v->info.data, &bytes);
    }
    if (st != AIM_OK) return aim_error_context(st, "initializer '%s'", t->name);
    v->info.dtype = t->data_type;
    v->info.rank = (int)t->n_dims;
    for (size_t d = 0; d < t->n_dims; d++)
        v->info.dims[d] = t->dims[d];
    v->constant = true;
    return AIM_OK;
}

/* Declared type of a graph input: dims of -1 where symbolic; rank unknown when absent. */
static void declared_info(const Onnx__ValueInfoProto *vi, aim_tensor *t) {
    memset(t, 0, sizeof *t);
    t->rank = AIM_RANK_UNKNOWN;
    if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) return;
    const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
    t->dtype = tt->elem_type;
    if (!tt->shape || tt->shape->n_dim > AIM_MAX_RANK) return;
    t->rank = (int)tt->shape->n_dim;
    for (size_t d = 0; d < tt->shape->n_dim; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
        t->dims[d] = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                         ? dim->dim_value
                         : -1;
    }
}

static bool fully_static(const aim_tensor *t) {
    if (t->rank < 0) return false;
    for (int d = 0; d < t->rank; d++)
        if (t->dims[d] < 0) return false;
    return true;
}

/* ---- Building ------------------------------------------------------------------------------ */

static int node_opset(const aim_model *m, const Onnx__NodeProto *n) {
    int64_t v = aim_model_opset_for(m, n->domain ? n->domain : "");
    return v < 0 ? 1 : (int)v;
}

/* Accelerator nodes (aim's compiled programs) run on src/cpu's program kernel; every other node
 * on the operator registry of src/ops. */
static aim_status find_kernel(const Onnx__NodeProto *p, int opset, const aim_op_def **def) {
    const char *op_type = p->op_type ? p->op_type : "";
    const char *domain = p->domain ? p->domain : "";
    if (strcmp(domain, AIM_PROGRAM_DOMAIN) == 0 && strcmp(op_type, AIM_PROGRAM_OP_TYPE) == 0) {
        *def = &aim_cpu_program_op;
        return AIM_OK;
    }
    return aim_ops_find(op_type, domain, opset, def);
}

static aim_status build_node(aim_session *s, size_t i, const Onnx__NodeProto *p) {
    node_slot *n = &s->nodes[i];
    n->proto = p;
    n->opset = node_opset(s->model, p);
    n->n_in = (int)p->n_input;
    n->n_out = (int)p->n_output;
    if ((size_t)n->n_in != p->n_input || (size_t)n->n_out != p->n_output)
        return aim_error(AIM_ERR_LIMIT, "node '%s' has too many inputs", p->name ? p->name : "");
    if (n->n_in > s->max_arity) s->max_arity = n->n_in;
    if (n->n_out > s->max_arity) s->max_arity = n->n_out;
    n->in = malloc(((size_t)n->n_in + 1) * sizeof *n->in);
    n->out = malloc(((size_t)n->n_out + 1) * sizeof *n->out);
    if (!n->in || !n->out) return aim_error(AIM_ERR_NOMEM, "out of memory");
    aim_status st = find_kernel(p, n->opset, &n->def);
    if (st != AIM_OK)
        return aim_error_context(st, "node '%s' (%s)", p->name ? p->name : "",
                                 p->op_type ? p->op_type : "");
    for (int k = 0; k < n->n_in; k++) {
        n->in[k] = -1;
        if (p->input[k][0] && (st = value_add(s, p->input[k], &n->in[k])) != AIM_OK) return st;
    }
    for (int k = 0; k < n->n_out; k++) {
        n->out[k] = -1;
        if (p->output[k][0] && (st = value_add(s, p->output[k], &n->out[k])) != AIM_OK) return st;
    }
    return AIM_OK;
}

static aim_status prepare_node(aim_session *s, node_slot *n) {
    if (!n->def->prepare) return AIM_OK;
    /* prepare sees the static info of its inputs (constants with data). */
    const aim_tensor *ins[n->n_in + 1];
    aim_tensor *outs[n->n_out + 1];
    for (int k = 0; k < n->n_in; k++)
        ins[k] = n->in[k] >= 0 ? &s->values[n->in[k]].info : NULL;
    for (int k = 0; k < n->n_out; k++)
        outs[k] = NULL;
    aim_op_ctx c = {.node = n->proto,
                    .opset = n->opset,
                    .n_in = n->n_in,
                    .in = ins,
                    .n_out = n->n_out,
                    .out = outs,
                    .threads = s->threads};
    aim_status st = n->def->prepare(&c);
    n->state = c.state;
    return st;
}

/* Kahn's algorithm over value producers. */
static aim_status order_nodes(aim_session *s) {
    int *producer = malloc((s->n_values + 1) * sizeof *producer);
    int *pending = calloc(s->n_nodes + 1, sizeof *pending);
    bool *ready = calloc(s->n_values + 1, sizeof *ready);
    s->order = malloc((s->n_nodes + 1) * sizeof *s->order);
    aim_status st = AIM_OK;
    if (!producer || !pending || !ready || !s->order) {
        st = aim_error(AIM_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t v = 0; v < s->n_values; v++) {
        producer[v] = -1;
        ready[v] = s->values[v].constant || s->values[v].graph_input;
    }
    for (size_t i = 0; i < s->n_nodes; i++)
        for (int k = 0; k < s->nodes[i].n_out; k++) {
            int v = s->nodes[i].out[k];
            if (v < 0) continue;
            if (producer[v] >= 0 || ready[v]) {
                st = aim_error(AIM_ERR_PARSE, "tensor '%s' is produced more than once",
                               s->values[v].name);
                goto done;
            }
            producer[v] = (int)i;
        }
    size_t done_count = 0;
    bool progress = true;
    /* Repeated passes keep the file's order among independent nodes; graphs are usually sorted
     * already, so this is one pass in practice. */
    bool *placed = calloc(s->n_nodes + 1, sizeof *placed);
    if (!placed) {
        st = aim_error(AIM_ERR_NOMEM, "out of memory");
        goto done;
    }
    while (progress && done_count < s->n_nodes) {
        progress = false;
        for (size_t i = 0; i < s->n_nodes; i++) {
            if (placed[i]) continue;
            node_slot *n = &s->nodes[i];
            bool can = true;
            for (int k = 0; k < n->n_in && can; k++) {
                int v = n->in[k];
                if (v < 0) continue;
                if (!ready[v] && producer[v] < 0) {
                    free(placed);
                    st = aim_error(AIM_ERR_PARSE,
                                   "node '%s' (%s): input '%s' is not produced by any node, "
                                   "initializer or graph input",
                                   n->proto->name ? n->proto->name : "", n->proto->op_type,
                                   s->values[v].name);
                    goto done;
                }
                can = ready[v];
            }
            if (!can) continue;
            placed[i] = true;
            s->order[done_count++] = (int)i;
            for (int k = 0; k < n->n_out; k++)
                if (n->out[k] >= 0) ready[n->out[k]] = true;
            progress = true;
        }
    }
    free(placed);
    s->n_order = done_count;
    if (done_count < s->n_nodes) st = aim_error(AIM_ERR_PARSE, "the graph has a cycle");
done:
    free(producer);
    free(pending);
    free(ready);
    return st;
}

static aim_status runtime_alloc(aim_op_ctx *c, int i) {
    aim_tensor *t = c->out[i];
    size_t bytes = aim_tensor_bytes(t);
    t->data = malloc(bytes ? bytes : 1);
    if (!t->data) return aim_op_fail(c, AIM_ERR_NOMEM, "cannot allocate %zu bytes", bytes);
    return AIM_OK;
}

/* Checks an inferred shape's size before anything is allocated for it. */
static aim_status check_output_size(const aim_op_ctx *c, const aim_tensor *t) {
    size_t n = 1;
    for (int d = 0; d < t->rank; d++)
        if (!aim_mul_size(n, (size_t)t->dims[d], &n))
            return aim_op_fail(c, AIM_ERR_LIMIT, "output shape overflows");
    size_t bytes;
    if (!aim_mul_size(n, aim_dtype_size(t->dtype), &bytes) || bytes > ((size_t)1 << 36))
        return aim_op_fail(c, AIM_ERR_LIMIT, "output of %zu elements is too large", n);
    return AIM_OK;
}

/* The context a kernel sees for node n, reading `ins` and writing `outs`. */
static aim_op_ctx node_ctx(const aim_session *s, const node_slot *n, const aim_tensor **ins,
                           aim_tensor **outs) {
    return (aim_op_ctx){.node = n->proto,
                        .opset = n->opset,
                        .n_in = n->n_in,
                        .in = ins,
                        .n_out = n->n_out,
                        .out = outs,
                        .state = n->state,
                        .threads = s->threads,
                        .alloc = runtime_alloc};
}

/* Infers one node at load time, and folds it (runs it now, its outputs becoming constants) when
 * every input is constant, or when it reads only shapes and those are static. */
static aim_status infer_node(aim_session *s, node_slot *n) {
    const aim_tensor *ins[n->n_in + 1];
    aim_tensor *outs[n->n_out + 1];
    bool known = true, all_const = true;
    for (int k = 0; k < n->n_in; k++) {
        ins[k] = NULL;
        if (n->in[k] < 0) continue;
        value_slot *v = &s->values[n->in[k]];
        ins[k] = &v->info;
        if (!fully_static(&v->info)) known = false;
        if (!v->constant) all_const = false;
    }
    for (int k = 0; k < n->n_out; k++)
        outs[k] = n->out[k] >= 0 ? &s->values[n->out[k]].info : NULL;
    if (!known) return AIM_OK; /* resolved at run time */
    aim_op_ctx c = node_ctx(s, n, ins, outs);
    aim_status st = n->def->infer(&c);
    if (st != AIM_OK) return st;
    if (!all_const && !n->def->reads_shapes_only) {
        for (int k = 0; k < n->n_out; k++)
            if (outs[k]) outs[k]->data = NULL;
        return AIM_OK;
    }
    for (int k = 0; k < n->n_out; k++) {
        if (!outs[k]) continue;
        outs[k]->data = NULL;
        if (outs[k]->rank >= 0) {
            if ((st = check_output_size(&c, outs[k])) != AIM_OK) return st;
            if ((st = runtime_alloc(&c, k)) != AIM_OK) return st;
        }
    }
    st = n->def->run(&c);
    for (int k = 0; k < n->n_out; k++)
        if (outs[k]) s->values[n->out[k]].constant = st == AIM_OK && outs[k]->data;
    if (st == AIM_OK) n->folded = true;
    return st;
}

static void mark_live(aim_session *s) {
    bool *needed = calloc(s->n_values + 1, sizeof *needed);
    if (!needed) return;
    for (size_t i = 0; i < s->n_outputs; i++)
        needed[s->outputs[i]] = true;
    for (size_t p = s->n_order; p-- > 0;) {
        node_slot *n = &s->nodes[s->order[p]];
        n->live = false;
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0 && needed[n->out[k]]) n->live = true;
        if (!n->live || n->folded) continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0) needed[n->in[k]] = true;
    }
    free(needed);
    size_t kept = 0;
    for (size_t p = 0; p < s->n_order; p++) {
        node_slot *n = &s->nodes[s->order[p]];
        if (n->live && !n->folded) s->order[kept++] = s->order[p];
    }
    s->n_order = kept;
}

/* ---- Steps --------------------------------------------------------------------------------- */

/* Adds the values the plan created (copies of a value in another layout). */
static aim_status add_plan_values(aim_session *s) {
    const aim_cpu_plan *pl = s->plan;
    for (size_t v = s->n_values; v < pl->n_values; v++) {
        int idx = 0, of = pl->copy_of[v];
        aim_status st = value_append(s, s->values[of].name, &idx);
        if (st != AIM_OK) return st;
        s->values[idx].info = s->values[of].info;
        s->values[idx].info.data = NULL;
    }
    for (size_t v = 0; v < s->n_values; v++) {
        s->values[v].layout_bytes = pl->bytes[v];
        s->values[v].alias_of = pl->alias_of[v];
        s->values[v].alias_offset = pl->alias_offset[v];
        if (pl->alias_of[v] >= 0) s->values[pl->alias_of[v]].alias_root = true;
    }
    for (size_t i = 0; i < pl->n_steps; i++) {
        const aim_cpu_step *st = &pl->steps[i];
        for (int k = 0; k < st->n_in; k++)
            if (st->in[k] >= 0) s->values[st->in[k]].last_reader = (int)i;
        if (st->n_in > s->max_arity) s->max_arity = st->n_in;
    }
    return AIM_OK;
}

/* Hands the ordered graph to the planner (src/cpu) and takes its steps. */
static aim_status plan_steps(aim_session *s) {
    aim_cpu_value *vals = calloc(s->n_values + 1, sizeof *vals);
    aim_cpu_node *nodes = calloc(s->n_order + 1, sizeof *nodes);
    if (!vals || !nodes) {
        free(vals);
        free(nodes);
        return aim_error(AIM_ERR_NOMEM, "out of memory");
    }
    for (size_t v = 0; v < s->n_values; v++) {
        const value_slot *slot = &s->values[v];
        vals[v] =
            (aim_cpu_value){&slot->info, slot->constant, slot->graph_input, slot->graph_output};
    }
    for (size_t p = 0; p < s->n_order; p++) {
        const node_slot *n = &s->nodes[s->order[p]];
        nodes[p] = (aim_cpu_node){n->proto, n->opset, n->n_in, n->n_out, n->in, n->out};
    }
    aim_cpu_graph g = {vals, s->n_values, nodes, s->n_order, s->threads, s->reference_only};
    aim_status st = aim_cpu_plan_create(&g, &s->plan);
    free(vals);
    free(nodes);
    return st == AIM_OK ? add_plan_values(s) : st;
}

/* ---- Memory plan --------------------------------------------------------------------------- */

#define ARENA_ALIGN 64

typedef struct {
    int value;
    int first, last; /* positions in order during which the buffer must stay intact */
    size_t bytes;
} plan_item;

static int by_size_desc(const void *a, const void *b) {
    const plan_item *x = a, *y = b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : x->value - y->value;
}

/* Lowest offset where `item` fits beside the already placed items whose lifetimes overlap. */
static size_t place(const aim_session *s, const plan_item *items, size_t placed,
                    const plan_item *item) {
    size_t offset = 0;
    bool moved = true;
    while (moved) { /* each move passes one conflicting block, so this ends after <= placed */
        moved = false;
        for (size_t j = 0; j < placed; j++) {
            const plan_item *o = &items[j];
            if (o->last < item->first || o->first > item->last) continue;
            size_t start = (size_t)s->values[o->value].arena_offset;
            if (offset < start + o->bytes && start < offset + item->bytes) {
                offset = start + o->bytes;
                moved = true;
            }
        }
    }
    return offset;
}

static size_t value_bytes(const value_slot *v) {
    size_t bytes = v->layout_bytes ? v->layout_bytes : aim_tensor_bytes(&v->info);
    bytes = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    return bytes ? bytes : ARENA_ALIGN;
}

/* Widens item `at` (by value) to cover [first, last]; adds it when new. */
static void cover(const aim_session *s, plan_item *items, int *at, size_t *n, int v, int first,
                  int last) {
    if (at[v] < 0) {
        at[v] = (int)(*n)++;
        items[at[v]] = (plan_item){v, first, last, value_bytes(&s->values[v])};
    }
    plan_item *it = &items[at[v]];
    if (first < it->first) it->first = first;
    if (last > it->last) it->last = last;
}

/* Lifetimes (first writing step .. last reading step) of the values the arena holds; an alias
 * widens the lifetime of the buffer that holds it instead of having one. */
static size_t lifetimes(aim_session *s, plan_item *items) {
    const aim_cpu_plan *pl = s->plan;
    int *at = malloc((s->n_values + 1) * sizeof *at);
    size_t n = 0;
    if (!at) return 0;
    for (size_t v = 0; v < s->n_values; v++)
        at[v] = -1;
    for (size_t i = 0; i < pl->n_steps; i++)
        for (int k = 0; k < pl->steps[i].n_out; k++) {
            int v = pl->steps[i].out[k];
            if (v < 0 || s->values[v].graph_output || !fully_static(&s->values[v].info)) continue;
            int last = s->values[v].last_reader > (int)i ? s->values[v].last_reader : (int)i;
            int root = s->values[v].alias_of;
            if (root >= 0 && s->values[root].last_reader > last) last = s->values[root].last_reader;
            cover(s, items, at, &n, root >= 0 ? root : v, (int)i, last);
        }
    /* a view, which no step writes, keeps the buffer holding it intact until its last reader */
    for (size_t v = 0; v < s->n_values; v++) {
        int root = s->values[v].alias_of;
        if (root >= 0 && at[root] >= 0 && s->values[v].last_reader > items[at[root]].last)
            items[at[root]].last = s->values[v].last_reader;
    }
    free(at);
    return n;
}

/* Aliases live inside the buffer of the value holding them. */
static void place_aliases(aim_session *s) {
    for (size_t v = 0; v < s->n_values; v++) {
        value_slot *a = &s->values[v];
        if (a->alias_of < 0) continue;
        const value_slot *root = &s->values[a->alias_of];
        a->arena_offset = root->arena_offset + (int64_t)a->alias_offset;
        a->arena_bytes = value_bytes(a);
    }
}

/* Gives every intermediate whose shape is known at load time a fixed offset in one per-run
 * arena; values whose lifetimes (producer .. last reader) overlap never share bytes. Greedy by
 * size, largest first: simple and within a few percent of optimal on CNNs. Graph outputs are
 * excluded: their buffers are handed to the caller. */
static aim_status plan_memory(aim_session *s) {
    plan_item *items = calloc(s->n_values + 1, sizeof *items);
    if (!items) return aim_error(AIM_ERR_NOMEM, "out of memory");
    size_t n = lifetimes(s, items);
    qsort(items, n, sizeof *items, by_size_desc);
    for (size_t i = 0; i < n; i++) {
        size_t offset = place(s, items, i, &items[i]);
        s->values[items[i].value].arena_offset = (int64_t)offset;
        s->values[items[i].value].arena_bytes = items[i].bytes;
        if (offset + items[i].bytes > s->arena_bytes) s->arena_bytes = offset + items[i].bytes;
    }
    free(items);
    place_aliases(s);
    return AIM_OK;
}

size_t aim_session_node_count(const aim_session *s) {
    return s->n_order;
}

size_t aim_session_fast_node_count(const aim_session *s) {
    return s->plan->fast_nodes;
}

size_t aim_session_arena_bytes(const aim_session *s) {
    return s->arena_bytes;
}

static aim_status add_graph_io(aim_session *s, const Onnx__GraphProto *g) {
    s->inputs = malloc((g->n_input + 1) * sizeof *s->inputs);
    s->outputs = malloc((g->n_output + 1) * sizeof *s->outputs);
    if (!s->inputs || !s->outputs) return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < g->n_input; i++) {
        const char *name = g->input[i]->name ? g->input[i]->name : "";
        int idx = value_find(s, name);
        if (idx >= 0 && s->values[idx].constant) continue; /* an initializer with a default */
        aim_status st = value_add(s, name, &idx);
        if (st != AIM_OK) return st;
        s->values[idx].graph_input = true;
        declared_info(g->input[i], &s->values[idx].info);
        if (!fully_static(&s->values[idx].info)) s->values[idx].info.rank = AIM_RANK_UNKNOWN;
        s->inputs[s->n_inputs++] = idx;
    }
    for (size_t i = 0; i < g->n_output; i++) {
        int idx;
        aim_status st = value_add(s, g->output[i]->name ? g->output[i]->name : "", &idx);
        if (st != AIM_OK) return st;
        s->values[idx].graph_output = true;
        s->outputs[s->n_outputs++] = idx;
    }
    return AIM_OK;
}

static int default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static aim_status build(aim_session *s) {
    const Onnx__GraphProto *g = aim_model_proto(s->model)->graph;
    aim_status st;
    for (size_t i = 0; i < g->n_initializer; i++)
        if ((st = add_initializer(s, g->initializer[i])) != AIM_OK) return st;
    if ((st = add_graph_io(s, g)) != AIM_OK) return st;
    s->n_nodes = g->n_node;
    s->nodes = calloc(g->n_node + 1, sizeof *s->nodes);
    if (!s->nodes) return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < g->n_node; i++)
        if ((st = build_node(s, i, g->node[i])) != AIM_OK) return st;
    if ((st = order_nodes(s)) != AIM_OK) return st;
    for (size_t i = 0; i < s->n_nodes; i++)
        if ((st = prepare_node(s, &s->nodes[i])) != AIM_OK) return st;
    for (size_t p = 0; p < s->n_order; p++)
        if ((st = infer_node(s, &s->nodes[s->order[p]])) != AIM_OK) return st;
    mark_live(s);
    if ((st = plan_steps(s)) != AIM_OK) return st;
    return plan_memory(s);
}

aim_status aim_session_create(const aim_model *m, const aim_session_options *options,
                              aim_session **out) {
    *out = NULL;
    aim_session *s = calloc(1, sizeof *s);
    if (!s) return aim_error(AIM_ERR_NOMEM, "out of memory");
    s->model = m;
    s->threads = options && options->threads > 0 ? options->threads : default_threads();
    s->reference_only = options && options->reference_only;
    aim_status st = build(s);
    if (st == AIM_OK && options && options->profile &&
        !(s->step_ns = calloc(s->plan->n_steps + 1, sizeof *s->step_ns)))
        st = aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st != AIM_OK) {
        aim_session_free(s);
        return st;
    }
    *out = s;
    return AIM_OK;
}

void aim_session_free(aim_session *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_nodes; i++) {
        node_slot *n = &s->nodes[i];
        if (n->state && n->def && n->def->release) n->def->release(n->state);
        free(n->in);
        free(n->out);
    }
    for (size_t v = 0; v < s->n_values; v++)
        if (s->values[v].constant && !s->values[v].borrowed) free(s->values[v].info.data);
    aim_cpu_plan_free(s->plan);
    free((void *)s->step_ns);
    free(s->nodes);
    free(s->values);
    free(s->order);
    free(s->inputs);
    free(s->outputs);
    free(s);
}

size_t aim_session_input_count(const aim_session *s) {
    return s->n_inputs;
}
size_t aim_session_output_count(const aim_session *s) {
    return s->n_outputs;
}
const char *aim_session_input_name(const aim_session *s, size_t i) {
    return i < s->n_inputs ? s->values[s->inputs[i]].name : NULL;
}
const char *aim_session_output_name(const aim_session *s, size_t i) {
    return i < s->n_outputs ? s->values[s->outputs[i]].name : NULL;
}

void aim_session_input_info(const aim_session *s, size_t i, aim_tensor *info) {
    memset(info, 0, sizeof *info);
    if (i >= s->n_inputs) return;
    const Onnx__GraphProto *g = aim_model_proto(s->model)->graph;
    const char *name = s->values[s->inputs[i]].name;
    for (size_t k = 0; k < g->n_input; k++)
        if (g->input[k]->name && strcmp(g->input[k]->name, name) == 0)
            declared_info(g->input[k], info);
}

int aim_session_input_index(const aim_session *s, const char *name) {
    for (size_t i = 0; i < s->n_inputs; i++)
        if (strcmp(s->values[s->inputs[i]].name, name) == 0) return (int)i;
    return -1;
}

/* ---- Running ------------------------------------------------------------------------------- */

typedef struct {
    aim_tensor *t;  /* one per value */
    bool *owned;    /* buffers malloc'ed by this run (not constants, inputs or arena) */
    uint8_t *arena; /* planned intermediates, then the oneDNN scratchpad */
    aim_cpu_run *cpu;
} run_state;

static aim_status check_input(const aim_session *s, size_t i, const aim_tensor *given) {
    aim_tensor declared;
    aim_session_input_info(s, i, &declared);
    const char *name = aim_session_input_name(s, i);
    if (declared.dtype && given->dtype != declared.dtype)
        return aim_error(AIM_ERR_INVALID_ARG, "input '%s': got %s, the model expects %s", name,
                         aim_dtype_name(given->dtype), aim_dtype_name(declared.dtype));
    if (given->rank < 0 || given->rank > AIM_MAX_RANK)
        return aim_error(AIM_ERR_INVALID_ARG, "input '%s': invalid rank %d", name, given->rank);
    for (int d = 0; d < given->rank; d++)
        if (given->dims[d] < 0)
            return aim_error(AIM_ERR_INVALID_ARG, "input '%s': negative dimension", name);
    if (declared.rank >= 0) {
        bool ok = declared.rank == given->rank;
        for (int d = 0; ok && d < given->rank; d++)
            ok = declared.dims[d] < 0 || declared.dims[d] == given->dims[d];
        if (!ok) {
            char a[128], b[128];
            return aim_error(AIM_ERR_INVALID_ARG, "input '%s': got shape %s, the model expects %s",
                             name, aim_tensor_shape_str(given, a, sizeof a),
                             aim_tensor_shape_str(&declared, b, sizeof b));
        }
    }
    if (!given->data && aim_tensor_count(given) > 0)
        return aim_error(AIM_ERR_INVALID_ARG, "input '%s' has no data", name);
    return AIM_OK;
}

static void release_dead(const aim_session *s, run_state *r, int position) {
    const aim_cpu_step *step = &s->plan->steps[position];
    for (int k = 0; k < step->n_in; k++) {
        int v = step->in[k];
        if (v < 0 || s->values[v].last_reader != position || !r->owned[v]) continue;
        if (s->values[v].graph_output) continue;
        free(r->t[v].data);
        r->t[v].data = NULL;
        r->owned[v] = false;
    }
}

static aim_status run_node(const aim_session *s, run_state *r, const aim_cpu_step *step,
                           const aim_tensor **ins, aim_tensor **outs) {
    const node_slot *n = &s->nodes[s->order[step->node]];
    for (int k = 0; k < n->n_in; k++)
        ins[k] = step->in[k] >= 0 ? &r->t[step->in[k]] : NULL;
    for (int k = 0; k < n->n_out; k++)
        outs[k] = n->out[k] >= 0 ? &r->t[n->out[k]] : NULL;
    aim_op_ctx c = node_ctx(s, n, ins, outs);
    aim_status st = n->def->infer(&c);
    if (st != AIM_OK) return st;
    for (int k = 0; k < n->n_out; k++) {
        if (!outs[k]) continue;
        const value_slot *v = &s->values[n->out[k]];
        outs[k]->data = NULL;
        r->owned[n->out[k]] = true;
        if (outs[k]->rank < 0) continue;
        if ((st = check_output_size(&c, outs[k])) != AIM_OK) return st;
        if (v->arena_offset >= 0 && aim_tensor_bytes(outs[k]) <= v->arena_bytes) {
            outs[k]->data = r->arena + v->arena_offset;
            r->owned[n->out[k]] = false;
        } else if ((st = runtime_alloc(&c, k)) != AIM_OK) {
            return st;
        }
    }
    st = n->def->run(&c);
    if (st != AIM_OK) return st;
    for (int k = 0; k < n->n_out; k++)
        if (outs[k] && !outs[k]->data)
            return aim_op_fail(&c, AIM_ERR_INTERNAL, "kernel left output %d unallocated", k);
    return AIM_OK;
}

/* Sizes of the per-run buffer: the arena, then the oneDNN scratchpad. */
static size_t scratch_offset(const aim_session *s) {
    return (s->arena_bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

static size_t run_buffer_bytes(const aim_session *s) {
    size_t scratch = (s->plan->scratch_bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    return scratch_offset(s) + scratch;
}

/* A kernel step: shapes are static (checked at load), so only buffers are found here. */
static aim_status run_kernel(const aim_session *s, run_state *r, const aim_cpu_step *step) {
    void *src[step->n_in + 1];
    for (int k = 0; k < step->n_in; k++)
        src[k] = r->t[step->in[k]].data;
    int v = step->out[0];
    const value_slot *slot = &s->values[v];
    r->t[v] = slot->info;
    if (slot->arena_offset >= 0) {
        r->t[v].data = r->arena + slot->arena_offset;
    } else { /* a graph output, handed to the caller */
        size_t bytes = value_bytes(slot);
        r->t[v].data = malloc(bytes);
        if (!r->t[v].data) return aim_error(AIM_ERR_NOMEM, "cannot allocate %zu bytes", bytes);
        r->owned[v] = true;
    }
    aim_status st =
        aim_cpu_kernel_run(r->cpu, step->kernel, src, r->t[v].data, r->arena + scratch_offset(s));
    if (st != AIM_OK) return aim_error_context(st, "'%s'", slot->name);
    return AIM_OK;
}

static aim_status run_step(const aim_session *s, run_state *r, size_t i, const aim_tensor **ins,
                           aim_tensor **outs) {
    const aim_cpu_step *step = &s->plan->steps[i];
    return step->node >= 0 ? run_node(s, r, step, ins, outs) : run_kernel(s, r, step);
}

static uint64_t clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static aim_status run_step_timed(const aim_session *s, run_state *r, size_t i,
                                 const aim_tensor **ins, aim_tensor **outs) {
    if (!s->step_ns) return run_step(s, r, i, ins, outs);
    uint64_t t0 = clock_ns();
    aim_status st = run_step(s, r, i, ins, outs);
    atomic_fetch_add_explicit(&s->step_ns[i], clock_ns() - t0, memory_order_relaxed);
    return st;
}

size_t aim_session_step_count(const aim_session *s) {
    return s->plan->n_steps;
}

bool aim_session_step_profile(const aim_session *s, size_t i, aim_session_step_info *out) {
    if (i >= s->plan->n_steps) return false;
    const aim_cpu_step *step = &s->plan->steps[i];
    if (step->node >= 0) {
        const node_slot *n = &s->nodes[s->order[step->node]];
        out->kind = n->proto->op_type;
        out->output = n->n_out > 0 && n->out[0] >= 0 ? s->values[n->out[0]].name : "";
    } else {
        out->kind = aim_cpu_kernel_name(step->kernel);
        out->output = s->values[step->out[0]].name;
    }
    out->total_ms = s->step_ns ? (double)atomic_load(&s->step_ns[i]) / 1e6 : 0.0;
    out->runs = s->step_ns ? atomic_load(&s->profiled_runs) : 0;
    return true;
}

static aim_status copy_output(const aim_tensor *src, aim_tensor *dst) {
    *dst = *src;
    size_t bytes = aim_tensor_bytes(src);
    dst->data = malloc(bytes ? bytes : 1);
    if (!dst->data) return aim_error(AIM_ERR_NOMEM, "out of memory");
    if (bytes) memcpy(dst->data, src->data, bytes);
    return AIM_OK;
}

aim_status aim_session_run(aim_session *s, const aim_tensor *inputs, aim_tensor *outputs) {
    size_t run_bytes = run_buffer_bytes(s);
    run_state r = {calloc(s->n_values + 1, sizeof *r.t), calloc(s->n_values + 1, sizeof *r.owned),
                   run_bytes ? aligned_alloc(ARENA_ALIGN, run_bytes) : NULL, NULL};
    const aim_tensor **ins = calloc((size_t)s->max_arity + 1, sizeof *ins);
    aim_tensor **outs = calloc((size_t)s->max_arity + 1, sizeof *outs);
    aim_status st = AIM_OK;
    if (!r.t || !r.owned || !ins || !outs || (run_bytes && !r.arena)) {
        st = aim_error(AIM_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = aim_cpu_run_begin(s->plan, s->threads, &r.cpu)) != AIM_OK) goto done;
    for (size_t v = 0; v < s->n_values; v++) {
        if (s->values[v].constant) r.t[v] = s->values[v].info;
        /* A Concat written piecewise by its inputs' steps, the inputs, and views (a Reshape's
         * output) that no step writes: all at fixed places in the arena. */
        if (s->values[v].alias_root || s->values[v].alias_of >= 0) {
            r.t[v] = s->values[v].info;
            r.t[v].data = r.arena + s->values[v].arena_offset;
        }
    }
    for (size_t i = 0; i < s->n_inputs; i++) {
        if ((st = check_input(s, i, &inputs[i])) != AIM_OK) goto done;
        r.t[s->inputs[i]] = inputs[i];
    }
    for (size_t i = 0; i < s->plan->n_steps; i++) {
        if ((st = run_step_timed(s, &r, i, ins, outs)) != AIM_OK) goto done;
        release_dead(s, &r, (int)i);
    }
    if (s->step_ns) atomic_fetch_add_explicit(&s->profiled_runs, 1, memory_order_relaxed);
    size_t made = 0;
    for (; made < s->n_outputs && st == AIM_OK; made++) {
        int v = s->outputs[made];
        if (!r.t[v].data && !s->values[v].constant)
            st = aim_error(AIM_ERR_PARSE, "graph output '%s' is never produced", s->values[v].name);
        else if (r.owned[v]) { /* hand the buffer over instead of copying it */
            outputs[made] = r.t[v];
            r.owned[v] = false; /* a second listing of the same value copies this buffer */
        } else
            st = copy_output(&r.t[v], &outputs[made]);
    }
    if (st != AIM_OK)
        for (size_t i = 0; i + 1 < made; i++)
            free(outputs[i].data);
done:
    aim_cpu_run_end(r.cpu);
    if (r.owned)
        for (size_t v = 0; v < s->n_values; v++)
            if (r.owned[v]) free(r.t[v].data);
    free(r.t);
    free(r.owned);
    free(r.arena);
    free(ins);
    free(outs);
    return st;
}
