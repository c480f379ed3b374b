/* SPDX-License-Identifier: MIT */
/*
 * OVA: a tar archive (ustar, with pax extended headers) holding an OVF
 * descriptor (XML), an optional manifest (.mf) and the disks, usually
 * streamOptimized VMDKs.  The "ova" driver reads one disk in place
 * through an offset window into the tar (a raw node with offset/size)
 * under a vmdk node; nothing is extracted.
 *
 * Files: tar.c (archive index), ovf.c (disk list from the OVF, manifest
 * digests), ova.c (driver).
 */
#ifndef VDK_FORMATS_OVA_H
#define VDK_FORMATS_OVA_H

#include <stddef.h>
#include <stdint.h>

#include "block/driver.h"

/* Bounds on what an archive may claim. */
#define OVA_MAX_ENTRIES   4096u
#define OVA_MAX_NAME      1024u
#define OVA_MAX_PAX       (64u << 10)   /* one pax header block */
#define OVA_MAX_OVF       (4u << 20)    /* OVF descriptor */
#define OVA_MAX_MANIFEST  (1u << 20)
#define OVA_MAX_DISKS     256u

struct tar_entry {
    char *name;
    uint64_t offset;   /* of the data in the archive */
    uint64_t size;
};

struct tar_index {
    struct tar_entry *e;
    size_t n;
};

/*
 * Index the regular files of the tar in `file` (length len): ustar and
 * old-style headers with checksums, pax 'x' records (path, size), GNU 'L'
 * long names; 'g' headers and other types are skipped.  Every size and
 * offset is checked against len.
 */
int tar_index_read(struct vdk_node *file, uint64_t len, struct tar_index *idx,
                   struct vdk_error **errp);
void tar_index_free(struct tar_index *idx);
const struct tar_entry *tar_find(const struct tar_index *idx, const char *name);
/* Parse one 512-byte header (fuzzing and the reader): 0 ok, 1 end of
   archive (zero block), -EINVAL bad.  *type, *size, name into buf. */
int tar_header_parse(const uint8_t h[512], char name[OVA_MAX_NAME], char *type,
                     uint64_t *size);

struct ovf_disk {
    char *href;         /* file name in the archive */
    char *format;       /* ovf:format URI, may be NULL */
    uint64_t capacity;  /* bytes (capacity x allocation units) */
    uint64_t file_size; /* ovf:size of the file, 0 unknown */
};

struct ovf_info {
    struct ovf_disk *disks;
    size_t n;
};

/*
 * Disks of an OVF descriptor, in DiskSection order, resolved through the
 * References section.  No DTD, no entities (refused), bounded size.
 */
int ovf_parse(const char *xml, size_t len, struct ovf_info *out, struct vdk_error **errp);
void ovf_info_free(struct ovf_info *o);

/*
 * Check the manifest's digests (SHA1(name)= hex, SHA256(name)= hex) of
 * every file it lists against the archive.  -EINVAL naming the file on a
 * mismatch.
 */
int ova_manifest_verify(struct vdk_node *file, const struct tar_index *idx,
                        const char *mf, size_t len, struct vdk_error **errp);

#endif /* VDK_FORMATS_OVA_H */
