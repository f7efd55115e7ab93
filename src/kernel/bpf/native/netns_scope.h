// NetnsScope: runs a block of native code with the calling (JS) thread inside another network namespace and always
// switches back (see netns.cc for why this is done on the JS thread). Shared by every part of the addon that acts
// inside a namespace (netns.cc: XDP/tc/withNetns; nft.cc: libnftables).
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common.h"

namespace ot {

// Enters `netns` on construction; the destructor switches back (aborting if it cannot: see netns.cc).
class NetnsScope {
 public:
  // netns: a path to a netns file (/run/netns/NAME, /proc/PID/ns/net) or empty for the current one.
  NetnsScope(Napi::Env env, const std::string& netns) {
    if (netns.empty()) return;
    int target = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0) ThrowErrno(env, "open netns " + netns, errno);
    saved_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (saved_ < 0) {
      int e = errno;
      close(target);
      ThrowErrno(env, "open /proc/thread-self/ns/net", e);
    }
    struct stat a, b;
    if (fstat(target, &a) == 0 && fstat(saved_, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
      close(target);  // already there: nothing to switch
      close(saved_);
      saved_ = -1;
      return;
    }
    if (setns(target, CLONE_NEWNET)) {
      int e = errno;
      close(target);
      close(saved_);
      saved_ = -1;
      ThrowErrno(env, "setns " + netns, e);
    }
    close(target);
  }
  ~NetnsScope() {
    if (saved_ < 0) return;
    if (setns(saved_, CLONE_NEWNET)) {
      perror("opentransit_bpf: cannot return to the original network namespace");
      abort();
    }
    close(saved_);
  }
  NetnsScope(const NetnsScope&) = delete;
  NetnsScope& operator=(const NetnsScope&) = delete;

 private:
  int saved_ = -1;
};

// A netns argument: a path to a netns file, or "" for null/undefined (the current one).
inline std::string NetnsArg(const Napi::CallbackInfo& info, size_t i) {
  std::string s;
  ArgOptString(info, i, "netns", &s);
  return s;
}

}  // namespace ot
