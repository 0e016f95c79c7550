/* cases_layout.c - op kinds of the layout group (being written). */
#include "op_cases.h"

const op_kind_t op_kinds_layout[] = {{NULL, NULL, 0, 0}};
