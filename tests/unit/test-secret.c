/* SPDX-License-Identifier: MIT */
/*
 * Secrets (block/secret.c): "--object secret,..." definitions from data=,
 * file= and base64, lookups, and errors that never quote the secret.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "unit-util.h"
#include "vdk/secret.h"

static char *warning;

static void catch_warning(const char *msg, void *opaque)
{
    free(warning);
    warning = strdup(msg);
}

static int setup(void **state)
{
    vdk_set_warning_handler(catch_warning, NULL);
    return 0;
}

static int teardown(void **state)
{
    vdk_set_warning_handler(NULL, NULL);
    vdk_objects_clear();
    free(warning);
    return 0;
}

static void expect_secret(const char *id, const char *value, size_t vlen)
{
    char *s = NULL;
    size_t len = 0;
    struct vdk_error *err = NULL;
    if (vdk_secret_get(id, &s, &len, &err) < 0)
        fail_msg("secret '%s': %s", id, vdk_error_msg(err));
    assert_int_equal(len, vlen);
    assert_memory_equal(s, value, vlen);
    assert_int_equal(s[len], '\0');
    vdk_secret_free(s, len);
}

/* Adding def must fail with code; the message must not quote `hidden`. */
static void expect_add_error(const char *def, int code, const char *part, const char *hidden)
{
    struct vdk_error *err = NULL;
    assert_int_equal(vdk_object_add(def, &err), code);
    assert_non_null(err);
    if (!strstr(err->msg, part))
        fail_msg("error for '%s' is '%s', lacks '%s'", def, err->msg, part);
    if (hidden && strstr(err->msg, hidden))
        fail_msg("error for '%s' quotes the secret: '%s'", def, err->msg);
    vdk_error_free(err);
}

static void test_sources(void **state)
{
    struct vdk_error *err = NULL;
    assert_int_equal(vdk_object_add("secret,id=s0,data=let,,me,,in", &err), 0);
    expect_secret("s0", "let,me,in", 9);
    assert_non_null(warning);
    assert_non_null(strstr(warning, "visible to other users"));
    assert_null(strstr(warning, "let,me"));

    assert_int_equal(vdk_object_add("secret,id=b64,data=aGVsbG8gd29ybGQ=,format=base64", &err),
                     0);
    expect_secret("b64", "hello world", 11);
    assert_int_equal(vdk_object_add("secret,id=empty,data=", &err), 0);
    expect_secret("empty", "", 0);

    /* file=, raw bytes as they are (a trailing newline is part of it). */
    char path[4200];
    const char *b = getenv("VDK_BUILD");
    snprintf(path, sizeof(path), "%s/unit-secret-XXXXXX", b ? b : ".");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "pass\nword\n", 10), 10);
    close(fd);
    char def[4300];
    snprintf(def, sizeof(def), "secret,id=f,file=%s", path);
    free(warning);
    warning = NULL;
    assert_int_equal(vdk_object_add(def, &err), 0);
    assert_null(warning); /* file= is the safe way: no warning */
    expect_secret("f", "pass\nword\n", 10);
    /* Base64 from a file, with line breaks. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "c2VjcmV0\nMTIz\n", 14), 14);
    close(fd);
    snprintf(def, sizeof(def), "secret,id=f64,file=%s,format=base64", path);
    assert_int_equal(vdk_object_add(def, &err), 0);
    expect_secret("f64", "secret123", 9);
    /* A file larger than the bound is refused. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(ftruncate(fd, 64 * 1024 + 1), 0);
    close(fd);
    snprintf(def, sizeof(def), "secret,id=big,file=%s", path);
    expect_add_error(def, -EINVAL, "at most 65536 bytes", NULL);
    unlink(path);
    expect_add_error(def, -ENOENT, "cannot read secret file", NULL);

    /* Cleared: gone. */
    vdk_objects_clear();
    char *s = NULL;
    size_t len = 0;
    assert_int_equal(vdk_secret_get("s0", &s, &len, &err), -ENOENT);
    assert_non_null(strstr(err->msg, "no secret with id 's0'"));
    vdk_error_free(err);
    assert_null(s);
}

static void test_errors(void **state)
{
    struct vdk_error *err = NULL;
    assert_int_equal(vdk_object_add("secret,id=dup,data=one", &err), 0);
    expect_add_error("secret,id=dup,data=two", -EEXIST, "duplicate object id 'dup'", "two");
    expect_secret("dup", "one", 3);
    expect_add_error("secret,data=hunter2", -EINVAL, "needs id=", "hunter2");
    expect_add_error("secret,id=x,data=hunter2,file=/x", -EINVAL, "exactly one of", "hunter2");
    expect_add_error("secret,id=x", -EINVAL, "exactly one of", NULL);
    expect_add_error("secret,id=x,data=hunter2,format=hex", -EINVAL, "raw or base64",
                     "hunter2");
    expect_add_error("secret,id=x,data=hunter2,colour=red", -EINVAL, "unknown parameter",
                     "hunter2");
    expect_add_error("secret,id=x,data=hunter2,", -EINVAL, "malformed", "hunter2");
    expect_add_error("tls-creds-x509,id=x,data=hunter2", -EINVAL, "unsupported object type",
                     "hunter2");
    expect_add_error("secret,id=x,data=*zz*,format=base64", -EINVAL, "not valid base64",
                     "*zz*");
    /* Bounded count. */
    vdk_objects_clear();
    char def[64];
    for (int i = 0; i < 256; i++) {
        snprintf(def, sizeof(def), "secret,id=n%d,data=v", i);
        assert_int_equal(vdk_object_add(def, &err), 0);
    }
    expect_add_error("secret,id=last,data=v", -E2BIG, "too many objects", NULL);
    vdk_objects_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sources),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("secret", tests, setup, teardown);
}
