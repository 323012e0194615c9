/*
 * Batched I/O on a TUN/TAP fd (or anything that keeps packet boundaries,
 * such as the SOCK_SEQPACKET pairs tests use). One call moves up to `max`
 * packets; the JS side is called once per batch, never per packet.
 *
 * Receive: read() until EAGAIN or the batch is full. TUN has no recvmmsg;
 *   with IFF_VNET_HDR + TSO each read carries up to a 64 KB super-packet,
 *   which is what makes one syscall per read affordable. Plain packets whose
 *   checksum the kernel left partial are finished here (vnet_rx).
 * Send: write() per packet, or writev() of the pieces JS gathered for one
 *   coalesced super-packet, until EAGAIN.
 *
 * Results: receive fills lengths[i]; a packet that does not fit its slot is
 * dropped (counted) and its slot reused. Send returns how many writes were
 * consumed, written or dropped (each drop counted once).
 */
#define _GNU_SOURCE
#include "io.h"

#include <linux/virtio_net.h>
#include <unistd.h>

/* Pieces one TUN write may gather (a vnet header and up to 64 segments). */
#define WRITE_PIECES_MAX 256

/* weft.h spells the virtio_net_hdr out so that it needs no kernel header;
 * these hold it to the kernel's. */
_Static_assert(WEFT_VNET_HDR_LEN == sizeof(struct virtio_net_hdr), "virtio_net_hdr size");
_Static_assert(WEFT_VNET_F_NEEDS_CSUM == VIRTIO_NET_HDR_F_NEEDS_CSUM, "VIRTIO_NET_HDR_F_NEEDS_CSUM");
_Static_assert(WEFT_VNET_F_DATA_VALID == VIRTIO_NET_HDR_F_DATA_VALID, "VIRTIO_NET_HDR_F_DATA_VALID");
_Static_assert(WEFT_GSO_NONE == VIRTIO_NET_HDR_GSO_NONE, "VIRTIO_NET_HDR_GSO_NONE");
_Static_assert(WEFT_GSO_TCPV4 == VIRTIO_NET_HDR_GSO_TCPV4, "VIRTIO_NET_HDR_GSO_TCPV4");
_Static_assert(WEFT_GSO_TCPV6 == VIRTIO_NET_HDR_GSO_TCPV6, "VIRTIO_NET_HDR_GSO_TCPV6");
#ifdef VIRTIO_NET_HDR_GSO_UDP_L4 /* newer headers than Debian 12's */
_Static_assert(WEFT_GSO_UDP_L4 == VIRTIO_NET_HDR_GSO_UDP_L4, "VIRTIO_NET_HDR_GSO_UDP_L4");
#endif

static inline uint16_t get16h(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

/* A TUN read with a vnet header: a plain packet whose checksum the kernel
 * left to us (TUN_F_CSUM) is finished here, so JS only ever sees complete
 * plain packets, IPv4 or IPv6 alike (csum_start/csum_offset say where, not
 * the IP header); super-packets (TCPV4, TCPV6, UDP_L4) are counted and left
 * for segmentation.
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

/* The n pieces of one write, from piece p on, as iovecs; 0 if any lies
 * outside the slab or they are too many. *total gets their bytes. */
static int gather(const weft_tx_t *tx, uint32_t p, uint32_t n, struct iovec *iov, uint32_t *total) {
  if (n == 0 || n > WRITE_PIECES_MAX || p + n > tx->max) return 0;
  *total = 0;
  for (uint32_t k = 0; k < n; k++) {
    uint32_t off = tx->offsets[p + k], len = tx->lengths[p + k];
    if (!slot_ok(tx->slab_len, off, len)) return 0;
    iov[k].iov_base = tx->slab + off;
    iov[k].iov_len = len;
    *total += len;
  }
  return 1;
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
    uint32_t n = tx->segs ? tx->segs[j] : 1, total = 0;
    ssize_t r;
    if (!gather(tx, p, n, iov, &total)) {
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
