/* SPDX-License-Identifier: MIT */
/*
 * Corpus replay for libFuzzer targets, used when the build has no libFuzzer
 * (gcc builds, and the fuzz-corpus test suite everywhere).
 *
 *   fuzz-X-replay [-m MUTATIONS] FILE|DIR...
 *
 * Runs LLVMFuzzerTestOneInput on every file, then on MUTATIONS
 * deterministic variants of each (bit flips, interesting byte values,
 * truncations, 32/64-bit field overwrites; every other one from the
 * target's structure-aware mutator, which every target has now), seeded
 * from the file name so a failure reproduces.  A crash or sanitizer report fails the run; the
 * variant is written to ./crash-<target>-<n> first so it can be kept.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* A target's structure-aware mutator (fuzz-mutator.h), when it has one. */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
    __attribute__((weak));
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

#define REPLAY_MAX_INPUT (16u << 20)

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* xorshift64*: deterministic, good enough to spread mutations. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h ? h : 1;
}

static void mutate(uint8_t *buf, size_t *len)
{
    static const uint8_t interesting[] = { 0x00, 0xff, 0x7f, 0x80, 0x01, 0x10, 0x40 };
    static const uint64_t interesting64[] = {
        0, 1, 0x7fffffffffffffffull, 0xffffffffffffffffull, 0x8000000000000000ull,
        0xffffffffull, 0x100000000ull, 0x200, 0x10000, 0xfffffe00ull,
    };
    if (*len == 0)
        return;
    switch (rng() % 5) {
    case 0: /* flip a few bits */
        for (int i = 0, n = 1 + (int)(rng() % 4); i < n; i++)
            buf[rng() % *len] ^= (uint8_t)(1u << (rng() % 8));
        break;
    case 1:
        buf[rng() % *len] = interesting[rng() % sizeof(interesting)];
        break;
    case 2: /* overwrite an aligned 32- or 64-bit field, both endians */
        if (*len >= 8) {
            size_t off = (size_t)(rng() % (*len - 7)) & ~(size_t)3;
            uint64_t v = interesting64[rng() % (sizeof(interesting64) / 8)];
            int width = (rng() & 1) ? 8 : 4;
            bool big = rng() & 1;
            for (int i = 0; i < width; i++)
                buf[off + (size_t)i] = (uint8_t)(v >> (8 * (big ? width - 1 - i : i)));
        }
        break;
    case 3: /* truncate */
        *len = (size_t)(rng() % *len);
        break;
    default: /* random byte */
        buf[rng() % *len] = (uint8_t)rng();
        break;
    }
}

/* libFuzzer's byte mutator, for the structure-aware mutators' fallback. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size)
{
    (void)max_size;
    mutate(data, &size);
    return size;
}

static int run_file(const char *path, unsigned mutations, const char *tag)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    uint8_t *data = malloc(REPLAY_MAX_INPUT);
    uint8_t *work = malloc(REPLAY_MAX_INPUT);
    if (!data || !work) {
        fclose(f);
        free(data);
        free(work);
        return 1;
    }
    size_t len = fread(data, 1, REPLAY_MAX_INPUT, f);
    fclose(f);
    LLVMFuzzerTestOneInput(data, len);
    rng_state = hash_name(path);
    char crash[256];
    snprintf(crash, sizeof(crash), "crash-%s-last", tag);
    /* One descriptor for the whole run, rewritten in place: reopening with
       truncation makes ext4 flush on every close (auto_da_alloc), which
       cost seconds per target. */
    int cfd = open(crash, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    for (unsigned m = 0; m < mutations; m++) {
        size_t wl = len;
        memcpy(work, data, len);
        if (LLVMFuzzerCustomMutator && (m & 1))
            wl = LLVMFuzzerCustomMutator(work, wl, REPLAY_MAX_INPUT, (unsigned)rng());
        else
            for (int k = 0, n = 1 + (int)(rng() % 3); k < n; k++)
                mutate(work, &wl);
        /* Keep the input that is about to run, so a crash leaves it behind. */
        if (cfd >= 0 && (pwrite(cfd, work, wl, 0) != (ssize_t)wl || ftruncate(cfd, (off_t)wl)))
            perror(crash);
        LLVMFuzzerTestOneInput(work, wl);
    }
    if (cfd >= 0)
        close(cfd);
    remove(crash);
    free(data);
    free(work);
    return 0;
}

static int run_path(const char *path, unsigned mutations, const char *tag, unsigned *count)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        perror(path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return run_file(path, mutations, tag);
    }
    DIR *d = opendir(path);
    if (!d) {
        perror(path);
        return 1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) && !rc) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        rc = run_path(sub, mutations, tag, count);
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned mutations = 300;
    int i = 1;
    if (argc > 2 && strcmp(argv[1], "-m") == 0) {
        mutations = (unsigned)strtoul(argv[2], NULL, 10);
        i = 3;
    }
    const char *tag = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    unsigned count = 0;
    for (; i < argc; i++)
        if (run_path(argv[i], mutations, tag, &count))
            return 1;
    printf("%s: %u inputs, %u mutations each (%s), no crash\n", tag, count, mutations,
           LLVMFuzzerCustomMutator ? "half structure-aware" : "bytes only");
    return 0;
}
