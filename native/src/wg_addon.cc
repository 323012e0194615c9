// N-API glue for the WireGuard crypto (wg.h): everything goes on one object,
// `exports.wg`, that src/native/wg.ts wraps. Same shape as addon.cc.
//
// 1. WgKeys: the key table, an ObjectWrap over weft_wg_keys_t; set(slot,
//    key) and clear(slot) are called per handshake, not per packet.
// 2. WgSeal / WgOpen: built once from an options object naming the keys,
//    the batches' views and the per-entry arrays (shared memory JS rewrites
//    between batches); seal(count, first) and open(count) then take numbers
//    only: one crossing per batch, no property lookups.
// 3. One-off functions for the handshake (blake2s, AEADs) and the
//    measurement (bench): these allocate their results, they are not the
//    hot path.
// Bad arguments throw TypeError/RangeError; per-packet outcomes are codes
// in the arrays, never exceptions.
#include <napi.h>

#include <cstring>
#include <vector>

#include "options.h"
#include "weft.h"
#include "wg.h"

namespace {

// Marks WgKeys objects, so that an options object's `keys` is known to be one.
const napi_type_tag kWgKeysTag = {0x7765667477676b65ULL, 0x7973000000000001ULL};

bool IsAbsent(const Napi::Value &v) {
  return v.IsUndefined() || v.IsNull();
}

bool IsTyped(const Napi::Value &v, napi_typedarray_type type, size_t min) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == type &&
         v.As<Napi::TypedArray>().ElementLength() >= min;
}

template <typename T>
T *Data(const Napi::Value &v) {
  return reinterpret_cast<T *>(static_cast<uint8_t *>(v.As<Napi::TypedArray>().ArrayBuffer().Data()) +
                               v.As<Napi::TypedArray>().ByteOffset());
}

bool IsBytes(const Napi::Value &v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
}

using weft::Options;

// ------------------------------------------------------------ WgKeys ------

class WgKeys : public Napi::ObjectWrap<WgKeys> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "WgKeys",
                       {InstanceMethod<&WgKeys::Set>("set"), InstanceMethod<&WgKeys::Clear>("clear"),
                        InstanceAccessor<&WgKeys::Slots>("slots")});
  }

  // new WgKeys(slots)
  explicit WgKeys(const Napi::CallbackInfo &info) : Napi::ObjectWrap<WgKeys>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber()) {
      Napi::TypeError::New(env, "WgKeys(slots)").ThrowAsJavaScriptException();
      return;
    }
    double n = info[0].As<Napi::Number>().DoubleValue();
    if (!(n >= 1 && n <= (1 << 24))) {
      Napi::RangeError::New(env, "slots must be 1..2^24").ThrowAsJavaScriptException();
      return;
    }
    k_ = weft_wg_keys_new(static_cast<uint32_t>(n));
    if (!k_) {
      Napi::Error::New(env,
                       "cannot set up the WireGuard crypto (no memory, or OpenSSL lacks BLAKE2s/ChaCha20-Poly1305)")
          .ThrowAsJavaScriptException();
      return;
    }
    info.This().As<Napi::Object>().TypeTag(&kWgKeysTag);
  }

  ~WgKeys() override { weft_wg_keys_free(k_); }

  static WgKeys *From(const Napi::Value &v) {
    if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kWgKeysTag)) return nullptr;
    return Unwrap(v.As<Napi::Object>());
  }

  weft_wg_keys_t *keys() const { return k_; }

 private:
  bool SlotArg(const Napi::CallbackInfo &info, uint32_t *slot) {
    if (!info[0].IsNumber()) return false;
    double s = info[0].As<Napi::Number>().DoubleValue();
    if (!(s >= 0 && s < weft_wg_keys_slots(k_)) || s != static_cast<uint32_t>(s)) return false;
    *slot = static_cast<uint32_t>(s);
    return true;
  }

  // set(slot, key: 32-byte Buffer)
  Napi::Value Set(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint32_t slot;
    if (!SlotArg(info, &slot)) {
      Napi::RangeError::New(env, "slot outside the key table").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!IsBytes(info[1]) || info[1].As<Napi::Uint8Array>().ByteLength() != WEFT_WG_KEY_LEN) {
      Napi::TypeError::New(env, "key must be 32 bytes").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (weft_wg_keys_set(k_, slot, info[1].As<Napi::Uint8Array>().Data()) < 0)
      Napi::Error::New(env, "cannot key the cipher context").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  // clear(slot): the key is zeroed; messages for the slot fail with NO_KEY
  Napi::Value Clear(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint32_t slot;
    if (!SlotArg(info, &slot)) {
      Napi::RangeError::New(env, "slot outside the key table").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    weft_wg_keys_clear(k_, slot);
    return env.Undefined();
  }

  Napi::Value Slots(const Napi::CallbackInfo &info) { return Napi::Number::New(info.Env(), weft_wg_keys_slots(k_)); }

  weft_wg_keys_t *k_ = nullptr;
};

// ------------------------------------------------------------ WgSeal ------

class WgSeal : public Napi::ObjectWrap<WgSeal> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "WgSeal", {InstanceMethod<&WgSeal::Seal>("seal")});
  }

  // new WgSeal({ keys, slab, offsets, lengths, vnet, keySlot: Int32Array,
  //   receiver: Uint32Array, counter: Float64Array, gso, dest: Uint32Array,
  //   produced: Int32Array, outSlab, outOffsets, outLengths, outDests,
  //   outSegs: Uint32Array, outCapacity, mtu }); every per-entry array as
  //   long as offsets, every out* array as long as outOffsets
  explicit WgSeal(const Napi::CallbackInfo &info) : Napi::ObjectWrap<WgSeal>(info) {
    Napi::Env env = info.Env();
    Options o(info[0]);
    WgKeys *keys = WgKeys::From(o.Get("keys"));
    Napi::Value slab = o.Get("slab"), offsets = o.Get("offsets"), outSlab = o.Get("outSlab"),
                outOffsets = o.Get("outOffsets"), outCap = o.Get("outCapacity"), mtu = o.Get("mtu");
    if (!info[0].IsObject() || !keys || !slab.IsBuffer() || !IsTyped(offsets, napi_uint32_array, 1) ||
        !outSlab.IsBuffer() || !IsTyped(outOffsets, napi_uint32_array, 1) || !outCap.IsNumber() || !mtu.IsNumber()) {
      Napi::TypeError::New(env,
                           "WgSeal({ keys: WgKeys, slab, offsets, lengths, keySlot, receiver, counter, gso, dest, "
                           "produced, outSlab, outOffsets, outLengths, outDests, outSegs, outCapacity, mtu, vnet? })")
          .ThrowAsJavaScriptException();
      return;
    }
    size_t n = offsets.As<Napi::TypedArray>().ElementLength();
    size_t m = outOffsets.As<Napi::TypedArray>().ElementLength();
    Napi::Value lengths = o.Get("lengths"), keySlot = o.Get("keySlot"), receiver = o.Get("receiver"),
                counter = o.Get("counter"), gso = o.Get("gso"), dest = o.Get("dest"), produced = o.Get("produced"),
                outLengths = o.Get("outLengths"), outDests = o.Get("outDests"), outSegs = o.Get("outSegs");
    if (!IsTyped(lengths, napi_uint32_array, n) || !IsTyped(keySlot, napi_int32_array, n) ||
        !IsTyped(receiver, napi_uint32_array, n) || !IsTyped(counter, napi_float64_array, n) ||
        !IsTyped(gso, napi_uint32_array, n) || !IsTyped(dest, napi_uint32_array, n) ||
        !IsTyped(produced, napi_int32_array, n) || !IsTyped(outLengths, napi_uint32_array, m) ||
        !IsTyped(outDests, napi_uint32_array, m) || !IsTyped(outSegs, napi_uint32_array, m)) {
      Napi::TypeError::New(env,
                           "WgSeal: lengths, receiver, gso, dest: Uint32Array; keySlot, produced: Int32Array; "
                           "counter: Float64Array, each as long as offsets; outLengths/outDests/outSegs: "
                           "Uint32Array as long as outOffsets")
          .ThrowAsJavaScriptException();
      return;
    }
    std::memset(&s_, 0, sizeof s_);
    s_.keys = keys->keys();
    s_.in_slab = slab.As<Napi::Buffer<uint8_t>>().Data();
    s_.in_slab_len = slab.As<Napi::Buffer<uint8_t>>().Length();
    s_.in_off = Data<uint32_t>(offsets);
    s_.in_len = Data<uint32_t>(lengths);
    s_.vnet = o.Get("vnet").ToBoolean();
    s_.key_slot = Data<int32_t>(keySlot);
    s_.receiver = Data<uint32_t>(receiver);
    s_.counter = Data<double>(counter);
    s_.gso = Data<uint32_t>(gso);
    s_.dest = Data<uint32_t>(dest);
    s_.produced = Data<int32_t>(produced);
    s_.out_slab = outSlab.As<Napi::Buffer<uint8_t>>().Data();
    s_.out_slab_len = outSlab.As<Napi::Buffer<uint8_t>>().Length();
    s_.out_off = Data<uint32_t>(outOffsets);
    s_.out_len = Data<uint32_t>(outLengths);
    s_.out_dests = Data<uint32_t>(outDests);
    s_.out_segs = Data<uint32_t>(outSegs);
    s_.out_max = static_cast<uint32_t>(m);
    s_.out_cap = outCap.As<Napi::Number>().Uint32Value();
    s_.mtu = mtu.As<Napi::Number>().Uint32Value();
    max_ = static_cast<uint32_t>(n);
    held_ = Napi::Persistent(o.Held());  // keys included: the table outlives this
  }

 private:
  // seal(count, first = 0) -> messages written from output slot 0
  Napi::Value Seal(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint32_t count = info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 0;
    uint32_t first = info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
    if (first > max_ || count > max_ - first) {
      Napi::RangeError::New(env, "seal(count, first): entries outside the batch").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Number::New(env, weft_wg_seal_batch(&s_, first, count));
  }

  weft_wg_seal_t s_;
  uint32_t max_ = 0;
  Napi::ObjectReference held_;
};

// ------------------------------------------------------------ WgOpen ------

class WgOpen : public Napi::ObjectWrap<WgOpen> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "WgOpen", {InstanceMethod<&WgOpen::Open>("open")});
  }

  // new WgOpen({ keys, slab, offsets, lengths: Uint32Array, keySlot: Int32Array,
  //   status: Uint8Array, inner: Int8Array, counter: Float64Array }), all as
  //   long as offsets
  explicit WgOpen(const Napi::CallbackInfo &info) : Napi::ObjectWrap<WgOpen>(info) {
    Napi::Env env = info.Env();
    Options o(info[0]);
    WgKeys *keys = WgKeys::From(o.Get("keys"));
    Napi::Value slab = o.Get("slab"), offsets = o.Get("offsets");
    size_t n = IsTyped(offsets, napi_uint32_array, 1) ? offsets.As<Napi::TypedArray>().ElementLength() : 0;
    Napi::Value lengths = o.Get("lengths"), keySlot = o.Get("keySlot"), status = o.Get("status"),
                inner = o.Get("inner"), counter = o.Get("counter");
    if (!info[0].IsObject() || !keys || !slab.IsBuffer() || n == 0 || !IsTyped(lengths, napi_uint32_array, n) ||
        !IsTyped(keySlot, napi_int32_array, n) || !IsTyped(status, napi_uint8_array, n) ||
        !IsTyped(inner, napi_int8_array, n) || !IsTyped(counter, napi_float64_array, n)) {
      Napi::TypeError::New(env,
                           "WgOpen({ keys: WgKeys, slab: Buffer, offsets, lengths: Uint32Array, keySlot: Int32Array, "
                           "status: Uint8Array, inner: Int8Array, counter: Float64Array }), arrays as long as offsets")
          .ThrowAsJavaScriptException();
      return;
    }
    o_.keys = keys->keys();
    o_.slab = slab.As<Napi::Buffer<uint8_t>>().Data();
    o_.slab_len = slab.As<Napi::Buffer<uint8_t>>().Length();
    o_.off = Data<uint32_t>(offsets);
    o_.len = Data<uint32_t>(lengths);
    o_.key_slot = Data<int32_t>(keySlot);
    o_.status = Data<uint8_t>(status);
    o_.inner = Data<int8_t>(inner);
    o_.counter = Data<double>(counter);
    max_ = static_cast<uint32_t>(n);
    held_ = Napi::Persistent(o.Held());
  }

 private:
  // open(count) -> how many authenticated
  Napi::Value Open(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    uint32_t count = info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 0;
    if (count > max_) {
      Napi::RangeError::New(env, "open(count): more datagrams than the arrays hold").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Number::New(env, weft_wg_open_batch(&o_, count));
  }

  weft_wg_open_t o_;
  uint32_t max_ = 0;
  Napi::ObjectReference held_;
};

// ----------------------------------------------------------- one-offs ------

// blake2s(outLen, key: Uint8Array | null, ...parts: Uint8Array[]) -> Buffer
Napi::Value Blake2s(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  double outLen = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  if (!(outLen >= 1 && outLen <= 32) || outLen != static_cast<uint32_t>(outLen) ||
      !(IsAbsent(info[1]) || IsBytes(info[1]))) {
    Napi::TypeError::New(env, "blake2s(outLen 1..32, key: Uint8Array | null, ...parts: Uint8Array[])")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t keyLen = IsAbsent(info[1]) ? 0 : info[1].As<Napi::Uint8Array>().ByteLength();
  if (!IsAbsent(info[1]) && (keyLen < 1 || keyLen > 32)) {
    Napi::RangeError::New(env, "a BLAKE2s key is 1..32 bytes").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (keyLen == 0 && outLen != 32) {
    Napi::RangeError::New(env, "unkeyed BLAKE2s is 32 bytes only (OpenSSL 3.0)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<const uint8_t *> parts;
  std::vector<size_t> lens;
  for (size_t i = 2; i < info.Length(); i++) {
    if (!IsBytes(info[i])) {
      Napi::TypeError::New(env, "blake2s: every part must be a Uint8Array").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    parts.push_back(info[i].As<Napi::Uint8Array>().Data());
    lens.push_back(info[i].As<Napi::Uint8Array>().ByteLength());
  }
  uint8_t out[32];
  if (weft_blake2s(out, static_cast<size_t>(outLen), keyLen ? info[1].As<Napi::Uint8Array>().Data() : nullptr, keyLen,
                   parts.data(), lens.data(), parts.size()) < 0) {
    Napi::Error::New(env, "BLAKE2s failed (OpenSSL)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Buffer<uint8_t>::Copy(env, out, static_cast<size_t>(outLen));
}

using AeadFn = int (*)(uint8_t *, const uint8_t *, const uint8_t *, const uint8_t *, size_t, const uint8_t *, size_t);

// (key: 32 bytes, nonce: nonceLen bytes, data: Uint8Array, ad?: Uint8Array | null)
// -> Buffer (seal: data + tag; open: data - tag, or null when it does not authenticate)
template <AeadFn fn, size_t nonceLen, bool seal>
Napi::Value Aead(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!IsBytes(info[0]) || info[0].As<Napi::Uint8Array>().ByteLength() != WEFT_WG_KEY_LEN || !IsBytes(info[1]) ||
      info[1].As<Napi::Uint8Array>().ByteLength() != nonceLen || !IsBytes(info[2]) ||
      !(IsAbsent(info[3]) || IsBytes(info[3]))) {
    Napi::TypeError::New(env, seal ? "(key: 32 bytes, nonce, plaintext: Uint8Array, ad?: Uint8Array)"
                                   : "(key: 32 bytes, nonce, ciphertextWithTag: Uint8Array, ad?: Uint8Array)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto data = info[2].As<Napi::Uint8Array>();
  const uint8_t *ad = IsAbsent(info[3]) ? nullptr : info[3].As<Napi::Uint8Array>().Data();
  size_t adLen = IsAbsent(info[3]) ? 0 : info[3].As<Napi::Uint8Array>().ByteLength();
  if (!seal && data.ByteLength() < WEFT_WG_TAG_LEN) return env.Null();
  size_t outLen = seal ? data.ByteLength() + WEFT_WG_TAG_LEN : data.ByteLength() - WEFT_WG_TAG_LEN;
  auto out = Napi::Buffer<uint8_t>::New(env, outLen);
  if (fn(out.Data(), info[0].As<Napi::Uint8Array>().Data(), info[1].As<Napi::Uint8Array>().Data(), data.Data(),
         data.ByteLength(), ad, adLen) != 0) {
    if (!seal) return env.Null();
    Napi::Error::New(env, "AEAD seal failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return out;
}

// bench(lib, len, batch, rounds) -> [ns sealing, ns opening] (weft_wg_bench)
Napi::Value Bench(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  for (int i = 0; i < 4; i++)
    if (!info[i].IsNumber()) {
      Napi::TypeError::New(env, "bench(lib, len, batch, rounds)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  double ns[2];
  if (weft_wg_bench(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Uint32Value(),
                    info[2].As<Napi::Number>().Uint32Value(), info[3].As<Napi::Number>().Uint32Value(), ns) < 0) {
    Napi::Error::New(env, "bench failed (bad arguments, no memory, or a packet did not open)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, ns[0]);
  a.Set(1u, ns[1]);
  return a;
}

}  // namespace

void InitWg(Napi::Env env, Napi::Object exports) {
  if (weft_wg_crypto_init() < 0) return;  // no `wg`: src/native/wg.ts says why when loaded
  Napi::Object wg = Napi::Object::New(env);
  wg.Set("WgKeys", WgKeys::Init(env));
  wg.Set("WgSeal", WgSeal::Init(env));
  wg.Set("WgOpen", WgOpen::Init(env));
  wg.Set("blake2s", Napi::Function::New<Blake2s>(env, "blake2s"));
  wg.Set("aeadSeal", Napi::Function::New<Aead<weft_aead_seal, 12, true>>(env, "aeadSeal"));
  wg.Set("aeadOpen", Napi::Function::New<Aead<weft_aead_open, 12, false>>(env, "aeadOpen"));
  wg.Set("xaeadSeal", Napi::Function::New<Aead<weft_xaead_seal, WEFT_WG_XNONCE_LEN, true>>(env, "xaeadSeal"));
  wg.Set("xaeadOpen", Napi::Function::New<Aead<weft_xaead_open, WEFT_WG_XNONCE_LEN, false>>(env, "xaeadOpen"));
  wg.Set("bench", Napi::Function::New<Bench>(env, "bench"));

  Napi::Object c = Napi::Object::New(env);
  c.Set("HDR_LEN", static_cast<double>(WEFT_WG_HDR_LEN));
  c.Set("OVERHEAD", static_cast<double>(WEFT_WG_OVERHEAD));
  c.Set("OK", static_cast<double>(WEFT_WG_OK));
  c.Set("BAD_LENGTH", static_cast<double>(WEFT_WG_BAD_LENGTH));
  c.Set("AUTH_FAILED", static_cast<double>(WEFT_WG_AUTH_FAILED));
  c.Set("NO_KEY", static_cast<double>(WEFT_WG_NO_KEY));
  c.Set("BAD_SLOT", static_cast<double>(WEFT_WG_BAD_SLOT));
  c.Set("INNER_UNCHECKED", static_cast<double>(WEFT_WG_INNER_UNCHECKED));
  c.Set("INNER_GOOD", static_cast<double>(WEFT_WG_INNER_GOOD));
  c.Set("INNER_BAD", static_cast<double>(WEFT_WG_INNER_BAD));
  c.Set("SEAL_NO_KEY", static_cast<double>(WEFT_WG_SEAL_NO_KEY));
  c.Set("SEAL_BAD_PACKET", static_cast<double>(WEFT_WG_SEAL_BAD_PACKET));
  c.Set("SEAL_TOO_BIG", static_cast<double>(WEFT_WG_SEAL_TOO_BIG));
  c.Set("SEAL_BAD_SLOT", static_cast<double>(WEFT_WG_SEAL_BAD_SLOT));
  c.Set("SEAL_BAD_COUNTER", static_cast<double>(WEFT_WG_SEAL_BAD_COUNTER));
  c.Set("SEAL_NO_ROOM", static_cast<double>(WEFT_WG_SEAL_NO_ROOM));
  c.Set("LIB_SODIUM", static_cast<double>(WEFT_WG_LIB_SODIUM));
  c.Set("LIB_OPENSSL_IV", static_cast<double>(WEFT_WG_LIB_OPENSSL_IV));
  c.Set("LIB_OPENSSL_FULL", static_cast<double>(WEFT_WG_LIB_OPENSSL_FULL));
  c.Set("HOT_LIB", static_cast<double>(weft_wg_hot_lib()));
  wg.Set("constants", c);
  exports.Set("wg", wg);
}
