/* cases_nn.c - op kinds of the nn group (being written). */
#include "op_cases.h"

const op_kind_t op_kinds_nn[] = {{NULL, NULL, 0, 0}};
