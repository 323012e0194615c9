#!/usr/bin/env bash
# Capture VXLAN frames produced by the Linux kernel's own vxlan driver, set up
# the way flanneld's vxlan backend sets up flannel.1, and print them as a
# TypeScript module of test vectors (on stdout).
#
#   sudo test/packet/vectors/capture-kernel-vxlan.sh > test/packet/vectors/kernel-vxlan.ts
#
# Everything happens inside two network namespaces created here (unique names
# containing $$), joined by a veth pair; no traffic touches the host's
# interfaces. The namespaces and tcpdump are removed on exit, even on error.
# Requires root, iproute2 (ip, bridge), tcpdump, ping (iputils), ethtool.
set -euo pipefail

NS_A="weft-vxA-$$"
NS_B="weft-vxB-$$"
VETH_A="wv$$a"            # IFNAMSIZ is 16; keep names short
VETH_B="wv$$b"
PCAP="$(mktemp /tmp/weft-vxlan-XXXXXX.pcap)"
PCAP_PARTIAL="$(mktemp /tmp/weft-vxlan-partial-XXXXXX.pcap)"
TCPDUMP_PID=""

# Fixed MACs so that frames are reproducible (02: = locally administered).
UNDERLAY_MAC_A="02:00:c6:12:00:01"
UNDERLAY_MAC_B="02:00:c6:12:00:02"
VTEP_MAC_A="02:77:65:66:74:01"     # "weft" + node number
VTEP_MAC_B="02:77:65:66:74:02"
UNDERLAY_A="198.18.0.1"
UNDERLAY_B="198.18.0.2"
VTEP_A="10.244.1.0"
VTEP_B="10.244.2.0"
VNI=1
PORT=8472
UDP_PAYLOAD="weft kernel vxlan vector"

cleanup() {
  local rc=$?
  if [[ -n "$TCPDUMP_PID" ]] && kill -0 "$TCPDUMP_PID" 2>/dev/null; then
    kill "$TCPDUMP_PID" 2>/dev/null || true
    wait "$TCPDUMP_PID" 2>/dev/null || true
  fi
  ip netns del "$NS_A" 2>/dev/null || true   # deleting a netns also deletes its veth end,
  ip netns del "$NS_B" 2>/dev/null || true   # which takes the peer with it
  rm -f "$PCAP" "$PCAP_PARTIAL"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $EUID -eq 0 ]] || { echo "must run as root" >&2; exit 1; }

ip netns add "$NS_A"
ip netns add "$NS_B"
for ns in "$NS_A" "$NS_B"; do
  ip -n "$ns" link set lo up
  # No IPv6: keeps router/neighbour solicitations out of the capture.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done

ip -n "$NS_A" link add "$VETH_A" address "$UNDERLAY_MAC_A" type veth \
  peer name "$VETH_B" address "$UNDERLAY_MAC_B" netns "$NS_B"
ip -n "$NS_A" addr add "$UNDERLAY_A/24" dev "$VETH_A"
ip -n "$NS_B" addr add "$UNDERLAY_B/24" dev "$VETH_B"
ip -n "$NS_A" link set "$VETH_A" up
ip -n "$NS_B" link set "$VETH_B" up

# setup_vtep NS LOCAL_UNDERLAY VETH VTEP_MAC VTEP_IP PEER_MAC PEER_VTEP_IP PEER_UNDERLAY
# Mirrors flanneld (pkg/backend/vxlan): vxlan device with nolearning, MTU
# underlay-50, a /32 address, and per-peer permanent neighbour + FDB entries
# and an onlink route to the peer's /24.
setup_vtep() {
  local ns=$1 local_ip=$2 veth=$3 mac=$4 vtep_ip=$5 peer_mac=$6 peer_vtep=$7 peer_ul=$8
  ip -n "$ns" link add flannel.1 address "$mac" type vxlan id "$VNI" local "$local_ip" \
    dev "$veth" dstport "$PORT" nolearning
  ip -n "$ns" link set flannel.1 mtu 1450 up
  ip -n "$ns" addr add "$vtep_ip/32" dev flannel.1
  ip -n "$ns" neigh add "$peer_vtep" lladdr "$peer_mac" dev flannel.1 nud permanent
  ip netns exec "$ns" bridge fdb append "$peer_mac" dev flannel.1 dst "$peer_ul"
  # flannel's VTEP address is the .0 of the node's /24, so it names the subnet too.
  ip -n "$ns" route add "$peer_vtep/24" via "$peer_vtep" dev flannel.1 onlink
}
setup_vtep "$NS_A" "$UNDERLAY_A" "$VETH_A" "$VTEP_MAC_A" "$VTEP_A" "$VTEP_MAC_B" "$VTEP_B" "$UNDERLAY_B"
setup_vtep "$NS_B" "$UNDERLAY_B" "$VETH_B" "$VTEP_MAC_B" "$VTEP_B" "$VTEP_MAC_A" "$VTEP_A" "$UNDERLAY_A"
# Static underlay neighbours: no ARP on the veth, so the first encapsulated
# packet is not delayed or dropped while the kernel resolves the peer.
ip -n "$NS_A" neigh add "$UNDERLAY_B" lladdr "$UNDERLAY_MAC_B" dev "$VETH_A" nud permanent
ip -n "$NS_B" neigh add "$UNDERLAY_A" lladdr "$UNDERLAY_MAC_A" dev "$VETH_B" nud permanent

# start_capture FILE / stop_capture: tcpdump on A's underlay veth sees both
# directions. -U and --immediate-mode: hand over and write each packet at once;
# otherwise packets still in a TPACKET_V3 block when we stop tcpdump are lost.
start_capture() {
  ip netns exec "$NS_A" tcpdump -i "$VETH_A" -U --immediate-mode -n -s 0 -w "$1" "udp port $PORT" 2>/dev/null &
  TCPDUMP_PID=$!
  for _ in $(seq 50); do            # wait until tcpdump has written the pcap header
    [[ -s "$1" ]] && break
    sleep 0.1
  done
  sleep 0.3
}
stop_capture() {
  sleep 0.5
  kill "$TCPDUMP_PID"
  wait "$TCPDUMP_PID" 2>/dev/null || true
  TCPDUMP_PID=""
}
send_udp() {  # one datagram via bash's /dev/udp; nobody listens, so B answers ICMP port unreachable
  ip netns exec "$NS_A" bash -c "printf '%s' '$UDP_PAYLOAD' > /dev/udp/$VTEP_B/5000"
}

# Phase 1, default offloads. veth advertises TX checksum offload, so the
# kernel leaves UDP checksums CHECKSUM_PARTIAL (only the pseudo-header sum is
# in the field) and tcpdump, which taps before any "hardware", sees that seed.
# This is what a userspace dataplane reading a veth with AF_PACKET gets.
start_capture "$PCAP_PARTIAL"
ip netns exec "$NS_A" ping -c 1 -s 56 -W 1 "$VTEP_B" >/dev/null
send_udp
stop_capture

# Phase 2, TX checksum offload off on both veths: the stack completes every
# checksum in software before the tap, so frames are as they would be on a wire.
ip netns exec "$NS_A" ethtool -K "$VETH_A" tx off >/dev/null
ip netns exec "$NS_B" ethtool -K "$VETH_B" tx off >/dev/null
start_capture "$PCAP"
ip netns exec "$NS_A" ping -c 2 -i 0.2 -s 56 -W 1 "$VTEP_B" >/dev/null
ip netns exec "$NS_A" ping -c 1 -s 1400 -W 1 "$VTEP_B" >/dev/null
# Bigger than flannel.1's MTU (1450): the kernel fragments the inner packet
# before encapsulation, giving vectors of VXLAN-carried IPv4 fragments.
ip netns exec "$NS_A" ping -c 1 -s 2000 -W 1 "$VTEP_B" >/dev/null
send_udp
stop_capture

KERNEL="$(uname -r)"
TCPDUMP_VERSION="$(tcpdump --version 2>&1 | head -n1)"
DATE="$(date -u +%Y-%m-%d)"

# print_frames PCAP: one TS object per frame. tcpdump -xx prints the whole
# frame (link-layer header included) as hex lines after its text lines; a hex
# block starts at offset 0x0000. (tcpdump calls port 8472 "OTV", a protocol
# whose header has the same layout as VXLAN's.)
print_frames() {
  tcpdump -r "$1" -n -t -v -xx 2>/dev/null | awk '
    /^\t0x[0-9a-f]+:/ {
      if ($1 == "0x0000:") { if (hex != "") print cur "\t" hex; cur = pend; pend = ""; hex = "" }
      for (i = 2; i <= NF; i++) hex = hex $i
      next
    }
    { sub(/^[ \t]+/, ""); sub(/[ \t]+$/, ""); pend = (pend == "" ? $0 : pend " | " $0) }
    END { if (hex != "") print cur "\t" hex }
  ' | while IFS=$'\t' read -r summary hex; do
    summary="${summary//\\/\\\\}"
    summary="${summary//\'/\\\'}"
    printf "  {\n    summary:\n      '%s',\n    hex:\n      '%s',\n  },\n" "$summary" "$hex"
  done
}

cat <<TS
// GENERATED by test/packet/vectors/capture-kernel-vxlan.sh -- do not edit.
//
// Whole outer Ethernet frames captured from the Linux kernel's own vxlan driver.
// How: as root, \`test/packet/vectors/capture-kernel-vxlan.sh > test/packet/vectors/kernel-vxlan.ts\`
// on Linux $KERNEL ($DATE, $TCPDUMP_VERSION). The script creates two network
// namespaces joined by a veth pair (underlay $UNDERLAY_A/24 <-> $UNDERLAY_B/24), and in each a
// flanneld-style VTEP: \`ip link add flannel.1 address <mac> type vxlan id $VNI local <underlay ip>
// dev <veth> dstport $PORT nolearning\`, mtu 1450, address $VTEP_A/32 resp. $VTEP_B/32, a permanent
// neighbour entry and \`bridge fdb append\` for the peer VTEP, and
// \`ip route add <peer>/24 via <peer vtep> dev flannel.1 onlink\`. Captured on A's veth with
// \`tcpdump -w\` and filter "udp port $PORT", dumped with \`tcpdump -r -xx\`.
//
// KERNEL_VXLAN_FRAMES (veth TX checksum offload off, so checksums are complete as on a wire),
// from A to $VTEP_B: \`ping -c 2 -s 56\`, \`ping -c 1 -s 1400\`, \`ping -c 1 -s 2000\` (fragmented by
// the kernel at flannel.1's MTU) and one UDP datagram to port 5000 via bash /dev/udp
// (payload "$UDP_PAYLOAD"; B replies ICMP port unreachable).
// KERNEL_VXLAN_FRAMES_CSUM_PARTIAL (default veth offloads): \`ping -c 1 -s 56\` and the same UDP
// datagram; UDP checksum fields hold the CHECKSUM_PARTIAL pseudo-header seed, not a checksum.
//
// Kernel-chosen fields (outer/inner IP ID, outer UDP source port, ICMP echo id, the
// UDP datagram's source port, ping payload timestamps) differ from run to run.

/** One captured frame: tcpdump's text for it (lines joined by ' | ') and its bytes as hex. */
export interface KernelVxlanFrame {
  readonly summary: string;
  readonly hex: string;
}

export const KERNEL_VXLAN_SETUP = {
  kernel: '$KERNEL',
  vni: $VNI,
  port: $PORT,
  underlayMacA: '$UNDERLAY_MAC_A',
  underlayMacB: '$UNDERLAY_MAC_B',
  underlayIpA: '$UNDERLAY_A',
  underlayIpB: '$UNDERLAY_B',
  vtepMacA: '$VTEP_MAC_A',
  vtepMacB: '$VTEP_MAC_B',
  vtepIpA: '$VTEP_A',
  vtepIpB: '$VTEP_B',
  udpPayload: '$UDP_PAYLOAD',
} as const;

export const KERNEL_VXLAN_FRAMES: readonly KernelVxlanFrame[] = [
TS
print_frames "$PCAP"
echo "];"
echo
echo "export const KERNEL_VXLAN_FRAMES_CSUM_PARTIAL: readonly KernelVxlanFrame[] = ["
print_frames "$PCAP_PARTIAL"
echo "];"
