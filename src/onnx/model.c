/*
 * model.c: reading and editing a loaded model: header facts, opset imports, graph inputs and
 * outputs, renaming, static shapes, initializers, nodes and metadata_props (everything in
 * aim/model.h except load, save and free, which live in model_io.c).
 *
 * Invariants every edit keeps:
 *  1. The proto stays freeable by onnx__model_proto__free_unpacked(): every string, array and
 *     message is malloc'd, whatever is replaced is freed, new messages start from their
 *     generated init, and the proto2 has_* flags of scalars we set are raised.
 *  2. An edit either succeeds or leaves the model as it was: everything that can fail
 *     (allocation, lookups) happens before the first change (see rename_commit, shape_commit).
 *  3. m->blobs only names tensors still in the model: a removed tensor or node is detached, its
 *     external bytes dropped (prune_blobs), and only then freed.
 */
#include "core/util.h"
#include "onnx/onnx.h"

#include <stdlib.h>
#include <string.h>

/* ---- Small helpers ------------------------------------------------------------------------- */

static const char *str_or_empty(const char *s) {
    return s ? s : "";
}

static Onnx__GraphProto *graph_of(const aim_model *m) {
    return m && m->proto ? m->proto->graph : NULL;
}

static aim_status null_arg(const char *fn) {
    return aim_error(AIM_ERR_INVALID_ARG, "%s: NULL argument", fn);
}

static aim_status no_memory(void) {
    return aim_error(AIM_ERR_NOMEM, "out of memory");
}

/* Replaces a malloc'd string field with a copy of `text`. */
static aim_status replace_string(char **slot, const char *text) {
    char *copy = aim_strdup(text);
    if (!copy) return no_memory();
    free(*slot);
    *slot = copy;
    return AIM_OK;
}

/* Removes element i of a protobuf-c array of message pointers (the pointer is not freed). */
static void remove_at(void *array, size_t *count, size_t i) {
    char *base = array;
    memmove(base + i * sizeof(void *), base + (i + 1) * sizeof(void *),
            (*count - i - 1) * sizeof(void *));
    (*count)--;
}

static bool names_equal(const char *a, const char *b) {
    return strcmp(str_or_empty(a), b) == 0;
}

/* ---- External blobs of removed tensors ----------------------------------------------------- */

typedef struct {
    const aim_model *m;
    bool *keep;
} blob_marks;

static aim_status mark_blob(Onnx__TensorProto *t, void *ctx) {
    blob_marks *bm = ctx;
    for (size_t i = 0; i < bm->m->blob_count; i++)
        if (bm->m->blobs[i].tensor == t) bm->keep[i] = true;
    return AIM_OK;
}

/* The one fallible step of pruning, done before the model is touched. */
static bool *blob_marks_alloc(const aim_model *m) {
    return calloc(m->blob_count + 1, sizeof(bool));
}

/* Drops the external bytes of every tensor no longer reachable from the model, then frees
 * `keep`. Call after detaching a tensor or node and before freeing it. */
static void prune_blobs(aim_model *m, bool *keep) {
    blob_marks bm = {m, keep};
    aim_onnx_walk_tensors(m->proto, mark_blob, &bm);
    size_t kept = 0;
    for (size_t i = 0; i < m->blob_count; i++) {
        if (keep[i])
            m->blobs[kept++] = m->blobs[i];
        else
            free(m->blobs[i].data);
    }
    m->blob_count = kept;
    free(keep);
}

/* ---- Header facts -------------------------------------------------------------------------- */

int64_t aim_model_ir_version(const aim_model *m) {
    return m && m->proto && m->proto->has_ir_version ? m->proto->ir_version : 0;
}

const char *aim_model_producer_name(const aim_model *m) {
    return m && m->proto ? str_or_empty(m->proto->producer_name) : "";
}

const char *aim_model_producer_version(const aim_model *m) {
    return m && m->proto ? str_or_empty(m->proto->producer_version) : "";
}

aim_status aim_model_set_producer(aim_model *m, const char *name, const char *version) {
    if (!m || !m->proto || !name || !version) return null_arg("aim_model_set_producer");
    char *n = aim_strdup(name), *v = aim_strdup(version);
    if (!n || !v) {
        free(n);
        free(v);
        return no_memory();
    }
    free(m->proto->producer_name);
    free(m->proto->producer_version);
    m->proto->producer_name = n;
    m->proto->producer_version = v;
    return AIM_OK;
}

const char *aim_model_graph_name(const aim_model *m) {
    Onnx__GraphProto *g = graph_of(m);
    return g ? str_or_empty(g->name) : "";
}

const char *aim_model_doc_string(const aim_model *m) {
    Onnx__GraphProto *g = graph_of(m);
    return g ? str_or_empty(g->doc_string) : "";
}

aim_status aim_model_set_doc_string(aim_model *m, const char *text) {
    Onnx__GraphProto *g = graph_of(m);
    if (!g || !text) return null_arg("aim_model_set_doc_string");
    return replace_string(&g->doc_string, text);
}

/* ---- Opset imports ------------------------------------------------------------------------- */

static bool is_default_domain(const char *domain) {
    return !domain || !*domain || strcmp(domain, "ai.onnx") == 0;
}

static bool same_domain(const char *a, const char *b) {
    if (is_default_domain(a) || is_default_domain(b))
        return is_default_domain(a) && is_default_domain(b);
    return strcmp(a, b) == 0;
}

static Onnx__OperatorSetIdProto *opset_find(const Onnx__ModelProto *p, const char *domain) {
    for (size_t i = 0; i < p->n_opset_import; i++)
        if (same_domain(p->opset_import[i]->domain, domain)) return p->opset_import[i];
    return NULL;
}

size_t aim_model_opset_count(const aim_model *m) {
    return m && m->proto ? m->proto->n_opset_import : 0;
}

const char *aim_model_opset_domain(const aim_model *m, size_t i) {
    if (i >= aim_model_opset_count(m)) return NULL;
    return str_or_empty(m->proto->opset_import[i]->domain);
}

int64_t aim_model_opset_version(const aim_model *m, size_t i) {
    if (i >= aim_model_opset_count(m)) return -1;
    const Onnx__OperatorSetIdProto *op = m->proto->opset_import[i];
    return op->has_version ? op->version : 0;
}

int64_t aim_model_opset_for(const aim_model *m, const char *domain) {
    if (!m || !m->proto || !domain) return -1;
    const Onnx__OperatorSetIdProto *op = opset_find(m->proto, domain);
    if (!op) return -1;
    return op->has_version ? op->version : 0;
}

static aim_status opset_append(Onnx__ModelProto *p, const char *domain, int64_t version) {
    Onnx__OperatorSetIdProto *op = malloc(sizeof *op);
    char *copy = aim_strdup(is_default_domain(domain) ? "" : domain);
    Onnx__OperatorSetIdProto **grown =
        op && copy ? realloc(p->opset_import, (p->n_opset_import + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(op);
        free(copy);
        return no_memory();
    }
    p->opset_import = grown;
    onnx__operator_set_id_proto__init(op);
    op->domain = copy;
    op->has_version = 1;
    op->version = version;
    p->opset_import[p->n_opset_import++] = op;
    return AIM_OK;
}

aim_status aim_model_set_opset(aim_model *m, const char *domain, int64_t version) {
    if (!m || !m->proto || !domain) return null_arg("aim_model_set_opset");
    if (version < 1)
        return aim_error(AIM_ERR_INVALID_ARG, "opset version %lld for domain '%s' must be >= 1",
                         (long long)version, domain);
    Onnx__OperatorSetIdProto *op = opset_find(m->proto, domain);
    if (!op) return opset_append(m->proto, domain, version);
    op->has_version = 1;
    op->version = version;
    return AIM_OK;
}

/* ---- Graph inputs and outputs -------------------------------------------------------------- */

/* The tensor part of a value's type, or NULL when the type is unset or not a tensor. */
static Onnx__TypeProto__Tensor *tensor_type_of(const Onnx__ValueInfoProto *vi) {
    const Onnx__TypeProto *type = vi->type;
    if (!type || type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) return NULL;
    return type->tensor_type;
}

static void fill_dim(const Onnx__TensorShapeProto__Dimension *d, aim_dim *out) {
    out->value = -1;
    out->param = NULL;
    if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value >= 0)
        out->value = d->dim_value;
    else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
        out->param = d->dim_param;
}

static aim_status fill_value_info(const Onnx__ValueInfoProto *vi, aim_value_info *out) {
    memset(out, 0, sizeof *out);
    out->name = str_or_empty(vi->name);
    out->rank = -1;
    const Onnx__TypeProto__Tensor *tt = tensor_type_of(vi);
    if (!tt) return AIM_OK;
    out->dtype = tt->has_elem_type ? tt->elem_type : 0;
    if (!tt->shape) return AIM_OK;
    if (tt->shape->n_dim > AIM_MAX_RANK)
        return aim_error(AIM_ERR_UNSUPPORTED, "'%s' has rank %zu; aim supports up to %d", out->name,
                         tt->shape->n_dim, AIM_MAX_RANK);
    out->rank = (int)tt->shape->n_dim;
    for (size_t i = 0; i < tt->shape->n_dim; i++)
        fill_dim(tt->shape->dim[i], &out->dims[i]);
    return AIM_OK;
}

static bool is_initializer(const Onnx__GraphProto *g, const char *name) {
    for (size_t i = 0; i < g->n_initializer; i++)
        if (names_equal(g->initializer[i]->name, name)) return true;
    return false;
}

/* The i-th graph input that is not an initializer, or NULL. */
static const Onnx__ValueInfoProto *feed_input(const Onnx__GraphProto *g, size_t i) {
    for (size_t k = 0; k < g->n_input; k++) {
        if (is_initializer(g, str_or_empty(g->input[k]->name))) continue;
        if (i-- == 0) return g->input[k];
    }
    return NULL;
}

size_t aim_model_input_count(const aim_model *m) {
    const Onnx__GraphProto *g = graph_of(m);
    size_t n = 0;
    for (size_t k = 0; g && k < g->n_input; k++)
        if (!is_initializer(g, str_or_empty(g->input[k]->name))) n++;
    return n;
}

aim_status aim_model_input(const aim_model *m, size_t i, aim_value_info *out) {
    const Onnx__GraphProto *g = graph_of(m);
    if (!g || !out) return null_arg("aim_model_input");
    const Onnx__ValueInfoProto *vi = feed_input(g, i);
    if (!vi)
        return aim_error(AIM_ERR_INVALID_ARG, "input index %zu is out of range (%zu inputs)", i,
                         aim_model_input_count(m));
    return fill_value_info(vi, out);
}

size_t aim_model_output_count(const aim_model *m) {
    const Onnx__GraphProto *g = graph_of(m);
    return g ? g->n_output : 0;
}

aim_status aim_model_output(const aim_model *m, size_t i, aim_value_info *out) {
    const Onnx__GraphProto *g = graph_of(m);
    if (!g || !out) return null_arg("aim_model_output");
    if (i >= g->n_output)
        return aim_error(AIM_ERR_INVALID_ARG, "output index %zu is out of range (%zu outputs)", i,
                         g->n_output);
    return fill_value_info(g->output[i], out);
}

/* ---- Rename -------------------------------------------------------------------------------- */

/* Every string field that names `from`, gathered before anything changes. */
typedef struct {
    const char *from;
    const char *to;
    char ***slots;
    size_t count;
    size_t cap;
    bool to_used;
} rename_plan;

static aim_status plan_slot(rename_plan *p, char **slot) {
    if (!*slot) return AIM_OK;
    if (strcmp(*slot, p->to) == 0) p->to_used = true;
    if (strcmp(*slot, p->from) != 0) return AIM_OK;
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        char ***grown = realloc(p->slots, cap * sizeof *grown);
        if (!grown) return no_memory();
        p->slots = grown;
        p->cap = cap;
    }
    p->slots[p->count++] = slot;
    return AIM_OK;
}

static aim_status plan_strings(rename_plan *p, char **names, size_t n) {
    aim_status st = AIM_OK;
    for (size_t i = 0; i < n && st == AIM_OK; i++)
        st = plan_slot(p, &names[i]);
    return st;
}

static aim_status plan_values(rename_plan *p, Onnx__ValueInfoProto **v, size_t n) {
    aim_status st = AIM_OK;
    for (size_t i = 0; i < n && st == AIM_OK; i++)
        st = plan_slot(p, &v[i]->name);
    return st;
}

static aim_status plan_tensors(rename_plan *p, const Onnx__GraphProto *g) {
    aim_status st = AIM_OK;
    for (size_t i = 0; i < g->n_initializer && st == AIM_OK; i++)
        st = plan_slot(p, &g->initializer[i]->name);
    for (size_t i = 0; i < g->n_sparse_initializer && st == AIM_OK; i++)
        if (g->sparse_initializer[i]->values)
            st = plan_slot(p, &g->sparse_initializer[i]->values->name);
    for (size_t i = 0; i < g->n_quantization_annotation && st == AIM_OK; i++)
        st = plan_slot(p, &g->quantization_annotation[i]->tensor_name);
    return st;
}

static aim_status plan_graph(Onnx__GraphProto *g, void *ctx) {
    rename_plan *p = ctx;
    aim_status st = AIM_OK;
    for (size_t i = 0; i < g->n_node && st == AIM_OK; i++) {
        st = plan_strings(p, g->node[i]->input, g->node[i]->n_input);
        if (st == AIM_OK) st = plan_strings(p, g->node[i]->output, g->node[i]->n_output);
    }
    if (st == AIM_OK) st = plan_values(p, g->input, g->n_input);
    if (st == AIM_OK) st = plan_values(p, g->output, g->n_output);
    if (st == AIM_OK) st = plan_values(p, g->value_info, g->n_value_info);
    if (st == AIM_OK) st = plan_tensors(p, g);
    return st;
}

/* Allocates every copy first, then swaps them in: nothing can fail once the first one lands. */
static aim_status rename_commit(rename_plan *p) {
    char **copies = calloc(p->count, sizeof *copies);
    if (!copies) return no_memory();
    for (size_t i = 0; i < p->count; i++) {
        if ((copies[i] = aim_strdup(p->to))) continue;
        for (size_t k = 0; k < i; k++)
            free(copies[k]);
        free(copies);
        return no_memory();
    }
    for (size_t i = 0; i < p->count; i++) {
        free(*p->slots[i]);
        *p->slots[i] = copies[i];
    }
    free(copies);
    return AIM_OK;
}

static aim_status rename_check(const aim_model *m, const char *from, const char *to) {
    if (!m || !m->proto || !from || !to) return null_arg("aim_model_rename");
    if (!*from || !*to)
        return aim_error(AIM_ERR_INVALID_ARG, "cannot rename '%s' to '%s': empty tensor name", from,
                         to);
    return AIM_OK;
}

aim_status aim_model_rename(aim_model *m, const char *from, const char *to) {
    aim_status st = rename_check(m, from, to);
    if (st != AIM_OK) return st;
    rename_plan plan = {.from = from, .to = to};
    st = aim_onnx_walk_graphs(m->proto, plan_graph, &plan);
    if (st == AIM_OK && plan.count == 0)
        st = aim_error(AIM_ERR_NOT_FOUND, "cannot rename '%s': no tensor has that name", from);
    else if (st == AIM_OK && strcmp(from, to) == 0)
        st = AIM_OK; /* renaming to itself changes nothing */
    else if (st == AIM_OK && plan.to_used)
        st = aim_error(AIM_ERR_INVALID_ARG,
                       "cannot rename '%s' to '%s': '%s' already names a tensor", from, to, to);
    else if (st == AIM_OK)
        st = rename_commit(&plan);
    free(plan.slots);
    return st;
}

/* ---- Static shapes ------------------------------------------------------------------------- */

/* What one value_info entry needs before its shape can be swapped in. */
typedef struct {
    Onnx__ValueInfoProto *vi;
    Onnx__TypeProto *type;           /* new, when vi has none */
    Onnx__TypeProto__Tensor *tensor; /* new, when the type is unset */
    Onnx__TensorShapeProto *shape;   /* new */
} shape_edit;

static Onnx__TensorShapeProto *shape_new(int rank, const int64_t *dims) {
    Onnx__TensorShapeProto *shape = malloc(sizeof *shape);
    if (!shape) return NULL;
    onnx__tensor_shape_proto__init(shape);
    if (rank == 0) return shape;
    shape->dim = calloc((size_t)rank, sizeof *shape->dim);
    for (int i = 0; shape->dim && i < rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = malloc(sizeof *d);
        if (!d) break;
        onnx__tensor_shape_proto__dimension__init(d);
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d->dim_value = dims[i];
        shape->dim[shape->n_dim++] = d;
    }
    if (shape->n_dim == (size_t)rank) return shape;
    onnx__tensor_shape_proto__free_unpacked(shape, NULL);
    return NULL;
}

static void shape_edit_free(shape_edit *e) {
    free(e->type);
    free(e->tensor);
    if (e->shape) onnx__tensor_shape_proto__free_unpacked(e->shape, NULL);
}

static aim_status shape_prepare(shape_edit *e, int rank, const int64_t *dims) {
    Onnx__TypeProto *type = e->vi->type;
    if (type && type->value_case != ONNX__TYPE_PROTO__VALUE__NOT_SET && !tensor_type_of(e->vi))
        return aim_error(AIM_ERR_UNSUPPORTED, "'%s' is not a tensor; cannot give it a shape",
                         str_or_empty(e->vi->name));
    bool need_tensor = !type || !tensor_type_of(e->vi);
    if (!type && !(e->type = malloc(sizeof *e->type))) return no_memory();
    if (need_tensor && !(e->tensor = malloc(sizeof *e->tensor))) return no_memory();
    if (!(e->shape = shape_new(rank, dims))) return no_memory();
    if (e->type) onnx__type_proto__init(e->type);
    if (e->tensor) onnx__type_proto__tensor__init(e->tensor);
    return AIM_OK;
}

static void shape_commit(shape_edit *e) {
    if (e->type) e->vi->type = e->type;
    if (e->tensor) {
        e->vi->type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
        e->vi->type->tensor_type = e->tensor;
    }
    Onnx__TypeProto__Tensor *tt = e->vi->type->tensor_type;
    if (tt->shape) onnx__tensor_shape_proto__free_unpacked(tt->shape, NULL);
    tt->shape = e->shape;
}

/* Collects the graph inputs, outputs and value_info entries named `name` into `edits` (NULL to
 * only count them); returns how many there are. */
static size_t shape_targets(Onnx__GraphProto *g, const char *name, shape_edit *edits) {
    Onnx__ValueInfoProto **lists[] = {g->input, g->output, g->value_info};
    size_t counts[] = {g->n_input, g->n_output, g->n_value_info};
    size_t n = 0;
    for (size_t l = 0; l < AIM_ARRAY_LEN(lists); l++)
        for (size_t i = 0; i < counts[l]; i++) {
            if (!names_equal(lists[l][i]->name, name)) continue;
            if (edits) edits[n] = (shape_edit){.vi = lists[l][i]};
            n++;
        }
    return n;
}

static aim_status shape_check(const aim_model *m, const char *name, int rank, const int64_t *dims) {
    if (!graph_of(m) || !name || (rank > 0 && !dims)) return null_arg("aim_model_set_shape");
    if (rank < 0) return aim_error(AIM_ERR_INVALID_ARG, "'%s': negative rank %d", name, rank);
    if (rank > AIM_MAX_RANK)
        return aim_error(AIM_ERR_UNSUPPORTED, "'%s': rank %d is over aim's limit of %d", name, rank,
                         AIM_MAX_RANK);
    for (int i = 0; i < rank; i++)
        if (dims[i] < 0)
            return aim_error(AIM_ERR_INVALID_ARG, "'%s': dimension %d is negative (%lld)", name, i,
                             (long long)dims[i]);
    return AIM_OK;
}

aim_status aim_model_set_shape(aim_model *m, const char *name, int rank, const int64_t *dims) {
    aim_status st = shape_check(m, name, rank, dims);
    if (st != AIM_OK) return st;
    Onnx__GraphProto *g = graph_of(m);
    size_t n = shape_targets(g, name, NULL);
    if (n == 0)
        return aim_error(AIM_ERR_NOT_FOUND, "no graph input, output or value_info named '%s'",
                         name);
    shape_edit *edits = calloc(n, sizeof *edits);
    if (!edits) return no_memory();
    shape_targets(g, name, edits);
    for (size_t i = 0; i < n && st == AIM_OK; i++)
        st = shape_prepare(&edits[i], rank, dims);
    for (size_t i = 0; i < n; i++) {
        if (st == AIM_OK)
            shape_commit(&edits[i]);
        else
            shape_edit_free(&edits[i]);
    }
    free(edits);
    return st;
}

/* ---- Initializers -------------------------------------------------------------------------- */

size_t aim_model_initializer_count(const aim_model *m) {
    const Onnx__GraphProto *g = graph_of(m);
    return g ? g->n_initializer : 0;
}

static aim_status fill_tensor_info(const Onnx__TensorProto *t, aim_tensor_info *out) {
    memset(out, 0, sizeof *out);
    out->name = str_or_empty(t->name);
    out->dtype = t->data_type;
    if (t->n_dims > AIM_MAX_RANK)
        return aim_error(AIM_ERR_UNSUPPORTED,
                         "initializer '%s' has rank %zu; aim supports up to %d", out->name,
                         t->n_dims, AIM_MAX_RANK);
    out->rank = (int)t->n_dims;
    for (size_t i = 0; i < t->n_dims; i++)
        out->dims[i] = t->dims[i];
    aim_status st = aim_onnx_tensor_count(t, SIZE_MAX, &out->element_count);
    if (st != AIM_OK) return st;
    if (!aim_mul_size(out->element_count, aim_dtype_size(t->data_type), &out->byte_size))
        return aim_error(AIM_ERR_LIMIT, "initializer '%s': byte size overflows", out->name);
    out->external =
        t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    return AIM_OK;
}

aim_status aim_model_initializer(const aim_model *m, size_t i, aim_tensor_info *out) {
    const Onnx__GraphProto *g = graph_of(m);
    if (!g || !out) return null_arg("aim_model_initializer");
    if (i >= g->n_initializer)
        return aim_error(AIM_ERR_INVALID_ARG,
                         "initializer index %zu is out of range (%zu initializers)", i,
                         g->n_initializer);
    return fill_tensor_info(g->initializer[i], out);
}

/* Removes and frees every graph input named `name`. */
static void remove_inputs_named(Onnx__GraphProto *g, const char *name) {
    for (size_t i = g->n_input; i-- > 0;) {
        if (!names_equal(g->input[i]->name, name)) continue;
        Onnx__ValueInfoProto *vi = g->input[i];
        remove_at(g->input, &g->n_input, i);
        onnx__value_info_proto__free_unpacked(vi, NULL);
    }
}

aim_status aim_model_initializer_remove(aim_model *m, const char *name) {
    Onnx__GraphProto *g = graph_of(m);
    if (!g || !name) return null_arg("aim_model_initializer_remove");
    size_t i = 0;
    while (i < g->n_initializer && !names_equal(g->initializer[i]->name, name))
        i++;
    if (i == g->n_initializer)
        return aim_error(AIM_ERR_NOT_FOUND, "no initializer named '%s'", name);
    bool *keep = blob_marks_alloc(m);
    if (!keep) return no_memory();
    Onnx__TensorProto *t = g->initializer[i];
    remove_at(g->initializer, &g->n_initializer, i);
    prune_blobs(m, keep);
    onnx__tensor_proto__free_unpacked(t, NULL);
    remove_inputs_named(g, name);
    return AIM_OK;
}

/* ---- Nodes --------------------------------------------------------------------------------- */

size_t aim_model_node_count(const aim_model *m) {
    const Onnx__GraphProto *g = graph_of(m);
    return g ? g->n_node : 0;
}

static aim_status node_index_check(const Onnx__GraphProto *g, size_t i) {
    if (i >= g->n_node)
        return aim_error(AIM_ERR_INVALID_ARG, "node index %zu is out of range (%zu nodes)", i,
                         g->n_node);
    return AIM_OK;
}

aim_status aim_model_node(const aim_model *m, size_t i, aim_node_info *out) {
    const Onnx__GraphProto *g = graph_of(m);
    if (!g || !out) return null_arg("aim_model_node");
    aim_status st = node_index_check(g, i);
    if (st != AIM_OK) return st;
    const Onnx__NodeProto *node = g->node[i];
    out->name = str_or_empty(node->name);
    out->op_type = str_or_empty(node->op_type);
    out->domain = str_or_empty(node->domain);
    out->input_count = node->n_input;
    out->inputs = (const char *const *)node->input;
    out->output_count = node->n_output;
    out->outputs = (const char *const *)node->output;
    return AIM_OK;
}

aim_status aim_model_node_set_name(aim_model *m, size_t i, const char *name) {
    Onnx__GraphProto *g = graph_of(m);
    if (!g || !name) return null_arg("aim_model_node_set_name");
    aim_status st = node_index_check(g, i);
    if (st != AIM_OK) return st;
    return replace_string(&g->node[i]->name, name);
}

aim_status aim_model_node_remove(aim_model *m, size_t i) {
    Onnx__GraphProto *g = graph_of(m);
    if (!g) return null_arg("aim_model_node_remove");
    aim_status st = node_index_check(g, i);
    if (st != AIM_OK) return st;
    bool *keep = blob_marks_alloc(m);
    if (!keep) return no_memory();
    Onnx__NodeProto *node = g->node[i];
    remove_at(g->node, &g->n_node, i);
    prune_blobs(m, keep); /* a Constant's value may be an external tensor */
    onnx__node_proto__free_unpacked(node, NULL);
    return AIM_OK;
}

/* ---- metadata_props ------------------------------------------------------------------------ */

size_t aim_model_meta_count(const aim_model *m) {
    return m && m->proto ? m->proto->n_metadata_props : 0;
}

const char *aim_model_meta_key(const aim_model *m, size_t i) {
    if (i >= aim_model_meta_count(m)) return NULL;
    return str_or_empty(m->proto->metadata_props[i]->key);
}

const char *aim_model_meta_value(const aim_model *m, size_t i) {
    if (i >= aim_model_meta_count(m)) return NULL;
    return str_or_empty(m->proto->metadata_props[i]->value);
}

static Onnx__StringStringEntryProto *meta_find(const Onnx__ModelProto *p, const char *key) {
    for (size_t i = 0; i < p->n_metadata_props; i++)
        if (names_equal(p->metadata_props[i]->key, key)) return p->metadata_props[i];
    return NULL;
}

const char *aim_model_meta_get(const aim_model *m, const char *key) {
    if (!m || !m->proto || !key) return NULL;
    const Onnx__StringStringEntryProto *e = meta_find(m->proto, key);
    return e ? str_or_empty(e->value) : NULL;
}

static aim_status meta_append(Onnx__ModelProto *p, const char *key, const char *value) {
    Onnx__StringStringEntryProto *e = malloc(sizeof *e);
    char *k = aim_strdup(key), *v = aim_strdup(value);
    Onnx__StringStringEntryProto **grown =
        e && k && v ? realloc(p->metadata_props, (p->n_metadata_props + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(e);
        free(k);
        free(v);
        return no_memory();
    }
    p->metadata_props = grown;
    onnx__string_string_entry_proto__init(e);
    e->key = k;
    e->value = v;
    p->metadata_props[p->n_metadata_props++] = e;
    return AIM_OK;
}

static aim_status meta_check(const aim_model *m, const char *key, const char *fn) {
    if (!m || !m->proto || !key) return null_arg(fn);
    if (!*key) return aim_error(AIM_ERR_INVALID_ARG, "%s: metadata key must not be empty", fn);
    return AIM_OK;
}

aim_status aim_model_meta_set(aim_model *m, const char *key, const char *value) {
    aim_status st = meta_check(m, key, "aim_model_meta_set");
    if (st != AIM_OK) return st;
    if (!value) return null_arg("aim_model_meta_set");
    Onnx__StringStringEntryProto *e = meta_find(m->proto, key);
    if (e) return replace_string(&e->value, value);
    return meta_append(m->proto, key, value);
}

aim_status aim_model_meta_unset(aim_model *m, const char *key) {
    aim_status st = meta_check(m, key, "aim_model_meta_unset");
    if (st != AIM_OK) return st;
    Onnx__ModelProto *p = m->proto;
    size_t removed = 0;
    for (size_t i = p->n_metadata_props; i-- > 0;) {
        if (!names_equal(p->metadata_props[i]->key, key)) continue;
        Onnx__StringStringEntryProto *e = p->metadata_props[i];
        remove_at(p->metadata_props, &p->n_metadata_props, i);
        onnx__string_string_entry_proto__free_unpacked(e, NULL);
        removed++;
    }
    if (!removed) return aim_error(AIM_ERR_NOT_FOUND, "no metadata_props entry '%s'", key);
    return AIM_OK;
}
