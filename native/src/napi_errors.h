// Errors the N-API glue files throw: an errno as a JS Error whose `code` is
// the errno's name (what src/ matches on), and a TypeError for bad
// arguments. Shared by addon.cc and peer_offload_addon.cc.
#ifndef WEFT_NAPI_ERRORS_H
#define WEFT_NAPI_ERRORS_H

#include <napi.h>

#include <cstring>
#include <string>

#include "weft.h"

inline Napi::Error ErrnoError(Napi::Env env, int err, const char *syscall, const std::string &detail) {
  std::string msg = std::string(syscall);
  if (!detail.empty()) msg += " " + detail;
  msg += ": ";
  msg += strerror(err);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, weft_errno_name(err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

#define THROW_ERRNO(env, err, syscall, detail)                          \
  do {                                                                  \
    ErrnoError(env, err, syscall, detail).ThrowAsJavaScriptException(); \
    return env.Undefined();                                             \
  } while (0)

#define THROW_TYPE(env, msg)                                     \
  do {                                                           \
    Napi::TypeError::New(env, msg).ThrowAsJavaScriptException(); \
    return env.Undefined();                                      \
  } while (0)

#endif
