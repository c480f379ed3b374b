/* SPDX-License-Identifier: MIT */
/* vdk-img: entry point and subcommand dispatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "img.h"

int img_cmd_help(int argc, char **argv);

const struct img_command img_commands[] = {
    { "help", img_cmd_help, "help" },
    { "commit", img_cmd_commit,
      "commit [--object objectdef] [--image-opts] [-q] [-f fmt] [-t cache] [-b base] "
      "[-r rate_limit] [-d] [-p] filename" },
    { "rebase", img_cmd_rebase,
      "rebase [--object objectdef] [--image-opts] [-U] [-q] [-f fmt] [-t cache] "
      "[-T src_cache] [-p] [-u] -b backing_file [-F backing_fmt] filename" },
    { NULL, NULL, NULL },
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
    print_help(stdout);
    return 0;
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
    for (const struct img_command *c = img_commands; c->name; c++)
        if (strcmp(c->name, cmd) == 0)
            return c->run(argc - 1, argv + 1);
    return img_usage_error("Command not found: %s", cmd);
}
