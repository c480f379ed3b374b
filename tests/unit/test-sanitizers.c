/* SPDX-License-Identifier: MIT */
/*
 * Proof that the sanitizer build runs the tests with the sanitizers armed:
 * in build-asan (VDK_TEST_SANITIZED) it runs itself three times, leaking
 * memory, overflowing a signed int and writing past a heap block, and each
 * child must die with the matching report.  That fails if the environment
 * of tests/meson.build stops setting detect_leaks or halt_on_error, or if
 * the build loses its -fsanitize flags.  In a plain build there is nothing
 * to check.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile sink;

static int child(const char *what)
{
    if (strcmp(what, "leak") == 0) {
        sink = malloc(4096);
        sink = NULL;
        return 0;
    }
    if (strcmp(what, "ub") == 0) {
        volatile int x = INT_MAX, one = 1;
        x += one;
        return x == 0;
    }
    if (strcmp(what, "heap") == 0) {
        volatile size_t i = 16; /* opaque, so only ASan can see the overflow */
        volatile char *p = malloc(i);
        p[i] = 1;
        free((void *)p);
        return 0;
    }
    return 2;
}

#ifdef VDK_TEST_SANITIZED
static int expect_report(const char *what, const char *report)
{
    char cmd[128], out[65536];
    snprintf(cmd, sizeof(cmd), "/proc/%d/exe %s 2>&1", (int)getpid(), what);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 1;
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    if (st == 0 || !strstr(out, report)) {
        fprintf(stderr, "FAIL: '%s' exited with status %d without \"%s\":\n%s\n", what, st,
                report, out);
        return 1;
    }
    printf("ok: %s stopped with \"%s\"\n", what, report);
    return 0;
}
#endif

int main(int argc, char **argv)
{
    if (argc > 1)
        return child(argv[1]);
#ifdef VDK_TEST_SANITIZED
    int bad = expect_report("leak", "LeakSanitizer: detected memory leaks") +
              expect_report("ub", "runtime error: signed integer overflow") +
              expect_report("heap", "AddressSanitizer: heap-buffer-overflow");
    return bad ? 1 : 0;
#else
    printf("plain build: no sanitizers to check\n");
    return 0;
#endif
}
