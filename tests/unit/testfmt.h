/* SPDX-License-Identifier: MIT */
/*
 * "testfmt": a tiny read-only format for unit tests of probing, backing
 * chains and block status.  Layout (little endian):
 *   0    "VDKTEST1"
 *   8    u64 virtual size
 *   16   u32 cluster size (power of two, 512..64 KiB)
 *   24   backing file name, 256 bytes, NUL-terminated ("" = none)
 *   280  backing format, 32 bytes, NUL-terminated ("" = not recorded)
 *   512  one byte per cluster: '.' unallocated, 'D' data, 'Z' zeros
 *   then the data clusters at TESTFMT_DATA_OFF + index * cluster.
 */
#ifndef VDK_TESTFMT_H
#define VDK_TESTFMT_H

#include <stdbool.h>
#include <stdint.h>

#include "block/driver.h"

extern const struct vdk_driver testfmt_driver;

/* When set, block_status answers a pnum larger than asked (a driver bug). */
extern bool testfmt_bad_pnum;

/* Data area offset for an image of `nclusters`. */
uint64_t testfmt_data_off(uint64_t nclusters);

/*
 * Build an image and preset it as "memory://name".  map has one character
 * per cluster; the data of cluster i is filled with byte (fill + i).
 * backing/backing_fmt may be NULL.
 */
void testfmt_preset(const char *name, uint64_t size, uint32_t cluster, const char *map,
                    uint8_t fill, const char *backing, const char *backing_fmt);

#endif
