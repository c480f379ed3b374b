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

#include <getopt.h>
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
    const char *options;  /* option lines for "COMMAND --help", may be NULL */
};

/* Subcommands (cmd-<name>.c; help in main.c) and their "--help" option
   lines. */
int img_cmd_help(int argc, char **argv);
int img_cmd_amend(int argc, char **argv);
int img_cmd_bench(int argc, char **argv);
int img_cmd_bitmap(int argc, char **argv);
int img_cmd_check(int argc, char **argv);
int img_cmd_commit(int argc, char **argv);
int img_cmd_compare(int argc, char **argv);
int img_cmd_convert(int argc, char **argv);
int img_cmd_create(int argc, char **argv);
int img_cmd_dd(int argc, char **argv);
int img_cmd_info(int argc, char **argv);
int img_cmd_map(int argc, char **argv);
int img_cmd_measure(int argc, char **argv);
int img_cmd_rebase(int argc, char **argv);
int img_cmd_resize(int argc, char **argv);
int img_cmd_snapshot(int argc, char **argv);
extern const char img_amend_options[], img_bench_options[], img_check_options[], img_commit_options[],
    img_compare_options[], img_convert_options[], img_create_options[], img_dd_options[],
    img_info_options[], img_map_options[], img_measure_options[], img_rebase_options[],
    img_resize_options[], img_snapshot_options[], img_bitmap_options[];

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
/*
 * A size given as option `key` (-o size=..., resize's size), with the
 * wording qemu-img's option parser uses, after "ctx: " when ctx is not
 * NULL.  Returns 0 or 1 (exit code).
 */
int img_parse_opt_size(const char *ctx, const char *key, const char *s, uint64_t *out);
/* Same for another quantity: "Invalid <what> specified. ..." */
int img_parse_num_arg(const char *what, const char *s, uint64_t *out);

/*
 * Command-line scanning shared by the subcommands.  They call getopt_long
 * with an option string that starts with ':' and hand every '?' / ':'
 * result to img_getopt_error(), which prints qemu-img's messages
 * ("unrecognized option '-x'", "missing argument for option '-f'") with
 * the "Try 'vdk-img --help'" line and returns 1.
 */
int img_getopt_error(int c, char **argv);

/* Long options of the image subcommands that take only the shared ones:
   --help ('h'), --object, --image-opts, --force-share ('U'). */
extern const struct option img_image_long_opts[];

/* Progress of commit and rebase through vdk_progress_fn; opaque is the
   struct progress (progress.h) shown. */
void img_chain_progress(uint64_t done, uint64_t total, void *opaque);

/* End of commit and rebase: end and free the progress display (100% only
   on success), close top (flushing it) and report r/err of the operation.
   Returns the exit code. */
struct progress;
int img_chain_done(struct vdk_node *top, const char *filename, int r, struct vdk_error *err,
                   struct progress *prog);

/* Reset getopt for a fresh scan of a subcommand's argv. */
void img_getopt_reset(void);

/* "COMMAND --help": usage synopsis and options of `name` on stdout; 0. */
int img_command_help(const char *name);

/* Long options every subcommand shares (values above 256). */
enum {
    IMG_OPT_OBJECT = 256,
    IMG_OPT_IMAGE_OPTS,
    IMG_OPT_OUTPUT,
    IMG_OPT_BACKING_CHAIN,
    IMG_OPT_START_OFFSET,
    IMG_OPT_MAX_LENGTH,
    IMG_OPT_SIZE,
    IMG_OPT_PREALLOC,
    IMG_OPT_SHRINK,
    IMG_OPT_FORCE_SHARE,
    IMG_OPT_FORCE,
};

/*
 * The options every image subcommand shares, scanned by img_image_opt():
 * -f fmt, -U/--force-share, -t/-T cache, --image-opts, --object, and
 * --output=human|json (output: 0 human, 1 json, as enum img_output).
 */
struct img_image_args {
    const char *fmt;
    unsigned flags;
    bool image_opts;
    int output;
};

/*
 * Handle a getopt result the subcommand's own switch did not: a shared
 * option updates *a and returns 0; anything else (an unknown option, a
 * missing argument, a bad value) prints qemu-img's message and returns 1,
 * the exit code.  Subcommands that do not take a shared option leave it
 * out of their optstring.  Use it as the switch's default case.
 */
int img_image_opt(struct img_image_args *a, int opt, const char *arg, char **argv);

/*
 * Open an image for a subcommand, printing qemu-img's
 * "Could not open 'x': reason" on failure.  Returns 0 or 1 (exit code).
 */
int img_open_or_report(struct vdk_node **out, const char *filename, const char *fmt,
                       bool image_opts, struct vdk_opts *extra, unsigned flags);

/*
 * An -o argument: when it asks for help ("help" or "?" as an element) set
 * *help; otherwise append its "k=v,..." to *opts, created on first use
 * (repeated -o options accumulate as in qemu-img).  Returns 0 or 1 (exit).
 */
int img_add_o_option(struct vdk_opts **opts, const char *arg, bool *help);

#endif
