/*
 * A socket send batch turned into sendmmsg messages, one run at a time;
 * no syscall here (sock_io.c sends the run and decides where the next one
 * starts).
 *
 * - each destination is an index into a packed (addr, port) table, so JS
 *   never builds an address per packet
 * - a super-packet JS marked (segs = type << 16 | mss) is cut into segments
 *   here: each gets a copy of the encapsulation prefix and its own IP/TCP
 *   headers and checksums (gso.c) in a header slot, and its payload is an
 *   iovec into the slab (scatter-gather, no payload copy); with SEGS_PARTIAL
 *   the TCP/UDP checksum is left as the pseudo-header sum (VXLAN remote
 *   checksum offload) and the payload never read; up to 64 segments (65507
 *   bytes) go as one UDP_SEGMENT message, which the next super-packet of the
 *   same inner flow to the same peer keeps filling while every segment so
 *   far was full-size
 * - plain datagrams of one size and one inner flow to one peer are gathered
 *   likewise into UDP_SEGMENT messages (coalesce); a message never mixes
 *   inner flows, because a receiver steering by inner flow (SO_REUSEPORT,
 *   --workers) sends each message to one socket whole
 *
 * weft_build_run takes entries in order (add_entry) until one does not fit:
 * 1. an entry whose slot or destination is invalid is dropped (counted) if it
 *    heads the run; further in, it ends the run, so that it is counted
 *    exactly once, when it heads the next (reject)
 * 2. a super-packet (segs >= 0x10000) is checked and planned (parse_super),
 *    then cut segment by segment (add_segment), each joining the open
 *    message (joins_super) or opening one; a run that fills up mid-way stops
 *    at that segment, and the next run goes on from it
 * 3. a contiguous run of equal datagrams (segs 1..0xffff) is one message,
 *    segmented by the kernel (add_contig)
 * 4. a plain datagram (segs 0) joins the open message of its size, inner
 *    flow and peer (joins_plain), or opens one (add_plain)
 * 5. once the batch, the messages or the scratch run out, every message of
 *    more than one datagram gets its UDP_SEGMENT size (finish_run)
 */
#define _GNU_SOURCE
#include "io.h"

#include <netinet/udp.h>

/* A run being built: the scratch used so far and the open message. */
typedef struct {
  weft_mmsg_t *m;
  const weft_tx_t *tx;
  double *ctr;
  int kind;
  int gso;         /* UDP_SEGMENT allowed: UDP, and the kernel has not refused it */
  uint32_t k;      /* messages */
  uint32_t iv;     /* iovecs */
  uint32_t h;      /* segment headers */
  msg_meta_t *cur; /* the last message opened (m->meta[k - 1]), which may take more */
} run_t;

/* How a super-packet is cut, from parse_super. */
typedef struct {
  weft_gso_t g;
  uint8_t *pkt; /* the entry: encapsulation prefix (tx->inner bytes), then the inner IP packet */
  uint32_t dest;
  uint32_t mss;
  uint32_t nseg;    /* segments */
  uint32_t segsize; /* bytes of a full-size segment, prefix included */
  uint32_t per;     /* segments one message may hold */
  uint32_t flow;
  int partial; /* SEGS_PARTIAL: inner checksums left partial */
} super_t;

/* What adding an entry did: took it whole (sent or dropped), or found the
 * run full, leaving the entry (from its current segment) to the next. */
enum { TAKEN = 0, FULL = 1 };

/*
 * The inner flow a datagram or super-packet belongs to, as a receiver's
 * steering by inner flow reads it (weft_sock_steer_inner_flow): inner source
 * ^ destination ^ the 4 bytes after the IP header (TCP/UDP ports), IPv6's
 * addresses word by word; 0 when too short to tell. A UDP_SEGMENT message
 * reaches one socket of a receiver's SO_REUSEPORT group as a whole, steered
 * by its first datagram, so datagrams of two flows never share one: a flow
 * split between two receiving workers would arrive out of order.
 */
static uint32_t inner_flow6(const uint8_t *ip, uint32_t len) {
  uint32_t key, w;
  if (len < 44) return 0;
  memcpy(&key, ip + 40, 4);
  for (uint32_t k = 0; k < 8; k++) {
    memcpy(&w, ip + 8 + 4 * k, 4);
    key ^= w;
  }
  return key;
}

static uint32_t inner_flow(const uint8_t *ip, uint32_t len) {
  uint32_t ihl, src, dst, ports;
  if (len >= 1 && (ip[0] >> 4) == 6) return inner_flow6(ip, len);
  if (len < 20) return 0;
  ihl = (uint32_t)(ip[0] & 0xf) * 4;
  if (ihl < 20 || len < ihl + 4) return 0;
  memcpy(&src, ip + 12, 4);
  memcpy(&dst, ip + 16, 4);
  memcpy(&ports, ip + ihl, 4);
  return src ^ dst ^ ports;
}

/* Open message k (the next) to dest d; it becomes r->cur. */
static msg_meta_t *open_msg(run_t *r, uint32_t d, uint32_t entry, uint32_t seg, uint32_t size, uint8_t tag) {
  weft_mmsg_t *m = r->m;
  uint32_t k = r->k++;
  struct msghdr *h = &m->msgs[k].msg_hdr;
  msg_meta_t *mm = &m->meta[k];
  weft_sockaddr_t *sa = &m->addr[k];
  memset(sa, 0, sizeof *sa);
  if (r->kind == WEFT_KIND_UDP6) {
    const uint32_t *t = r->tx->table + 5 * (size_t)d;
    sa->v6.sin6_family = AF_INET6;
    for (int w = 0; w < 4; w++) {
      uint32_t be = htonl(t[w]);
      memcpy(sa->v6.sin6_addr.s6_addr + 4 * w, &be, 4);
    }
    sa->v6.sin6_port = htons((uint16_t)t[4]);
    h->msg_namelen = sizeof sa->v6;
  } else {
    sa->v4.sin_family = AF_INET;
    sa->v4.sin_addr.s_addr = htonl(r->tx->table[2 * d]);
    sa->v4.sin_port = r->kind == WEFT_KIND_UDP4 ? htons((uint16_t)r->tx->table[2 * d + 1]) : 0;
    h->msg_namelen = sizeof sa->v4;
  }
  h->msg_name = sa;
  h->msg_iov = &m->iov[r->iv];
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
  r->cur = mm;
  return mm;
}

/* Append a piece to the open message. */
static inline void add_iov(run_t *r, void *base, size_t len) {
  r->m->iov[r->iv].iov_base = base;
  r->m->iov[r->iv].iov_len = len;
  r->iv++;
  r->m->msgs[r->k - 1].msg_hdr.msg_iovlen++;
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

/* 1. An invalid entry: dropped and counted at the head of the run, else it
 * ends the run. */
static int reject(run_t *r, uint32_t *s, int counter) {
  if (r->k > 0) return FULL;
  r->ctr[counter]++;
  *s = 0;
  return TAKEN;
}

/* 2. How super-packet i (segs entry sg) is cut; 0 if its headers do not
 * allow segmenting, or a segment would not fit a header slot or a datagram. */
static int parse_super(const run_t *r, uint32_t i, uint32_t sg, super_t *sp) {
  const weft_tx_t *tx = r->tx;
  uint32_t len = tx->lengths[i], inner = tx->inner;
  sp->pkt = tx->slab + tx->offsets[i];
  sp->dest = tx->dests[i];
  sp->mss = sg & 0xffff;
  sp->partial = (sg & WEFT_SEGS_PARTIAL) != 0;
  if (inner >= len || sp->mss == 0 || weft_gso_parse(sp->pkt + inner, len - inner, (sg >> 16) & 0xff, &sp->g) < 0 ||
      sp->g.payload == 0 || inner + sp->g.hdr > WEFT_SEG_HDR_MAX || inner + sp->g.hdr + sp->mss > WEFT_UDP_MAX_PAYLOAD)
    return 0;
  sp->nseg = (sp->g.payload + sp->mss - 1) / sp->mss;
  sp->segsize = inner + sp->g.hdr + sp->mss;
  sp->flow = inner_flow(sp->pkt + inner, len - inner);
  sp->per = r->gso ? WEFT_UDP_MAX_PAYLOAD / sp->segsize : 1;
  if (sp->per > WEFT_UDP_MAX_SEGMENTS) sp->per = WEFT_UDP_MAX_SEGMENTS;
  return 1;
}

/* A segment joins the open message while it has room: the message may have
 * begun in an earlier super-packet of the same flow to the same peer, as
 * long as every segment so far was full-size (the kernel's rule for
 * UDP_SEGMENT). A TCP stream's super-packets are whole multiples of the
 * MSS, 46 segments of 1472 bytes where a message holds 44: this packs them
 * 44 to a message instead of 44 + 2. */
static int joins_super(const msg_meta_t *cur, const super_t *sp) {
  return cur && cur->tag == MSG_SUPER && !cur->closed && cur->dest == sp->dest && cur->size == sp->segsize &&
         cur->nseg < sp->per && cur->partial == sp->partial && cur->flow == sp->flow;
}

/* 2. Segment s of super-packet i: its headers built in a header slot, its
 * payload an iovec into the slab. */
static int add_segment(run_t *r, uint32_t i, const super_t *sp, uint32_t s) {
  uint32_t inner = r->tx->inner;
  int last = s + 1 == sp->nseg;
  uint32_t chunk = last ? sp->g.payload - s * sp->mss : sp->mss;
  uint8_t *hdr;
  if (r->h >= SEG_CAP || r->iv + 2 > IOV_CAP) return FULL;
  if (!joins_super(r->cur, sp)) {
    if (r->k >= r->m->max) return FULL;
    open_msg(r, sp->dest, i, s, sp->segsize, MSG_SUPER);
    r->cur->partial = (uint8_t)sp->partial;
    r->cur->flow = sp->flow;
  }
  hdr = r->m->hdrs + (size_t)r->h++ * WEFT_SEG_HDR_MAX;
  weft_gso_segment(hdr, sp->pkt, inner, sp->pkt + inner, &sp->g, sp->mss, s, chunk, last, sp->partial);
  add_iov(r, hdr, inner + sp->g.hdr);
  add_iov(r, sp->pkt + inner + sp->g.hdr + (size_t)s * sp->mss, chunk);
  r->cur->nseg++;
  r->cur->bytes += inner + sp->g.hdr + chunk;
  if (chunk < sp->mss) r->cur->closed = 1; /* a short segment ends its message */
  return TAKEN;
}

/* 2. Super-packet i, from segment *s on; *s is where it stopped if FULL. */
static int add_super(run_t *r, uint32_t i, uint32_t sg, uint32_t *s) {
  super_t sp;
  if (!parse_super(r, i, sg, &sp)) return reject(r, s, WEFT_TX_DROP_BAD_GSO);
  for (; *s < sp.nseg; (*s)++)
    if (add_segment(r, i, &sp, *s) == FULL) return FULL;
  *s = 0;
  return TAKEN;
}

/* 3. A contiguous run of datagrams of sg bytes each (the last may be shorter). */
static int add_contig(run_t *r, uint32_t i, uint32_t sg) {
  const weft_tx_t *tx = r->tx;
  uint32_t len = tx->lengths[i];
  if (r->k >= r->m->max || r->iv + 1 > IOV_CAP) return FULL;
  open_msg(r, tx->dests[i], i, 0, sg, MSG_CONTIG);
  add_iov(r, tx->slab + tx->offsets[i], len);
  r->cur->nseg = (len + sg - 1) / sg;
  r->cur->bytes = len;
  r->cur->closed = 1;
  return TAKEN;
}

/* A plain datagram joins the open run of same-size datagrams of the same
 * flow to the same peer (UDP_SEGMENT sends one skb for them all); only the
 * last may be shorter. */
static int joins_plain(const run_t *r, uint32_t d, uint32_t len, uint32_t flow) {
  const msg_meta_t *cur = r->cur;
  return r->gso && r->tx->coalesce && cur && cur->tag == MSG_PLAIN && !cur->closed && cur->dest == d && len > 0 &&
         len <= cur->size && cur->nseg < WEFT_UDP_MAX_SEGMENTS && cur->bytes + len <= WEFT_UDP_MAX_PAYLOAD &&
         cur->flow == flow;
}

/* 4. Plain datagram i: joins the open run, or opens a message. */
static int add_plain(run_t *r, uint32_t i) {
  const weft_tx_t *tx = r->tx;
  uint32_t off = tx->offsets[i], len = tx->lengths[i], d = tx->dests[i], flow;
  if (r->iv + 1 > IOV_CAP) return FULL;
  flow = len > tx->inner ? inner_flow(tx->slab + off + tx->inner, len - tx->inner) : 0;
  if (joins_plain(r, d, len, flow)) {
    add_iov(r, tx->slab + off, len);
    r->cur->nseg++;
    r->cur->bytes += len;
    if (len < r->cur->size) r->cur->closed = 1; /* only the last may be shorter */
    return TAKEN;
  }
  if (r->k >= r->m->max) return FULL;
  open_msg(r, d, i, 0, len, MSG_PLAIN);
  r->cur->flow = flow;
  add_iov(r, tx->slab + off, len);
  r->cur->nseg = 1;
  r->cur->bytes = len;
  if (len == 0) r->cur->closed = 1; /* an empty datagram is a message of its own */
  return TAKEN;
}

/* Entry i, from segment *s on (only a super-packet is ever taken in part). */
static int add_entry(run_t *r, uint32_t i, uint32_t *s) {
  const weft_tx_t *tx = r->tx;
  uint32_t sg = tx->segs ? tx->segs[i] : 0;
  if (!slot_ok(tx->slab_len, tx->offsets[i], tx->lengths[i])) return reject(r, s, WEFT_TX_DROP_BAD_SLOT);
  if (tx->dests[i] >= tx->table_len) return reject(r, s, WEFT_TX_DROP_BAD_DEST);
  if (sg >= 0x10000) return add_super(r, i, sg, s);
  if (sg > 0) return add_contig(r, i, sg);
  return add_plain(r, i);
}

/* 5. UDP_SEGMENT on every message of several datagrams: always for a
 * contiguous run (JS asked for it), else only while the kernel takes it. */
static void finish_run(run_t *r) {
  for (uint32_t j = 0; j < r->k; j++) {
    const msg_meta_t *mm = &r->m->meta[j];
    if (weft_kind_udp(r->kind) && mm->nseg > 1 && (mm->tag == MSG_CONTIG || r->gso))
      set_segment_size(r->m, j, (uint16_t)mm->size);
  }
}

uint32_t weft_build_run(int kind, weft_mmsg_t *m, const weft_tx_t *tx, uint32_t *pi, uint32_t *ps, uint32_t count,
                        double *ctr) {
  run_t r = {m, tx, ctr, kind, weft_kind_udp(kind) && !m->no_gso, 0, 0, 0, NULL};
  uint32_t i = *pi, s = *ps;
  while (i < count && add_entry(&r, i, &s) == TAKEN) i++;
  finish_run(&r);
  *pi = i;
  *ps = s;
  return r.k;
}
