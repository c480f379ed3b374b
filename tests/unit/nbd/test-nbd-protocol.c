/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of vdk-nbd's protocol code without sockets: export
 * definitions, error mapping, and the handshake and transmission run over
 * the in-memory transport on scripted client bytes.
 */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nbd-server/server.h"

static void test_export_parse(void **state)
{
    struct nbd_export *e = NULL;
    struct vdk_error *err = NULL;
    assert_int_equal(nbd_export_parse("name=a,file=x.raw,format=raw,readonly=on,"
                                      "description=hello,, world", &e, &err), 0);
    assert_string_equal(e->name, "a");
    assert_string_equal(e->file, "x.raw");
    assert_string_equal(e->format, "raw");
    assert_string_equal(e->description, "hello, world");
    assert_true(e->readonly);
    assert_false(e->snapshot);
    nbd_export_free(e);

    static const char *const bad[] = {
        "file=x.raw",                    /* no name */
        "name=a",                        /* no file */
        "name=a,file=x,bogus=1",         /* unknown key */
        "name=a,file=x,readonly=maybe",  /* bad boolean */
        "name=a,file=",                  /* empty file */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e = NULL;
        assert_true(nbd_export_parse(bad[i], &e, &err) < 0);
        assert_null(e);
        assert_non_null(err);
        vdk_error_free(err);
        err = NULL;
    }
}

static void test_errno_map(void **state)
{
    assert_int_equal(nbd_errno_to_wire(0), NBD_SUCCESS);
    assert_int_equal(nbd_errno_to_wire(-EPERM), NBD_EPERM);
    assert_int_equal(nbd_errno_to_wire(-EROFS), NBD_EPERM);
    assert_int_equal(nbd_errno_to_wire(-EINVAL), NBD_EINVAL);
    assert_int_equal(nbd_errno_to_wire(-ENOSPC), NBD_ENOSPC);
    assert_int_equal(nbd_errno_to_wire(-EDQUOT), NBD_ENOSPC);
    assert_int_equal(nbd_errno_to_wire(-ENOTSUP), NBD_ENOTSUP);
    assert_int_equal(nbd_errno_to_wire(-ENOMEM), NBD_ENOMEM);
    assert_int_equal(nbd_errno_to_wire(-ESHUTDOWN), NBD_ESHUTDOWN);
    assert_int_equal(nbd_errno_to_wire(-EBADMSG), NBD_EIO);
}

/* ---- scripted handshakes ---- */

static struct nbd_server srv;
static struct nbd_export *exports[1];

static int setup_server(void **state)
{
    struct vdk_opts *o = vdk_opts_new();
    struct vdk_node *n = NULL;
    assert_int_equal(vdk_opts_parse(o, "file.size=1M", NULL, NULL), 0);
    assert_int_equal(vdk_open(&n, "memory://unit", "raw", o, VDK_O_RDWR, NULL), 0);
    exports[0] = nbd_export_new("disk", "memory://unit", "raw");
    assert_int_equal(nbd_export_attach(exports[0], n, NULL), 0);
    srv.exports = exports;
    srv.n_exports = 1;
    srv.max_inflight = 64u << 20;
    atomic_init(&srv.stopping, false);
    nbd_log_init(false, 0);
    return 0;
}

static int teardown_server(void **state)
{
    nbd_export_free(exports[0]);
    return 0;
}

struct script {
    uint8_t buf[4096];
    size_t len;
};

static void put(struct script *s, const void *p, size_t n)
{
    assert_true(s->len + n <= sizeof(s->buf));
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

static void put32(struct script *s, uint32_t v) { v = htobe32(v); put(s, &v, 4); }
static void put16(struct script *s, uint16_t v) { v = htobe16(v); put(s, &v, 2); }
static void put64(struct script *s, uint64_t v) { v = htobe64(v); put(s, &v, 8); }

static void put_opt(struct script *s, uint32_t opt, const void *data, uint32_t len)
{
    put64(s, NBD_IHAVEOPT);
    put32(s, opt);
    put32(s, len);
    put(s, data, len);
}

static int run(struct script *s, struct nbd_conn *c)
{
    nbd_conn_init(c, &srv);
    nbd_io_init_mem(&c->io, s->buf, s->len);
    return nbd_handshake(c);
}

static void finish(struct nbd_conn *c)
{
    nbd_io_close(&c->io);
    nbd_conn_destroy(c);
}

static void test_handshake(void **state)
{
    struct script s = { .len = 0 };
    struct nbd_conn c;

    /* Not fixed newstyle. */
    put32(&s, 0);
    assert_int_equal(run(&s, &c), -EPROTO);
    finish(&c);

    /* Unknown option, then EXPORT_NAME "disk": selected. */
    s.len = 0;
    put32(&s, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    put_opt(&s, 0x4242, "xyz", 3);
    put_opt(&s, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
    put_opt(&s, NBD_OPT_EXPORT_NAME, "disk", 4);
    assert_int_equal(run(&s, &c), 0);
    assert_ptr_equal(c.exp, exports[0]);
    assert_true(c.structured);
    assert_true(c.no_zeroes);
    assert_true(c.eflags & NBD_FLAG_SEND_DF);
    finish(&c);

    /* Unknown export name: hang up. */
    s.len = 0;
    put32(&s, NBD_FLAG_C_FIXED_NEWSTYLE);
    put_opt(&s, NBD_OPT_EXPORT_NAME, "nope", 4);
    assert_int_equal(run(&s, &c), -ENOENT);
    finish(&c);

    /* GO for an absent export is an error reply, then GO "disk" works;
       set meta contexts (after structured replies) carry over. */
    s.len = 0;
    put32(&s, NBD_FLAG_C_FIXED_NEWSTYLE);
    uint8_t go_bad[] = { 0, 0, 0, 2, 'n', 'o', 0, 0 };
    put_opt(&s, NBD_OPT_GO, go_bad, sizeof(go_bad));
    put_opt(&s, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
    uint8_t meta[] = { 0, 0, 0, 4, 'd', 'i', 's', 'k', 0, 0, 0, 1, 0, 0, 0, 15,
                       'b', 'a', 's', 'e', ':', 'a', 'l', 'l', 'o', 'c', 'a', 't', 'i',
                       'o', 'n' };
    put_opt(&s, NBD_OPT_SET_META_CONTEXT, meta, sizeof(meta));
    uint8_t go[] = { 0, 0, 0, 4, 'd', 'i', 's', 'k', 0, 1, 0, NBD_INFO_NAME };
    put_opt(&s, NBD_OPT_GO, go, sizeof(go));
    assert_int_equal(run(&s, &c), 0);
    assert_true(c.meta_base);
    assert_false(c.meta_depth);
    /* Then requests: a write, a read past the end, a flush, DISC. */
    struct script t = { .len = 0 };
    put32(&t, NBD_REQUEST_MAGIC); put16(&t, NBD_CMD_FLAG_FUA); put16(&t, NBD_CMD_WRITE);
    put64(&t, 1); put64(&t, 4096); put32(&t, 8); put(&t, "ABCDEFGH", 8);
    put32(&t, NBD_REQUEST_MAGIC); put16(&t, 0); put16(&t, NBD_CMD_READ);
    put64(&t, 2); put64(&t, 1u << 20); put32(&t, 1);
    put32(&t, NBD_REQUEST_MAGIC); put16(&t, 0); put16(&t, NBD_CMD_BLOCK_STATUS);
    put64(&t, 3); put64(&t, 0); put32(&t, 1u << 20);
    put32(&t, NBD_REQUEST_MAGIC); put16(&t, 0); put16(&t, NBD_CMD_FLUSH);
    put64(&t, 4); put64(&t, 0); put32(&t, 0);
    put32(&t, NBD_REQUEST_MAGIC); put16(&t, 0); put16(&t, NBD_CMD_DISC);
    put64(&t, 5); put64(&t, 0); put32(&t, 0);
    nbd_io_init_mem(&c.io, t.buf, t.len);
    assert_int_equal(nbd_transmission(&c), 0);
    char back[8];
    assert_int_equal(vdk_pread(exports[0]->node, back, 8, 4096, 0), 0);
    assert_memory_equal(back, "ABCDEFGH", 8);
    finish(&c);

    /* Option data over the bound is skipped and refused; ABORT ends. */
    static uint8_t big[NBD_MAX_OPTION_LEN + 64];
    uint8_t *p = malloc(sizeof(big) + 64);
    assert_non_null(p);
    size_t n = 0;
    uint32_t v32 = htobe32(NBD_FLAG_C_FIXED_NEWSTYLE);
    memcpy(p + n, &v32, 4); n += 4;
    uint64_t v64 = htobe64(NBD_IHAVEOPT);
    memcpy(p + n, &v64, 8); n += 8;
    v32 = htobe32(NBD_OPT_INFO); memcpy(p + n, &v32, 4); n += 4;
    v32 = htobe32(sizeof(big)); memcpy(p + n, &v32, 4); n += 4;
    memcpy(p + n, big, sizeof(big)); n += sizeof(big);
    memcpy(p + n, &v64, 8); n += 8;
    v32 = htobe32(NBD_OPT_ABORT); memcpy(p + n, &v32, 4); n += 4;
    v32 = 0; memcpy(p + n, &v32, 4); n += 4;
    nbd_conn_init(&c, &srv);
    nbd_io_init_mem(&c.io, p, n);
    assert_int_equal(nbd_handshake(&c), -ECONNABORTED);
    finish(&c);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_parse),
        cmocka_unit_test(test_errno_map),
        cmocka_unit_test_setup_teardown(test_handshake, setup_server, teardown_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
