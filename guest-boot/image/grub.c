/* SPDX-License-Identifier: MIT */
/*
 * grub.cfg without scripting: the menuentry blocks (also those inside
 * submenus), their linux/linuxefi/linux16 and initrd/initrdefi/initrd16
 * lines, and "set default=" (a number, "N>M" into a submenu, or an entry
 * title).  Words are split on blanks with '...' and "..." quoting and
 * backslash escapes; a GRUB device prefix "(hd0,gpt1)" is dropped from
 * paths and option words holding an unexpanded $variable are left out.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "guest-boot/image/image.h"

#define WORDS_MAX 64
#define BLOCKS_MAX 16

/* Split one line in place into words; the count. */
static int split(char *s, char **w, bool *ends_block)
{
    int n = 0;
    char *o = s;
    *ends_block = false;
    while (*s) {
        while (*s && isspace((unsigned char)*s))
            s++;
        if (!*s || *s == '#')
            break;
        char *start = o;
        while (*s && !isspace((unsigned char)*s)) {
            if (*s == '\'' || *s == '"') {
                char q = *s++;
                while (*s && *s != q) {
                    if (q == '"' && *s == '\\' && s[1])
                        s++;
                    *o++ = *s++;
                }
                if (*s)
                    s++;
                continue;
            }
            if (*s == '\\' && s[1])
                s++;
            else if (*s == ';')
                break;
            *o++ = *s++;
        }
        if (*s)
            s++;             /* the blank or ';' that ended the word */
        bool done = *s == 0;
        *o++ = 0;
        if (n < WORDS_MAX)
            w[n++] = start;
        if (done)
            break;
    }
    if (n && !strcmp(w[n - 1], "{")) {
        *ends_block = true;
        n--;
    }
    return n;
}

static const char *drop_device(const char *p)
{
    if (*p == '(') {
        const char *e = strchr(p, ')');
        if (e)
            return e + 1;
    }
    return p;
}

static bool is(const char *w, const char *a, const char *b, const char *c)
{
    return !strcmp(w, a) || !strcmp(w, b) || !strcmp(w, c);
}

int img_grub_parse(const char *text, size_t len, struct img_choice *out,
                   int max, int *def, struct vdk_error **errp)
{
    enum { B_OTHER, B_MENU, B_SUB } stack[BLOCKS_MAX];
    int depth = 0, n = 0, top = -1, sub = -1, r = 0;
    int top_of[IMG_CHOICES_MAX], sub_of[IMG_CHOICES_MAX];
    char want[64] = "0";
    struct img_choice cur;
    bool in_entry = false;
    char *line = NULL, *w[WORDS_MAX];

    *def = 0;
    if (len > IMG_TEXT_MAX)
        return vdk_error_setf(errp, EFBIG, "grub.cfg is too big");
    if (max > IMG_CHOICES_MAX)
        max = IMG_CHOICES_MAX;
    memset(&cur, 0, sizeof(cur));
    line = malloc(len + 1);
    if (!line)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    const char *p = text, *end = text + len;
    while (p < end && r == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = (size_t)((nl ? nl : end) - p);
        memcpy(line, p, l);
        line[l] = 0;
        p = nl ? nl + 1 : end;
        if (memchr(line, 0, l))
            continue;            /* a NUL: not text we understand */
        bool opens;
        int nw = split(line, w, &opens);
        for (int i = 0; i < nw && r == 0; i++) {
            if (strcmp(w[i], "}"))
                continue;
            /* "}" closes the innermost block (alone or before words) */
            if (depth == 0) {
                r = vdk_error_setf(errp, EINVAL, "grub.cfg: unbalanced '}'");
                break;
            }
            if (stack[--depth] == B_MENU && in_entry) {
                in_entry = false;
                if (cur.kernel && n < max) {
                    top_of[n] = top;
                    sub_of[n] = depth > 0 && stack[depth - 1] == B_SUB ? sub : -1;
                    if (!cur.options && !(cur.options = strdup("")))
                        r = vdk_error_setf(errp, ENOMEM, "out of memory");
                    out[n++] = cur;
                    memset(&cur, 0, sizeof(cur));
                } else {
                    img_choice_clear(&cur);
                }
            }
            w[i] = NULL;
        }
        if (r < 0 || nw == 0 || !w[0])
            goto next;
        if (!strcmp(w[0], "menuentry") || !strcmp(w[0], "submenu")) {
            bool menu = w[0][0] == 'm';
            if (depth == BLOCKS_MAX) {
                r = vdk_error_setf(errp, EINVAL, "grub.cfg: blocks nested "
                                   "deeper than %d", BLOCKS_MAX);
                break;
            }
            if (depth == 0) {
                top++;
                sub = -1;
            } else if (stack[depth - 1] == B_SUB) {
                sub++;
            }
            if (menu && !in_entry) {
                img_choice_clear(&cur);
                cur.kind = IMG_KIND_GRUB;
                snprintf(cur.title, sizeof(cur.title), "%s", nw > 1 ? w[1] : "");
                in_entry = true;
            }
            stack[depth++] = menu ? B_MENU : B_SUB;
            goto next;
        }
        if (opens) {
            if (depth == BLOCKS_MAX) {
                r = vdk_error_setf(errp, EINVAL, "grub.cfg: blocks nested "
                                   "deeper than %d", BLOCKS_MAX);
                break;
            }
            stack[depth++] = B_OTHER;
            goto next;
        }
        if (!strncmp(w[0], "set", 3) && nw >= 2 && !strncmp(w[1], "default=", 8)) {
            if (!in_entry)
                snprintf(want, sizeof(want), "%s", w[1] + 8);
            goto next;
        }
        if (!in_entry || nw < 2)
            goto next;
        if (is(w[0], "linux", "linuxefi", "linux16")) {
            r = img_add_path(&cur.kernel, drop_device(w[1]),
                             strlen(drop_device(w[1])), errp);
            free(cur.options);
            cur.options = NULL;
            for (int i = 2; i < nw && r == 0; i++)
                if (!strchr(w[i], '$'))
                    r = img_options_add(&cur.options, w[i], strlen(w[i]), errp);
        } else if (is(w[0], "initrd", "initrdefi", "initrd16")) {
            for (int i = 0; i < cur.ninitrd; i++) {
                free(cur.initrd[i]);
                cur.initrd[i] = NULL;
            }
            cur.ninitrd = 0;
            for (int i = 1; i < nw && r == 0; i++) {
                if (cur.ninitrd == IMG_INITRD_MAX) {
                    r = vdk_error_setf(errp, E2BIG, "more than %d initrds",
                                       IMG_INITRD_MAX);
                    break;
                }
                const char *q = drop_device(w[i]);
                if ((r = img_add_path(&cur.initrd[cur.ninitrd], q, strlen(q),
                                      errp)) == 0)
                    cur.ninitrd++;
            }
        }
next:;
    }
    img_choice_clear(&cur);
    free(line);
    if (r < 0) {
        for (int i = 0; i < n; i++)
            img_choice_clear(&out[i]);
        vdk_error_prepend(errp, "grub.cfg: ");
        return r;
    }
    /* set default: "N", "N>M", or a title. */
    char *e;
    long a = strtol(want, &e, 10), b = -1;
    bool numeric = e != want && a >= 0;
    if (numeric && *e == '>')
        b = strtol(e + 1, &e, 10);
    for (int i = 0; i < n; i++) {
        if (numeric ? top_of[i] == a && (b < 0 || sub_of[i] == b)
                    : !strcmp(out[i].title, want)) {
            *def = i;
            break;
        }
    }
    return n;
}
