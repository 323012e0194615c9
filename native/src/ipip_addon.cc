// N-API glue for the IP-in-IP send offload (ipip_tx.c), on `exports.ipipTx`,
// which src/native/ipip-tx.ts wraps. Called at start and per lease change,
// never per packet: the packets never reach JavaScript.
#include <napi.h>

#include <arpa/inet.h>
#include <cstring>
#include <string>

#include "weft.h"

namespace {

Napi::Value Fail(Napi::Env env, int err, const char *syscall, const std::string &detail) {
  std::string msg = std::string(syscall) + ": " + strerror(err);
  if (!detail.empty()) msg += " (" + detail + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, weft_errno_name(err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

bool Numbers(const Napi::CallbackInfo &info, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!info[i].IsNumber()) return false;
  return true;
}

uint32_t U32(const Napi::Value &v) {
  return v.As<Napi::Number>().Uint32Value();
}

// The verifier's last words (its log ends with the reason it refused).
std::string Tail(const char *log) {
  std::string s(log);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  size_t from = s.size() > 300 ? s.size() - 300 : 0;
  std::string t = s.substr(from);
  for (char &c : t)
    if (c == '\n') c = ' ';
  return t;
}

// load() -> { prog, map }: fds, closed with closeFd
Napi::Value Load(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  static char log[16384];
  int map = -1;
  int prog = weft_ipip_tx_load(&map, log, sizeof(log));
  if (prog < 0) return Fail(env, -prog, map < 0 && log[0] == 0 ? "bpf" : "bpf(BPF_PROG_LOAD)", Tail(log));
  Napi::Object o = Napi::Object::New(env);
  o.Set("prog", prog);
  o.Set("map", map);
  return o;
}

// attach(ifindex, prog)
Napi::Value Attach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!Numbers(info, 2)) {
    Napi::TypeError::New(env, "attach(ifindex: number, prog: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int err = weft_ipip_tx_attach(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value());
  if (err < 0) return Fail(env, -err, "rtnetlink(tc filter add ... egress bpf da)", "");
  return env.Undefined();
}

// set(map, prefix: u32, prefixLen, saddr: u32, daddr: u32, ifindex): addresses in host order
Napi::Value Set(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!Numbers(info, 6) || U32(info[2]) > 32) {
    Napi::TypeError::New(env, "set(map, prefix: u32, prefixLen: 0-32, saddr: u32, daddr: u32, ifindex)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  weft_ipip_peer_t p;
  memset(&p, 0, sizeof(p));
  p.saddr = htonl(U32(info[3]));
  p.daddr = htonl(U32(info[4]));
  p.ifindex = U32(info[5]);
  int err = weft_ipip_tx_set(info[0].As<Napi::Number>().Int32Value(), htonl(U32(info[1])), U32(info[2]), &p);
  if (err < 0) return Fail(env, -err, "bpf(BPF_MAP_UPDATE_ELEM)", "");
  return env.Undefined();
}

// remove(map, prefix: u32, prefixLen): gone already is fine
Napi::Value Remove(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!Numbers(info, 3) || U32(info[2]) > 32) {
    Napi::TypeError::New(env, "remove(map, prefix: u32, prefixLen: 0-32)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int err = weft_ipip_tx_delete(info[0].As<Napi::Number>().Int32Value(), htonl(U32(info[1])), U32(info[2]));
  if (err < 0) return Fail(env, -err, "bpf(BPF_MAP_DELETE_ELEM)", "");
  return env.Undefined();
}

// counters(map, prefix: u32, prefixLen) -> [packets, bytes], or undefined with no entry
Napi::Value Counters(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!Numbers(info, 3) || U32(info[2]) > 32) {
    Napi::TypeError::New(env, "counters(map, prefix: u32, prefixLen: 0-32)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  weft_ipip_peer_t p;
  int err = weft_ipip_tx_get(info[0].As<Napi::Number>().Int32Value(), htonl(U32(info[1])), U32(info[2]), &p);
  if (err == -ENOENT) return env.Undefined();
  if (err < 0) return Fail(env, -err, "bpf(BPF_MAP_LOOKUP_ELEM)", "");
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, static_cast<double>(p.packets));
  a.Set(1u, static_cast<double>(p.bytes));
  return a;
}

}  // namespace

void InitIpipTx(Napi::Env env, Napi::Object exports) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("load", Napi::Function::New<Load>(env, "load"));
  o.Set("attach", Napi::Function::New<Attach>(env, "attach"));
  o.Set("set", Napi::Function::New<Set>(env, "set"));
  o.Set("remove", Napi::Function::New<Remove>(env, "remove"));
  o.Set("counters", Napi::Function::New<Counters>(env, "counters"));
  exports.Set("ipipTx", o);
}
