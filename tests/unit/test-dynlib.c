/* SPDX-License-Identifier: MIT */
/*
 * Libraries loaded on first use (block/dynlib.c): a table filled from a
 * real library (libm), a missing library and a missing symbol each give
 * one line naming what is missing, and concurrent first loads agree.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "block/dynlib.h"

/* One prototype for a symbol no library has, to check its absence. */
double vdk_test_no_such_function(double);

#define M_FUNCS(X) X(cos) X(sqrt)
struct m_table {
    M_FUNCS(VDK_DYNLIB_MEMBER)
};
#define M_SYM(f) VDK_DYNLIB_SYM(struct m_table, f)

#define BAD_FUNCS(X) X(cos) X(vdk_test_no_such_function)
struct bad_table {
    BAD_FUNCS(VDK_DYNLIB_MEMBER)
};
#define BAD_SYM(f) VDK_DYNLIB_SYM(struct bad_table, f)

static struct m_table m_table;
static const struct vdk_dynlib_sym m_syms[] = { M_FUNCS(M_SYM) };
static struct vdk_dynlib m_lib = VDK_DYNLIB_INIT("libm.so.6", "libc6", m_syms, &m_table);

static void *load_thread(void *arg)
{
    return (void *)(intptr_t)vdk_dynlib_load(arg, NULL);
}

static void test_loads_once(void **state)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, load_thread, &m_lib), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_int_equal((intptr_t)r, 0);
    }
    assert_non_null(m_table.cos);
    /* Called through the table with libm's own prototype. */
    volatile double x = 16.0;
    assert_true(m_table.sqrt(x) == 4.0);
    assert_int_equal(vdk_dynlib_load(&m_lib, NULL), 0);
}

static void test_missing_library(void **state)
{
    static struct m_table table;
    static struct vdk_dynlib lib =
        VDK_DYNLIB_INIT("libvdk-test-absent.so.9", "libvdk-test-absent9", m_syms, &table);
    for (int round = 0; round < 2; round++) {
        struct vdk_error *err = NULL;
        assert_int_equal(vdk_dynlib_load(&lib, &err), -ENOENT);
        const char *msg = vdk_error_msg(err);
        assert_non_null(strstr(msg, "libvdk-test-absent is not installed "
                                    "(package libvdk-test-absent9)"));
        assert_null(strchr(msg, '\n'));
        vdk_error_free(err);
    }
    assert_null(table.cos);
}

static void test_missing_symbol(void **state)
{
    static struct bad_table table;
    static const struct vdk_dynlib_sym syms[] = { BAD_FUNCS(BAD_SYM) };
    static struct vdk_dynlib lib = VDK_DYNLIB_INIT("libm.so.6", "libc6", syms, &table);
    struct vdk_error *err = NULL;
    assert_int_equal(vdk_dynlib_load(&lib, &err), -ENOENT);
    assert_string_equal(vdk_error_msg(err),
                        "libm.so.6 lacks vdk_test_no_such_function (libc6 too old)");
    vdk_error_free(err);
    /* Nothing half-filled. */
    assert_null(table.cos);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads_once),
        cmocka_unit_test(test_missing_library),
        cmocka_unit_test(test_missing_symbol),
    };
    return cmocka_run_group_tests_name("dynlib", tests, NULL, NULL);
}
