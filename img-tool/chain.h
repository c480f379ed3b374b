/* SPDX-License-Identifier: MIT */
/* vdk-img commit and rebase (cmd-commit.c). */
#ifndef VDK_IMG_CHAIN_H
#define VDK_IMG_CHAIN_H

int img_cmd_commit(int argc, char **argv);
int img_cmd_rebase(int argc, char **argv);
extern const char img_commit_options[], img_rebase_options[];

#endif
