/* SPDX-License-Identifier: MIT */
/*
 * The kernel an image would boot: vdk-boot without --kernel reads the
 * image's partition table and the filesystem holding /boot, picks the
 * entry a boot loader would pick, and loads that kernel and initrd.
 *
 *   part.c   GPT (primary, else the backup at the disk's end) and MBR
 *            with extended/logical partitions
 *   fs.c     volumes, filesystem detection (and the one-line error naming
 *            an unsupported one), path resolution with symlinks
 *   ext4.c   ext2/3/4 read-only: extents, indirect blocks, linear reading
 *            of htree directories, fast and slow symlinks, 64bit
 *   vfat.c   FAT12/16/32 with long names (an ESP)
 *   bls.c    Boot Loader Specification Type #1 entries and their order
 *   grub.c   the menuentry lines of grub.cfg (no scripting)
 *   choose.c the scan over partitions, the list, loading the chosen entry
 *   load.c   vdk-boot's side: the disk through a libvdk node, extract:DIR
 *
 * Everything here reads an untrusted image.  Every size, offset and count
 * taken from it is bounded before use (the bounds are named below), loops
 * in on-disk structures end at a count, and a damaged image gives a
 * one-line error.  Nothing here writes: the disk is read through a
 * callback, opened read-only by the caller.
 */
#ifndef VDK_BOOT_IMAGE_H
#define VDK_BOOT_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vdk/error.h"

/* ---- the disk and volumes (fs.c) ---- */

struct img_disk {
    /* Read exactly len bytes at off; 0 or -errno. */
    int (*read)(void *opaque, void *buf, size_t len, uint64_t off);
    void *opaque;
    uint64_t size;
};

/* A byte range of the disk: a partition, or the whole disk. */
struct img_vol {
    const struct img_disk *disk;
    uint64_t off, size;
};

/* Read [off, off+len) of the volume; -ERANGE when it leaves the volume. */
int img_vol_read(const struct img_vol *v, void *buf, size_t len, uint64_t off);

/* A struct img_disk over a memory buffer (fuzz targets, tests). */
struct img_mem {
    const uint8_t *data;
    size_t size;
};
void img_disk_from_mem(struct img_disk *d, struct img_mem *m);

/* ---- partition tables (part.c) ---- */

#define IMG_MAX_PARTS 128      /* GPT entries and MBR partitions we take */
#define IMG_GPT_ENTRIES_MAX 1024
#define IMG_GPT_ARRAY_MAX (1u << 20) /* bytes of GPT entry array */
#define IMG_MBR_LOGICAL_MAX 64 /* EBRs followed in an extended partition */

enum img_pt_kind { IMG_PT_NONE, IMG_PT_MBR, IMG_PT_GPT };

struct img_part {
    unsigned number;           /* as Linux numbers it; 0: the whole disk */
    uint64_t start, size;      /* bytes */
    uint8_t mbr_type;          /* MBR type byte; 0 on GPT */
    uint8_t type_guid[16];     /* GPT type; zero on MBR */
    char uuid[40];             /* for root=PARTUUID=, "" when unknown */
};

struct img_ptable {
    enum img_pt_kind kind;
    bool used_backup;          /* GPT: primary damaged, backup used */
    char note[160];            /* why the backup was used */
    int n;
    struct img_part part[IMG_MAX_PARTS];
};

/*
 * Read the partition table.  No table (no 0x55aa signature, or a boot
 * sector of a filesystem): one "partition" 0 covering the disk.  A damaged
 * table, partitions outside the disk or overlapping: an error.
 */
int img_part_scan(const struct img_disk *d, struct img_ptable *t,
                  struct vdk_error **errp);

/* ---- filesystems (fs.c, ext4.c, vfat.c) ---- */

#define IMG_PATH_MAX 4096
#define IMG_SYMLINK_MAX 16      /* symlinks followed in one resolution */
#define IMG_COMPONENTS_MAX 256  /* path components walked in one resolution */
#define IMG_NAME_MAX 255

enum img_ftype { IMG_REG = 1, IMG_DIR, IMG_LNK, IMG_OTHER };

/* An open file: what the filesystem needs to read it again. */
struct img_file {
    enum img_ftype type;
    uint64_t size;
    uint64_t id;               /* inode number / directory entry offset */
    uint8_t priv[160];         /* the raw inode / directory entry */
};

struct img_fs;

/* Called per directory entry; return 1 to stop, 0 to go on, <0 error. */
typedef int (*img_dir_fn)(void *ctx, const char *name, size_t len,
                          uint64_t id);

struct img_fs_ops {
    const char *name;
    bool fold_case;            /* names compare case-insensitively */
    int (*root)(struct img_fs *fs, struct img_file *out,
                struct vdk_error **errp);
    int (*open)(struct img_fs *fs, uint64_t id, struct img_file *out,
                struct vdk_error **errp);
    int (*iterate)(struct img_fs *fs, const struct img_file *dir,
                   img_dir_fn fn, void *ctx, struct vdk_error **errp);
    /* Reads inside the file's size only (callers check). */
    int (*pread)(struct img_fs *fs, const struct img_file *f, void *buf,
                 size_t len, uint64_t off, struct vdk_error **errp);
    void (*close)(struct img_fs *fs);
};

struct img_fs {
    const struct img_fs_ops *ops;
    struct img_vol vol;
    void *priv;
};

/*
 * Open the filesystem on a volume.  Returns 0 and *out (free with
 * img_fs_close), -ENOENT quietly when the volume holds nothing we know
 * (no error set), or -ENOTSUP with an error naming the filesystem
 * ("btrfs is not supported") or another error for a damaged one.
 */
int img_fs_open(const struct img_vol *v, struct img_fs **out,
                struct vdk_error **errp);
void img_fs_close(struct img_fs *fs);

int img_ext4_open(const struct img_vol *v, struct img_fs **out,
                  struct vdk_error **errp);
int img_vfat_open(const struct img_vol *v, struct img_fs **out,
                  struct vdk_error **errp);
/* Name of a filesystem we do not read, from its magic; NULL if unknown. */
const char *img_fs_foreign(const struct img_vol *v);

/*
 * Resolve an absolute path, following symlinks (IMG_SYMLINK_MAX) and ".."
 * (at most IMG_COMPONENTS_MAX components in all).  -ENOENT when a
 * component does not exist (the error says which).
 */
int img_fs_resolve(struct img_fs *fs, const char *path, struct img_file *out,
                   struct vdk_error **errp);

/* Read a whole regular file of at most max bytes into malloc'd *buf. */
int img_fs_read_file(struct img_fs *fs, const char *path, uint64_t max,
                     uint8_t **buf, size_t *len, struct vdk_error **errp);

/* Names in a directory (up to max, each malloc'd); the count or -errno. */
int img_fs_list_dir(struct img_fs *fs, const char *path, char **names,
                    int max, struct vdk_error **errp);

/* ---- boot entries (bls.c, grub.c) ---- */

#define IMG_INITRD_MAX 8
#define IMG_TEXT_MAX (256u << 10)  /* entry files and grub.cfg */
#define IMG_OPTIONS_MAX 4096
#define IMG_CHOICES_MAX 64
#define IMG_BLS_FILES_MAX 256

enum img_kind { IMG_KIND_BLS, IMG_KIND_LINK, IMG_KIND_GRUB };

struct img_choice {
    enum img_kind kind;
    int part;                  /* index into the partition table */
    char title[128];
    char sort_key[64], machine_id[64], version[64], file[128]; /* BLS order */
    char *kernel;              /* path inside the filesystem */
    char *initrd[IMG_INITRD_MAX];
    int ninitrd;
    char *options;             /* never NULL once parsed */
};

void img_choice_clear(struct img_choice *c);
/* Shared by the entry parsers: join an option word (IMG_OPTIONS_MAX in
   all); replace *slot with a copy of a path (below IMG_PATH_MAX). */
int img_options_add(char **opts, const char *word, size_t len,
                    struct vdk_error **errp);
int img_add_path(char **slot, const char *v, size_t len,
                 struct vdk_error **errp);

/*
 * One BLS Type #1 entry file.  -ENOENT (no error) for an entry without a
 * "linux" line (e.g. a Type #2 "efi" entry); other errors for damage.
 */
int img_bls_parse(const char *text, size_t len, const char *file,
                  struct img_choice *out, struct vdk_error **errp);
/* The Boot Loader Specification's order: the default entry first. */
void img_bls_sort(struct img_choice *c, int n);
/* UAPI version comparison (used for the order). */
int img_version_cmp(const char *a, const char *b);

/*
 * The menuentry blocks of a grub.cfg (entries in submenus included, in
 * file order), up to max; *def is the index "set default" names (0 when
 * it names none we understand).  Returns the count or -errno.
 */
int img_grub_parse(const char *text, size_t len, struct img_choice *out,
                   int max, int *def, struct vdk_error **errp);

/* ---- the scan (choose.c) ---- */

struct img_boot {
    const struct img_disk *disk;
    struct img_ptable pt;
    struct img_fs *fs[IMG_MAX_PARTS];
    struct img_choice choice[IMG_CHOICES_MAX];
    int n;
    int def;                   /* the entry a boot loader would boot */
};

/*
 * Scan every partition's filesystem for BLS entries, Debian's
 * /vmlinuz + /initrd.img symlinks and grub.cfg; the choices are listed in
 * that order and the default is the first BLS entry, else the first
 * symlink pair, else grub.cfg's default.  No choice at all: an error
 * naming the unsupported filesystem seen, if any.
 */
int img_boot_scan(const struct img_disk *d, struct img_boot *b,
                  struct vdk_error **errp);
void img_boot_free(struct img_boot *b);
/* "index title kernel initrd options" lines, the default marked '*'. */
void img_boot_list(const struct img_boot *b, FILE *f);

struct img_loaded {
    uint8_t *kernel;
    size_t kernel_len;
    uint8_t *initrd;           /* the initrds concatenated, 4-byte aligned */
    size_t initrd_len;
    char *cmdline;             /* the entry's options (root= synthesised for
                                  the symlink layout) */
};

/* Read entry `index` (-1: the default); kernel at most kmax bytes. */
int img_boot_load(struct img_boot *b, int index, uint64_t kmax,
                  uint64_t imax, struct img_loaded *out,
                  struct vdk_error **errp);
void img_loaded_free(struct img_loaded *l);

/* ---- vdk-boot's side (load.c) ---- */

struct vdk_node;
/* Read the image through a libvdk node (any format and chain). */
int img_disk_from_node(struct img_disk *d, struct vdk_node *n,
                       struct vdk_error **errp);
/* --kernel-from-image=extract:DIR: DIR/vmlinuz, DIR/initrd (when the
   entry has one: the initrds as they would be loaded) and DIR/cmdline. */
int img_extract(const struct img_loaded *l, const char *dir,
                struct vdk_error **errp);

#endif /* VDK_BOOT_IMAGE_H */
