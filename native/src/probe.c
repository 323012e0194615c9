/*
 * What offloads this kernel (and our privileges) allow. The pipeline picks its
 * shape from this: super-packets only if TUN vnet-header TSO works, GSO sends
 * only if UDP_SEGMENT is accepted, GRO reads only if UDP_GRO is.
 *
 * TSO/USO can only be asked of an attached TUN device, so the probe creates a
 * transient one ("wprobe%d"); it vanishes when the fd closes. Without
 * CAP_NET_ADMIN that step reports -EPERM instead of a guess.
 */
#define _GNU_SOURCE
#include "weft.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void probe_udp(weft_offloads_t *out) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int v = 1400, got = 0;
  socklen_t len = sizeof got;
  if (fd < 0) return;
  out->udp_gso = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, sizeof v) == 0;
  v = 1;
  /* getsockopt(UDP_GRO) only exists since 5.12; older kernels accept the
   * setsockopt but mis-deliver, which is why wireguard-go checks both. */
  out->udp_gro = setsockopt(fd, SOL_UDP, UDP_GRO, &v, sizeof v) == 0 &&
                 getsockopt(fd, SOL_UDP, UDP_GRO, &got, &len) == 0 && got == 1;
  close(fd);
}

static void probe_tun(weft_offloads_t *out) {
  unsigned int features = 0;
  struct ifreq ifr;
  int fd, err;

  err = weft_tun_features(&features);
  out->tun_present = err == 0;
  if (err < 0) {
    out->tun_tso = out->tun_uso = err;
    return;
  }
  out->tun_vnet_hdr = (features & IFF_VNET_HDR) != 0;
  out->tun_multiqueue = (features & IFF_MULTI_QUEUE) != 0;

  fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    out->tun_tso = out->tun_uso = -errno;
    return;
  }
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
  strcpy(ifr.ifr_name, "wprobe%d");
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    out->tun_tso = out->tun_uso = -errno;
    close(fd);
    return;
  }
  out->tun_tso = ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) == 0;
  out->tun_uso =
      ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6)) == 0;
  close(fd);
}

void weft_probe_offloads(weft_offloads_t *out) {
  memset(out, 0, sizeof *out);
  probe_udp(out);
  probe_tun(out);
}

const char *weft_errno_name(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "EUNKNOWN";
}

const char *const weft_counter_names[WEFT_COUNTER_COUNT] = {
    "rxPackets",     "rxBytes",       "rxSyscalls",        "rxBatches",      "rxEagain",      "rxDropTruncated",
    "rxDropError",   "rxGroSegments", "txPackets",         "txBytes",        "txSyscalls",    "txBatches",
    "txEagain",      "txDropTooBig",  "txDropUnreachable", "txDropBadSlot",  "txDropBadDest", "txDropError",
    "txGsoSegments", "lastErrno",     "rxSuperPackets",    "rxCsumFinished", "txSegmented",   "txDropBadGso",
    "txGsoRefused",  "txCoalesced",   "txWritev",          "txCsumPartial",  "rxCsumRemote",
};
