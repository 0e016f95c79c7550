/* cache_keys.c - key text, the names in keys, and the videos index record. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cache_internal.h"

err_code_t cache_check_name(const char *what, const char *name, err_t *err) {
    if (!name || !*name) return err_set(err, ERR_ARG, "empty %s", what);
    size_t n = strlen(name);
    if (n > CACHE_MAX_NAME) return err_set(err, ERR_ARG, "%s \"%.40s...\" is longer than %d bytes", what, name, CACHE_MAX_NAME);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '/')
            return err_set(err, ERR_ARG, "%s \"%s\" has a character (byte %zu) that a cache key cannot hold "
                           "(printable ASCII without '/' or spaces)", what, name, i);
    }
    return ERR_OK;
}

err_code_t cache_frame_key(const char *subset, const char *uid, int frame, char *buf, err_t *err) {
    err_code_t rc = cache_check_name("subset", subset, err);
    if (rc == ERR_OK) rc = cache_check_name("uid", uid, err);
    if (rc != ERR_OK) return rc;
    if (frame < 0) return err_set(err, ERR_ARG, "video %s/%s: frame %d is negative", subset, uid, frame);
    snprintf(buf, CACHE_MAX_KEY + 1, "%s/%s/%d", subset, uid, frame);
    return ERR_OK;
}

err_code_t cache_video_key(const char *subset, const char *uid, char *buf, err_t *err) {
    err_code_t rc = cache_check_name("subset", subset, err);
    if (rc == ERR_OK) rc = cache_check_name("uid", uid, err);
    if (rc != ERR_OK) return rc;
    snprintf(buf, CACHE_MAX_KEY + 1, "%s/%s", subset, uid);
    return ERR_OK;
}

int cache_video_record(char *buf, size_t size, const cache_video_info_t *info) {
    return snprintf(buf, size, "{\"audio\":%s,\"frames\":%d}", info->has_audio ? "true" : "false", info->n_frames);
}

int cache_video_record_parse(const void *bytes, size_t size, cache_video_info_t *out) {
    json_t *root = json_loadb(bytes, size, JSON_REJECT_DUPLICATES, NULL);
    json_t *frames = json_object_get(root, "frames"), *audio = json_object_get(root, "audio");
    int ok = json_is_integer(frames) && json_integer_value(frames) >= 1 && json_integer_value(frames) <= 1000000 &&
             json_is_boolean(audio);
    if (ok) {
        out->n_frames = (int)json_integer_value(frames);
        out->has_audio = json_is_true(audio);
    }
    json_decref(root);
    return ok ? 0 : -1;
}
