/*
 * parallel.c: aim_parallel_for on pthreads (see parallel.h).
 */
#include "core/parallel.h"

#include <pthread.h>

/* Beyond this many chunks the caller's request is clamped (keeps the stack arrays small). */
#define MAX_CHUNKS 64

typedef struct {
    void (*fn)(void *ctx, size_t begin, size_t end);
    void *ctx;
    size_t begin, end;
} chunk;

static void *run_chunk(void *arg) {
    chunk *k = arg;
    k->fn(k->ctx, k->begin, k->end);
    return NULL;
}

void aim_parallel_for(int threads, size_t n, void (*fn)(void *ctx, size_t begin, size_t end),
                      void *ctx) {
    if (n == 0) return;
    size_t parts = threads > 1 ? (size_t)threads : 1;
    if (parts > MAX_CHUNKS) parts = MAX_CHUNKS;
    if (parts > n) parts = n;
    if (parts <= 1) {
        fn(ctx, 0, n);
        return;
    }
    chunk chunks[MAX_CHUNKS];
    pthread_t tids[MAX_CHUNKS];
    int started[MAX_CHUNKS] = {0};
    size_t base = n / parts, extra = n % parts, begin = 0;
    for (size_t i = 0; i < parts; i++) {
        size_t len = base + (i < extra ? 1 : 0);
        chunks[i] = (chunk){fn, ctx, begin, begin + len};
        begin += len;
    }
    for (size_t i = 1; i < parts; i++)
        started[i] = pthread_create(&tids[i], NULL, run_chunk, &chunks[i]) == 0;
    run_chunk(&chunks[0]);
    for (size_t i = 1; i < parts; i++) {
        if (started[i])
            pthread_join(tids[i], NULL);
        else
            run_chunk(&chunks[i]);
    }
}
