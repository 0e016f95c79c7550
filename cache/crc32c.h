/* crc32c.h - CRC-32C (Castagnoli), the checksum of every cache value.
 *
 * The polynomial is 0x1EDC6F41 (reflected 0x82F63B78), initial value and
 * final xor 0xFFFFFFFF, as in iSCSI, ext4 and SSE4.2's crc32 instruction:
 * crc32c("123456789") = 0xE3069283. On x86-64 CPUs with SSE4.2 it runs on
 * the crc32 instruction over three interleaved streams (about 20 GB/s);
 * elsewhere on 8-way slicing tables (about 2 GB/s). Both give the same
 * numbers; the choice is made once, at run time. Thread-safe. */
#ifndef STEPSTONE_CRC32C_H
#define STEPSTONE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: crc32c(crc32c(0, a, na), b, nb) == crc32c of a then b.
 * Start with crc = 0. */
uint32_t crc32c(uint32_t crc, const void *data, size_t n);

/* The portable table version, whatever the CPU (tests compare the two). */
uint32_t crc32c_portable(uint32_t crc, const void *data, size_t n);

/* Nonzero when crc32c() uses the SSE4.2 instruction. */
int crc32c_hardware(void);

#endif
