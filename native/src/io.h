/*
 * Internal to the batch I/O files (tun_io.c, sock_io.c, sock_run.c): what
 * they share and nothing outside them needs. The contract they implement is
 * in weft.h.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include "weft.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

/* An interrupted syscall is retried this often per batch, then the batch
 * ends as if the queue were empty. */
#define EINTR_RETRIES 8

/* UDP_GRO reports an int, UDP_SEGMENT takes a uint16: one slot fits both. */
#define CTL_SPACE CMSG_SPACE(sizeof(int))
/* Segment headers built per sendmmsg call, and the iovecs they need (a
 * header and a payload slice each, plus one per plain datagram). */
#define SEG_CAP 1024
#define IOV_CAP (2 * SEG_CAP + 1024)

static inline int slot_ok(size_t slab_len, uint32_t off, uint32_t len) {
  return off <= slab_len && len <= slab_len - off;
}

/* Errors that say the handle itself is unusable, not one packet. */
static inline int fatal_errno(int err) {
  return err == EBADF || err == EFAULT || err == ENOTSOCK || err == EBADFD;
}

/* n datagrams were not delivered because of err: one drop counter each. */
static inline void count_tx_drop(double *ctr, int err, uint32_t n) {
  switch (err) {
    case EMSGSIZE: ctr[WEFT_TX_DROP_TOO_BIG] += n; break;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ECONNREFUSED:
    case EADDRNOTAVAIL:
    case EHOSTDOWN:
    case ENETDOWN: ctr[WEFT_TX_DROP_UNREACHABLE] += n; break;
    default: ctr[WEFT_TX_DROP_ERROR] += n;
  }
  ctr[WEFT_LAST_ERRNO] = err;
}

/* What a sendmmsg message carries (tag). */
enum { MSG_PLAIN = 0, MSG_CONTIG = 1, MSG_SUPER = 2 };

/* What each message of a sendmmsg call carries, to account for it and to
 * know where to resume when the kernel takes only some. */
typedef struct {
  uint32_t entry, seg; /* the batch entry (and its first segment) it starts at */
  uint32_t nseg;       /* datagrams in it */
  uint32_t size;       /* UDP_SEGMENT size (the first datagram's) */
  uint32_t bytes;
  uint32_t dest;
  uint32_t flow; /* the inner flow of its datagrams (sock_run.c) */
  uint8_t tag, closed, partial;
} msg_meta_t;

/* A message's peer, of either family (the socket's). */
typedef union {
  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
} weft_sockaddr_t;

/* Per-socket scratch, allocated once (weft_mmsg_new) for `max` messages. */
struct weft_mmsg {
  uint32_t max;
  struct mmsghdr *msgs;
  struct iovec *iov;
  weft_sockaddr_t *addr;
  unsigned char *ctl;
  uint8_t *hdrs; /* SEG_CAP segment headers */
  msg_meta_t *meta;
  /* a super-packet sent in part: resume it at this segment if the next
   * send starts with the same entry */
  uint32_t resume_seg, resume_off, resume_len;
  int no_gso; /* the kernel refused UDP_SEGMENT once: stop asking */
};

/* sock_run.c: fill m->msgs with one sendmmsg run from entry *pi, segment
 * *ps on; returns the message count and leaves (*pi, *ps) where the next
 * run starts. */
uint32_t weft_build_run(int kind, weft_mmsg_t *m, const weft_tx_t *tx, uint32_t *pi, uint32_t *ps, uint32_t count,
                        double *ctr);

#endif
