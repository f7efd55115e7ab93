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
// the result back, and only then frees the context, so the JS thread waits for the result but not for the close.
// The `nft` tool pays the same wait when it exits. All libnftables use is serialised by one mutex (held from
// nft_ctx_new to nft_ctx_free): libnftables keeps some global state (its interface cache), so two contexts must not
// be used at once; a call made while the previous thread is still closing waits for it.
#include <nftables/libnftables.h>

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <future>
#include <mutex>
#include <string>
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

// Runs on its own thread, which never returns to the JS thread's netns: it ends after the call.
void RunInThread(int nsFd, std::string text, std::promise<NftResult> promise) {
  std::lock_guard<std::mutex> lock(g_nft_lock);
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
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!ctx) {
    r.what = "nft_ctx_new";
    r.errnum = errno ? errno : ENOMEM;
    promise.set_value(std::move(r));
    return;
  }
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
  nft_ctx_free(ctx);  // the slow part (see the file comment), after the JS thread has its result
}

// nftRun(netns, text) → {rc, stdout, stderr}. Twin: `nft -j -f FILE` (in NETNS) with FILE holding `text`. rc is
// libnftables' status (0 = the whole document was committed; otherwise nothing was), stderr its error messages as
// the tool prints them. Blocks the JS thread until the document has run (not until the context is closed).
Napi::Value NftRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ns = NetnsArg(info, 0);
  std::string text = ArgString(info, 1, "text");
  int nsFd = -1;
  if (!ns.empty()) {
    nsFd = open(ns.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsFd < 0) ThrowErrno(env, "open netns " + ns, errno);
  }
  std::promise<NftResult> promise;
  std::future<NftResult> future = promise.get_future();
  try {
    std::thread(RunInThread, nsFd, std::move(text), std::move(promise)).detach();
  } catch (const std::system_error& e) {
    if (nsFd >= 0) close(nsFd);
    ThrowErrno(env, "start nft thread", e.code().value());
  }
  NftResult r = future.get();
  if (r.errnum) ThrowErrno(env, r.what + (ns.empty() ? "" : " " + ns), r.errnum);
  Napi::Object o = Napi::Object::New(env);
  o.Set("rc", r.rc);
  o.Set("stdout", r.out);
  o.Set("stderr", r.err);
  return o;
}

}  // namespace

void InitNft(Napi::Env env, Napi::Object exports) { exports.Set("nftRun", Napi::Function::New(env, NftRun, "nftRun")); }

}  // namespace ot
