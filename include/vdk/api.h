/* SPDX-License-Identifier: MIT */
/*
 * Symbol visibility of libvdk.
 *
 * The library is built with hidden visibility by default: only functions
 * and objects declared with VDK_API in the installed headers are exported
 * from libvdk.so.  Everything else (driver internals, qcow2_* and vhd_*
 * helpers, test seams) stays inside the library, so applications cannot
 * come to depend on it and the ABI is exactly the public headers.
 * tests/abi/check-exports.sh holds the build to that.
 */
#ifndef VDK_API_H
#define VDK_API_H

#if defined(__GNUC__) || defined(__clang__)
#define VDK_API __attribute__((visibility("default")))
#else
#define VDK_API
#endif

#endif /* VDK_API_H */
