/*
 * program_features.c: what this CPU can run (cpuid and the OS's register-state support) and the
 * load-time check that refuses a program compiled for another target or for features this
 * machine lacks, before any of it executes.
 *
 * A feature counts only when both the CPU has it (cpuid leaf 7) and the OS saves its registers
 * on context switches (XCR0, read with xgetbv): a CPU with AVX-512 under an OS that does not
 * enable ZMM state would fault on the first instruction. (For AMX, Linux additionally needs a
 * per-process arch_prctl permission request; oneDNN makes it itself before using AMX.)
 */
#include "cpu/program.h"

#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

uint32_t aim_cpu_features(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(1, 0, &a, &b, &c, &d) || !(c & (1u << 27))) return 0; /* OSXSAVE */
    uint64_t xcr0 = xgetbv0();
    bool os_avx = (xcr0 & 0x6) == 0x6;         /* XMM and YMM state */
    bool os_avx512 = (xcr0 & 0xE6) == 0xE6;    /* plus opmask, ZMM_Hi256, Hi16_ZMM */
    bool os_amx = (xcr0 & 0x60000) == 0x60000; /* XTILECFG and XTILEDATA */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    uint32_t f = 0;
    if (os_avx && (b & (1u << 5))) f |= AIM_CPU_FEATURE_AVX2;
    if (os_avx512 && (b & (1u << 16))) f |= AIM_CPU_FEATURE_AVX512;
    if (os_avx512 && (b & (1u << 16)) && (c & (1u << 11))) f |= AIM_CPU_FEATURE_VNNI;
    if (os_amx && (d & (1u << 25))) f |= AIM_CPU_FEATURE_AMX; /* AMX-INT8 */
    return f;
}
#else
uint32_t aim_cpu_features(void) {
    return 0; /* no x86 features on other architectures */
}
#endif

/* "avx2 avx512" into buf. */
static const char *feature_names(uint32_t f, char *buf, size_t size) {
    static const char *const names[] = {"avx2", "avx512", "avx512-vnni", "amx-int8"};
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < 4; i++)
        if (f & (1u << i))
            len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%s", len ? " " : "",
                                    names[i]);
    if (f >> 4 && len < size)
        snprintf(buf + len, size - len, "%sunknown(0x%x)", len ? " " : "", (unsigned)(f >> 4 << 4));
    return buf;
}

aim_status aim_program_check_runnable(const aim_program *p) {
    if (strcmp(p->target, "cpu-int8") != 0)
        return aim_error(AIM_ERR_UNSUPPORTED,
                         "program compiled for target '%s', this runtime "
                         "runs 'cpu-int8' programs",
                         p->target);
    uint32_t have = aim_cpu_features(), missing = p->required_features & ~have;
    if (missing) {
        char need[96], got[96];
        return aim_error(AIM_ERR_UNSUPPORTED,
                         "program needs CPU features this machine lacks: "
                         "%s (this CPU has: %s)",
                         feature_names(missing, need, sizeof need),
                         have ? feature_names(have, got, sizeof got) : "none of those aim uses");
    }
    return AIM_OK;
}
