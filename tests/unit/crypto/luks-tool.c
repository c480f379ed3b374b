/* SPDX-License-Identifier: MIT */
/*
 * luks-tool: a small libvdk driver for the LUKS integration tests and the
 * crypto benchmark, until vdk-img create/convert/amend cover them.
 *
 *   luks-tool [--object DEF]... create FMT FILE SIZE [OPTS]
 *   luks-tool [--object DEF]... read   OPENOPTS OUT      (whole payload -> raw file)
 *   luks-tool [--object DEF]... write  OPENOPTS IN       (raw file -> payload)
 *   luks-tool [--object DEF]... pwrite OPENOPTS OFFSET IN (IN's bytes at any
 *                                      guest offset: unaligned writes, COW)
 *   luks-tool [--object DEF]... info   OPENOPTS          (qemu-style JSON)
 *   luks-tool [--object DEF]... amend  OPENOPTS AMENDOPTS
 *   luks-tool [--object DEF]... fill   OPENOPTS BYTES CHUNK  (write BYTES of a
 *                                      pattern, for the benchmark)
 *   luks-tool cipher-bench MODE KEYBYTES BYTES [SECTOR]  (MiB/s of
 *                                      vdk_cipher_encrypt and _decrypt, CPU time)
 *   luks-tool pbkdf2-bench HASH      (PBKDF2 iterations/s, 256-bit key)
 * OPENOPTS is an --image-opts string ("driver=luks,key-secret=s,file.filename=x").
 * Errors print "luks-tool: message" and exit 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/crypto/crypto.h"
#include "vdk/block.h"
#include "vdk/secret.h"

#define CHUNK (1u << 20)

static int die(struct vdk_error *e)
{
    vdk_error_report("luks-tool", e);
    vdk_objects_clear();
    return 1;
}

/* Thread CPU time: the figure stays meaningful on a busy machine. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Encrypt then decrypt `total` bytes in 1 MiB requests with one cipher,
   as the luks driver does; prints "encrypt MiB/s decrypt MiB/s". */
static int cipher_bench(const char *mode, const char *keybytes, const char *total_s,
                        uint32_t ss)
{
    struct vdk_cipher_spec spec;
    struct vdk_cipher *c = NULL;
    struct vdk_error *e = NULL;
    uint64_t total;
    uint8_t key[64];
    if (vdk_parse_size(total_s, &total) < 0 ||
        vdk_cipher_spec_parse(&spec, "aes", mode, (uint32_t)atoi(keybytes), &e) < 0)
        return e ? die(e) : 2;
    for (int i = 0; i < 64; i++)
        key[i] = (uint8_t)(i * 37 + 11);
    if (vdk_cipher_new(&c, &spec, key, &e) < 0)
        return die(e);
    uint8_t *buf = malloc(CHUNK);
    if (!buf)
        return 1;
    memset(buf, 0x5a, CHUNK);
    double t[3];
    t[0] = now_s();
    for (uint64_t off = 0; off < total; off += CHUNK)
        vdk_cipher_encrypt(c, off / 512, ss, buf, buf, CHUNK);
    t[1] = now_s();
    for (uint64_t off = 0; off < total; off += CHUNK)
        vdk_cipher_decrypt(c, off / 512, ss, buf, buf, CHUNK);
    t[2] = now_s();
    double mib = (double)total / (1 << 20);
    printf("%.1f %.1f\n", mib / (t[1] - t[0]), mib / (t[2] - t[1]));
    free(buf);
    vdk_cipher_free(c);
    return 0;
}

static int open_image(struct vdk_node **n, const char *optstr, unsigned flags,
                      struct vdk_error **e)
{
    struct vdk_opts *o = vdk_opts_new();
    if (!o)
        return -ENOMEM;
    int r = vdk_opts_parse(o, optstr, NULL, e);
    if (r < 0) {
        vdk_opts_free(o);
        return r;
    }
    return vdk_open_opts(n, o, flags, e);
}

static int copy(struct vdk_node *n, FILE *f, bool to_image)
{
    int64_t len = vdk_get_length(n);
    char *buf = malloc(CHUNK);
    int r = len < 0 ? (int)len : buf ? 0 : -ENOMEM;
    for (uint64_t off = 0; r == 0 && off < (uint64_t)len; off += CHUNK) {
        size_t k = (size_t)((uint64_t)len - off < CHUNK ? (uint64_t)len - off : CHUNK);
        if (to_image) {
            size_t got = fread(buf, 1, k, f);
            memset(buf + got, 0, k - got);
            r = vdk_pwrite(n, buf, k, off, 0);
        } else {
            r = vdk_pread(n, buf, k, off, 0);
            if (r == 0 && fwrite(buf, 1, k, f) != k)
                r = -EIO;
        }
    }
    free(buf);
    return r;
}

int main(int argc, char **argv)
{
    struct vdk_error *e = NULL;
    struct vdk_node *n = NULL;
    int i = 1, r;
    while (i + 1 < argc && strcmp(argv[i], "--object") == 0) {
        if (vdk_object_add(argv[i + 1], &e) < 0)
            return die(e);
        i += 2;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: see the comment in luks-tool.c\n");
        return 2;
    }
    const char *cmd = argv[i++];
    int left = argc - i;
    if (strcmp(cmd, "cipher-bench") == 0 && (left == 3 || left == 4))
        return cipher_bench(argv[i], argv[i + 1], argv[i + 2],
                            left == 4 ? (uint32_t)atoi(argv[i + 3]) : 512);
    if (strcmp(cmd, "pbkdf2-bench") == 0 && left == 1) {
        int h = vdk_hash_parse(argv[i]);
        if (h < 0)
            return 2;
        printf("%llu\n", (unsigned long long)vdk_pbkdf2_iters_per_sec((enum vdk_hash)h, 32));
        return 0;
    }
    if (strcmp(cmd, "create") == 0 && (left == 3 || left == 4)) {
        struct vdk_opts *o = vdk_opts_new();
        if (left == 4 && vdk_opts_parse(o, argv[i + 3], NULL, &e) < 0) {
            vdk_opts_free(o);
            return die(e);
        }
        vdk_opts_set(o, "size", argv[i + 2]);
        if (vdk_create(argv[i], argv[i + 1], o, &e) < 0)
            return die(e);
    } else if ((strcmp(cmd, "read") == 0 || strcmp(cmd, "write") == 0) && left == 2) {
        bool w = cmd[0] == 'w';
        if (open_image(&n, argv[i], w ? VDK_O_RDWR : 0, &e) < 0)
            return die(e);
        FILE *f = fopen(argv[i + 1], w ? "rb" : "wb");
        r = f ? copy(n, f, w) : -errno;
        if (f)
            fclose(f);
        if (r == 0)
            r = vdk_close(n);
        else
            vdk_close(n);
        if (r < 0) {
            fprintf(stderr, "luks-tool: %s: %s\n", cmd, strerror(-r));
            return 1;
        }
    } else if (strcmp(cmd, "pwrite") == 0 && left == 3) {
        uint64_t at;
        FILE *f = NULL;
        char *buf = malloc(CHUNK);
        size_t got = 0;
        if (vdk_parse_uint(argv[i + 1], &at) < 0 || !buf || !(f = fopen(argv[i + 2], "rb"))) {
            fprintf(stderr, "luks-tool: pwrite: bad offset or input\n");
            free(buf);
            return 1;
        }
        got = fread(buf, 1, CHUNK, f);
        fclose(f);
        if (open_image(&n, argv[i], VDK_O_RDWR, &e) < 0) {
            free(buf);
            return die(e);
        }
        r = vdk_pwrite(n, buf, got, at, 0);
        free(buf);
        int c = vdk_close(n);
        if (r < 0 || c < 0) {
            fprintf(stderr, "luks-tool: pwrite: %s\n", strerror(r < 0 ? -r : -c));
            return 1;
        }
    } else if (strcmp(cmd, "info") == 0 && left == 1) {
        struct vdk_image_info info = VDK_IMAGE_INFO_INIT;
        if (open_image(&n, argv[i], 0, &e) < 0 || vdk_get_info(n, &info, &e) < 0) {
            if (n)
                vdk_close(n);
            return die(e);
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "virtual-size", json_object_new_int64((int64_t)info.virtual_size));
        json_object_object_add(o, "format", json_object_new_string(info.format));
        json_object_object_add(o, "encrypted", json_object_new_boolean(info.encrypted));
        if (info.format_specific)
            json_object_object_add(o, "format-specific", json_tokener_parse(info.format_specific));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                      JSON_C_TO_STRING_SPACED));
        json_object_put(o);
        vdk_image_info_clear(&info);
        vdk_close(n);
    } else if (strcmp(cmd, "amend") == 0 && left == 2) {
        if (open_image(&n, argv[i], VDK_O_RDWR, &e) < 0)
            return die(e);
        struct vdk_opts *o = vdk_opts_new();
        if (vdk_opts_parse(o, argv[i + 1], NULL, &e) < 0 || vdk_amend(n, o, &e) < 0) {
            vdk_opts_free(o);
            vdk_close(n);
            return die(e);
        }
        vdk_opts_free(o);
        vdk_close(n);
    } else if (strcmp(cmd, "fill") == 0 && left == 3) {
        uint64_t total, chunk;
        if (vdk_parse_size(argv[i + 1], &total) < 0 || vdk_parse_size(argv[i + 2], &chunk) < 0 ||
            !chunk || chunk > (64u << 20)) {
            fprintf(stderr, "luks-tool: bad size\n");
            return 1;
        }
        if (open_image(&n, argv[i], VDK_O_RDWR, &e) < 0)
            return die(e);
        char *buf = malloc(chunk);
        r = buf ? 0 : -ENOMEM;
        for (uint64_t k = 0; buf && k < chunk; k++)
            buf[k] = (char)(k * 131 + 7);
        for (uint64_t off = 0; r == 0 && off < total; off += chunk)
            r = vdk_pwrite(n, buf, total - off < chunk ? total - off : chunk, off, 0);
        free(buf);
        int c = vdk_close(n);
        if (r < 0 || c < 0) {
            fprintf(stderr, "luks-tool: fill: %s\n", strerror(r < 0 ? -r : -c));
            return 1;
        }
    } else {
        fprintf(stderr, "luks-tool: bad command line\n");
        return 2;
    }
    vdk_objects_clear();
    return 0;
}
