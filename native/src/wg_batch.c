/*
 * WireGuard transport messages, a batch per call: the hot path of the
 * `wireguard` backend. TypeScript has already decided, per packet, which
 * session (key slot, receiver index, counter) and which peer; this file does
 * the bytes. Per packet: no allocation, no JS, no failure other than a code.
 *
 * Seal (TUN -> network), weft_wg_seal_batch, entry by entry:
 * 1. an entry is checked (key slot, counter, slot in the slab) and planned:
 *    a plain packet is one message; a TSO/USO super-packet (gso[i]) is as
 *    many as it has segments, all of which must fit the output slots left,
 *    or the entry and every one after it wait for the next call (NO_ROOM)
 * 2. each message is built in its output slot: the 16-byte header, then the
 *    packet (or segment: its IP/TCP or IP/UDP headers made by gso.c exactly
 *    as the VXLAN path makes them, then its payload) copied behind it; a
 *    checksum the TUN left partial is finished on that copy
 * 3. zero padding to a multiple of 16, never past the MTU (wireguard-go's
 *    calculatePaddingSize), then ChaCha20-Poly1305 in place, tag behind
 *
 * Open (network -> TUN), weft_wg_open_batch, datagram by datagram:
 * 1. checked: in the slab, at least a header and a tag, key slot set
 * 2. authenticated and decrypted in place: the inner packet starts 16 bytes
 *    into the message
 * 3. the inner TCP/UDP checksum checked once (the TUN write path coalesces
 *    segments and marks packets DATA_VALID on that strength, as the VXLAN
 *    path's checkInner does)
 * Replay windows are the caller's: it gets each good message's counter.
 */
#include "weft.h"
#include "wg.h"

#include <string.h>

static inline int in_slab(size_t slab_len, uint32_t off, uint32_t len) {
  return off <= slab_len && len <= slab_len - off;
}

static inline void put_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t get_le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* The padded plaintext length: len rounded up to 16, but never past the MTU
 * (and never below len); mtu 0 caps nothing. */
static inline uint32_t padded_len(uint32_t len, uint32_t mtu) {
  uint32_t r = (len + WEFT_WG_PAD - 1) & ~(uint32_t)(WEFT_WG_PAD - 1);
  uint32_t cap = mtu == 0 ? r : (len > mtu ? len : mtu);
  return r < cap ? r : cap;
}

/* ------------------------------------------------------------- seal ---- */

/* Output slot k, if a message of msg_len bytes fits it; NULL otherwise. */
static uint8_t *out_slot(const weft_wg_seal_t *s, uint32_t k, uint32_t msg_len) {
  if (msg_len > s->out_cap || !in_slab(s->out_slab_len, s->out_off[k], msg_len)) return NULL;
  return s->out_slab + s->out_off[k];
}

/* 2-3. Message k: the header is written here, the plaintext (plen bytes at
 * msg + 16) by the caller; pad, seal, account. */
static int finish_msg(const weft_wg_seal_t *s, uint32_t i, uint32_t k, uint8_t *msg, uint32_t plen, uint64_t counter) {
  uint32_t padded = padded_len(plen, s->mtu);
  msg[0] = WEFT_WG_TYPE_DATA;
  msg[1] = msg[2] = msg[3] = 0;
  put_le32(msg + 4, s->receiver[i]);
  for (int b = 0; b < 8; b++) msg[8 + b] = (uint8_t)(counter >> (8 * b));
  memset(msg + WEFT_WG_HDR_LEN + plen, 0, padded - plen);
  if (weft_wg_seal_one(s->keys, (uint32_t)s->key_slot[i], msg + WEFT_WG_HDR_LEN, padded, counter) < 0) return -1;
  s->out_len[k] = WEFT_WG_OVERHEAD + padded;
  s->out_dests[k] = s->dest[i];
  s->out_segs[k] = 0;
  return 0;
}

/* A plain packet (ip, len; vh its vnet header or NULL) as message k. */
static int32_t seal_plain(const weft_wg_seal_t *s, uint32_t i, uint32_t k, const uint8_t *vh, const uint8_t *ip,
                          uint32_t len, uint64_t counter) {
  uint8_t *msg = out_slot(s, k, WEFT_WG_OVERHEAD + padded_len(len, s->mtu));
  if (!msg) return WEFT_WG_SEAL_TOO_BIG;
  memcpy(msg + WEFT_WG_HDR_LEN, ip, len);
  if (vh && (vh[0] & WEFT_VNET_F_NEEDS_CSUM)) {
    uint16_t start, field; /* host-endian, as the TUN writes them */
    memcpy(&start, vh + 6, 2);
    memcpy(&field, vh + 8, 2);
    if (weft_csum_finish(msg + WEFT_WG_HDR_LEN, len, start, field) < 0) return WEFT_WG_SEAL_BAD_PACKET;
  }
  return finish_msg(s, i, k, msg, len, counter) < 0 ? WEFT_WG_SEAL_NO_KEY : 1;
}

/* A super-packet as messages k..: its segments, each with headers of its
 * own. Returns the count, or a weft_wg_seal_result (no message written). */
static int32_t seal_super(const weft_wg_seal_t *s, uint32_t i, uint32_t k, const uint8_t *ip, uint32_t len,
                          uint64_t counter) {
  uint32_t sg = s->gso[i], mss = sg & 0xffff, nseg, full;
  weft_gso_t g;
  if (mss == 0 || weft_gso_parse(ip, len, (sg >> 16) & 0xff, &g) < 0 || g.payload == 0) return WEFT_WG_SEAL_BAD_PACKET;
  nseg = (g.payload + mss - 1) / mss;
  full = WEFT_WG_OVERHEAD + padded_len(g.hdr + (mss < g.payload ? mss : g.payload), s->mtu);
  if (nseg > s->out_max || full > s->out_cap) return WEFT_WG_SEAL_TOO_BIG;
  if (k + nseg > s->out_max) return WEFT_WG_SEAL_NO_ROOM;
  for (uint32_t j = 0; j < nseg; j++)
    if (!out_slot(s, k + j, full)) return WEFT_WG_SEAL_BAD_SLOT;
  for (uint32_t j = 0; j < nseg; j++) {
    int last = j + 1 == nseg;
    uint32_t chunk = last ? g.payload - j * mss : mss;
    uint8_t *msg = s->out_slab + s->out_off[k + j];
    /* the segment's IP and TCP/UDP headers, checksums complete (partial = 0) */
    weft_gso_segment(msg + WEFT_WG_HDR_LEN, NULL, 0, ip, &g, mss, j, chunk, last, 0);
    memcpy(msg + WEFT_WG_HDR_LEN + g.hdr, ip + g.hdr + (size_t)j * mss, chunk);
    if (finish_msg(s, i, k + j, msg, g.hdr + chunk, counter + j) < 0) return WEFT_WG_SEAL_NO_KEY;
  }
  return (int32_t)nseg;
}

/* 1. Entry i into messages k..: their count, or a weft_wg_seal_result. */
static int32_t seal_entry(const weft_wg_seal_t *s, uint32_t i, uint32_t k) {
  uint32_t off = s->in_off[i], len = s->in_len[i];
  const uint8_t *vh = NULL, *ip;
  double c = s->counter[i];
  int32_t slot = s->key_slot[i];
  if (slot < 0) return 0;
  if (!weft_wg_keys_ready(s->keys, (uint32_t)slot)) return WEFT_WG_SEAL_NO_KEY;
  /* exact as a double, and nowhere near 2^64 - 2^13 (Reject-After-Messages) */
  if (!(c >= 0 && c <= 9007199254740992.0) || c != (double)(uint64_t)c) return WEFT_WG_SEAL_BAD_COUNTER;
  if (!in_slab(s->in_slab_len, off, len) || (s->vnet && len < WEFT_VNET_HDR_LEN)) return WEFT_WG_SEAL_BAD_SLOT;
  ip = s->in_slab + off;
  if (s->vnet) {
    vh = ip;
    ip += WEFT_VNET_HDR_LEN;
    len -= WEFT_VNET_HDR_LEN;
  }
  if (s->gso[i] != 0) return seal_super(s, i, k, ip, len, (uint64_t)c);
  if (k >= s->out_max) return WEFT_WG_SEAL_NO_ROOM;
  return seal_plain(s, i, k, vh, ip, len, (uint64_t)c);
}

uint32_t weft_wg_seal_batch(const weft_wg_seal_t *s, uint32_t first, uint32_t count) {
  uint32_t k = 0, i = first;
  for (; i < first + count; i++) {
    int32_t r = seal_entry(s, i, k);
    s->produced[i] = r;
    if (r == WEFT_WG_SEAL_NO_ROOM) break;
    if (r > 0) k += (uint32_t)r;
  }
  /* everything after the entry that did not fit waits too */
  for (; i < first + count; i++) s->produced[i] = WEFT_WG_SEAL_NO_ROOM;
  return k;
}

/* ------------------------------------------------------------- open ---- */

/* 3. The inner packet's checksum, only where there is one to check: IPv4
 * TCP/UDP, not a fragment, its total length within what was decrypted (the
 * rest is padding), UDP with a checksum; or IPv6 with TCP/UDP right after
 * its header (extension headers: unchecked, for the JS side to judge), its
 * payload length within what was decrypted, UDP with a checksum.
 * weft_inner_check does the work (and finishes a checksum a sender left
 * partial). */
static int8_t inner_status6(uint8_t *ip, uint32_t len) {
  uint32_t tot;
  if (len < 40) return WEFT_WG_INNER_UNCHECKED;
  tot = 40 + ((uint32_t)ip[4] << 8 | ip[5]);
  if (tot > len) return WEFT_WG_INNER_UNCHECKED;
  if (ip[6] == 6 ? tot - 40 < 20 : ip[6] != 17 || tot - 40 < 8 || (ip[40 + 6] | ip[40 + 7]) == 0)
    return WEFT_WG_INNER_UNCHECKED;
  return weft_inner_check(ip, tot) < 0 ? WEFT_WG_INNER_BAD : WEFT_WG_INNER_GOOD;
}

static int8_t inner_status(uint8_t *ip, uint32_t len) {
  uint32_t ihl, tot, proto;
  if (len >= 1 && (ip[0] >> 4) == 6) return inner_status6(ip, len);
  if (len < 20 || (ip[0] >> 4) != 4) return WEFT_WG_INNER_UNCHECKED;
  ihl = (uint32_t)(ip[0] & 15) * 4;
  tot = (uint32_t)ip[2] << 8 | ip[3];
  proto = ip[9];
  if (ihl < 20 || tot < ihl || tot > len || ((ip[6] & 0x3f) | ip[7]) != 0) return WEFT_WG_INNER_UNCHECKED;
  if (proto == 6 ? tot - ihl < 20 : proto != 17 || tot - ihl < 8 || (ip[ihl + 6] | ip[ihl + 7]) == 0)
    return WEFT_WG_INNER_UNCHECKED;
  return weft_inner_check(ip, tot) < 0 ? WEFT_WG_INNER_BAD : WEFT_WG_INNER_GOOD;
}

static uint8_t open_one(const weft_wg_open_t *o, uint32_t j) {
  uint32_t off = o->off[j], len = o->len[j];
  int32_t slot = o->key_slot[j];
  uint8_t *msg;
  uint64_t counter;
  int r;
  if (!in_slab(o->slab_len, off, len)) return WEFT_WG_BAD_SLOT;
  /* no multiple-of-16 check: a packet padded up to the MTU is not one */
  if (len < WEFT_WG_OVERHEAD) return WEFT_WG_BAD_LENGTH;
  if (slot < 0) return WEFT_WG_NO_KEY;
  msg = o->slab + off;
  counter = get_le64(msg + 8);
  r = weft_wg_open_one(o->keys, (uint32_t)slot, msg + WEFT_WG_HDR_LEN, len - WEFT_WG_OVERHEAD, counter);
  if (r == -2) return WEFT_WG_NO_KEY;
  if (r < 0) return WEFT_WG_AUTH_FAILED;
  o->counter[j] = (double)counter;
  o->inner[j] = inner_status(msg + WEFT_WG_HDR_LEN, len - WEFT_WG_OVERHEAD);
  return WEFT_WG_OK;
}

uint32_t weft_wg_open_batch(const weft_wg_open_t *o, uint32_t count) {
  uint32_t ok = 0;
  for (uint32_t j = 0; j < count; j++) {
    o->status[j] = open_one(o, j);
    if (o->status[j] == WEFT_WG_OK) ok++;
  }
  return ok;
}
