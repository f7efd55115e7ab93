// Named network namespaces as iproute2 makes them (ip/ipnetns.c), without spawning `ip netns add|del`.
//
// A named netns is the nsfs file of a namespace bind-mounted onto an empty file /run/netns/NAME: the mount keeps the
// namespace alive with no process in it, and every tool (`ip -n`, `ip netns exec`, nsenter --net=…, setns) enters
// it by opening that file. Doing exactly what iproute2 does keeps the two interchangeable: a namespace made here is
// listed and deleted by `ip netns`, and the other way round.
//
// The new namespace is created by unshare(CLONE_NEWNET) on a short-lived thread of its own, which then exits: the
// JS thread never changes namespace at all (contrast NetnsScope, which enters and leaves an existing one).
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>

#include "common.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

namespace ot {

namespace {

struct Failure {
  std::string what;
  int err = 0;
};

bool ValidName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos && name.size() < 256;
}

// Whether `path` is an nsfs mount (a live named namespace) rather than a plain file.
bool IsNsfs(const std::string& path) {
  struct statfs s;
  return statfs(path.c_str(), &s) == 0 && static_cast<unsigned long>(s.f_type) == NSFS_MAGIC;
}

// Twin: the first half of `ip netns add`: mkdir DIR, then `mount --make-rshared DIR`, first turning DIR into a
// mount point of its own (`mount --rbind DIR DIR`) when it is not one (EINVAL). Shared, so that a namespace mount
// made or removed here propagates to every mount namespace (e.g. those `ip netns exec` creates) and a deleted
// namespace is freed everywhere. Under flock(DIR) like iproute2, so concurrent `ip netns add`s never stack bind
// mounts of DIR. Done once per process: the state it produces lasts as long as the mount.
// Atomic: namespaces are created on libuv's pool threads, several at once.
std::atomic<bool> g_dir_ready{false};

bool PrepareRunDir(const std::string& dir, Failure* f) {
  if (g_dir_ready) return true;
  if (mkdir(dir.c_str(), 0755) && errno != EEXIST) {
    *f = {"mkdir " + dir, errno};
    return false;
  }
  int lock = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock < 0) {
    *f = {"open " + dir, errno};
    return false;
  }
  if (flock(lock, LOCK_EX)) {
    *f = {"flock " + dir, errno};
    close(lock);
    return false;
  }
  bool made = false;
  bool ok = true;
  while (mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr)) {
    if (errno != EINVAL || made) {
      *f = {"mount --make-rshared " + dir, errno};
      ok = false;
      break;
    }
    if (mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr)) {
      *f = {"mount --rbind " + dir + " " + dir, errno};
      ok = false;
      break;
    }
    made = true;
  }
  flock(lock, LOCK_UN);
  close(lock);
  g_dir_ready = ok;
  return ok;
}

// Creates a new network namespace on a thread of its own and bind-mounts it onto `path`.
bool MountNewNetns(const std::string& path, Failure* f) {
  std::thread t([&] {
    if (unshare(CLONE_NEWNET)) {
      *f = {"unshare(CLONE_NEWNET)", errno};
      return;
    }
    // thread-self: /proc/self/ns/net would be the main thread's namespace.
    if (mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr)) *f = {"mount --bind /proc/thread-self/ns/net " + path, errno};
  });
  t.join();
  return f->err == 0;
}

// Twin: `umount -l PATH; rm PATH` (`ip netns del`). Every mount stacked on the file goes (a racing double add
// could stack two). Returns whether the file existed.
bool RemoveNetnsFile(const std::string& path, Failure* f) {
  for (int i = 0; i < 16; i++) {
    if (umount2(path.c_str(), MNT_DETACH) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) break;  // no (more) mount on it, or no file
    *f = {"umount " + path, errno};
    return false;
  }
  if (unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  *f = {"unlink " + path, errno};
  return false;
}

// Twin: `ip netns add NAME` (which fails on an existing name; this is idempotent). A plain file of that name (left
// when a creator died between creating the file and mounting on it) gets a new namespace mounted on it, rather
// than staying a name that every `ip -n` refuses. Sets *created when it made the namespace (false: a live one of
// that name existed).
bool AddNetns(const std::string& dir, const std::string& name, Failure* f, bool* created) {
  *created = false;
  std::string path = dir + "/" + name;
  if (!PrepareRunDir(dir, f)) return false;
  int fd = open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd >= 0) {
    close(fd);
  } else if (errno != EEXIST) {
    *f = {"create " + path, errno};
    return false;
  } else if (IsNsfs(path)) {
    return true;
  }
  if (!MountNewNetns(path, f)) {
    Failure ignored;
    RemoveNetnsFile(path, &ignored);  // as iproute2 does: no half-made name stays behind
    return false;
  }
  *created = true;
  return true;
}

// Runs AddNetns off the JS thread (libuv's pool), which goes on with other work meanwhile: creating a namespace is
// the kernel's longest single step of a customer's cold start (~1 ms: unshare sets up every per-namespace part of
// the network stack), and on a 2-CPU server the other CPU can do it.
class NetnsAddWorker : public Napi::AsyncWorker {
 public:
  NetnsAddWorker(Napi::Env env, std::string dir, std::string name)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), dir_(std::move(dir)), name_(std::move(name)) {}
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override { ok_ = AddNetns(dir_, name_, &f_, &created_); }
  void OnOK() override {
    if (ok_) deferred_.Resolve(Napi::Boolean::New(Env(), created_));
    else deferred_.Reject(ErrnoError(Env(), f_.what, f_.err).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string dir_, name_;
  Failure f_;
  bool ok_ = false, created_ = false;
};

// netnsAdd(dir, name) → Promise<boolean>: true when it created the namespace, false when a live one of that name
// existed (AddNetns).
Napi::Value NetnsAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir = ArgString(info, 0, "dir");
  std::string name = ArgString(info, 1, "name");
  if (!ValidName(name)) throw Napi::TypeError::New(env, "name: not a file name: " + name);
  auto* w = new NetnsAddWorker(env, dir, name);
  Napi::Promise p = w->Promise();
  w->Queue();  // the worker deletes itself once it has completed
  return p;
}

// netnsDelete(dir, name) → whether it existed. Twin: `ip netns del NAME`, which succeeds here when it is missing.
// Links, routes and nft tables inside go with the namespace once nothing else holds it.
Napi::Value NetnsDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir = ArgString(info, 0, "dir");
  std::string name = ArgString(info, 1, "name");
  if (!ValidName(name)) throw Napi::TypeError::New(env, "name: not a file name: " + name);
  Failure f;
  bool existed = RemoveNetnsFile(dir + "/" + name, &f);
  if (f.err) ThrowErrno(env, f.what, f.err);
  return Napi::Boolean::New(env, existed);
}

}  // namespace

void InitNsfs(Napi::Env env, Napi::Object exports) {
  exports.Set("netnsAdd", Napi::Function::New(env, NetnsAdd, "netnsAdd"));
  exports.Set("netnsDelete", Napi::Function::New(env, NetnsDelete, "netnsDelete"));
}

}  // namespace ot
