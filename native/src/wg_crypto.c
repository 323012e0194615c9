/*
 * WireGuard's primitives, from libraries (nothing here is a cipher of its
 * own), and the key table the batch functions (wg_batch.c) use.
 *
 * 1. weft_wg_crypto_init, once per process: libsodium picks its
 *    implementations for this CPU; OpenSSL's BLAKE2s MAC, digest and
 *    ChaCha20-Poly1305 are fetched once (a fetch costs a lookup with locks).
 * 2. The key table: a key per slot, and an OpenSSL cipher context keyed once
 *    when the key is set; per packet only the nonce is set (seal_openssl).
 * 3. One packet sealed or opened in place under a slot's key: what the batch
 *    functions call per message. Which library does it was measured
 *    (weft_wg_bench, bench/wg-cipher.ts): see HOT_LIB.
 * 4. One-off AEADs (handshake, cookies, tests) and BLAKE2s, for the
 *    TypeScript handshake.
 * 5. The measurement itself.
 *
 * Node's OpenSSL: the node binary links OpenSSL 3.0 statically and exports
 * its symbols; the addon uses those (node-gyp puts node's OpenSSL headers on
 * the include path), so there is no second OpenSSL in the process.
 */
#define _GNU_SOURCE
#include "wg.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

/*
 * The transport cipher, by measurement (bench/wg-cipher.ts: one core of this
 * machine's Xeon with AVX-512, a shared VM; batches of 64; ns per packet,
 * median of 9 rounds, seal / open):
 *                                  64 B        128 B       256 B       1420 B
 *   libsodium 1.0.18              423 / 447   584 / 609   540 / 530   1948 / 1978  (5.8 Gbit/s)
 *   OpenSSL 3.0, nonce per packet 552 / 562   564 / 572   509 / 506   1209 / 1201  (9.4 Gbit/s)
 *   OpenSSL 3.0, key per packet   813 / 833   755 / 752   804 / 814   1489 / 1499
 * OpenSSL, each slot's context keyed once and only the nonce set per packet:
 * 40% faster than libsodium at full size, where the bytes are (OpenSSL has
 * AVX-512 ChaCha20 and Poly1305; libsodium 1.0.18 stops at AVX2).
 * libsodium leads by ~130 ns at 64 B and not at all from ~128 B on: not
 * worth a second path.
 */
#define HOT_LIB WEFT_WG_LIB_OPENSSL_IV

/* ------------------------------------------------------------ 1. init ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_ok;
static EVP_MAC *blake2s_mac;   /* "BLAKE2SMAC": keyed BLAKE2s, output size 1..32 */
static EVP_MD *blake2s_md;     /* "BLAKE2S-256": unkeyed, 32 bytes */
static EVP_CIPHER *chachapoly; /* "ChaCha20-Poly1305" (RFC 8439) */
static int have_avx;           /* the CPU has VZEROUPPER (clean_upper) */

static void init_libs(void) {
  blake2s_mac = EVP_MAC_fetch(NULL, "BLAKE2SMAC", NULL);
  blake2s_md = EVP_MD_fetch(NULL, "BLAKE2S-256", NULL);
  chachapoly = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
  __builtin_cpu_init();
  have_avx = __builtin_cpu_supports("avx");
  init_ok = sodium_init() >= 0 && blake2s_mac && blake2s_md && chachapoly;
}

int weft_wg_crypto_init(void) {
  pthread_once(&init_once, init_libs);
  return init_ok ? 0 : -1;
}

/* ------------------------------------------------------- 2. key table ---- */

typedef struct {
  uint8_t key[WEFT_WG_KEY_LEN];
  EVP_CIPHER_CTX *ctx; /* keyed with key; kept across clear/set */
  int set;
} slot_t;

struct weft_wg_keys {
  uint32_t n;
  slot_t *s;
};

weft_wg_keys_t *weft_wg_keys_new(uint32_t slots) {
  weft_wg_keys_t *k;
  if (weft_wg_crypto_init() < 0) return NULL;
  k = calloc(1, sizeof *k);
  if (!k) return NULL;
  k->s = calloc(slots ? slots : 1, sizeof *k->s);
  if (!k->s) {
    free(k);
    return NULL;
  }
  k->n = slots;
  return k;
}

void weft_wg_keys_free(weft_wg_keys_t *k) {
  if (!k) return;
  for (uint32_t i = 0; i < k->n; i++) {
    OPENSSL_cleanse(k->s[i].key, sizeof k->s[i].key);
    EVP_CIPHER_CTX_free(k->s[i].ctx); /* cleanses its key schedule */
  }
  free(k->s);
  free(k);
}

int weft_wg_keys_set(weft_wg_keys_t *k, uint32_t slot, const uint8_t key[WEFT_WG_KEY_LEN]) {
  slot_t *s;
  if (slot >= k->n) return -1;
  s = &k->s[slot];
  s->set = 0;
  if (!s->ctx && !(s->ctx = EVP_CIPHER_CTX_new())) return -1;
  memcpy(s->key, key, WEFT_WG_KEY_LEN);
  /* the key now, once; a packet sets only its nonce */
  if (EVP_CipherInit_ex(s->ctx, chachapoly, NULL, key, NULL, 1) != 1) {
    weft_wg_keys_clear(k, slot);
    return -1;
  }
  s->set = 1;
  return 0;
}

void weft_wg_keys_clear(weft_wg_keys_t *k, uint32_t slot) {
  slot_t *s;
  if (slot >= k->n) return;
  s = &k->s[slot];
  s->set = 0;
  OPENSSL_cleanse(s->key, sizeof s->key);
  if (s->ctx) EVP_CIPHER_CTX_reset(s->ctx); /* frees (and cleanses) the keyed state */
}

uint32_t weft_wg_keys_slots(const weft_wg_keys_t *k) {
  return k->n;
}

int weft_wg_keys_ready(const weft_wg_keys_t *k, uint32_t slot) {
  return slot < k->n && k->s[slot].set;
}

/* ---------------------------------------------------- 3. one packet ---- */

/* The transport nonce: 4 zero bytes, then the counter little-endian. */
static inline void wg_nonce(uint8_t n[12], uint64_t counter) {
  memset(n, 0, 4);
  for (int i = 0; i < 8; i++) n[4 + i] = (uint8_t)(counter >> (8 * i));
}

/* OpenSSL 3.0's poly1305_blocks_vpmadd52 (AVX-512 IFMA Poly1305 for short
 * inputs and tails; objdump shows it) uses ymm registers and returns
 * without VZEROUPPER, and every SSE instruction after it (the EVP plumbing,
 * memcpy) then pays for the dirty upper halves. A VZEROUPPER after each
 * OpenSSL call that runs the cipher took sealing from ~720 to ~550 ns at 64
 * bytes and from ~1350 to ~1210 ns at 1420 (bench/wg-cipher.ts; in a C loop
 * over Debian's libcrypto 3.0.19, 1000 -> 550 and 1750 -> 1260). Only on
 * CPUs with AVX: without it the instruction does not exist, and OpenSSL
 * runs no such code. */

__attribute__((target("avx"))) static inline void clean_upper(void) {
  if (have_avx) __builtin_ia32_vzeroupper();
}

/* OpenSSL: the context keeps the key (and its direction flips per call:
 * the provider takes enc on every init). In place is fine for a stream
 * cipher. An empty payload skips the update: the tag covers nothing. */
static int seal_openssl(EVP_CIPHER_CTX *c, const EVP_CIPHER *full, const uint8_t *key, uint8_t *p, size_t len,
                        const uint8_t nonce[12], uint8_t *tag) {
  int n, ok;
  if (EVP_CipherInit_ex(c, full, NULL, full ? key : NULL, nonce, 1) != 1) return -1;
  ok = len == 0 || EVP_CipherUpdate(c, p, &n, p, (int)len) == 1;
  clean_upper();
  ok = ok && EVP_CipherFinal_ex(c, p + len, &n) == 1;
  clean_upper();
  return ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, WEFT_WG_TAG_LEN, tag) == 1 ? 0 : -1;
}

/* Decrypts before it knows the tag is good: a failed packet's bytes are
 * garbage, which the caller drops (status AUTH_FAILED). */
static int open_openssl(EVP_CIPHER_CTX *c, const EVP_CIPHER *full, const uint8_t *key, uint8_t *p, size_t len,
                        const uint8_t nonce[12], const uint8_t *tag) {
  int n, ok;
  if (EVP_CipherInit_ex(c, full, NULL, full ? key : NULL, nonce, 0) != 1) return -1;
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, WEFT_WG_TAG_LEN, (void *)tag) != 1) return -1;
  ok = len == 0 || EVP_CipherUpdate(c, p, &n, p, (int)len) == 1;
  clean_upper();
  ok = ok && EVP_CipherFinal_ex(c, p + len, &n) == 1;
  clean_upper();
  return ok ? 0 : -1;
}

static int seal_with(int lib, slot_t *s, uint8_t *p, size_t len, const uint8_t nonce[12], uint8_t *tag) {
  if (lib == WEFT_WG_LIB_SODIUM)
    return crypto_aead_chacha20poly1305_ietf_encrypt_detached(p, tag, NULL, p, len, NULL, 0, NULL, nonce, s->key);
  return seal_openssl(s->ctx, lib == WEFT_WG_LIB_OPENSSL_FULL ? chachapoly : NULL, s->key, p, len, nonce, tag);
}

static int open_with(int lib, slot_t *s, uint8_t *p, size_t len, const uint8_t nonce[12], const uint8_t *tag) {
  if (lib == WEFT_WG_LIB_SODIUM)
    return crypto_aead_chacha20poly1305_ietf_decrypt_detached(p, NULL, p, len, tag, NULL, 0, nonce, s->key);
  return open_openssl(s->ctx, lib == WEFT_WG_LIB_OPENSSL_FULL ? chachapoly : NULL, s->key, p, len, nonce, tag);
}

/* For wg_batch.c: seal len bytes at p in place under slot's key, the tag
 * written at p + len; 0, or -1 (slot empty). */
int weft_wg_seal_one(const weft_wg_keys_t *k, uint32_t slot, uint8_t *p, size_t len, uint64_t counter) {
  uint8_t nonce[12];
  if (slot >= k->n || !k->s[slot].set) return -1;
  wg_nonce(nonce, counter);
  return seal_with(HOT_LIB, &k->s[slot], p, len, nonce, p + len);
}

/* Open len bytes at p in place, their tag at p + len: 0, -1 (tag does not
 * match), -2 (slot empty). */
int weft_wg_open_one(const weft_wg_keys_t *k, uint32_t slot, uint8_t *p, size_t len, uint64_t counter) {
  uint8_t nonce[12];
  if (slot >= k->n || !k->s[slot].set) return -2;
  wg_nonce(nonce, counter);
  return open_with(HOT_LIB, &k->s[slot], p, len, nonce, p + len) == 0 ? 0 : -1;
}

/* ------------------------------------ 4. one-off AEADs and BLAKE2s ---- */

/* libsodium, with no context to keep; the batch path's OpenSSL is tested
 * against these. */
int weft_aead_seal(uint8_t *out, const uint8_t *key, const uint8_t nonce[12], const uint8_t *in, size_t len,
                   const uint8_t *ad, size_t ad_len) {
  return crypto_aead_chacha20poly1305_ietf_encrypt_detached(out, out + len, NULL, in, len, ad, ad_len, NULL, nonce,
                                                            key);
}

int weft_aead_open(uint8_t *out, const uint8_t *key, const uint8_t nonce[12], const uint8_t *in, size_t len,
                   const uint8_t *ad, size_t ad_len) {
  if (len < WEFT_WG_TAG_LEN) return -1;
  return crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, NULL, in, len - WEFT_WG_TAG_LEN,
                                                            in + len - WEFT_WG_TAG_LEN, ad, ad_len, nonce, key);
}

/* XChaCha20-Poly1305: only libsodium has it (OpenSSL has no HChaCha20). */
int weft_xaead_seal(uint8_t *out, const uint8_t *key, const uint8_t nonce[24], const uint8_t *in, size_t len,
                    const uint8_t *ad, size_t ad_len) {
  return crypto_aead_xchacha20poly1305_ietf_encrypt_detached(out, out + len, NULL, in, len, ad, ad_len, NULL, nonce,
                                                             key);
}

int weft_xaead_open(uint8_t *out, const uint8_t *key, const uint8_t nonce[24], const uint8_t *in, size_t len,
                    const uint8_t *ad, size_t ad_len) {
  if (len < WEFT_WG_TAG_LEN) return -1;
  return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out, NULL, in, len - WEFT_WG_TAG_LEN,
                                                             in + len - WEFT_WG_TAG_LEN, ad, ad_len, nonce, key);
}

/* libsodium has only BLAKE2b; OpenSSL has BLAKE2s, keyed as a MAC (any
 * output size) and unkeyed as a digest (32 bytes only, in 3.0). Handshake
 * rates are low, so a context per call is fine. */
int weft_blake2s(uint8_t *out, size_t out_len, const uint8_t *key, size_t key_len, const uint8_t *const *parts,
                 const size_t *lens, size_t n) {
  int ok = 0;
  if (weft_wg_crypto_init() < 0 || out_len < 1 || out_len > 32 || key_len > 32) return -1;
  if (key_len > 0) {
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(blake2s_mac);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &out_len), OSSL_PARAM_END};
    size_t got = 0;
    ok = c && EVP_MAC_init(c, key, key_len, params) == 1;
    for (size_t i = 0; ok && i < n; i++) ok = EVP_MAC_update(c, parts[i], lens[i]) == 1;
    ok = ok && EVP_MAC_final(c, out, &got, out_len) == 1 && got == out_len;
    EVP_MAC_CTX_free(c);
  } else {
    EVP_MD_CTX *c = out_len == 32 ? EVP_MD_CTX_new() : NULL;
    unsigned int got = 0;
    ok = c && EVP_DigestInit_ex(c, blake2s_md, NULL) == 1;
    for (size_t i = 0; ok && i < n; i++) ok = EVP_DigestUpdate(c, parts[i], lens[i]) == 1;
    ok = ok && EVP_DigestFinal_ex(c, out, &got) == 1 && got == 32;
    EVP_MD_CTX_free(c);
  }
  return ok ? 0 : -1;
}

/* ---------------------------------------------------- 5. measurement ---- */

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int weft_wg_hot_lib(void) {
  return HOT_LIB;
}

/* The same per-packet calls as the batch path (seal_with/open_with), over
 * `batch` packets in their own slots, so only the library differs. */
int weft_wg_bench(int lib, uint32_t len, uint32_t batch, uint32_t rounds, double ns[2]) {
  const uint32_t stride = (len + WEFT_WG_TAG_LEN + 63) & ~63u;
  weft_wg_keys_t *k;
  uint8_t *buf, key[WEFT_WG_KEY_LEN], nonce[12];
  uint64_t counter = 0;
  int rc = 0;
  if (lib < 0 || lib >= WEFT_WG_LIB_COUNT || batch == 0 || len > 65536) return -1;
  k = weft_wg_keys_new(1);
  buf = calloc(batch, stride);
  if (!k || !buf) {
    weft_wg_keys_free(k);
    free(buf);
    return -1;
  }
  for (uint32_t i = 0; i < WEFT_WG_KEY_LEN; i++) key[i] = (uint8_t)(i * 7 + 1);
  for (size_t i = 0; i < (size_t)batch * stride; i++) buf[i] = (uint8_t)i;
  weft_wg_keys_set(k, 0, key);
  ns[0] = ns[1] = 0;
  for (uint32_t r = 0; r < rounds && rc == 0; r++) {
    uint64_t c0 = counter;
    double t0 = now_ns(), t1;
    for (uint32_t i = 0; i < batch; i++) {
      uint8_t *p = buf + (size_t)i * stride;
      wg_nonce(nonce, counter++);
      rc |= seal_with(lib, &k->s[0], p, len, nonce, p + len);
    }
    t1 = now_ns();
    for (uint32_t i = 0; i < batch; i++) {
      uint8_t *p = buf + (size_t)i * stride;
      wg_nonce(nonce, c0 + i);
      rc |= open_with(lib, &k->s[0], p, len, nonce, p + len);
    }
    ns[0] += t1 - t0;
    ns[1] += now_ns() - t1;
  }
  weft_wg_keys_free(k);
  free(buf);
  return rc == 0 ? 0 : -1;
}
