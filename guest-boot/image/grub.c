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

enum tok { T_WORD, T_OPEN, T_CLOSE, T_END, T_EOL };

/*
 * The next token of a line, consumed in place: a word (quotes and escapes
 * removed) in *word, with *semi set when a ';' ended it; "{" and "}"
 * standing alone; ';' (T_END) and the end of the line or a comment (T_EOL).
 */
static enum tok next_token(char **sp, char **word, bool *semi)
{
    char *s = *sp;
    *semi = false;
    while (*s && isspace((unsigned char)*s))
        s++;
    if (!*s || *s == '#') {
        *sp = s;
        return T_EOL;
    }
    if (*s == ';') {
        *sp = s + 1;
        return T_END;
    }
    if ((*s == '{' || *s == '}') &&
        (!s[1] || isspace((unsigned char)s[1]) || s[1] == ';')) {
        *sp = s + 1;
        return *s == '{' ? T_OPEN : T_CLOSE;
    }
    char *o = s;
    *word = o;
    while (*s && !isspace((unsigned char)*s) && *s != ';') {
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
        *o++ = *s++;
    }
    /* o <= s: the terminator is read before the word's NUL may land on it. */
    *semi = *s == ';';
    *sp = *s ? s + 1 : s;
    *o = 0;
    return T_WORD;
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

struct grub {
    enum { B_OTHER, B_MENU, B_SUB } stack[BLOCKS_MAX];
    int depth, n, max, top, sub;
    int top_of[IMG_CHOICES_MAX], sub_of[IMG_CHOICES_MAX];
    char want[64];
    struct img_choice cur;
    bool in_entry;
    struct img_choice *out;
};

static int open_block(struct grub *g, char **w, int nw, struct vdk_error **errp)
{
    if (g->depth == BLOCKS_MAX)
        return vdk_error_setf(errp, EINVAL, "blocks nested deeper than %d",
                              BLOCKS_MAX);
    bool menu = nw && !strcmp(w[0], "menuentry");
    bool sub = nw && !strcmp(w[0], "submenu");
    if (menu || sub) {
        if (g->depth == 0) {
            g->top++;
            g->sub = -1;
        } else if (g->stack[g->depth - 1] == B_SUB) {
            g->sub++;
        }
    }
    if (menu && !g->in_entry) {
        img_choice_clear(&g->cur);
        g->cur.kind = IMG_KIND_GRUB;
        snprintf(g->cur.title, sizeof(g->cur.title), "%s", nw > 1 ? w[1] : "");
        g->in_entry = true;
    }
    g->stack[g->depth++] = menu ? B_MENU : sub ? B_SUB : B_OTHER;
    return 0;
}

static int close_block(struct grub *g, struct vdk_error **errp)
{
    if (g->depth == 0)
        return vdk_error_setf(errp, EINVAL, "unbalanced '}'");
    if (g->stack[--g->depth] != B_MENU || !g->in_entry)
        return 0;
    g->in_entry = false;
    if (!g->cur.kernel || g->n == g->max) {
        img_choice_clear(&g->cur);
        return 0;
    }
    if (!g->cur.options && !(g->cur.options = strdup("")))
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    g->top_of[g->n] = g->top;
    g->sub_of[g->n] = g->depth > 0 && g->stack[g->depth - 1] == B_SUB ? g->sub : -1;
    g->out[g->n++] = g->cur;
    memset(&g->cur, 0, sizeof(g->cur));
    return 0;
}

static int run(struct grub *g, char **w, int nw, struct vdk_error **errp)
{
    struct img_choice *c = &g->cur;
    int r = 0;
    if (nw >= 2 && !strcmp(w[0], "set") && !strncmp(w[1], "default=", 8)) {
        if (!g->in_entry)
            snprintf(g->want, sizeof(g->want), "%s", w[1] + 8);
        return 0;
    }
    if (!g->in_entry || nw < 2)
        return 0;
    if (is(w[0], "linux", "linuxefi", "linux16")) {
        const char *k = drop_device(w[1]);
        r = img_add_path(&c->kernel, k, strlen(k), errp);
        free(c->options);
        c->options = NULL;
        for (int i = 2; i < nw && r == 0; i++)
            if (!strchr(w[i], '$'))
                r = img_options_add(&c->options, w[i], strlen(w[i]), errp);
    } else if (is(w[0], "initrd", "initrdefi", "initrd16")) {
        for (int i = 0; i < c->ninitrd; i++) {
            free(c->initrd[i]);
            c->initrd[i] = NULL;
        }
        c->ninitrd = 0;
        for (int i = 1; i < nw && r == 0; i++) {
            if (c->ninitrd == IMG_INITRD_MAX)
                return vdk_error_setf(errp, E2BIG, "more than %d initrds",
                                      IMG_INITRD_MAX);
            const char *q = drop_device(w[i]);
            if ((r = img_add_path(&c->initrd[c->ninitrd], q, strlen(q), errp)) == 0)
                c->ninitrd++;
        }
    }
    return r;
}

int img_grub_parse(const char *text, size_t len, struct img_choice *out,
                   int max, int *def, struct vdk_error **errp)
{
    struct grub *g = calloc(1, sizeof(*g));
    char *line = malloc(len + 1), *w[WORDS_MAX];
    int r = 0;

    *def = 0;
    if (!g || !line) {
        free(g);
        free(line);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    if (len > IMG_TEXT_MAX) {
        r = vdk_error_setf(errp, EFBIG, "too big");
        goto out;
    }
    g->max = max > IMG_CHOICES_MAX ? IMG_CHOICES_MAX : max;
    g->top = g->sub = -1;
    g->out = out;
    snprintf(g->want, sizeof(g->want), "0");
    const char *p = text, *end = text + len;
    while (p < end && r == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = (size_t)((nl ? nl : end) - p);
        memcpy(line, p, l);
        line[l] = 0;
        p = nl ? nl + 1 : end;
        if (memchr(line, 0, l))
            continue;            /* a NUL: not text we understand */
        char *s = line, *word = NULL;
        int nw = 0;
        for (;;) {
            bool semi;
            enum tok t = next_token(&s, &word, &semi);
            if (t == T_WORD) {
                if (nw < WORDS_MAX)
                    w[nw++] = word;
                if (!semi)
                    continue;
                t = T_END;
            }
            if (t == T_OPEN)
                r = open_block(g, w, nw, errp);
            else
                r = run(g, w, nw, errp);
            if (r == 0 && t == T_CLOSE)
                r = close_block(g, errp);
            nw = 0;
            if (r < 0 || t == T_EOL)
                break;
        }
    }
    img_choice_clear(&g->cur);
    if (r < 0) {
        for (int i = 0; i < g->n; i++)
            img_choice_clear(&out[i]);
        vdk_error_prepend(errp, "grub.cfg");
        goto out;
    }
    /* set default: "N", "N>M", or a title. */
    char *e;
    long a = strtol(g->want, &e, 10), b = -1;
    bool numeric = e != g->want && a >= 0;
    if (numeric && *e == '>')
        b = strtol(e + 1, &e, 10);
    for (int i = 0; i < g->n; i++) {
        if (numeric ? g->top_of[i] == a && (b < 0 || g->sub_of[i] == b)
                    : !strcmp(out[i].title, g->want)) {
            *def = i;
            break;
        }
    }
    r = g->n;
out:
    free(g);
    free(line);
    return r;
}
