/*
 * Batched packet I/O. One call moves up to `max` packets; the JS side is
 * called once per batch, never per packet.
 *
 * Receive (fd = TUN/TAP):  read() until EAGAIN or the batch is full.
 *   TUN has no recvmmsg; with IFF_VNET_HDR + TSO each read carries a 64 KB
 *   super-packet, which is what makes one syscall per read affordable.
 * Receive (socket):        one recvmmsg(MSG_DONTWAIT) for the whole batch;
 *   source address, port and UDP_GRO segment size reported per packet.
 * Send (fd):               write() per packet until EAGAIN.
 * Send (socket):           sendmmsg() over runs of valid messages; each
 *   destination is an index into a packed (addr, port) table, so JS never
 *   builds an address string per packet; optional UDP_SEGMENT per message.
 *
 * Results: receive fills lengths[i]; 0 marks a slot whose packet was dropped
 * (and counted). Send returns how many packets were consumed, sent or dropped;
 * on EAGAIN it stops early and the caller keeps packets [returned, count).
 * Every packet that is not delivered increments exactly one drop counter.
 */
#define _GNU_SOURCE
#include "weft.h"

#include <errno.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* UDP_GRO reports an int, UDP_SEGMENT takes a uint16: one slot fits both. */
#define CTL_SPACE CMSG_SPACE(sizeof(int))
#define EINTR_RETRIES 8

struct weft_mmsg {
  uint32_t max;
  struct mmsghdr *msgs;
  struct iovec *iov;
  struct sockaddr_in *addr;
  unsigned char *ctl;
};

weft_mmsg_t *weft_mmsg_new(uint32_t max) {
  weft_mmsg_t *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->max = max;
  m->msgs = calloc(max, sizeof *m->msgs);
  m->iov = calloc(max, sizeof *m->iov);
  m->addr = calloc(max, sizeof *m->addr);
  m->ctl = calloc(max, CTL_SPACE);
  if (!m->msgs || !m->iov || !m->addr || !m->ctl) {
    weft_mmsg_free(m);
    return NULL;
  }
  return m;
}

void weft_mmsg_free(weft_mmsg_t *m) {
  if (!m) return;
  free(m->msgs);
  free(m->iov);
  free(m->addr);
  free(m->ctl);
  free(m);
}

static inline int slot_ok(size_t slab_len, uint32_t off, uint32_t len) {
  return off <= slab_len && len <= slab_len - off;
}

static void count_tx_drop(double *ctr, int err) {
  switch (err) {
    case EMSGSIZE:
      ctr[WEFT_TX_DROP_TOO_BIG]++;
      break;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ECONNREFUSED:
    case EADDRNOTAVAIL:
    case EHOSTDOWN:
    case ENETDOWN:
      ctr[WEFT_TX_DROP_UNREACHABLE]++;
      break;
    default:
      ctr[WEFT_TX_DROP_ERROR]++;
  }
  ctr[WEFT_LAST_ERRNO] = err;
}

/* Errors that say the handle itself is unusable, not one packet. */
static inline int fatal_errno(int err) {
  return err == EBADF || err == EFAULT || err == ENOTSOCK || err == EBADFD;
}

int weft_fd_read_batch(int fd, const weft_rx_t *rx, double *ctr) {
  uint32_t n = 0;
  int retries = EINTR_RETRIES;

  while (n < rx->max) {
    uint32_t off = rx->offsets[n];
    ssize_t r;
    if (!slot_ok(rx->slab_len, off, rx->capacity)) return n > 0 ? (int)n : -EINVAL;
    r = read(fd, rx->slab + off, rx->capacity);
    ctr[WEFT_RX_SYSCALLS]++;
    if (r < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        ctr[WEFT_RX_EAGAIN]++;
        break;
      }
      if (err == EINTR && retries-- > 0) continue;
      ctr[WEFT_RX_DROP_ERROR]++;
      ctr[WEFT_LAST_ERRNO] = err;
      if (fatal_errno(err)) return n > 0 ? (int)n : -err;
      break;
    }
    /* A read that fills the slot may have been cut short: drop it and reuse
     * the slot. Slots must be larger than the largest packet (MTU + 1). */
    if ((uint32_t)r >= rx->capacity) {
      ctr[WEFT_RX_DROP_TRUNCATED]++;
      continue;
    }
    rx->lengths[n] = (uint32_t)r;
    ctr[WEFT_RX_PACKETS]++;
    ctr[WEFT_RX_BYTES] += (double)r;
    n++;
  }
  return (int)n;
}

int weft_fd_write_batch(int fd, const weft_tx_t *tx, uint32_t count, double *ctr) {
  uint32_t i = 0;
  int retries = EINTR_RETRIES;

  while (i < count) {
    uint32_t off = tx->offsets[i], len = tx->lengths[i];
    ssize_t r;
    if (!slot_ok(tx->slab_len, off, len)) {
      ctr[WEFT_TX_DROP_BAD_SLOT]++;
      i++;
      continue;
    }
    r = write(fd, tx->slab + off, len);
    ctr[WEFT_TX_SYSCALLS]++;
    if (r < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        ctr[WEFT_TX_EAGAIN]++;
        break;
      }
      if (err == EINTR && retries-- > 0) continue;
      if (fatal_errno(err)) return i > 0 ? (int)i : -err;
      count_tx_drop(ctr, err);
      i++;
      continue;
    }
    ctr[WEFT_TX_PACKETS]++;
    ctr[WEFT_TX_BYTES] += (double)len;
    i++;
  }
  return (int)i;
}

int weft_sock_recv_batch(int fd, int kind, weft_mmsg_t *m, const weft_rx_t *rx, double *ctr) {
  uint32_t max = rx->max < m->max ? rx->max : m->max;
  int want_seg = rx->segs != NULL && kind == WEFT_KIND_UDP4;
  int r, i, retries = EINTR_RETRIES;

  for (uint32_t k = 0; k < max; k++) {
    struct msghdr *h = &m->msgs[k].msg_hdr;
    uint32_t off = rx->offsets[k];
    if (!slot_ok(rx->slab_len, off, rx->capacity)) {
      if (k == 0) return -EINVAL;
      max = k;
      break;
    }
    m->iov[k].iov_base = rx->slab + off;
    m->iov[k].iov_len = rx->capacity;
    h->msg_iov = &m->iov[k];
    h->msg_iovlen = 1;
    h->msg_name = &m->addr[k];
    h->msg_namelen = sizeof m->addr[k];
    h->msg_control = want_seg ? m->ctl + (size_t)k * CTL_SPACE : NULL;
    h->msg_controllen = want_seg ? CTL_SPACE : 0;
    h->msg_flags = 0;
  }

  do {
    r = recvmmsg(fd, m->msgs, max, MSG_DONTWAIT, NULL);
    ctr[WEFT_RX_SYSCALLS]++;
  } while (r < 0 && errno == EINTR && retries-- > 0);

  if (r < 0) {
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      ctr[WEFT_RX_EAGAIN]++;
      return 0;
    }
    ctr[WEFT_RX_DROP_ERROR]++;
    ctr[WEFT_LAST_ERRNO] = err;
    /* Per-packet errors (e.g. ECONNREFUSED queued by ICMP) are not fatal. */
    return fatal_errno(err) ? -err : 0;
  }

  for (i = 0; i < r; i++) {
    struct msghdr *h = &m->msgs[i].msg_hdr;
    uint32_t len = m->msgs[i].msg_len;
    if (h->msg_flags & MSG_TRUNC) {
      ctr[WEFT_RX_DROP_TRUNCATED]++;
      rx->lengths[i] = 0;
      continue;
    }
    rx->lengths[i] = len;
    if (rx->addrs) rx->addrs[i] = ntohl(m->addr[i].sin_addr.s_addr);
    if (rx->ports) rx->ports[i] = ntohs(m->addr[i].sin_port);
    if (want_seg) {
      uint32_t seg = 0;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
          int v;
          memcpy(&v, CMSG_DATA(c), sizeof v);
          seg = (uint32_t)v;
        }
      }
      rx->segs[i] = seg;
      if (seg > 0 && len > seg) ctr[WEFT_RX_GRO_SEGMENTS] += (double)((len + seg - 1) / seg);
    }
    ctr[WEFT_RX_PACKETS]++;
    ctr[WEFT_RX_BYTES] += (double)len;
  }
  return r;
}

/* Fill msgs with the longest run of valid messages starting at `first`.
 * Invalid ones at the head of the run are dropped (counted) and skipped. */
static uint32_t build_run(int kind, weft_mmsg_t *m, const weft_tx_t *tx, uint32_t *first, uint32_t count,
                          double *ctr) {
  uint32_t k = 0;
  while (*first + k < count && k < m->max) {
    uint32_t i = *first + k;
    uint32_t off = tx->offsets[i], len = tx->lengths[i], d = tx->dests[i];
    struct msghdr *h = &m->msgs[k].msg_hdr;
    int bad_slot = !slot_ok(tx->slab_len, off, len);
    if (bad_slot || d >= tx->table_len) {
      if (k > 0) break; /* send what we have; the bad one heads the next run */
      ctr[bad_slot ? WEFT_TX_DROP_BAD_SLOT : WEFT_TX_DROP_BAD_DEST]++;
      (*first)++;
      continue;
    }
    m->iov[k].iov_base = tx->slab + off;
    m->iov[k].iov_len = len;
    memset(&m->addr[k], 0, sizeof m->addr[k]);
    m->addr[k].sin_family = AF_INET;
    m->addr[k].sin_addr.s_addr = htonl(tx->table[2 * d]);
    m->addr[k].sin_port = kind == WEFT_KIND_UDP4 ? htons((uint16_t)tx->table[2 * d + 1]) : 0;
    h->msg_name = &m->addr[k];
    h->msg_namelen = sizeof m->addr[k];
    h->msg_iov = &m->iov[k];
    h->msg_iovlen = 1;
    h->msg_control = NULL;
    h->msg_controllen = 0;
    h->msg_flags = 0;
    if (tx->segs && kind == WEFT_KIND_UDP4 && tx->segs[i] > 0 && tx->segs[i] < len) {
      struct cmsghdr *c;
      uint16_t seg = (uint16_t)tx->segs[i];
      h->msg_control = m->ctl + (size_t)k * CTL_SPACE;
      h->msg_controllen = CMSG_SPACE(sizeof seg);
      c = CMSG_FIRSTHDR(h);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof seg);
      memcpy(CMSG_DATA(c), &seg, sizeof seg);
    }
    k++;
  }
  return k;
}

int weft_sock_send_batch(int fd, int kind, weft_mmsg_t *m, const weft_tx_t *tx, uint32_t count, double *ctr) {
  uint32_t i = 0;
  int retries = EINTR_RETRIES;

  while (i < count) {
    uint32_t k = build_run(kind, m, tx, &i, count, ctr);
    int r;
    if (k == 0) break; /* everything left was invalid (and counted) */
    r = sendmmsg(fd, m->msgs, k, MSG_DONTWAIT);
    ctr[WEFT_TX_SYSCALLS]++;
    if (r < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        ctr[WEFT_TX_EAGAIN]++;
        break;
      }
      if (err == EINTR && retries-- > 0) continue;
      if (fatal_errno(err)) return i > 0 ? (int)i : -err;
      count_tx_drop(ctr, err); /* the kernel refused message i: skip it */
      i++;
      continue;
    }
    for (int j = 0; j < r; j++) {
      uint32_t len = (uint32_t)m->iov[j].iov_len;
      ctr[WEFT_TX_PACKETS]++;
      ctr[WEFT_TX_BYTES] += (double)len;
      if (m->msgs[j].msg_hdr.msg_controllen) {
        uint32_t seg = tx->segs[i + (uint32_t)j];
        ctr[WEFT_TX_GSO_SEGMENTS] += (double)((len + seg - 1) / seg);
      }
    }
    i += (uint32_t)r;
  }
  return (int)i;
}
