/*
 * region.c: which nodes the program replaces. Every node is first classified (quantizable, or
 * the reason it is not); then the region is either the nodes between the --start and --end
 * nodes (reachable forward from the start nodes and backward from the end nodes), or the
 * largest connected group of quantizable nodes, made convex (no path region -> outside ->
 * region: such nodes leave the region). Only 4-D float tensors with batch 1 and static
 * shapes qualify, which keeps input pre-processing and post-processing (reshapes, box
 * decoding, NMS, Softmax) outside the region without naming them.
 */
#include "compile/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *aim_compile_node_label(const aim_compile_ctx *c, size_t node, char *buf, size_t size) {
    const Onnx__NodeProto *n = c->g->node[node];
    if (n->name && n->name[0])
        snprintf(buf, size, "'%s' (%s)", n->name, n->op_type);
    else
        snprintf(buf, size, "#%zu (%s -> '%s')", node, n->op_type, n->n_output ? n->output[0] : "");
    return buf;
}

/* A tensor a program can hold: float32 [1,C,H,W], every dim known. */
static bool act_ok(const aim_compile_ctx *c, int t) {
    if (t < 0) return false;
    const aim_compile_tensor *x = &c->t[t];
    if (x->dtype != AIM_DTYPE_FLOAT || x->rank != 4 || x->dims[0] != 1) return false;
    for (int d = 1; d < 4; d++)
        if (x->dims[d] <= 0) return false;
    return true;
}

static bool same_shape(const aim_compile_ctx *c, int a, int b) {
    return a >= 0 && b >= 0 && memcmp(c->t[a].dims, c->t[b].dims, 4 * sizeof(int64_t)) == 0;
}

static bool is_init(const aim_compile_ctx *c, int t) {
    return t >= 0 && c->t[t].initializer;
}

static bool op_is(const Onnx__NodeProto *n, const char *op) {
    return strcmp(n->op_type, op) == 0;
}

static const char *why_conv(const aim_compile_ctx *c, size_t i) {
    const Onnx__NodeProto *n = c->g->node[i];
    if (n->n_input < 2 || !is_init(c, c->nin[i][1])) return "Conv weights are not constant";
    if (n->n_input > 2 && c->nin[i][2] >= 0 && !is_init(c, c->nin[i][2]))
        return "Conv bias is not constant";
    const Onnx__TensorProto *w = aim_quant_graph_initializer(c->g, n->input[1]);
    if (!w || w->n_dims != 4 || w->data_type != AIM_DTYPE_FLOAT) return "Conv is not 2-D float";
    return NULL;
}

static const char *why_clip(const aim_compile_ctx *c, size_t i) {
    const Onnx__NodeProto *n = c->g->node[i];
    for (size_t k = 1; k < n->n_input; k++)
        if (c->nin[i][k] >= 0 && !is_init(c, c->nin[i][k])) return "Clip bounds are not constant";
    return NULL;
}

static const char *why_pool(const aim_compile_ctx *c, size_t i) {
    const Onnx__NodeProto *n = c->g->node[i];
    int64_t k[2] = {0, 0}, d[2] = {1, 1};
    if (n->n_output != 1) return "MaxPool with an indices output";
    if (aim_quant_attr_get_ints(n, "kernel_shape", k, 2) != 2) return "pool is not 2-D";
    if (aim_quant_attr_get_ints(n, "dilations", d, 2) && (d[0] != 1 || d[1] != 1))
        return "dilated pooling";
    if (aim_quant_attr_get_int(n, "ceil_mode", 0) != 0) return "ceil_mode pooling";
    return NULL;
}

static const char *why_binary(const aim_compile_ctx *c, size_t i) {
    const Onnx__NodeProto *n = c->g->node[i];
    if (n->n_input != 2 || !act_ok(c, c->nin[i][0]) || !act_ok(c, c->nin[i][1]))
        return "operands are not two 4-D activations (a constant operand or broadcast)";
    if (!same_shape(c, c->nin[i][0], c->nin[i][1])) return "operands differ in shape";
    return NULL;
}

static const char *why_resize(const aim_compile_ctx *c, size_t i) {
    const Onnx__NodeProto *n = c->g->node[i];
    const Onnx__AttributeProto *mode = aim_onnx_node_attr(n, "mode");
    if (!mode || mode->s.len != 7 || memcmp(mode->s.data, "nearest", 7) != 0)
        return "Resize is not nearest";
    int x = c->nin[i][0], y = c->nout[i][0];
    if (!act_ok(c, x) || !act_ok(c, y)) return NULL; /* reported as a tensor problem */
    for (int d = 0; d < 4; d++)
        if (c->t[y].dims[d] % c->t[x].dims[d] != 0 || (d < 2 && c->t[y].dims[d] != c->t[x].dims[d]))
            return "Resize scale is not an integer on H and W";
    const Onnx__AttributeProto *ct = aim_onnx_node_attr(n, "coordinate_transformation_mode");
    const Onnx__AttributeProto *nm = aim_onnx_node_attr(n, "nearest_mode");
    bool asym = ct && ct->s.len == 10 && memcmp(ct->s.data, "asymmetric", 10) == 0;
    bool floor_mode = nm && nm->s.len == 5 && memcmp(nm->s.data, "floor", 5) == 0;
    bool ceil_mode = nm && nm->s.len == 17 && memcmp(nm->s.data, "round_prefer_ceil", 17) == 0;
    bool align = ct && ct->s.len == 13 && memcmp(ct->s.data, "align_corners", 13) == 0;
    /* With an integer factor, output i reads input floor(i / s) for asymmetric+floor and for
     * half-pixel centres with rounding; asymmetric with rounding or align_corners differ. */
    if (align || (asym && !floor_mode) || (!asym && floor_mode) || (asym && ceil_mode))
        return "Resize coordinate/nearest mode is not the integer-replication form";
    return NULL;
}

static const char *why_split(const aim_compile_ctx *c, size_t i) {
    int64_t axis = aim_quant_attr_get_int(c->g->node[i], "axis", 0);
    if (axis < 0) axis += 4;
    if (axis < 1 || axis > 3) return "Split along the batch axis";
    for (size_t k = 0; k < c->g->node[i]->n_output; k++)
        if (c->nout[i][k] < 0) return "Split with an unnamed output";
    return NULL;
}

/* The op-specific reason a node cannot be quantized, or NULL. */
static const char *why_op(const aim_compile_ctx *c, size_t i) {
    const Onnx__NodeProto *n = c->g->node[i];
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0) return "custom domain";
    if (op_is(n, "Conv")) return why_conv(c, i);
    if (op_is(n, "Relu") || op_is(n, "Sigmoid") || op_is(n, "HardSwish") || op_is(n, "LeakyRelu"))
        return NULL;
    if (op_is(n, "Clip")) return why_clip(c, i);
    if (op_is(n, "MaxPool") || op_is(n, "AveragePool")) return why_pool(c, i);
    if (op_is(n, "GlobalAveragePool") || op_is(n, "Concat")) return NULL;
    if (op_is(n, "Add") || op_is(n, "Mul")) return why_binary(c, i);
    if (op_is(n, "Resize")) return why_resize(c, i);
    if (op_is(n, "Split")) return why_split(c, i);
    if (op_is(n, "Gemm") || op_is(n, "MatMul")) return "Gemm/MatMul works on 2-D tensors";
    if (op_is(n, "BatchNormalization")) return "BatchNormalization not after a Conv";
    return "not a quantizable operator (pre- or post-processing)";
}

/* The activation inputs a node reads (for Conv only input 0, for Resize only input 0). */
static size_t act_inputs(const Onnx__NodeProto *n) {
    if (op_is(n, "Conv") || op_is(n, "Resize") || op_is(n, "Clip") || op_is(n, "Split"))
        return n->n_input ? 1 : 0;
    return n->n_input;
}

void aim_compile_classify(aim_compile_ctx *c) {
    for (size_t i = 0; i < c->n_nodes; i++) {
        const Onnx__NodeProto *n = c->g->node[i];
        const char *why = why_op(c, i);
        for (size_t k = 0; !why && k < act_inputs(n); k++)
            if (!act_ok(c, c->nin[i][k]))
                why = "an input is not a static 4-D float tensor [1,C,H,W]";
        for (size_t k = 0; !why && k < n->n_output; k++)
            if (!act_ok(c, c->nout[i][k]))
                why = "an output is not a static 4-D float tensor [1,C,H,W]";
        c->why[i] = why;
    }
}

/* ---- Start / end nodes --------------------------------------------------------------------- */

static long find_node(const aim_compile_ctx *c, const char *name) {
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->g->node[i]->name && strcmp(c->g->node[i]->name, name) == 0) return (long)i;
    /* Unnamed nodes (common in exports) are named by their first output tensor. */
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->g->node[i]->n_output && strcmp(c->g->node[i]->output[0], name) == 0) return (long)i;
    return -1;
}

/* Marks nodes reachable from `seed` forward (consumers) or backward (producers). */
static void reach(const aim_compile_ctx *c, bool *mark, int *stack, bool forward) {
    size_t top = 0;
    for (size_t i = 0; i < c->n_nodes; i++)
        if (mark[i]) stack[top++] = (int)i;
    while (top) {
        int i = stack[--top];
        const Onnx__NodeProto *n = c->g->node[i];
        size_t count = forward ? n->n_output : n->n_input;
        for (size_t k = 0; k < count; k++) {
            int t = forward ? c->nout[i][k] : c->nin[i][k];
            if (t < 0) continue;
            const aim_compile_tensor *x = &c->t[t];
            size_t nn = forward ? x->n_consumers : (x->producer >= 0);
            for (size_t j = 0; j < nn; j++) {
                int next = forward ? x->consumers[j] : x->producer;
                if (!mark[next]) {
                    mark[next] = true;
                    stack[top++] = next;
                }
            }
        }
    }
}

static aim_status mark_named(aim_compile_ctx *c, const char *const *names, size_t n,
                             const char *what, bool *mark) {
    for (size_t k = 0; k < n; k++) {
        long i = find_node(c, names[k]);
        if (i < 0)
            return aim_error(AIM_ERR_NOT_FOUND,
                             "%s node '%s' does not exist (give a node name, or for an unnamed "
                             "node the name of its first output)",
                             what, names[k]);
        char label[256];
        if (c->why[i])
            return aim_error(AIM_ERR_UNSUPPORTED, "%s node %s cannot be quantized: %s", what,
                             aim_compile_node_label(c, (size_t)i, label, sizeof label), c->why[i]);
        mark[i] = true;
    }
    return AIM_OK;
}

/* ---- Components of quantizable nodes ------------------------------------------------------- */

static int uf_find(int *parent, int x) {
    while (parent[x] != x)
        x = parent[x] = parent[parent[x]];
    return x;
}

/* Labels connected groups of nodes allowed by `allow` (edges: a tensor from one to the other). */
static void components(const aim_compile_ctx *c, const bool *allow, int *parent) {
    for (size_t i = 0; i < c->n_nodes; i++)
        parent[i] = (int)i;
    for (size_t i = 0; i < c->n_nodes; i++) {
        if (!allow[i]) continue;
        for (size_t k = 0; k < c->g->node[i]->n_input; k++) {
            int t = c->nin[i][k], p = t >= 0 ? c->t[t].producer : -1;
            if (p >= 0 && allow[p]) parent[uf_find(parent, p)] = uf_find(parent, (int)i);
        }
    }
}

static void keep_largest(aim_compile_ctx *c, const bool *allow, int *parent, size_t *size) {
    components(c, allow, parent);
    memset(size, 0, c->n_nodes * sizeof *size);
    int best = -1;
    for (size_t i = 0; i < c->n_nodes; i++)
        if (allow[i]) size[uf_find(parent, (int)i)]++;
    for (size_t i = 0; i < c->n_nodes; i++)
        if (allow[i] && (best < 0 || size[i] > size[best])) best = (int)i;
    for (size_t i = 0; i < c->n_nodes; i++)
        c->in_region[i] = allow[i] && best >= 0 && uf_find(parent, (int)i) == best;
}

/* Keeps the allowed nodes connected to a marked seed. */
static void keep_connected(aim_compile_ctx *c, const bool *allow, const bool *seed, int *parent) {
    components(c, allow, parent);
    for (size_t i = 0; i < c->n_nodes; i++) {
        bool keep = false;
        for (size_t j = 0; allow[i] && j < c->n_nodes && !keep; j++)
            keep = seed[j] && uf_find(parent, (int)j) == uf_find(parent, (int)i);
        c->in_region[i] = keep;
    }
}

/* Nodes between the start and end nodes. Both given: every node between them must be
 * quantizable. One side given: the quantizable nodes connected to it on that side. */
static aim_status select_named(aim_compile_ctx *c, bool *allow, bool *work, int *stack,
                               int *parent) {
    const aim_compile_options *o = c->o;
    bool *seed = calloc(c->n_nodes + 1, sizeof *seed);
    if (!seed) return aim_error(AIM_ERR_NOMEM, "out of memory");
    aim_status st = mark_named(c, o->start_nodes, o->start_count, "start", work);
    if (st == AIM_OK) st = mark_named(c, o->end_nodes, o->end_count, "end", seed);
    if (st != AIM_OK) {
        free(seed);
        return st;
    }
    for (size_t i = 0; i < c->n_nodes; i++)
        allow[i] = true;
    if (o->start_count) {
        reach(c, work, stack, true);
        for (size_t i = 0; i < c->n_nodes; i++)
            allow[i] = work[i];
    }
    for (size_t i = 0; i < c->n_nodes; i++)
        work[i] = seed[i];
    if (o->end_count) {
        reach(c, work, stack, false);
        for (size_t i = 0; i < c->n_nodes; i++)
            allow[i] = allow[i] && work[i];
    }
    for (size_t i = 0; i < c->n_nodes && st == AIM_OK; i++) {
        char label[256];
        if (allow[i] && c->why[i] && o->start_count && o->end_count)
            st = aim_error(AIM_ERR_UNSUPPORTED,
                           "node %s between the start and end nodes cannot be quantized: %s",
                           aim_compile_node_label(c, i, label, sizeof label), c->why[i]);
        allow[i] = allow[i] && !c->why[i];
    }
    if (st == AIM_OK) {
        /* seeds: the named nodes of both sides (already checked to exist) */
        if (o->start_count) st = mark_named(c, o->start_nodes, o->start_count, "start", seed);
        keep_connected(c, allow, seed, parent);
    }
    free(seed);
    return st;
}

static aim_status push_tensor(int **list, size_t *n, int t) {
    for (size_t i = 0; i < *n; i++)
        if ((*list)[i] == t) return AIM_OK;
    int *grown = realloc(*list, (*n + 1) * sizeof *grown);
    if (!grown) return aim_error(AIM_ERR_NOMEM, "out of memory");
    *list = grown;
    (*list)[(*n)++] = t;
    return AIM_OK;
}

/* Region inputs (read inside, made outside) and outputs (made inside, read outside or graph
 * outputs), in node order. */
static aim_status region_io(aim_compile_ctx *c) {
    aim_status st = AIM_OK;
    for (size_t i = 0; i < c->n_nodes && st == AIM_OK; i++) {
        if (!c->in_region[i]) continue;
        const Onnx__NodeProto *n = c->g->node[i];
        for (size_t k = 0; k < act_inputs(n) && st == AIM_OK; k++) {
            int t = c->nin[i][k];
            if (t >= 0 && (c->t[t].producer < 0 || !c->in_region[c->t[t].producer]))
                st = push_tensor(&c->rin, &c->n_rin, t);
        }
        for (size_t k = 0; k < n->n_output && st == AIM_OK; k++) {
            int t = c->nout[i][k];
            bool outside = t >= 0 && c->t[t].graph_output;
            for (size_t j = 0; t >= 0 && j < c->t[t].n_consumers; j++)
                outside = outside || !c->in_region[c->t[t].consumers[j]];
            if (outside) st = push_tensor(&c->rout, &c->n_rout, t);
        }
    }
    return st;
}

/* Marks every node downstream of a node outside the region that reads a region value: a region
 * node among them would make the AimProgram node depend on itself. */
static void mark_after_exits(const aim_compile_ctx *c, bool *mark, int *stack) {
    memset(mark, 0, c->n_nodes * sizeof *mark);
    for (size_t i = 0; i < c->n_nodes; i++)
        for (size_t k = 0; c->in_region[i] && k < c->g->node[i]->n_output; k++) {
            int t = c->nout[i][k];
            for (size_t j = 0; t >= 0 && j < c->t[t].n_consumers; j++)
                if (!c->in_region[c->t[t].consumers[j]]) mark[c->t[t].consumers[j]] = true;
        }
    reach(c, mark, stack, true);
}

/* The automatic region made convex: nodes that read, through nodes outside the region, what
 * the region computes (YOLO's routes through Split, which a program cannot hold) leave it, and
 * the largest connected group of what remains is taken again, until no such node is left. */
static void make_convex(aim_compile_ctx *c, bool *allow, bool *mark, int *stack, int *parent,
                        size_t *size, bool *left_out) {
    for (;;) {
        mark_after_exits(c, mark, stack);
        size_t dropped = 0;
        for (size_t i = 0; i < c->n_nodes; i++)
            if (mark[i] && c->in_region[i]) {
                allow[i] = false;
                left_out[i] = true;
                dropped++;
            }
        if (!dropped) return;
        keep_largest(c, allow, parent, size);
    }
}

/* A path region -> outside -> region would make the AimProgram node depend on itself. */
static aim_status check_convex(aim_compile_ctx *c, bool *mark, int *stack) {
    mark_after_exits(c, mark, stack);
    for (size_t i = 0; i < c->n_nodes; i++) {
        char label[256];
        if (mark[i] && c->in_region[i])
            return aim_error(AIM_ERR_UNSUPPORTED,
                             "the region is not convex: node %s reads a value computed outside "
                             "the region from the region's own outputs; choose --start/--end",
                             aim_compile_node_label(c, i, label, sizeof label));
    }
    return AIM_OK;
}

#define MAX_STOPS 12 /* nodes listed as where the region stops */

/* left_out: nodes make_convex took out of the region. */
static void describe(aim_compile_ctx *c, bool named, const bool *left_out) {
    aim_strbuf *sb = &c->region_text;
    size_t convs = 0, total_q = 0;
    for (size_t i = 0; i < c->n_nodes; i++) {
        total_q += !c->why[i];
        convs += c->in_region[i] && op_is(c->g->node[i], "Conv");
    }
    aim_strbuf_printf(sb,
                      "region: %zu of %zu nodes (%zu Conv)%s; %zu nodes are quantizable in all\n",
                      c->region_nodes, c->n_nodes, convs,
                      named         ? " between the given start/end nodes"
                      : c->cut >= 0 ? ", the largest connected group of quantizable nodes "
                                      "up to the accuracy cut"
                                    : ", the largest connected group of quantizable nodes",
                      total_q);
    aim_strbuf_printf(sb, "  inputs (%zu):", c->n_rin);
    for (size_t i = 0; i < c->n_rin; i++)
        aim_strbuf_printf(sb, " %s", c->t[c->rin[i]].name);
    aim_strbuf_printf(sb, "\n  outputs (%zu):", c->n_rout);
    for (size_t i = 0; i < c->n_rout; i++)
        aim_strbuf_printf(sb, " %s", c->t[c->rout[i]].name);
    aim_strbuf_puts(sb, "\n");
    /* Why the region stops: each node outside it that reads one of its outputs, once. */
    int shown[MAX_STOPS];
    size_t n_shown = 0;
    for (size_t r = 0; r < c->n_rout && n_shown < MAX_STOPS; r++) {
        const aim_compile_tensor *t = &c->t[c->rout[r]];
        for (size_t j = 0; j < t->n_consumers && n_shown < MAX_STOPS; j++) {
            int k = t->consumers[j];
            bool seen = c->in_region[k];
            for (size_t i = 0; i < n_shown && !seen; i++)
                seen = shown[i] == k;
            if (seen) continue;
            shown[n_shown++] = k;
            char label[256];
            aim_strbuf_printf(sb, "  stops before %s: %s\n",
                              aim_compile_node_label(c, (size_t)k, label, sizeof label),
                              c->why[k] ? c->why[k]
                              : named   ? "outside the given end nodes"
                              : left_out[k]
                                  ? "reads a region output through a node outside the region"
                                    " (the program cannot depend on itself)"
                                  : "kept in float32 to meet the accuracy target");
        }
    }
}

aim_status aim_compile_select_region(aim_compile_ctx *c) {
    bool named = c->o->start_count || c->o->end_count;
    bool *allow = calloc(c->n_nodes + 1, sizeof *allow), *work = calloc(c->n_nodes + 1, 1);
    int *stack = calloc(c->n_nodes + 1, sizeof *stack),
        *parent = calloc(c->n_nodes + 1, sizeof(int));
    size_t *size = calloc(c->n_nodes + 1, sizeof *size);
    bool *left_out = calloc(c->n_nodes + 1, sizeof *left_out);
    aim_status st = allow && work && stack && parent && size && left_out
                        ? AIM_OK
                        : aim_error(AIM_ERR_NOMEM, "out of memory");
    if (st == AIM_OK && named) st = select_named(c, allow, work, stack, parent);
    if (st == AIM_OK && !named) {
        for (size_t i = 0; i < c->n_nodes; i++)
            allow[i] = !c->why[i] && (c->cut < 0 || (long)i <= c->cut);
        keep_largest(c, allow, parent, size);
        make_convex(c, allow, work, stack, parent, size, left_out);
    }
    c->region_nodes = 0;
    for (size_t i = 0; st == AIM_OK && i < c->n_nodes; i++)
        c->region_nodes += c->in_region[i];
    if (st == AIM_OK && c->region_nodes == 0)
        st = aim_error(AIM_ERR_UNSUPPORTED,
                       "nothing to quantize: the model has no %s (Conv, pooling, Add, Concat, "
                       "Resize, activations on static 4-D float tensors [1,C,H,W])",
                       named ? "quantizable nodes between the start and end nodes"
                             : "quantizable operators");
    if (st == AIM_OK) st = region_io(c);
    if (st == AIM_OK) st = check_convex(c, work, stack);
    if (st == AIM_OK) describe(c, named, left_out);
    free(left_out);
    free(allow);
    free(work);
    free(stack);
    free(parent);
    free(size);
    return st;
}
