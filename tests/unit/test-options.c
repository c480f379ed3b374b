/* SPDX-License-Identifier: MIT */
/*
 * Options and scalar parsers (block/options.c, block/units.c): the
 * "k=v,..." syntax with its edge cases, typed getters, validation against
 * a table, qemu-img's help layout, sizes in and out.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit-util.h"

/* Parse and return the error message (NULL on success). */
static char *parse(struct vdk_opts *o, const char *s, const char *implied)
{
    struct vdk_error *err = NULL;
    int r = vdk_opts_parse(o, s, implied, &err);
    if (r == 0) {
        assert_null(err);
        return NULL;
    }
    assert_non_null(err);
    assert_int_equal(-r, err->code);
    char *m = strdup(err->msg);
    vdk_error_free(err);
    return m;
}

static void expect_parse_error(const char *s, const char *part)
{
    struct vdk_opts *o = vdk_opts_new();
    char *m = parse(o, s, NULL);
    if (!m)
        fail_msg("'%s' parsed", s);
    if (!strstr(m, part))
        fail_msg("error for '%s' is '%s', lacks '%s'", s, m, part);
    free(m);
    vdk_opts_free(o);
}

static void test_parse_syntax(void **state)
{
    struct vdk_opts *o = vdk_opts_new();
    assert_null(parse(o, "a=1,b=x,,y,,,,z,c=,d", NULL));
    assert_int_equal(vdk_opts_count(o), 4);
    assert_string_equal(vdk_opts_peek(o, "a"), "1");
    assert_string_equal(vdk_opts_peek(o, "b"), "x,y,,z");
    assert_string_equal(vdk_opts_peek(o, "c"), "");
    assert_string_equal(vdk_opts_peek(o, "d"), "on");
    /* Later duplicates win; '=' inside a value stays. */
    assert_null(parse(o, "a=2,e=k=v", NULL));
    assert_string_equal(vdk_opts_peek(o, "a"), "2");
    assert_string_equal(vdk_opts_peek(o, "e"), "k=v");
    /* Round trip through the string form. */
    char *s = vdk_opts_to_string(o);
    assert_string_equal(s, "a=2,b=x,,y,,,,z,c=,d=on,e=k=v");
    struct vdk_opts *o2 = vdk_opts_new();
    assert_null(parse(o2, s, NULL));
    char *s2 = vdk_opts_to_string(o2);
    assert_string_equal(s, s2);
    free(s);
    free(s2);
    vdk_opts_free(o2);
    vdk_opts_free(o);

    /* The implied key takes the first bare element only. */
    o = vdk_opts_new();
    assert_null(parse(o, "disk.img,,x,readonly,format=raw", "filename"));
    assert_string_equal(vdk_opts_peek(o, "filename"), "disk.img,x");
    assert_string_equal(vdk_opts_peek(o, "readonly"), "on");
    assert_string_equal(vdk_opts_peek(o, "format"), "raw");
    vdk_opts_free(o);
    /* Empty and NULL strings add nothing. */
    o = vdk_opts_new();
    assert_null(parse(o, "", NULL));
    assert_null(parse(o, NULL, NULL));
    assert_int_equal(vdk_opts_count(o), 0);
    /* A key with an escaped comma survives the round trip too. */
    assert_null(parse(o, "we,,ird=1", NULL));
    assert_string_equal(vdk_opts_peek(o, "we,ird"), "1");
    s = vdk_opts_to_string(o);
    o2 = vdk_opts_new();
    assert_null(parse(o2, s, NULL));
    assert_int_equal(vdk_opts_count(o2), 1);
    assert_string_equal(vdk_opts_peek(o2, "we,ird"), "1");
    free(s);
    vdk_opts_free(o2);
    vdk_opts_free(o);

    /* What qemu-img also rejects as an invalid option list. */
    expect_parse_error("a=1,", "ends with a comma");
    expect_parse_error(",a=1", "empty element");
    expect_parse_error(",", "empty element");
    expect_parse_error("a=1,,,", "ends with a comma");
    expect_parse_error("=1", "empty key");
    expect_parse_error("a=1,=2", "empty key");
}

static void test_parse_bounds(void **state)
{
    /* Too many distinct items. */
    size_t cap = 20 * (VDK_OPTS_MAX_ITEMS + 2);
    char *s = malloc(cap), *p = s;
    for (int i = 0; i <= VDK_OPTS_MAX_ITEMS; i++)
        p += sprintf(p, "%sk%d=1", i ? "," : "", i);
    expect_parse_error(s, "too many options");
    /* Exactly the limit is fine, and repeats do not count twice. */
    *strrchr(s, ',') = '\0';
    struct vdk_opts *o = vdk_opts_new();
    assert_null(parse(o, s, NULL));
    assert_null(parse(o, s, NULL));
    assert_int_equal(vdk_opts_count(o), VDK_OPTS_MAX_ITEMS);
    assert_int_equal(vdk_opts_set(o, "one-more", "x"), -E2BIG);
    vdk_opts_free(o);
    free(s);
    /* Too long. */
    s = malloc(VDK_OPTS_MAX_LEN + 2);
    memset(s, 'a', VDK_OPTS_MAX_LEN + 1);
    s[0] = 'k';
    s[1] = '=';
    s[VDK_OPTS_MAX_LEN + 1] = '\0';
    expect_parse_error(s, "too long");
    s[VDK_OPTS_MAX_LEN] = '\0';
    o = vdk_opts_new();
    assert_null(parse(o, s, NULL));
    assert_int_equal(strlen(vdk_opts_peek(o, "k")), VDK_OPTS_MAX_LEN - 2);
    vdk_opts_free(o);
    free(s);
}

static void test_prefix_and_unused(void **state)
{
    struct vdk_opts *o = unit_opts("file.filename=a,file.locking=off,backing.driver=raw,"
                                   "size=1M,file.=x,filex=1");
    struct vdk_opts *f = vdk_opts_extract_prefix(o, "file");
    assert_int_equal(vdk_opts_count(f), 2);
    assert_string_equal(vdk_opts_peek(f, "filename"), "a");
    assert_string_equal(vdk_opts_peek(f, "locking"), "off");
    /* "file." with nothing after and "filex" are not file options. */
    assert_true(vdk_opts_has(o, "file."));
    assert_true(vdk_opts_has(o, "filex"));
    assert_int_equal(vdk_opts_count(o), 4);

    struct vdk_error *err = NULL;
    assert_int_equal(vdk_opts_check_unused(f, "driver 'file'", &err), -EINVAL);
    assert_string_equal(err->msg, "invalid option 'filename' for driver 'file'");
    vdk_error_free(err);
    err = NULL;
    (void)vdk_opts_get(f, "filename");
    (void)vdk_opts_peek(f, "locking"); /* peeking does not count */
    assert_int_equal(vdk_opts_check_unused(f, "driver 'file'", &err), -EINVAL);
    assert_string_equal(err->msg, "invalid option 'locking' for driver 'file'");
    vdk_error_free(err);
    err = NULL;
    bool b;
    assert_int_equal(vdk_opts_get_bool(f, "locking", true, &b, &err), 0);
    assert_false(b);
    assert_int_equal(vdk_opts_check_unused(f, "driver 'file'", &err), 0);
    assert_null(err);
    vdk_opts_free(f);
    vdk_opts_free(o);
}

static const char *const colours[] = { "red", "green", NULL };

static const struct vdk_opt_desc table[] = {
    { "size", VDK_OPT_SIZE, "Virtual disk size", NULL, NULL },
    { "lazy", VDK_OPT_BOOL, "Lazy refcounts", "off", NULL },
    { "count", VDK_OPT_NUMBER, "How many", NULL, NULL },
    { "colour", VDK_OPT_ENUM, "Colour", "red", colours },
    { "name", VDK_OPT_STRING, "A name", NULL, NULL },
    { "encrypt.format", VDK_OPT_STRING, "Encryption format", NULL, NULL },
    { "encrypt", VDK_OPT_BOOL, "Encrypt the image", NULL, NULL },
    { "cluster-size-with-a-long-name", VDK_OPT_SIZE, "Long", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL },
};

static void expect_err(int r, struct vdk_error *err, const char *msg)
{
    assert_int_equal(r, -EINVAL);
    assert_non_null(err);
    assert_string_equal(err->msg, msg);
    vdk_error_free(err);
}

static void test_typed(void **state)
{
    struct vdk_opts *o = unit_opts("size=1.5G,lazy=yes,count=0x10,colour=green,name=n,"
                                   "dec=010");
    struct vdk_error *err = NULL;
    uint64_t u;
    bool b;
    int r;
    assert_int_equal(vdk_opts_validate(o, table, "format 'x'", &err), -EINVAL);
    assert_string_equal(err->msg, "invalid option 'dec' for format 'x'");
    vdk_error_free(err);
    err = NULL;
    assert_int_equal(vdk_opts_get_size(o, "size", 0, &u, &err), 0);
    assert_int_equal(u, 3ull << 29);
    assert_int_equal(vdk_opts_get_bool(o, "lazy", false, &b, &err), 0);
    assert_true(b);
    assert_int_equal(vdk_opts_get_uint(o, "count", 0, &u, &err), 0);
    assert_int_equal(u, 16);
    /* C syntax like qemu's "num" options: a leading 0 is octal. */
    assert_int_equal(vdk_opts_get_uint(o, "dec", 0, &u, &err), 0);
    assert_int_equal(u, 8);
    assert_int_equal(vdk_opts_get_enum(o, "colour", colours, 0, &err), 1);
    /* Absent: the default. */
    assert_int_equal(vdk_opts_get_size(o, "nope", 42, &u, &err), 0);
    assert_int_equal(u, 42);
    assert_int_equal(vdk_opts_get_enum(o, "nope", colours, 1, &err), 1);
    assert_null(err);
    vdk_opts_free(o);

    o = unit_opts("size=1Q,lazy=maybe,count=12k,colour=blue,encrypt.format=luks");
    err = NULL;
    assert_int_equal(vdk_opts_validate(o, table, "format 'x'", &err), -EINVAL);
    assert_string_equal(err->msg, "parameter 'size' expects a size (bytes with optional k, "
                                  "M, G, T, P or E suffix), not '1Q'");
    vdk_error_free(err);
    err = NULL;
    r = vdk_opts_get_size(o, "size", 0, &u, &err);
    expect_err(r, err,
               "parameter 'size' expects a size (bytes with optional k, M, G, T, P or E "
               "suffix), not '1Q'");
    err = NULL;
    r = vdk_opts_get_bool(o, "lazy", false, &b, &err);
    expect_err(r, err,
               "parameter 'lazy' expects 'on' or 'off', not 'maybe'");
    err = NULL;
    r = vdk_opts_get_uint(o, "count", 0, &u, &err);
    expect_err(r, err,
               "parameter 'count' expects a number, not '12k'");
    err = NULL;
    r = vdk_opts_get_enum(o, "colour", colours, 0, &err);
    expect_err(r, err,
               "parameter 'colour' expects one of red, green, not 'blue'");
    vdk_opts_free(o);

    /* Dotted keys are left to children by validate. */
    o = unit_opts("size=1M,encrypt.format=luks,file.x=1");
    err = NULL;
    assert_int_equal(vdk_opts_validate(o, table, "format 'x'", &err), 0);
    vdk_opts_free(o);
}

static void test_help_layout(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    vdk_opts_print_help(f, NULL, table);
    fclose(f);
    /* qemu-img's layout: two spaces, name=<type> padded to 22, " - help";
       sorted the way qemu sorts the formatted lines; no defaults (qemu-img
       7.2 prints none). */
    assert_string_equal(buf,
        "Supported options:\n"
        "  cluster-size-with-a-long-name=<size> - Long\n"
        "  colour=<str>           - Colour (allowed values: red, green)\n"
        "  count=<num>            - How many\n"
        "  encrypt.format=<str>   - Encryption format\n"
        "  encrypt=<bool (on/off)> - Encrypt the image\n"
        "  lazy=<bool (on/off)>   - Lazy refcounts\n"
        "  name=<str>             - A name\n"
        "  size=<size>            - Virtual disk size\n");
    free(buf);
    f = open_memstream(&buf, &len);
    vdk_opts_print_help(f, "Creation options for 'x':", NULL);
    fclose(f);
    assert_string_equal(buf, "Creation options for 'x':\n");
    free(buf);
}

static void test_parse_size(void **state)
{
    static const struct { const char *s; int r; uint64_t v; } cases[] = {
        { "0", 0, 0 },
        { "512", 0, 512 },
        { "1b", 0, 1 },
        { "1B", 0, 1 },
        { "4k", 0, 4096 },
        { "4K", 0, 4096 },
        { "1M", 0, 1 << 20 },
        { "1.5G", 0, 3ull << 29 },
        { "0.5k", 0, 512 },
        { "1T", 0, 1ull << 40 },
        { "2P", 0, 2ull << 50 },
        { "7E", 0, 7ull << 60 },
        { "8E", -ERANGE, 0 },
        { "9223372036854775807", 0, INT64_MAX },
        { "9223372036854775808", -ERANGE, 0 },
        { "18446744073709551616", -ERANGE, 0 },
        { "99999999T", -ERANGE, 0 },
        { "8388607.99999T", 0, 9223372036843780691ull },
        { "-1", -EINVAL, 0 },
        { "1Q", -EINVAL, 0 },
        { "1kk", -EINVAL, 0 },
        { "1.5", -EINVAL, 0 },
        { "1.", -EINVAL, 0 },
        { ".5k", -EINVAL, 0 },
        { "0x10", -EINVAL, 0 },
        { "", -EINVAL, 0 },
        { " 1", -EINVAL, 0 },
        { "1 ", -EINVAL, 0 },
        { "1e3", -EINVAL, 0 },
        { "k", -EINVAL, 0 },
        { "+1", -EINVAL, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 12345;
        int r = vdk_parse_size(cases[i].s, &v);
        if (r != cases[i].r || (r == 0 && v != cases[i].v))
            fail_msg("vdk_parse_size(\"%s\") = %d, %llu; expected %d, %llu", cases[i].s, r,
                     (unsigned long long)v, cases[i].r, (unsigned long long)cases[i].v);
        if (r < 0)
            assert_int_equal(v, 12345); /* untouched on error */
    }
    assert_int_equal(vdk_parse_size(NULL, NULL), -EINVAL);

    uint64_t u = 0;
    bool b;
    assert_int_equal(vdk_parse_uint("18446744073709551615", &u), 0);
    assert_int_equal(u, UINT64_MAX);
    assert_int_equal(vdk_parse_uint("18446744073709551616", &u), -ERANGE);
    assert_int_equal(vdk_parse_uint("0x", &u), -EINVAL);
    assert_int_equal(vdk_parse_uint("0xfF", &u), 0);
    assert_int_equal(u, 255);
    assert_int_equal(vdk_parse_uint("08", &u), -EINVAL);
    assert_int_equal(vdk_parse_uint("0x 1", &u), -EINVAL);
    assert_int_equal(vdk_parse_uint("-1", &u), -EINVAL);
    assert_int_equal(vdk_parse_uint("1 ", &u), -EINVAL);
    assert_int_equal(vdk_parse_uint("", &u), -EINVAL);
    assert_int_equal(vdk_parse_bool("on", &b), 0);
    assert_true(b);
    assert_int_equal(vdk_parse_bool("false", &b), 0);
    assert_false(b);
    assert_int_equal(vdk_parse_bool("ON", &b), -EINVAL);
    assert_int_equal(vdk_parse_bool("", &b), -EINVAL);
}

static void test_size_to_str(void **state)
{
    /* What qemu-img 7.2 prints ("virtual size: ...") for these sizes. */
    static const struct { uint64_t v; const char *s; } cases[] = {
        { 0, "0 B" },
        { 1, "1 B" },
        { 512, "512 B" },
        { 999, "999 B" },
        { 1000, "0.977 KiB" },
        { 1023, "0.999 KiB" },
        { 1024, "1 KiB" },
        { 1536, "1.5 KiB" },
        { 4096, "4 KiB" },
        { 1000448, "977 KiB" },
        { 1023488, "1e+03 KiB" },
        { 1024000, "0.977 MiB" },
        { 1047552, "0.999 MiB" },
        { 1048064, "1 MiB" },
        { 1048576, "1 MiB" },
        { 100000256, "95.4 MiB" },
        { 123457024, "118 MiB" },
        { 1073741824, "1 GiB" },
        { 1610612736, "1.5 GiB" },
        { 5000000000ull, "4.66 GiB" },
        { 1099511627776ull, "1 TiB" },
        { 1ull << 50, "1 PiB" },
        { 1ull << 60, "1 EiB" },
        { UINT64_MAX, "16 EiB" },
        /* Above 2^53 qemu's double rounds first: 1.125 EiB + 1 prints as
           1.12, and 1000 PiB - 1 already counts as EiB. */
        { 0x1200000000000001ull, "1.12 EiB" },
        { 1125899906842623999ull, "0.977 EiB" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s = vdk_size_to_str(cases[i].v);
        if (strcmp(s, cases[i].s) != 0)
            fail_msg("vdk_size_to_str(%llu) = \"%s\", qemu says \"%s\"",
                     (unsigned long long)cases[i].v, s, cases[i].s);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_syntax),
        cmocka_unit_test(test_parse_bounds),
        cmocka_unit_test(test_prefix_and_unused),
        cmocka_unit_test(test_typed),
        cmocka_unit_test(test_help_layout),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_size_to_str),
    };
    return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
