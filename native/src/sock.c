/*
 * Underlay sockets: UDP over IPv4 or IPv6 (VXLAN, flannel's UDP backend) and
 * raw IPv4 for protocol 4 (IP-in-IP). Both are non-blocking; uv_poll tells us when to
 * read, and a full send queue shows up as EAGAIN, never as a blocked thread.
 *
 * Buffer sizes: a tunnel at multi-Gbit/s needs megabytes of socket buffer to
 * ride out a scheduling hiccup of the event loop. SO_*BUFFORCE (CAP_NET_ADMIN)
 * ignores net.core.*mem_max; without the capability we fall back to the
 * ordinary option, which the kernel clamps.
 */
#define _GNU_SOURCE
#include "weft.h"

#include <errno.h>
#include <netinet/ip.h>
#include <linux/filter.h>
#include <netinet/udp.h>
#include <string.h>
#include <unistd.h>

static int set_buffers(int fd, const weft_sock_opts_t *o) {
  if (o->rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &o->rcvbuf, sizeof o->rcvbuf) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o->rcvbuf, sizeof o->rcvbuf) < 0)
    return -errno;
  if (o->sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &o->sndbuf, sizeof o->sndbuf) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o->sndbuf, sizeof o->sndbuf) < 0)
    return -errno;
  return 0;
}

/* One pmtudisc value serves both families: the kernel numbers them alike. */
_Static_assert(IP_PMTUDISC_DONT == IPV6_PMTUDISC_DONT && IP_PMTUDISC_WANT == IPV6_PMTUDISC_WANT &&
                   IP_PMTUDISC_DO == IPV6_PMTUDISC_DO && IP_PMTUDISC_PROBE == IPV6_PMTUDISC_PROBE,
               "IPV6_PMTUDISC_* are IP_PMTUDISC_*");

static int apply_opts(int fd, int v6, const weft_sock_opts_t *o) {
  int one = 1, err;
  if ((err = set_buffers(fd, o)) < 0) return err;
  if (o->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) return -errno;
  if (o->pmtudisc >= 0 && setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MTU_DISCOVER : IP_MTU_DISCOVER,
                                     &o->pmtudisc, sizeof o->pmtudisc) < 0)
    return -errno;
  return 0;
}

/* Both UDP families once the local address is built: options, GRO, bind. */
static int udp_open(const struct sockaddr *sa, socklen_t salen, const weft_sock_opts_t *o) {
  int v6 = sa->sa_family == AF_INET6, fd, err, one = 1;

  fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  /* never IPv4-mapped: the IPv4 socket of a dual-stack node takes the same port */
  if (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) {
    err = -errno;
    goto fail;
  }
  if ((err = apply_opts(fd, v6, o)) < 0) goto fail;
  if (o->gro && (err = weft_sock_set_gro(fd, 1)) < 0) goto fail;
  if (bind(fd, sa, salen) < 0) {
    err = -errno;
    goto fail;
  }
  return fd;
fail:
  close(fd);
  return err;
}

int weft_udp4_open(uint32_t addr, uint16_t port, const weft_sock_opts_t *o) {
  struct sockaddr_in sin;

  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(addr);
  sin.sin_port = htons(port);
  return udp_open((struct sockaddr *)&sin, sizeof sin, o);
}

int weft_udp6_open(const uint8_t addr[16], uint16_t port, const weft_sock_opts_t *o) {
  struct sockaddr_in6 sin6;

  memset(&sin6, 0, sizeof sin6);
  sin6.sin6_family = AF_INET6;
  memcpy(&sin6.sin6_addr, addr, 16);
  sin6.sin6_port = htons(port);
  return udp_open((struct sockaddr *)&sin6, sizeof sin6, o);
}

int weft_raw4_open(int protocol, uint32_t bind_addr, const weft_sock_opts_t *o) {
  struct sockaddr_in sin;
  int fd, err;

  fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return -errno;
  if ((err = apply_opts(fd, 0, o)) < 0) goto fail;
  if (bind_addr != 0) {
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(bind_addr);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
      err = -errno;
      goto fail;
    }
  }
  return fd;
fail:
  close(fd);
  return err;
}

int weft_sock_local_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
  if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return -EAFNOSUPPORT;
}

int weft_sock_set_gro(int fd, int on) {
  if (setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) < 0) return -errno;
  return 0;
}

int weft_sock_buffers(int fd, int *rcvbuf, int *sndbuf) {
  socklen_t len = sizeof *rcvbuf;
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf, &len) < 0) return -errno;
  len = sizeof *sndbuf;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, sndbuf, &len) < 0) return -errno;
  return 0;
}

/*
 * Steer each VXLAN datagram to one of `n` SO_REUSEPORT sockets by its inner
 * flow, so that every packet of a TCP connection lands in the same worker
 * (the kernel's own reuseport hash uses the outer 4-tuple, which between two
 * weft nodes is the same for every flow: port 8472 at both ends).
 * A reuseport cBPF program sees the datagram from its UDP payload on:
 *   0 VXLAN header (8), 8 inner Ethernet (14), 22 inner IPv4 or IPv6
 * The flow key is the XOR of the inner source, destination and the first 4
 * bytes after the IP header (TCP/UDP ports): IPv4's one word each, IPv6's
 * four words of each address and the word after its 40-byte header (a
 * packet with extension headers gets a key of other bytes, the same for
 * every packet of its flow). The key's halves are folded together,
 * multiplied by 2^32 / phi and taken from the product's high half, modulo
 * n. Without the fold the client's port (the high half) would never reach
 * the bits taken, and without the multiply the modulo would take the low
 * bit alone, which is the same for every client flow: Linux gives
 * connect()ing sockets even ports. A datagram too short to hold the key
 * makes the program return 0: the first socket.
 */
#define V6_ADDR_WORD(k)                                                                         \
  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 22 + 8 + 4 * (k)), BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0), \
      BPF_STMT(BPF_MISC | BPF_TAX, 0)
int weft_sock_steer_inner_flow(int fd, uint32_t n) {
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 22), /* A = inner version */
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 4),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 11, 0), /* IPv6: past the 11 of IPv4 */
      /* IPv4 */
      BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 22),     /* X = inner IHL * 4 */
      BPF_STMT(BPF_LD | BPF_W | BPF_IND, 22),      /* A = the inner ports */
      BPF_STMT(BPF_ST, 0),                         /* M[0] = A */
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 22 + 12), /* A = inner source */
      BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),      /* X = M[0] */
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
      BPF_STMT(BPF_ST, 0),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 22 + 16), /* A = inner destination */
      BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
      BPF_STMT(BPF_JMP | BPF_JA, 26), /* to the fold, past the 26 of IPv6 */
      /* IPv6: X = ports, then X ^= each address word (through A) */
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 22 + 40),
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      V6_ADDR_WORD(0),
      V6_ADDR_WORD(1),
      V6_ADDR_WORD(2),
      V6_ADDR_WORD(3),
      V6_ADDR_WORD(4),
      V6_ADDR_WORD(5),
      V6_ADDR_WORD(6),
      V6_ADDR_WORD(7),
      /* the fold: A ^= A >> 16 */
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
      BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9e3779b1),
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
      BPF_STMT(BPF_RET | BPF_A, 0),
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
  if (n == 0) return -EINVAL;
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0) return -errno;
  return 0;
}
