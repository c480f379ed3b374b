/* SPDX-License-Identifier: MIT */
/*
 * Which kernel the image would boot: every partition's filesystem is
 * searched for, in this order of preference,
 *   1. BLS Type #1 entries in /loader/entries or /boot/loader/entries;
 *   2. Debian's /vmlinuz and /initrd.img symlinks (or those in /boot);
 *   3. menuentry blocks of /boot/grub/grub.cfg (or /grub/, grub2/).
 * Paths in an entry are taken inside the filesystem that holds it; when
 * one is not there, "/boot" is put in front or taken off (a /boot that is
 * or is not its own partition).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "guest-boot/image/image.h"

static const char *kind_name[] = { "bls", "symlink", "grub" };

/* "partition N", or "whole disk" for a filesystem without a table. */
static const char *where(const struct img_part *p, char buf[32])
{
    if (!p->number)
        return "whole disk";
    snprintf(buf, 32, "partition %u", p->number);
    return buf;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int add_choice(struct img_boot *b, struct img_choice *c)
{
    if (b->n == IMG_CHOICES_MAX) {
        img_choice_clear(c);
        return 0;    /* enough to choose from */
    }
    b->choice[b->n++] = *c;
    memset(c, 0, sizeof(*c));
    return 0;
}

/* first_err: the first damaged entry, reported if nothing boots. */
static void scan_bls(struct img_boot *b, int part, struct img_fs *fs,
                     char *first_err, size_t errlen)
{
    char wb[32];
    static const char *dirs[] = { "/loader/entries", "/boot/loader/entries" };
    for (size_t d = 0; d < 2; d++) {
        char *names[IMG_BLS_FILES_MAX];
        int n = img_fs_list_dir(fs, dirs[d], names, IMG_BLS_FILES_MAX, NULL);
        struct img_choice *c = n > 0 ? calloc((size_t)n, sizeof(*c)) : NULL;
        int nc = 0;
        for (int i = 0; i < n; i++) {
            char path[IMG_PATH_MAX];
            uint8_t *text;
            size_t len;
            struct vdk_error *err = NULL;
            if (c && has_suffix(names[i], ".conf") &&
                strlen(names[i]) < sizeof(c->file)) {
                snprintf(path, sizeof(path), "%s/%s", dirs[d], names[i]);
                int r = img_fs_read_file(fs, path, IMG_TEXT_MAX, &text, &len, &err);
                if (r == 0) {
                    r = img_bls_parse((const char *)text, len, names[i],
                                      &c[nc], &err);
                    free(text);
                }
                if (r == 0)
                    c[nc++].part = part;
                else if (err && !first_err[0])
                    snprintf(first_err, errlen, "%s: %s",
                             where(&b->pt.part[part], wb), vdk_error_msg(err));
                vdk_error_free(err);
            }
            free(names[i]);
        }
        img_bls_sort(c, nc);
        for (int i = 0; i < nc; i++)
            add_choice(b, &c[i]);
        free(c);
    }
}

static void scan_grub(struct img_boot *b, int part, struct img_fs *fs,
                      int *def, char *first_err, size_t errlen)
{
    char wb[32];
    static const char *cfgs[] = { "/boot/grub/grub.cfg", "/grub/grub.cfg",
                                  "/boot/grub2/grub.cfg", "/grub2/grub.cfg" };
    for (size_t i = 0; i < 4; i++) {
        uint8_t *text;
        size_t len;
        struct vdk_error *err = NULL;
        if (img_fs_read_file(fs, cfgs[i], IMG_TEXT_MAX, &text, &len, NULL) < 0)
            continue;
        struct img_choice *c = calloc(IMG_CHOICES_MAX, sizeof(*c));
        int d = 0;
        int n = c ? img_grub_parse((const char *)text, len, c, IMG_CHOICES_MAX,
                                   &d, &err) : 0;
        free(text);
        if (n < 0 && err && !first_err[0])
            snprintf(first_err, errlen, "%s: %s",
                     where(&b->pt.part[part], wb), vdk_error_msg(err));
        vdk_error_free(err);
        if (n > 0 && *def < 0)
            *def = b->n + d;
        for (int k = 0; k < n; k++) {
            c[k].part = part;
            add_choice(b, &c[k]);
        }
        free(c);
        if (n > 0)
            return;
    }
}

static void root_option(const struct img_part *p, char *s, size_t n)
{
    if (p->uuid[0])
        snprintf(s, n, "root=PARTUUID=%s ro", p->uuid);
    else if (p->number)
        snprintf(s, n, "root=/dev/vda%u ro", p->number);
    else
        snprintf(s, n, "root=/dev/vda ro");
}

/* The options of a grub entry booting this very file, if there is one. */
static const char *grub_options_for(struct img_boot *b, int part,
                                    struct img_fs *fs, uint64_t id)
{
    for (int i = 0; i < b->n; i++) {
        struct img_choice *c = &b->choice[i];
        struct img_file f;
        if (c->kind == IMG_KIND_GRUB && c->part == part &&
            img_fs_resolve(fs, c->kernel, &f, NULL) == 0 && f.id == id)
            return c->options;
    }
    return NULL;
}

static void scan_links(struct img_boot *b, int part, struct img_fs *fs,
                       struct img_choice *out, int *nout, int max,
                       char *first_err, size_t errlen)
{
    char wb[32];
    static const char *dirs[] = { "", "/boot" };
    static const char *sfx[] = { "", ".old" };
    for (size_t d = 0; d < 2; d++)
        for (size_t s = 0; s < 2 && *nout < max; s++) {
            char k[64], i[64];
            struct img_file f;
            snprintf(k, sizeof(k), "%s/vmlinuz%s", dirs[d], sfx[s]);
            snprintf(i, sizeof(i), "%s/initrd.img%s", dirs[d], sfx[s]);
            struct vdk_error *err = NULL;
            int r = img_fs_resolve(fs, k, &f, &err);
            if (r < 0 && r != -ENOENT && err && !first_err[0])
                snprintf(first_err, errlen, "%s: %s",
                         where(&b->pt.part[part], wb), vdk_error_msg(err));
            vdk_error_free(err);
            if (r < 0 || f.type != IMG_REG)
                continue;
            struct img_choice *c = &out[(*nout)++];
            memset(c, 0, sizeof(*c));
            c->kind = IMG_KIND_LINK;
            c->part = part;
            snprintf(c->title, sizeof(c->title), "%s", k);
            c->kernel = strdup(k);
            struct img_file fi;
            if (img_fs_resolve(fs, i, &fi, NULL) == 0 && fi.type == IMG_REG &&
                (c->initrd[0] = strdup(i)))
                c->ninitrd = 1;
            const char *o = grub_options_for(b, part, fs, f.id);
            char root[80];
            root_option(&b->pt.part[part], root, sizeof(root));
            c->options = strdup(o ? o : root);
            if (!c->kernel || !c->options) {
                img_choice_clear(c);
                (*nout)--;
            }
        }
}

int img_boot_scan(const struct img_disk *d, struct img_boot *b,
                  struct vdk_error **errp)
{
    char wb[32];
    char unsupported[256] = "", damaged[256] = "";
    memset(b, 0, sizeof(*b));
    b->disk = d;
    if (img_part_scan(d, &b->pt, errp) < 0) {
        vdk_error_prepend(errp, "partition table");
        return -EINVAL;
    }
    for (int i = 0; i < b->pt.n; i++) {
        const struct img_part *p = &b->pt.part[i];
        struct img_vol v = { d, p->start, p->size };
        struct vdk_error *err = NULL;
        int r = img_fs_open(&v, &b->fs[i], &err);
        char *dst = r == -ENOTSUP ? unsupported : damaged;
        if (r < 0 && err && !dst[0])
            snprintf(dst, sizeof(unsupported), "%s: %s", where(p, wb),
                     vdk_error_msg(err));
        if (r < 0)
            b->fs[i] = NULL;
        vdk_error_free(err);
    }
    for (int i = 0; i < b->pt.n; i++)
        if (b->fs[i])
            scan_bls(b, i, b->fs[i], damaged, sizeof(damaged));
    /* grub entries are read before the symlinks so that a symlink entry
       takes the options of the grub entry booting the same kernel; the
       symlinks are listed first all the same. */
    int nbls = b->n, grub_def = -1;
    for (int i = 0; i < b->pt.n; i++)
        if (b->fs[i])
            scan_grub(b, i, b->fs[i], &grub_def, damaged, sizeof(damaged));
    struct img_choice *links = calloc(IMG_CHOICES_MAX, sizeof(*links));
    int nlinks = 0, room = IMG_CHOICES_MAX - b->n;
    for (int i = 0; i < b->pt.n && links; i++)
        if (b->fs[i])
            scan_links(b, i, b->fs[i], links, &nlinks, room, damaged,
                       sizeof(damaged));
    /* Put the symlink choices between the BLS and the grub ones. */
    memmove(&b->choice[nbls + nlinks], &b->choice[nbls],
            (size_t)(b->n - nbls) * sizeof(b->choice[0]));
    if (nlinks)
        memcpy(&b->choice[nbls], links, (size_t)nlinks * sizeof(links[0]));
    free(links);
    b->n += nlinks;
    b->def = nbls + nlinks > 0 || grub_def < 0 ? 0 : grub_def;
    if (b->n == 0) {
        if (unsupported[0])
            vdk_error_setf(errp, ENOTSUP, "%s; pass --kernel", unsupported);
        else if (damaged[0])
            vdk_error_setf(errp, EINVAL, "%s", damaged);
        else
            vdk_error_setf(errp, ENOENT, "no boot entry, /vmlinuz or grub.cfg "
                           "found on the image; pass --kernel");
        img_boot_free(b);
        return -ENOENT;
    }
    if (b->def >= b->n)
        b->def = 0;
    return 0;
}

void img_boot_free(struct img_boot *b)
{
    for (int i = 0; i < b->n; i++)
        img_choice_clear(&b->choice[i]);
    for (int i = 0; i < IMG_MAX_PARTS; i++)
        img_fs_close(b->fs[i]);
    memset(b, 0, sizeof(*b));
}

void img_boot_list(const struct img_boot *b, FILE *f)
{
    for (int i = 0; i < b->n; i++) {
        const struct img_choice *c = &b->choice[i];
        const struct img_part *p = &b->pt.part[c->part];
        char wb[32];
        fprintf(f, "%d%s %s (%s, %s)\n", i, i == b->def ? "*" : "",
                c->title, kind_name[c->kind], where(p, wb));
        fprintf(f, "    kernel  %s\n", c->kernel);
        fprintf(f, "    initrd ");
        for (int k = 0; k < c->ninitrd; k++)
            fprintf(f, " %s", c->initrd[k]);
        fprintf(f, "%s\n    options %s\n", c->ninitrd ? "" : " -", c->options);
    }
}

/* Read a path of the entry, trying it with "/boot" put in front or off. */
static int read_entry_file(struct img_fs *fs, const char *path, uint64_t max,
                           uint8_t **buf, size_t *len, struct vdk_error **errp)
{
    char alt[IMG_PATH_MAX + 8];
    struct vdk_error *err = NULL;
    int r = img_fs_read_file(fs, path, max, buf, len, &err);
    if (r != -ENOENT) {
        if (r < 0)
            vdk_error_propagate(errp, err);
        return r;
    }
    if (!strncmp(path, "/boot/", 6))
        snprintf(alt, sizeof(alt), "%s", path + 5);
    else
        snprintf(alt, sizeof(alt), "/boot%s%s", path[0] == '/' ? "" : "/", path);
    if (img_fs_read_file(fs, alt, max, buf, len, NULL) == 0) {
        vdk_error_free(err);
        return 0;
    }
    vdk_error_propagate(errp, err);
    return r;
}

int img_boot_load(struct img_boot *b, int index, uint64_t kmax, uint64_t imax,
                  struct img_loaded *out, struct vdk_error **errp)
{
    memset(out, 0, sizeof(*out));
    if (index < 0)
        index = b->def;
    if (index >= b->n)
        return vdk_error_setf(errp, EINVAL, "no entry %d (the image has %d; "
                              "see --kernel-from-image=list)", index, b->n);
    struct img_choice *c = &b->choice[index];
    struct img_fs *fs = b->fs[c->part];
    int r = read_entry_file(fs, c->kernel, kmax, &out->kernel,
                            &out->kernel_len, errp);
    if (r < 0)
        goto fail;
    for (int i = 0; i < c->ninitrd; i++) {
        uint8_t *p;
        size_t len, at = (out->initrd_len + 3) & ~(size_t)3;
        if ((r = read_entry_file(fs, c->initrd[i], imax, &p, &len, errp)) < 0)
            goto fail;
        if (at + len > imax) {
            free(p);
            r = vdk_error_setf(errp, EFBIG, "the initrds are larger than "
                               "guest memory");
            goto fail;
        }
        uint8_t *n = realloc(out->initrd, at + len ? at + len : 1);
        if (!n) {
            free(p);
            r = vdk_error_setf(errp, ENOMEM, "out of memory");
            goto fail;
        }
        memset(n + out->initrd_len, 0, at - out->initrd_len);
        memcpy(n + at, p, len);
        free(p);
        out->initrd = n;
        out->initrd_len = at + len;
    }
    if (!(out->cmdline = strdup(c->options))) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto fail;
    }
    return 0;
fail:;
    char wb[32];
    vdk_error_prepend(errp, "%s", where(&b->pt.part[c->part], wb));
    img_loaded_free(out);
    return r;
}

void img_loaded_free(struct img_loaded *l)
{
    free(l->kernel);
    free(l->initrd);
    free(l->cmdline);
    memset(l, 0, sizeof(*l));
}
