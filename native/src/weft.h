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

/* virtio_net_hdr (the TUN vnet header), host-endian fields. */
#define WEFT_VNET_HDR_LEN 10
#define WEFT_VNET_F_NEEDS_CSUM 1
#define WEFT_VNET_F_DATA_VALID 2
#define WEFT_GSO_NONE 0
#define WEFT_GSO_TCPV4 1
#define WEFT_GSO_TCPV6 4
#define WEFT_GSO_UDP_L4 5
/* Set in a send entry's segs beside (type << 16 | mss): cut the super-packet
 * with the inner TCP/UDP checksums left partial (pseudo-header sum only), for
 * a peer that finishes them or trusts the outer UDP checksum (VXLAN remote
 * checksum offload, marked in the prefix by the caller). */
#define WEFT_SEGS_PARTIAL 0x1000000u
/* VXLAN remote checksum offload (RCO): the R flag is bit 21 of the flags word,
 * i.e. 0x20 in the header's second byte (Linux's VXLAN_HF_RCO). */
#define WEFT_VXLAN_RCO_BYTE1 0x20

/* Largest UDP payload one IPv4 datagram (and so one UDP_SEGMENT send) holds,
 * and the kernel's cap on segments per UDP_SEGMENT send (UDP_MAX_SEGMENTS).
 * An IPv6 datagram holds 20 bytes more (65527); one limit for both keeps a
 * message's plan the same whichever family carries it. */
#define WEFT_UDP_MAX_PAYLOAD 65507
#define WEFT_UDP_MAX_SEGMENTS 64
/* Room for one segment's headers: encapsulation prefix + IPv4 or IPv6 + TCP
 * (IPv4 and TCP each <= 64, IPv6 40 without extension headers). */
#define WEFT_SEG_HDR_MAX 192
/* Segments of one received (UDP_GRO) message whose inner checksums are
 * checked: a bit each in bad[2i], bad[2i + 1]. JS drops the rest unchecked. */
#define WEFT_RX_CHECK_SEGMENTS 64

#ifdef __cplusplus
extern "C" {
#endif

/* Counter slots, one array of doubles per I/O handle, shared with JS.
 * Doubles because JS reads them without BigInt and they stay exact to 2^53. */
enum weft_counter {
  WEFT_RX_PACKETS = 0,
  WEFT_RX_BYTES,
  WEFT_RX_SYSCALLS,
  WEFT_RX_BATCHES, /* batches handed to JS (one callback each) */
  WEFT_RX_EAGAIN,
  WEFT_RX_DROP_TRUNCATED, /* packet larger than its slot */
  WEFT_RX_DROP_ERROR,     /* read error other than EAGAIN */
  WEFT_RX_GRO_SEGMENTS,   /* segments inside coalesced (UDP_GRO) reads */
  WEFT_TX_PACKETS,
  WEFT_TX_BYTES,
  WEFT_TX_SYSCALLS,
  WEFT_TX_BATCHES,
  WEFT_TX_EAGAIN,           /* kernel queue full: the caller keeps the rest */
  WEFT_TX_DROP_TOO_BIG,     /* EMSGSIZE */
  WEFT_TX_DROP_UNREACHABLE, /* ENETUNREACH, EHOSTUNREACH, ECONNREFUSED, EADDRNOTAVAIL */
  WEFT_TX_DROP_BAD_SLOT,    /* offset/length outside the slab, or too long */
  WEFT_TX_DROP_BAD_DEST,    /* destination index outside the address table */
  WEFT_TX_DROP_ERROR,       /* any other send error */
  WEFT_TX_GSO_SEGMENTS,     /* segments carried by UDP_SEGMENT sends */
  WEFT_LAST_ERRNO,          /* errno of the most recent drop, for diagnosis */
  WEFT_RX_SUPER_PACKETS,    /* TUN reads that were TSO/USO super-packets */
  WEFT_RX_CSUM_FINISHED,    /* partial checksums finished on TUN reads */
  WEFT_TX_SEGMENTED,        /* segments cut from super-packets */
  WEFT_TX_DROP_BAD_GSO,     /* a super-packet whose headers do not allow segmenting */
  WEFT_TX_GSO_REFUSED,      /* the kernel refused UDP_SEGMENT (EIO): sent unsegmented from then on */
  WEFT_TX_COALESCED,        /* separate datagrams sent as one UDP_SEGMENT message */
  WEFT_TX_WRITEV,           /* TUN writes gathered from several pieces */
  WEFT_TX_CSUM_PARTIAL,     /* segments sent with the inner checksum left partial (VXLAN RCO) */
  WEFT_RX_CSUM_REMOTE,      /* received datagrams not checked: RCO, covered by the outer UDP checksum */
  WEFT_COUNTER_COUNT
};

extern const char *const weft_counter_names[WEFT_COUNTER_COUNT];

enum weft_io_kind { WEFT_KIND_FD = 0, WEFT_KIND_UDP4 = 1, WEFT_KIND_RAW4 = 2, WEFT_KIND_UDP6 = 3 };

/* A UDP socket of either family: same batching, GRO, GSO and checks. */
static inline int weft_kind_udp(int kind) {
  return kind == WEFT_KIND_UDP4 || kind == WEFT_KIND_UDP6;
}

/* Words per peer in a send's address table: addr, port (IPv4); four
 * big-endian words of the address, port (IPv6). */
static inline uint32_t weft_table_stride(int kind) {
  return kind == WEFT_KIND_UDP6 ? 5 : 2;
}

/* TUN open flags (ours, mapped to IFF_* inside tun.c). */
#define WEFT_TUN_TAP 0x1
#define WEFT_TUN_VNET_HDR 0x2
#define WEFT_TUN_MULTIQUEUE 0x4
#define WEFT_TUN_EXCL 0x8 /* fail (EBUSY) if the device exists: another multi-queue opener would join it */

/* A receive batch: where to put packets and where to report what arrived. */
typedef struct {
  uint8_t *slab;
  size_t slab_len;
  const uint32_t *offsets; /* [max] start of slot i */
  uint32_t *lengths;       /* [max] out: length of packet i, 0 = dropped */
  uint32_t *addrs;         /* [max] out: source IPv4, host order (sockets only; may be NULL); 0 on udp6 */
  uint32_t *addrs6;        /* [4 * max] out (udp6): source IPv6, word k of entry i (bytes 4k..4k+3 read
                              big-endian) at 4i + k; all zero for a dropped slot (may be NULL) */
  uint32_t *ports;         /* [max] out: source port (UDP only; may be NULL) */
  uint32_t *segs;          /* [max] out: UDP_GRO segment size, 0 = not coalesced (may be NULL) */
  uint32_t capacity;       /* bytes each slot can hold */
  uint32_t max;            /* packets per batch */
  int vnet;                /* TUN with IFF_VNET_HDR: finish partial checksums of plain packets */
  /* sockets: check each (segment's) inner TCP/UDP checksum, the inner IPv4
   * or IPv6 packet starting `inner` bytes in (raw sockets: after the outer header);
   * bad[2i], bad[2i+1] get a bitmask of the bad segments of message i */
  uint32_t *bad;
  uint32_t inner;
  /* the datagrams are VXLAN and remote checksum offload is on: a datagram
   * with the RCO flag is not checked here (its inner checksum is partial by
   * design; the outer UDP checksum covers it). The JS side lets it in only
   * from a peer that asked for RCO, i.e. a weft node, which always sends an
   * outer checksum; the kernel verified that before we read it. */
  int rco;
} weft_rx_t;

/*
 * A send batch. dests[i] indexes the address table: weft_table_stride(kind)
 * words per peer, (addr, port) for IPv4, (w0, w1, w2, w3, port) for udp6.
 *
 * Sockets: segs[i] says what message i is (segs may be NULL: all plain)
 *   0                      a plain datagram; with `coalesce`, runs of plain
 *                          datagrams of one size to one peer go as one
 *                          UDP_SEGMENT send
 *   1..0xffff              a contiguous run of datagrams of that size, sent
 *                          with UDP_SEGMENT
 *   (type << 16) | mss     a super-packet (type WEFT_GSO_TCPV4/TCPV6/UDP_L4)
 *                          whose inner IPv4 or IPv6 packet (no extension
 *                          headers) starts `inner` bytes in, after the
 *                          encapsulation prefix: cut into mss-sized segments,
 *                          each sent with a copy of the prefix in front
 *                          (| WEFT_SEGS_PARTIAL: inner checksums left partial)
 * TUN (fd): segs[j], if given, is how many pieces (offsets/lengths entries,
 *   in order) write j gathers; without segs each entry is one write.
 */
typedef struct {
  uint8_t *slab;
  size_t slab_len;
  const uint32_t *offsets;
  const uint32_t *lengths;
  const uint32_t *dests; /* sockets only */
  const uint32_t *segs;  /* see above (may be NULL) */
  const uint32_t *table; /* [stride * table_len]: addr (host order), port; udp6: w0..w3, port */
  uint32_t table_len;
  uint32_t max;
  uint32_t inner; /* sockets: bytes of encapsulation before a super-packet's IP header */
  int coalesce;   /* sockets: gather same-size plain datagrams into UDP_SEGMENT sends */
} weft_tx_t;

/* A super-packet's shape, from weft_gso_parse. */
typedef struct {
  uint32_t type;    /* WEFT_GSO_TCPV4, WEFT_GSO_TCPV6 or WEFT_GSO_UDP_L4 */
  uint32_t ihl;     /* IP header bytes (40 for IPv6) */
  uint32_t hdr;     /* IP + TCP/UDP header bytes */
  uint32_t payload; /* bytes after hdr */
  int v6;           /* the IP header is IPv6 */
} weft_gso_t;

/* Per-socket scratch for recvmmsg/sendmmsg, sized once for `max` messages
 * (sock_io.c). */
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
  int rcvbuf; /* bytes, 0 = leave the kernel default */
  int sndbuf;
  int gro;      /* enable UDP_GRO */
  int pmtudisc; /* -1 leave, else IP_PMTUDISC_* (IPV6_PMTUDISC_* on IPv6: the same numbers) */
} weft_sock_opts_t;
int weft_udp4_open(uint32_t addr, uint16_t port, const weft_sock_opts_t *o);
/* IPv6 only (IPV6_V6ONLY), so an IPv4 socket can bind the same port beside it */
int weft_udp6_open(const uint8_t addr[16], uint16_t port, const weft_sock_opts_t *o);
int weft_raw4_open(int protocol, uint32_t bind_addr, const weft_sock_opts_t *o);
int weft_sock_local_port(int fd);
int weft_sock_set_gro(int fd, int on);
int weft_sock_steer_inner_flow(int fd, uint32_t n);
int weft_sock_buffers(int fd, int *rcvbuf, int *sndbuf);

/* tun_io.c (TUN/TAP fds) and sock_io.c (sockets): return packets moved (>= 0)
 * or -errno for a failure that is not about one packet (e.g. EBADF). EAGAIN
 * is never an error: it ends the batch. */
int weft_fd_read_batch(int fd, const weft_rx_t *rx, double *ctr);
int weft_fd_write_batch(int fd, const weft_tx_t *tx, uint32_t count, double *ctr);
int weft_sock_recv_batch(int fd, int kind, weft_mmsg_t *m, const weft_rx_t *rx, double *ctr);
int weft_sock_send_batch(int fd, int kind, weft_mmsg_t *m, const weft_tx_t *tx, uint32_t count, double *ctr);

/* gso.c */
uint64_t weft_csum_add(const uint8_t *p, size_t n, uint64_t sum);
uint16_t weft_csum_fold(uint64_t sum);
int weft_csum_finish(uint8_t *pkt, size_t len, size_t start, size_t offset);
int weft_inner_check(uint8_t *ip, size_t len);
int weft_gso_parse(const uint8_t *ip, size_t len, uint32_t type, weft_gso_t *g);
void weft_gso_segment(uint8_t *out, const uint8_t *prefix, uint32_t prefix_len, const uint8_t *ip, const weft_gso_t *g,
                      uint32_t mss, uint32_t j, uint32_t chunk, int last, int partial);

/* probe.c */
typedef struct {
  int udp_gso, udp_gro;             /* 1 yes, 0 no */
  int tun_present;                  /* /dev/net/tun opens */
  int tun_vnet_hdr, tun_multiqueue; /* from TUNGETFEATURES */
  int tun_tso, tun_uso;             /* 1 yes, 0 no, -errno could not probe */
} weft_offloads_t;
void weft_probe_offloads(weft_offloads_t *out);

/* spawn.c: start argv (PATH searched) on three new pipes without fork();
 * returns the pid and fds = {child's stdin (write), stdout (read), stderr
 * (read)}, or -errno (ENOENT/EACCES: no program to run) */
int weft_spawn(char *const argv[], int fds[3]);
/* reap pid if it has ended: 1 (code = exit status or -1, sig = signal or 0),
 * 0 still running, -errno */
int weft_spawn_wait(int pid, int *code, int *sig);

/* busy.c: when to keep the event loop polling instead of sleeping (see busy.c) */
#define WEFT_BUSY_LIGHT_PACKETS 8       /* a batch of at most this many packets ... */
#define WEFT_BUSY_LIGHT_BYTES 4096u     /* ... and bytes is light: polling goes on */
#define WEFT_BUSY_SUSPEND_NS 100000000u /* a heavy batch stops polling for 100 ms */
typedef struct {
  uint64_t window;          /* ns to keep polling after the last light batch; 0 = never */
  uint64_t deadline;        /* polling stops here unless a light batch comes */
  uint64_t suspended_until; /* heavy traffic: no polling before this */
  uint64_t last;            /* time of the last kick or turn while polling */
  int active;               /* polling now */
  int kicked;               /* a batch came since the last turn */
} weft_busy_t;
/* counters a busy poller keeps, in its own Float64Array */
enum weft_busy_counter {
  WEFT_BUSY_NS = 0,    /* ns spent polling and finding nothing */
  WEFT_BUSY_CAUGHT,    /* light batches read while polling: each found the loop awake */
  WEFT_BUSY_SUSPENDED, /* times heavy traffic began: polling held off (polling or not at the time) */
  WEFT_BUSY_COUNTER_COUNT
};
enum { WEFT_BUSY_STOP = 0, WEFT_BUSY_GO = 1 };
void weft_busy_init(weft_busy_t *b, uint64_t window_ns);
/* a batch of `packets` totalling `bytes` was read at `now`: 1 = start polling (it was off) */
int weft_busy_kick(weft_busy_t *b, uint64_t now, uint32_t packets, uint64_t bytes, double *ctr);
/* one loop turn while polling: WEFT_BUSY_GO to go on, WEFT_BUSY_STOP to stop */
int weft_busy_tick(weft_busy_t *b, uint64_t now, double *ctr);

/* peer_offload.c: tc BPF programs that carry what goes to and comes from
 * a peer in the kernel, IP-in-IP or VXLAN: one on a TUN's egress
 * encapsulates what an LPM map routes to a peer, one on the underlay's
 * ingress decapsulates what a known peer sent and hands it to the TUN as if
 * it had arrived there (see peer_offload.c) */
#define WEFT_OFFLOAD_TX_IPIP 1
#define WEFT_OFFLOAD_TX_VXLAN 2
#define WEFT_OFFLOAD_RX_IPIP 3
#define WEFT_OFFLOAD_RX_VXLAN 4
#define WEFT_OFFLOAD_PEERS 65536    /* map entries (one per peer subnet, or per peer address) */
#define WEFT_OFFLOAD_FLOWS 16384    /* flows whose super-packets the receive program left to weft */
#define WEFT_OFFLOAD_INSNS 256      /* room for a program */
#define WEFT_OFFLOAD_RX_PRIO 0x5746 /* the underlay's ingress filter's priority ("WF") */
typedef struct {
  uint32_t saddr;   /* our underlay address, network order */
  uint32_t daddr;   /* the peer's, network order */
  uint64_t packets; /* carried by the program (inner packets and bytes) */
  uint64_t bytes;
  uint32_t ifindex; /* send: the underlay device; receive: the TUN */
  uint32_t vni;     /* VXLAN: the header's second word, network order (VNI << 8) */
  uint8_t dmac[6];  /* VXLAN: the inner Ethernet header's destination (the peer's VTEP MAC) */
  uint8_t smac[6];  /* VXLAN: its source (ours); receive: what the inner frame must be sent to */
  uint16_t port;    /* VXLAN: the UDP port, network order */
  uint16_t pad;
  /* receive, network order: the peer's subnet, ours, and the network */
  uint32_t peer_net, peer_mask, our_net, our_mask, net, net_mask;
} weft_offload_peer_t;
/* loads the map and the program of `kind`: the program's fd (*map_fd the
 * map's), or -errno with the verifier's words in log */
int weft_offload_load(int kind, int *map_fd, char *log, size_t log_len);
/* attaches a send program to ifindex's egress (a clsact qdisc, a
 * direct-action filter: 0), or a receive program to its ingress: a tcx
 * link (its fd, > 0: closing it detaches), or on kernels before 6.6 a
 * filter (0) at WEFT_OFFLOAD_RX_PRIO, replacing the one a previous run
 * left, which weft_offload_detach takes off */
int weft_offload_attach(int ifindex, int prog_fd, int ingress);
/* removes the receive program's filter from ifindex's ingress (gone already: 0) */
int weft_offload_detach(int ifindex);
/* the map entry for prefix/prefix_len (prefix in network order) */
int weft_offload_set(int map_fd, uint32_t prefix_be, uint32_t prefix_len, const weft_offload_peer_t *peer);
int weft_offload_get(int map_fd, uint32_t prefix_be, uint32_t prefix_len, weft_offload_peer_t *peer);
int weft_offload_delete(int map_fd, uint32_t prefix_be, uint32_t prefix_len);
/* runs a program once on a frame (Ethernet first), as a super-packet of
 * gso_size if not 0 (BPF_PROG_TEST_RUN; for tests): 0 and its verdict in
 * *retval, or -errno */
int weft_offload_test_run(int prog_fd, const void *frame, size_t len, uint32_t gso_size, uint32_t *retval);

/* errno name ("EPERM"), never NULL */
const char *weft_errno_name(int err);

#ifdef __cplusplus
}
#endif
#endif
