// Netlink notifications on the event loop: a socket joined to multicast groups in one namespace that also hears
// every namespace the listening one has an id for (NETLINK_LISTEN_ALL_NSID), watched by a libuv poll handle. Each
// wake-up hands JS one batch: the datagrams, the namespace id each came from (the kernel's cmsg; -1 when it came
// from the listening namespace itself), and whether the kernel dropped notifications since the last batch
// (ENOBUFS: the receive buffer overflowed, so the listener must assume anything changed).
//
// Why native: the `netlink` npm package can join groups but neither sets NETLINK_LISTEN_ALL_NSID nor reads the
// nsid cmsg, and without them one socket per customer namespace would be needed (thousands of fds).
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "common.h"
#include "netns_scope.h"
#include "poll_handle.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace ot {

namespace {

// One recvmsg per datagram; a wake-up reads at most this many before yielding to the event loop (the poll handle
// is level-triggered: what is left wakes it again at once).
constexpr int kMaxPerWake = 4096;
// Notifications are small (a route or link message is well under 4 KiB); nft batches can be larger.
constexpr size_t kBufSize = 64 * 1024;

class NetlinkWatch : public Napi::ObjectWrap<NetlinkWatch> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NetlinkWatch",
                       {InstanceMethod("close", &NetlinkWatch::Close), InstanceMethod("ref", &NetlinkWatch::RefLoop),
                        InstanceMethod("unref", &NetlinkWatch::UnrefLoop), InstanceMethod("portId", &NetlinkWatch::PortId)});
  }

  // new NetlinkWatch(netns: string | null, protocol, groups: number[], rcvbuf,
  //                  onBatch: (datagrams: Buffer[], nsids: number[], overflowed: boolean) => void)
  explicit NetlinkWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetlinkWatch>(info) {
    Napi::Env env = info.Env();
    std::string netns;
    ArgOptString(info, 0, "netns", &netns);
    int protocol = ArgInt(info, 1, "protocol");
    if (!info[2].IsArray()) throw Napi::TypeError::New(env, "groups must be an array of numbers");
    Napi::Array groups = info[2].As<Napi::Array>();
    int rcvbuf = ArgInt(info, 3, "rcvbuf");
    if (!info[4].IsFunction()) throw Napi::TypeError::New(env, "onBatch must be a function");
    callback_ = Napi::Persistent(info[4].As<Napi::Function>());

    {
      // The socket belongs to the namespace it is created in; the scope switches back at once.
      NetnsScope scope(env, netns);
      fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
    }
    if (fd_ < 0) ThrowErrno(env, "netlink socket", errno);
    // A burst (1000 namespaces created, a flush) must not overflow the buffer; FORCE needs CAP_NET_ADMIN, which the
    // agent has — fall back to the capped SO_RCVBUF otherwise.
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf))
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr)) Fail(env, "bind netlink socket");
    socklen_t len = sizeof addr;
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len)) Fail(env, "getsockname");
    port_id_ = addr.nl_pid;
    for (uint32_t i = 0; i < groups.Length(); i++) {
      int group = groups.Get(i).As<Napi::Number>().Int32Value();
      if (setsockopt(fd_, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group))
        Fail(env, "join netlink group " + std::to_string(group));
    }
    int on = 1;
    if (setsockopt(fd_, SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, &on, sizeof on)) Fail(env, "NETLINK_LISTEN_ALL_NSID");

    try {
      poll_.Start(env, fd_, this, &NetlinkWatch::OnReadable);
    } catch (...) {
      close(fd_);
      fd_ = -1;
      throw;
    }
    buf_.resize(kBufSize);
    Ref();  // alive while polling, even if JS drops every reference
  }

  ~NetlinkWatch() override { Stop(); }

 private:
  [[noreturn]] void Fail(Napi::Env env, const std::string& what) {
    int e = errno;
    close(fd_);
    fd_ = -1;
    ThrowErrno(env, what, e);
  }

  static void OnReadable(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<NetlinkWatch*>(handle->data);
    if (self->fd_ < 0) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    try {
      self->Drain();
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
    // An overflow sets the socket's error, which epoll reports as POLLERR — and libuv stops a poll handle on
    // POLLERR (status UV_EBADF). Drain() has read the error (ENOBUFS) and the queue: watch again.
    if (status < 0 && self->fd_ >= 0) self->poll_.Restart();
  }

  void Drain() {
    Napi::Env env = Env();
    std::vector<Napi::Value> datagrams;
    std::vector<int32_t> nsids;
    bool overflowed = false;
    for (int n = 0; n < kMaxPerWake; n++) {
      iovec iov{buf_.data(), buf_.size()};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int)) * 2];
      msghdr msg{};
      sockaddr_nl from{};
      msg.msg_name = &from;
      msg.msg_namelen = sizeof from;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t got = recvmsg(fd_, &msg, MSG_DONTWAIT);
      if (got < 0) {
        if (errno == EINTR) continue;
        if (errno == ENOBUFS) {  // notifications were lost: the socket itself stays usable
          overflowed = true;
          continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        throw ErrnoError(env, "recvmsg on the netlink watch", errno);
      }
      if (msg.msg_flags & MSG_TRUNC) {  // a notification larger than the buffer: treat it as lost
        overflowed = true;
        continue;
      }
      if (from.nl_pid != 0) continue;  // only the kernel's notifications
      int32_t nsid = -1;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_NETLINK && c->cmsg_type == NETLINK_LISTEN_ALL_NSID)
          std::memcpy(&nsid, CMSG_DATA(c), sizeof nsid);
      datagrams.push_back(Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(buf_.data()), static_cast<size_t>(got)));
      nsids.push_back(nsid);
    }
    if (datagrams.empty() && !overflowed) return;
    Napi::Array arr = Napi::Array::New(env, datagrams.size());
    Napi::Array ids = Napi::Array::New(env, nsids.size());
    for (size_t i = 0; i < datagrams.size(); i++) {
      arr.Set(i, datagrams[i]);
      ids.Set(i, Napi::Number::New(env, nsids[i]));
    }
    callback_.MakeCallback(Value(), {arr, ids, Napi::Boolean::New(env, overflowed)});
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (fd_ >= 0) {
      Stop();
      Unref();
    }
    return info.Env().Undefined();
  }

  Napi::Value PortId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), port_id_); }

  Napi::Value RefLoop(const Napi::CallbackInfo& info) {
    poll_.Ref();
    return info.Env().Undefined();
  }
  Napi::Value UnrefLoop(const Napi::CallbackInfo& info) {
    poll_.Unref();
    return info.Env().Undefined();
  }

  void Stop() {
    poll_.Stop();  // libuv no longer polls the fd: it can go
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

  int fd_ = -1;
  uint32_t port_id_ = 0;
  PollHandle poll_;
  std::vector<char> buf_;
  Napi::FunctionReference callback_;
};

}  // namespace

void InitNlwatch(Napi::Env env, Napi::Object exports) { exports.Set("NetlinkWatch", NetlinkWatch::Define(env)); }

}  // namespace ot
