/* ops_norm.c - softmax, layer norm and group norm (being written). */
#include "ops.h"
