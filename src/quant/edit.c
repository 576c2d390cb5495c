/*
 * edit.c: building and changing ONNX protobuf graphs in place: nodes, attributes,
 * initializers, a stable topological sort, and pruning of what no node uses any more.
 */
#include "quant/edit.h"

#include "core/util.h"

#include <stdlib.h>
#include <string.h>

static aim_status no_memory(void) {
    return aim_error(AIM_ERR_NOMEM, "out of memory while editing the graph");
}

aim_status aim_quant_set_string(char **slot, const char *text) {
    char *copy = aim_strdup(text);
    if (!copy) return no_memory();
    free(*slot);
    *slot = copy;
    return AIM_OK;
}

static char **copy_strings(size_t n, const char *const *s) {
    char **out = calloc(n + 1, sizeof *out);
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!(out[i] = aim_strdup(s[i] ? s[i] : ""))) {
            for (size_t k = 0; k < i; k++)
                free(out[k]);
            free(out);
            return NULL;
        }
    }
    return out;
}

Onnx__NodeProto *aim_quant_node_new(const char *op_type, const char *domain, const char *name,
                                    size_t n_in, const char *const *inputs, size_t n_out,
                                    const char *const *outputs) {
    Onnx__NodeProto *n = malloc(sizeof *n);
    if (!n) return NULL;
    onnx__node_proto__init(n);
    n->input = copy_strings(n_in, inputs);
    n->n_input = n->input ? n_in : 0;
    n->output = copy_strings(n_out, outputs);
    n->n_output = n->output ? n_out : 0;
    n->op_type = aim_strdup(op_type);
    n->domain = domain && domain[0] ? aim_strdup(domain) : NULL;
    n->name = name ? aim_strdup(name) : NULL;
    if (!n->input || !n->output || !n->op_type || (domain && domain[0] && !n->domain) ||
        (name && !n->name)) {
        onnx__node_proto__free_unpacked(n, NULL);
        return NULL;
    }
    return n;
}

aim_status aim_quant_graph_append(Onnx__GraphProto *g, Onnx__NodeProto *n) {
    Onnx__NodeProto **grown = n ? realloc(g->node, (g->n_node + 1) * sizeof *grown) : NULL;
    if (!grown) {
        if (n) onnx__node_proto__free_unpacked(n, NULL);
        return no_memory();
    }
    g->node = grown;
    g->node[g->n_node++] = n;
    return AIM_OK;
}

static Onnx__AttributeProto *attr_new(Onnx__NodeProto *n, const char *name,
                                      Onnx__AttributeProto__AttributeType type) {
    Onnx__AttributeProto *a = malloc(sizeof *a);
    Onnx__AttributeProto **grown =
        a ? realloc(n->attribute, (n->n_attribute + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(a);
        return NULL;
    }
    n->attribute = grown;
    onnx__attribute_proto__init(a);
    if (!(a->name = aim_strdup(name))) {
        free(a);
        return NULL;
    }
    a->has_type = 1;
    a->type = type;
    n->attribute[n->n_attribute++] = a;
    return a;
}

aim_status aim_quant_attr_int(Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = attr_new(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!a) return no_memory();
    a->has_i = 1;
    a->i = v;
    return AIM_OK;
}

aim_status aim_quant_attr_bytes(Onnx__NodeProto *n, const char *name, const uint8_t *data,
                                size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return no_memory();
    if (size) memcpy(copy, data, size);
    Onnx__AttributeProto *a = attr_new(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    if (!a) {
        free(copy);
        return no_memory();
    }
    a->has_s = 1;
    a->s.data = copy;
    a->s.len = size;
    return AIM_OK;
}

aim_status aim_quant_attr_string(Onnx__NodeProto *n, const char *name, const char *s) {
    return aim_quant_attr_bytes(n, name, (const uint8_t *)s, strlen(s));
}

int64_t aim_quant_attr_get_int(const Onnx__NodeProto *n, const char *name, int64_t dflt) {
    const Onnx__AttributeProto *a = aim_onnx_node_attr(n, name);
    return a && a->has_i ? a->i : dflt;
}

float aim_quant_attr_get_float(const Onnx__NodeProto *n, const char *name, float dflt) {
    const Onnx__AttributeProto *a = aim_onnx_node_attr(n, name);
    return a && a->has_f ? a->f : dflt;
}

size_t aim_quant_attr_get_ints(const Onnx__NodeProto *n, const char *name, int64_t *out,
                               size_t max) {
    const Onnx__AttributeProto *a = aim_onnx_node_attr(n, name);
    if (!a) return 0;
    for (size_t i = 0; i < a->n_ints && i < max; i++)
        out[i] = a->ints[i];
    return a->n_ints;
}

aim_status aim_quant_graph_add_initializer(Onnx__GraphProto *g, const char *name, int dtype,
                                           int rank, const int64_t *dims, const void *data,
                                           size_t bytes) {
    Onnx__TensorProto *t = malloc(sizeof *t);
    Onnx__TensorProto **grown =
        t ? realloc(g->initializer, (g->n_initializer + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(t);
        return no_memory();
    }
    g->initializer = grown;
    onnx__tensor_proto__init(t);
    t->name = aim_strdup(name);
    t->dims = malloc((size_t)(rank > 0 ? rank : 1) * sizeof *t->dims);
    t->raw_data.data = malloc(bytes ? bytes : 1);
    if (!t->name || !t->dims || !t->raw_data.data) {
        onnx__tensor_proto__free_unpacked(t, NULL);
        return no_memory();
    }
    t->n_dims = (size_t)rank;
    if (rank > 0) memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    if (bytes) memcpy(t->raw_data.data, data, bytes);
    g->initializer[g->n_initializer++] = t;
    return AIM_OK;
}

Onnx__TensorProto *aim_quant_graph_initializer(const Onnx__GraphProto *g, const char *name) {
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && strcmp(g->initializer[i]->name, name) == 0)
            return g->initializer[i];
    return NULL;
}

/* ---- Topological sort ---------------------------------------------------------------------- */

/* Index of the node producing `name`, or -1 (a graph input, an initializer or nothing). */
static long producer_of(const Onnx__GraphProto *g, const char *name) {
    if (!name || !name[0]) return -1;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_output; k++)
            if (strcmp(g->node[i]->output[k], name) == 0) return (long)i;
    return -1;
}

static bool node_ready(const Onnx__GraphProto *g, size_t i, const long *prod, const bool *done) {
    (void)g;
    for (size_t k = 0; k < g->node[i]->n_input; k++) {
        long p = prod[k];
        if (p >= 0 && !done[p]) return false;
    }
    return true;
}

aim_status aim_quant_graph_toposort(Onnx__GraphProto *g) {
    size_t n = g->n_node;
    long **prod = calloc(n + 1, sizeof *prod);
    bool *done = calloc(n + 1, sizeof *done);
    Onnx__NodeProto **sorted = calloc(n + 1, sizeof *sorted);
    aim_status st = prod && done && sorted ? AIM_OK : no_memory();
    for (size_t i = 0; i < n && st == AIM_OK; i++) {
        prod[i] = calloc(g->node[i]->n_input + 1, sizeof **prod);
        if (!prod[i]) st = no_memory();
        for (size_t k = 0; prod[i] && k < g->node[i]->n_input; k++)
            prod[i][k] = producer_of(g, g->node[i]->input[k]);
    }
    size_t count = 0;
    /* Repeatedly take the first ready node in file order: stable, O(n^2) but n is small. */
    while (st == AIM_OK && count < n) {
        size_t i = 0;
        while (i < n && (done[i] || !node_ready(g, i, prod[i], done)))
            i++;
        if (i == n) {
            st = aim_error(AIM_ERR_INTERNAL, "the edited graph has a cycle (the region is not "
                                             "convex: a path leaves it and comes back)");
            break;
        }
        done[i] = true;
        sorted[count++] = g->node[i];
    }
    if (st == AIM_OK) memcpy(g->node, sorted, n * sizeof *sorted);
    for (size_t i = 0; prod && i < n; i++)
        free(prod[i]);
    free(prod);
    free(done);
    free(sorted);
    return st;
}

/* ---- Pruning ------------------------------------------------------------------------------- */

static bool graph_reads(const Onnx__GraphProto *g, const char *name);

static bool node_reads(const Onnx__NodeProto *n, const char *name) {
    for (size_t k = 0; k < n->n_input; k++)
        if (strcmp(n->input[k], name) == 0) return true;
    for (size_t a = 0; a < n->n_attribute; a++) {
        const Onnx__AttributeProto *at = n->attribute[a];
        if (at->g && graph_reads(at->g, name)) return true; /* outer-scope use in a subgraph */
        for (size_t k = 0; k < at->n_graphs; k++)
            if (graph_reads(at->graphs[k], name)) return true;
    }
    return false;
}

static bool graph_reads(const Onnx__GraphProto *g, const char *name) {
    for (size_t i = 0; i < g->n_node; i++)
        if (node_reads(g->node[i], name)) return true;
    for (size_t i = 0; i < g->n_output; i++)
        if (g->output[i]->name && strcmp(g->output[i]->name, name) == 0) return true;
    return false;
}

static bool is_graph_input(const Onnx__GraphProto *g, const char *name) {
    for (size_t i = 0; i < g->n_input; i++)
        if (g->input[i]->name && strcmp(g->input[i]->name, name) == 0) return true;
    return false;
}

static bool produced(const Onnx__GraphProto *g, const char *name) {
    return producer_of(g, name) >= 0 || is_graph_input(g, name) ||
           aim_quant_graph_initializer(g, name) != NULL;
}

void aim_quant_graph_prune(Onnx__GraphProto *g) {
    size_t kept = 0;
    for (size_t i = 0; i < g->n_initializer; i++) {
        Onnx__TensorProto *t = g->initializer[i];
        const char *name = t->name ? t->name : "";
        if (graph_reads(g, name) || is_graph_input(g, name))
            g->initializer[kept++] = t;
        else
            onnx__tensor_proto__free_unpacked(t, NULL);
    }
    g->n_initializer = kept;
    kept = 0;
    for (size_t i = 0; i < g->n_value_info; i++) {
        Onnx__ValueInfoProto *v = g->value_info[i];
        if (v->name && produced(g, v->name))
            g->value_info[kept++] = v;
        else
            onnx__value_info_proto__free_unpacked(v, NULL);
    }
    g->n_value_info = kept;
}
