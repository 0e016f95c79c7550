/* hungarian.h - exact minimum-cost assignment (the linear sum assignment
 * problem) for rectangular cost matrices, as scipy.optimize.linear_sum_assignment
 * solves it for Mask2Former's matcher.
 *
 * Method: shortest augmenting paths with dual potentials (Jonker-Volgenant,
 * in the rectangular form of Crouse, "On implementing 2D rectangular
 * assignment algorithms", IEEE TAES 2016), the method scipy uses. A matrix
 * with more rows than columns is solved transposed, as scipy does. Every
 * intermediate is a double, so a float cost matrix widened to double gives
 * the optimum scipy gives.
 *
 * Ties: when several assignments share the minimum total, which one comes out
 * depends on the search order. This one scans free columns in scipy's order
 * (its list of unvisited columns, highest index first, a visited one replaced
 * by the last) and on equal path lengths prefers an unassigned column, so it
 * makes scipy's choice on the tie cases of tests/test_m2f_loss.c; that is
 * tested, not proven. With float costs from real logits exact ties are
 * unlikely. */
#ifndef STEPSTONE_HUNGARIAN_H
#define STEPSTONE_HUNGARIAN_H

/* cost: rows x cols, row-major. Writes k = min(rows, cols) pairs
 * (row_ind[i], col_ind[i]) with row_ind ascending, as scipy returns them,
 * into caller arrays of at least k entries. Returns k, or -1 when a cost is
 * NaN or infinite (scipy raises there). rows == 0 or cols == 0 gives 0.
 * Work memory is malloc'd and freed inside; out of memory is fatal. */
int linear_sum_assignment(const double *cost, int rows, int cols, int *row_ind, int *col_ind);

#endif
