/* SPDX-License-Identifier: MIT */
/*
 * NBD wire protocol: constants and on-the-wire structures, written from the
 * NBD project's protocol description (doc/proto.md).  Every multi-byte
 * field is big-endian on the wire; the structs below are packed and hold
 * the raw (network order) values, converted with be16toh/be32toh/be64toh.
 *
 * Only the fixed newstyle handshake is implemented by vdk-nbd; the
 * oldstyle constants are absent on purpose.
 */
#ifndef VDK_NBD_PROTOCOL_H
#define VDK_NBD_PROTOCOL_H

#include <stdint.h>

/* ---- handshake ---- */
#define NBD_MAGIC             UINT64_C(0x4e42444d41474943) /* "NBDMAGIC" */
#define NBD_IHAVEOPT          UINT64_C(0x49484156454f5054) /* "IHAVEOPT" */
#define NBD_REP_MAGIC         UINT64_C(0x0003e889045565a9)

/* Handshake flags (server, 16 bits). */
#define NBD_FLAG_FIXED_NEWSTYLE   (1u << 0)
#define NBD_FLAG_NO_ZEROES        (1u << 1)
/* Client flags (32 bits). */
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES      (1u << 1)

/* Transmission flags (16 bits). */
#define NBD_FLAG_HAS_FLAGS         (1u << 0)
#define NBD_FLAG_READ_ONLY         (1u << 1)
#define NBD_FLAG_SEND_FLUSH        (1u << 2)
#define NBD_FLAG_SEND_FUA          (1u << 3)
#define NBD_FLAG_ROTATIONAL        (1u << 4)
#define NBD_FLAG_SEND_TRIM         (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF           (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN    (1u << 8)
#define NBD_FLAG_SEND_RESIZE       (1u << 9)
#define NBD_FLAG_SEND_CACHE        (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO    (1u << 11)

/* Options. */
#define NBD_OPT_EXPORT_NAME       1
#define NBD_OPT_ABORT             2
#define NBD_OPT_LIST              3
#define NBD_OPT_PEEK_EXPORT       4 /* withdrawn */
#define NBD_OPT_STARTTLS          5
#define NBD_OPT_INFO              6
#define NBD_OPT_GO                7
#define NBD_OPT_STRUCTURED_REPLY  8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT  10
#define NBD_OPT_EXTENDED_HEADERS  11

/* Option replies. */
#define NBD_REP_ACK               1
#define NBD_REP_SERVER            2
#define NBD_REP_INFO              3
#define NBD_REP_META_CONTEXT      4
#define NBD_REP_FLAG_ERROR        (1u << 31)
#define NBD_REP_ERR_UNSUP         (NBD_REP_FLAG_ERROR | 1)
#define NBD_REP_ERR_POLICY        (NBD_REP_FLAG_ERROR | 2)
#define NBD_REP_ERR_INVALID       (NBD_REP_FLAG_ERROR | 3)
#define NBD_REP_ERR_PLATFORM      (NBD_REP_FLAG_ERROR | 4)
#define NBD_REP_ERR_TLS_REQD      (NBD_REP_FLAG_ERROR | 5)
#define NBD_REP_ERR_UNKNOWN       (NBD_REP_FLAG_ERROR | 6)
#define NBD_REP_ERR_SHUTDOWN      (NBD_REP_FLAG_ERROR | 7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_FLAG_ERROR | 8)
#define NBD_REP_ERR_TOO_BIG       (NBD_REP_FLAG_ERROR | 9)

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT           0
#define NBD_INFO_NAME             1
#define NBD_INFO_DESCRIPTION      2
#define NBD_INFO_BLOCK_SIZE       3

/* ---- transmission ---- */
#define NBD_REQUEST_MAGIC           UINT32_C(0x25609513)
#define NBD_SIMPLE_REPLY_MAGIC      UINT32_C(0x67446698)
#define NBD_STRUCTURED_REPLY_MAGIC  UINT32_C(0x668e33ef)

/* Command flags (16 bits). */
#define NBD_CMD_FLAG_FUA          (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE      (1u << 1)
#define NBD_CMD_FLAG_DF           (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE      (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO    (1u << 4)

/* Commands (16 bits). */
#define NBD_CMD_READ              0
#define NBD_CMD_WRITE             1
#define NBD_CMD_DISC              2
#define NBD_CMD_FLUSH             3
#define NBD_CMD_TRIM              4
#define NBD_CMD_CACHE             5
#define NBD_CMD_WRITE_ZEROES      6
#define NBD_CMD_BLOCK_STATUS      7

/* Structured reply flags and chunk types. */
#define NBD_REPLY_FLAG_DONE       (1u << 0)
#define NBD_REPLY_TYPE_NONE         0
#define NBD_REPLY_TYPE_OFFSET_DATA  1
#define NBD_REPLY_TYPE_OFFSET_HOLE  2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_ERROR        ((1u << 15) | 1)
#define NBD_REPLY_TYPE_ERROR_OFFSET ((1u << 15) | 2)

/* Error values on the wire (not the host's errno numbers). */
#define NBD_SUCCESS    0
#define NBD_EPERM      1
#define NBD_EIO        5
#define NBD_ENOMEM     12
#define NBD_EINVAL     22
#define NBD_ENOSPC     28
#define NBD_EOVERFLOW  75
#define NBD_ENOTSUP    95
#define NBD_ESHUTDOWN  108

/* base:allocation extent flags. */
#define NBD_STATE_HOLE (1u << 0)
#define NBD_STATE_ZERO (1u << 1)
/* qemu:dirty-bitmap:NAME contexts */
#define NBD_STATE_DIRTY (1u << 0)

/* Strings (export names, descriptions, messages) are at most this long. */
#define NBD_MAX_STRING 4096

/* ---- wire structures (network byte order) ---- */

struct nbd_new_handshake {          /* S: first message */
    uint64_t nbdmagic;
    uint64_t version;               /* NBD_IHAVEOPT */
    uint16_t gflags;
} __attribute__((packed));

struct nbd_option_header {          /* C: each option */
    uint64_t magic;                 /* NBD_IHAVEOPT */
    uint32_t option;
    uint32_t length;
} __attribute__((packed));

struct nbd_option_reply {           /* S: each option reply */
    uint64_t magic;                 /* NBD_REP_MAGIC */
    uint32_t option;
    uint32_t reply;
    uint32_t length;
} __attribute__((packed));

struct nbd_export_name_reply {      /* S: after NBD_OPT_EXPORT_NAME */
    uint64_t size;
    uint16_t eflags;
    uint8_t zeroes[124];            /* omitted with NO_ZEROES */
} __attribute__((packed));

struct nbd_info_export {            /* NBD_INFO_EXPORT payload */
    uint16_t info;
    uint64_t size;
    uint16_t eflags;
} __attribute__((packed));

struct nbd_info_block_size {        /* NBD_INFO_BLOCK_SIZE payload */
    uint16_t info;
    uint32_t minimum;
    uint32_t preferred;
    uint32_t maximum;
} __attribute__((packed));

struct nbd_request {                /* C: 28 bytes */
    uint32_t magic;                 /* NBD_REQUEST_MAGIC */
    uint16_t flags;
    uint16_t type;
    uint64_t handle;                /* opaque cookie, echoed */
    uint64_t offset;
    uint32_t length;
} __attribute__((packed));

struct nbd_simple_reply {           /* S: 16 bytes */
    uint32_t magic;                 /* NBD_SIMPLE_REPLY_MAGIC */
    uint32_t error;
    uint64_t handle;
} __attribute__((packed));

struct nbd_structured_reply {       /* S: 20 bytes, then `length` bytes */
    uint32_t magic;                 /* NBD_STRUCTURED_REPLY_MAGIC */
    uint16_t flags;
    uint16_t type;
    uint64_t handle;
    uint32_t length;
} __attribute__((packed));

struct nbd_chunk_offset_hole {
    uint64_t offset;
    uint32_t length;
} __attribute__((packed));

struct nbd_chunk_error {            /* then message bytes */
    uint32_t error;
    uint16_t msglen;
} __attribute__((packed));

struct nbd_block_descriptor {
    uint32_t length;
    uint32_t status_flags;
} __attribute__((packed));

_Static_assert(sizeof(struct nbd_request) == 28, "request size");
_Static_assert(sizeof(struct nbd_simple_reply) == 16, "simple reply size");
_Static_assert(sizeof(struct nbd_structured_reply) == 20, "structured reply size");
_Static_assert(sizeof(struct nbd_option_reply) == 20, "option reply size");
_Static_assert(sizeof(struct nbd_export_name_reply) == 134, "export reply size");

#endif /* VDK_NBD_PROTOCOL_H */
