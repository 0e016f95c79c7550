/* cases_loss.c - op kinds of the loss group (being written). */
#include "op_cases.h"

const op_kind_t op_kinds_loss[] = {{NULL, NULL, 0, 0}};
