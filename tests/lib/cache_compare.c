#include "cache_compare.h"

#include <lmdb.h>
#include <stdio.h>
#include <string.h>

int caches_equal(const char *dir_a, const char *dir_b, char *msg, size_t size) {
    const char *dirs[2] = {dir_a, dir_b};
    MDB_env *env[2] = {NULL, NULL};
    MDB_txn *txn[2] = {NULL, NULL};
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        rc = mdb_env_create(&env[i]);
        if (rc == 0) rc = mdb_env_set_maxdbs(env[i], 8);
        if (rc == 0) rc = mdb_env_open(env[i], dirs[i], MDB_RDONLY | MDB_NOTLS, 0664);
        if (rc == 0) rc = mdb_txn_begin(env[i], NULL, MDB_RDONLY, &txn[i]);
        if (rc) snprintf(msg, size, "%s: %s", dirs[i], mdb_strerror(rc));
    }
    const char *names[] = {"visual", "audio", "videos", "meta"};
    long long compared = 0;
    for (int d = 0; d < 4 && rc == 0; d++) {
        MDB_dbi dbi[2];
        MDB_cursor *cur[2] = {NULL, NULL};
        for (int i = 0; i < 2 && rc == 0; i++) {
            rc = mdb_dbi_open(txn[i], names[d], 0, &dbi[i]);
            if (rc == 0) rc = mdb_cursor_open(txn[i], dbi[i], &cur[i]);
            if (rc) snprintf(msg, size, "%s: database %s: %s", dirs[i], names[d], mdb_strerror(rc));
        }
        MDB_val k[2], v[2];
        for (int first = 1; rc == 0; first = 0) {
            int r[2];
            for (int i = 0; i < 2; i++) r[i] = mdb_cursor_get(cur[i], &k[i], &v[i], first ? MDB_FIRST : MDB_NEXT);
            if (r[0] == MDB_NOTFOUND && r[1] == MDB_NOTFOUND) break;
            if (r[0] || r[1]) {
                snprintf(msg, size, "%s: %s has more entries", names[d], r[0] ? dir_b : dir_a);
                rc = -1;
            } else if (k[0].mv_size != k[1].mv_size || memcmp(k[0].mv_data, k[1].mv_data, k[0].mv_size) != 0) {
                snprintf(msg, size, "%s: key %.*s vs %.*s", names[d], (int)k[0].mv_size, (char *)k[0].mv_data,
                         (int)k[1].mv_size, (char *)k[1].mv_data);
                rc = -1;
            } else if (v[0].mv_size != v[1].mv_size || memcmp(v[0].mv_data, v[1].mv_data, v[0].mv_size) != 0) {
                snprintf(msg, size, "%s %.*s: values differ", names[d], (int)k[0].mv_size, (char *)k[0].mv_data);
                rc = -1;
            }
            compared++;
        }
        for (int i = 0; i < 2; i++)
            if (cur[i]) mdb_cursor_close(cur[i]);
    }
    for (int i = 0; i < 2; i++) {
        if (txn[i]) mdb_txn_abort(txn[i]);
        if (env[i]) mdb_env_close(env[i]);
    }
    if (rc == 0 && compared < 4) {
        snprintf(msg, size, "the caches are empty");
        rc = -1;
    }
    return rc ? -1 : 0;
}
