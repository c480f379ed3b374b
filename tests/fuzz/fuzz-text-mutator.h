/* SPDX-License-Identifier: MIT */
/*
 * Structure-aware mutation of text inputs (fuzz-mutator.h): option
 * strings, rbd: names, VMDK descriptors, fault control files, boot
 * entries.  Byte flips rarely make a key the parser knows, an escape in
 * the right place or a field one byte longer than its bound; these
 * mutations work on the grammar's units instead.  A grammar names its
 * separators, its escape character, its words (keys, keywords, values)
 * and the lengths it bounds; the input is split at the separators into
 * fields (and, for line grammars, into lines), and one mutation
 * inserts, replaces, duplicates, deletes or swaps fields and lines,
 * swaps separators, adds escapes, quotes and awkward bytes, sets numbers
 * to their edges and grows a field to a bound, one under and one over.
 */
#ifndef VDK_FUZZ_TEXT_MUTATOR_H
#define VDK_FUZZ_TEXT_MUTATOR_H

#include "fuzz-mutator.h"

struct ft_grammar {
    const char *seps;           /* field separators */
    char escape;                /* 0: none */
    bool lines;                 /* line units too ('\n') */
    const char *const *words;
    unsigned nwords;
    const size_t *bounds;       /* field or line lengths the parser bounds */
    unsigned nbounds;
};

/* Replace n bytes at pos with len bytes of s (NULL: leave them as they
   are, as room); false, changing nothing, past the input's maximum. */
static bool ft_splice(struct fmut *m, size_t pos, size_t n, const char *s, size_t len)
{
    if (pos > m->size || n > m->size - pos || len > m->max || m->size - n > m->max - len)
        return false;
    memmove(m->data + pos + len, m->data + pos + n, m->size - pos - n);
    if (s)
        memcpy(m->data + pos, s, len);
    m->size = m->size - n + len;
    return true;
}

static bool ft_is_sep(const struct ft_grammar *g, uint8_t c)
{
    return c && (strchr(g->seps, c) != NULL || (g->lines && c == '\n'));
}

/* A field: [*start, *end) holding pos, bounded by separators. */
static void ft_field(const struct fmut *m, const struct ft_grammar *g, size_t pos,
                     size_t *start, size_t *end)
{
    size_t a = pos, b = pos;
    while (a > 0 && !ft_is_sep(g, m->data[a - 1]))
        a--;
    while (b < m->size && !ft_is_sep(g, m->data[b]))
        b++;
    *start = a, *end = b;
}

/* A line: [*start, *end), the '\n' included. */
static void ft_line(const struct fmut *m, size_t pos, size_t *start, size_t *end)
{
    size_t a = pos, b = pos;
    while (a > 0 && m->data[a - 1] != '\n')
        a--;
    while (b < m->size && m->data[b++] != '\n')
        ;
    *start = a, *end = b;
}

/* A position, most often just after a separator (the start of a field). */
static size_t ft_boundary(struct fmut *m, const struct ft_grammar *g)
{
    size_t pos = fm_rand64(m) % (m->size + 1);
    if (fm_rand(m, 4)) {
        size_t s, e;
        ft_field(m, g, pos < m->size ? pos : m->size, &s, &e);
        pos = fm_rand(m, 2) ? s : e;
    }
    return pos;
}

static bool ft_step_g(struct fmut *m, const struct ft_grammar *g)
{
    static const char *const edges[] = {
        "0", "-1", "1", "+1", "00", "0x10", "010", "1e3", "1.5", ".5", "-0", "4294967295",
        "4294967296", "9223372036854775807", "9223372036854775808", "18446744073709551615",
        "18446744073709551616", "99999999999999999999999999", " 7", "7 ", "nan", "inf",
    };
    static const char *const odd[] = {
        "\\", "\"", "'", " ", "\t", "\r", "\n", "\r\n", "#", "=", ",", ":", "/", "@", "|",
        "{", "}", "$", "${x}", "\xff", "\xc3\xa9", "\xe2\x80\xae", "%s", "..", "\0",
    };
    char tmp[64];
    size_t pos = m->size ? fm_rand64(m) % m->size : 0, s, e;
    ft_field(m, g, pos, &s, &e);
    switch (fm_rand(m, g->lines ? 14 : 12)) {
    case 0: case 1: { /* a word at a field boundary, maybe with a separator */
        const char *w = g->words[fm_rand(m, g->nwords)];
        size_t at = ft_boundary(m, g), len = strlen(w);
        if (fm_rand(m, 2) && *g->seps && len + 1 < sizeof(tmp)) {
            memcpy(tmp, w, len);
            tmp[len++] = g->seps[fm_rand(m, (unsigned)strlen(g->seps))];
            w = tmp;
        }
        return ft_splice(m, at, 0, w, len);
    }
    case 2: case 3: { /* a field becomes a word */
        const char *w = g->words[fm_rand(m, g->nwords)];
        return ft_splice(m, s, e - s, w, strlen(w));
    }
    case 4: { /* a field twice (a repeated key or name), with its separator */
        size_t end = e < m->size ? e + 1 : e, n = end - s;
        if (!n || !ft_splice(m, end, 0, NULL, n))
            return false;
        memcpy(m->data + end, m->data + s, n);
        return true;
    }
    case 5: /* a field removed, or only emptied */
        return ft_splice(m, s, e - s + (fm_rand(m, 2) && e < m->size), "", 0);
    case 6: { /* a separator swapped for another, removed or doubled */
        size_t at = e;
        if (at >= m->size || !*g->seps)
            return false;
        char c = g->seps[fm_rand(m, (unsigned)strlen(g->seps))];
        switch (fm_rand(m, 3)) {
        case 0: m->data[at] = (uint8_t)c; return true;
        case 1: return ft_splice(m, at, 1, "", 0);
        default: return ft_splice(m, at, 0, &c, 1);
        }
    }
    case 7: { /* an escape: before a separator, doubled, at the end */
        if (!g->escape)
            return false;
        char esc[2] = { g->escape, g->escape };
        switch (fm_rand(m, 3)) {
        case 0: return ft_splice(m, e, 0, esc, 1);
        case 1: return ft_splice(m, pos, 0, esc, 2);
        default: return ft_splice(m, m->size, 0, esc, 1);
        }
    }
    case 8: { /* a number at its edges */
        size_t a = pos, b = pos;
        while (a > s && m->data[a - 1] >= '0' && m->data[a - 1] <= '9')
            a--;
        while (b < e && m->data[b] >= '0' && m->data[b] <= '9')
            b++;
        const char *v = edges[fm_rand(m, sizeof(edges) / sizeof(edges[0]))];
        return ft_splice(m, a, b - a, v, strlen(v));
    }
    case 9: { /* a field grown to a bound: one under, at, one over */
        if (!g->nbounds)
            return false;
        size_t want = g->bounds[fm_rand(m, g->nbounds)] + fm_rand(m, 3) - 1;
        size_t have = e - s;
        if (want <= have || !ft_splice(m, e, 0, NULL, want - have))
            return false;
        for (size_t k = 0; k < want - have; k++)
            m->data[e + k] = have ? m->data[s + k % have] : 'a';
        return true;
    }
    case 10: { /* an awkward byte or sequence */
        const char *v = odd[fm_rand(m, sizeof(odd) / sizeof(odd[0]))];
        return ft_splice(m, pos, 0, v, *v ? strlen(v) : 1);
    }
    case 11: { /* two fields swapped (same length keeps it simple: else copy) */
        size_t s2, e2;
        ft_field(m, g, m->size ? fm_rand64(m) % m->size : 0, &s2, &e2);
        size_t n = e - s < e2 - s2 ? e - s : e2 - s2;
        if (!n || s2 == s)
            return false;
        for (size_t k = 0; k < n; k++) {
            uint8_t c = m->data[s + k];
            m->data[s + k] = m->data[s2 + k];
            m->data[s2 + k] = c;
        }
        return true;
    }
    default: { /* lines: one repeated, dropped or moved to the start */
        size_t ls, le;
        ft_line(m, pos, &ls, &le);
        size_t n = le - ls;
        if (!n)
            return false;
        switch (fm_rand(m, 3)) {
        case 0:
            if (!ft_splice(m, le, 0, NULL, n))
                return false;
            memcpy(m->data + le, m->data + ls, n);
            return true;
        case 1:
            return ft_splice(m, ls, n, "", 0);
        default: {
            uint8_t *line = malloc(n);
            if (!line)
                return false;
            memcpy(line, m->data + ls, n);
            memmove(m->data + n, m->data, ls);
            memcpy(m->data, line, n);
            free(line);
            return true;
        }
        }
    }
    }
}

/* FT_MUTATOR(grammar), at file scope after the target's struct
   ft_grammar, defines the target's LLVMFuzzerCustomMutator on it. */
#define FT_MUTATOR(grammar)                                                                  \
    static bool ft_step(struct fmut *m)                                                      \
    {                                                                                        \
        return ft_step_g(m, &(grammar));                                                     \
    }                                                                                        \
    size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,              \
                                   unsigned int seed)                                        \
    {                                                                                        \
        return fm_run(data, size, max_size, seed, ft_step, NULL);                            \
    }

#endif /* VDK_FUZZ_TEXT_MUTATOR_H */
