/*
 * parallel.h: a minimal parallel-for over an index range, for kernels' independent loops.
 *
 * [0, n) is cut into at most `threads` contiguous chunks; chunk 0 runs on the calling thread and
 * the others on short-lived pthreads that are joined before return. There is no global state, so
 * concurrent sessions may call it at once. If a thread cannot be created, its chunk runs on the
 * calling thread instead: the result never depends on how many threads actually ran.
 */
#ifndef AIM_CORE_PARALLEL_H
#define AIM_CORE_PARALLEL_H

#include <stddef.h>

/* Calls fn(ctx, begin, end) on disjoint chunks covering [0, n) exactly once; threads <= 1 or
 * n <= 1 make a single direct call (none when n == 0). */
void aim_parallel_for(int threads, size_t n, void (*fn)(void *ctx, size_t begin, size_t end),
                      void *ctx);

#endif
