/*
 * Peer offload: tc BPF programs that carry, in the kernel, what goes to a
 * peer (on the egress of weft's TUN) and what comes from one (on the
 * underlay's ingress): IP-in-IP (the ipip backend) or VXLAN (weft.<VNI>).
 *
 * Sending.
 *
 * Why: the kernel segments a tunnel's super-packet only if it is marked as
 * one (SKB_GSO_IPXIP4, SKB_GSO_UDP_TUNNEL), and nothing userspace can write
 * (a raw socket, the TUN's virtio header, a packet socket) carries that
 * mark. weft's raw socket therefore sent IP-in-IP one segment at a time (a
 * sixth of VXLAN's rate), and its VXLAN sends cost a copy of every byte
 * out of the TUN and another into the socket. bpf_skb_adjust_room() with
 * the ENCAP flags sets the mark (kernel 5.2; 5.11 for VXLAN's inner
 * Ethernet), ipip or vxlan module or not.
 *
 * The program does no protocol work of its own: weft (TypeScript) decides,
 * per lease, which subnet goes to which peer with which headers, and writes
 * that into an LPM map; the program applies it.
 * 1. the packet the kernel routed into the TUN: an IPv4 header, its
 *    destination looked up in the map (longest prefix)
 * 2. no entry (no peer, a broadcast, anything weft must answer): TC_ACT_OK,
 *    the packet goes on into the TUN and weft's own pipeline, as before
 * 3. an entry: room in front for the headers, marked as the kernel's own
 *    tunnels mark it; the headers written from the entry (IPv4 from our
 *    address to the peer's, TTL 64, DF, its checksum; for VXLAN a UDP
 *    header from a port picked by flow hash to the VXLAN port (8472) without a checksum, as
 *    flannel.1 sends, the VNI, and an inner Ethernet header from our VTEP
 *    MAC to the peer's); the kernel's GSO rewrites lengths, ids and
 *    checksums per segment; the entry's counters bumped
 * 4. bpf_redirect_neigh() to the underlay: the kernel routes and resolves
 *    the next hop, and segments the packet (in the NIC, or in software) on
 *    its way out. It expects an Ethernet header in front (tc programs
 *    mostly run on Ethernet devices), which a TUN's packets lack: 14 bytes
 *    of zeros stand in, and it replaces them
 *
 * Receiving (assemble_rx). Why: every packet a peer sends otherwise wakes
 * weft, is copied out of the socket and into the TUN, and waits for weft's
 * turn on the CPU; a round trip took four times kernel VXLAN's, and one
 * thread received all of a node's streams. The program takes only what
 * weft would have delivered unchanged, and hands anything else to weft:
 * 1. the frame's headers: outer IPv4 without options, not a fragment, to
 *    us, protocol 4 (or UDP to the VXLAN port, VXLAN's I flag alone (no
 *    remote checksum offload), the VNI, an inner Ethernet header to our
 *    VTEP MAC); an inner IPv4 packet. A UDP checksum
 *    is not checked here, as the kernel's VXLAN would: what it covers is
 *    either compared above or covered again by the inner packet's own
 *    checksums, and bpf_skb_adjust_room() moves a NIC's "checksum
 *    verified" from the outer header to the inner one as a decapsulation
 *    must
 *    Inner UDP is left to weft: its pipeline paces a UDP flow's delivery,
 *    where the kernel's path hands a receiver bursts (docs/performance.md)
 * 2. the sender's entry, by its address (a /32 in the map): none, weft's
 *    socket takes it (an unknown sender is weft's to count and log)
 * 3. the inner packet's addresses as weft's pipeline judges them: to our
 *    subnet, from the sender's (or from outside the network, as a peer
 *    forwards its host's and external traffic, but not from our own
 *    address); anything else goes to weft, which drops and counts it
 * 4. an inner packet that fills the frame exactly (what an underlay's GRO
 *    merged into one UDP message does not); one that is not a
 *    super-packet, and whose flow's last super-packet went to weft within
 *    100 ms, goes to weft too, or it would overtake that super-packet
 *    still in weft's queue (a TCP receiver takes that for loss: its sender
 *    retransmits, and under cubic halves its window)
 * 5. the outer headers off, the entry's counters bumped; a super-packet
 *    only where the kernel can also clear its tunnel marks (else weft's
 *    pipeline reads it whole, as before, and the program notes its flow,
 *    by the inner addresses, with the time)
 * 6. bpf_redirect() into the TUN's ingress: the kernel routes the inner
 *    packet as if weft had written it to the TUN, super-packets whole
 *
 * The programs are assembled here rather than compiled: they are about a
 * hundred instructions each, and this way weft needs no clang or libbpf to
 * build or run. They are attached with rtnetlink (a clsact qdisc and a
 * direct-action bpf filter), which is what `tc filter add ... bpf da`
 * sends.
 */
#define _GNU_SOURCE
#include "weft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ------------------------------------------------------------ assembly -- */

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define MOV32_REG(d, s) INSN(BPF_ALU | BPF_MOV | BPF_X, d, s, 0, 0)
#define ALU64_IMM(op, d, i) INSN(BPF_ALU64 | (op) | BPF_K, d, 0, 0, i)
#define ALU64_REG(op, d, s) INSN(BPF_ALU64 | (op) | BPF_X, d, s, 0, 0)
#define TO_BE16(d) INSN(BPF_ALU | BPF_END | BPF_TO_BE, d, 0, 0, 16)
#define LDX(size, d, s, o) INSN(BPF_LDX | (size) | BPF_MEM, d, s, o, 0)
#define STX(size, d, s, o) INSN(BPF_STX | (size) | BPF_MEM, d, s, o, 0)
#define ST(size, d, o, i) INSN(BPF_ST | (size) | BPF_MEM, d, 0, o, i)
#define XADD64(d, s, o) INSN(BPF_STX | BPF_DW | BPF_ATOMIC, d, s, o, BPF_ADD)
#define JMP_IMM(op, d, i, o) INSN(BPF_JMP | (op) | BPF_K, d, 0, o, i)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
/* A jump to a label: the offset is filled in once the label's place is known. */
#define TO_PASS 0x7001
#define TO_DROP 0x7002
#define TO_SOURCE_OK 0x7003
#define TO_MARK 0x7004
#define JMP_REG(op, d, s, o) INSN(BPF_JMP | (op) | BPF_X, d, s, o, 0)

#define R0 0
#define R1 1
#define R2 2
#define R3 3
#define R4 4
#define R5 5
#define R6 6
#define R7 7
#define R8 8
#define R9 9
#define FP 10

/* Stack: the inner header (20), the outer headers (up to 56), the map key (8). */
#define INNER (-96)
#define OUTER (-72)
#define KEY (-8)

/* The map's value (weft_offload_peer_t in weft.h): our address and the peer's
 * (network order), the counters, the underlay's ifindex; for VXLAN the
 * header's second word, the peer's VTEP MAC and ours. */
#define V_SADDR 0
#define V_DADDR 4
#define V_PACKETS 8
#define V_BYTES 16
#define V_IFINDEX 24
#define V_VNI 28
#define V_DMAC 32
#define V_SMAC 38
#define V_PORT 44
#define V_PEER_NET 48
#define V_PEER_MASK 52
#define V_OUR_NET 56
#define V_OUR_MASK 60
#define V_NET 64
#define V_NET_MASK 68

/* What bpf_skb_adjust_room is asked for: the room marked as the kernel's own
 * tunnels mark it (SKB_GSO_IPXIP4, or SKB_GSO_UDP_TUNNEL with an inner
 * Ethernet header), gso_size kept: the TUN's MTU already leaves the room. */
#define IPIP_FLAGS (BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO)
#define VXLAN_FLAGS                                                                           \
  (BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_ENCAP_L2_ETH | \
   BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN) | BPF_F_ADJ_ROOM_FIXED_GSO)
#define VXLAN_HLEN (20 + 8 + 8 + ETH_HLEN)

/* past the room, instructions are counted but not written: the load refuses them */
#define EMIT(x)                             \
  do {                                      \
    if (n < WEFT_OFFLOAD_INSNS) p[n] = (x); \
    n++;                                    \
  } while (0)
/* r4 = a 64-bit immediate (two instructions) */
#define LD_IMM64(d, v)                                                      \
  do {                                                                      \
    EMIT(INSN(BPF_LD | BPF_DW | BPF_IMM, d, 0, 0, (int32_t)(uint32_t)(v))); \
    EMIT(INSN(0, 0, 0, 0, (int32_t)(uint32_t)((uint64_t)(v) >> 32)));       \
  } while (0)

/* The programs' common ends (pass, pass_code: on to the TUN or socket, as before;
 * drop, if the program drops: the verifier refuses what no jump reaches),
 * and their labelled jumps pointed at them (and at source_ok and mark, if
 * the program has them). Returns the count. */
static int labels(struct bpf_insn *p, int n, int pass_code, int drops, int source_ok, int mark) {
  const int pass = n;
  EMIT(MOV64_IMM(R0, pass_code));
  EMIT(EXIT());
  const int drop = n;
  if (drops) {
    EMIT(MOV64_IMM(R0, TC_ACT_SHOT));
    EMIT(EXIT());
  }
  for (int i = 0; i < n && i < WEFT_OFFLOAD_INSNS; i++) {
    if ((p[i].code & 0x07) != BPF_JMP || p[i].code == (BPF_JMP | BPF_CALL) || p[i].code == (BPF_JMP | BPF_EXIT))
      continue;
    const int to = p[i].off == TO_PASS        ? pass
                   : p[i].off == TO_DROP      ? drop
                   : p[i].off == TO_SOURCE_OK ? source_ok
                   : p[i].off == TO_MARK      ? mark
                                              : -1;
    if (to >= 0) p[i].off = (int16_t)(to - i - 1);
  }
  return n;
}

/* The entry for the /32 of the address at the stack's `addr` (network
 * order), in r7; none: on to the pass label. Returns the count. */
static int lookup(struct bpf_insn *p, int n, int map_fd, int addr) {
  EMIT(ST(BPF_W, FP, KEY, 32));
  EMIT(LDX(BPF_W, R1, FP, addr));
  EMIT(STX(BPF_W, FP, R1, KEY + 4));
  EMIT(INSN(BPF_LD | BPF_DW | BPF_IMM, R1, BPF_PSEUDO_MAP_FD, 0, map_fd));
  EMIT(INSN(0, 0, 0, 0, 0));
  EMIT(MOV64_REG(R2, FP));
  EMIT(ALU64_IMM(BPF_ADD, R2, KEY));
  EMIT(CALL(BPF_FUNC_map_lookup_elem));
  EMIT(JMP_IMM(BPF_JEQ, R0, 0, TO_PASS));
  EMIT(MOV64_REG(R7, R0));
  return n;
}

/* Fills prog (room for WEFT_OFFLOAD_INSNS) with a send program for the map
 * `map_fd`; returns the count. */
static int assemble_tx(struct bpf_insn *p, int map_fd, int kind) {
  int n = 0;
  const int hlen = kind == WEFT_OFFLOAD_TX_VXLAN ? VXLAN_HLEN : 20;
  EMIT(MOV64_REG(R6, R1));
  /* 1. the inner IPv4 header, to the stack */
  EMIT(MOV64_REG(R1, R6));
  EMIT(MOV64_IMM(R2, 0));
  EMIT(MOV64_REG(R3, FP));
  EMIT(ALU64_IMM(BPF_ADD, R3, INNER));
  EMIT(MOV64_IMM(R4, 20));
  EMIT(CALL(BPF_FUNC_skb_load_bytes));
  EMIT(JMP_IMM(BPF_JNE, R0, 0, TO_PASS));
  EMIT(LDX(BPF_B, R1, FP, INNER));
  EMIT(ALU64_IMM(BPF_AND, R1, 0xf0));
  EMIT(JMP_IMM(BPF_JNE, R1, 0x40, TO_PASS));
  /*    its destination's entry; 2. no peer: weft's pipeline takes it */
  n = lookup(p, n, map_fd, INNER + 16);
  /* 3. the room, marked (r9: the inner length, r8: the outer) */
  EMIT(LDX(BPF_W, R9, R6, 0 /* __sk_buff.len */));
  EMIT(MOV64_REG(R8, R9));
  EMIT(ALU64_IMM(BPF_ADD, R8, hlen));
  EMIT(MOV64_REG(R1, R6));
  EMIT(MOV64_IMM(R2, hlen));
  EMIT(MOV64_IMM(R3, BPF_ADJ_ROOM_MAC));
  if (kind == WEFT_OFFLOAD_TX_VXLAN)
    LD_IMM64(R4, VXLAN_FLAGS);
  else
    EMIT(MOV64_IMM(R4, IPIP_FLAGS));
  EMIT(CALL(BPF_FUNC_skb_adjust_room));
  /*    refused (an unusual packet): nothing changed, weft's pipeline takes it */
  EMIT(JMP_IMM(BPF_JNE, R0, 0, TO_PASS));
  /*    the outer IPv4 header: TTL 64, DF, its length, our address and the peer's */
  EMIT(ST(BPF_B, FP, OUTER, 0x45));
  EMIT(ST(BPF_B, FP, OUTER + 1, 0));
  EMIT(MOV64_REG(R1, R8));
  EMIT(TO_BE16(R1));
  EMIT(STX(BPF_H, FP, R1, OUTER + 2));
  EMIT(ST(BPF_H, FP, OUTER + 4, 0));
  EMIT(ST(BPF_B, FP, OUTER + 6, 0x40 /* DF */));
  EMIT(ST(BPF_B, FP, OUTER + 7, 0));
  EMIT(ST(BPF_B, FP, OUTER + 8, 64));
  EMIT(ST(BPF_B, FP, OUTER + 9, kind == WEFT_OFFLOAD_TX_VXLAN ? 17 /* UDP */ : 4 /* IPIP */));
  EMIT(ST(BPF_H, FP, OUTER + 10, 0));
  EMIT(LDX(BPF_W, R1, R7, V_SADDR));
  EMIT(STX(BPF_W, FP, R1, OUTER + 12));
  EMIT(LDX(BPF_W, R1, R7, V_DADDR));
  EMIT(STX(BPF_W, FP, R1, OUTER + 16));
  if (kind == WEFT_OFFLOAD_TX_VXLAN) {
    /* UDP: a source port per inner flow, as the kernel's VXLAN picks it
     * (from the flow hash, 49152 to 65535), to the entry's port; its length; no
     * checksum, as flannel.1 sends */
    EMIT(MOV64_REG(R1, R6));
    EMIT(CALL(BPF_FUNC_get_hash_recalc));
    EMIT(ALU64_IMM(BPF_AND, R0, 0x3fff));
    EMIT(ALU64_IMM(BPF_OR, R0, 0xc000));
    EMIT(TO_BE16(R0));
    EMIT(STX(BPF_H, FP, R0, OUTER + 20));
    EMIT(LDX(BPF_H, R1, R7, V_PORT));
    EMIT(STX(BPF_H, FP, R1, OUTER + 22));
    EMIT(MOV64_REG(R1, R8));
    EMIT(ALU64_IMM(BPF_SUB, R1, 20));
    EMIT(TO_BE16(R1));
    EMIT(STX(BPF_H, FP, R1, OUTER + 24));
    EMIT(ST(BPF_H, FP, OUTER + 26, 0));
    /* VXLAN: the I flag, then the VNI word from the entry */
    EMIT(ST(BPF_W, FP, OUTER + 28, 0x08));
    EMIT(LDX(BPF_W, R1, R7, V_VNI));
    EMIT(STX(BPF_W, FP, R1, OUTER + 32));
    /* the inner Ethernet header: the peer's VTEP MAC, ours, IPv4 */
    EMIT(LDX(BPF_W, R1, R7, V_DMAC));
    EMIT(STX(BPF_W, FP, R1, OUTER + 36));
    EMIT(LDX(BPF_H, R1, R7, V_DMAC + 4));
    EMIT(STX(BPF_H, FP, R1, OUTER + 40));
    EMIT(LDX(BPF_H, R1, R7, V_SMAC));
    EMIT(STX(BPF_H, FP, R1, OUTER + 42));
    EMIT(LDX(BPF_W, R1, R7, V_SMAC + 2));
    EMIT(STX(BPF_W, FP, R1, OUTER + 44));
    EMIT(ST(BPF_B, FP, OUTER + 48, 0x08));
    EMIT(ST(BPF_B, FP, OUTER + 49, 0x00));
  }
  /*    the IPv4 header's checksum: the ones' complement sum of its 20 bytes, folded */
  EMIT(MOV64_IMM(R1, 0));
  EMIT(MOV64_IMM(R2, 0));
  EMIT(MOV64_REG(R3, FP));
  EMIT(ALU64_IMM(BPF_ADD, R3, OUTER));
  EMIT(MOV64_IMM(R4, 20));
  EMIT(MOV64_IMM(R5, 0));
  EMIT(CALL(BPF_FUNC_csum_diff));
  EMIT(MOV32_REG(R0, R0));
  for (int fold = 0; fold < 2; fold++) {
    EMIT(MOV64_REG(R1, R0));
    EMIT(ALU64_IMM(BPF_AND, R1, 0xffff));
    EMIT(ALU64_IMM(BPF_RSH, R0, 16));
    EMIT(ALU64_REG(BPF_ADD, R0, R1));
  }
  EMIT(ALU64_IMM(BPF_XOR, R0, 0xffff));
  EMIT(ALU64_IMM(BPF_AND, R0, 0xffff));
  EMIT(STX(BPF_H, FP, R0, OUTER + 10));
  EMIT(MOV64_REG(R1, R6));
  EMIT(MOV64_IMM(R2, 0));
  EMIT(MOV64_REG(R3, FP));
  EMIT(ALU64_IMM(BPF_ADD, R3, OUTER));
  EMIT(MOV64_IMM(R4, hlen));
  EMIT(MOV64_IMM(R5, 0));
  EMIT(CALL(BPF_FUNC_skb_store_bytes));
  /*    the room is there but the headers are not: nobody can take it */
  EMIT(JMP_IMM(BPF_JNE, R0, 0, TO_DROP));
  /*    an Ethernet header's room in front, zeros: bpf_redirect_neigh() is
   *    made for tc on Ethernet devices and pulls 14 bytes before it routes
   *    (a TUN has no link header); it writes the real one */
  EMIT(MOV64_REG(R1, R6));
  EMIT(MOV64_IMM(R2, ETH_HLEN));
  EMIT(MOV64_IMM(R3, 0));
  EMIT(CALL(BPF_FUNC_skb_change_head));
  EMIT(JMP_IMM(BPF_JNE, R0, 0, TO_DROP));
  /*    the peer's counters (inner bytes, as weft's own pipeline counts) */
  EMIT(MOV64_IMM(R1, 1));
  EMIT(XADD64(R7, R1, V_PACKETS));
  EMIT(XADD64(R7, R9, V_BYTES));
  /* 4. out of the underlay */
  EMIT(LDX(BPF_W, R1, R7, V_IFINDEX));
  EMIT(MOV64_IMM(R2, 0));
  EMIT(MOV64_IMM(R3, 0));
  EMIT(MOV64_IMM(R4, 0));
  EMIT(CALL(BPF_FUNC_redirect_neigh));
  EMIT(EXIT());
  return labels(p, n, TC_ACT_OK, 1, -1, -1);
}

/* The receive program's stack: the frame's headers from offset 0, two bytes
 * in (so that the IPv4 header's words are aligned, as the verifier wants
 * of the stack), the inner IPv4 header, the time a flow was noted, the map
 * key (the sender's, then the flow's). */
#define RX (-112)
#define RX_ETH (RX + 2)
#define RX_IP (RX + 16)
#define RX_UDP (RX + 36)
#define RX_VXLAN (RX + 44)
#define RX_IETH (RX + 52)
#define RX_INNER (-40)
#define FLOW_TIME (-16)
/* How long a flow's single packets follow its last super-packet to weft:
 * longer than a packet waits in weft's socket and pipeline (the socket's
 * buffer at a few Gbit/s is a few ms) */
#define FLOW_STICKY_NS 100000000
/* bpf_skb_adjust_room's decapsulation flags (bpf-next, 2026): they clear a
 * super-packet's tunnel marks. Older kernels refuse them (EINVAL). */
#define DECAP_L4_UDP (1ULL << 10)
#define DECAP_IPXIP4 (1ULL << 11)

/* Fills prog with a receive program for the map `map_fd`; returns the count. */
static int assemble_rx(struct bpf_insn *p, int map_fd, int flows_fd, int kind) {
  int n = 0;
  const int vxlan = kind == WEFT_OFFLOAD_RX_VXLAN;
  /* what comes off: the outer IPv4 header (and UDP, VXLAN, the inner Ethernet header) */
  const int outer = vxlan ? VXLAN_HLEN : 20;
  const int inner = ETH_HLEN + outer;
  EMIT(MOV64_REG(R6, R1));
  /* 1. the headers to the stack: the frame's, then the inner IPv4 header */
  EMIT(MOV64_REG(R1, R6));
  EMIT(MOV64_IMM(R2, 0));
  EMIT(MOV64_REG(R3, FP));
  EMIT(ALU64_IMM(BPF_ADD, R3, RX_ETH));
  EMIT(MOV64_IMM(R4, inner));
  EMIT(CALL(BPF_FUNC_skb_load_bytes));
  EMIT(JMP_IMM(BPF_JNE, R0, 0, TO_PASS));
  EMIT(MOV64_REG(R1, R6));
  EMIT(MOV64_IMM(R2, inner));
  EMIT(MOV64_REG(R3, FP));
  EMIT(ALU64_IMM(BPF_ADD, R3, RX_INNER));
  EMIT(MOV64_IMM(R4, 20));
  EMIT(CALL(BPF_FUNC_skb_load_bytes));
  EMIT(JMP_IMM(BPF_JNE, R0, 0, TO_PASS));
  /*    (16-bit fields compared as they lie in memory: 0x0008 is 08 00) */
  EMIT(LDX(BPF_H, R1, FP, RX_ETH + 12));
  EMIT(JMP_IMM(BPF_JNE, R1, 0x0008 /* IPv4 */, TO_PASS));
  EMIT(LDX(BPF_B, R1, FP, RX_IP));
  EMIT(JMP_IMM(BPF_JNE, R1, 0x45, TO_PASS));
  EMIT(LDX(BPF_H, R1, FP, RX_IP + 6));
  EMIT(ALU64_IMM(BPF_AND, R1, 0xff3f /* MF and the offset */));
  EMIT(JMP_IMM(BPF_JNE, R1, 0, TO_PASS));
  EMIT(LDX(BPF_B, R1, FP, RX_IP + 9));
  EMIT(JMP_IMM(BPF_JNE, R1, vxlan ? 17 : 4, TO_PASS));
  if (vxlan) {
    EMIT(LDX(BPF_W, R1, FP, RX_VXLAN));
    EMIT(JMP_IMM(BPF_JNE, R1, 0x08, TO_PASS)); /* the I flag alone */
    EMIT(LDX(BPF_H, R1, FP, RX_IETH + 12));
    EMIT(JMP_IMM(BPF_JNE, R1, 0x0008, TO_PASS));
  }
  EMIT(LDX(BPF_B, R1, FP, RX_INNER));
  EMIT(ALU64_IMM(BPF_AND, R1, 0xf0));
  EMIT(JMP_IMM(BPF_JNE, R1, 0x40, TO_PASS));
  /*    not UDP: weft's pipeline delivers a UDP flow at the pace it came,
   *    where the kernel's path hands a receiver bursts its socket buffer
   *    drops (docs/performance.md) */
  EMIT(LDX(BPF_B, R1, FP, RX_INNER + 9));
  EMIT(JMP_IMM(BPF_JEQ, R1, 17, TO_PASS));
  /* 2. the sender's entry, by its address */
  n = lookup(p, n, map_fd, RX_IP + 12);
  /*    sent to us (and for VXLAN: to our port, in our VNI, to our VTEP MAC) */
  EMIT(LDX(BPF_W, R1, FP, RX_IP + 16));
  EMIT(LDX(BPF_W, R2, R7, V_SADDR));
  EMIT(JMP_REG(BPF_JNE, R1, R2, TO_PASS));
  if (vxlan) {
    EMIT(LDX(BPF_H, R1, FP, RX_UDP + 2));
    EMIT(LDX(BPF_H, R2, R7, V_PORT));
    EMIT(JMP_REG(BPF_JNE, R1, R2, TO_PASS));
    EMIT(LDX(BPF_W, R1, FP, RX_VXLAN + 4));
    EMIT(LDX(BPF_W, R2, R7, V_VNI));
    EMIT(JMP_REG(BPF_JNE, R1, R2, TO_PASS));
    EMIT(LDX(BPF_W, R1, FP, RX_IETH));
    EMIT(LDX(BPF_W, R2, R7, V_SMAC));
    EMIT(JMP_REG(BPF_JNE, R1, R2, TO_PASS));
    EMIT(LDX(BPF_H, R1, FP, RX_IETH + 4));
    EMIT(LDX(BPF_H, R2, R7, V_SMAC + 4));
    EMIT(JMP_REG(BPF_JNE, R1, R2, TO_PASS));
  }
  /* 3. to our subnet */
  EMIT(LDX(BPF_W, R1, FP, RX_INNER + 16));
  EMIT(LDX(BPF_W, R2, R7, V_OUR_MASK));
  EMIT(ALU64_REG(BPF_AND, R1, R2));
  EMIT(LDX(BPF_W, R2, R7, V_OUR_NET));
  EMIT(JMP_REG(BPF_JNE, R1, R2, TO_PASS));
  /*    from the sender's subnet, or from outside the network but not from us */
  EMIT(LDX(BPF_W, R8, FP, RX_INNER + 12));
  EMIT(MOV64_REG(R1, R8));
  EMIT(LDX(BPF_W, R2, R7, V_PEER_MASK));
  EMIT(ALU64_REG(BPF_AND, R1, R2));
  EMIT(LDX(BPF_W, R2, R7, V_PEER_NET));
  EMIT(JMP_REG(BPF_JEQ, R1, R2, TO_SOURCE_OK));
  EMIT(MOV64_REG(R1, R8));
  EMIT(LDX(BPF_W, R2, R7, V_NET_MASK));
  EMIT(ALU64_REG(BPF_AND, R1, R2));
  EMIT(LDX(BPF_W, R2, R7, V_NET));
  EMIT(JMP_REG(BPF_JEQ, R1, R2, TO_PASS));
  EMIT(LDX(BPF_W, R2, R7, V_SADDR));
  EMIT(JMP_REG(BPF_JEQ, R8, R2, TO_PASS));
  const int source_ok = n;
  /*    the flow's key, from here on: the inner packet's two addresses */
  EMIT(LDX(BPF_W, R1, FP, RX_INNER + 12));
  EMIT(STX(BPF_W, FP, R1, KEY));
  EMIT(LDX(BPF_W, R1, FP, RX_INNER + 16));
  EMIT(STX(BPF_W, FP, R1, KEY + 4));
  /* 4. the inner packet fills the frame (r9: its length); what an
   *    underlay's GRO merged does not, and goes to weft */
  EMIT(LDX(BPF_H, R9, FP, RX_INNER + 2));
  EMIT(TO_BE16(R9));
  EMIT(LDX(BPF_W, R1, R6, 0 /* __sk_buff.len */));
  EMIT(ALU64_IMM(BPF_SUB, R1, inner));
  EMIT(JMP_REG(BPF_JNE, R1, R9, TO_MARK));
  /*    one packet (not a super-packet) of a flow whose super-packets went
   *    to weft within FLOW_STICKY_NS: to weft as well, behind them. Taking
   *    it here would overtake them: the receiver sees reordering, and its
   *    sender retransmits and (cubic) halves its window */
  EMIT(LDX(BPF_W, R1, R6, offsetof(struct __sk_buff, gso_size)));
  const int is_super = n;
  EMIT(JMP_IMM(BPF_JNE, R1, 0, 0));
  EMIT(INSN(BPF_LD | BPF_DW | BPF_IMM, R1, BPF_PSEUDO_MAP_FD, 0, flows_fd));
  EMIT(INSN(0, 0, 0, 0, 0));
  EMIT(MOV64_REG(R2, FP));
  EMIT(ALU64_IMM(BPF_ADD, R2, KEY));
  EMIT(CALL(BPF_FUNC_map_lookup_elem));
  const int no_flow = n;
  EMIT(JMP_IMM(BPF_JEQ, R0, 0, 0));
  EMIT(LDX(BPF_DW, R8, R0, 0));
  EMIT(CALL(BPF_FUNC_ktime_get_ns));
  EMIT(ALU64_REG(BPF_SUB, R0, R8));
  EMIT(JMP_IMM(BPF_JLT, R0, FLOW_STICKY_NS, TO_PASS));
  if (is_super < WEFT_OFFLOAD_INSNS) p[is_super].off = (int16_t)(n - is_super - 1);
  if (no_flow < WEFT_OFFLOAD_INSNS) p[no_flow].off = (int16_t)(n - no_flow - 1);
  /* 5. the outer headers off: the inner packet follows the frame's Ethernet
   *    header. A super-packet (a sender's GSO that crossed a veth whole, an
   *    underlay's GRO) keeps its segment size, and must also lose its
   *    tunnel marks, or the kernel would segment it as a tunnel's on its
   *    way to the pod: only kernels with the DECAP_L4_UDP/DECAP_IPXIP4
   *    flags do that, and older ones refuse the flags, so there it goes to
   *    weft's pipeline, which reads super-packets whole, and its flow is
   *    marked */
  EMIT(LDX(BPF_W, R1, R6, offsetof(struct __sk_buff, gso_size)));
  EMIT(MOV64_IMM(R4, BPF_F_ADJ_ROOM_FIXED_GSO));
  EMIT(JMP_IMM(BPF_JEQ, R1, 0, 1));
  EMIT(MOV64_IMM(R4, BPF_F_ADJ_ROOM_FIXED_GSO | (vxlan ? DECAP_L4_UDP : DECAP_IPXIP4)));
  EMIT(MOV64_REG(R1, R6));
  EMIT(MOV64_IMM(R2, -outer));
  EMIT(MOV64_IMM(R3, BPF_ADJ_ROOM_MAC));
  EMIT(CALL(BPF_FUNC_skb_adjust_room));
  EMIT(JMP_IMM(BPF_JNE, R0, 0, TO_MARK));
  EMIT(MOV64_IMM(R1, 1));
  EMIT(XADD64(R7, R1, V_PACKETS));
  EMIT(XADD64(R7, R9, V_BYTES));
  /* 6. into the TUN, as if it had arrived there */
  EMIT(LDX(BPF_W, R1, R7, V_IFINDEX));
  EMIT(MOV64_IMM(R2, BPF_F_INGRESS));
  EMIT(CALL(BPF_FUNC_redirect));
  EMIT(EXIT());
  /* a super-packet left to weft: its flow marked with the time, so that its
   * single packets follow it there (one packet: to weft alone) */
  const int mark = n;
  EMIT(LDX(BPF_W, R1, R6, offsetof(struct __sk_buff, gso_size)));
  EMIT(JMP_IMM(BPF_JEQ, R1, 0, TO_PASS));
  EMIT(CALL(BPF_FUNC_ktime_get_ns));
  EMIT(STX(BPF_DW, FP, R0, FLOW_TIME));
  EMIT(INSN(BPF_LD | BPF_DW | BPF_IMM, R1, BPF_PSEUDO_MAP_FD, 0, flows_fd));
  EMIT(INSN(0, 0, 0, 0, 0));
  EMIT(MOV64_REG(R2, FP));
  EMIT(ALU64_IMM(BPF_ADD, R2, KEY));
  EMIT(MOV64_REG(R3, FP));
  EMIT(ALU64_IMM(BPF_ADD, R3, FLOW_TIME));
  EMIT(MOV64_IMM(R4, BPF_ANY));
  EMIT(CALL(BPF_FUNC_map_update_elem));
  EMIT(JMP_IMM(BPF_JA, R0, 0, TO_PASS));
  /* not ours: on to whatever else looks at the underlay's packets, then the stack */
  return labels(p, n, TC_ACT_UNSPEC, 0, source_ok, mark);
}

/* ------------------------------------------------------------- bpf(2) -- */

static int sys_bpf(int cmd, union bpf_attr *attr) {
  int r = (int)syscall(__NR_bpf, cmd, attr, sizeof(*attr));
  return r < 0 ? -errno : r;
}

int weft_offload_load(int kind, int *map_fd, char *log, size_t log_len) {
  if (log != NULL && log_len > 0) log[0] = 0;
  if (kind < WEFT_OFFLOAD_TX_IPIP || kind > WEFT_OFFLOAD_RX_VXLAN) return -EINVAL;
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  a.map_type = BPF_MAP_TYPE_LPM_TRIE;
  a.key_size = 8;
  a.value_size = sizeof(weft_offload_peer_t);
  a.max_entries = WEFT_OFFLOAD_PEERS;
  a.map_flags = BPF_F_NO_PREALLOC;
  memcpy(a.map_name, kind <= WEFT_OFFLOAD_TX_VXLAN ? "weft_tx" : "weft_rx", 8);
  int map = sys_bpf(BPF_MAP_CREATE, &a);
  if (map < 0) return map;

  /* the receive program's flows whose super-packets went to weft (an LRU:
   * the oldest make room); the program holds it, weft never reads it */
  int flows = -1;
  if (kind >= WEFT_OFFLOAD_RX_IPIP) {
    memset(&a, 0, sizeof(a));
    a.map_type = BPF_MAP_TYPE_LRU_HASH;
    a.key_size = 8;
    a.value_size = 8;
    a.max_entries = WEFT_OFFLOAD_FLOWS;
    memcpy(a.map_name, "weft_flows", 11);
    flows = sys_bpf(BPF_MAP_CREATE, &a);
    if (flows < 0) {
      close(map);
      return flows;
    }
  }

  struct bpf_insn prog[WEFT_OFFLOAD_INSNS];
  int n = kind <= WEFT_OFFLOAD_TX_VXLAN ? assemble_tx(prog, map, kind) : assemble_rx(prog, map, flows, kind);
  if (n > WEFT_OFFLOAD_INSNS) {
    if (flows >= 0) close(flows);
    close(map);
    return -E2BIG;
  }
  memset(&a, 0, sizeof(a));
  a.prog_type = BPF_PROG_TYPE_SCHED_CLS;
  a.insns = (uint64_t)(uintptr_t)prog;
  a.insn_cnt = (uint32_t)n;
  a.license = (uint64_t)(uintptr_t) "Apache-2.0";
  if (log != NULL && log_len > 0) {
    a.log_buf = (uint64_t)(uintptr_t)log;
    a.log_size = (uint32_t)log_len;
    a.log_level = 1;
  }
  static const char *const names[] = {"", "weft_ipip_tx", "weft_vxlan_tx", "weft_ipip_rx", "weft_vxlan_rx"};
  const char *name = names[kind];
  memcpy(a.prog_name, name, strlen(name) + 1);
  int fd = sys_bpf(BPF_PROG_LOAD, &a);
  if (flows >= 0) close(flows); /* the program keeps its own reference */
  if (fd < 0) {
    close(map);
    return fd;
  }
  *map_fd = map;
  return fd;
}

/* One map call on the entry for prefix/prefix_len: the LPM key is the prefix
 * length (host order), then the address (network order). */
static int map_call(int cmd, int map_fd, uint32_t prefix_be, uint32_t prefix_len, const void *value, uint64_t flags) {
  uint8_t key[8];
  memcpy(key, &prefix_len, 4);
  memcpy(key + 4, &prefix_be, 4);
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  a.map_fd = (uint32_t)map_fd;
  a.key = (uint64_t)(uintptr_t)key;
  a.value = (uint64_t)(uintptr_t)value;
  a.flags = flags;
  return sys_bpf(cmd, &a);
}

int weft_offload_set(int map_fd, uint32_t prefix_be, uint32_t prefix_len, const weft_offload_peer_t *peer) {
  return map_call(BPF_MAP_UPDATE_ELEM, map_fd, prefix_be, prefix_len, peer, BPF_ANY);
}

int weft_offload_get(int map_fd, uint32_t prefix_be, uint32_t prefix_len, weft_offload_peer_t *peer) {
  return map_call(BPF_MAP_LOOKUP_ELEM, map_fd, prefix_be, prefix_len, peer, 0);
}

int weft_offload_delete(int map_fd, uint32_t prefix_be, uint32_t prefix_len) {
  int r = map_call(BPF_MAP_DELETE_ELEM, map_fd, prefix_be, prefix_len, NULL, 0);
  return r == -ENOENT ? 0 : r;
}

int weft_offload_test_run(int prog_fd, const void *frame, size_t len, uint32_t gso_size, uint32_t *retval) {
  struct __sk_buff ctx;
  memset(&ctx, 0, sizeof(ctx));
  ctx.gso_size = gso_size;
  ctx.gso_segs = gso_size > 0 ? 2 : 0;
  union bpf_attr a;
  memset(&a, 0, sizeof(a));
  a.test.prog_fd = (uint32_t)prog_fd;
  a.test.data_in = (uint64_t)(uintptr_t)frame;
  a.test.data_size_in = (uint32_t)len;
  a.test.ctx_in = (uint64_t)(uintptr_t)&ctx;
  a.test.ctx_size_in = sizeof(ctx);
  a.test.repeat = 1;
  int err = sys_bpf(BPF_PROG_TEST_RUN, &a);
  if (err < 0) return err;
  *retval = a.test.retval;
  return 0;
}

/* ---------------------------------------------------------- rtnetlink -- */

struct nl_req {
  struct nlmsghdr n;
  struct tcmsg t;
  char attrs[256];
};

static void nl_attr(struct nl_req *r, uint16_t type, const void *data, size_t len) {
  struct rtattr *a = (struct rtattr *)((char *)r + NLMSG_ALIGN(r->n.nlmsg_len));
  a->rta_type = type;
  a->rta_len = (uint16_t)RTA_LENGTH(len);
  if (len > 0) memcpy(RTA_DATA(a), data, len);
  r->n.nlmsg_len = NLMSG_ALIGN(r->n.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Sends one request and reads its ACK: 0, or the kernel's -errno. */
static int nl_talk(int fd, struct nl_req *r) {
  if (send(fd, r, r->n.nlmsg_len, 0) < 0) return -errno;
  char buf[4096];
  for (;;) {
    ssize_t got = recv(fd, buf, sizeof(buf), 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)got); h = NLMSG_NEXT(h, got)) {
      if (h->nlmsg_seq != r->n.nlmsg_seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
    }
  }
}

/* A new tc object on ifindex: the request's header, to which attributes follow. */
static void nl_start(struct nl_req *r, uint16_t type, uint32_t seq, int ifindex, uint32_t handle, uint32_t parent) {
  memset(r, 0, sizeof(*r));
  r->n.nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg));
  r->n.nlmsg_type = type;
  r->n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  r->n.nlmsg_seq = seq;
  r->t.tcm_family = AF_UNSPEC;
  r->t.tcm_ifindex = ifindex;
  r->t.tcm_handle = handle;
  r->t.tcm_parent = parent;
}

/* Our filter on ifindex's egress (a send program: prio 1, the TUN is ours)
 * or ingress (a receive program: WEFT_OFFLOAD_RX_PRIO, the underlay is
 * shared). */
static void nl_filter(struct nl_req *r, uint16_t type, uint32_t seq, int ifindex, int ingress) {
  uint32_t prio = ingress ? WEFT_OFFLOAD_RX_PRIO : 1;
  nl_start(r, type, seq, ifindex, 1, TC_H_MAKE(TC_H_CLSACT, ingress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS));
  r->t.tcm_info = TC_H_MAKE(prio << 16, htons(ETH_P_ALL));
}

/* enum bpf_attach_type's tcx ingress (kernel 6.6; newer than some build hosts' headers) */
#define ATTACH_TCX_INGRESS 46

int weft_offload_attach(int ifindex, int prog_fd, int ingress) {
  if (ingress) {
    /* a tcx link first: it is the fd's, so it goes when weft does, however it stops */
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.link_create.prog_fd = (uint32_t)prog_fd;
    a.link_create.target_ifindex = (uint32_t)ifindex;
    a.link_create.attach_type = ATTACH_TCX_INGRESS;
    int link = sys_bpf(BPF_LINK_CREATE, &a);
    if (link >= 0 || (link != -EINVAL && link != -EOPNOTSUPP)) return link;
    /* an older kernel: a clsact filter, which outlives weft until taken off */
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -errno;
  struct nl_req r;

  /* the clsact qdisc (already there: fine) */
  nl_start(&r, RTM_NEWQDISC, 1, ifindex, TC_H_MAKE(TC_H_CLSACT, 0), TC_H_CLSACT);
  nl_attr(&r, TCA_KIND, "clsact", 7);
  int err = nl_talk(fd, &r);
  if (err < 0 && err != -EEXIST) {
    close(fd);
    return err;
  }

  /* the filter: direct action, every protocol; on the underlay it replaces
   * the one a run that did not stop cleanly left (a program redirecting to
   * a TUN that is gone) */
  nl_filter(&r, RTM_NEWTFILTER, 2, ifindex, ingress);
  if (ingress) r.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
  nl_attr(&r, TCA_KIND, "bpf", 4);
  struct rtattr *opts = (struct rtattr *)((char *)&r + NLMSG_ALIGN(r.n.nlmsg_len));
  nl_attr(&r, TCA_OPTIONS, NULL, 0);
  uint32_t pfd = (uint32_t)prog_fd, flags = TCA_BPF_FLAG_ACT_DIRECT;
  nl_attr(&r, TCA_BPF_FD, &pfd, 4);
  nl_attr(&r, TCA_BPF_NAME, ingress ? "weft_rx" : "weft_tx", 8);
  nl_attr(&r, TCA_BPF_FLAGS, &flags, 4);
  opts->rta_len = (uint16_t)((char *)&r + r.n.nlmsg_len - (char *)opts);
  err = nl_talk(fd, &r);
  close(fd);
  return err;
}

int weft_offload_detach(int ifindex) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -errno;
  struct nl_req r;
  nl_filter(&r, RTM_DELTFILTER, 1, ifindex, 1);
  r.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nl_attr(&r, TCA_KIND, "bpf", 4);
  int err = nl_talk(fd, &r);
  close(fd);
  /* no qdisc, no filter, no device: nothing to remove */
  return err == -ENOENT || err == -EINVAL || err == -ENODEV ? 0 : err;
}
