/* SPDX-License-Identifier: MIT */
/* vdk-img: entry point and subcommand dispatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"

/* Alphabetical, as in qemu-img's help.  One line per command. */
const struct img_command img_commands[] = {
    { "amend", img_cmd_amend,
      "amend [--object objectdef] [--image-opts] [-p] [-q] [-f fmt] [-t cache] [--force] "
      "-o options filename", img_amend_options },
    { "bench", img_cmd_bench,
      "bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-i aio] [-n] "
      "[--no-drain] [-o offset] [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] "
      "[-t cache] [-w] [-U] filename", img_bench_options },
    { "bitmap", img_cmd_bitmap,
      "bitmap (--merge SOURCE | --add | --remove | --clear | --enable | --disable)... "
      "[-b source_file [-F source_fmt]] [-g granularity] [--object objectdef] "
      "[--image-opts | -f fmt] filename bitmap", img_bitmap_options },
    { "check", img_cmd_check,
      "check [--object objectdef] [--image-opts] [-q] [-f fmt] [--output=ofmt] "
      "[-r [leaks | all]] [-T src_cache] [-U] filename", img_check_options },
    { "commit", img_cmd_commit,
      "commit [--object objectdef] [--image-opts] [-q] [-f fmt] [-t cache] [-b base] "
      "[-r rate_limit] [-d] [-p] filename", img_commit_options },
    { "compare", img_cmd_compare,
      "compare [--object objectdef] [--image-opts] [-f fmt] [-F fmt] [-T src_cache] [-p] "
      "[-q] [-s] [-U] filename1 filename2", img_compare_options },
    { "convert", img_cmd_convert,
      "convert [--object objectdef] [--image-opts] [--target-image-opts] [--target-is-zero] "
      "[-U] [-C] [-c] [-p] [-q] [-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt] "
      "[-B backing_file [-F backing_fmt]] [-o options] [-l snapshot_param] [-S sparse_size] "
      "[-r rate_limit] [-m num_coroutines] [-W] [--salvage] [--bitmaps [--skip-broken-bitmaps]] "
      "filename [filename2 [...]] output_filename",
      img_convert_options },
    { "create", img_cmd_create,
      "create [--object objectdef] [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] "
      "[-o options] filename [size]", img_create_options },
    { "dd", img_cmd_dd,
      "dd [--object objectdef] [--image-opts] [-U] [-f fmt] [-O output_fmt] [bs=block_size] "
      "[count=blocks] [skip=blocks] if=input of=output", img_dd_options },
    { "info", img_cmd_info,
      "info [--object objectdef] [--image-opts] [-f fmt] [--output=ofmt] "
      "[--backing-chain] [-U] filename", img_info_options },
    { "map", img_cmd_map,
      "map [--object objectdef] [--image-opts] [-f fmt] [--start-offset=offset] "
      "[--max-length=len] [--output=ofmt] [-U] filename", img_map_options },
    { "measure", img_cmd_measure,
      "measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | "
      "[--object objectdef] [--image-opts] [-f fmt] [-l snapshot_param] filename]",
      img_measure_options },
    { "rebase", img_cmd_rebase,
      "rebase [--object objectdef] [--image-opts] [-U] [-q] [-f fmt] [-t cache] "
      "[-T src_cache] [-p] [-u] [-c] -b backing_file [-F backing_fmt] filename",
      img_rebase_options },
    { "resize", img_cmd_resize,
      "resize [--object objectdef] [--image-opts] [-f fmt] [--preallocation=prealloc] "
      "[-q] [--shrink] filename [+ | -]size", img_resize_options },
    { "snapshot", img_cmd_snapshot,
      "snapshot [--object objectdef] [--image-opts] [-U] [-q] [-l | -a snapshot | "
      "-c snapshot | -d snapshot] filename", img_snapshot_options },
    { "help", img_cmd_help, "help", NULL },
    { NULL, NULL, NULL, NULL },
};

static void print_version(void)
{
    printf("%s version %s\n", IMG_PROG, vdk_version());
}

static void print_help(FILE *out)
{
    fprintf(out, "usage: %s [standard options] command [command options]\n"
                 "vdk disk image utility (command line compatible with qemu-img)\n\n"
                 "    '-h', '--help'       display this help and exit\n"
                 "    '-V', '--version'    output version information and exit\n\n"
                 "Command syntax:\n", IMG_PROG);
    for (const struct img_command *c = img_commands; c->name; c++)
        if (strcmp(c->name, "help") != 0)
            fprintf(out, "  %s\n", c->synopsis);
    fprintf(out, "\nSupported formats:");
    for (size_t i = 0; vdk_driver_nth(i); i++)
        fprintf(out, " %s", vdk_driver_name(vdk_driver_nth(i)));
    fprintf(out, "\n\nSee '%s COMMAND --help' for the options of one command.\n", IMG_PROG);
}

int img_cmd_help(int argc, char **argv)
{
    if (argc > 1)
        return img_command_help(argv[1]) == 0 ? 0
               : img_usage_error("Command not found: %s", argv[1]);
    print_help(stdout);
    return 0;
}

/*
 * Hidden helper for the bash completion: "__complete" lists the commands,
 * "__complete formats" the format drivers, "__complete CMD" prints CMD's
 * help (whose option words the completion extracts).
 */
static int complete_helper(int argc, char **argv)
{
    if (argc < 3) {
        for (const struct img_command *c = img_commands; c->name; c++)
            printf("%s\n", c->name);
        return 0;
    }
    if (strcmp(argv[2], "formats") == 0) {
        for (size_t i = 0; vdk_driver_nth(i); i++)
            if (vdk_driver_is_format(vdk_driver_nth(i)))
                printf("%s\n", vdk_driver_name(vdk_driver_nth(i)));
        return 0;
    }
    return img_command_help(argv[2]);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return img_usage_error("Not enough arguments");
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        print_help(stdout);
        return 0;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        print_version();
        return 0;
    }
    if (strcmp(cmd, "__complete") == 0)
        return complete_helper(argc, argv);
    if (cmd[0] == '-')
        return img_usage_error("unrecognized option '%s'", cmd);
    for (const struct img_command *c = img_commands; c->name; c++) {
        if (strcmp(c->name, cmd) != 0)
            continue;
        /* "vdk-img CMD --help" / "-h" anywhere before "--". */
        for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++)
            if (c->options && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0))
                return img_command_help(cmd);
        img_getopt_reset();
        return c->run(argc - 1, argv + 1);
    }
    return img_usage_error("Command not found: %s", cmd);
}
