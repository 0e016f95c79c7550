/* cache_open.c - opening a cache folder: the LMDB environment, its four
 * databases and the format record; the one-handle-per-process rule. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache_internal.h"

static const char *const db_names[CACHE_DB_COUNT] = {"visual", "audio", "videos", "meta"};

cache_options_t cache_default_options(void) {
    cache_options_t o;
    memset(&o, 0, sizeof o);
    o.dtype = DTYPE_F16;
    o.verify_reads = 1;
    return o;
}

const char *cache_db_name(cache_db_t db) { return db >= 0 && db < CACHE_DB_COUNT ? db_names[db] : "?"; }

int cache_db_parse(const char *name, cache_db_t *out) {
    for (int i = 0; i < CACHE_DB_COUNT; i++)
        if (name && strcmp(name, db_names[i]) == 0) {
            *out = (cache_db_t)i;
            return 0;
        }
    return -1;
}

const char *cache_dir(const cache_t *c) { return c->dir; }
dtype_t cache_dtype(const cache_t *c) { return c->dtype; }
cache_mode_t cache_mode(const cache_t *c) { return c->mode; }

/* ---- opening ---- */

static err_code_t make_dirs(const char *dir, err_t *err) {
    char path[4096];
    if (strlen(dir) >= sizeof path) return err_set(err, ERR_ARG, "cache folder name is too long: %.60s...", dir);
    strcpy(path, dir);
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(path, 0775) != 0 && errno != EEXIST)
                return err_set(err, ERR_IO, "cache %s: cannot create folder %s: %s", dir, path, strerror(errno));
            *p = saved;
            if (saved == '\0') break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set(err, ERR_IO, "cache %s: not a folder", dir);
    return ERR_OK;
}

/* Write mode on a folder without data.mdb: only an empty folder (or one with
 * what a cache folder holds anyway) may become a cache, so a mistyped --cache
 * cannot scatter LMDB files into someone's home folder. */
static err_code_t check_new_folder(const char *dir, err_t *err) {
    DIR *d = opendir(dir);
    if (!d) return err_set(err, ERR_IO, "cache %s: cannot list the folder: %s", dir, strerror(errno));
    struct dirent *e;
    const char *stranger = NULL;
    char name[256];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, "lock.mdb") == 0 ||
            strcmp(e->d_name, "manifest.json") == 0)
            continue;
        snprintf(name, sizeof name, "%s", e->d_name);
        stranger = name;
        break;
    }
    closedir(d);
    if (stranger)
        return err_set(err, ERR_FORMAT,
                       "%s is not a stepstone cache (no data.mdb) and is not empty (it holds %s): give an empty or "
                       "new folder",
                       dir, stranger);
    return ERR_OK;
}

static err_code_t parse_format(cache_t *c, const MDB_val *v, err_t *err) {
    json_error_t jerr;
    json_t *root = json_loadb(v->mv_data, v->mv_size, JSON_REJECT_DUPLICATES, &jerr);
    const char *name = json_string_value(json_object_get(root, "format"));
    json_t *version = json_object_get(root, "version");
    const char *dt = json_string_value(json_object_get(root, "dtype"));
    err_code_t rc = ERR_OK;
    if (!root || !name || strcmp(name, CACHE_FORMAT_NAME) != 0 || !json_is_integer(version) || !dt)
        rc = err_set(err, ERR_FORMAT, "%s is not a stepstone cache (its meta record \"format\" is not ours)", c->dir);
    else if (json_integer_value(version) != CACHE_FORMAT_VERSION)
        rc = err_set(err, ERR_FORMAT, "cache %s has format version %lld, %s (this program reads version %d)", c->dir,
                     (long long)json_integer_value(version),
                     json_integer_value(version) > CACHE_FORMAT_VERSION ? "made by a newer program" : "unknown",
                     CACHE_FORMAT_VERSION);
    else if (dtype_parse(dt, &c->dtype) != 0 || cache_dtype_code(c->dtype) < 0)
        rc = err_set(err, ERR_FORMAT, "cache %s: unknown storage dtype \"%s\" in its format record", c->dir, dt);
    json_decref(root);
    return rc;
}

static err_code_t put_format(cache_t *c, MDB_txn *txn, err_t *err) {
    char text[256];
    snprintf(text, sizeof text, "{\"dtype\":\"%s\",\"format\":\"%s\",\"version\":%d}", dtype_name(c->dtype),
             CACHE_FORMAT_NAME, CACHE_FORMAT_VERSION);
    MDB_val k = {strlen(CACHE_META_FORMAT), (void *)CACHE_META_FORMAT}, v = {strlen(text), text};
    int rc = mdb_put(txn, c->dbi[CACHE_DB_META], &k, &v, 0);
    return rc ? cache_lmdb_error(err, c, rc, "writing the format record") : ERR_OK;
}

static err_code_t not_a_cache(cache_t *c, const char *why, err_t *err) {
    return err_set(err, ERR_FORMAT, "%s is an LMDB environment but not a stepstone cache (%s)", c->dir, why);
}

/* Opens (write mode: creates) the four databases and reads "format". */
static err_code_t open_databases(cache_t *c, err_t *err) {
    MDB_txn *txn;
    int write = c->mode == CACHE_WRITE;
    int rc = mdb_txn_begin(c->env, NULL, write ? 0 : MDB_RDONLY, &txn);
    if (rc) return cache_lmdb_error(err, c, rc, "beginning a transaction");
    err_code_t ec = ERR_OK;
    rc = mdb_dbi_open(txn, db_names[CACHE_DB_META], 0, &c->dbi[CACHE_DB_META]);
    if (rc == MDB_NOTFOUND && write) {
        MDB_dbi main_db;
        MDB_stat st;
        rc = mdb_dbi_open(txn, NULL, 0, &main_db);
        if (rc == 0) rc = mdb_stat(txn, main_db, &st);
        if (rc) {
            ec = cache_lmdb_error(err, c, rc, "reading the main database");
        } else if (st.ms_entries > 0) {
            ec = not_a_cache(c, "it has no meta database", err);
        } else {
            for (int i = 0; i < CACHE_DB_COUNT && ec == ERR_OK; i++) {
                rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &c->dbi[i]);
                if (rc) ec = cache_lmdb_error(err, c, rc, "creating the databases");
            }
            if (ec == ERR_OK) ec = put_format(c, txn, err);
        }
    } else if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
        ec = not_a_cache(c, "it has no meta database", err);
    } else if (rc) {
        ec = cache_lmdb_error(err, c, rc, "opening the meta database");
    } else {
        MDB_val k = {strlen(CACHE_META_FORMAT), (void *)CACHE_META_FORMAT}, v;
        rc = mdb_get(txn, c->dbi[CACHE_DB_META], &k, &v);
        dtype_t asked = c->dtype;
        if (rc == MDB_NOTFOUND) ec = not_a_cache(c, "its meta database has no \"format\" record", err);
        else if (rc) ec = cache_lmdb_error(err, c, rc, "reading the format record");
        else ec = parse_format(c, &v, err);
        if (ec == ERR_OK && write && asked != c->dtype)
            ec = err_set(err, ERR_MISMATCH, "cache %s stores %s features, but %s was asked for: use the same dtype "
                         "as the run that made it, or another folder",
                         c->dir, dtype_name(c->dtype), dtype_name(asked));
        for (int i = 0; i < CACHE_DB_COUNT && ec == ERR_OK; i++) {
            if (i == CACHE_DB_META) continue;
            rc = mdb_dbi_open(txn, db_names[i], 0, &c->dbi[i]);
            if (rc == MDB_NOTFOUND) {
                char why[64];
                snprintf(why, sizeof why, "the %s database is missing", db_names[i]);
                ec = not_a_cache(c, why, err);
            } else if (rc) {
                ec = cache_lmdb_error(err, c, rc, "opening the databases");
            }
        }
    }
    if (ec != ERR_OK) {
        mdb_txn_abort(txn);
        return ec;
    }
    /* committing (a read transaction too) keeps the database handles */
    rc = mdb_txn_commit(txn);
    return rc ? cache_lmdb_error(err, c, rc, "committing the new databases") : ERR_OK;
}

/* ---- the process-wide list of open caches ---- */

static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_t *open_caches;

static err_code_t register_open(cache_t *c, err_t *err) {
    struct stat st;
    if (stat(c->dir, &st) != 0) return err_set(err, ERR_IO, "cache %s: %s", c->dir, strerror(errno));
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    err_code_t ec = ERR_OK;
    pthread_mutex_lock(&open_lock);
    for (cache_t *o = open_caches; o; o = o->next_open)
        if (o->dev == c->dev && o->ino == c->ino) {
            ec = err_set(err, ERR_ARG,
                         "cache %s is already open in this process (as %s): LMDB allows one handle per environment "
                         "and process, so share that one",
                         c->dir, o->dir);
            break;
        }
    if (ec == ERR_OK) {
        c->next_open = open_caches;
        open_caches = c;
        c->registered = 1;
    }
    pthread_mutex_unlock(&open_lock);
    return ec;
}

static void unregister_open(cache_t *c) {
    if (!c->registered) return;
    pthread_mutex_lock(&open_lock);
    for (cache_t **p = &open_caches; *p; p = &(*p)->next_open)
        if (*p == c) {
            *p = c->next_open;
            break;
        }
    pthread_mutex_unlock(&open_lock);
    c->registered = 0;
}

err_code_t cache_open(const char *dir, cache_mode_t mode, const cache_options_t *options, cache_t **out, err_t *err) {
    *out = NULL;
    if (!dir || !*dir) return err_set(err, ERR_ARG, "no cache folder given");
    cache_options_t opt = options ? *options : cache_default_options();
    if (mode == CACHE_WRITE && cache_dtype_code(opt.dtype) < 0)
        return err_set(err, ERR_ARG, "cache %s: storage dtype %s is not F32, F16 or BF16", dir, dtype_name(opt.dtype));
    char data_path[4200];
    snprintf(data_path, sizeof data_path, "%s/data.mdb", dir);
    struct stat st;
    if (mode == CACHE_READ) {
        if (stat(dir, &st) != 0)
            return err_set(err, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "cache %s: %s", dir, strerror(errno));
        if (!S_ISDIR(st.st_mode)) return err_set(err, ERR_FORMAT, "%s is not a stepstone cache (not a folder)", dir);
        if (stat(data_path, &st) != 0)
            return err_set(err, ERR_FORMAT, "%s is not a stepstone cache (it has no data.mdb)", dir);
    } else {
        err_code_t ec = make_dirs(dir, err);
        if (ec != ERR_OK) return ec;
        if (stat(data_path, &st) != 0 && (ec = check_new_folder(dir, err)) != ERR_OK) return ec;
    }
    cache_t *c = calloc(1, sizeof *c);
    if (!c || !(c->dir = strdup(dir))) {
        free(c);
        return err_set(err, ERR_NOMEM, "cache %s: out of memory", dir);
    }
    c->mode = mode;
    c->options = opt;
    c->dtype = opt.dtype;
    atomic_init(&c->open_readers, 0);
    err_code_t reg = register_open(c, err);
    if (reg != ERR_OK) {
        cache_close(c);
        return reg;
    }
    int rc = mdb_env_create(&c->env);
    if (rc == 0) rc = mdb_env_set_maxdbs(c->env, CACHE_DB_COUNT + 2);
    if (rc == 0 && mode == CACHE_WRITE) {
        size_t map = opt.map_size ? opt.map_size : CACHE_DEFAULT_MAP_SIZE;
        if (opt.map_size_max && map > opt.map_size_max) map = opt.map_size_max;
        /* LMDB raises a map smaller than the data already there to the data's size */
        rc = mdb_env_set_mapsize(c->env, map);
    }
    if (rc == 0) {
        unsigned flags = MDB_NOTLS | (mode == CACHE_READ ? MDB_RDONLY : 0) | (opt.no_sync ? MDB_NOSYNC : 0);
        rc = mdb_env_open(c->env, dir, flags, 0664);
    }
    err_code_t ec = ERR_OK;
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
        ec = err_set(err, ERR_FORMAT, "%s is not a stepstone cache (data.mdb is not an LMDB file this library reads: %s)",
                     dir, mdb_strerror(rc));
    else if (rc)
        ec = cache_lmdb_error(err, c, rc, "opening the LMDB environment");
    if (ec == ERR_OK && mode == CACHE_WRITE) {
        int dead = 0;
        mdb_reader_check(c->env, &dead); /* frees reader slots of killed processes */
    }
    if (ec == ERR_OK) ec = open_databases(c, err);
    if (ec != ERR_OK) {
        cache_close(c);
        return ec;
    }
    *out = c;
    return ERR_OK;
}

void cache_close(cache_t *c) {
    if (!c) return;
    if (atomic_load(&c->open_readers) != 0) fatal("cache_close(%s) with %d readers open", c->dir, atomic_load(&c->open_readers));
    if (c->env) mdb_env_close(c->env);
    unregister_open(c);
    free(c->dir);
    free(c);
}
