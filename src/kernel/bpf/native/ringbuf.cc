// Ring buffer consumption on the event loop: libbpf's epoll fd is watched by a libuv poll handle, and records are
// delivered to JS in batches (one call per wake-up, an array of Buffers) — no thread, no blocking.
#include <bpf/libbpf.h>

#include <vector>

#include "common.h"
#include "poll_handle.h"

namespace ot {

namespace {

class RingBuffer : public Napi::ObjectWrap<RingBuffer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RingBuffer",
                       {InstanceMethod("consume", &RingBuffer::Consume), InstanceMethod("close", &RingBuffer::Close),
                        InstanceMethod("ref", &RingBuffer::RefLoop), InstanceMethod("unref", &RingBuffer::UnrefLoop)});
  }

  // new RingBuffer(mapFd, onRecords: (records: Buffer[]) => void)
  explicit RingBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingBuffer>(info) {
    Napi::Env env = info.Env();
    int fd = ArgInt(info, 0, "mapFd");
    if (!info[1].IsFunction()) throw Napi::TypeError::New(env, "onRecords must be a function");
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    ClearLog();
    rb_ = ring_buffer__new(fd, &RingBuffer::OnSample, this, nullptr);
    if (!rb_) ThrowErrno(env, "ring_buffer__new", errno);
    try {
      poll_.Start(env, ring_buffer__epoll_fd(rb_), this, &RingBuffer::OnReadable);
    } catch (...) {
      ring_buffer__free(rb_);
      rb_ = nullptr;
      throw;
    }
    Ref();  // alive while polling, even if JS drops every reference
  }

  ~RingBuffer() override { Stop(); }

 private:
  static int OnSample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<RingBuffer*>(ctx);
    self->pending_.emplace_back(static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
    return 0;
  }

  static void OnReadable(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<RingBuffer*>(handle->data);
    if (!self->rb_) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    try {
      self->Drain(true);
    } catch (const Napi::Error& e) {
      // An exception in the JS callback: report it like any uncaught exception.
      napi_fatal_exception(env, e.Value());
    }
  }

  // Consumes what the ring holds and hands it to JS; returns the number of records.
  size_t Drain(bool asCallback) {
    Napi::Env env = Env();
    int n = ring_buffer__consume(rb_);
    if (n < 0) ThrowErrno(env, "ring_buffer__consume", n);
    if (pending_.empty()) return 0;
    std::vector<std::vector<uint8_t>> records;
    records.swap(pending_);
    Napi::Array arr = Napi::Array::New(env, records.size());
    for (size_t i = 0; i < records.size(); i++)
      arr.Set(i, Napi::Buffer<uint8_t>::Copy(env, records[i].data(), records[i].size()));
    if (asCallback)
      callback_.MakeCallback(Value(), {arr});
    else
      callback_.Call(Value(), {arr});
    return records.size();
  }

  // consume() → records delivered now (synchronously, through the callback).
  Napi::Value Consume(const Napi::CallbackInfo& info) {
    if (!rb_) throw Napi::Error::New(info.Env(), "ring buffer is closed");
    return Napi::Number::New(info.Env(), static_cast<double>(Drain(false)));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (rb_) {
      Stop();
      Unref();
    }
    return info.Env().Undefined();
  }

  Napi::Value RefLoop(const Napi::CallbackInfo& info) {
    poll_.Ref();
    return info.Env().Undefined();
  }
  Napi::Value UnrefLoop(const Napi::CallbackInfo& info) {
    poll_.Unref();
    return info.Env().Undefined();
  }

  void Stop() {
    poll_.Stop();
    if (rb_) {
      ring_buffer__free(rb_);  // closes the epoll fd, after libuv stopped watching it
      rb_ = nullptr;
    }
  }

  ring_buffer* rb_ = nullptr;
  PollHandle poll_;
  Napi::FunctionReference callback_;
  std::vector<std::vector<uint8_t>> pending_;
};

}  // namespace

void InitRingbuf(Napi::Env env, Napi::Object exports) { exports.Set("RingBuffer", RingBuffer::Define(env)); }

}  // namespace ot
