/*
 * milter_codec.h - the Sendmail milter protocol, version 6 (as Debian's
 * libmilter speaks it): packet framing, the commands an MTA sends and
 * the replies a milter answers, without any I/O.
 *
 * Used by policyd/milter.c (the milter client), elemtactl check-config
 * (its reachability probe) and tests/fuzz/fuzz_milter.c.  Every packet
 * is a 4-byte big-endian length (of what follows: the command byte and
 * its data), the command byte, the data.  This module owns the
 * protocol's whole vocabulary (SMFIC_*, SMFIR_*, SMFIF_*, SMFIP_*) and
 * its bounds; a reply from the network is decoded defensively: any
 * length, truncation or missing NUL is an error, never a read past the
 * bytes given.
 */
#ifndef ELEMTA_MILTER_CODEC_H
#define ELEMTA_MILTER_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define MILTER_VERSION 6u
#define MILTER_CHUNK_MAX 65535u        /* body bytes in one SMFIC_BODY  */
/* The largest packet accepted from a milter (its data): a header edit,
 * a body chunk of REPLBODY, a reply text; libmilter's own ceiling for
 * what it sends is 64 KB + a little. */
#define MILTER_PACKET_MAX (256u * 1024u)
#define MILTER_HEADER_NAME_MAX 256u
#define MILTER_HEADER_VALUE_MAX 16384u
#define MILTER_TEXT_MAX 1024u         /* a reply text, a quarantine reason */
#define MILTER_ADDR_MAX 1024u         /* CHGFROM / ADDRCPT / DELRCPT      */

/* Commands (MTA -> milter). */
#define SMFIC_ABORT 'A'
#define SMFIC_BODY 'B'
#define SMFIC_CONNECT 'C'
#define SMFIC_MACRO 'D'
#define SMFIC_BODYEOB 'E'
#define SMFIC_HELO 'H'
#define SMFIC_QUIT_NC 'K'
#define SMFIC_HEADER 'L'
#define SMFIC_MAIL 'M'
#define SMFIC_EOH 'N'
#define SMFIC_OPTNEG 'O'
#define SMFIC_QUIT 'Q'
#define SMFIC_RCPT 'R'
#define SMFIC_DATA 'T'
#define SMFIC_UNKNOWN 'U'

/* Replies (milter -> MTA). */
#define SMFIR_ADDRCPT '+'
#define SMFIR_DELRCPT '-'
#define SMFIR_ADDRCPT_PAR '2'
#define SMFIR_SHUTDOWN '4'
#define SMFIR_ACCEPT 'a'
#define SMFIR_REPLBODY 'b'
#define SMFIR_CONTINUE 'c'
#define SMFIR_DISCARD 'd'
#define SMFIR_CHGFROM 'e'
#define SMFIR_CONN_FAIL 'f'
#define SMFIR_ADDHEADER 'h'
#define SMFIR_INSHEADER 'i'
#define SMFIR_SETSYMLIST 'l'
#define SMFIR_CHGHEADER 'm'
#define SMFIR_PROGRESS 'p'
#define SMFIR_QUARANTINE 'q'
#define SMFIR_REJECT 'r'
#define SMFIR_SKIP 's'
#define SMFIR_TEMPFAIL 't'
#define SMFIR_REPLYCODE 'y'
#define SMFIR_OPTNEG 'O'

/* Actions a milter may take (SMFIC_OPTNEG). */
#define SMFIF_ADDHDRS 0x01u
#define SMFIF_CHGBODY 0x02u
#define SMFIF_ADDRCPT 0x04u
#define SMFIF_DELRCPT 0x08u
#define SMFIF_CHGHDRS 0x10u
#define SMFIF_QUARANTINE 0x20u
#define SMFIF_CHGFROM 0x40u
#define SMFIF_ADDRCPT_PAR 0x80u
#define SMFIF_SETSYMLIST 0x100u

/* Protocol steps a milter may ask to skip or not to answer. */
#define SMFIP_NOCONNECT 0x1u
#define SMFIP_NOHELO 0x2u
#define SMFIP_NOMAIL 0x4u
#define SMFIP_NORCPT 0x8u
#define SMFIP_NOBODY 0x10u
#define SMFIP_NOHDRS 0x20u
#define SMFIP_NOEOH 0x40u
#define SMFIP_NR_HDR 0x80u
#define SMFIP_NOUNKNOWN 0x100u
#define SMFIP_NODATA 0x200u
#define SMFIP_SKIP 0x400u
#define SMFIP_RCPT_REJ 0x800u
#define SMFIP_NR_CONN 0x1000u
#define SMFIP_NR_HELO 0x2000u
#define SMFIP_NR_MAIL 0x4000u
#define SMFIP_NR_RCPT 0x8000u
#define SMFIP_NR_DATA 0x10000u
#define SMFIP_NR_UNKN 0x20000u
#define SMFIP_NR_EOH 0x40000u
#define SMFIP_NR_BODY 0x80000u
#define SMFIP_HDR_LEADSPC 0x100000u
#define SMFIP_MDS_256K 0x10000000u
#define SMFIP_MDS_1M 0x20000000u

/* What Elemta offers: every action (REPLBODY included) and every
 * protocol flag but RCPT_REJ (a rejected recipient never reaches the
 * replay) and the larger data sizes (chunks stay within 64 KB). */
#define MILTER_ACTIONS_OFFERED (SMFIF_ADDHDRS | SMFIF_CHGBODY | \
	SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_CHGHDRS | SMFIF_QUARANTINE | \
	SMFIF_CHGFROM | SMFIF_ADDRCPT_PAR | SMFIF_SETSYMLIST)
#define MILTER_PROTOCOL_OFFERED (SMFIP_NOCONNECT | SMFIP_NOHELO | \
	SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS | \
	SMFIP_NOEOH | SMFIP_NR_HDR | SMFIP_NOUNKNOWN | SMFIP_NODATA | \
	SMFIP_SKIP | SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | \
	SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH | \
	SMFIP_NR_BODY | SMFIP_HDR_LEADSPC)

/* One decoded reply packet.  Pointers point into the packet given to
 * milter_reply_decode (valid while it is); strings are NUL-terminated
 * there and within their bounds. */
struct milter_reply {
	char cmd;                  /* SMFIR_*                               */
	/* OPTNEG */
	uint32_t version, actions, protocol;
	/* INSHEADER, CHGHEADER: the index (1-based occurrence for CHG) */
	uint32_t index;
	const char *name;          /* header name (ADD/INS/CHGHEADER)       */
	const char *value;         /* header value; "" deletes (CHGHEADER)  */
	const char *addr;          /* CHGFROM, ADDRCPT(_PAR), DELRCPT       */
	const char *args;          /* CHGFROM, ADDRCPT_PAR ESMTP args, or NULL */
	const char *text;          /* REPLYCODE (whole, may be multi-line),
	                            * QUARANTINE reason                     */
	int code;                  /* REPLYCODE: 400..599                   */
	const uint8_t *body;       /* REPLBODY chunk                        */
	size_t body_len;
};

/* milter_packet_begin - append the 5-byte header of a packet whose data
 * is len bytes.  -1 when len is over MILTER_PACKET_MAX or sb is full. */
int milter_packet_begin(struct strbuf *sb, char cmd, size_t len);

/* Encoders of the commands: each appends one whole packet to sb and
 * returns 0, or -1 (sb full, a string too long, a NUL inside). */
int milter_encode_optneg(struct strbuf *sb, uint32_t actions,
    uint32_t protocol);
int milter_encode_simple(struct strbuf *sb, char cmd);  /* no data */
/* SMFIC_MACRO for command cmd: names[i]=values[i], n pairs. */
int milter_encode_macros(struct strbuf *sb, char cmd,
    const char *const *names, const char *const *values, size_t n);
/* SMFIC_CONNECT: family '4', '6', 'U' (unix) or 'L' (unknown). */
int milter_encode_connect(struct strbuf *sb, const char *hostname,
    char family, uint16_t port, const char *address);
/* HELO, MAIL, RCPT: cmd and its NUL-terminated strings. */
int milter_encode_strings(struct strbuf *sb, char cmd,
    const char *const *strs, size_t n);
int milter_encode_header(struct strbuf *sb, const char *name,
    size_t name_len, const char *value, size_t value_len);
int milter_encode_body(struct strbuf *sb, const void *data, size_t len);

/* milter_packet_split - whether buf[0..len) starts with a whole packet:
 * 1 with *cmd, *data (into buf) and *dlen set and *used the packet's
 * size; 0 when more bytes are needed; -1 when the length is 0 or over
 * MILTER_PACKET_MAX (a broken or hostile milter). */
int milter_packet_split(const uint8_t *buf, size_t len, char *cmd,
    const uint8_t **data, size_t *dlen, size_t *used);

/* milter_reply_decode - one reply packet's data into out.  0, or -1 with
 * why (static text) for an unknown command, a bad length, a missing NUL,
 * a bound exceeded or a malformed REPLYCODE.  The packet's bytes must
 * stay put while out is used. */
int milter_reply_decode(char cmd, const uint8_t *data, size_t len,
    struct milter_reply *out, const char **why);

/* milter_reply_name - "continue", "accept", "addheader", ... for logs
 * and metric labels; "unknown" outside the protocol. */
const char *milter_reply_name(char cmd);

/* milter_replycode_split - a REPLYCODE text ("550-5.7.1 a\r\n550 5.7.1
 * b") into its code, enhanced code ("" when none) and the lines' texts
 * joined by "; " into text (truncated to fit).  -1 when malformed (lines
 * with different codes, a code outside 4xx/5xx). */
int milter_replycode_split(const char *reply, int *code, char enhanced[16],
    char *text, size_t textlen);

#endif
