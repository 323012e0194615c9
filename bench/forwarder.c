// The benchmark's floor for a userspace tunnel: the least a TUN-based
// forwarder can do, one packet per system call, no offloads, no batching, no
// checks. The bench runs it as its own path (`forwarder`) so the same run
// shows what any TUN-and-socket design costs before weft's own code: its
// ping RTT is the floor for weft's, and its throughput is the
// one-packet-per-syscall class weft is built to leave behind. Not part of
// weft; compiled by bench/forwarder.ts at run time.
//
// 1. open the TUN device NAME (IFF_TUN | IFF_NO_PI, non-blocking) and a UDP
//    socket bound to LOCAL:8472; print "ready"
// 2. wait in epoll until either is readable
// 3. TUN -> UDP: each IP packet read goes out as one datagram to PEER:8472,
//    behind an 8-byte VXLAN header (VNI 1) and a 14-byte inner Ethernet
//    header, the bytes weft's VXLAN adds
// 4. UDP -> TUN: each datagram longer than those 22 bytes is written to the
//    TUN without them
// 5. until both would block, then back to 2; exit after SECONDS (a bound, so
//    a forgotten process cannot outlive the benchmark)
//
// usage: forwarder NAME LOCAL_IP PEER_IP SECONDS
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define PORT 8472
#define HDR 22 /* VXLAN 8 + inner Ethernet 14 */

static void die(const char *what) {
  perror(what);
  exit(1);
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: forwarder NAME LOCAL_IP PEER_IP SECONDS\n");
    return 2;
  }
  int tun = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (tun < 0) die("open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  if (ioctl(tun, TUNSETIFF, &ifr) < 0) die("TUNSETIFF");

  struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(PORT)};
  struct sockaddr_in peer = local;
  if (inet_pton(AF_INET, argv[2], &local.sin_addr) != 1) die("LOCAL_IP");
  if (inet_pton(AF_INET, argv[3], &peer.sin_addr) != 1) die("PEER_IP");
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (sock < 0) die("socket");
  if (bind(sock, (struct sockaddr *)&local, sizeof local) < 0) die("bind");
  alarm((unsigned)atoi(argv[4]));

  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = tun};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, tun, &ev) < 0) die("epoll_ctl");
  ev.data.fd = sock;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, sock, &ev) < 0) die("epoll_ctl");
  printf("ready\n");
  fflush(stdout);

  static unsigned char buf[HDR + 65536];
  static const unsigned char hdr[HDR] = {0x08, 0, 0, 0, 0, 0, 1, 0, [20] = 0x08, [21] = 0x00};
  for (;;) {
    struct epoll_event evs[2];
    if (epoll_wait(ep, evs, 2, -1) < 0) continue; /* EINTR */
    int moved;
    do {
      moved = 0;
      ssize_t n = read(tun, buf + HDR, sizeof buf - HDR);
      if (n > 0) {
        memcpy(buf, hdr, HDR);
        sendto(sock, buf, (size_t)n + HDR, 0, (struct sockaddr *)&peer, sizeof peer);
        moved = 1;
      }
      n = recv(sock, buf, sizeof buf, 0);
      if (n > HDR) {
        if (write(tun, buf + HDR, (size_t)n - HDR) < 0) { /* full or down: dropped, as a tunnel would */
        }
        moved = 1;
      }
    } while (moved);
  }
}
