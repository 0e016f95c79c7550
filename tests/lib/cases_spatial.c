/* cases_spatial.c - op kinds of the spatial group (being written). */
#include "op_cases.h"

const op_kind_t op_kinds_spatial[] = {{NULL, NULL, 0, 0}};
