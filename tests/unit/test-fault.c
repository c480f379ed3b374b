/* SPDX-License-Identifier: MIT */
/*
 * The fault filter on memory images: exact ranges and errnos, which
 * operations match, after/once/rate (seeded rate reproducible), failed
 * writes that write nothing, block status over faulted holes, refused
 * keys and values, and the control file (reloads, bad content, bounds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "unit-util.h"
#include "filters/fault.h"

#define MEM "file.driver=raw,file.file.filename=memory://f,file.file.size=64k"

static struct vdk_node *open_fault(const char *keys)
{
    char o[1024];
    snprintf(o, sizeof(o), "driver=fault,%s," MEM, keys);
    return unit_open(NULL, NULL, o, VDK_O_RDWR);
}

static char *open_fault_fail(const char *keys)
{
    char o[1024];
    snprintf(o, sizeof(o), "driver=fault,%s," MEM, keys);
    return unit_open_fail(NULL, NULL, o, VDK_O_RDWR, -EINVAL);
}

static void test_exact_range(void **state)
{
    struct vdk_node *n = open_fault("ops=read|write,errno=ENOSPC,offset=4096,length=100");
    uint8_t buf[8192];
    assert_int_equal(vdk_pread(n, buf, 1, 4095, 0), 0);
    assert_int_equal(vdk_pread(n, buf, 1, 4096, 0), -ENOSPC);
    assert_int_equal(vdk_pread(n, buf, 1, 4195, 0), -ENOSPC);
    assert_int_equal(vdk_pread(n, buf, 1, 4196, 0), 0);
    assert_int_equal(vdk_pread(n, buf, 4096, 0, 0), 0);       /* ends at 4095 */
    assert_int_equal(vdk_pread(n, buf, 4097, 0, 0), -ENOSPC); /* one byte in */
    assert_int_equal(vdk_pread(n, buf, 8192, 4196, 0), 0);
    assert_int_equal(vdk_pread(n, buf, 8192, 4195, 0), -ENOSPC);
    /* A failing write writes nothing, not even its part outside. */
    const struct vdk_memory_stats *st = vdk_memory_stats(unit_mem(n));
    uint64_t w = st->writes;
    memset(buf, 0x77, sizeof(buf));
    assert_int_equal(vdk_pwrite(n, buf, 8192, 0, 0), -ENOSPC);
    assert_int_equal(st->writes, w);
    uint64_t len;
    const uint8_t *data = vdk_memory_data(unit_mem(n), &len);
    for (size_t i = 0; i < 8192; i++)
        assert_int_equal(data[i], 0);
    /* Other operations are not in ops. */
    assert_int_equal(vdk_pwrite_zeroes(n, 4096, 512, 0), 0);
    assert_int_equal(vdk_discard(n, 4096, 512), 0);
    assert_int_equal(vdk_flush(n), 0);
    assert_int_equal(vdk_pwrite(n, buf, 4096, 0, 0), 0);
    vdk_close(n);
}

static void test_ops_and_errnos(void **state)
{
    static const struct { const char *keys; int err; } c[] = {
        { "ops=flush,errno=EPERM", EPERM },
        { "ops=trim,errno=ENOMEM", ENOMEM },
        { "ops=zero", EIO },
    };
    for (size_t i = 0; i < 3; i++) {
        struct vdk_node *n = open_fault(c[i].keys);
        uint8_t buf[512] = { 0 };
        assert_int_equal(vdk_pread(n, buf, 512, 0, 0), 0);
        assert_int_equal(vdk_pwrite(n, buf, 512, 0, 0), 0);
        int want_f = i == 0 ? -c[i].err : 0;
        int want_t = i == 1 ? -c[i].err : 0;
        int want_z = i == 2 ? -c[i].err : 0;
        assert_int_equal(vdk_flush(n), want_f);
        assert_int_equal(vdk_discard(n, 0, 4096), want_t);
        assert_int_equal(vdk_pwrite_zeroes(n, 0, 4096, 0), want_z);
        /* A FUA write is one write request, not a write and a flush. */
        assert_int_equal(vdk_pwrite(n, buf, 512, 0, VDK_REQ_FUA), 0);
        vdk_close(n);
    }
    /* Default: everything fails with EIO. */
    struct vdk_node *n = open_fault("offset=0");
    uint8_t b[16];
    assert_int_equal(vdk_pread(n, b, 16, 60000, 0), -EIO);
    assert_int_equal(vdk_flush(n), -EIO);
    vdk_node_unref(n);
}

static void test_after_once(void **state)
{
    struct vdk_node *n = open_fault("ops=read,offset=1024,length=1024,after=3");
    uint8_t b[16];
    assert_int_equal(vdk_pread(n, b, 16, 0, 0), 0);    /* outside: not counted */
    assert_int_equal(vdk_pread(n, b, 16, 1024, 0), 0); /* 1 */
    assert_int_equal(vdk_pwrite(n, b, 16, 1024, 0), 0); /* not in ops */
    assert_int_equal(vdk_pread(n, b, 16, 1100, 0), 0); /* 2 */
    assert_int_equal(vdk_pread(n, b, 16, 1024, 0), -EIO); /* 3 */
    assert_int_equal(vdk_pread(n, b, 16, 2000, 0), -EIO); /* 4 */
    vdk_close(n);

    n = open_fault("ops=write,once=on,after=2");
    assert_int_equal(vdk_pwrite(n, b, 16, 0, 0), 0);
    assert_int_equal(vdk_pwrite(n, b, 16, 0, 0), -EIO);
    assert_int_equal(vdk_pwrite(n, b, 16, 0, 0), 0);
    assert_int_equal(vdk_pwrite(n, b, 16, 0, 0), 0);
    vdk_close(n);
}

static void outcomes(const char *keys, char *out, size_t count)
{
    struct vdk_node *n = open_fault(keys);
    uint8_t b[16];
    for (size_t i = 0; i < count; i++)
        out[i] = vdk_pread(n, b, 16, (i * 512) % 60000, 0) ? 'x' : '.';
    out[count] = 0;
    vdk_close(n);
}

static void test_rate_seeded(void **state)
{
    char a[401], b[401], c[401];
    outcomes("ops=read,rate=0.25,seed=42", a, 400);
    outcomes("ops=read,rate=0.25,seed=42", b, 400);
    outcomes("ops=read,rate=0.25,seed=43", c, 400);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    size_t fails = 0;
    for (size_t i = 0; i < 400; i++)
        fails += a[i] == 'x';
    /* A fixed seed: this count is the same on every run. */
    assert_true(fails > 50 && fails < 150);
    outcomes("ops=read,rate=0", a, 100);
    assert_null(strchr(a, 'x'));
    outcomes("ops=read,rate=1", a, 100);
    assert_null(strchr(a, '.'));
}

static void test_delay_runs(void **state)
{
    struct vdk_node *n = open_fault("ops=read,delay=1ms");
    uint8_t b[16];
    assert_int_equal(vdk_pread(n, b, 16, 0, 0), 0);
    assert_int_equal(vdk_pwrite(n, b, 16, 0, 0), 0);
    vdk_close(n);
}

static void test_block_status(void **state)
{
    struct vdk_node *n = open_fault("ops=read,offset=8k,length=4k");
    uint64_t pnum;
    int r = vdk_block_status_above(n, NULL, 0, 65536, &pnum, NULL, NULL, NULL);
    assert_true(r >= 0);
    assert_int_equal(pnum, 8192);
    r = vdk_block_status_above(n, NULL, 8192, 65536, &pnum, NULL, NULL, NULL);
    assert_true(r & VDK_BS_DATA);
    assert_int_equal(pnum, 4096);
    vdk_close(n);
}

static void test_refused(void **state)
{
    static const struct { const char *keys, *want; } c[] = {
        { "errno=EFOO", "errno=EFOO" },
        { "rate=2", "rate=2" },
        { "rate=-0.1", "rate=-0.1" },
        { "ops=read|fly", "ops=read|fly" },
        { "offset=64k", "offset=64k" },
        { "offset=1Q", "offset=1Q" },
        { "length=0", "length=0" },
        { "after=0", "after=0" },
        { "once=maybe", "once=maybe" },
        { "delay=fast", "delay=fast" },
        { "delay=2min", "delay=2min" },
        { "delay=61s", "delay=61s" },
        { "delay=1ms,errno=EIO", "delay=1ms and errno=EIO" },
        { "colour=red", "'colour' (in colour=red)" },
        { "seed=x", "seed=x" },
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char *m = open_fault_fail(c[i].keys);
        if (!strstr(m, c[i].want))
            fail_msg("%s: message '%s' lacks '%s'", c[i].keys, m, c[i].want);
        free(m);
    }
}

static char ctl_path[256];

static void write_ctl(const char *text)
{
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", ctl_path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, ctl_path), 0);
}

/* Read at off until it returns want; the filter promises to see a change
   within a second, this gives it ten (a bound against hanging, not a
   timing check). */
static void read_until(struct vdk_node *n, uint64_t off, int want)
{
    uint8_t b[16];
    for (int i = 0; i < 1000; i++) {
        if (vdk_pread(n, b, 16, off, 0) == want)
            return;
        usleep(10000);
    }
    fail_msg("read at %llu never returned %d", (unsigned long long)off, want);
}

static void test_control(void **state)
{
    snprintf(ctl_path, sizeof(ctl_path), "%s/fault-ctl-%d",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    write_ctl("# two faults\nops=read,offset=0,length=512\n\nops=read,offset=4k,length=1,"
              "errno=EPERM\r\n");
    char o[512];
    snprintf(o, sizeof(o), "driver=fault,control=%s," MEM, ctl_path);
    struct vdk_node *n = unit_open(NULL, NULL, o, VDK_O_RDWR);
    uint8_t b[16];
    assert_int_equal(vdk_pread(n, b, 16, 0, 0), -EIO);
    assert_int_equal(vdk_pread(n, b, 16, 4096, 0), -EPERM);
    assert_int_equal(vdk_pread(n, b, 16, 1024, 0), 0);
    assert_int_equal(vdk_pwrite(n, b, 16, 0, 0), 0);
    /* Empty: no faults. */
    write_ctl("");
    read_until(n, 0, 0);
    assert_int_equal(vdk_pread(n, b, 16, 4096, 0), 0);
    /* Same size, new content (a rewrite inside one timestamp tick keeps
       mtime; the content is read again within a second anyway). */
    write_ctl("ops=read,offset=8k,length=1,errno=ENOSPC\n");
    read_until(n, 8192, -ENOSPC);
    /* A bad edit keeps the faults in force. */
    write_ctl("ops=read,errno=EBAD\n");
    usleep(300000);
    read_until(n, 8192, -ENOSPC);
    /* Deleting the file clears them. */
    unlink(ctl_path);
    read_until(n, 8192, 0);
    vdk_close(n);

    /* Missing at start-up, bad lines, and the bounds: refused. */
    char *m = unit_open_fail(NULL, NULL, o, VDK_O_RDWR, -ENOENT);
    free(m);
    write_ctl("ops=read\nops=write,control=x\n");
    m = unit_open_fail(NULL, NULL, o, VDK_O_RDWR, -EINVAL);
    assert_non_null(strstr(m, "line 2"));
    free(m);
    struct fault_set set;
    struct vdk_error *err = NULL;
    char *big = malloc(FAULT_CONTROL_MAX_BYTES + 2);
    memset(big, '\n', FAULT_CONTROL_MAX_BYTES + 1);
    assert_int_equal(fault_set_parse(&set, big, FAULT_CONTROL_MAX_BYTES + 1, 65536, "t",
                                     &err), -EFBIG);
    vdk_error_free(err);
    err = NULL;
    size_t pos = 0;
    for (int i = 0; i <= FAULT_CONTROL_MAX_LINES; i++)
        pos += (size_t)snprintf(big + pos, 32, "ops=read\n");
    assert_int_equal(fault_set_parse(&set, big, pos, 65536, "t", &err), -E2BIG);
    vdk_error_free(err);
    err = NULL;
    assert_int_equal(fault_set_parse(&set, "ops=read\0x\n", 11, 65536, "t", &err), -EINVAL);
    vdk_error_free(err);
    free(big);
    unlink(ctl_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_range),
        cmocka_unit_test(test_ops_and_errnos),
        cmocka_unit_test(test_after_once),
        cmocka_unit_test(test_rate_seeded),
        cmocka_unit_test(test_delay_runs),
        cmocka_unit_test(test_block_status),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_control),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
