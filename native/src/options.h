/*
 * An options object a JS caller passes at setup, read once. Every value read
 * is kept in Held(), so the memory C is given pointers into lives as long as
 * the registration does, whatever JS does to the object afterwards. Shared
 * by the addon's classes (addon.cc) and the WireGuard ones (wg_addon.cc).
 */
#pragma once

#include <napi.h>

#include <cstdint>

namespace weft {

class Options {
 public:
  explicit Options(const Napi::Value &v)
      : obj_(v.IsObject() ? v.As<Napi::Object>() : Napi::Object::New(v.Env())), held_(Napi::Array::New(v.Env())) {}

  Napi::Value Get(const char *key) {
    Napi::Value v = obj_.Get(key);
    held_.Set(n_++, v);
    return v;
  }

  Napi::Object Held() const { return held_; }

 private:
  Napi::Object obj_;
  Napi::Array held_;
  uint32_t n_ = 0;
};

}  // namespace weft
