/*
 * weft native core: TUN/TAP devices, sockets and batched packet I/O.
 *
 * Plain C with no knowledge of JavaScript (the N-API glue lives in addon.cc).
 * Every function returns 0 or a count on success and -errno on failure, so the
 * glue can turn failures into JS errors whose `code` is the errno name.
 *
 * Memory contract: packet memory is always owned by the caller (a JS Buffer
 * "slab"). A batch is described by parallel arrays: offsets[i] is where packet
 * i starts inside the slab, lengths[i] its length. Nothing here allocates per
 * packet; scratch arrays for recvmmsg/sendmmsg are sized once per socket.
 */
#ifndef WEFT_H
#define WEFT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

/* Debian 12's kernel headers predate some of these; the values are ABI. */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Counter slots, one array of doubles per I/O handle, shared with JS.
 * Doubles because JS reads them without BigInt and they stay exact to 2^53. */
enum weft_counter {
  WEFT_RX_PACKETS = 0,
  WEFT_RX_BYTES,
  WEFT_RX_SYSCALLS,
  WEFT_RX_BATCHES,        /* batches handed to JS (one callback each) */
  WEFT_RX_EAGAIN,
  WEFT_RX_DROP_TRUNCATED, /* packet larger than its slot */
  WEFT_RX_DROP_ERROR,     /* read error other than EAGAIN */
  WEFT_RX_GRO_SEGMENTS,   /* segments inside coalesced (UDP_GRO) reads */
  WEFT_TX_PACKETS,
  WEFT_TX_BYTES,
  WEFT_TX_SYSCALLS,
  WEFT_TX_BATCHES,
  WEFT_TX_EAGAIN,         /* kernel queue full: the caller keeps the rest */
  WEFT_TX_DROP_TOO_BIG,   /* EMSGSIZE */
  WEFT_TX_DROP_UNREACHABLE, /* ENETUNREACH, EHOSTUNREACH, ECONNREFUSED, EADDRNOTAVAIL */
  WEFT_TX_DROP_BAD_SLOT,  /* offset/length outside the slab, or too long */
  WEFT_TX_DROP_BAD_DEST,  /* destination index outside the address table */
  WEFT_TX_DROP_ERROR,     /* any other send error */
  WEFT_TX_GSO_SEGMENTS,   /* segments carried by UDP_SEGMENT sends */
  WEFT_LAST_ERRNO,        /* errno of the most recent drop, for diagnosis */
  WEFT_COUNTER_COUNT
};

extern const char *const weft_counter_names[WEFT_COUNTER_COUNT];

enum weft_io_kind { WEFT_KIND_FD = 0, WEFT_KIND_UDP4 = 1, WEFT_KIND_RAW4 = 2 };

/* TUN open flags (ours, mapped to IFF_* inside tun.c). */
#define WEFT_TUN_TAP        0x1
#define WEFT_TUN_VNET_HDR   0x2
#define WEFT_TUN_MULTIQUEUE 0x4

/* A receive batch: where to put packets and where to report what arrived. */
typedef struct {
  uint8_t *slab;
  size_t slab_len;
  const uint32_t *offsets;  /* [max] start of slot i */
  uint32_t *lengths;        /* [max] out: length of packet i, 0 = dropped */
  uint32_t *addrs;          /* [max] out: source IPv4, host order (sockets only; may be NULL) */
  uint32_t *ports;          /* [max] out: source port (UDP only; may be NULL) */
  uint32_t *segs;           /* [max] out: UDP_GRO segment size, 0 = not coalesced (may be NULL) */
  uint32_t capacity;        /* bytes each slot can hold */
  uint32_t max;             /* packets per batch */
} weft_rx_t;

/* A send batch. dests[i] indexes the address table (pairs of addr, port). */
typedef struct {
  uint8_t *slab;
  size_t slab_len;
  const uint32_t *offsets;
  const uint32_t *lengths;
  const uint32_t *dests;    /* sockets only */
  const uint32_t *segs;     /* UDP_SEGMENT size per message, 0 = none (may be NULL) */
  const uint32_t *table;    /* [2 * table_len]: addr (host order), port */
  uint32_t table_len;
  uint32_t max;
} weft_tx_t;

/* Per-socket scratch for recvmmsg/sendmmsg, sized once for `max` messages. */
typedef struct weft_mmsg weft_mmsg_t;
weft_mmsg_t *weft_mmsg_new(uint32_t max);
void weft_mmsg_free(weft_mmsg_t *m);

/* tun.c */
/* on failure *failed names the syscall that failed */
int weft_tun_open(const char *name, int flags, char *out_name /* IFNAMSIZ */, const char **failed);
int weft_tun_set_offload(int fd, unsigned int offloads);
int weft_tun_features(unsigned int *features);
int weft_link_set_mtu(const char *name, int mtu);
int weft_link_set_up(const char *name, int up);
int weft_link_index(const char *name);

/* sock.c */
typedef struct {
  int reuseport;
  int rcvbuf;      /* bytes, 0 = leave the kernel default */
  int sndbuf;
  int gro;         /* enable UDP_GRO */
  int pmtudisc;    /* -1 leave, else IP_PMTUDISC_* */
} weft_sock_opts_t;
int weft_udp4_open(uint32_t addr, uint16_t port, const weft_sock_opts_t *o);
int weft_raw4_open(int protocol, uint32_t bind_addr, const weft_sock_opts_t *o);
int weft_sock_local_port(int fd);
int weft_sock_set_gro(int fd, int on);
int weft_sock_buffers(int fd, int *rcvbuf, int *sndbuf);

/* batch.c: return packets moved (>= 0) or -errno for a failure that is not
 * about one packet (e.g. EBADF). EAGAIN is never an error: it ends the batch. */
int weft_fd_read_batch(int fd, const weft_rx_t *rx, double *ctr);
int weft_fd_write_batch(int fd, const weft_tx_t *tx, uint32_t count, double *ctr);
int weft_sock_recv_batch(int fd, int kind, weft_mmsg_t *m, const weft_rx_t *rx, double *ctr);
int weft_sock_send_batch(int fd, int kind, weft_mmsg_t *m, const weft_tx_t *tx, uint32_t count, double *ctr);

/* probe.c */
typedef struct {
  int udp_gso, udp_gro;                 /* 1 yes, 0 no */
  int tun_present;                      /* /dev/net/tun opens */
  int tun_vnet_hdr, tun_multiqueue;     /* from TUNGETFEATURES */
  int tun_tso, tun_uso;                 /* 1 yes, 0 no, -errno could not probe */
} weft_offloads_t;
void weft_probe_offloads(weft_offloads_t *out);

/* errno name ("EPERM"), never NULL */
const char *weft_errno_name(int err);

#ifdef __cplusplus
}
#endif
#endif
