/* SPDX-License-Identifier: MIT */
/*
 * The file protocol (protocols/file.c, protocols/file-lock.c) on temporary files:
 * SEEK_DATA/SEEK_HOLE status, zero writes that punch holes, preallocation,
 * image locks between two opens in one process, O_DIRECT with
 * unaligned buffers and requests, and zero-copy mappings (vdk_node_map),
 * including a file truncated under the mapping.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "unit-util.h"

#define MiB (1u << 20)

static char dir[4096];

static int setup(void **state)
{
    /* Under the build tree, not /tmp: that is where images of the suite
       live, and tmpfs may lack O_DIRECT or holes. */
    const char *b = getenv("VDK_BUILD");
    snprintf(dir, sizeof(dir), "%s/vdk-unit-file.XXXXXX", b ? b : ".");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *path(const char *name)
{
    static char p[4200];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return p;
}

static void create(const char *name, const char *opts)
{
    struct vdk_error *err = NULL;
    if (vdk_create("raw", path(name), unit_opts(opts), &err) < 0)
        fail_msg("create %s: %s", name, vdk_error_msg(err));
}

static int64_t blocks(const char *name)
{
    struct stat st;
    assert_int_equal(stat(path(name), &st), 0);
    return (int64_t)st.st_blocks * 512;
}

static bool fs_has_holes(const char *name)
{
    int fd = open(path(name), O_RDONLY);
    /* Created files have their first block written (as QEMU does), so
       look for the hole after it. */
    off_t h = lseek(fd, 4096, SEEK_HOLE);
    close(fd);
    return h == 4096;
}

static void test_seek_data_status(void **state)
{
    create("sparse.raw", "size=4M");
    assert_true(fs_has_holes("sparse.raw")); /* ext4, xfs, btrfs, tmpfs all have them */
    struct vdk_node *n = unit_open(path("sparse.raw"), "raw", NULL, VDK_O_RDWR);
    uint8_t *buf = vdk_blk_alloc(MiB);
    memset(buf, 0x77, MiB);
    assert_int_equal(vdk_pwrite(n, buf, MiB, MiB, 0), 0);
    assert_int_equal(vdk_flush(n), 0);
    uint64_t pnum = 0, map = 0;
    struct vdk_node *f = NULL;
    int r = vdk_block_status(n, 0, 4 * MiB, &pnum, &map, &f);
    assert_int_equal(r, VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN | VDK_BS_ALLOCATED);
    assert_int_equal(pnum, 4096);
    r = vdk_block_status(n, 4096, 4 * MiB - 4096, &pnum, &map, &f);
    assert_int_equal(r, VDK_BS_ZERO | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN | VDK_BS_ALLOCATED);
    assert_int_equal(pnum, MiB - 4096);
    assert_ptr_equal(f, vdk_node_file(n));
    r = vdk_block_status(n, MiB, 3 * MiB, &pnum, &map, &f);
    assert_int_equal(r, VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN | VDK_BS_ALLOCATED);
    assert_int_equal(pnum, MiB);
    assert_int_equal(map, MiB);
    r = vdk_block_status(n, 2 * MiB + 5, 2 * MiB - 5, &pnum, &map, &f);
    assert_int_equal(r, VDK_BS_ZERO | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN | VDK_BS_ALLOCATED | VDK_BS_EOF);
    assert_int_equal(pnum, 2 * MiB - 5);

    /* Zeroes with MAY_UNMAP punch a hole; the bytes read back as zeros. */
    int64_t before = blocks("sparse.raw");
    assert_int_equal(vdk_pwrite_zeroes(n, MiB, MiB / 2, VDK_REQ_MAY_UNMAP), 0);
    assert_int_equal(vdk_flush(n), 0);
    /* Half a MiB fewer, give or take a block of the fs's own metadata. */
    assert_true(blocks("sparse.raw") <= before - MiB / 2 + 64 * 1024);
    r = vdk_block_status(n, MiB, MiB, &pnum, NULL, NULL);
    assert_true(r & VDK_BS_ZERO);
    assert_int_equal(pnum, MiB / 2);
    assert_int_equal(vdk_pread(n, buf, MiB, MiB, 0), 0);
    for (uint32_t i = 0; i < MiB; i += 4096)
        assert_int_equal(buf[i], i < MiB / 2 ? 0 : 0x77);
    /* Without MAY_UNMAP the range stays allocated. */
    before = blocks("sparse.raw");
    assert_int_equal(vdk_pwrite_zeroes(n, MiB + MiB / 2, MiB / 2, 0), 0);
    assert_int_equal(vdk_pread(n, buf, MiB / 2, MiB + MiB / 2, 0), 0);
    assert_true(vdk_buffer_is_zero(buf, MiB / 2));
    /* Zeroes past the end extend the file. */
    assert_int_equal(vdk_pwrite_zeroes(vdk_node_file(n), 8 * MiB, MiB, 0), 0);
    assert_int_equal(vdk_get_length(vdk_node_file(n)), 9 * MiB);
    vdk_blk_free(buf);
    vdk_close(n);
}

static void test_preallocation(void **state)
{
    create("off.raw", "size=2M");
    create("falloc.raw", "size=2M,preallocation=falloc");
    create("full.raw", "size=2M,preallocation=full");
    assert_true(blocks("off.raw") < MiB);
    assert_true(blocks("falloc.raw") >= 2 * MiB);
    assert_true(blocks("full.raw") >= 2 * MiB);

    /* Growing with a mode allocates only the new part. */
    struct vdk_node *n = unit_open(path("off.raw"), "raw", NULL, VDK_O_RDWR);
    struct vdk_error *err = NULL;
    assert_int_equal(vdk_truncate(n, 4 * MiB, VDK_PREALLOC_FULL, false, &err), 0);
    assert_int_equal(vdk_get_length(n), 4 * MiB);
    assert_true(blocks("off.raw") >= 2 * MiB);
    assert_int_equal(vdk_truncate(n, 6 * MiB, VDK_PREALLOC_FALLOC, false, &err), 0);
    assert_true(blocks("off.raw") >= 4 * MiB);
    assert_int_equal(vdk_flush(n), 0); /* st_blocks settles after writeback */
    assert_int_equal(vdk_get_allocated_size(n), blocks("off.raw"));
    /* Shrinking needs allow_shrink; metadata is not a raw mode. */
    assert_int_equal(vdk_truncate(n, MiB, VDK_PREALLOC_OFF, false, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "--shrink"));
    vdk_error_free(err);
    err = NULL;
    assert_int_equal(vdk_truncate(n, 8 * MiB, VDK_PREALLOC_METADATA, false, &err), -EINVAL);
    vdk_error_free(err);
    err = NULL;
    assert_int_equal(vdk_truncate(n, MiB, VDK_PREALLOC_OFF, true, &err), 0);
    assert_int_equal(vdk_get_length(n), MiB);
    vdk_close(n);
    struct stat st;
    assert_int_equal(stat(path("off.raw"), &st), 0);
    assert_int_equal(st.st_size, MiB);
}

static void test_locks(void **state)
{
    create("locked.raw", "size=1M");
    const char *p = path("locked.raw");
    struct vdk_node *w = unit_open(p, "raw", NULL, VDK_O_RDWR);
    /* A second writer and a reader are refused while it is open. */
    char *m = unit_open_fail(p, "raw", NULL, VDK_O_RDWR, -EBUSY);
    assert_non_null(strstr(m, "Failed to get \"write\" lock\n"
                              "Is another process using the image ["));
    free(m);
    m = unit_open_fail(p, "raw", NULL, 0, -EBUSY);
    assert_non_null(strstr(m, "Failed to get shared \"write\" lock"));
    free(m);
    /* QEMU sees the same lock bytes: a writing qemu-io is refused; a
       reading one is not, as QEMU's raw read-only opens deny nothing. */
    char qemu_writer_refused[4400], qemu_reader[4400];
    snprintf(qemu_writer_refused, sizeof(qemu_writer_refused),
             "qemu-io -f raw -c 'read 0 512' '%s' 2>&1 | "
             "grep -q 'Failed to get \"write\" lock'", p);
    snprintf(qemu_reader, sizeof(qemu_reader),
             "qemu-io -r -f raw -c 'read 0 512' '%s' >/dev/null 2>&1", p);
    assert_int_equal(system(qemu_writer_refused), 0);
    assert_int_equal(system(qemu_reader), 0);
    /* -U shares. */
    struct vdk_node *r = unit_open(p, "raw", NULL, VDK_O_SHARE);
    vdk_close(r);
    /* So does a metadata-only open of raw (info of an image in use), as
       qemu-img info; a format with metadata is refused (below). */
    r = unit_open(p, "raw", NULL, VDK_O_NO_IO);
    assert_int_equal(vdk_get_length(r), 1 << 20);
    vdk_close(r);
    r = unit_open(p, NULL, NULL, VDK_O_NO_IO);
    vdk_close(r);
    /* locking=off too. */
    r = unit_open(p, "raw", "file.locking=off", 0);
    vdk_close(r);
    vdk_close(w);

    /* Readers share with readers, and keep writers out. */
    struct vdk_node *r1 = unit_open(p, "raw", NULL, 0);
    struct vdk_node *r2 = unit_open(p, "raw", NULL, 0);
    m = unit_open_fail(p, "raw", NULL, VDK_O_RDWR, -EBUSY);
    assert_non_null(strstr(m, "Failed to get \"write\" lock"));
    free(m);
    /* A vdk reader wants a consistent image: QEMU writers are kept out too. */
    assert_int_equal(system(qemu_writer_refused), 0);
    vdk_close(r1);
    vdk_close(r2);
    /* Closing released everything: QEMU writes again. */
    assert_int_not_equal(system(qemu_writer_refused), 0);
    w = unit_open(p, "raw", NULL, VDK_O_RDWR);
    vdk_close(w);
}

static void test_direct(void **state)
{
    create("direct.raw", "size=1M");
    int fd = open(path("direct.raw"), O_RDONLY | O_DIRECT);
    if (fd < 0) {
        print_message("skipping O_DIRECT: the filesystem under %s refuses it (%s)\n", dir,
                      strerror(errno));
        skip();
    }
    close(fd);
    struct vdk_node *n = unit_open(path("direct.raw"), "raw", NULL, VDK_O_RDWR | VDK_O_DIRECT);
    assert_int_equal(vdk_node_alignment(n), 4096);
    uint8_t *shadow = calloc(1, MiB), *raw = malloc(MiB + 1), *buf = raw + 1; /* misaligned */
    const struct { uint64_t off, len; } reqs[] = {
        { 0, 4096 }, { 1, 1 }, { 4095, 2 }, { 100, 10000 }, { 8192, 8192 },
        { MiB - 1, 1 }, { 12345, 65536 }, { 4096 * 7 + 512, 512 },
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        unit_fill(buf, reqs[i].len, (uint32_t)i + 1);
        assert_int_equal(vdk_pwrite(n, buf, reqs[i].len, reqs[i].off, 0), 0);
        memcpy(shadow + reqs[i].off, buf, reqs[i].len);
        memset(buf, 0, reqs[i].len);
        assert_int_equal(vdk_pread(n, buf, reqs[i].len, reqs[i].off, 0), 0);
        assert_memory_equal(buf, shadow + reqs[i].off, reqs[i].len);
    }
    assert_int_equal(vdk_pwrite_zeroes(n, 3000, 9000, 0), 0);
    memset(shadow + 3000, 0, 9000);
    assert_int_equal(vdk_pread(n, buf, MiB, 0, 0), 0);
    assert_memory_equal(buf, shadow, MiB);
    assert_int_equal(vdk_close(n), 0);
    /* What went to the disk, seen without O_DIRECT. */
    n = unit_open(path("direct.raw"), "raw", NULL, 0);
    assert_int_equal(vdk_get_length(n), MiB);
    assert_int_equal(vdk_pread(n, buf, MiB, 0, 0), 0);
    assert_memory_equal(buf, shadow, MiB);
    vdk_close(n);
    free(shadow);
    free(raw);
}

/*
 * vdk_node_map on a read-only raw image opened with file.map=on: the block
 * status of the format says where the bytes are stored as they are, the
 * file node maps them.
 * Truncating the file behind the locks' back must not kill the process:
 * the vanished pages read as zeros and unmapping reports -EFAULT.
 */
static void test_map(void **state)
{
    create("map.raw", "size=4M");
    uint8_t *buf = malloc(4 * MiB);
    unit_fill(buf, 4 * MiB, 77);
    struct vdk_node *w = unit_open(path("map.raw"), "raw", NULL, VDK_O_RDWR);
    assert_int_equal(vdk_pwrite(w, buf, 4 * MiB, 0, 0), 0);
    /* A writer's node, and a format node, do not map. */
    const void *p = NULL;
    assert_int_equal(vdk_node_map(vdk_node_file(w), 0, 4096, &p), -ENOTSUP);
    assert_int_equal(vdk_node_map(w, 0, 4096, &p), -ENOTSUP);
    vdk_close(w);

    /* Without map=on (the default) a reader's file node does not map. */
    struct vdk_node *n = unit_open(path("map.raw"), "raw", NULL, 0);
    assert_int_equal(vdk_node_map(vdk_node_file(n), 0, 4096, &p), -ENOTSUP);
    vdk_close(n);

    n = unit_open(path("map.raw"), "raw", "file.map=on", 0);
    uint64_t pnum = 0, map = 0;
    struct vdk_node *file = NULL;
    int st = vdk_block_status(n, MiB, MiB, &pnum, &map, &file);
    const unsigned as_is = VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN;
    assert_int_equal(st & as_is, as_is);
    assert_ptr_equal(file, vdk_node_file(n));
    assert_int_equal(vdk_node_map(file, map, MiB, &p), 0);
    assert_memory_equal(p, buf + MiB, MiB);
    assert_int_equal(vdk_node_unmap(file, p, MiB), 0);
    assert_int_equal(vdk_node_map(file, 4 * MiB - 1, 2, &p), -EINVAL);

    /* Map the tail, then cut the file (as a process ignoring locks would). */
    const void *tail = NULL;
    assert_int_equal(vdk_node_map(file, 3 * MiB, MiB, &tail), 0);
    assert_int_equal(truncate(path("map.raw"), MiB), 0);
    const volatile uint8_t *t = tail;
    uint8_t sum = 0;
    for (size_t i = 0; i < MiB; i += 4096)
        sum |= t[i]; /* would be SIGBUS without the library's handler */
    assert_int_equal(sum, 0);
    assert_int_equal(vdk_node_unmap(file, tail, MiB), -EFAULT);
    assert_int_equal(vdk_node_map(file, 0, 4096, &p), -EFAULT);
    vdk_close(n);
    free(buf);
}

/*
 * vdk_node_sendfile: the bytes reach the socket as they are; a range
 * passing the file's end (it shrank since block status) stops there with
 * *sent short and no error; a range no off_t holds is refused; O_DIRECT
 * and format nodes cannot.
 */
static void test_sendfile(void **state)
{
    create("send.raw", "size=1M");
    uint8_t *buf = malloc(MiB), *got = malloc(MiB);
    unit_fill(buf, MiB, 91);
    struct vdk_node *w = unit_open(path("send.raw"), "raw", NULL, VDK_O_RDWR);
    assert_int_equal(vdk_pwrite(w, buf, MiB, 0, 0), 0);
    vdk_close(w);
    struct vdk_node *n = unit_open(path("send.raw"), "raw", NULL, 0);
    struct vdk_node *file = vdk_node_file(n);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int bufsz = 4 * MiB;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
    uint64_t sent = 7;
    assert_int_equal(vdk_node_sendfile(file, -1, 0, 0, NULL), 0); /* only asks */
    assert_int_equal(vdk_node_sendfile(n, sv[0], 0, 4096, &sent), -ENOTSUP);
    assert_int_equal(sent, 0);
    assert_int_equal(vdk_node_sendfile(file, sv[0], 4096, 65536, &sent), 0);
    assert_int_equal(sent, 65536);
    assert_int_equal(read(sv[1], got, 65536), 65536);
    assert_memory_equal(got, buf + 4096, 65536);
    /* Past the end: what the file has, then a short count. */
    assert_int_equal(vdk_node_sendfile(file, sv[0], MiB - 100, 4096, &sent), 0);
    assert_int_equal(sent, 100);
    assert_int_equal(read(sv[1], got, 4096), 100);
    assert_memory_equal(got, buf + MiB - 100, 100);
    assert_int_equal(vdk_node_sendfile(file, sv[0], 2 * MiB, 4096, &sent), 0);
    assert_int_equal(sent, 0);
    assert_int_equal(vdk_node_sendfile(file, sv[0], UINT64_MAX - 10, 4096, &sent), -EINVAL);
    assert_int_equal(vdk_node_sendfile(file, sv[0], 0, 4096, NULL), -EINVAL);
    vdk_close(n);
    int fd = open(path("send.raw"), O_RDONLY | O_DIRECT);
    if (fd >= 0) { /* the filesystem takes O_DIRECT */
        close(fd);
        n = unit_open(path("send.raw"), "raw", NULL, VDK_O_DIRECT);
        assert_int_equal(vdk_node_sendfile(vdk_node_file(n), -1, 0, 0, NULL), -ENOTSUP);
        vdk_close(n);
    }
    close(sv[0]);
    close(sv[1]);
    free(buf);
    free(got);
}

static void test_errors(void **state)
{
    char *m = unit_open_fail(path("missing.raw"), "raw", NULL, 0, -ENOENT);
    assert_non_null(strstr(m, "Could not open"));
    assert_non_null(strstr(m, "No such file or directory"));
    free(m);
    m = unit_open_fail(dir, "raw", NULL, 0, -EINVAL);
    assert_non_null(strstr(m, "is not a regular file"));
    free(m);
    struct vdk_error *err = NULL;
    assert_int_equal(vdk_create("raw", path("x.raw"), unit_opts("size=1M,colour=red"), &err),
                     -EINVAL);
    assert_non_null(strstr(err->msg, "invalid option 'colour'"));
    vdk_error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seek_data_status),
        cmocka_unit_test(test_preallocation),
        cmocka_unit_test(test_locks),
        cmocka_unit_test(test_direct),
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_sendfile),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("file", tests, setup, teardown);
}
