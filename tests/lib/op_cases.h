/* op_cases.h - the table of op kinds that tests/test_ops.c runs.
 *
 * A *case* is defined once, in Python, by a reference script in
 * tests/reference/ops_<group>.py: its inputs, integer args, PyTorch's output
 * and PyTorch's input gradients for a random output seed r, saved to
 * tests/reference/ops_<group>.safetensors (metadata "case.<name>" = kind).
 * A *kind* is defined once, in C, in tests/lib/cases_<group>.c: how to run
 * the op on a context from the case's inputs and args. test_ops runs every
 * case on every backend:
 *   <name>/torch   forward and input gradients against PyTorch (CPU)
 *   <name>/fd      input gradients against central finite differences (CPU)
 *   <name>/cuda    forward and gradients on CUDA against the CPU (needs a GPU)
 */
#ifndef STEPSTONE_OP_CASES_H
#define STEPSTONE_OP_CASES_H

#include "ops.h"

typedef tensor_t *(*op_case_fn_t)(ctx_t *ctx, tensor_t **in, int nin, const int64_t *args, int nargs);

typedef struct {
    const char *kind;
    op_case_fn_t run;
    double fd_rtol; /* finite-difference tolerance; 0 = default (2e-2) */
    double fd_eps;  /* finite-difference step; 0 = default (1e-3) */
} op_kind_t;

/* Each group's table ends with an entry whose kind is NULL. */
extern const op_kind_t op_kinds_core[];
extern const op_kind_t op_kinds_nn[];
extern const op_kind_t op_kinds_spatial[];
extern const op_kind_t op_kinds_layout[];
extern const op_kind_t op_kinds_loss[];
extern const op_kind_t op_kinds_pool[];

#endif
