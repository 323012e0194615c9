// N-API glue for the peer offload (peer_offload.c), on `exports.peerOffload`,
// which src/native/peer-offload.ts wraps. Called at start and per lease
// change, never per packet: the packets it carries never reach JavaScript.
#include <napi.h>

#include <arpa/inet.h>
#include <cstring>
#include <string>

#include "napi_errors.h"
#include "weft.h"

namespace {

bool Numbers(const Napi::CallbackInfo &info, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!info[i].IsNumber()) return false;
  return true;
}

uint32_t U32(const Napi::Value &v) {
  return v.As<Napi::Number>().Uint32Value();
}

// (map, prefix: u32, prefixLen: 0-32), or a TypeError thrown naming `fn`
bool PrefixArgs(const Napi::CallbackInfo &info, const char *fn) {
  if (Numbers(info, 3) && U32(info[2]) <= 32) return true;
  Napi::TypeError::New(info.Env(), std::string(fn) + "(map, prefix: u32, prefixLen: 0-32)")
      .ThrowAsJavaScriptException();
  return false;
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

// load(kind) -> { prog, map }: fds, closed with closeFd (kind: 1 IP-in-IP, 2
// VXLAN, sending; 3, 4 receiving)
Napi::Value Load(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!Numbers(info, 1)) { THROW_TYPE(env, "load(kind: number)"); }
  static char log[16384];
  int map = -1;
  int prog = weft_offload_load(info[0].As<Napi::Number>().Int32Value(), &map, log, sizeof(log));
  // the verifier's log is empty when the map could not be made, or nothing was verified
  if (prog < 0) THROW_ERRNO(env, -prog, log[0] == 0 ? "bpf" : "bpf(BPF_PROG_LOAD)", Tail(log));
  Napi::Object o = Napi::Object::New(env);
  o.Set("prog", prog);
  o.Set("map", map);
  return o;
}

// attach(ifindex, prog, ingress: boolean) -> a tcx link's fd (ingress, kernel 6.6 on;
// closing it detaches), or 0 (a tc filter)
Napi::Value Attach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!Numbers(info, 2) || !info[2].IsBoolean()) {
    THROW_TYPE(env, "attach(ifindex: number, prog: number, ingress: boolean)");
  }
  bool ingress = info[2].As<Napi::Boolean>().Value();
  int err =
      weft_offload_attach(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), ingress);
  const char *call = ingress ? "bpf(BPF_LINK_CREATE) or rtnetlink(tc filter replace ... ingress bpf da)"
                             : "rtnetlink(tc filter add ... egress bpf da)";
  if (err < 0) THROW_ERRNO(env, -err, call, "");
  return Napi::Number::New(env, err);
}

// detach(ifindex): the receive program's filter off the underlay's ingress
Napi::Value Detach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!Numbers(info, 1)) { THROW_TYPE(env, "detach(ifindex: number)"); }
  int err = weft_offload_detach(info[0].As<Napi::Number>().Int32Value());
  if (err < 0) THROW_ERRNO(env, -err, "rtnetlink(tc filter del ... ingress)", "");
  return env.Undefined();
}

// set(map, prefix: u32, prefixLen, entry): the entry's fields (weft_offload_peer_t),
// addresses and masks as u32 in host order, MACs as 6-byte Buffers; absent: 0
Napi::Value Set(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  const char *usage =
      "set(map, prefix: u32, prefixLen: 0-32, { saddr, daddr, ifindex, vni?, dmac?, smac?, port?, peerNet?, "
      "peerMask?, ourNet?, ourMask?, net?, netMask? })";
  if (!Numbers(info, 3) || U32(info[2]) > 32 || !info[3].IsObject()) { THROW_TYPE(env, usage); }
  Napi::Object e = info[3].As<Napi::Object>();
  bool ok = true;
  auto num = [&](const char *k) -> uint32_t {
    Napi::Value v = e.Get(k);
    if (v.IsUndefined()) return 0;
    if (!v.IsNumber()) ok = false;
    return ok ? U32(v) : 0;
  };
  auto mac = [&](const char *k, uint8_t *to) {
    Napi::Value v = e.Get(k);
    if (v.IsUndefined()) return;
    if (!v.IsBuffer() || v.As<Napi::Buffer<uint8_t>>().Length() != 6) {
      ok = false;
      return;
    }
    memcpy(to, v.As<Napi::Buffer<uint8_t>>().Data(), 6);
  };
  weft_offload_peer_t p;
  memset(&p, 0, sizeof(p));
  p.saddr = htonl(num("saddr"));
  p.daddr = htonl(num("daddr"));
  p.ifindex = num("ifindex");
  p.vni = htonl(num("vni") << 8);
  mac("dmac", p.dmac);
  mac("smac", p.smac);
  p.port = htons((uint16_t)num("port"));
  p.peer_net = htonl(num("peerNet"));
  p.peer_mask = htonl(num("peerMask"));
  p.our_net = htonl(num("ourNet"));
  p.our_mask = htonl(num("ourMask"));
  p.net = htonl(num("net"));
  p.net_mask = htonl(num("netMask"));
  if (!ok) { THROW_TYPE(env, usage); }
  int err = weft_offload_set(info[0].As<Napi::Number>().Int32Value(), htonl(U32(info[1])), U32(info[2]), &p);
  if (err < 0) THROW_ERRNO(env, -err, "bpf(BPF_MAP_UPDATE_ELEM)", "");
  return env.Undefined();
}

// remove(map, prefix: u32, prefixLen): gone already is fine
Napi::Value Remove(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!PrefixArgs(info, "remove")) return env.Undefined();
  int err = weft_offload_delete(info[0].As<Napi::Number>().Int32Value(), htonl(U32(info[1])), U32(info[2]));
  if (err < 0) THROW_ERRNO(env, -err, "bpf(BPF_MAP_DELETE_ELEM)", "");
  return env.Undefined();
}

// counters(map, prefix: u32, prefixLen) -> [packets, bytes], or undefined with no entry
Napi::Value Counters(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!PrefixArgs(info, "counters")) return env.Undefined();
  weft_offload_peer_t p;
  int err = weft_offload_get(info[0].As<Napi::Number>().Int32Value(), htonl(U32(info[1])), U32(info[2]), &p);
  if (err == -ENOENT) return env.Undefined();
  if (err < 0) THROW_ERRNO(env, -err, "bpf(BPF_MAP_LOOKUP_ELEM)", "");
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, static_cast<double>(p.packets));
  a.Set(1u, static_cast<double>(p.bytes));
  return a;
}

// testRun(prog, frame: Buffer, gsoSize) -> the program's verdict (TC_ACT_*), for tests
Napi::Value TestRun(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsNumber()) {
    THROW_TYPE(env, "testRun(prog, frame: Buffer, gsoSize)");
  }
  auto frame = info[1].As<Napi::Buffer<uint8_t>>();
  uint32_t retval = 0;
  int err = weft_offload_test_run(info[0].As<Napi::Number>().Int32Value(), frame.Data(), frame.Length(), U32(info[2]),
                                  &retval);
  if (err < 0) THROW_ERRNO(env, -err, "bpf(BPF_PROG_TEST_RUN)", "");
  return Napi::Number::New(env, static_cast<int32_t>(retval));
}

}  // namespace

void InitPeerOffload(Napi::Env env, Napi::Object exports) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("load", Napi::Function::New<Load>(env, "load"));
  o.Set("attach", Napi::Function::New<Attach>(env, "attach"));
  o.Set("detach", Napi::Function::New<Detach>(env, "detach"));
  o.Set("set", Napi::Function::New<Set>(env, "set"));
  o.Set("remove", Napi::Function::New<Remove>(env, "remove"));
  o.Set("counters", Napi::Function::New<Counters>(env, "counters"));
  o.Set("testRun", Napi::Function::New<TestRun>(env, "testRun"));
  exports.Set("peerOffload", o);
}
