/* SPDX-License-Identifier: MIT */
/*
 * vdk-img internals shared by the subcommands.
 *
 * Each subcommand lives in cmd-<name>.c as `int img_cmd_<name>(int argc,
 * char **argv)`, where argv[0] is the subcommand name, and returns the
 * process exit code (qemu-img's codes: 0 success, 1 error; check and
 * compare have their own).  The dispatch table is in main.c.
 */
#ifndef VDK_IMG_H
#define VDK_IMG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vdk/block.h"
#include "vdk/error.h"
#include "vdk/options.h"

#define IMG_PROG "vdk-img"

struct img_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *synopsis; /* one line, qemu-img's syntax */
};

/* NULL-terminated table in main.c (also used by completion and --help). */
extern const struct img_command img_commands[];

/* "vdk-img: <msg>" on stderr.  Returns 1 (the usual exit code). */
int img_error(const char *fmt, ...) VDK_PRINTF(1, 2);
/* Print and free a library error with optional context; returns 1. */
int img_report(struct vdk_error *err, const char *context_fmt, ...) VDK_PRINTF(2, 3);
/* Usage error: message plus "Try 'vdk-img --help' ..."; returns 1. */
int img_usage_error(const char *fmt, ...) VDK_PRINTF(1, 2);

/* qemu-img cache modes -> VDK_O_* flags.  -EINVAL for unknown modes. */
int img_parse_cache(const char *mode, unsigned *flags);

/*
 * Open an image as qemu-img does.
 *  - image_opts: `filename` is an option string ("driver=qcow2,file.filename=x").
 *  - fmt: -f value or NULL (probe).
 *  - extra: additional options (consumed, may be NULL).
 */
int img_open(struct vdk_node **out, const char *filename, const char *fmt,
             bool image_opts, struct vdk_opts *extra, unsigned flags,
             struct vdk_error **errp);

/* --object handling (all subcommands accept it). */
int img_add_object(const char *def);

/* Parse a size argument with qemu-img's messages; returns 0 or 1 (exit). */
int img_parse_size_arg(const char *s, uint64_t *out);

#endif
