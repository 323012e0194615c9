/*
 * weft's WireGuard crypto: the per-byte work of the `wireguard` backend
 * (wire-compatible with WireGuard), batched. The Noise handshake, sessions,
 * counters and replay windows live in TypeScript (src/wireguard/); this is
 * only what is too slow there.
 *
 * Plain C, no knowledge of JavaScript (the N-API glue is wg_addon.cc). As in
 * weft.h: packet memory is owned by the caller, batches are parallel arrays,
 * nothing allocates per packet, failures are codes, never exceptions.
 *
 * Libraries, none of it hand-rolled: OpenSSL 3.0 (the copy inside the node
 * binary, whose symbols it exports) for BLAKE2s and the transport's
 * ChaCha20-Poly1305; libsodium for XChaCha20-Poly1305 (cookie replies),
 * which OpenSSL does not have. wg_crypto.c says why each is used where.
 */
#ifndef WEFT_WG_H
#define WEFT_WG_H

#include <stddef.h>
#include <stdint.h>

#define WEFT_WG_KEY_LEN 32
#define WEFT_WG_TAG_LEN 16
#define WEFT_WG_XNONCE_LEN 24
/* a transport message: type (4) and three zero bytes, receiver index LE32,
 * counter LE64, then the ciphertext of the padded packet and its tag */
#define WEFT_WG_TYPE_DATA 4
#define WEFT_WG_HDR_LEN 16
#define WEFT_WG_OVERHEAD (WEFT_WG_HDR_LEN + WEFT_WG_TAG_LEN)
#define WEFT_WG_PAD 16

/* open: status[j] of datagram j */
enum weft_wg_status {
  WEFT_WG_OK = 0,
  WEFT_WG_BAD_LENGTH = 1, /* shorter than 32 bytes (no multiple of 16 is due: padding stops at the MTU) */
  WEFT_WG_AUTH_FAILED = 2,
  WEFT_WG_NO_KEY = 3,   /* key slot empty or outside the table */
  WEFT_WG_BAD_SLOT = 4, /* offset/length outside the slab */
};

/* open: inner[j], what the decrypted packet's TCP/UDP checksum is */
enum weft_wg_inner {
  WEFT_WG_INNER_UNCHECKED = 0, /* not IPv4/IPv6 TCP/UDP (IPv6 extension headers), a fragment, its length too long,
                                  UDP without checksum */
  WEFT_WG_INNER_GOOD = 1,      /* checked (a partial one was finished here) */
  WEFT_WG_INNER_BAD = -1,
};

/* seal: produced[i] of input entry i, when it is not a message count */
enum weft_wg_seal_result {
  WEFT_WG_SEAL_NO_KEY = -1,      /* key slot empty or outside the table */
  WEFT_WG_SEAL_BAD_PACKET = -2,  /* a super-packet that cannot be segmented, or a vnet header pointing outside */
  WEFT_WG_SEAL_TOO_BIG = -3,     /* a message longer than an output slot, or more of them than the output has slots */
  WEFT_WG_SEAL_BAD_SLOT = -4,    /* the entry (or an output slot) outside its slab */
  WEFT_WG_SEAL_BAD_COUNTER = -5, /* counter[i] not an integer in 0..2^53 */
  WEFT_WG_SEAL_NO_ROOM = -6,     /* not sealed: the output batch filled up first; seal it in the next call */
};

#ifdef __cplusplus
extern "C" {
#endif

/* The key table: one ChaCha20-Poly1305 key per slot, each with its own
 * OpenSSL context keyed once (wg_crypto.c). Slots are the TS side's: a
 * session's sending and receiving keys are two slots. */
typedef struct weft_wg_keys weft_wg_keys_t;
weft_wg_keys_t *weft_wg_keys_new(uint32_t slots);
void weft_wg_keys_free(weft_wg_keys_t *k); /* zeroes every key */
int weft_wg_keys_set(weft_wg_keys_t *k, uint32_t slot, const uint8_t key[WEFT_WG_KEY_LEN]);
void weft_wg_keys_clear(weft_wg_keys_t *k, uint32_t slot); /* zeroes the key; the slot is empty */
uint32_t weft_wg_keys_slots(const weft_wg_keys_t *k);
int weft_wg_keys_ready(const weft_wg_keys_t *k, uint32_t slot); /* 1 if slot holds a key */
/* One message's payload sealed (or opened) in place under a slot's key with
 * the transport nonce for `counter`, the tag at p + len. Seal: 0, or -1
 * (slot empty). Open: 0, -1 (the tag does not match), -2 (slot empty). */
int weft_wg_seal_one(const weft_wg_keys_t *k, uint32_t slot, uint8_t *p, size_t len, uint64_t counter);
int weft_wg_open_one(const weft_wg_keys_t *k, uint32_t slot, uint8_t *p, size_t len, uint64_t counter);

/* Load-time setup of both libraries (idempotent, thread-safe): 0 or -1 */
int weft_wg_crypto_init(void);

/* BLAKE2s over the concatenation of n parts, out_len 1..32, keyed when
 * key_len > 0 (1..32). 0, or -1 (unkeyed with out_len != 32: OpenSSL 3.0's
 * BLAKE2S-256 has a fixed size, and WireGuard never needs that). */
int weft_blake2s(uint8_t *out, size_t out_len, const uint8_t *key, size_t key_len, const uint8_t *const *parts,
                 const size_t *lens, size_t n);

/* One-off AEADs; out holds len + 16 (seal) or len - 16 (open) bytes and may
 * be the input. Open returns -1 when the tag does not match. */
int weft_aead_seal(uint8_t *out, const uint8_t *key, const uint8_t nonce[12], const uint8_t *in, size_t len,
                   const uint8_t *ad, size_t ad_len);
int weft_aead_open(uint8_t *out, const uint8_t *key, const uint8_t nonce[12], const uint8_t *in, size_t len,
                   const uint8_t *ad, size_t ad_len);
int weft_xaead_seal(uint8_t *out, const uint8_t *key, const uint8_t nonce[24], const uint8_t *in, size_t len,
                    const uint8_t *ad, size_t ad_len);
int weft_xaead_open(uint8_t *out, const uint8_t *key, const uint8_t nonce[24], const uint8_t *in, size_t len,
                    const uint8_t *ad, size_t ad_len);

/*
 * Seal: packets read off the TUN (input entry i at in_off[i], in_len[i]
 * bytes, behind a 10-byte virtio_net_hdr when vnet) into WireGuard
 * transport messages, one per output slot from slot 0.
 *   key_slot[i]  -1: skip the entry (produced[i] = 0)
 *   receiver[i]  the peer's receiver index, written LE at message offset 4
 *   counter[i]   the entry's first counter (a double, exact below 2^53);
 *                segment k of a super-packet gets counter[i] + k
 *   gso[i]       0 plain, or (WEFT_GSO_TCPV4/UDP_L4 << 16 | mss): cut into
 *                segments as the kernel's GSO would (gso.c)
 *   dest[i]      copied to out_dests of each message
 * produced[i] gets the entry's message count, or a weft_wg_seal_result.
 * Each message's plaintext is zero-padded to a multiple of 16, never past
 * mtu (0: no cap). Returns the messages written.
 */
typedef struct {
  const weft_wg_keys_t *keys;
  /* input */
  uint8_t *in_slab;
  size_t in_slab_len;
  const uint32_t *in_off, *in_len;
  int vnet;
  const int32_t *key_slot;
  const uint32_t *receiver;
  const double *counter;
  const uint32_t *gso;
  const uint32_t *dest;
  int32_t *produced;
  /* output: a send batch */
  uint8_t *out_slab;
  size_t out_slab_len;
  const uint32_t *out_off;
  uint32_t *out_len, *out_dests, *out_segs;
  uint32_t out_max; /* slots */
  uint32_t out_cap; /* bytes a slot holds from its offset */
  uint32_t mtu;
} weft_wg_seal_t;
uint32_t weft_wg_seal_batch(const weft_wg_seal_t *s, uint32_t first, uint32_t count);

/*
 * Open: transport messages decrypted in place (datagram j at off[j], len[j]
 * bytes; its plaintext at off[j] + 16, len[j] - 32 bytes, padding included).
 * status[j] gets a weft_wg_status; for OK ones, counter[j] the message's
 * counter (a double: exact below 2^53) and inner[j] a weft_wg_inner.
 * Returns how many are OK.
 */
typedef struct {
  const weft_wg_keys_t *keys;
  uint8_t *slab;
  size_t slab_len;
  const uint32_t *off, *len;
  const int32_t *key_slot;
  uint8_t *status;
  int8_t *inner;
  double *counter;
} weft_wg_open_t;
uint32_t weft_wg_open_batch(const weft_wg_open_t *o, uint32_t count);

/* The measurement behind the choice of transport library (bench/wg-cipher.ts):
 * `rounds` x (seal `batch` packets of `len` bytes in place, then open them),
 * with lib = one of weft_wg_lib; ns[0] gets the ns spent sealing, ns[1]
 * opening. 0, or -1 (bad arguments, no memory, or an open failed). */
enum weft_wg_lib {
  WEFT_WG_LIB_SODIUM = 0,       /* libsodium's one-shot *_ietf_encrypt_detached */
  WEFT_WG_LIB_OPENSSL_IV = 1,   /* OpenSSL, key set once per context, only the IV per packet */
  WEFT_WG_LIB_OPENSSL_FULL = 2, /* OpenSSL, cipher and key set per packet */
  WEFT_WG_LIB_COUNT
};
int weft_wg_bench(int lib, uint32_t len, uint32_t batch, uint32_t rounds, double ns[2]);
int weft_wg_hot_lib(void); /* the one the batch functions use */

#ifdef __cplusplus
}

/* The N-API part (wg_addon.cc), called from addon.cc's Init. binding.gyp
 * force-includes this header into the C++ files, so that addon.cc needs no
 * include line for it. */
namespace Napi {
class Env;
class Object;
}  // namespace Napi
void InitWg(Napi::Env env, Napi::Object exports);
#endif

#endif
