/*
 * TUN/TAP devices and the two link settings weft needs before traffic flows.
 *
 * 1. open /dev/net/tun non-blocking (uv_poll drives readiness; nothing blocks)
 * 2. TUNSETIFF with IFF_NO_PI (no 4-byte packet-info prefix: packets start at
 *    the IP header, or the Ethernet header for TAP), optionally IFF_VNET_HDR
 *    (a virtio_net_hdr precedes each packet: the door to TSO/GRO) and
 *    IFF_MULTI_QUEUE (one fd per queue, so a second core can serve a queue)
 * 3. MTU and IFF_UP through SIOCSIF* on a throwaway socket, so weft does not
 *    need iproute2 for the device it owns
 */
#define _GNU_SOURCE
#include "weft.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int weft_tun_open(const char *name, int flags, char *out_name, const char **failed) {
  struct ifreq ifr;
  int fd, err;

  *failed = "ioctl(TUNSETIFF)";
  if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
  fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *failed = "open(/dev/net/tun)";
    return -errno;
  }

  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = (short)(((flags & WEFT_TUN_TAP) ? IFF_TAP : IFF_TUN) | IFF_NO_PI);
  if (flags & WEFT_TUN_VNET_HDR) ifr.ifr_flags |= IFF_VNET_HDR;
  if (flags & WEFT_TUN_MULTIQUEUE) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  if (flags & WEFT_TUN_EXCL) ifr.ifr_flags |= IFF_TUN_EXCL;
  memcpy(ifr.ifr_name, name, strlen(name));

  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    err = errno;
    close(fd);
    return -err;
  }
  memcpy(out_name, ifr.ifr_name, IFNAMSIZ);
  out_name[IFNAMSIZ - 1] = 0;
  return fd;
}

int weft_tun_set_offload(int fd, unsigned int offloads) {
  if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)offloads) < 0) return -errno;
  return 0;
}

int weft_tun_features(unsigned int *features) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  int err = 0;
  if (fd < 0) return -errno;
  if (ioctl(fd, TUNGETFEATURES, features) < 0) err = -errno;
  close(fd);
  return err;
}

/* SIOCSIF* work on any socket; an AF_INET datagram socket is the cheapest. */
static int ifreq_ioctl(const char *name, unsigned long req, struct ifreq *ifr) {
  int s, err = 0;
  if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
  memcpy(ifr->ifr_name, name, strlen(name) + 1);
  s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  if (ioctl(s, req, ifr) < 0) err = -errno;
  close(s);
  return err;
}

int weft_link_set_mtu(const char *name, int mtu) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_mtu = mtu;
  return ifreq_ioctl(name, SIOCSIFMTU, &ifr);
}

int weft_link_set_up(const char *name, int up) {
  struct ifreq ifr;
  int err;
  memset(&ifr, 0, sizeof ifr);
  if ((err = ifreq_ioctl(name, SIOCGIFFLAGS, &ifr)) < 0) return err;
  if (up)
    ifr.ifr_flags |= IFF_UP;
  else
    ifr.ifr_flags &= ~IFF_UP;
  return ifreq_ioctl(name, SIOCSIFFLAGS, &ifr);
}

int weft_link_index(const char *name) {
  struct ifreq ifr;
  int err;
  memset(&ifr, 0, sizeof ifr);
  if ((err = ifreq_ioctl(name, SIOCGIFINDEX, &ifr)) < 0) return err;
  return ifr.ifr_ifindex;
}
