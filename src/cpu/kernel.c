/*
 * kernel.c: the kernel object shared by every fast operator: a oneDNN primitive with its
 * layouts and load-time re-laid-out constants, reorders, and running a kernel inside a run.
 */
#include "cpu/internal.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dnnl_format_tag_t aim_cpu_plain_tag(int rank) {
    static const dnnl_format_tag_t tags[] = {
        dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc, dnnl_abcd, dnnl_abcde, dnnl_abcdef};
    return rank >= 1 && rank <= 6 ? tags[rank] : dnnl_format_tag_undef;
}

dnnl_status_t aim_cpu_plain_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims) {
    dnnl_format_tag_t tag = aim_cpu_plain_tag(rank);
    if (tag == dnnl_format_tag_undef) return dnnl_unimplemented;
    dnnl_dims_t d;
    for (int i = 0; i < rank; i++)
        d[i] = dims[i];
    return dnnl_memory_desc_init_by_tag(md, rank, d, dnnl_f32, tag);
}

aim_cpu_kernel *aim_cpu_kernel_new(const char *name) {
    aim_cpu_kernel *k = calloc(1, sizeof *k);
    if (k) snprintf(k->name, sizeof k->name, "%s", name);
    return k;
}

void aim_cpu_kernel_free(aim_cpu_kernel *k) {
    if (!k) return;
    if (k->prim) dnnl_primitive_destroy(k->prim);
    for (int i = 0; i < k->n_const; i++)
        free(k->const_data[i]);
    free(k->state);
    free(k);
}

const char *aim_cpu_kernel_name(const aim_cpu_kernel *k) {
    return k->name;
}

bool aim_cpu_chan_layout_of(const dnnl_memory_desc_t *md, aim_cpu_chan_layout *out) {
    const dnnl_blocking_desc_t *blk = &md->format_desc.blocking;
    if (md->ndims != 4 || md->format_kind != dnnl_blocked || md->offset0 != 0) return false;
    if (blk->inner_nblks > 1 || (blk->inner_nblks == 1 && blk->inner_idxs[0] != 1)) return false;
    out->block = blk->inner_nblks ? blk->inner_blks[0] : 1;
    out->n = md->dims[0];
    out->blocks = md->padded_dims[1] / out->block;
    out->h = md->dims[2];
    out->w = md->dims[3];
    for (int i = 0; i < 4; i++)
        out->s[i] = blk->strides[i];
    return true;
}

bool aim_cpu_avx2_kernels_available(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           (isa == dnnl_cpu_isa_avx2 || isa == dnnl_cpu_isa_avx2_vnni);
#else
    return false;
#endif
}

bool aim_cpu_own_layouts(const aim_cpu_build *b, dnnl_memory_desc_t *src, dnnl_memory_desc_t *dst,
                         aim_cpu_chan_layout *in, aim_cpu_chan_layout *out) {
    const aim_tensor *x = aim_cpu_in(b, b->node, 0), *y = aim_cpu_out(b);
    if (!x || x->rank != 4 || y->rank != 4 || b->plain_dst || x->dims[1] % 8 || y->dims[1] % 8)
        return false;
    dnnl_dims_t xd = {x->dims[0], x->dims[1], x->dims[2], x->dims[3]};
    dnnl_dims_t yd = {y->dims[0], y->dims[1], y->dims[2], y->dims[3]};
    *src = *b->src_md[0];
    if (!aim_cpu_chan_layout_of(src, in) || in->block % 8)
        if (dnnl_memory_desc_init_by_tag(src, 4, xd, dnnl_f32, dnnl_aBcd8b) != dnnl_success ||
            !aim_cpu_chan_layout_of(src, in))
            return false;
    aim_cpu_like(src, 4, yd, dst);
    return aim_cpu_chan_layout_of(dst, out) && out->block % 8 == 0;
}

bool aim_cpu_own_posts(const aim_cpu_build *b, const dnnl_memory_desc_t *dst, int *n,
                       aim_cpu_post *post) {
    for (int i = 0; i < b->n_post; i++) {
        const aim_cpu_post *q = &b->post[i];
        bool known = q->alg == dnnl_eltwise_relu || q->alg == dnnl_eltwise_clip ||
                     q->alg == dnnl_eltwise_hardswish || q->alg == dnnl_eltwise_logistic ||
                     q->alg == dnnl_eltwise_swish;
        if (!q->sum && !known) return false;
        post[i] = *q;
        if (q->sum) post[i].src1_md = *dst;
    }
    *n = b->n_post;
    return true;
}

void aim_cpu_own_io(aim_cpu_kernel *k, const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *dst,
                    int n, const aim_cpu_post *post) {
    k->n_src = 1;
    k->src_md[0] = *src;
    for (int i = 0; i < n && k->n_src < AIM_CPU_MAX_SRC; i++)
        if (post[i].sum) k->src_md[k->n_src++] = post[i].src1_md;
    k->dst_md = *dst;
}

/* Keeps the primitive, its destination layout and scratchpad size; destroys pd. */
aim_status aim_cpu_kernel_finish(aim_cpu_kernel *k, dnnl_primitive_desc_t pd, int dst_arg) {
    const dnnl_memory_desc_t *dst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    aim_status st = AIM_OK;
    if (!dst || dnnl_primitive_create(&k->prim, pd) != dnnl_success)
        st = aim_error(AIM_ERR_UNSUPPORTED, "oneDNN primitive creation failed");
    else {
        k->dst_md = *dst;
        k->dst_arg = dst_arg;
        k->scratch_bytes = sp ? dnnl_memory_desc_get_size(sp) : 0;
    }
    dnnl_primitive_desc_destroy(pd);
    return st;
}

aim_cpu_kernel *aim_cpu_kernel_complete(aim_cpu_kernel *k, dnnl_primitive_desc_t pd,
                                        bool constants_ok) {
    if (!constants_ok) dnnl_primitive_desc_destroy(pd);
    if (!constants_ok || aim_cpu_kernel_finish(k, pd, DNNL_ARG_DST) != AIM_OK) {
        aim_cpu_kernel_free(k);
        return NULL;
    }
    return k;
}

static dnnl_status_t reorder_once(dnnl_engine_t engine, const dnnl_memory_desc_t *from,
                                  const void *src, const dnnl_memory_desc_t *to, void *dst) {
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t a = NULL, b = NULL;
    dnnl_stream_t stream = NULL;
    dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&prim, pd);
    if (st == dnnl_success) st = dnnl_memory_create(&a, from, engine, (void *)src);
    if (st == dnnl_success) st = dnnl_memory_create(&b, to, engine, dst);
    if (st == dnnl_success) st = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, a}, {DNNL_ARG_TO, b}};
    /* One thread: weights are small, and a busy machine makes OpenMP teams slow to start. */
    int old = aim_cpu_set_threads(1);
    if (st == dnnl_success) st = dnnl_primitive_execute(prim, stream, 2, args);
    if (st == dnnl_success) st = dnnl_stream_wait(stream);
    aim_cpu_set_threads(old);
    if (stream) dnnl_stream_destroy(stream);
    if (a) dnnl_memory_destroy(a);
    if (b) dnnl_memory_destroy(b);
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return st;
}

aim_status aim_cpu_kernel_const(aim_cpu_kernel *k, dnnl_engine_t engine,
                                const dnnl_primitive_desc_t pd, dnnl_query_t what, int index,
                                int arg, const dnnl_memory_desc_t *from, const void *data) {
    const dnnl_memory_desc_t *to = dnnl_primitive_desc_query_md(pd, what, index);
    if (!to || k->n_const >= 2) return aim_error(AIM_ERR_INTERNAL, "no constant layout");
    size_t bytes = dnnl_memory_desc_get_size(to);
    /* 64-byte aligned and zeroed: blocked layouts pad channels, and the padding must be 0. */
    void *buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!buf) return aim_error(AIM_ERR_NOMEM, "out of memory");
    memset(buf, 0, bytes);
    if (reorder_once(engine, from, data, to, buf) != dnnl_success) {
        free(buf);
        return aim_error(AIM_ERR_UNSUPPORTED, "cannot re-lay out a constant");
    }
    k->const_arg[k->n_const] = arg;
    k->const_md[k->n_const] = *to;
    k->const_data[k->n_const++] = buf;
    return AIM_OK;
}

dnnl_primitive_attr_t aim_cpu_attr(const aim_cpu_build *b) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    bool ok =
        dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success;
    if (ok && b && b->n_post > 0) {
        ok = dnnl_post_ops_create(&ops) == dnnl_success;
        for (int i = 0; ok && i < b->n_post; i++) {
            const aim_cpu_post *p = &b->post[i];
            ok = (p->sum ? dnnl_post_ops_append_binary(ops, dnnl_binary_add, &p->src1_md)
                         : dnnl_post_ops_append_eltwise(ops, 1.0f, p->alg, p->alpha, p->beta)) ==
                 dnnl_success;
        }
        ok = ok && dnnl_primitive_attr_set_post_ops(attr, ops) == dnnl_success;
        if (ops) dnnl_post_ops_destroy(ops);
    }
    if (!ok) {
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    return attr;
}

void aim_cpu_kernel_post_srcs(aim_cpu_kernel *k, const aim_cpu_build *b) {
    for (int i = 0; i < b->n_post && k->n_src < AIM_CPU_MAX_SRC; i++)
        if (b->post[i].sum) {
            k->src_arg[k->n_src] = DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1;
            k->src_md[k->n_src++] = b->post[i].src1_md;
        }
}

bool aim_cpu_slow_fusion(const aim_cpu_build *b, const_dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    if (b->n_post == 0 && !b->bn) return false;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success)
        return false;
    return impl && strncmp(impl, "ref", 3) == 0;
}

aim_cpu_kernel *aim_cpu_reorder_create(dnnl_engine_t engine, const dnnl_memory_desc_t *from,
                                       const dnnl_memory_desc_t *to) {
    aim_cpu_kernel *k = aim_cpu_kernel_new("reorder");
    dnnl_primitive_attr_t attr = aim_cpu_attr(NULL);
    dnnl_primitive_desc_t pd = NULL;
    if (!k || !attr ||
        dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, attr) != dnnl_success) {
        if (attr) dnnl_primitive_attr_destroy(attr);
        aim_cpu_kernel_free(k);
        return NULL;
    }
    dnnl_primitive_attr_destroy(attr);
    k->n_src = 1;
    k->src_arg[0] = DNNL_ARG_FROM;
    k->src_md[0] = *from;
    if (aim_cpu_kernel_finish(k, pd, DNNL_ARG_TO) != AIM_OK) {
        aim_cpu_kernel_free(k);
        return NULL;
    }
    return k;
}

/* ---- Running ------------------------------------------------------------------------------- */

struct aim_cpu_run {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int old_threads;
    int threads; /* the session's count */
    int current; /* the count set now */
};

int aim_cpu_set_threads(int threads) {
    int old = omp_get_max_threads();
    /* libgomp keeps this per calling thread, so concurrent runs with their own counts do not
     * disturb each other; oneDNN reads it when it creates and executes primitives. */
    if (threads > 0) omp_set_num_threads(threads);
    return old;
}

void aim_cpu_parallel_for(int threads, size_t n, void (*fn)(void *ctx, size_t begin, size_t end),
                          void *ctx) {
    if (n == 0) return;
    if (threads <= 1 || n == 1) {
        fn(ctx, 0, n);
        return;
    }
    int teams = n < (size_t)threads ? (int)n : threads;
#pragma omp parallel num_threads(teams)
    {
        size_t t = (size_t)omp_get_thread_num(), k = (size_t)omp_get_num_threads();
        size_t begin = n * t / k, end = n * (t + 1) / k;
        if (begin < end) fn(ctx, begin, end);
    }
}

aim_status aim_cpu_run_begin(const aim_cpu_plan *p, int threads, aim_cpu_run **out) {
    *out = NULL;
    if (!p->engine) return AIM_OK;
    aim_cpu_run *r = calloc(1, sizeof *r);
    if (!r) return aim_error(AIM_ERR_NOMEM, "out of memory");
    r->engine = p->engine;
    if (dnnl_stream_create(&r->stream, r->engine, dnnl_stream_default_flags) != dnnl_success) {
        free(r);
        return aim_error(AIM_ERR_INTERNAL, "cannot create a oneDNN stream");
    }
    r->old_threads = aim_cpu_set_threads(threads);
    r->threads = r->current = threads;
    *out = r;
    return AIM_OK;
}

void aim_cpu_run_end(aim_cpu_run *r) {
    if (!r) return;
    aim_cpu_set_threads(r->old_threads);
    dnnl_stream_destroy(r->stream);
    free(r);
}

aim_status aim_cpu_kernel_run(aim_cpu_run *r, const aim_cpu_kernel *k, void *const *src, void *dst,
                              void *scratch) {
    /* Small kernels were made for fewer threads (see plan.c): run them on that many. */
    int want = k->threads > 0 && k->threads < r->threads ? k->threads : r->threads;
    if (k->custom) {
        k->custom(k, src, dst, scratch, want);
        return AIM_OK;
    }
    if (want != r->current) {
        aim_cpu_set_threads(want);
        r->current = want;
    }
    dnnl_exec_arg_t args[AIM_CPU_MAX_SRC + 4] = {{0, NULL}};
    int n = 0;
    dnnl_status_t st = dnnl_success;
    for (int i = 0; i < k->n_src && st == dnnl_success; i++, n++) {
        args[n].arg = k->src_arg[i];
        st = dnnl_memory_create(&args[n].memory, &k->src_md[i], r->engine, src[i]);
    }
    for (int i = 0; i < k->n_const && st == dnnl_success; i++, n++) {
        args[n].arg = k->const_arg[i];
        st = dnnl_memory_create(&args[n].memory, &k->const_md[i], r->engine, k->const_data[i]);
    }
    if (st == dnnl_success) {
        args[n].arg = k->dst_arg;
        st = dnnl_memory_create(&args[n++].memory, &k->dst_md, r->engine, dst);
    }
    if (st == dnnl_success && k->scratch_bytes) {
        dnnl_memory_desc_t md;
        dnnl_dims_t d = {(dnnl_dim_t)k->scratch_bytes};
        st = dnnl_memory_desc_init_by_tag(&md, 1, d, dnnl_u8, dnnl_a);
        args[n].arg = DNNL_ARG_SCRATCHPAD;
        if (st == dnnl_success) st = dnnl_memory_create(&args[n++].memory, &md, r->engine, scratch);
    }
    if (st == dnnl_success) st = dnnl_primitive_execute(k->prim, r->stream, n, args);
    if (st == dnnl_success) st = dnnl_stream_wait(r->stream);
    for (int i = 0; i < n; i++)
        if (args[i].memory) dnnl_memory_destroy(args[i].memory);
    if (st != dnnl_success)
        return aim_error(AIM_ERR_INTERNAL, "oneDNN kernel %s failed (status %d)", k->name, (int)st);
    return AIM_OK;
}
