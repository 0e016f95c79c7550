/* hungarian.c - shortest-augmenting-path solver of the rectangular linear
 * sum assignment problem (see hungarian.h for the method and the tie rule).
 *
 * The problem solved internally has nr <= nc: every row gets a column. Rows
 * are added one at a time; for the new row a Dijkstra search over reduced
 * costs c(i,j) - u(i) - v(j) (non-negative thanks to the dual potentials u, v)
 * finds the cheapest alternating path to an unassigned column, the potentials
 * are updated so reduced costs stay non-negative and assigned pairs stay at
 * zero, and the path is flipped. After nr rows the assignment is optimal. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hungarian.h"

typedef struct {
    int nr, nc;
    const double *cost; /* nr x nc */
    double *u, *v;      /* dual potentials of rows and columns */
    double *dist;       /* shortest alternating-path length to each column */
    int *path;          /* the row from which each column was reached */
    int *col4row, *row4col; /* the current assignment, -1 = free */
    int *unvisited;     /* columns not yet settled by the current search */
    char *row_seen, *col_seen;
} lsa_t;

static void *lsa_alloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) fatal("linear_sum_assignment: out of memory");
    return p;
}

/* Dijkstra from row `start` until an unassigned column is settled; returns
 * that column and leaves the path length in *min_len. */
static int shortest_augmenting_path(lsa_t *s, int start, double *min_len) {
    int nc = s->nc, n_unvisited = nc;
    /* the search order matters only for ties; it is scipy's (see hungarian.h) */
    for (int k = 0; k < nc; k++) {
        s->unvisited[k] = nc - 1 - k;
        s->dist[k] = INFINITY;
        s->col_seen[k] = 0;
    }
    memset(s->row_seen, 0, (size_t)s->nr);
    double reached = 0.0;
    int row = start, sink = -1;
    while (sink < 0) {
        s->row_seen[row] = 1;
        const double *c = s->cost + (size_t)row * (size_t)nc;
        int best = -1;
        double lowest = INFINITY;
        for (int k = 0; k < n_unvisited; k++) {
            int j = s->unvisited[k];
            double len = reached + c[j] - s->u[row] - s->v[j];
            if (len < s->dist[j]) {
                s->path[j] = row;
                s->dist[j] = len;
            }
            /* on equal lengths a free column wins: it ends the search */
            if (s->dist[j] < lowest || (s->dist[j] == lowest && s->row4col[j] < 0)) {
                lowest = s->dist[j];
                best = k;
            }
        }
        /* finite costs always leave a finite path: every column is reachable */
        reached = lowest;
        int j = s->unvisited[best];
        s->col_seen[j] = 1;
        s->unvisited[best] = s->unvisited[--n_unvisited];
        if (s->row4col[j] < 0) sink = j;
        else row = s->row4col[j];
    }
    *min_len = reached;
    return sink;
}

static void solve(lsa_t *s) {
    for (int r = 0; r < s->nr; r++) s->col4row[r] = -1;
    for (int j = 0; j < s->nc; j++) s->row4col[j] = -1;
    for (int cur = 0; cur < s->nr; cur++) {
        double len;
        int sink = shortest_augmenting_path(s, cur, &len);
        /* potentials: keep reduced costs non-negative and tight on the path */
        s->u[cur] += len;
        for (int i = 0; i < s->nr; i++)
            if (s->row_seen[i] && i != cur) s->u[i] += len - s->dist[s->col4row[i]];
        for (int j = 0; j < s->nc; j++)
            if (s->col_seen[j]) s->v[j] -= len - s->dist[j];
        /* flip the alternating path back to cur */
        for (int j = sink;;) {
            int i = s->path[j];
            s->row4col[j] = i;
            int previous = s->col4row[i];
            s->col4row[i] = j;
            j = previous;
            if (i == cur) break;
        }
    }
}

int linear_sum_assignment(const double *cost, int rows, int cols, int *row_ind, int *col_ind) {
    if (rows <= 0 || cols <= 0) return 0;
    for (size_t k = 0; k < (size_t)rows * (size_t)cols; k++)
        if (!isfinite(cost[k])) return -1;
    int transposed = cols < rows;
    lsa_t s = {.nr = transposed ? cols : rows, .nc = transposed ? rows : cols};
    double *t = NULL;
    if (transposed) {
        t = lsa_alloc((size_t)rows * (size_t)cols, sizeof(double));
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) t[(size_t)j * (size_t)rows + (size_t)i] = cost[(size_t)i * (size_t)cols + (size_t)j];
        s.cost = t;
    } else {
        s.cost = cost;
    }
    s.u = lsa_alloc((size_t)s.nr, sizeof(double));
    s.v = lsa_alloc((size_t)s.nc, sizeof(double));
    s.dist = lsa_alloc((size_t)s.nc, sizeof(double));
    s.path = lsa_alloc((size_t)s.nc, sizeof(int));
    s.col4row = lsa_alloc((size_t)s.nr, sizeof(int));
    s.row4col = lsa_alloc((size_t)s.nc, sizeof(int));
    s.unvisited = lsa_alloc((size_t)s.nc, sizeof(int));
    s.row_seen = lsa_alloc((size_t)s.nr, 1);
    s.col_seen = lsa_alloc((size_t)s.nc, 1);
    solve(&s);
    int k = s.nr;
    if (!transposed) {
        for (int i = 0; i < k; i++) {
            row_ind[i] = i;
            col_ind[i] = s.col4row[i];
        }
    } else {
        /* internal column j is original row j: listing the assigned ones in
         * order gives the original rows ascending */
        int n = 0;
        for (int j = 0; j < s.nc; j++) {
            if (s.row4col[j] < 0) continue;
            row_ind[n] = j;
            col_ind[n] = s.row4col[j];
            n++;
        }
    }
    free(t);
    free(s.u);
    free(s.v);
    free(s.dist);
    free(s.path);
    free(s.col4row);
    free(s.row4col);
    free(s.unvisited);
    free(s.row_seen);
    free(s.col_seen);
    return k;
}
