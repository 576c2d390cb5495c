/*
 * calib.c: calibration. Images are decoded, resized (Pillow-exact bilinear) and normalised as
 * the model's doc_string says (or the caller's override), unreadable files are skipped with a
 * warning; then the fp32 model runs with every quantized tensor exposed as a graph output, in
 * two passes (min/max, then histograms over the fixed range), and each method turns the
 * statistics into scales.
 */
#include "compile/internal.h"

#include "graph/tensor.h"

#include <stdlib.h>
#include <string.h>

/* The input images feed: `image-` (the conventions), else the first float 4-D input. */
static aim_status find_image_input(const aim_model *m, aim_value_info *vi) {
    size_t n = aim_model_input_count(m);
    for (size_t i = 0; i < n; i++)
        if (aim_model_input(m, i, vi) == AIM_OK && strcmp(vi->name, "image-") == 0) return AIM_OK;
    for (size_t i = 0; i < n; i++)
        if (aim_model_input(m, i, vi) == AIM_OK && vi->dtype == AIM_DTYPE_FLOAT && vi->rank == 4)
            return AIM_OK;
    return aim_error(AIM_ERR_UNSUPPORTED,
                     "the model has no image input ('image-' or a float32 4-D input)");
}

static void apply_override(const aim_compile_preproc *p, aim_image_spec *s) {
    if (!p->set) return;
    if (p->width > 0) s->width = p->width;
    if (p->height > 0) s->height = p->height;
    if (p->channels == 1 || p->channels == 3) s->channels = p->channels;
    if (p->nchw >= 0) s->nchw = p->nchw != 0;
    if (p->has_norm) {
        memcpy(s->means, p->means, sizeof s->means);
        memcpy(s->vars, p->stds, sizeof s->vars);
        s->has_normalisation = true;
    }
}

static aim_status image_spec(aim_compile_ctx *c) {
    aim_value_info vi;
    aim_status st = find_image_input(c->m, &vi);
    if (st != AIM_OK) return st;
    c->image_input = vi.name;
    st = aim_image_spec_parse(&vi, aim_model_doc_string(c->m), &c->spec);
    if (st != AIM_OK && !c->o->preproc.set)
        return aim_error_context(st, "input '%s' (give the pre-processing explicitly)", vi.name);
    if (st != AIM_OK) { /* the override must then say everything */
        aim_error_clear();
        memset(&c->spec, 0, sizeof c->spec);
        c->spec.nchw = true;
        c->spec.channels = 3;
        for (int k = 0; k < 3; k++)
            c->spec.vars[k] = 1;
    }
    apply_override(&c->o->preproc, &c->spec);
    if (c->spec.width <= 0 || c->spec.height <= 0)
        return aim_error(AIM_ERR_INVALID_ARG, "input '%s': image width/height unknown", vi.name);
    return AIM_OK;
}

static aim_status load_one(aim_compile_ctx *c, const char *path, aim_tensor *out) {
    aim_image img = {0}, small = {0};
    aim_status st = aim_image_load(path, c->spec.channels, &img);
    if (st == AIM_OK && (img.width != c->spec.width || img.height != c->spec.height))
        st = aim_image_resize(&img, c->spec.width, c->spec.height, &small);
    if (st == AIM_OK) st = aim_image_to_tensor(small.data ? &small : &img, &c->spec, out);
    aim_image_free(&img);
    aim_image_free(&small);
    return st;
}

aim_status aim_compile_load_images(aim_compile_ctx *c) {
    aim_status st = image_spec(c);
    if (st != AIM_OK) return st;
    size_t want = c->o->calib_size ? c->o->calib_size : c->o->image_count;
    c->images = calloc(c->o->image_count + 1, sizeof *c->images);
    if (!c->images) return aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->o->image_count && c->n_images < want; i++) {
        aim_status one = load_one(c, c->o->images[i], &c->images[c->n_images]);
        if (one == AIM_OK) {
            c->n_images++;
        } else {
            c->skipped++;
            aim_compile_log(c, 1, "skipping '%s': %s", c->o->images[i], aim_last_error());
            aim_error_clear();
        }
        aim_compile_progress(c, "decode", i + 1, c->o->image_count);
    }
    if (c->n_images == 0)
        return aim_error(AIM_ERR_INVALID_ARG,
                         "no usable calibration image (%zu file(s) given, %zu skipped as "
                         "unreadable or not JPEG/PNG)",
                         c->o->image_count, c->skipped);
    size_t hold = 0;
    if (c->n_images >= 2 && c->o->holdout_fraction > 0) {
        hold = (size_t)(c->o->holdout_fraction * (double)c->n_images + 0.5);
        if (hold < 1) hold = 1;
        if (hold >= c->n_images) hold = c->n_images - 1;
    }
    c->n_calib = c->n_images - hold;
    return AIM_OK;
}

/* ---- Statistics ---------------------------------------------------------------------------- */

/* One pass over the calibration images: pass 0 observes ranges, pass 1 fills histograms. */
static aim_status pass(aim_compile_ctx *c, aim_session *s, const int *slot, size_t n_out,
                       int which) {
    aim_tensor *outs = calloc(n_out + 1, sizeof *outs);
    if (!outs) return aim_error(AIM_ERR_NOMEM, "out of memory");
    aim_status st = AIM_OK;
    for (size_t img = 0; img < c->n_calib && st == AIM_OK; img++) {
        if (n_out && (st = aim_compile_run_image(c, s, img, outs)) != AIM_OK) break;
        for (size_t a = 0; a < c->n_acts; a++) {
            const aim_tensor *t = slot[a] >= 0 ? &outs[slot[a]] : &c->images[img];
            if (which == 0)
                aim_quant_stats_observe(&c->stats[a], t->data, aim_tensor_count(t));
            else
                aim_quant_stats_hist(&c->stats[a], t->data, aim_tensor_count(t));
        }
        if (n_out) aim_compile_free_outputs(outs, n_out);
        aim_compile_progress(c, which == 0 ? "range" : "histogram", img + 1, c->n_calib);
    }
    free(outs);
    return st;
}

aim_status aim_compile_collect(aim_compile_ctx *c) {
    c->stats = calloc(c->n_acts + 1, sizeof *c->stats);
    const char **names = calloc(c->n_acts + 1, sizeof *names);
    int *slot = calloc(c->n_acts + 1, sizeof *slot);
    size_t n_out = 0;
    aim_status st = c->stats && names && slot ? AIM_OK : aim_error(AIM_ERR_NOMEM, "out of memory");
    for (size_t a = 0; a < c->n_acts && st == AIM_OK; a++) {
        aim_quant_stats_init(&c->stats[a]);
        const aim_compile_tensor *t = &c->t[c->acts[a]];
        if (t->producer < 0) { /* the image input itself: read from the decoded tensors */
            slot[a] = -1;
            continue;
        }
        slot[a] = (int)n_out;
        names[n_out++] = t->name;
    }
    aim_compile_runner r = {0};
    if (st == AIM_OK && n_out) st = aim_compile_runner_open(c, c->m, names, n_out, &r);
    if (st == AIM_OK) st = pass(c, r.s, slot, n_out, 0);
    for (size_t a = 0; a < c->n_acts && st == AIM_OK; a++)
        aim_quant_stats_begin_hist(&c->stats[a]);
    if (st == AIM_OK) st = pass(c, r.s, slot, n_out, 1);
    aim_compile_runner_close(&r);
    free(names);
    free(slot);
    return st == AIM_OK ? st : aim_error_context(st, "calibration");
}

void aim_compile_choose(aim_compile_ctx *c, aim_calib_method m, aim_quant_params *out) {
    for (size_t a = 0; a < c->n_acts; a++)
        aim_quant_choose(&c->stats[a], m, &out[a]);
}
