/* image.c: placeholder so the module has a source file until decoding lands. */
#include "core/util.h"
