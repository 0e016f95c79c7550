/* cache_stat.c - counts, sizes and map use of a cache. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cache_internal.h"

err_code_t cache_stat(cache_t *c, cache_stat_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    err_code_t ec = cache_read_txn_begin(c, &txn, err);
    if (ec != ERR_OK) return ec;
    int rc = 0;
    for (int db = 0; db < CACHE_DB_COUNT && rc == 0; db++) {
        MDB_cursor *cur;
        rc = mdb_cursor_open(txn, c->dbi[db], &cur);
        if (rc) break;
        MDB_val k, v;
        int r = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (r == 0) {
            out->entries[db]++;
            out->value_bytes[db] += v.mv_size;
            r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        if (r != MDB_NOTFOUND) rc = r;
    }
    MDB_envinfo info;
    MDB_stat st;
    mdb_env_info(c->env, &info);
    mdb_env_stat(c->env, &st);
    cache_read_txn_end(c, txn);
    if (rc) return cache_lmdb_error(err, c, rc, "counting entries");
    out->page_size = st.ms_psize;
    out->map_size = info.me_mapsize;
    out->map_used = (info.me_last_pgno + 1) * (uint64_t)st.ms_psize;
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", c->dir);
    struct stat fs;
    if (stat(path, &fs) == 0) out->file_bytes = (uint64_t)fs.st_size;
    out->dtype = c->dtype;
    return ERR_OK;
}
