// Everything that happens inside a network namespace: XDP and tc attach/detach/query, ifindex, netns cookie.
//
// setns(CLONE_NEWNET) switches only the calling thread. These calls are synchronous and short (DESIGN.md §2:
// in-process setns + bpf_tc_hook_create/bpf_tc_attach took 32–35 µs), so they run on the JS thread: NetnsScope
// enters the target netns and always switches back before the call returns, so no JS code ever runs in another
// netns. If switching back fails the process aborts: continuing with the JS thread in a customer's netns would
// silently put every later socket and netlink call in the wrong place.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "common.h"
#include "netns_scope.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace ot {

namespace {

// ifIndex(netns, name) → ifindex of the device in that netns.
Napi::Value IfIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ns = NetnsArg(info, 0);
  std::string name = ArgString(info, 1, "name");
  unsigned idx;
  {
    NetnsScope scope(env, ns);
    idx = if_nametoindex(name.c_str());
  }
  if (idx == 0) ThrowErrno(env, "no device " + name + (ns.empty() ? "" : " in " + ns), errno ? errno : ENODEV);
  return Napi::Number::New(env, idx);
}

// netnsCookie(netns) → bigint: the cookie BPF programs see (bpf_get_netns_cookie, net->net_cookie).
Napi::Value NetnsCookie(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ns = NetnsArg(info, 0);
  int s;
  {
    NetnsScope scope(env, ns);
    s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);  // a socket belongs to the netns it was created in
  }
  if (s < 0) ThrowErrno(env, "socket", errno);
  uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  int err = getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len);
  int e = errno;
  close(s);
  if (err) ThrowErrno(env, "getsockopt(SO_NETNS_COOKIE)", e);
  return Napi::BigInt::New(env, cookie);
}

// withNetns(netns, fn) → fn(): calls fn synchronously with the JS thread inside netns, then switches back (also
// when fn throws). What fn creates there stays there: a netlink socket, a /proc/sys/net file opened in it, an nft
// context. fn must be synchronous: an await inside it would run later, in the original netns.
Napi::Value WithNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ns = NetnsArg(info, 0);
  if (info.Length() < 2 || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "fn: must be a function").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Function fn = info[1].As<Napi::Function>();
  NetnsScope scope(env, ns);
  // A JS exception propagates after the scope's destructor has switched back.
  return fn.Call(env.Global(), {});
}

// xdpAttach(netns, ifindex, progFd, flags, oldProgFd): bpf_xdp_attach. progFd -1 detaches. With oldProgFd >= 0
// the kernel replaces atomically only if that program is the one attached (XDP_FLAGS_REPLACE), else EEXIST.
Napi::Value XdpAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ns = NetnsArg(info, 0);
  int ifindex = ArgInt(info, 1, "ifindex");
  int progFd = ArgInt(info, 2, "progFd");
  uint32_t flags = ArgU32(info, 3, "flags");
  int oldFd = ArgInt(info, 4, "oldProgFd");
  OT_OPTS(bpf_xdp_attach_opts, opts);
  if (oldFd >= 0) {
    opts.old_prog_fd = oldFd;
    flags |= XDP_FLAGS_REPLACE;
  }
  ClearLog();
  int err;
  {
    NetnsScope scope(env, ns);
    err = bpf_xdp_attach(ifindex, progFd, flags, &opts);
  }
  if (err) ThrowErrno(env, progFd < 0 ? "detach XDP" : "attach XDP", err);
  return env.Undefined();
}

// The XDP state of one device, as libbpf's bpf_xdp_query reports it, from one RTM_GETLINK of that ifindex:
// bpf_xdp_query (libbpf 1.1) dumps every link of the netns and filters in user space, which cost a dump of 2000
// veths per query on a host with 1000 customers. Returns 0 or -errno.
struct XdpInfo {
  uint32_t progId = 0, drvProgId = 0, skbProgId = 0, hwProgId = 0;
  uint8_t attachMode = 0;  // XDP_ATTACHED_*
};

int QueryXdpOne(int ifindex, XdpInfo* out) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return -errno;
  struct {
    nlmsghdr nh;
    ifinfomsg ifi;
    rtattr ext;  // IFLA_EXT_MASK: skip the statistics (most of a link message)
    uint32_t mask;
  } req{};
  req.nh.nlmsg_len = sizeof req;
  req.nh.nlmsg_type = RTM_GETLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.nh.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  req.ifi.ifi_index = ifindex;
  req.ext.rta_type = IFLA_EXT_MASK;
  req.ext.rta_len = RTA_LENGTH(sizeof(uint32_t));
  req.mask = RTEXT_FILTER_SKIP_STATS;
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  int err = 0;
  if (sendto(s, &req, sizeof req, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) err = -errno;
  // One link without statistics fits easily; a bigger answer is truncated (MSG_TRUNC) and reported.
  alignas(nlmsghdr) static thread_local char buf[32768];
  ssize_t n = err ? -1 : recv(s, buf, sizeof buf, MSG_TRUNC);
  if (!err && n < 0) err = -errno;
  if (!err && n > static_cast<ssize_t>(sizeof buf)) err = -EMSGSIZE;
  close(s);
  if (err) return err;
  auto* nh = reinterpret_cast<nlmsghdr*>(buf);
  if (!NLMSG_OK(nh, static_cast<unsigned>(n))) return -EBADMSG;
  if (nh->nlmsg_type == NLMSG_ERROR) {
    auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(nh));
    return e->error ? e->error : -EBADMSG;
  }
  if (nh->nlmsg_type != RTM_NEWLINK) return -EBADMSG;
  auto* ifi = static_cast<ifinfomsg*>(NLMSG_DATA(nh));
  int len = static_cast<int>(nh->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(sizeof *ifi));
  for (rtattr* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if ((a->rta_type & ~NLA_F_NESTED) != IFLA_XDP) continue;
    int xlen = static_cast<int>(RTA_PAYLOAD(a));
    for (rtattr* x = static_cast<rtattr*>(RTA_DATA(a)); RTA_OK(x, xlen); x = RTA_NEXT(x, xlen)) {
      uint32_t v = 0;
      if (x->rta_type == IFLA_XDP_ATTACHED) {
        out->attachMode = *static_cast<uint8_t*>(RTA_DATA(x));
        continue;
      }
      if (RTA_PAYLOAD(x) < sizeof v) continue;
      std::memcpy(&v, RTA_DATA(x), sizeof v);
      if (x->rta_type == IFLA_XDP_PROG_ID) out->progId = v;
      else if (x->rta_type == IFLA_XDP_DRV_PROG_ID) out->drvProgId = v;
      else if (x->rta_type == IFLA_XDP_SKB_PROG_ID) out->skbProgId = v;
      else if (x->rta_type == IFLA_XDP_HW_PROG_ID) out->hwProgId = v;
    }
  }
  // libbpf reports the single program of the mode in use as prog_id; the kernel sends IFLA_XDP_PROG_ID only then.
  return 0;
}

// xdpQuery(netns, ifindex) → {progId, drvProgId, skbProgId, hwProgId, attachMode}: what bpf_xdp_query returns,
// from one RTM_GETLINK of the device (twin: `ip -n NETNS -d link show IF`, the xdp part).
Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ns = NetnsArg(info, 0);
  int ifindex = ArgInt(info, 1, "ifindex");
  XdpInfo x;
  int err;
  {
    NetnsScope scope(env, ns);
    err = QueryXdpOne(ifindex, &x);
  }
  if (err) ThrowErrno(env, "query XDP", err);
  Napi::Object r = Napi::Object::New(env);
  r.Set("progId", x.progId);
  r.Set("drvProgId", x.drvProgId);
  r.Set("skbProgId", x.skbProgId);
  r.Set("hwProgId", x.hwProgId);
  r.Set("attachMode", x.attachMode);
  return r;
}

void InitHook(bpf_tc_hook* hook, int ifindex, uint32_t point) {
  std::memset(hook, 0, sizeof *hook);
  hook->sz = sizeof *hook;
  hook->ifindex = ifindex;
  hook->attach_point = static_cast<bpf_tc_attach_point>(point);
}

// tcAttach(netns, ifindex, point, progFd, handle, priority, replace) → {handle, priority, progId}.
// Creates the clsact qdisc if missing (EEXIST is fine), then a direct-action bpf filter.
Napi::Value TcAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ns = NetnsArg(info, 0);
  int ifindex = ArgInt(info, 1, "ifindex");
  uint32_t point = ArgU32(info, 2, "point");
  int progFd = ArgInt(info, 3, "progFd");
  uint32_t handle = ArgU32(info, 4, "handle");
  uint32_t priority = ArgU32(info, 5, "priority");
  bool replace = info[6].ToBoolean();
  bpf_tc_hook hook;
  InitHook(&hook, ifindex, point);
  OT_OPTS(bpf_tc_opts, opts);
  opts.prog_fd = progFd;
  opts.handle = handle;
  opts.priority = priority;
  opts.flags = replace ? BPF_TC_F_REPLACE : 0;
  ClearLog();
  int err;
  const char* what = "create clsact";
  {
    NetnsScope scope(env, ns);
    err = bpf_tc_hook_create(&hook);
    if (err == -EEXIST) err = 0;
    if (!err) {
      what = "attach tc";
      err = bpf_tc_attach(&hook, &opts);
    }
  }
  if (err) ThrowErrno(env, what, err);
  Napi::Object r = Napi::Object::New(env);
  r.Set("handle", opts.handle);
  r.Set("priority", opts.priority);
  r.Set("progId", opts.prog_id);
  return r;
}

// Runs a tc filter operation (detach or query) inside the netns on the filter named by the call's arguments
// (netns, ifindex, point, handle, priority); returns libbpf's error.
template <typename Op>
int RunTcFilterOp(const Napi::CallbackInfo& info, bpf_tc_opts* opts, Op op) {
  std::string ns = NetnsArg(info, 0);
  bpf_tc_hook hook;
  InitHook(&hook, ArgInt(info, 1, "ifindex"), ArgU32(info, 2, "point"));
  opts->handle = ArgU32(info, 3, "handle");
  opts->priority = ArgU32(info, 4, "priority");
  ClearLog();
  NetnsScope scope(info.Env(), ns);
  return op(&hook, opts);
}

// EINVAL: no clsact qdisc at all on the device, so no filter either.
bool NoSuchFilter(int err) { return err == -ENOENT || err == -EINVAL; }

// tcDetach(netns, ifindex, point, handle, priority) → whether a filter was removed.
Napi::Value TcDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OT_OPTS(bpf_tc_opts, opts);
  int err = RunTcFilterOp(info, &opts, [](bpf_tc_hook* h, bpf_tc_opts* o) { return bpf_tc_detach(h, o); });
  if (NoSuchFilter(err)) {
    TakeLog();
    return Napi::Boolean::New(env, false);
  }
  if (err) ThrowErrno(env, "detach tc", err);
  return Napi::Boolean::New(env, true);
}

// tcQuery(netns, ifindex, point, handle, priority) → the attached program's id, 0 when none.
Napi::Value TcQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OT_OPTS(bpf_tc_opts, opts);
  int err = RunTcFilterOp(info, &opts, [](bpf_tc_hook* h, bpf_tc_opts* o) { return bpf_tc_query(h, o); });
  if (NoSuchFilter(err)) {
    TakeLog();
    return Napi::Number::New(env, 0);
  }
  if (err) ThrowErrno(env, "query tc", err);
  return Napi::Number::New(env, opts.prog_id);
}

// tcHookDestroy(netns, ifindex): removes the clsact qdisc (and every filter on it). → whether it existed.
Napi::Value TcHookDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ns = NetnsArg(info, 0);
  bpf_tc_hook hook;
  InitHook(&hook, ArgInt(info, 1, "ifindex"), BPF_TC_INGRESS | BPF_TC_EGRESS);
  ClearLog();
  int err;
  {
    NetnsScope scope(env, ns);
    err = bpf_tc_hook_destroy(&hook);
  }
  if (err == -ENOENT || err == -EINVAL) {
    TakeLog();
    return Napi::Boolean::New(env, false);
  }
  if (err) ThrowErrno(env, "destroy clsact", err);
  return Napi::Boolean::New(env, true);
}

}  // namespace

void InitNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("ifIndex", Napi::Function::New(env, IfIndex, "ifIndex"));
  exports.Set("netnsCookie", Napi::Function::New(env, NetnsCookie, "netnsCookie"));
  exports.Set("withNetns", Napi::Function::New(env, WithNetns, "withNetns"));
  exports.Set("xdpAttach", Napi::Function::New(env, XdpAttach, "xdpAttach"));
  exports.Set("xdpQuery", Napi::Function::New(env, XdpQuery, "xdpQuery"));
  exports.Set("tcAttach", Napi::Function::New(env, TcAttach, "tcAttach"));
  exports.Set("tcDetach", Napi::Function::New(env, TcDetach, "tcDetach"));
  exports.Set("tcQuery", Napi::Function::New(env, TcQuery, "tcQuery"));
  exports.Set("tcHookDestroy", Napi::Function::New(env, TcHookDestroy, "tcHookDestroy"));
}

}  // namespace ot
