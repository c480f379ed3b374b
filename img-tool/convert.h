/* SPDX-License-Identifier: MIT */
/*
 * vdk-img convert, compare and dd: the subcommands and the copy engine
 * they share.
 *
 * Sizes follow qemu-img: every image length is rounded up to whole
 * 512-byte sectors (a 1000000-byte raw file is a 1000448-byte image whose
 * tail reads as zeros), so converted images, dd output and compare
 * results match qemu-img's.
 */
#ifndef VDK_IMG_CONVERT_H
#define VDK_IMG_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "img.h"
#include "progress.h"

#define CVT_SECTOR 512u
/* Largest number of parallel requests (-m), as qemu-img; its default of
   8 is the most cvt_default_workers() gives. */
#define CVT_DEFAULT_WORKERS 8
#define CVT_MAX_WORKERS 16

/*
 * The number of workers when -m is not given: two per CPU this process
 * may run on, at least 2 and at most CVT_DEFAULT_WORKERS.  A worker is a
 * thread that alternates CPU work (zero scans, compression, copies) with
 * blocking I/O, so two per CPU keep each CPU busy while one waits.  More
 * only contend: ext4 takes one inode lock per buffered write, and on 2
 * CPUs 8 workers converted 1 GiB into a raw file 10-30% slower than 4.
 * qemu-img's 8 are coroutines in one thread, which cost nothing idle.
 */
int cvt_default_workers(void);
/* Copy buffer per request: qemu-img's 2 MiB, which also decides where
   zero runs inside data become holes (kept identical on purpose). */
#define CVT_BUF_SIZE (2u << 20)
/* Largest -S value. */
#define CVT_MAX_SPARSE (16u << 20)

static inline uint64_t cvt_round_len(uint64_t len)
{
    return (len + CVT_SECTOR - 1) & ~(uint64_t)(CVT_SECTOR - 1);
}

/*
 * Read [off, off+bytes) of node n whose real length is len; bytes past
 * len (the sector round-up) read as zeros.  -errno on failure.
 */
int cvt_read(struct vdk_node *n, uint64_t len, void *buf, uint64_t bytes,
             uint64_t off);

/*
 * Block status of [off, off+bytes) through the chain above base, with the
 * range past len reported as ZERO.  Returns flags and *pnum, or -errno;
 * map and file (may be NULL) as vdk_block_status_above() gives them.
 */
int cvt_status(struct vdk_node *n, struct vdk_node *base, uint64_t len,
               uint64_t off, uint64_t bytes, uint64_t *pnum, uint64_t *map,
               struct vdk_node **file);

struct cvt_source {
    struct vdk_node *node;
    const char *name;    /* for messages */
    uint64_t len;        /* real length */
    uint64_t size;       /* len rounded up to sectors */
    uint32_t align;      /* status runs end on multiples of this (cluster) */
};

struct cvt_params {
    struct cvt_source *src;  /* concatenated in order */
    size_t nsrc;
    struct vdk_node *target;
    uint64_t total;          /* sum of src[].size */
    uint64_t min_sparse;     /* -S in bytes, 0: write every byte */
    uint32_t target_align;   /* target request alignment */
    bool has_zero_init;      /* target reads as zeros: skip zero ranges */
    bool target_has_backing; /* leave ranges from the source's backing */
    bool compressed;         /* -c: whole clusters with VDK_REQ_COMPRESSED */
    uint32_t cluster_size;   /* target cluster size when compressed */
    int workers;             /* -m */
    bool out_of_order;       /* -W */
    struct progress *progress; /* may be NULL */
    struct vdk_ratelimit *limit; /* -r: writes pay first; NULL: none */
    struct cvt_salvage *salvage; /* --salvage: failed reads become zeros,
                                    recorded here; NULL: they fail */
};

/*
 * Read [pos, pos+n) of the concatenated sources into buf (-errno on the
 * first failure).
 */
int cvt_read_stream(const struct cvt_params *p, uint64_t pos, uint64_t n, uint8_t *buf);

/*
 * --salvage (convert-salvage.c).  A read that failed is read again sector
 * by sector as qemu-img does; the sectors that still fail read as zeros
 * and are recorded, and a block status that fails is recorded and its
 * sector copied as data.  The records become one warning per failed
 * range, merged and in offset order, when cvt_salvage_report() runs.
 * Thread-safe: the workers record into one list.
 */
struct cvt_salvage;
enum cvt_salvage_kind { CVT_SALVAGE_READ, CVT_SALVAGE_STATUS };
int cvt_salvage_new(struct cvt_salvage **out);
void cvt_salvage_free(struct cvt_salvage *sv);
/* Read [pos, pos+n) sector by sector; 0, or -errno when even recording
   fails (out of memory). */
int cvt_salvage_read(const struct cvt_params *p, uint64_t pos, uint64_t n, uint8_t *buf);
/* Record that [off, off+len) of source si failed with err; 0 or -ENOMEM. */
int cvt_salvage_failed(struct cvt_salvage *sv, enum cvt_salvage_kind kind, size_t si,
                       uint64_t off, uint64_t len, int err);
/* Print the warnings ("vdk-img: warning: error while reading offset N
   (L bytes): reason") unless quiet; returns how many ranges failed. */
size_t cvt_salvage_report(struct cvt_salvage *sv, const struct cvt_params *p, bool quiet);

/*
 * Copy the sources into the target with a pool of p->workers threads
 * (reads, zero detection and compression run in parallel; writes keep
 * offset order unless out_of_order or compressed: compressed writes are
 * issued as soon as they are ready).  Ranges the sources report as
 * holes or zeros are never read.  Prints a qemu-img style message and
 * returns 1 on failure, 0 on success.
 */
int cvt_run(const struct cvt_params *p);

/* convert-bitmaps.c: --bitmaps [--skip-broken-bitmaps].  Each returns -1
   to go on, else the exit code (cvt_bitmaps_copy: 0 or 1). */
int cvt_bitmaps_check_args(bool bitmaps, bool skip_broken, size_t nsrc);
int cvt_bitmaps_check_source(struct vdk_node *src, bool skip_broken);
int cvt_bitmaps_check_target(struct vdk_node *tgt);
int cvt_bitmaps_copy(struct vdk_node *src, struct vdk_node *tgt, bool skip_broken);

#endif
