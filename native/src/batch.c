/*
 * Batched packet I/O. One call moves up to `max` packets; the JS side is
 * called once per batch, never per packet.
 *
 * Receive (fd = TUN/TAP):  read() until EAGAIN or the batch is full.
 *   TUN has no recvmmsg; with IFF_VNET_HDR + TSO each read carries up to a
 *   64 KB super-packet, which is what makes one syscall per read affordable.
 *   Plain packets whose checksum the kernel left partial are finished here.
 * Receive (socket):        one recvmmsg(MSG_DONTWAIT) for the whole batch;
 *   source address, port and UDP_GRO segment size reported per packet.
 * Send (fd):               write() per packet, or writev() of the pieces JS
 *   gathered for one coalesced super-packet, until EAGAIN.
 * Send (socket):           sendmmsg() over runs of messages:
 *   1. each destination is an index into a packed (addr, port) table, so JS
 *      never builds an address per packet
 *   2. a super-packet JS marked (segs = type << 16 | mss) is cut into
 *      segments here: each gets a copy of the encapsulation prefix and its
 *      own IP/TCP headers and checksums (gso.c) in a header slot, and its
 *      payload is an iovec into the slab (scatter-gather, no payload copy);
 *      with SEGS_PARTIAL the TCP/UDP checksum is left as the pseudo-header
 *      sum (VXLAN remote checksum offload) and the payload never read;
 *      up to 64 segments (65507 bytes) go as one UDP_SEGMENT message, which
 *      the next super-packet of the same inner flow to the same peer keeps
 *      filling while every segment so far was full-size
 *   3. plain datagrams of one size and one inner flow to one peer are
 *      gathered likewise into UDP_SEGMENT messages (coalesce); a message
 *      never mixes inner flows, because a receiver steering by inner flow
 *      (SO_REUSEPORT, --workers) sends each message to one socket whole
 *   4. EIO on a UDP_SEGMENT send (no checksum offload below us) turns GSO
 *      off for this socket and the run is sent again without it
 *
 * Results: receive fills lengths[i]; 0 marks a slot whose packet was dropped
 * (and counted). Send returns how many entries were consumed, sent or
 * dropped; on EAGAIN it stops early and the caller keeps entries
 * [returned, count). A super-packet sent in part is resumed where it stopped
 * when the next send starts with it. Every datagram that is not delivered
 * increments exactly one drop counter.
 */
#define _GNU_SOURCE
#include "weft.h"

#include <errno.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>


/* UDP_GRO reports an int, UDP_SEGMENT takes a uint16: one slot fits both. */
#define CTL_SPACE CMSG_SPACE(sizeof(int))
#define EINTR_RETRIES 8
/* Segment headers built per sendmmsg call, and the iovecs they need (a
 * header and a payload slice each, plus one per plain datagram). */
#define SEG_CAP 1024
#define IOV_CAP (2 * SEG_CAP + 1024)
/* Pieces one TUN write may gather (a vnet header and up to 64 segments). */
#define WRITE_PIECES_MAX 256

enum { MSG_PLAIN = 0, MSG_CONTIG = 1, MSG_SUPER = 2 };

/* What each message of a sendmmsg call carries, to account for it and to
 * know where to resume when the kernel takes only some. */
typedef struct {
  uint32_t entry, seg;  /* the batch entry (and its first segment) it starts at */
  uint32_t nseg;        /* datagrams in it */
  uint32_t size;        /* UDP_SEGMENT size (the first datagram's) */
  uint32_t bytes;
  uint32_t dest;
  uint32_t flow;        /* the inner flow of its datagrams (inner_flow) */
  uint8_t tag, closed, partial;
} msg_meta_t;

struct weft_mmsg {
  uint32_t max;
  struct mmsghdr *msgs;
  struct iovec *iov;
  struct sockaddr_in *addr;
  unsigned char *ctl;
  uint8_t *hdrs;        /* SEG_CAP segment headers */
  msg_meta_t *meta;
  /* a super-packet sent in part: resume it at this segment if the next
   * send starts with the same entry */
  uint32_t resume_seg, resume_off, resume_len;
  int no_gso;           /* the kernel refused UDP_SEGMENT once: stop asking */
};

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

static inline int slot_ok(size_t slab_len, uint32_t off, uint32_t len) {
  return off <= slab_len && len <= slab_len - off;
}

static void count_tx_drop(double *ctr, int err, uint32_t n) {
  switch (err) {
    case EMSGSIZE:
      ctr[WEFT_TX_DROP_TOO_BIG] += n;
      break;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ECONNREFUSED:
    case EADDRNOTAVAIL:
    case EHOSTDOWN:
    case ENETDOWN:
      ctr[WEFT_TX_DROP_UNREACHABLE] += n;
      break;
    default:
      ctr[WEFT_TX_DROP_ERROR] += n;
  }
  ctr[WEFT_LAST_ERRNO] = err;
}

/* Errors that say the handle itself is unusable, not one packet. */
static inline int fatal_errno(int err) {
  return err == EBADF || err == EFAULT || err == ENOTSOCK || err == EBADFD;
}

static inline uint16_t get16h(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

/* A TUN read with a vnet header: a plain packet whose checksum the kernel
 * left to us (TUN_F_CSUM) is finished here, so JS only ever sees complete
 * plain packets; super-packets are counted and left for segmentation.
 * Returns 0, or -1 if the header points outside the packet. */
static int vnet_rx(uint8_t *p, uint32_t len, double *ctr) {
  if (len < WEFT_VNET_HDR_LEN) return -1;
  if (p[1] != WEFT_GSO_NONE) {
    ctr[WEFT_RX_SUPER_PACKETS]++;
    return 0;
  }
  if (p[0] & WEFT_VNET_F_NEEDS_CSUM) {
    if (weft_csum_finish(p + WEFT_VNET_HDR_LEN, len - WEFT_VNET_HDR_LEN, get16h(p + 6), get16h(p + 8)) < 0) return -1;
    p[0] = WEFT_VNET_F_DATA_VALID;
    ctr[WEFT_RX_CSUM_FINISHED]++;
  }
  return 0;
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
    if ((uint32_t)r >= rx->capacity || (rx->vnet && vnet_rx(rx->slab + off, (uint32_t)r, ctr) < 0)) {
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

/* Writes to a TUN/TAP fd: one write() per packet, or one writev() per
 * gathered write (a vnet header, a first segment, the payloads coalesced
 * behind it). A TUN write never blocks for long and never queues: EAGAIN
 * ends the batch and the caller counts the rest as lost. */
int weft_fd_write_batch(int fd, const weft_tx_t *tx, uint32_t count, double *ctr) {
  struct iovec iov[WRITE_PIECES_MAX];
  uint32_t j = 0, p = 0;
  int retries = EINTR_RETRIES;

  while (j < count) {
    uint32_t n = tx->segs ? tx->segs[j] : 1, k, total = 0;
    ssize_t r;
    int bad = n == 0 || n > WRITE_PIECES_MAX || p + n > tx->max;
    for (k = 0; !bad && k < n; k++) {
      uint32_t off = tx->offsets[p + k], len = tx->lengths[p + k];
      if (!slot_ok(tx->slab_len, off, len)) {
        bad = 1;
        break;
      }
      iov[k].iov_base = tx->slab + off;
      iov[k].iov_len = len;
      total += len;
    }
    if (bad) {
      ctr[WEFT_TX_DROP_BAD_SLOT]++;
      j++;
      p = p + n > tx->max ? tx->max : p + n;
      continue;
    }
    r = n == 1 ? write(fd, iov[0].iov_base, iov[0].iov_len) : writev(fd, iov, (int)n);
    ctr[WEFT_TX_SYSCALLS]++;
    if (r < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        ctr[WEFT_TX_EAGAIN]++;
        break;
      }
      if (err == EINTR && retries-- > 0) continue;
      if (fatal_errno(err)) return j > 0 ? (int)j : -err;
      count_tx_drop(ctr, err, 1);
      j++;
      p += n;
      continue;
    }
    if (n > 1) ctr[WEFT_TX_WRITEV]++;
    ctr[WEFT_TX_PACKETS]++;
    ctr[WEFT_TX_BYTES] += (double)total;
    j++;
    p += n;
  }
  return (int)j;
}

/* Check the inner checksums of message i, segment by segment. */
static void check_inner(const weft_rx_t *rx, int kind, int i, uint32_t len, uint32_t seg, double *ctr) {
  uint8_t *p = rx->slab + rx->offsets[i];
  uint32_t lo = 0, hi = 0, j = 0;
  if (seg == 0) seg = len;
  for (uint32_t at = 0; at < len && j < 64; at += seg, j++) {
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
      if (j < 32) lo |= 1u << j;
      else hi |= 1u << (j - 32);
    }
  }
  rx->bad[2 * i] = lo;
  rx->bad[2 * i + 1] = hi;
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
      /* length 0 and source 0.0.0.0: dropped here, skip it (a real empty
       * datagram keeps its sender and is judged like any other) */
      ctr[WEFT_RX_DROP_TRUNCATED]++;
      rx->lengths[i] = 0;
      if (rx->addrs) rx->addrs[i] = 0;
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
    if (rx->bad) check_inner(rx, kind, i, len, want_seg ? rx->segs[i] : 0, ctr);
    ctr[WEFT_RX_PACKETS]++;
    ctr[WEFT_RX_BYTES] += (double)len;
  }
  return r;
}

/* Start message k to dest d. */
static msg_meta_t *open_msg(weft_mmsg_t *m, const weft_tx_t *tx, int kind, uint32_t k, uint32_t iv, uint32_t d,
                            uint32_t entry, uint32_t seg, uint32_t size, uint8_t tag) {
  struct msghdr *h = &m->msgs[k].msg_hdr;
  msg_meta_t *mm = &m->meta[k];
  memset(&m->addr[k], 0, sizeof m->addr[k]);
  m->addr[k].sin_family = AF_INET;
  m->addr[k].sin_addr.s_addr = htonl(tx->table[2 * d]);
  m->addr[k].sin_port = kind == WEFT_KIND_UDP4 ? htons((uint16_t)tx->table[2 * d + 1]) : 0;
  h->msg_name = &m->addr[k];
  h->msg_namelen = sizeof m->addr[k];
  h->msg_iov = &m->iov[iv];
  h->msg_iovlen = 0;
  h->msg_control = NULL;
  h->msg_controllen = 0;
  h->msg_flags = 0;
  mm->entry = entry;
  mm->seg = seg;
  mm->nseg = 0;
  mm->size = size;
  mm->bytes = 0;
  mm->dest = d;
  mm->tag = tag;
  mm->closed = 0;
  mm->partial = 0;
  mm->flow = 0;
  return mm;
}

static inline void add_iov(weft_mmsg_t *m, uint32_t k, uint32_t *iv, void *base, size_t len) {
  m->iov[*iv].iov_base = base;
  m->iov[*iv].iov_len = len;
  (*iv)++;
  m->msgs[k].msg_hdr.msg_iovlen++;
}

static void set_segment_size(weft_mmsg_t *m, uint32_t k, uint16_t seg) {
  struct msghdr *h = &m->msgs[k].msg_hdr;
  struct cmsghdr *c;
  h->msg_control = m->ctl + (size_t)k * CTL_SPACE;
  h->msg_controllen = CMSG_SPACE(sizeof seg);
  c = CMSG_FIRSTHDR(h);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof seg);
  memcpy(CMSG_DATA(c), &seg, sizeof seg);
}

/*
 * The inner flow a datagram or super-packet belongs to, as a receiver's
 * steering by inner flow reads it (weft_sock_steer_inner_flow): inner source
 * ^ destination ^ the 4 bytes after the IPv4 header (TCP/UDP ports); 0 when
 * too short to tell. A UDP_SEGMENT message reaches one socket of a
 * receiver's SO_REUSEPORT group as a whole, steered by its first datagram,
 * so datagrams of two flows never share one: a flow split between two
 * receiving workers would arrive out of order.
 */
static uint32_t inner_flow(const uint8_t *ip, uint32_t len) {
  uint32_t ihl, src, dst, ports;
  if (len < 20) return 0;
  ihl = (uint32_t)(ip[0] & 0xf) * 4;
  if (ihl < 20 || len < ihl + 4) return 0;
  memcpy(&src, ip + 12, 4);
  memcpy(&dst, ip + 16, 4);
  memcpy(&ports, ip + ihl, 4);
  return src ^ dst ^ ports;
}

/*
 * Fill msgs from position (*pi entry, *ps segment) until the batch, the
 * messages or the segment scratch run out; returns the message count and
 * leaves (*pi, *ps) where the next call starts. An invalid entry at the head
 * is dropped (counted); one further in ends the run, so that it is counted
 * exactly once, when it heads the next.
 */
static uint32_t build_run(int kind, weft_mmsg_t *m, const weft_tx_t *tx, uint32_t *pi, uint32_t *ps, uint32_t count,
                          double *ctr) {
  uint32_t k = 0, iv = 0, h = 0, i = *pi, s = *ps, flow;
  int udp = kind == WEFT_KIND_UDP4;
  int gso = udp && !m->no_gso;
  msg_meta_t *cur = NULL;

  while (i < count) {
    uint32_t off = tx->offsets[i], len = tx->lengths[i], d = tx->dests[i];
    uint32_t sg = tx->segs ? tx->segs[i] : 0;
    int bad_slot = !slot_ok(tx->slab_len, off, len);
    if (bad_slot || d >= tx->table_len) {
      if (k > 0) break;
      ctr[bad_slot ? WEFT_TX_DROP_BAD_SLOT : WEFT_TX_DROP_BAD_DEST]++;
      i++;
      s = 0;
      continue;
    }
    if (sg >= 0x10000) {
      /* a super-packet: cut it into segments behind copies of the prefix */
      uint32_t mss = sg & 0xffff, inner = tx->inner, nseg, segsize, per;
      int partial = (sg & WEFT_SEGS_PARTIAL) != 0;
      weft_gso_t g;
      if (inner >= len || mss == 0 || weft_gso_parse(tx->slab + off + inner, len - inner, (sg >> 16) & 0xff, &g) < 0 ||
          g.payload == 0 || inner + g.hdr > WEFT_SEG_HDR_MAX || inner + g.hdr + mss > WEFT_UDP_MAX_PAYLOAD) {
        if (k > 0) break;
        ctr[WEFT_TX_DROP_BAD_GSO]++;
        i++;
        s = 0;
        continue;
      }
      nseg = (g.payload + mss - 1) / mss;
      segsize = inner + g.hdr + mss;
      flow = inner_flow(tx->slab + off + inner, len - inner);
      per = gso ? WEFT_UDP_MAX_PAYLOAD / segsize : 1;
      if (per > WEFT_UDP_MAX_SEGMENTS) per = WEFT_UDP_MAX_SEGMENTS;
      for (; s < nseg; s++) {
        uint32_t chunk = s + 1 == nseg ? g.payload - s * mss : mss;
        uint8_t *hdr;
        if (h >= SEG_CAP || iv + 2 > IOV_CAP) goto full;
        /* A segment joins the open message while it has room: the message
         * may have begun in an earlier super-packet of the same flow to the
         * same peer, as long as every segment so far was full-size (the
         * kernel's rule for UDP_SEGMENT). A TCP stream's super-packets are
         * whole multiples of the MSS, 46 segments of 1472 bytes where a
         * message holds 44: this packs them 44 to a message instead of
         * 44 + 2. */
        if (!cur || cur->tag != MSG_SUPER || cur->closed || cur->dest != d || cur->size != segsize || cur->nseg >= per ||
            cur->partial != partial || cur->flow != flow) {
          if (k >= m->max) goto full;
          cur = open_msg(m, tx, kind, k++, iv, d, i, s, segsize, MSG_SUPER);
          cur->partial = (uint8_t)partial;
          cur->flow = flow;
        }
        hdr = m->hdrs + (size_t)h++ * WEFT_SEG_HDR_MAX;
        weft_gso_segment(hdr, tx->slab + off, inner, tx->slab + off + inner, &g, mss, s, chunk, s + 1 == nseg, partial);
        add_iov(m, k - 1, &iv, hdr, inner + g.hdr);
        add_iov(m, k - 1, &iv, tx->slab + off + inner + g.hdr + (size_t)s * mss, chunk);
        cur->nseg++;
        cur->bytes += inner + g.hdr + chunk;
        if (chunk < mss) cur->closed = 1; /* a short segment ends its message */
      }
      i++;
      s = 0;
      continue;
    }
    if (sg > 0) {
      /* a contiguous run of equal datagrams, segmented by the kernel */
      if (k >= m->max || iv + 1 > IOV_CAP) break;
      cur = open_msg(m, tx, kind, k++, iv, d, i, 0, sg, MSG_CONTIG);
      add_iov(m, k - 1, &iv, tx->slab + off, len);
      cur->nseg = (len + sg - 1) / sg;
      cur->bytes = len;
      cur->closed = 1;
      i++;
      continue;
    }
    /* a plain datagram: joins the open run of same-size datagrams of the
     * same flow to the same peer (UDP_SEGMENT sends one skb for them all),
     * or opens one */
    if (iv + 1 > IOV_CAP) break;
    flow = len > tx->inner ? inner_flow(tx->slab + off + tx->inner, len - tx->inner) : 0;
    if (gso && tx->coalesce && cur && cur->tag == MSG_PLAIN && !cur->closed && cur->dest == d && len > 0 && len <= cur->size &&
        cur->nseg < WEFT_UDP_MAX_SEGMENTS && cur->bytes + len <= WEFT_UDP_MAX_PAYLOAD && cur->flow == flow) {
      add_iov(m, k - 1, &iv, tx->slab + off, len);
      cur->nseg++;
      cur->bytes += len;
      if (len < cur->size) cur->closed = 1; /* only the last may be shorter */
      i++;
      continue;
    }
    if (k >= m->max) break;
    cur = open_msg(m, tx, kind, k++, iv, d, i, 0, len, MSG_PLAIN);
    cur->flow = flow;
    add_iov(m, k - 1, &iv, tx->slab + off, len);
    cur->nseg = 1;
    cur->bytes = len;
    if (len == 0) cur->closed = 1; /* an empty datagram is a message of its own */
    i++;
  }
full:
  for (uint32_t j = 0; j < k; j++) {
    msg_meta_t *mm = &m->meta[j];
    if (udp && mm->nseg > 1 && (mm->tag == MSG_CONTIG || gso)) set_segment_size(m, j, (uint16_t)mm->size);
  }
  *pi = i;
  *ps = s;
  return k;
}

static void account_sent(const msg_meta_t *mm, double *ctr, int gso_msg) {
  ctr[WEFT_TX_PACKETS] += mm->nseg;
  ctr[WEFT_TX_BYTES] += (double)mm->bytes;
  if (gso_msg) ctr[WEFT_TX_GSO_SEGMENTS] += mm->nseg;
  if (mm->tag == MSG_SUPER) ctr[WEFT_TX_SEGMENTED] += mm->nseg;
  else if (mm->tag == MSG_PLAIN && mm->nseg > 1) ctr[WEFT_TX_COALESCED] += mm->nseg;
  if (mm->partial) ctr[WEFT_TX_CSUM_PARTIAL] += mm->nseg; /* only ever a MSG_SUPER */
}

int weft_sock_send_batch(int fd, int kind, weft_mmsg_t *m, const weft_tx_t *tx, uint32_t count, double *ctr) {
  uint32_t i = 0, s = 0;
  int retries = EINTR_RETRIES;

  if (m->resume_seg && count > 0 && tx->offsets[0] == m->resume_off && tx->lengths[0] == m->resume_len)
    s = m->resume_seg;
  m->resume_seg = 0;

  while (i < count) {
    uint32_t ni = i, ns = s;
    uint32_t k = build_run(kind, m, tx, &ni, &ns, count, ctr);
    int r;
    if (k == 0) {
      if (ni == i && ns == s) break; /* cannot happen: an empty run always takes one */
      i = ni;
      s = ns;
      continue; /* everything up to ni was invalid (and counted) */
    }
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
      if (err == EIO && m->msgs[0].msg_hdr.msg_controllen && !m->no_gso) {
        /* no checksum offload on the way out: UDP GSO cannot work here */
        m->no_gso = 1;
        ctr[WEFT_TX_GSO_REFUSED]++;
        ctr[WEFT_LAST_ERRNO] = err;
        continue;
      }
      count_tx_drop(ctr, err, m->meta[0].nseg); /* the kernel refused message 0: skip it */
      if (k > 1) {
        i = m->meta[1].entry;
        s = m->meta[1].seg;
      } else {
        i = ni;
        s = ns;
      }
      continue;
    }
    for (int j = 0; j < r; j++) account_sent(&m->meta[j], ctr, m->msgs[j].msg_hdr.msg_controllen != 0);
    if ((uint32_t)r < k) {
      i = m->meta[r].entry;
      s = m->meta[r].seg;
    } else {
      i = ni;
      s = ns;
    }
  }
  if (s > 0 && i < count) {
    m->resume_seg = s;
    m->resume_off = tx->offsets[i];
    m->resume_len = tx->lengths[i];
  }
  return (int)i;
}
