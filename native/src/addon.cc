// N-API glue: the only file that knows about JavaScript. It turns the C core
// (weft.h) into a handful of functions and one class, `Io`, which owns an fd,
// watches it with uv_poll and moves whole batches between the fd and
// caller-owned Buffers.
//
// 1. JS registers its receive views once (slab, offsets, lengths, ...) and its
//    send views once, each as one options object read here at that moment;
//    they are shared memory, rewritten by JS between batches. Constructors
//    take options objects too; the per-batch calls (read, send(count)) take
//    nothing or a count, so a batch costs no property lookups.
// 2. uv_poll says "readable": Io reads a batch into the registered views and
//    makes ONE call into JS with the packet count.
// 3. JS processes the batch in place and calls send(count): one crossing.
// 4. A send cut short by EAGAIN returns how many went; JS asks wantWritable()
//    and is called back once the socket drains.
// 5. With a BusyPoll attached, each batch read keeps the loop polling for a
//    short window instead of sleeping (busy.c).
// 6. wakeAfter(us) calls JS back once after that many µs (a timerfd on the
//    same loop), for writes JS paces instead of sending at once.
//
// Errors thrown to JS carry `code` = errno name (EPERM, EBUSY, ...) and a
// message that names the syscall.
#include <napi.h>
#include <uv.h>

#include <cstring>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "napi_errors.h"
#include "options.h"
#include "weft.h"

// peer_offload_addon.cc
void InitPeerOffload(Napi::Env env, Napi::Object exports);

namespace {

constexpr uint32_t kMaxBatch = 1024;

bool IsU32Array(const Napi::Value &v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint32_array;
}

bool IsF64Array(const Napi::Value &v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array;
}

bool IsAbsent(const Napi::Value &v) {
  return v.IsUndefined() || v.IsNull();
}

using weft::Options;

// What every batch registration (weft_rx_t, weft_tx_t) starts with: zeroed,
// then the slab and the slots' offsets and lengths, checked by the caller.
// Returns the slots both arrays cover.
template <typename Batch>
static uint32_t SetViews(Batch *b, const Napi::Value &slab, const Napi::Value &offsets, const Napi::Value &lengths) {
  auto s = slab.As<Napi::Buffer<uint8_t>>();
  auto o = offsets.As<Napi::Uint32Array>();
  auto l = lengths.As<Napi::Uint32Array>();
  std::memset(b, 0, sizeof *b);
  b->slab = s.Data();
  b->slab_len = s.Length();
  b->offsets = o.Data();
  b->lengths = l.Data();
  return o.ElementLength() < l.ElementLength() ? o.ElementLength() : l.ElementLength();
}

// ---------------------------------------------------------- BusyPoll ------

// Marks BusyPoll objects, so that Io::SetBusyPoll can tell one from any other
// wrapped object (an Io would unwrap too, as the wrong type).
const napi_type_tag kBusyPollTag = {0x7765667462757379ULL, 0x706f6c6c00000001ULL};

// Keeps this thread's event loop polling for a short window after each light
// batch; busy.c decides when and says why. An active uv_idle handle makes
// libuv poll with a zero timeout.
class BusyPoll : public Napi::ObjectWrap<BusyPoll> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "BusyPoll", {InstanceMethod<&BusyPoll::Close>("close")});
  }

  // new BusyPoll({ counters: Float64Array, windowUs, clock?: Float64Array })
  // clock: tests only; clock[0] is "now" in ns instead of uv_hrtime(), so a
  // test can move time itself and check the rules without sleeping.
  explicit BusyPoll(const Napi::CallbackInfo &info) : Napi::ObjectWrap<BusyPoll>(info) {
    Napi::Env env = info.Env();
    Options o(info[0]);
    Napi::Value countersV = o.Get("counters"), windowV = o.Get("windowUs"), clockV = o.Get("clock");
    if (!info[0].IsObject() || !countersV.IsTypedArray() || !windowV.IsNumber() ||
        !(IsAbsent(clockV) || IsF64Array(clockV))) {
      Napi::TypeError::New(env, "BusyPoll({ counters: Float64Array, windowUs, clock?: Float64Array })")
          .ThrowAsJavaScriptException();
      return;
    }
    auto counters = countersV.As<Napi::TypedArray>();
    if (counters.TypedArrayType() != napi_float64_array || counters.ElementLength() < WEFT_BUSY_COUNTER_COUNT) {
      Napi::TypeError::New(env, "counters must be a Float64Array of at least constants.BUSY_COUNTERS slots")
          .ThrowAsJavaScriptException();
      return;
    }
    if (!IsAbsent(clockV) && clockV.As<Napi::Float64Array>().ElementLength() < 1) {
      Napi::TypeError::New(env, "clock must be a Float64Array of at least 1 slot").ThrowAsJavaScriptException();
      return;
    }
    double window = windowV.As<Napi::Number>().DoubleValue();
    if (!(window >= 0 && window <= 1e6)) {
      Napi::RangeError::New(env, "windowUs must be 0..1000000").ThrowAsJavaScriptException();
      return;
    }
    ctr_ = counters.As<Napi::Float64Array>().Data();
    if (!IsAbsent(clockV)) clock_ = clockV.As<Napi::Float64Array>().Data();
    held_ = Napi::Persistent(o.Held());
    uv_loop_t *loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
      Napi::Error::New(env, "no event loop").ThrowAsJavaScriptException();
      return;
    }
    idle_ = new uv_idle_t;
    uv_idle_init(loop, idle_);
    idle_->data = this;
    weft_busy_init(&b_, static_cast<uint64_t>(window * 1000));
    info.This().As<Napi::Object>().TypeTag(&kBusyPollTag);
  }

  ~BusyPoll() override { Stop(); }

  // A batch was read (called by Io, on this loop's thread).
  void Kick(uint32_t packets, uint64_t bytes) {
    if (idle_ && weft_busy_kick(&b_, Now(), packets, bytes, ctr_)) uv_idle_start(idle_, &BusyPoll::OnIdle);
  }

 private:
  static void OnIdle(uv_idle_t *h) {
    BusyPoll *self = static_cast<BusyPoll *>(h->data);
    if (weft_busy_tick(&self->b_, self->Now(), self->ctr_) == WEFT_BUSY_STOP) uv_idle_stop(h);
  }

  uint64_t Now() const { return clock_ ? static_cast<uint64_t>(clock_[0]) : uv_hrtime(); }

  // close(): idempotent; the loop sleeps between batches again.
  Napi::Value Close(const Napi::CallbackInfo &info) {
    Stop();
    return info.Env().Undefined();
  }

  void Stop() {
    if (!idle_) return;
    uv_idle_stop(idle_);
    uv_close(reinterpret_cast<uv_handle_t *>(idle_), [](uv_handle_t *h) { delete reinterpret_cast<uv_idle_t *>(h); });
    idle_ = nullptr;
  }

  weft_busy_t b_;
  double *ctr_ = nullptr;
  const double *clock_ = nullptr;  // tests only: fake time in ns
  Napi::ObjectReference held_;     // counters and clock
  uv_idle_t *idle_ = nullptr;
};

// ---------------------------------------------------------------- Io ------

class Io : public Napi::ObjectWrap<Io> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Io",
                       {
                           InstanceMethod<&Io::SetReceive>("setReceive"),
                           InstanceMethod<&Io::SetSend>("setSend"),
                           InstanceMethod<&Io::Read>("read"),
                           InstanceMethod<&Io::Send>("send"),
                           InstanceMethod<&Io::Start>("start"),
                           InstanceMethod<&Io::SetReading>("setReading"),
                           InstanceMethod<&Io::WantWritable>("wantWritable"),
                           InstanceMethod<&Io::WakeAfter>("wakeAfter"),
                           InstanceMethod<&Io::SetBusyPoll>("setBusyPoll"),
                           InstanceMethod<&Io::Close>("close"),
                           InstanceAccessor<&Io::GetFd>("fd"),
                       });
  }

  // new Io({ fd, kind, counters: Float64Array, maxBatch })
  explicit Io(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Io>(info) {
    Napi::Env env = info.Env();
    Options o(info[0]);
    Napi::Value fd = o.Get("fd"), kind = o.Get("kind"), countersV = o.Get("counters"), maxBatch = o.Get("maxBatch");
    if (!info[0].IsObject() || !fd.IsNumber() || !kind.IsNumber() || !countersV.IsTypedArray() ||
        !maxBatch.IsNumber()) {
      Napi::TypeError::New(env, "Io({ fd, kind, counters: Float64Array, maxBatch })").ThrowAsJavaScriptException();
      return;
    }
    auto counters = countersV.As<Napi::TypedArray>();
    if (counters.TypedArrayType() != napi_float64_array || counters.ElementLength() < WEFT_COUNTER_COUNT) {
      Napi::TypeError::New(env, "counters must be a Float64Array of at least counterNames.length")
          .ThrowAsJavaScriptException();
      return;
    }
    fd_ = fd.As<Napi::Number>().Int32Value();
    kind_ = kind.As<Napi::Number>().Int32Value();
    max_ = maxBatch.As<Napi::Number>().Uint32Value();
    if (max_ == 0 || max_ > kMaxBatch) {
      Napi::RangeError::New(env, "maxBatch must be 1.." + std::to_string(kMaxBatch)).ThrowAsJavaScriptException();
      return;
    }
    ctr_ = counters.As<Napi::Float64Array>().Data();
    ctrRef_ = Napi::Persistent(counters.As<Napi::Object>());
    if (kind_ != WEFT_KIND_FD) {
      mmsg_ = weft_mmsg_new(max_);
      if (!mmsg_) {
        Napi::Error::New(env, "out of memory for the batch scratch").ThrowAsJavaScriptException();
        return;
      }
    }
    std::memset(&rx_, 0, sizeof rx_);
    std::memset(&tx_, 0, sizeof tx_);
  }

  ~Io() override {
    StopTimer();
    StopPoll();
    if (fd_ >= 0) ::close(fd_);
    weft_mmsg_free(mmsg_);
  }

 private:
  // setReceive({ slab: Buffer, offsets: Uint32Array, lengths: Uint32Array, capacity,
  //              addrs?, ports?, segs?: Uint32Array, addrs6?: Uint32Array, vnet?: boolean,
  //              bad?: Uint32Array, inner?: number, rco?: boolean })
  // (NativeReceive in src/native/binding.ts). Read once, into rx_, which
  // every batch read uses as it is.
  Napi::Value SetReceive(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Options o(info[0]);
    Napi::Value slabV = o.Get("slab"), offsetsV = o.Get("offsets"), lengthsV = o.Get("lengths"),
                capacityV = o.Get("capacity");
    if (!info[0].IsObject() || !slabV.IsBuffer() || !IsU32Array(offsetsV) || !IsU32Array(lengthsV) ||
        !capacityV.IsNumber())
      THROW_TYPE(env,
                 "setReceive({ slab: Buffer, offsets: Uint32Array, lengths: Uint32Array, capacity, addrs?, ports?, "
                 "segs?, ... })");
    weft_rx_t rx;
    uint32_t n = SetViews(&rx, slabV, offsetsV, lengthsV);
    rx.capacity = capacityV.As<Napi::Number>().Uint32Value();
    rx.max = n < max_ ? n : max_;
    uint32_t *opt[3] = {nullptr, nullptr, nullptr};
    const char *const names[3] = {"addrs", "ports", "segs"};
    for (int k = 0; k < 3; k++) {
      Napi::Value v = o.Get(names[k]);
      if (IsAbsent(v)) continue;
      if (!IsU32Array(v) || v.As<Napi::Uint32Array>().ElementLength() < rx.max)
        THROW_TYPE(env, "addrs/ports/segs must be Uint32Arrays as long as the batch");
      opt[k] = v.As<Napi::Uint32Array>().Data();
    }
    rx.addrs = opt[0];
    rx.ports = opt[1];
    rx.segs = opt[2];
    // udp6: four words of the sender's address per entry
    Napi::Value addrs6 = kind_ == WEFT_KIND_UDP6 ? o.Get("addrs6") : env.Undefined();
    if (!IsAbsent(addrs6)) {
      if (!IsU32Array(addrs6) || addrs6.As<Napi::Uint32Array>().ElementLength() < 4 * static_cast<size_t>(rx.max))
        THROW_TYPE(env, "addrs6 must be a Uint32Array of 4 * batch");
      rx.addrs6 = addrs6.As<Napi::Uint32Array>().Data();
    }
    rx.vnet = kind_ == WEFT_KIND_FD && o.Get("vnet").ToBoolean();
    // sockets: bad = Uint32Array(2 * batch), inner = offset of the inner packet
    Napi::Value bad = kind_ != WEFT_KIND_FD ? o.Get("bad") : env.Undefined();
    if (IsU32Array(bad)) {
      if (bad.As<Napi::Uint32Array>().ElementLength() < 2 * rx.max)
        THROW_TYPE(env, "bad must be a Uint32Array of 2 * batch");
      rx.bad = bad.As<Napi::Uint32Array>().Data();
      Napi::Value inner = o.Get("inner");
      rx.inner = inner.IsNumber() ? inner.As<Napi::Number>().Uint32Value() : 0;
      rx.rco = weft_kind_udp(kind_) && o.Get("rco").ToBoolean();
    }
    if (rx.capacity == 0) THROW_TYPE(env, "capacity must be > 0");
    rx_ = rx;
    rxRef_ = Napi::Persistent(o.Held());
    return env.Undefined();
  }

  // setSend({ slab: Buffer, offsets: Uint32Array, lengths: Uint32Array,
  //           dests?, table?, tableStride?, segs?: Uint32Array, inner?: number, coalesce?: boolean })
  // (NativeSend in src/native/binding.ts). segs: sockets, what each message
  // is; fd, pieces per write (weft.h). Read once, into tx_.
  Napi::Value SetSend(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Options o(info[0]);
    Napi::Value slabV = o.Get("slab"), offsetsV = o.Get("offsets"), lengthsV = o.Get("lengths");
    if (!info[0].IsObject() || !slabV.IsBuffer() || !IsU32Array(offsetsV) || !IsU32Array(lengthsV))
      THROW_TYPE(env,
                 "setSend({ slab: Buffer, offsets: Uint32Array, lengths: Uint32Array, dests?, table?, segs?, inner?, "
                 "coalesce? })");
    weft_tx_t tx;
    tx.max = SetViews(&tx, slabV, offsetsV, lengthsV);
    if (kind_ == WEFT_KIND_FD) {
      Napi::Value segs = o.Get("segs");
      if (!IsAbsent(segs)) {
        if (!IsU32Array(segs) || segs.As<Napi::Uint32Array>().ElementLength() < tx.max)
          THROW_TYPE(env, "segs (pieces per write) must be a Uint32Array as long as the batch");
        tx.segs = segs.As<Napi::Uint32Array>().Data();
      }
    } else {
      Napi::Value destsV = o.Get("dests"), tableV = o.Get("table");
      if (!IsU32Array(destsV) || !IsU32Array(tableV))
        THROW_TYPE(env, "sockets need dests: Uint32Array and table: Uint32Array (addr, port pairs)");
      auto dests = destsV.As<Napi::Uint32Array>();
      auto table = tableV.As<Napi::Uint32Array>();
      if (dests.ElementLength() < tx.max) tx.max = dests.ElementLength();
      // words per peer: the table's layout must be this socket's family's
      // (a PeerTable6 on an IPv4 socket would send to garbage)
      Napi::Value strideV = o.Get("tableStride");
      uint32_t stride = weft_table_stride(kind_);
      if (strideV.IsNumber() ? strideV.As<Napi::Number>().Uint32Value() != stride : stride != 2)
        THROW_TYPE(env, kind_ == WEFT_KIND_UDP6 ? "a udp6 socket sends through a PeerTable6 (tableStride 5)"
                                                : "an IPv4 socket sends through a PeerTable (tableStride 2)");
      tx.dests = dests.Data();
      tx.table = table.Data();
      tx.table_len = table.ElementLength() / stride;
      Napi::Value segs = o.Get("segs");
      if (!IsAbsent(segs)) {
        if (!IsU32Array(segs) || segs.As<Napi::Uint32Array>().ElementLength() < tx.max)
          THROW_TYPE(env, "segs must be a Uint32Array as long as the batch");
        tx.segs = segs.As<Napi::Uint32Array>().Data();
      }
      Napi::Value inner = o.Get("inner");
      if (inner.IsNumber()) tx.inner = inner.As<Napi::Number>().Uint32Value();
      tx.coalesce = o.Get("coalesce").ToBoolean();
    }
    tx_ = tx;
    txRef_ = Napi::Persistent(o.Held());
    return env.Undefined();
  }

  int ReadBatch() {
    if (!rx_.slab || fd_ < 0) return 0;
    return kind_ == WEFT_KIND_FD ? weft_fd_read_batch(fd_, &rx_, ctr_)
                                 : weft_sock_recv_batch(fd_, kind_, mmsg_, &rx_, ctr_);
  }

  // read(): one batch now, without waiting for readiness. -> count
  Napi::Value Read(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!rx_.slab) THROW_TYPE(env, "read() before setReceive()");
    int n = ReadBatch();
    if (n < 0) THROW_ERRNO(env, -n, kind_ == WEFT_KIND_FD ? "read" : "recvmmsg", "");
    if (n > 0) ctr_[WEFT_RX_BATCHES]++;
    return Napi::Number::New(env, n);
  }

  // send(count) -> packets consumed (sent or dropped); fewer than count means
  // the kernel queue is full (EAGAIN): keep the rest and wait for writable.
  // TUN with pieces: send(count, first, firstPiece) writes count writes from
  // write `first`, whose pieces start at `firstPiece` (a paced batch goes in
  // several calls); both default to 0.
  Napi::Value Send(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!tx_.slab) THROW_TYPE(env, "send() before setSend()");
    uint32_t count = info[0].As<Napi::Number>().Uint32Value();
    if (count > tx_.max) count = tx_.max;
    if (fd_ < 0) THROW_ERRNO(env, EBADF, "send", "(closed)");
    weft_tx_t tx = tx_;
    if (kind_ == WEFT_KIND_FD && info.Length() > 2) {
      uint32_t first = info[1].As<Napi::Number>().Uint32Value(), piece = info[2].As<Napi::Number>().Uint32Value();
      // every write has a piece at least: first <= piece; count is then within segs too
      if (first > piece || piece > tx.max || (!tx.segs && first != piece))
        THROW_TYPE(env, "send(count, first, firstPiece): first <= firstPiece <= the batch");
      tx.offsets += piece;
      tx.lengths += piece;
      if (tx.segs) tx.segs += first;
      tx.max -= piece;
      if (count > tx.max) count = tx.max;
    }
    int r = kind_ == WEFT_KIND_FD ? weft_fd_write_batch(fd_, &tx, count, ctr_)
                                  : weft_sock_send_batch(fd_, kind_, mmsg_, &tx, count, ctr_);
    if (r < 0) THROW_ERRNO(env, -r, kind_ == WEFT_KIND_FD ? "write" : "sendmmsg", "");
    ctr_[WEFT_TX_BATCHES]++;
    return Napi::Number::New(env, r);
  }

  // start(onRead: (n) => void, onWritable?: () => void, onTimer?: () => void)
  Napi::Value Start(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!info[0].IsFunction()) THROW_TYPE(env, "start(onRead, onWritable?, onTimer?)");
    if (fd_ < 0) THROW_ERRNO(env, EBADF, "start", "(closed)");
    onRead_ = Napi::Persistent(info[0].As<Napi::Function>());
    if (info[1].IsFunction()) onWritable_ = Napi::Persistent(info[1].As<Napi::Function>());
    if (info[2].IsFunction()) onTimer_ = Napi::Persistent(info[2].As<Napi::Function>());
    if (!poll_) {
      uv_loop_t *loop = nullptr;
      if (napi_get_uv_event_loop(env, &loop) != napi_ok) THROW_TYPE(env, "no event loop");
      poll_ = new uv_poll_t;
      int r = uv_poll_init(loop, poll_, fd_);
      if (r < 0) {
        delete poll_;
        poll_ = nullptr;
        THROW_ERRNO(env, -r, "uv_poll_init", "");
      }
      poll_->data = this;
      Ref();  // polling keeps the wrapper alive
    }
    reading_ = true;
    UpdatePoll();
    return env.Undefined();
  }

  // setReading(false) stops reading (backpressure); true resumes.
  Napi::Value SetReading(const Napi::CallbackInfo &info) {
    reading_ = info[0].ToBoolean();
    UpdatePoll();
    return info.Env().Undefined();
  }

  Napi::Value WantWritable(const Napi::CallbackInfo &info) {
    wantWrite_ = true;
    UpdatePoll();
    return info.Env().Undefined();
  }

  // wakeAfter(us): call onTimer once, us µs from now (1..1000000); a second
  // call before then moves the time. The timerfd is made on first use.
  Napi::Value WakeAfter(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    double us = info[0].As<Napi::Number>().DoubleValue();
    if (!(us >= 1 && us <= 1e6)) {
      Napi::RangeError::New(env, "wakeAfter(us): 1..1000000").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (fd_ < 0) THROW_ERRNO(env, EBADF, "wakeAfter", "(closed)");
    if (!timer_) {
      uv_loop_t *loop = nullptr;
      if (napi_get_uv_event_loop(env, &loop) != napi_ok) THROW_TYPE(env, "no event loop");
      int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
      if (tfd < 0) THROW_ERRNO(env, errno, "timerfd_create", "");
      timer_ = new uv_poll_t;
      int r = uv_poll_init(loop, timer_, tfd);
      if (r < 0) {
        ::close(tfd);
        delete timer_;
        timer_ = nullptr;
        THROW_ERRNO(env, -r, "uv_poll_init", "(timer)");
      }
      timerFd_ = tfd;
      timer_->data = this;
    }
    uint64_t ns = static_cast<uint64_t>(us * 1000);
    struct itimerspec t = {{0, 0}, {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)}};
    if (timerfd_settime(timerFd_, 0, &t, nullptr) < 0) THROW_ERRNO(env, errno, "timerfd_settime", "");
    uv_poll_start(timer_, UV_READABLE, &Io::OnTimer);  // watched only while a wake is due
    return env.Undefined();
  }

  static void OnTimer(uv_poll_t *h, int status, int events) {
    Io *self = static_cast<Io *>(h->data);
    if (!self || status < 0 || !(events & UV_READABLE)) return;
    uint64_t expirations;
    if (::read(self->timerFd_, &expirations, sizeof expirations) != sizeof expirations) return;  // moved: not yet
    uv_poll_stop(h);
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    self->Call(self->onTimer_, {});
  }

  void StopTimer() {
    if (!timer_) return;
    uv_poll_stop(timer_);
    timer_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t *>(timer_), [](uv_handle_t *h) { delete reinterpret_cast<uv_poll_t *>(h); });
    timer_ = nullptr;
    ::close(timerFd_);
    timerFd_ = -1;
  }

  // setBusyPoll(poller: BusyPoll | null): each batch read kicks it.
  Napi::Value SetBusyPoll(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    busy_ = nullptr;
    busyRef_.Reset();
    if (info[0].IsNull() || info[0].IsUndefined()) return env.Undefined();
    if (!info[0].IsObject() || !info[0].As<Napi::Object>().CheckTypeTag(&kBusyPollTag))
      THROW_TYPE(env, "setBusyPoll(poller: BusyPoll | null)");
    busy_ = BusyPoll::Unwrap(info[0].As<Napi::Object>());
    busyRef_ = Napi::Persistent(info[0].As<Napi::Object>());
    return env.Undefined();
  }

  // close(): idempotent; stops polling and closes the fd.
  Napi::Value Close(const Napi::CallbackInfo &info) {
    StopTimer();
    StopPoll();
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    onRead_.Reset();
    onWritable_.Reset();
    onTimer_.Reset();
    busy_ = nullptr;
    busyRef_.Reset();
    return info.Env().Undefined();
  }

  Napi::Value GetFd(const Napi::CallbackInfo &info) { return Napi::Number::New(info.Env(), fd_); }

  void UpdatePoll() {
    if (!poll_) return;
    int events = (reading_ ? UV_READABLE : 0) | (wantWrite_ ? UV_WRITABLE : 0);
    if (events == 0)
      uv_poll_stop(poll_);
    else
      uv_poll_start(poll_, events, &Io::OnPoll);
  }

  void StopPoll() {
    if (!poll_) return;
    uv_poll_stop(poll_);
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t *>(poll_), [](uv_handle_t *h) { delete reinterpret_cast<uv_poll_t *>(h); });
    poll_ = nullptr;
    Unref();
  }

  void Call(Napi::FunctionReference &fn, std::initializer_list<napi_value> args) {
    Napi::Env env = Env();
    if (fn.IsEmpty()) return;
    fn.MakeCallback(Value(), args);
    if (env.IsExceptionPending()) {
      // A throwing callback is a bug in the JS layer: surface it as an
      // uncaught exception rather than losing it inside libuv.
      Napi::Error e = env.GetAndClearPendingException();
      napi_fatal_exception(env, e.Value());
    }
  }

  static void OnPoll(uv_poll_t *h, int status, int events) {
    Io *self = static_cast<Io *>(h->data);
    if (!self) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    if (status < 0) {
      self->reading_ = false;
      self->wantWrite_ = false;
      self->UpdatePoll();
      self->Call(self->onRead_, {Napi::Number::New(env, status)});
      return;
    }
    if ((events & UV_WRITABLE) && self->wantWrite_) {
      self->wantWrite_ = false;
      self->UpdatePoll();
      self->Call(self->onWritable_, {});
      if (!self->poll_) return;  // closed inside the callback
    }
    if ((events & UV_READABLE) && self->reading_) {
      double bytes = self->ctr_[WEFT_RX_BYTES];
      int n = self->ReadBatch();
      if (n == 0) return;
      if (n < 0) {
        self->reading_ = false;  // fatal for this handle: tell JS once, stop
        self->UpdatePoll();
      } else {
        self->ctr_[WEFT_RX_BATCHES]++;
        if (self->busy_)
          self->busy_->Kick(static_cast<uint32_t>(n), static_cast<uint64_t>(self->ctr_[WEFT_RX_BYTES] - bytes));
      }
      self->Call(self->onRead_, {Napi::Number::New(env, n)});
    }
  }

  int fd_ = -1;
  int kind_ = WEFT_KIND_FD;
  uint32_t max_ = 0;
  double *ctr_ = nullptr;
  Napi::ObjectReference ctrRef_, rxRef_, txRef_;
  weft_rx_t rx_;
  weft_tx_t tx_;
  weft_mmsg_t *mmsg_ = nullptr;
  uv_poll_t *poll_ = nullptr;
  bool reading_ = false, wantWrite_ = false;
  Napi::FunctionReference onRead_, onWritable_, onTimer_;
  uv_poll_t *timer_ = nullptr;  // wakeAfter's timerfd, watched on this loop
  int timerFd_ = -1;
  BusyPoll *busy_ = nullptr;
  Napi::ObjectReference busyRef_;
};

// ---------------------------------------------------------- functions -----

std::string Str(const Napi::Value &v) {
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

// tunOpen(name, flags) -> { fd, name }
Napi::Value TunOpen(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsNumber()) THROW_TYPE(env, "tunOpen(name: string, flags: number)");
  std::string name = Str(info[0]);
  char out[IFNAMSIZ] = {0};
  const char *failed = "";
  int fd = weft_tun_open(name.c_str(), info[1].As<Napi::Number>().Int32Value(), out, &failed);
  if (fd < 0) THROW_ERRNO(env, -fd, failed, failed[0] == 'o' ? "" : name);
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", fd);
  o.Set("name", out);
  return o;
}

Napi::Value TunSetOffload(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int err = weft_tun_set_offload(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Uint32Value());
  if (err < 0) THROW_ERRNO(env, -err, "ioctl(TUNSETOFFLOAD)", "");
  return env.Undefined();
}

Napi::Value TunFeatures(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  unsigned int f = 0;
  int err = weft_tun_features(&f);
  if (err < 0) THROW_ERRNO(env, -err, "ioctl(TUNGETFEATURES)", "/dev/net/tun");
  return Napi::Number::New(env, f);
}

Napi::Value LinkSetMtu(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = Str(info[0]);
  int err = weft_link_set_mtu(name.c_str(), info[1].As<Napi::Number>().Int32Value());
  if (err < 0) THROW_ERRNO(env, -err, "ioctl(SIOCSIFMTU)", name);
  return env.Undefined();
}

Napi::Value LinkSetUp(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = Str(info[0]);
  int err = weft_link_set_up(name.c_str(), info[1].ToBoolean() ? 1 : 0);
  if (err < 0) THROW_ERRNO(env, -err, "ioctl(SIOCSIFFLAGS)", name);
  return env.Undefined();
}

Napi::Value LinkIndex(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = Str(info[0]);
  int r = weft_link_index(name.c_str());
  if (r < 0) THROW_ERRNO(env, -r, "ioctl(SIOCGIFINDEX)", name);
  return Napi::Number::New(env, r);
}

weft_sock_opts_t SockOpts(const Napi::Value &v) {
  weft_sock_opts_t o = {0, 0, 0, 0, -1};
  if (!v.IsObject()) return o;
  Napi::Object obj = v.As<Napi::Object>();
  auto num = [&](const char *k, int def) {
    Napi::Value x = obj.Get(k);
    return x.IsNumber() ? x.As<Napi::Number>().Int32Value() : (x.IsBoolean() ? (x.ToBoolean() ? 1 : 0) : def);
  };
  o.reuseport = num("reusePort", 0);
  o.rcvbuf = num("rcvbuf", 0);
  o.sndbuf = num("sndbuf", 0);
  o.gro = num("gro", 0);
  o.pmtudisc = num("pmtudisc", -1);
  return o;
}

// udp4Open(addr: u32, port, opts?) -> fd
Napi::Value Udp4Open(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) THROW_TYPE(env, "udp4Open(addr: u32, port: number, opts?)");
  weft_sock_opts_t o = SockOpts(info[2]);
  uint32_t addr = info[0].As<Napi::Number>().Uint32Value();
  uint32_t port = info[1].As<Napi::Number>().Uint32Value();
  int fd = weft_udp4_open(addr, static_cast<uint16_t>(port), &o);
  if (fd < 0) {
    char where[64];
    snprintf(where, sizeof where, "%u.%u.%u.%u:%u", addr >> 24, (addr >> 16) & 255, (addr >> 8) & 255, addr & 255,
             port);
    THROW_ERRNO(env, -fd, "socket/bind(udp4)", where);
  }
  return Napi::Number::New(env, fd);
}

// udp6Open(addr: Buffer (16 bytes, all zero = any), port, opts?) -> fd
Napi::Value Udp6Open(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer() || info[0].As<Napi::Buffer<uint8_t>>().Length() != 16 || !info[1].IsNumber())
    THROW_TYPE(env, "udp6Open(addr: Buffer of 16 bytes, port: number, opts?)");
  weft_sock_opts_t o = SockOpts(info[2]);
  uint8_t addr[16];
  std::memcpy(addr, info[0].As<Napi::Buffer<uint8_t>>().Data(), 16);
  uint32_t port = info[1].As<Napi::Number>().Uint32Value();
  int fd = weft_udp6_open(addr, static_cast<uint16_t>(port), &o);
  if (fd < 0) {
    char ip[INET6_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET6, addr, ip, sizeof ip);
    THROW_ERRNO(env, -fd, "socket/bind(udp6)", "[" + std::string(ip) + "]:" + std::to_string(port));
  }
  return Napi::Number::New(env, fd);
}

// raw4Open(protocol, bindAddr: u32, opts?) -> fd
Napi::Value Raw4Open(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) THROW_TYPE(env, "raw4Open(protocol, bindAddr: u32, opts?)");
  weft_sock_opts_t o = SockOpts(info[2]);
  int proto = info[0].As<Napi::Number>().Int32Value();
  int fd = weft_raw4_open(proto, info[1].As<Napi::Number>().Uint32Value(), &o);
  if (fd < 0) THROW_ERRNO(env, -fd, "socket(AF_INET, SOCK_RAW)", "protocol " + std::to_string(proto));
  return Napi::Number::New(env, fd);
}

Napi::Value SockLocalPort(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int r = weft_sock_local_port(info[0].As<Napi::Number>().Int32Value());
  if (r < 0) THROW_ERRNO(env, -r, "getsockname", "");
  return Napi::Number::New(env, r);
}

Napi::Value SockSetGro(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int r = weft_sock_set_gro(info[0].As<Napi::Number>().Int32Value(), info[1].ToBoolean() ? 1 : 0);
  if (r < 0) THROW_ERRNO(env, -r, "setsockopt(UDP_GRO)", "");
  return env.Undefined();
}

Napi::Value SockSteerInnerFlow(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int r = weft_sock_steer_inner_flow(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Uint32Value());
  if (r < 0) THROW_ERRNO(env, -r, "setsockopt(SO_ATTACH_REUSEPORT_CBPF)", "");
  return env.Undefined();
}

Napi::Value SockBuffers(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int rcv = 0, snd = 0;
  int r = weft_sock_buffers(info[0].As<Napi::Number>().Int32Value(), &rcv, &snd);
  if (r < 0) THROW_ERRNO(env, -r, "getsockopt(SO_RCVBUF)", "");
  Napi::Object o = Napi::Object::New(env);
  o.Set("rcvbuf", rcv);
  o.Set("sndbuf", snd);
  return o;
}

Napi::Value CloseFd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (::close(info[0].As<Napi::Number>().Int32Value()) < 0) THROW_ERRNO(env, errno, "close", "");
  return env.Undefined();
}

// socketPair() -> [fd, fd]: a non-blocking SOCK_SEQPACKET pair. It keeps
// packet boundaries like a TUN device does, so tests (and benchmarks) can run
// the real pipeline over an in-memory "TUN" without privileges.
Napi::Value SocketPair(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
    THROW_ERRNO(env, errno, "socketpair", "");
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, fds[0]);
  a.Set(1u, fds[1]);
  return a;
}

Napi::Value ProbeOffloads(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  weft_offloads_t p;
  weft_probe_offloads(&p);
  Napi::Object o = Napi::Object::New(env);
  auto tri = [&](int v) -> Napi::Value {
    if (v < 0) return Napi::String::New(env, weft_errno_name(-v));  // could not probe: why
    return Napi::Boolean::New(env, v != 0);
  };
  o.Set("udpGso", Napi::Boolean::New(env, p.udp_gso));
  o.Set("udpGro", Napi::Boolean::New(env, p.udp_gro));
  o.Set("tun", Napi::Boolean::New(env, p.tun_present));
  o.Set("tunVnetHdr", Napi::Boolean::New(env, p.tun_vnet_hdr));
  o.Set("tunMultiQueue", Napi::Boolean::New(env, p.tun_multiqueue));
  o.Set("tunTso", tri(p.tun_tso));
  o.Set("tunUso", tri(p.tun_uso));
  return o;
}

// spawn(argv: string[]) -> { pid, stdin, stdout, stderr } (fds), without fork()
Napi::Value Spawn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray() || info[0].As<Napi::Array>().Length() == 0) THROW_TYPE(env, "spawn(argv: string[])");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<std::string> args;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    if (!v.IsString()) THROW_TYPE(env, "spawn(argv: string[])");
    args.push_back(v.As<Napi::String>().Utf8Value());
  }
  std::vector<char *> argv;
  for (auto &s : args) argv.push_back(const_cast<char *>(s.c_str()));
  argv.push_back(nullptr);
  int fds[3];
  int pid = weft_spawn(argv.data(), fds);
  if (pid < 0) THROW_ERRNO(env, -pid, "posix_spawnp", args[0]);
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", pid);
  o.Set("stdin", fds[0]);
  o.Set("stdout", fds[1]);
  o.Set("stderr", fds[2]);
  return o;
}

// spawnWait(pid) -> null while it runs, else { code, signal } (code -1 when killed by a signal)
Napi::Value SpawnWait(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int code = 0, sig = 0;
  int r = weft_spawn_wait(info[0].As<Napi::Number>().Int32Value(), &code, &sig);
  if (r < 0) THROW_ERRNO(env, -r, "waitpid", "");
  if (r == 0) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("code", code);
  o.Set("signal", sig);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Io", Io::Init(env));
  exports.Set("BusyPoll", BusyPoll::Init(env));
  exports.Set("tunOpen", Napi::Function::New<TunOpen>(env, "tunOpen"));
  exports.Set("tunSetOffload", Napi::Function::New<TunSetOffload>(env, "tunSetOffload"));
  exports.Set("tunFeatures", Napi::Function::New<TunFeatures>(env, "tunFeatures"));
  exports.Set("linkSetMtu", Napi::Function::New<LinkSetMtu>(env, "linkSetMtu"));
  exports.Set("linkSetUp", Napi::Function::New<LinkSetUp>(env, "linkSetUp"));
  exports.Set("linkIndex", Napi::Function::New<LinkIndex>(env, "linkIndex"));
  exports.Set("udp4Open", Napi::Function::New<Udp4Open>(env, "udp4Open"));
  exports.Set("udp6Open", Napi::Function::New<Udp6Open>(env, "udp6Open"));
  exports.Set("raw4Open", Napi::Function::New<Raw4Open>(env, "raw4Open"));
  exports.Set("sockLocalPort", Napi::Function::New<SockLocalPort>(env, "sockLocalPort"));
  exports.Set("sockSetGro", Napi::Function::New<SockSetGro>(env, "sockSetGro"));
  exports.Set("sockSteerInnerFlow", Napi::Function::New<SockSteerInnerFlow>(env, "sockSteerInnerFlow"));
  exports.Set("sockBuffers", Napi::Function::New<SockBuffers>(env, "sockBuffers"));
  exports.Set("closeFd", Napi::Function::New<CloseFd>(env, "closeFd"));
  exports.Set("socketPair", Napi::Function::New<SocketPair>(env, "socketPair"));
  exports.Set("probeOffloads", Napi::Function::New<ProbeOffloads>(env, "probeOffloads"));
  exports.Set("spawn", Napi::Function::New<Spawn>(env, "spawn"));
  exports.Set("spawnWait", Napi::Function::New<SpawnWait>(env, "spawnWait"));
  InitWg(env, exports);           // exports.wg: WireGuard crypto (wg_addon.cc; wg.h, force-included)
  InitPeerOffload(env, exports);  // exports.peerOffload: the peer offload (peer_offload_addon.cc)

  Napi::Array names = Napi::Array::New(env, WEFT_COUNTER_COUNT);
  for (uint32_t i = 0; i < WEFT_COUNTER_COUNT; i++) names.Set(i, weft_counter_names[i]);
  exports.Set("counterNames", names);

  Napi::Object c = Napi::Object::New(env);
  c.Set("TUN_TAP", static_cast<double>(WEFT_TUN_TAP));
  c.Set("TUN_VNET_HDR", static_cast<double>(WEFT_TUN_VNET_HDR));
  c.Set("TUN_MULTIQUEUE", static_cast<double>(WEFT_TUN_MULTIQUEUE));
  c.Set("TUN_EXCL", static_cast<double>(WEFT_TUN_EXCL));
  c.Set("TUN_F_CSUM", static_cast<double>(TUN_F_CSUM));
  c.Set("TUN_F_TSO4", static_cast<double>(TUN_F_TSO4));
  c.Set("TUN_F_TSO6", static_cast<double>(TUN_F_TSO6));
  c.Set("TUN_F_TSO_ECN", static_cast<double>(TUN_F_TSO_ECN));
  c.Set("TUN_F_USO4", static_cast<double>(TUN_F_USO4));
  c.Set("TUN_F_USO6", static_cast<double>(TUN_F_USO6));
  c.Set("KIND_FD", static_cast<double>(WEFT_KIND_FD));
  c.Set("KIND_UDP4", static_cast<double>(WEFT_KIND_UDP4));
  c.Set("KIND_RAW4", static_cast<double>(WEFT_KIND_RAW4));
  c.Set("KIND_UDP6", static_cast<double>(WEFT_KIND_UDP6));
  c.Set("IPPROTO_IPIP", static_cast<double>(IPPROTO_IPIP));
  c.Set("IP_PMTUDISC_DONT", static_cast<double>(IP_PMTUDISC_DONT));
  c.Set("IP_PMTUDISC_DO", static_cast<double>(IP_PMTUDISC_DO));
  c.Set("MAX_BATCH", static_cast<double>(kMaxBatch));
  c.Set("BUSY_COUNTERS", static_cast<double>(WEFT_BUSY_COUNTER_COUNT));
  c.Set("BUSY_NS", static_cast<double>(WEFT_BUSY_NS));
  c.Set("BUSY_CAUGHT", static_cast<double>(WEFT_BUSY_CAUGHT));
  c.Set("BUSY_SUSPENDED", static_cast<double>(WEFT_BUSY_SUSPENDED));
  c.Set("BUSY_LIGHT_PACKETS", static_cast<double>(WEFT_BUSY_LIGHT_PACKETS));
  c.Set("BUSY_LIGHT_BYTES", static_cast<double>(WEFT_BUSY_LIGHT_BYTES));
  c.Set("BUSY_SUSPEND_NS", static_cast<double>(WEFT_BUSY_SUSPEND_NS));
  // the virtio_net_hdr (tun_io.c holds these to <linux/virtio_net.h>)
  c.Set("VNET_HDR_LEN", static_cast<double>(WEFT_VNET_HDR_LEN));
  c.Set("VNET_F_NEEDS_CSUM", static_cast<double>(WEFT_VNET_F_NEEDS_CSUM));
  c.Set("VNET_F_DATA_VALID", static_cast<double>(WEFT_VNET_F_DATA_VALID));
  c.Set("GSO_NONE", static_cast<double>(WEFT_GSO_NONE));
  c.Set("GSO_TCPV4", static_cast<double>(WEFT_GSO_TCPV4));
  c.Set("GSO_TCPV6", static_cast<double>(WEFT_GSO_TCPV6));
  c.Set("GSO_UDP_L4", static_cast<double>(WEFT_GSO_UDP_L4));
  // the send and receive contracts (weft.h)
  c.Set("SEGS_PARTIAL", static_cast<double>(WEFT_SEGS_PARTIAL));
  c.Set("VXLAN_RCO_BYTE1", static_cast<double>(WEFT_VXLAN_RCO_BYTE1));
  c.Set("RX_CHECK_SEGMENTS", static_cast<double>(WEFT_RX_CHECK_SEGMENTS));
  exports.Set("constants", c);
  return exports;
}

}  // namespace

NODE_API_MODULE(weft_native, Init)
