/*
 * inputs.c: sorting the files of an extracted toolchain archive into the model, the config and
 * the calibration images, with errors that explain the expected layout.
 */
#include "toolchain.h"

#include "core/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char tc_layout_help[] =
    "An input archive (.zip, .tar, .tar.gz) holds, in any folders:\n"
    "  exactly one ONNX model      model.onnx\n"
    "  at most one JSON config     config.json (optional): start_node_names, end_node_names,\n"
    "                              height, width, channels, nchw, means, stds, target,\n"
    "                              calib_method (auto|minmax|percentile|entropy), calib_size\n"
    "  calibration images          *.jpg, *.jpeg, *.png: at least one, ideally 50-500 images\n"
    "                              like the ones the model will see\n"
    "A bare .onnx file has no calibration images, and int8 compilation needs them.\n";

aim_status tc_list_add(tc_list *l, const char *s) {
    char *copy = aim_strdup(s);
    char **grown = copy ? realloc(l->items, (l->count + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(copy);
        return aim_error(AIM_ERR_NOMEM, "out of memory");
    }
    l->items = grown;
    l->items[l->count++] = copy;
    return AIM_OK;
}

void tc_list_free(tc_list *l) {
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

void tc_inputs_free(tc_inputs *in) {
    free(in->model);
    free(in->model_rel);
    free(in->config);
    free(in->config_rel);
    tc_list_free(&in->images);
    tc_list_free(&in->ignored);
    memset(in, 0, sizeof *in);
}

static bool has_ext(const char *name, const char *ext) {
    size_t n = strlen(name), e = strlen(ext);
    return n > e && strcasecmp(name + n - e, ext) == 0;
}

/* Hidden files, AppleDouble files and anything in a __MACOSX folder. */
static bool is_hidden(const char *rel) {
    for (const char *p = rel; *p;) {
        if (p[0] == '.' || strncmp(p, "__MACOSX/", 9) == 0) return true;
        const char *slash = strchr(p, '/');
        if (!slash) break;
        p = slash + 1;
    }
    return false;
}

typedef enum { KIND_MODEL, KIND_CONFIG, KIND_IMAGE, KIND_OTHER } file_kind;

static file_kind classify(const char *rel) {
    if (is_hidden(rel)) return KIND_OTHER;
    if (has_ext(rel, ".onnx")) return KIND_MODEL;
    if (has_ext(rel, ".json")) return KIND_CONFIG;
    if (has_ext(rel, ".jpg") || has_ext(rel, ".jpeg") || has_ext(rel, ".png")) return KIND_IMAGE;
    return KIND_OTHER;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "a.onnx, b.onnx" (at most a few names) into buf. */
static void join_names(const tc_list *l, char *buf, size_t size) {
    buf[0] = '\0';
    for (size_t i = 0, used = 0; i < l->count && i < 5 && used + 1 < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", l->items[i]);
        if (n < 0) break;
        used += (size_t)n;
    }
    if (l->count > 5) strncat(buf, ", ...", size - strlen(buf) - 1);
}

static aim_status check_counts(const tc_list *models, const tc_list *configs, size_t images) {
    char names[512];
    if (models->count == 0)
        return aim_error(AIM_ERR_INVALID_ARG, "the archive holds no .onnx model.\n%s",
                         tc_layout_help);
    if (models->count > 1) {
        join_names(models, names, sizeof names);
        return aim_error(AIM_ERR_INVALID_ARG,
                         "the archive holds %zu .onnx models (%s); it must hold exactly one.\n%s",
                         models->count, names, tc_layout_help);
    }
    if (configs->count > 1) {
        join_names(configs, names, sizeof names);
        return aim_error(
            AIM_ERR_INVALID_ARG,
            "the archive holds %zu .json files (%s); at most one config is allowed.\n%s",
            configs->count, names, tc_layout_help);
    }
    if (images == 0)
        return aim_error(AIM_ERR_INVALID_ARG,
                         "the archive holds no calibration images (.jpg, .jpeg, .png).\n%s",
                         tc_layout_help);
    return AIM_OK;
}

static aim_status take_paths(const char *dir, const tc_list *models, const tc_list *configs,
                             tc_inputs *out) {
    out->model_rel = aim_strdup(models->items[0]);
    out->model = aim_path_join(dir, models->items[0]);
    bool ok = out->model_rel && out->model;
    if (configs->count == 1) {
        out->config_rel = aim_strdup(configs->items[0]);
        out->config = aim_path_join(dir, configs->items[0]);
        ok = ok && out->config_rel && out->config;
    }
    return ok ? AIM_OK : aim_error(AIM_ERR_NOMEM, "out of memory");
}

static aim_status add_file(const char *dir, const char *rel, tc_list *models, tc_list *configs,
                           tc_inputs *out) {
    switch (classify(rel)) {
    case KIND_MODEL: return tc_list_add(models, rel);
    case KIND_CONFIG: return tc_list_add(configs, rel);
    case KIND_OTHER: return tc_list_add(&out->ignored, rel);
    case KIND_IMAGE: break;
    }
    char *path = aim_path_join(dir, rel);
    if (!path) return aim_error(AIM_ERR_NOMEM, "out of memory");
    aim_status st = tc_list_add(&out->images, path);
    free(path);
    return st;
}

aim_status tc_inputs_scan(const char *dir, char *const *files, size_t count, tc_inputs *out) {
    memset(out, 0, sizeof *out);
    tc_list models = {0}, configs = {0};
    aim_status st = AIM_OK;
    for (size_t i = 0; i < count && st == AIM_OK; i++)
        st = add_file(dir, files[i], &models, &configs, out);
    if (st == AIM_OK) st = check_counts(&models, &configs, out->images.count);
    if (st == AIM_OK) st = take_paths(dir, &models, &configs, out);
    if (st == AIM_OK && out->images.count > 1)
        qsort(out->images.items, out->images.count, sizeof(char *), compare_strings);
    tc_list_free(&models);
    tc_list_free(&configs);
    if (st != AIM_OK) tc_inputs_free(out);
    return st;
}
