/*
 * cli_util.c: helpers shared by the model subcommands (see cli_util.h).
 */
#include "cli_util.h"

#include "accel.h"
#include "cli.h"
#include "onnx/onnx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool aim_cli_load(const char *cmd, const char *path, aim_model **m) {
    aim_status st = aim_model_load(path, m);
    if (st == AIM_OK) return true;
    aim_cli_fail_status(cmd, st);
    return false;
}

bool aim_cli_save(const char *cmd, aim_model *m, const char *path) {
    aim_status st = aim_model_save(m, path);
    if (st == AIM_OK) return true;
    aim_cli_fail_status(cmd, st);
    return false;
}

const char *aim_cli_option_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        aim_cli_fail(cmd, "%s needs a value (see --help)", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

bool aim_cli_split_pair(const char *arg, char **key, const char **value) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) return false;
    size_t n = (size_t)(eq - arg);
    *key = malloc(n + 1);
    if (!*key) return false;
    memcpy(*key, arg, n);
    (*key)[n] = '\0';
    *value = eq + 1;
    return true;
}

bool aim_cli_parse_dims(const char *text, int *rank, int64_t dims[AIM_MAX_RANK]) {
    int n = 0;
    const char *p = text;
    for (;;) {
        if (*p < '0' || *p > '9' || n == AIM_MAX_RANK) return false;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno || v <= 0) return false;
        dims[n++] = v;
        if (*end == '\0') break;
        if (*end != 'x') return false;
        p = end + 1;
    }
    *rank = n;
    return true;
}

void aim_cli_format_shape(const aim_value_info *v, char *buf, size_t size) {
    if (size == 0) return;
    if (v->rank < 0) {
        snprintf(buf, size, "unknown");
        return;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i <= v->rank && used < size; i++) {
        const char *sep = i == 0 ? "[" : ",";
        int n;
        if (i == v->rank)
            n = snprintf(buf + used, size - used, "%s]", i == 0 ? "[" : "");
        else if (v->dims[i].value >= 0)
            n = snprintf(buf + used, size - used, "%s%lld", sep, (long long)v->dims[i].value);
        else
            n = snprintf(buf + used, size - used, "%s%s", sep,
                         v->dims[i].param && v->dims[i].param[0] ? v->dims[i].param : "?");
        if (n < 0) break;
        used += (size_t)n;
    }
}

bool aim_cli_shape_static(const aim_value_info *v) {
    if (v->rank < 0) return false;
    for (int i = 0; i < v->rank; i++)
        if (v->dims[i].value < 0) return false;
    return true;
}

void aim_cli_json_value_info(aim_json_writer *w, const aim_value_info *v) {
    aim_json_begin_object(w);
    aim_json_key(w, "name");
    aim_json_string(w, v->name);
    aim_json_key(w, "type");
    aim_json_string(w, v->dtype ? aim_dtype_name(v->dtype) : "unknown");
    aim_json_key(w, "shape");
    if (v->rank < 0) {
        aim_json_null(w);
    } else {
        aim_json_begin_array(w);
        for (int i = 0; i < v->rank; i++) {
            if (v->dims[i].value >= 0)
                aim_json_int(w, v->dims[i].value);
            else if (v->dims[i].param && v->dims[i].param[0])
                aim_json_string(w, v->dims[i].param);
            else
                aim_json_null(w);
        }
        aim_json_end_array(w);
    }
    aim_json_end_object(w);
}

void aim_cli_shell_quote(const char *s, char *buf, size_t size) {
    if (size == 0) return;
    if (s[0] &&
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,:/=+@%") ==
            strlen(s)) {
        snprintf(buf, size, "%s", s);
        return;
    }
    aim_strbuf sb;
    aim_strbuf_init(&sb);
    aim_strbuf_puts(&sb, "'");
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            aim_strbuf_puts(&sb, "'\\''");
        else
            aim_strbuf_append(&sb, p, 1);
    }
    aim_strbuf_puts(&sb, "'");
    snprintf(buf, size, "%s", sb.failed ? s : sb.data);
    aim_strbuf_free(&sb);
}

/* ---- Accelerator nodes --------------------------------------------------------------------- */

static bool is_op(const Onnx__NodeProto *n, const char *op_type, const char *domain) {
    return n->op_type && strcmp(n->op_type, op_type) == 0 && n->domain &&
           strcmp(n->domain, domain) == 0;
}

/* Fills `a` when n is a HailoOp or AimProgram node. */
static bool describe_accel(const Onnx__NodeProto *n, aim_cli_accel *a) {
    bool hailo = is_op(n, AIM_HAILO_OP_TYPE, AIM_HAILO_DOMAIN);
    if (!hailo && !is_op(n, AIM_ACCEL_OP_TYPE, AIM_ACCEL_DOMAIN)) return false;
    memset(a, 0, sizeof *a);
    a->node_name = n->name ? n->name : "";
    a->op_type = n->op_type;
    a->domain = n->domain;
    a->magic_ok = true;
    const Onnx__AttributeProto *payload =
        aim_onnx_node_attr(n, hailo ? AIM_HAILO_ATTR_HEF : AIM_ACCEL_ATTR_PROGRAM);
    if (payload && payload->has_s) {
        a->has_payload = true;
        a->payload = payload->s.len;
        if (hailo)
            a->magic_ok =
                payload->s.len >= AIM_HAILO_HEF_MAGIC_LEN &&
                memcmp(payload->s.data, AIM_HAILO_HEF_MAGIC, AIM_HAILO_HEF_MAGIC_LEN) == 0;
    } else if (hailo) {
        a->magic_ok = false;
    }
    if (hailo) {
        snprintf(a->target, sizeof a->target, "hailo");
    } else {
        const Onnx__AttributeProto *target = aim_onnx_node_attr(n, AIM_ACCEL_ATTR_TARGET);
        if (target && target->has_s && target->s.data)
            snprintf(a->target, sizeof a->target, "%.*s",
                     (int)(target->s.len < sizeof a->target ? target->s.len : sizeof a->target),
                     (const char *)target->s.data);
    }
    return true;
}

size_t aim_cli_find_accel(const aim_model *m, aim_cli_accel *out, size_t max) {
    const Onnx__ModelProto *proto = aim_model_proto(m);
    if (!proto->graph) return 0;
    size_t found = 0;
    for (size_t i = 0; i < proto->graph->n_node; i++) {
        aim_cli_accel a;
        if (!describe_accel(proto->graph->node[i], &a)) continue;
        if (found < max) out[found] = a;
        found++;
    }
    return found;
}

/* ---- Targets ------------------------------------------------------------------------------- */

void aim_cli_print_targets(FILE *out) {
#define AIM_TARGET_ROW(name, desc) fprintf(out, "  %-10s %s\n", name, desc);
    AIM_TARGET_LIST(AIM_TARGET_ROW)
#undef AIM_TARGET_ROW
}

void aim_cli_explain_target(const char *cmd, const char *value) {
    const char *right = aim_target_correction(value);
    if (right)
        aim_cli_fail(cmd,
                     "chip '%s' is a known-wrong spelling (the vendor's update script writes it); "
                     "use '%s'",
                     value, right);
    else
        aim_cli_fail(cmd, "chip '%s' is not a known target", value);
    fprintf(stderr, "known targets:\n");
    aim_cli_print_targets(stderr);
}
