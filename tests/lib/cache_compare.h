/* cache_compare.h - two feature caches compared byte for byte, through LMDB
 * directly rather than through the cache library under test. */
#ifndef STEPSTONE_TEST_CACHE_COMPARE_H
#define STEPSTONE_TEST_CACHE_COMPARE_H

#include <stddef.h>

/* 0 when the caches in dir_a and dir_b hold the same keys with the same bytes
 * in every database (and are not both empty); else -1 with the first
 * difference described in msg. */
int caches_equal(const char *dir_a, const char *dir_b, char *msg, size_t size);

#endif
