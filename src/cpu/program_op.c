/*
 * program_op.c: the ONNX kernel for `AimProgram` nodes (domain ai.aim): a compiled int8
 * program carried as bytes in the node's `program` attribute, executed on oneDNN.
 *
 * Everything that can refuse a program happens in prepare, at load time: the bytes are
 * deserialized (format version, checksum, validation), the node's `target` must agree with
 * the program's, the machine must have the CPU features the program needs, and the oneDNN
 * primitives are built once. infer then only reports the program's static float32 output
 * shapes, and run only executes.
 */
#include "cpu/program_op.h"
#include "cpu/program.h"
#include "ops/op.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    aim_program *program;
    aim_program_exec *exec;
} program_state;

static void program_release(void *state) {
    program_state *s = state;
    if (!s) return;
    aim_program_exec_free(s->exec);
    aim_program_free(s->program);
    free(s);
}

/* The node's `target` attribute, when present, must name the program's target. */
static aim_status check_target(aim_op_ctx *c, const aim_program *p) {
    const Onnx__AttributeProto *a = aim_op_attr(c, AIM_PROGRAM_ATTR_TARGET);
    if (!a) return AIM_OK;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
        return aim_op_fail(c, AIM_ERR_PARSE, "attribute 'target' is not a string");
    size_t n = strlen(p->target);
    if (a->s.len != n || memcmp(a->s.data, p->target, n) != 0)
        return aim_op_fail(c, AIM_ERR_PARSE,
                           "attribute 'target' disagrees with the program's "
                           "target '%s'",
                           p->target);
    return AIM_OK;
}

static aim_status load_program(aim_op_ctx *c, program_state *s) {
    const Onnx__AttributeProto *a = aim_op_attr(c, AIM_PROGRAM_ATTR_PROGRAM);
    if (!a || a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
        return aim_op_fail(c, AIM_ERR_PARSE, "needs the bytes attribute 'program'");
    aim_status st = aim_program_deserialize(a->s.data, a->s.len, &s->program);
    if (st == AIM_OK) st = aim_program_check_runnable(s->program);
    if (st != AIM_OK) return aim_op_fail(c, st, "%s", aim_last_error());
    if ((st = check_target(c, s->program)) != AIM_OK) return st;
    if ((size_t)c->n_in != s->program->n_inputs || (size_t)c->n_out != s->program->n_outputs)
        return aim_op_fail(c, AIM_ERR_PARSE,
                           "has %d inputs and %d outputs, its program %zu "
                           "and %zu",
                           c->n_in, c->n_out, s->program->n_inputs, s->program->n_outputs);
    st = aim_program_exec_create(s->program, c->threads, &s->exec);
    return st == AIM_OK ? AIM_OK : aim_op_fail(c, st, "%s", aim_last_error());
}

static aim_status program_prepare(aim_op_ctx *c) {
    program_state *s = calloc(1, sizeof *s);
    if (!s) return aim_error(AIM_ERR_NOMEM, "out of memory");
    aim_status st = load_program(c, s);
    if (st != AIM_OK) {
        program_release(s);
        return st;
    }
    c->state = s;
    return AIM_OK;
}

/* An input must be float32 with the program's shape (when its shape is known). */
static aim_status check_input(aim_op_ctx *c, const aim_prog_tensor *want, int i) {
    const aim_tensor *t = aim_op_input(c, i);
    if (!t) return aim_op_fail(c, AIM_ERR_PARSE, "input %d is missing", i);
    if (t->dtype != AIM_DTYPE_FLOAT)
        return aim_op_fail(c, AIM_ERR_PARSE, "input %d is %s, the program takes float32", i,
                           aim_dtype_name(t->dtype));
    if (t->rank == AIM_RANK_UNKNOWN) return AIM_OK;
    bool same = t->rank == want->rank;
    for (int d = 0; same && d < t->rank; d++)
        same = t->dims[d] == want->dims[d];
    if (!same)
        return aim_op_fail(c, AIM_ERR_PARSE,
                           "input %d's shape differs from the program's "
                           "input tensor '%s'",
                           i, want->name ? want->name : "");
    return AIM_OK;
}

static aim_status program_infer(aim_op_ctx *c) {
    const program_state *s = c->state;
    if (!s) return aim_op_fail(c, AIM_ERR_INTERNAL, "not prepared");
    const aim_program *p = s->program;
    for (size_t i = 0; i < p->n_inputs; i++) {
        aim_status st = check_input(c, &p->tensors[p->inputs[i]], (int)i);
        if (st != AIM_OK) return st;
    }
    for (size_t i = 0; i < p->n_outputs; i++) {
        const aim_prog_tensor *t = &p->tensors[p->outputs[i]];
        aim_status st = aim_op_set_output(c, (int)i, AIM_DTYPE_FLOAT, t->rank, t->dims);
        if (st != AIM_OK) return st;
    }
    return AIM_OK;
}

static aim_status program_run(aim_op_ctx *c) {
    const program_state *s = c->state;
    const aim_program *p = s->program;
    const float *in[AIM_PROGRAM_MAX_INPUTS];
    float *out[AIM_PROGRAM_MAX_INPUTS];
    float *unused[AIM_PROGRAM_MAX_INPUTS] = {NULL};
    for (size_t i = 0; i < p->n_inputs; i++)
        in[i] = c->in[i]->data;
    aim_status st = AIM_OK;
    for (size_t i = 0; i < p->n_outputs && st == AIM_OK; i++) {
        if (c->out[i])
            out[i] = c->out[i]->data;
        else if (!(out[i] = unused[i] =
                       malloc(aim_program_tensor_count(&p->tensors[p->outputs[i]]) *
                              sizeof(float)))) /* not requested */
            st = aim_error(AIM_ERR_NOMEM, "out of memory");
    }
    if (st == AIM_OK) st = aim_program_exec_run(s->exec, in, out, c->threads);
    for (size_t i = 0; i < p->n_outputs; i++)
        free(unused[i]);
    return st == AIM_OK ? AIM_OK : aim_op_fail(c, st, "%s", aim_last_error());
}

const aim_op_def aim_cpu_program_op = {
    .op_type = AIM_PROGRAM_OP_TYPE,
    .domain = AIM_PROGRAM_DOMAIN,
    .since = 1,
    .until = INT_MAX,
    .prepare = program_prepare,
    .infer = program_infer,
    .run = program_run,
    .release = program_release,
};
