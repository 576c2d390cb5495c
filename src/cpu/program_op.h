/*
 * program_op.h: the kernel that runs an `AimProgram` node (domain ai.aim): aim's compiled int8
 * program (program.h) as the session sees it. The session looks it up before the operator
 * registry of src/ops, which knows only standard ONNX operators.
 */
#ifndef AIM_CPU_PROGRAM_OP_H
#define AIM_CPU_PROGRAM_OP_H

#include "ops/op.h"

extern const aim_op_def aim_cpu_program_op;

#endif
