/*
 * Batched I/O on an underlay socket (UDP over IPv4 or IPv6, or raw IPv4):
 * one syscall per batch, the JS side called once per batch, never per packet.
 *
 * Receive: one recvmmsg(MSG_DONTWAIT) for the whole batch; source address
 *   (IPv4 in addrs, IPv6 in addrs6), port and UDP_GRO segment size reported
 *   per packet, and with `bad` each (segment's) inner TCP/UDP checksum
 *   checked (check_inner), over an inner IPv4 or IPv6 header.
 * Send: sendmmsg() over runs of messages that sock_run.c builds from the
 *   batch (destinations from the address table, super-packets cut into
 *   segments, UDP_SEGMENT runs), then:
 *   1. the messages the kernel took are accounted (account_sent)
 *   2. a run cut short by EAGAIN ends the batch; the caller keeps the rest
 *   3. EIO on a UDP_SEGMENT send (no checksum offload below us) turns GSO
 *      off for this socket and the run is built and sent again without it
 *   4. any other error drops the first message (counted) and goes on after it
 *
 * Results: receive fills lengths[i]; 0 marks a slot whose packet was dropped
 * (and counted). Send returns how many entries were consumed, sent or
 * dropped; on EAGAIN it stops early and the caller keeps entries
 * [returned, count). A super-packet sent in part is resumed where it stopped
 * when the next send starts with it. Every datagram that is not delivered
 * increments exactly one drop counter.
 */
#define _GNU_SOURCE
#include "io.h"

#include <netinet/udp.h>
#include <stdlib.h>

/* A message's inner checks fill two 32-bit words of `bad`. */
_Static_assert(WEFT_RX_CHECK_SEGMENTS == 64, "bad[2i], bad[2i + 1] hold 64 bits");
/* report_sender reads either family's port and family through the IPv4 view */
_Static_assert(offsetof(struct sockaddr_in, sin_port) == offsetof(struct sockaddr_in6, sin6_port), "port");
_Static_assert(offsetof(struct sockaddr_in, sin_family) == offsetof(struct sockaddr_in6, sin6_family), "family");

weft_mmsg_t *weft_mmsg_new(uint32_t max) {
  weft_mmsg_t *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->max = max;
  m->msgs = calloc(max, sizeof *m->msgs);
  m->iov = calloc(IOV_CAP > max ? IOV_CAP : max, sizeof *m->iov);
  m->addr = calloc(max, sizeof *m->addr);
  m->ctl = calloc(max, CTL_SPACE);
  m->hdrs = malloc((size_t)SEG_CAP * WEFT_SEG_HDR_MAX);
  m->meta = calloc(max, sizeof *m->meta);
  if (!m->msgs || !m->iov || !m->addr || !m->ctl || !m->hdrs || !m->meta) {
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
  free(m->hdrs);
  free(m->meta);
  free(m);
}

/* ------------------------------------------------------------ receive --- */

/* Point message k at slot k, for k < max; returns how many are usable: the
 * slots before the first one outside the slab. */
static uint32_t prepare_recv(weft_mmsg_t *m, const weft_rx_t *rx, uint32_t max, int want_seg) {
  for (uint32_t k = 0; k < max; k++) {
    struct msghdr *h = &m->msgs[k].msg_hdr;
    uint32_t off = rx->offsets[k];
    if (!slot_ok(rx->slab_len, off, rx->capacity)) return k;
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
  return max;
}

/* The UDP_GRO segment size of a received message, 0 if not coalesced. */
static uint32_t gro_size(struct msghdr *h) {
  uint32_t seg = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int v;
      memcpy(&v, CMSG_DATA(c), sizeof v);
      seg = (uint32_t)v;
    }
  }
  return seg;
}

/* Check the inner checksums of message i, segment by segment. */
static void check_inner(const weft_rx_t *rx, int kind, int i, uint32_t len, uint32_t seg, double *ctr) {
  uint8_t *p = rx->slab + rx->offsets[i];
  uint32_t lo = 0, hi = 0, j = 0;
  if (seg == 0) seg = len;
  for (uint32_t at = 0; at < len && j < WEFT_RX_CHECK_SEGMENTS; at += seg, j++) {
    uint32_t n = len - at < seg ? len - at : seg;
    uint32_t inner = kind == WEFT_KIND_RAW4 ? (n > 0 ? (uint32_t)(p[at] & 15) * 4 : 0) : rx->inner;
    int r;
    if (inner >= n) continue;
    if (rx->rco && n >= 8 && (p[at + 1] & WEFT_VXLAN_RCO_BYTE1)) {
      /* JS checks that the RCO fields match the packet before trusting it */
      ctr[WEFT_RX_CSUM_REMOTE]++;
      continue;
    }
    r = weft_inner_check(p + at + inner, n - inner);
    if (r > 0) ctr[WEFT_RX_CSUM_FINISHED]++;
    if (r < 0) {
      if (j < 32)
        lo |= 1u << j;
      else
        hi |= 1u << (j - 32);
    }
  }
  rx->bad[2 * i] = lo;
  rx->bad[2 * i + 1] = hi;
}

/* The sender of message i: IPv4 in addrs (host order), or IPv6 in addrs6
 * (four host-order words, big-endian in the address) with addrs 0. A
 * dropped slot (a NULL sa) gets 0.0.0.0 or :: (never a real sender). */
static void report_sender(const weft_rx_t *rx, int i, const weft_sockaddr_t *sa) {
  int v6 = sa && sa->v6.sin6_family == AF_INET6;
  if (rx->addrs) rx->addrs[i] = sa && !v6 ? ntohl(sa->v4.sin_addr.s_addr) : 0;
  if (rx->addrs6) {
    uint32_t *w = rx->addrs6 + 4 * (size_t)i;
    for (int k = 0; k < 4; k++) {
      uint32_t be = 0;
      if (v6) memcpy(&be, sa->v6.sin6_addr.s6_addr + 4 * k, 4);
      w[k] = ntohl(be);
    }
  }
  /* sin_port and sin6_port share their place */
  if (sa && rx->ports) rx->ports[i] = ntohs(sa->v4.sin_port);
}

/* Report received message i in the batch's arrays. */
static void report_recv(weft_mmsg_t *m, const weft_rx_t *rx, int kind, int i, int want_seg, double *ctr) {
  struct msghdr *h = &m->msgs[i].msg_hdr;
  uint32_t len = m->msgs[i].msg_len;
  if (h->msg_flags & MSG_TRUNC) {
    /* length 0 and source 0.0.0.0 (::): dropped here, skip it (a real
     * empty datagram keeps its sender and is judged like any other) */
    ctr[WEFT_RX_DROP_TRUNCATED]++;
    rx->lengths[i] = 0;
    report_sender(rx, i, NULL);
    return;
  }
  rx->lengths[i] = len;
  report_sender(rx, i, &m->addr[i]);
  if (want_seg) {
    uint32_t seg = gro_size(h);
    rx->segs[i] = seg;
    if (seg > 0 && len > seg) ctr[WEFT_RX_GRO_SEGMENTS] += (double)((len + seg - 1) / seg);
  }
  if (rx->bad) check_inner(rx, kind, i, len, want_seg ? rx->segs[i] : 0, ctr);
  ctr[WEFT_RX_PACKETS]++;
  ctr[WEFT_RX_BYTES] += (double)len;
}

int weft_sock_recv_batch(int fd, int kind, weft_mmsg_t *m, const weft_rx_t *rx, double *ctr) {
  uint32_t max = rx->max < m->max ? rx->max : m->max;
  int want_seg = rx->segs != NULL && weft_kind_udp(kind);
  int r, retries = EINTR_RETRIES;

  if (max > 0 && (max = prepare_recv(m, rx, max, want_seg)) == 0) return -EINVAL;

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

  for (int i = 0; i < r; i++) report_recv(m, rx, kind, i, want_seg, ctr);
  return r;
}

/* --------------------------------------------------------------- send --- */

static void account_sent(const msg_meta_t *mm, double *ctr, int gso_msg) {
  ctr[WEFT_TX_PACKETS] += mm->nseg;
  ctr[WEFT_TX_BYTES] += (double)mm->bytes;
  if (gso_msg) ctr[WEFT_TX_GSO_SEGMENTS] += mm->nseg;
  if (mm->tag == MSG_SUPER)
    ctr[WEFT_TX_SEGMENTED] += mm->nseg;
  else if (mm->tag == MSG_PLAIN && mm->nseg > 1)
    ctr[WEFT_TX_COALESCED] += mm->nseg;
  if (mm->partial) ctr[WEFT_TX_CSUM_PARTIAL] += mm->nseg; /* only ever a MSG_SUPER */
}

/* Where the next run starts when the kernel took the first `taken` of the
 * run's k messages: at the first message not taken, or past the run. */
static void advance(const weft_mmsg_t *m, uint32_t taken, uint32_t k, uint32_t ni, uint32_t ns, uint32_t *i,
                    uint32_t *s) {
  if (taken < k) {
    *i = m->meta[taken].entry;
    *s = m->meta[taken].seg;
  } else {
    *i = ni;
    *s = ns;
  }
}

int weft_sock_send_batch(int fd, int kind, weft_mmsg_t *m, const weft_tx_t *tx, uint32_t count, double *ctr) {
  uint32_t i = 0, s = 0;
  int retries = EINTR_RETRIES;

  if (m->resume_seg && count > 0 && tx->offsets[0] == m->resume_off && tx->lengths[0] == m->resume_len)
    s = m->resume_seg;
  m->resume_seg = 0;

  while (i < count) {
    uint32_t ni = i, ns = s;
    uint32_t k = weft_build_run(kind, m, tx, &ni, &ns, count, ctr);
    int r;
    if (k == 0) {
      if (ni == i && ns == s) break; /* cannot happen: an empty run always takes one */
      i = ni;
      s = ns;
      continue; /* everything up to ni was invalid (and counted) */
    }
    r = sendmmsg(fd, m->msgs, k, MSG_DONTWAIT);
    ctr[WEFT_TX_SYSCALLS]++;
    if (r >= 0) {
      for (int j = 0; j < r; j++) account_sent(&m->meta[j], ctr, m->msgs[j].msg_hdr.msg_controllen != 0);
      advance(m, (uint32_t)r, k, ni, ns, &i, &s);
      continue;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      ctr[WEFT_TX_EAGAIN]++;
      break;
    }
    if (err == EINTR && retries-- > 0) continue;
    if (fatal_errno(err)) return i > 0 ? (int)i : -err;
    if (err == EIO && m->msgs[0].msg_hdr.msg_controllen && !m->no_gso) {
      /* no checksum offload on the way out: UDP GSO cannot work here */
      m->no_gso = 1;
      ctr[WEFT_TX_GSO_REFUSED]++;
      ctr[WEFT_LAST_ERRNO] = err;
      continue;
    }
    count_tx_drop(ctr, err, m->meta[0].nseg); /* the kernel refused message 0: skip it */
    advance(m, 1, k, ni, ns, &i, &s);
  }
  if (s > 0 && i < count) {
    m->resume_seg = s;
    m->resume_off = tx->offsets[i];
    m->resume_len = tx->lengths[i];
  }
  return (int)i;
}
