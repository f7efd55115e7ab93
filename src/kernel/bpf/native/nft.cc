// nftables in-process through libnftables (Debian libnftables1; what the `nft` tool itself is built on), without
// spawning `nft -j -f`.
//
// One nft context per call, made inside the target netns: nft_ctx_new opens its netlink socket at once, and a socket
// belongs to the namespace it was created in. A context is not kept per namespace because its socket would keep a
// deleted namespace alive.
//
// Why each call runs on a short-lived thread of its own rather than on the JS thread (under NetnsScope): closing an
// nftables netlink socket right after a commit waits for the commit's deferred release, an RCU grace period
// (the kernel's nft_rcv_nl_event flushes the destroy work on NETLINK_URELEASE): measured 12–16 ms of a 16–20 ms call
// on the loaded 2-core VM, where parse + commit took ~1–3 ms. The thread enters the netns, runs the document, hands
// the result back, and only then closes the socket, so the caller waits for the result but not for the close.
// The `nft` tool pays the same wait when it exits.
//
// All libnftables use is serialised by one mutex, held from nft_ctx_new to nft_ctx_free: libnftables keeps some
// global state (its interface cache, which nft_ctx_free releases too), so two contexts must not be used at once. The
// slow close is kept out of that lock, or the next call (in any netns) would wait for it: while the lock is held the
// thread takes a second reference to the context's socket (a dup), so nft_ctx_free's own close is not the last one
// and returns at once; the thread closes the dup — the socket's release, the RCU wait — after unlocking. libnftables
// has no accessor for its socket, so the thread finds it by the kernel's lowest-free-fd rule: it notes the lowest
// free fd just before nft_ctx_new and checks afterwards that this fd is a NETLINK_NETFILTER socket. When the check
// fails (another thread took that fd meanwhile) the call simply pays the wait inside the lock, as before. The JS
// thread opens NETLINK_NETFILTER sockets too (nftables generation reads, src/kernel/netlink/socket.ts), at the same
// time: should one of them take that fd, the dup is of the JS socket — harmless (closing a dup leaves the JS fd
// open) — and this call again pays the wait inside the lock.
#include <nftables/libnftables.h>

#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <mutex>
#include <string>
#include <pthread.h>
#include <thread>

#include "common.h"
#include "netns_scope.h"

namespace ot {

namespace {

std::mutex g_nft_lock;

struct NftResult {
  int rc = 0;
  std::string out, err;
  // A failure before the document ran (setns, context): what failed and its errno.
  std::string what;
  int errnum = 0;
};

// Whether fd is an nftables netlink socket (AF_NETLINK, NETLINK_NETFILTER).
bool IsNetfilterSocket(int fd) {
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) || v != AF_NETLINK) return false;
  len = sizeof v;
  return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) == 0 && v == NETLINK_NETFILTER;
}

// Exported to JS as nftThreadName (src/kernel/netlink/watch.ts tells our commits by it); at most 15 characters.
constexpr const char* kNftThreadName = "ot-nft";

// The lowest free fd right now (the one the next socket() will get unless another thread takes it first), or -1.
int LowestFreeFd() {
  int fd = eventfd(0, EFD_CLOEXEC);
  if (fd >= 0) close(fd);
  return fd;
}

// Runs on its own thread, which never returns to the JS thread's netns: it ends after the call.
void RunInThread(int nsFd, std::string text, std::promise<NftResult> promise) {
  // The name is how the agent's kernel watch tells our commits from others' (NFTA_GEN_PROC_NAME of NFT_MSG_NEWGEN;
  // its PID is this thread's, gone by the time the notification is read): src/kernel/netlink/watch.ts.
  pthread_setname_np(pthread_self(), kNftThreadName);
  std::unique_lock<std::mutex> lock(g_nft_lock);
  NftResult r;
  if (nsFd >= 0 && setns(nsFd, CLONE_NEWNET)) {
    r.what = "setns";
    r.errnum = errno;
  }
  if (nsFd >= 0) close(nsFd);
  if (r.errnum) {
    promise.set_value(std::move(r));
    return;
  }
  int probe = LowestFreeFd();
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!ctx) {
    r.what = "nft_ctx_new";
    r.errnum = errno ? errno : ENOMEM;
    promise.set_value(std::move(r));
    return;
  }
  // The second reference to the context's socket (see the file comment); -1: none, nft_ctx_free pays the wait.
  int sockRef = probe >= 0 && IsNetfilterSocket(probe) ? fcntl(probe, F_DUPFD_CLOEXEC, 0) : -1;
  // The output flag JSON is what makes libnftables 1.0.6 parse its input as JSON (and print listings as JSON), as
  // -j does for the tool.
  nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON);
  if (nft_ctx_buffer_output(ctx) || nft_ctx_buffer_error(ctx)) {
    r.what = "nft_ctx_buffer_output";
    r.errnum = errno ? errno : ENOMEM;
  } else {
    r.rc = nft_run_cmd_from_buffer(ctx, text.c_str());
    const char* o = nft_ctx_get_output_buffer(ctx);
    const char* e = nft_ctx_get_error_buffer(ctx);
    r.out = o ? o : "";
    r.err = e ? e : "";
  }
  promise.set_value(std::move(r));
  nft_ctx_free(ctx);  // with sockRef held: frees memory only, the socket stays open
  lock.unlock();
  if (sockRef >= 0) close(sockRef);  // the slow part (see the file comment), holding nothing
}

// Waits for RunInThread's result on one of libuv's pool threads, so the JS thread goes on meanwhile (parse and
// commit are ~1 ms of a customer's cold start; on a 2-CPU server the other CPU can do them).
class NftRunWorker : public Napi::AsyncWorker {
 public:
  NftRunWorker(Napi::Env env, std::string ns, int nsFd, std::string text)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), ns_(std::move(ns)), nsFd_(nsFd), text_(std::move(text)) {}
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    std::promise<NftResult> promise;
    std::future<NftResult> future = promise.get_future();
    try {
      std::thread(RunInThread, nsFd_, std::move(text_), std::move(promise)).detach();
    } catch (const std::system_error& e) {
      if (nsFd_ >= 0) close(nsFd_);
      r_.what = "start nft thread";
      r_.errnum = e.code().value();
      return;
    }
    r_ = future.get();
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (r_.errnum) {
      deferred_.Reject(ErrnoError(env, r_.what + (ns_.empty() ? "" : " " + ns_), r_.errnum).Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("rc", r_.rc);
    o.Set("stdout", r_.out);
    o.Set("stderr", r_.err);
    deferred_.Resolve(o);
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string ns_;
  int nsFd_;
  std::string text_;
  NftResult r_;
};

// nftRun(netns, text) → Promise<{rc, stdout, stderr}>. Twin: `nft -j -f FILE` (in NETNS) with FILE holding `text`.
// rc is libnftables' status (0 = the whole document was committed; otherwise nothing was), stderr its error
// messages as the tool prints them. Resolves once the document has run (not once the context is closed).
Napi::Value NftRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ns = NetnsArg(info, 0);
  std::string text = ArgString(info, 1, "text");
  int nsFd = -1;
  if (!ns.empty()) {
    nsFd = open(ns.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsFd < 0) ThrowErrno(env, "open netns " + ns, errno);
  }
  auto* w = new NftRunWorker(env, ns, nsFd, std::move(text));
  Napi::Promise p = w->Promise();
  w->Queue();  // the worker deletes itself once it has completed
  return p;
}

}  // namespace

void InitNft(Napi::Env env, Napi::Object exports) {
  exports.Set("nftRun", Napi::Function::New(env, NftRun, "nftRun"));
  exports.Set("nftThreadName", Napi::String::New(env, kNftThreadName));
}

}  // namespace ot
