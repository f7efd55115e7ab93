// PollHandle: a libuv poll handle watching one fd for readability on the JS thread's loop, for the addon's objects
// that deliver kernel events to JS without a thread of their own (ringbuf.cc, nlwatch.cc).
#pragma once

#include <uv.h>

#include <string>

#include "common.h"

namespace ot {

class PollHandle {
 public:
  // Starts watching `fd`; `cb` gets the handle, whose data is `owner`. Throws a JS Error on failure.
  void Start(Napi::Env env, int fd, void* owner, uv_poll_cb cb) {
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    poll_->data = owner;
    int err = uv_poll_init(loop, poll_, fd);
    if (err) {
      delete poll_;  // never known to the loop
      poll_ = nullptr;
      throw Napi::Error::New(env, std::string("uv_poll_init: ") + uv_strerror(err));
    }
    cb_ = cb;
    err = uv_poll_start(poll_, UV_READABLE, cb);
    if (err) {
      Stop();  // known to the loop: libuv must close it
      throw Napi::Error::New(env, std::string("uv_poll_start: ") + uv_strerror(err));
    }
  }

  // libuv stops a poll handle when the fd reports an error (POLLERR): start it again once the error is read.
  void Restart() {
    if (poll_) uv_poll_start(poll_, UV_READABLE, cb_);
  }

  bool active() const { return poll_ != nullptr; }
  void Ref() {
    if (poll_) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
  }
  void Unref() {
    if (poll_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  }

  // Stops watching; libuv frees the handle later. The fd may be closed once this returns (libuv no longer polls it).
  void Stop() {
    if (!poll_) return;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }

 private:
  uv_poll_t* poll_ = nullptr;
  uv_poll_cb cb_ = nullptr;
};

}  // namespace ot
