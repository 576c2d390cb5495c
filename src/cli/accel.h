/*
 * accel.h: names shared by everything that embeds, finds or targets an accelerator program
 * inside an ONNX file: Hailo's HailoOp node, aim's own AimProgram node, and the list of targets
 * the `chip` metadata entry may name. Header-only so the compiler can use it without the CLI.
 */
#ifndef AIM_CLI_ACCEL_H
#define AIM_CLI_ACCEL_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Hailo's custom operator (HailoRT's ONNX Runtime provider). */
#define AIM_HAILO_OP_TYPE  "HailoOp"
#define AIM_HAILO_DOMAIN   "ai.hailo"
#define AIM_HAILO_ATTR_HEF "hef" /* bytes: the HEF file */
/* Every HEF file starts with these four bytes. */
#define AIM_HAILO_HEF_MAGIC     "\x01HEF"
#define AIM_HAILO_HEF_MAGIC_LEN 4

/* aim's own accelerator node: one compiled program for one target. */
#define AIM_ACCEL_OP_TYPE      "AimProgram"
#define AIM_ACCEL_DOMAIN       "ai.aim"
#define AIM_ACCEL_ATTR_PROGRAM "program" /* bytes: the serialized program */
#define AIM_ACCEL_ATTR_TARGET  "target"  /* string: one of the targets below */

/* The metadata_props key naming the target a compiled model needs. */
#define AIM_META_CHIP "chip"

/* X(name, description): the values `chip` may take. */
#define AIM_TARGET_LIST(X)                                                                         \
    X("hailo", "Hailo-8 (HailoOp node, HailoRT)")                                                  \
    X("hailo-8l", "Hailo-8L (HailoOp node, HailoRT)")                                              \
    X("cpu-int8", "aim's own int8 CPU program (AimProgram node)")

/* X(wrong, right): spellings seen in the wild, with the right one. `hailo8` and `hailo8l` are
 * what the vendor's update script writes (a known bug). */
#define AIM_TARGET_MISSPELLINGS(X)                                                                 \
    X("hailo8", "hailo")                                                                           \
    X("hailo8l", "hailo-8l")                                                                       \
    X("hailo-8", "hailo")                                                                          \
    X("hailo_8l", "hailo-8l")

static inline bool aim_target_known(const char *name) {
#define AIM_TARGET_MATCH(t, desc)                                                                  \
    if (strcmp(name, t) == 0) return true;
    AIM_TARGET_LIST(AIM_TARGET_MATCH)
#undef AIM_TARGET_MATCH
    return false;
}

/* The right spelling for a known-wrong target name, or NULL. */
static inline const char *aim_target_correction(const char *name) {
#define AIM_TARGET_FIX(wrong, right)                                                               \
    if (strcmp(name, wrong) == 0) return right;
    AIM_TARGET_MISSPELLINGS(AIM_TARGET_FIX)
#undef AIM_TARGET_FIX
    return NULL;
}

#endif
