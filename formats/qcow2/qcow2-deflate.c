/* SPDX-License-Identifier: MIT */
/*
 * qcow2: a raw-deflate encoder for zlib clusters whose output is, byte for
 * byte, what zlib's deflate() gives with QEMU's parameters (level 6, a 4 KiB
 * window, memLevel 9, default strategy), so compressed images stay exactly
 * as large as qemu-img's.  Why not zlib itself: with a 4 KiB window and a
 * 64 Ki-entry hash table, zlib rewrites the whole table every 4 KiB of
 * input, which is most of its time.  Here hash chains hold positions that
 * never move, and an entry is simply ignored once it leaves the window;
 * everything else follows the same rules (RFC 1951 for the format):
 *
 *  - the hash of a position is that of its next 3 bytes, 16 bits, as zlib
 *    rolls it, and candidates are walked newest first, at most 128 (32 once
 *    the previous match reaches 8 bytes), stopping at 128 bytes or at the
 *    window edge (4096 - 262 bytes back); a candidate at the very start of
 *    the window buffer counts as "none", as zlib's NIL does;
 *  - lazy matching: a match is kept only if the next position finds no
 *    longer one, and none is looked for after a match of 16 or more;
 *  - a block ends after 32767 symbols or at the end of input; it is sent
 *    stored, with the fixed codes or with its own Huffman codes, whichever
 *    is smallest, with zlib's tie rules; stored needs the block's bytes
 *    still in the window buffer, whose moves are reproduced for that;
 *  - Huffman code lengths come from zlib's heap construction (ties broken
 *    by subtree depth) and its length-limiting repair.
 *
 * tests/unit/qcow2 compares the output with zlib's on many inputs, and
 * tests/fuzz/fuzz-qcow2-deflate does so on mutated ones.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "formats/qcow2/qcow2.h"

#define WSIZE 4096u                 /* window: windowBits 12 */
#define WMASK (WSIZE - 1)
#define MIN_LOOKAHEAD 262u          /* MAX_MATCH + MIN_MATCH + 1 */
#define MAX_DIST (WSIZE - MIN_LOOKAHEAD)
#define HASH_BITS 16u               /* memLevel 9 */
#define HASH_SIZE (1u << HASH_BITS)
#define SYM_MAX 32767u              /* symbols per block: (1 << 15) - 1 */
#define MAX_MATCH 258u
#define MIN_MATCH 3u
#define GOOD_LEN 8u                 /* level 6 */
#define MAX_LAZY 16u
#define NICE_LEN 128u
#define MAX_CHAIN 128u

#define L_CODES 286
#define D_CODES 30
#define BL_CODES 19
#define HEAP_SIZE (2 * L_CODES + 1)
#define END_BLOCK 256

static const uint8_t extra_lbits[29] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                         2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0 };
static const uint8_t extra_dbits[30] = { 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                         6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13 };
static const uint8_t extra_blbits[BL_CODES] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                0, 0, 0, 0, 0, 0, 2, 3, 7 };
static const uint8_t bl_order[BL_CODES] = { 16, 17, 18, 0, 8, 7, 9, 6, 10, 5,
                                            11, 4, 12, 3, 13, 2, 14, 1, 15 };

/* Tables shared by every thread, built once. */
static struct {
    uint8_t length_code[256];       /* match length - 3 -> code 0..28 */
    uint8_t dist_code[512];         /* see d_code() */
    uint16_t base_length[29];
    uint16_t base_dist[30];
    uint16_t sl_code[L_CODES + 2], sl_len[L_CODES + 2]; /* fixed codes */
    uint16_t sd_code[D_CODES], sd_len[D_CODES];
} T;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

struct tree {
    uint32_t freq[HEAP_SIZE];
    uint16_t len[HEAP_SIZE];
    uint16_t code[HEAP_SIZE];
    uint16_t dad[HEAP_SIZE];
    int max_code;
};

struct qcow2_deflate {
    uint32_t head[HASH_SIZE];       /* newest position per hash (absolute) */
    uint32_t prev[WSIZE];           /* older position, same hash */
    uint32_t base;                  /* absolute position of src[0] */
    /* Symbols of the current block: dist 0 = literal lc.  One more than
       SYM_MAX: the last literal of the input never ends a block early. */
    uint16_t sym_dist[SYM_MAX + 1];
    uint8_t sym_lc[SYM_MAX + 1];
    unsigned nsym;
    struct tree lt, dt, bt;
    int heap[HEAP_SIZE], heap_len, heap_max;
    uint8_t depth[HEAP_SIZE];
    uint16_t bl_count[16];
    uint64_t opt_len, static_len;
    /* Output. */
    uint8_t *out;
    size_t cap, pos;
    uint64_t bitbuf;
    unsigned bitcnt;
    bool full;
};

static unsigned bi_reverse(unsigned code, unsigned len)
{
    unsigned r = 0;
    do {
        r |= code & 1;
        code >>= 1;
        r <<= 1;
    } while (--len > 0);
    return r >> 1;
}

static void gen_codes(uint16_t *code, const uint16_t *len, int max_code,
                      const uint16_t *bl_count)
{
    uint16_t next[16];
    unsigned c = 0;
    for (int bits = 1; bits <= 15; bits++) {
        c = (c + bl_count[bits - 1]) << 1;
        next[bits] = (uint16_t)c;
    }
    for (int n = 0; n <= max_code; n++)
        if (len[n])
            code[n] = (uint16_t)bi_reverse(next[len[n]]++, len[n]);
}

static void tables_init(void)
{
    unsigned length = 0, dist = 0;
    int code;
    for (code = 0; code < 28; code++) {
        T.base_length[code] = (uint16_t)length;
        for (unsigned n = 0; n < (1u << extra_lbits[code]); n++)
            T.length_code[length++] = (uint8_t)code;
    }
    T.length_code[length - 1] = (uint8_t)code; /* length 258 has its own code */
    for (code = 0; code < 16; code++) {
        T.base_dist[code] = (uint16_t)dist;
        for (unsigned n = 0; n < (1u << extra_dbits[code]); n++)
            T.dist_code[dist++] = (uint8_t)code;
    }
    dist >>= 7;
    for (; code < D_CODES; code++) {
        T.base_dist[code] = (uint16_t)(dist << 7);
        for (unsigned n = 0; n < (1u << (extra_dbits[code] - 7)); n++)
            T.dist_code[256 + dist++] = (uint8_t)code;
    }
    uint16_t bl_count[16] = { 0 };
    for (int n = 0; n <= L_CODES + 1; n++) {
        T.sl_len[n] = n <= 143 ? 8 : n <= 255 ? 9 : n <= 279 ? 7 : 8;
        bl_count[T.sl_len[n]]++;
    }
    gen_codes(T.sl_code, T.sl_len, L_CODES + 1, bl_count);
    for (int n = 0; n < D_CODES; n++) {
        T.sd_len[n] = 5;
        T.sd_code[n] = (uint16_t)bi_reverse((unsigned)n, 5);
    }
}

static unsigned d_code(unsigned dist)
{
    return dist < 256 ? T.dist_code[dist] : T.dist_code[256 + (dist >> 7)];
}

/* ---- bit output, least significant bit first ---- */

static void put_byte(struct qcow2_deflate *z, uint8_t b)
{
    if (z->pos < z->cap)
        z->out[z->pos] = b;
    else
        z->full = true;
    z->pos++;
}

static void send_bits(struct qcow2_deflate *z, unsigned value, unsigned len)
{
    z->bitbuf |= (uint64_t)value << z->bitcnt;
    z->bitcnt += len;
    while (z->bitcnt >= 8) {
        put_byte(z, (uint8_t)z->bitbuf);
        z->bitbuf >>= 8;
        z->bitcnt -= 8;
    }
}

static void bi_windup(struct qcow2_deflate *z)
{
    if (z->bitcnt)
        put_byte(z, (uint8_t)z->bitbuf);
    z->bitbuf = 0;
    z->bitcnt = 0;
}

/* ---- Huffman trees ---- */

static bool smaller(const struct qcow2_deflate *z, const struct tree *t, int n, int m)
{
    return t->freq[n] < t->freq[m] || (t->freq[n] == t->freq[m] && z->depth[n] <= z->depth[m]);
}

static void pqdownheap(struct qcow2_deflate *z, const struct tree *t, int k)
{
    int v = z->heap[k], j = k << 1;
    while (j <= z->heap_len) {
        if (j < z->heap_len && smaller(z, t, z->heap[j + 1], z->heap[j]))
            j++;
        if (smaller(z, t, v, z->heap[j]))
            break;
        z->heap[k] = z->heap[j];
        k = j;
        j <<= 1;
    }
    z->heap[k] = v;
}

/* Code lengths from the tree the heap holds, limited to max_length; adds
   the block's cost in these codes (and in the fixed ones) to the totals. */
static void gen_bitlen(struct qcow2_deflate *z, struct tree *t, const uint16_t *slen,
                       const uint8_t *extra, int base, unsigned max_length)
{
    int h, n, m, overflow = 0;
    unsigned bits;
    for (bits = 0; bits <= 15; bits++)
        z->bl_count[bits] = 0;
    t->len[z->heap[z->heap_max]] = 0; /* the root */
    for (h = z->heap_max + 1; h < HEAP_SIZE; h++) {
        n = z->heap[h];
        bits = t->len[t->dad[n]] + 1u;
        if (bits > max_length) {
            bits = max_length;
            overflow++;
        }
        t->len[n] = (uint16_t)bits;
        if (n > t->max_code)
            continue; /* not a leaf */
        z->bl_count[bits]++;
        unsigned xbits = n >= base ? extra[n - base] : 0;
        z->opt_len += (uint64_t)t->freq[n] * (bits + xbits);
        if (slen)
            z->static_len += (uint64_t)t->freq[n] * (slen[n] + xbits);
    }
    if (!overflow)
        return;
    do { /* move leaves down until the lengths fit */
        bits = max_length - 1;
        while (z->bl_count[bits] == 0)
            bits--;
        z->bl_count[bits]--;
        z->bl_count[bits + 1] += 2;
        z->bl_count[max_length]--;
        overflow -= 2;
    } while (overflow > 0);
    for (bits = max_length; bits != 0; bits--) {
        n = z->bl_count[bits];
        while (n != 0) {
            m = z->heap[--h];
            if (m > t->max_code)
                continue;
            if (t->len[m] != bits) {
                z->opt_len += ((uint64_t)bits - t->len[m]) * t->freq[m];
                t->len[m] = (uint16_t)bits;
            }
            n--;
        }
    }
}

static void build_tree(struct qcow2_deflate *z, struct tree *t, int elems,
                       const uint16_t *slen, const uint8_t *extra, int base,
                       unsigned max_length)
{
    int n, m, max_code = -1, node;
    z->heap_len = 0;
    z->heap_max = HEAP_SIZE;
    for (n = 0; n < elems; n++) {
        if (t->freq[n]) {
            z->heap[++z->heap_len] = max_code = n;
            z->depth[n] = 0;
        } else {
            t->len[n] = 0;
        }
    }
    while (z->heap_len < 2) { /* at least two codes */
        node = z->heap[++z->heap_len] = max_code < 2 ? ++max_code : 0;
        t->freq[node] = 1;
        z->depth[node] = 0;
        z->opt_len--;
        if (slen)
            z->static_len -= slen[node];
    }
    t->max_code = max_code;
    for (n = z->heap_len / 2; n >= 1; n--)
        pqdownheap(z, t, n);
    node = elems;
    do {
        n = z->heap[1];
        z->heap[1] = z->heap[z->heap_len--];
        pqdownheap(z, t, 1);
        m = z->heap[1];
        z->heap[--z->heap_max] = n;
        z->heap[--z->heap_max] = m;
        t->freq[node] = t->freq[n] + t->freq[m];
        z->depth[node] = (uint8_t)((z->depth[n] >= z->depth[m] ? z->depth[n] : z->depth[m]) + 1);
        t->dad[n] = t->dad[m] = (uint16_t)node;
        z->heap[1] = node++;
        pqdownheap(z, t, 1);
    } while (z->heap_len >= 2);
    z->heap[--z->heap_max] = z->heap[1];
    gen_bitlen(z, t, slen, extra, base, max_length);
    gen_codes(t->code, t->len, max_code, z->bl_count);
}

/* Run-length walk of a tree's code lengths, as the block header codes them:
   counts the symbols (send = false) or sends them. */
static void walk_lengths(struct qcow2_deflate *z, struct tree *t, int max_code, bool send)
{
    int prevlen = -1, curlen, nextlen = t->len[0], count = 0;
    int max_count = 7, min_count = 4;
    if (nextlen == 0) {
        max_count = 138;
        min_count = 3;
    }
    for (int n = 0; n <= max_code; n++) {
        curlen = nextlen;
        nextlen = n + 1 <= max_code ? t->len[n + 1] : 0xffff; /* guard */
        if (++count < max_count && curlen == nextlen)
            continue;
        struct tree *b = &z->bt;
        if (count < min_count) {
            if (!send)
                b->freq[curlen] += (uint32_t)count;
            else
                do
                    send_bits(z, b->code[curlen], b->len[curlen]);
                while (--count != 0);
        } else if (curlen != 0) {
            if (!send) {
                if (curlen != prevlen)
                    b->freq[curlen]++;
                b->freq[16]++;
            } else {
                if (curlen != prevlen) {
                    send_bits(z, b->code[curlen], b->len[curlen]);
                    count--;
                }
                send_bits(z, b->code[16], b->len[16]);
                send_bits(z, (unsigned)count - 3, 2);
            }
        } else if (count <= 10) {
            if (!send) {
                b->freq[17]++;
            } else {
                send_bits(z, b->code[17], b->len[17]);
                send_bits(z, (unsigned)count - 3, 3);
            }
        } else {
            if (!send) {
                b->freq[18]++;
            } else {
                send_bits(z, b->code[18], b->len[18]);
                send_bits(z, (unsigned)count - 11, 7);
            }
        }
        count = 0;
        prevlen = curlen;
        if (nextlen == 0) {
            max_count = 138;
            min_count = 3;
        } else if (curlen == nextlen) {
            max_count = 6;
            min_count = 3;
        } else {
            max_count = 7;
            min_count = 4;
        }
    }
}

static void compress_block(struct qcow2_deflate *z, const uint16_t *lcode,
                           const uint16_t *llen, const uint16_t *dcode, const uint16_t *dlen)
{
    for (unsigned i = 0; i < z->nsym; i++) {
        unsigned dist = z->sym_dist[i], lc = z->sym_lc[i];
        if (!dist) {
            send_bits(z, lcode[lc], llen[lc]);
            continue;
        }
        unsigned code = T.length_code[lc];
        send_bits(z, lcode[code + 257], llen[code + 257]);
        if (extra_lbits[code])
            send_bits(z, lc - T.base_length[code], extra_lbits[code]);
        dist--;
        code = d_code(dist);
        send_bits(z, dcode[code], dlen[code]);
        if (extra_dbits[code])
            send_bits(z, dist - T.base_dist[code], extra_dbits[code]);
    }
    send_bits(z, lcode[END_BLOCK], llen[END_BLOCK]);
}

static void init_block(struct qcow2_deflate *z)
{
    memset(z->lt.freq, 0, sizeof(z->lt.freq));
    memset(z->dt.freq, 0, sizeof(z->dt.freq));
    memset(z->bt.freq, 0, sizeof(z->bt.freq));
    z->lt.freq[END_BLOCK] = 1;
    z->opt_len = z->static_len = 0;
    z->nsym = 0;
}

/* End the block of symbols so far; stored (the bytes at buf, NULL when no
   longer in the window buffer), fixed or dynamic, whichever is cheapest. */
static void flush_block(struct qcow2_deflate *z, const uint8_t *buf, uint64_t stored_len,
                        bool last)
{
    build_tree(z, &z->lt, L_CODES, T.sl_len, extra_lbits, 257, 15);
    build_tree(z, &z->dt, D_CODES, T.sd_len, extra_dbits, 0, 15);
    walk_lengths(z, &z->lt, z->lt.max_code, false);
    walk_lengths(z, &z->dt, z->dt.max_code, false);
    build_tree(z, &z->bt, BL_CODES, NULL, extra_blbits, 0, 7);
    int max_blindex;
    for (max_blindex = BL_CODES - 1; max_blindex >= 3; max_blindex--)
        if (z->bt.len[bl_order[max_blindex]] != 0)
            break;
    z->opt_len += 3 * ((uint64_t)max_blindex + 1) + 5 + 5 + 4;
    uint64_t opt_lenb = (z->opt_len + 3 + 7) >> 3, static_lenb = (z->static_len + 3 + 7) >> 3;
    if (static_lenb <= opt_lenb)
        opt_lenb = static_lenb;
    if (stored_len + 4 <= opt_lenb && buf) {
        send_bits(z, last, 3);
        bi_windup(z);
        put_byte(z, (uint8_t)stored_len);
        put_byte(z, (uint8_t)(stored_len >> 8));
        put_byte(z, (uint8_t)~stored_len);
        put_byte(z, (uint8_t)(~stored_len >> 8));
        for (uint64_t i = 0; i < stored_len; i++)
            put_byte(z, buf[i]);
    } else if (static_lenb == opt_lenb) {
        send_bits(z, (1u << 1) + last, 3);
        compress_block(z, T.sl_code, T.sl_len, T.sd_code, T.sd_len);
    } else {
        int lcodes = z->lt.max_code + 1, dcodes = z->dt.max_code + 1;
        send_bits(z, (2u << 1) + last, 3);
        send_bits(z, (unsigned)lcodes - 257, 5);
        send_bits(z, (unsigned)dcodes - 1, 5);
        send_bits(z, (unsigned)max_blindex + 1 - 4, 4);
        for (int r = 0; r <= max_blindex; r++)
            send_bits(z, z->bt.len[bl_order[r]], 3);
        walk_lengths(z, &z->lt, lcodes - 1, true);
        walk_lengths(z, &z->dt, dcodes - 1, true);
        compress_block(z, z->lt.code, z->lt.len, z->dt.code, z->dt.len);
    }
    init_block(z);
    if (last)
        bi_windup(z);
}

/* ---- LZ77 ---- */

static inline uint32_t hash3(const uint8_t *p)
{
    return ((uint32_t)p[0] << 12 ^ (uint32_t)p[1] << 6 ^ p[2]) & (HASH_SIZE - 1);
}

/*
 * Longest match at s (absolute position, data at src) among the chain from
 * cur, longer than prev_len; the window starts after `limit`, `lookahead`
 * bytes are left.  Sets *mstart.
 */
static unsigned longest_match(const struct qcow2_deflate *z, const uint8_t *src, uint32_t s,
                              uint32_t cur, uint32_t limit, unsigned prev_len,
                              unsigned lookahead, uint32_t *mstart)
{
    unsigned chain = MAX_CHAIN, best = prev_len, nice = NICE_LEN;
    const uint8_t *scan = src + (s - z->base);
    /* Nothing can beat prev_len within the input (zlib compares past it
       with stale window bytes, but returns the same clamped length). */
    if (best >= lookahead)
        return lookahead;
    if (prev_len >= GOOD_LEN)
        chain >>= 2;
    if (nice > lookahead)
        nice = lookahead;
    unsigned maxlen = lookahead < MAX_MATCH ? lookahead : MAX_MATCH;
    /* A candidate must match the 2 bytes ending at `best` to beat it, and
       the first 2: compared as 16-bit words first. */
    uint16_t end2, head2;
    memcpy(&end2, scan + best - 1, 2);
    memcpy(&head2, scan, 2);
    const uint32_t *prev = z->prev;
    do {
        const uint8_t *m = src + (cur - z->base);
        uint16_t me, mh;
        memcpy(&me, m + best - 1, 2);
        memcpy(&mh, m, 2);
        if (me != end2 || mh != head2)
            continue;
        /* Byte 2 matches too: same hash, same first two bytes.  Compare
           8 bytes at a time, never past the input. */
        unsigned len = 3;
        for (;;) {
            if (len + 8 > maxlen || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__) {
                while (len < maxlen && m[len] == scan[len])
                    len++;
                break;
            }
            uint64_t x, y;
            memcpy(&x, m + len, 8);
            memcpy(&y, scan + len, 8);
            if (x != y) {
                len += (unsigned)__builtin_ctzll(x ^ y) >> 3; /* little endian */
                break;
            }
            len += 8;
        }
        if (len == maxlen && maxlen < MAX_MATCH)
            len = MAX_MATCH; /* reaches the end of the input: best possible */
        if (len > best) {
            *mstart = cur;
            best = len;
            if (len >= nice)
                break;
            memcpy(&end2, scan + best - 1, 2);
        }
    } while ((cur = prev[cur & WMASK]) > limit && --chain != 0);
    return best <= lookahead ? best : lookahead;
}

static void insert(struct qcow2_deflate *z, const uint8_t *src, uint32_t p, uint32_t *head_out)
{
    uint32_t h = hash3(src + (p - z->base));
    *head_out = z->head[h];
    z->prev[p & WMASK] = z->head[h];
    z->head[h] = p;
}

struct qcow2_deflate *qcow2_deflate_new(void)
{
    pthread_once(&tables_once, tables_init);
    struct qcow2_deflate *z = calloc(1, sizeof(*z));
    if (z)
        z->base = 1; /* absolute positions start past 0, which is "none" */
    return z;
}

void qcow2_deflate_free(struct qcow2_deflate *z)
{
    free(z);
}

int64_t qcow2_deflate(struct qcow2_deflate *z, const uint8_t *src, size_t slen,
                      uint8_t *dst, size_t dcap)
{
    if (slen > (1u << 24))
        return -EINVAL;
    /* Positions of earlier calls must all fall outside this one's window. */
    if (z->base > UINT32_MAX - (uint32_t)slen - 2 * WSIZE) {
        memset(z->head, 0, sizeof(z->head));
        z->base = 1;
    }
    const uint32_t b = z->base;
    z->out = dst;
    z->cap = dcap;
    z->pos = 0;
    z->bitbuf = 0;
    z->bitcnt = 0;
    z->full = false;
    init_block(z);

    /* zlib's window buffer (2 * WSIZE bytes): where it starts (win), how
       far it is filled (filled), and the block's first byte. */
    uint32_t win = b, filled = b, end = b + (uint32_t)slen, block = b;
    uint32_t s = b, lookahead = 0, prev_match = 0, match_start = 0;
    unsigned match_len = MIN_MATCH - 1, prev_len;
    bool match_available = false;
    for (;;) {
        if (lookahead < MIN_LOOKAHEAD) { /* zlib's fill_window() */
            do {
                uint32_t more = 2 * WSIZE - lookahead - (s - win);
                if (s - win >= WSIZE + MAX_DIST) {
                    win += WSIZE;
                    more += WSIZE;
                }
                if (filled == end)
                    break;
                uint32_t n = end - filled < more ? end - filled : more;
                filled += n;
                lookahead += n;
            } while (lookahead < MIN_LOOKAHEAD && filled < end);
            if (lookahead == 0)
                break;
        }
        uint32_t hash_head = 0;
        if (lookahead >= MIN_MATCH)
            insert(z, src, s, &hash_head);
        prev_len = match_len;
        prev_match = match_start;
        match_len = MIN_MATCH - 1;
        /* A candidate at the window buffer's first byte is zlib's NIL. */
        if (hash_head > win && prev_len < MAX_LAZY && s - hash_head <= MAX_DIST) {
            uint32_t limit = s - win > MAX_DIST ? s - MAX_DIST : win;
            match_len = longest_match(z, src, s, hash_head, limit, prev_len, lookahead,
                                      &match_start);
        }
        if (prev_len >= MIN_MATCH && match_len <= prev_len) {
            uint32_t max_insert = s + lookahead - MIN_MATCH;
            z->sym_dist[z->nsym] = (uint16_t)(s - 1 - prev_match);
            z->sym_lc[z->nsym] = (uint8_t)(prev_len - MIN_MATCH);
            unsigned code = T.length_code[prev_len - MIN_MATCH];
            z->lt.freq[code + 257]++;
            z->dt.freq[d_code(s - 1 - prev_match - 1)]++;
            bool bflush = ++z->nsym == SYM_MAX;
            lookahead -= prev_len - 1;
            prev_len -= 2;
            do {
                if (++s <= max_insert) {
                    uint32_t dummy;
                    insert(z, src, s, &dummy);
                }
            } while (--prev_len != 0);
            match_available = false;
            match_len = MIN_MATCH - 1;
            s++;
            if (bflush) {
                flush_block(z, block >= win ? src + (block - b) : NULL, s - block, false);
                block = s;
            }
        } else if (match_available) {
            uint8_t lit = src[s - 1 - b];
            z->sym_dist[z->nsym] = 0;
            z->sym_lc[z->nsym] = lit;
            z->lt.freq[lit]++;
            if (++z->nsym == SYM_MAX) {
                flush_block(z, block >= win ? src + (block - b) : NULL, s - block, false);
                block = s;
            }
            s++;
            lookahead--;
        } else {
            match_available = true;
            s++;
            lookahead--;
        }
        if (z->full)
            break; /* it will not fit: no need to finish */
    }
    if (!z->full) {
        if (match_available) {
            uint8_t lit = src[s - 1 - b];
            z->sym_dist[z->nsym] = 0;
            z->sym_lc[z->nsym] = lit;
            z->lt.freq[lit]++;
            z->nsym++;
        }
        flush_block(z, block >= win ? src + (block - b) : NULL, s - block, true);
    }
    /* The next call's positions start past this one's window. */
    z->base = end + 2 * WSIZE;
    /* As deflate() into dcap bytes: it must end with room to spare. */
    if (z->full || z->pos >= dcap)
        return -ENOSPC;
    return (int64_t)z->pos;
}
