// Loading object files, pinning, fds, object info, BPF_PROG_RUN, bpffs.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "common.h"

namespace ot {

namespace {

struct ObjectCloser {
  void operator()(bpf_object* o) const { bpf_object__close(o); }
};

Napi::Object ProgInfoObject(Napi::Env env, int fd) {
  bpf_prog_info info;
  std::memset(&info, 0, sizeof info);
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len)) ThrowErrno(env, "bpf_obj_get_info_by_fd(prog)", errno);
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", info.id);
  o.Set("type", info.type);
  o.Set("name", Napi::String::New(env, info.name));
  char tag[2 * BPF_TAG_SIZE + 1];
  for (int i = 0; i < BPF_TAG_SIZE; i++) snprintf(tag + 2 * i, 3, "%02x", info.tag[i]);
  o.Set("tag", Napi::String::New(env, tag));
  return o;
}

Napi::Object MapInfoObject(Napi::Env env, int fd) {
  bpf_map_info info;
  std::memset(&info, 0, sizeof info);
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len)) ThrowErrno(env, "bpf_obj_get_info_by_fd(map)", errno);
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", info.id);
  o.Set("type", info.type);
  o.Set("name", Napi::String::New(env, info.name));
  o.Set("keySize", info.key_size);
  o.Set("valueSize", info.value_size);
  o.Set("maxEntries", info.max_entries);
  o.Set("flags", info.map_flags);
  return o;
}

// loadObject(path, pinRoot | null) → { programs: [{name, section, fd, ...info}], maps: [{name, fd, ...info}] }
// Opens and loads the object; maps declared with LIBBPF_PIN_BY_NAME are reused from (or pinned to) pinRoot.
// Every returned fd is a duplicate owned by the caller: the bpf_object itself is closed before returning.
Napi::Value LoadObject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "path");
  std::string pinRoot;
  bool hasPinRoot = ArgOptString(info, 1, "pinRoot", &pinRoot);
  ClearLog();
  OT_OPTS(bpf_object_open_opts, opts);
  if (hasPinRoot) opts.pin_root_path = pinRoot.c_str();
  std::unique_ptr<bpf_object, ObjectCloser> obj(bpf_object__open_file(path.c_str(), &opts));
  if (!obj) ThrowErrno(env, "open " + path, errno);
  int err = bpf_object__load(obj.get());
  if (err) ThrowErrno(env, "load " + path, err);

  struct Item {
    std::string name, section;
    int fd;
  };
  std::vector<Item> progs, maps;
  auto closeAll = [&]() {
    for (auto& p : progs) close(p.fd);
    for (auto& m : maps) close(m.fd);
  };
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj.get()) {
    int fd = fcntl(bpf_program__fd(prog), F_DUPFD_CLOEXEC, 3);
    if (fd < 0) {
      int e = errno;
      closeAll();
      ThrowErrno(env, "dup program fd", e);
    }
    progs.push_back({bpf_program__name(prog), bpf_program__section_name(prog), fd});
  }
  bpf_map* map;
  bpf_object__for_each_map(map, obj.get()) {
    int fd = fcntl(bpf_map__fd(map), F_DUPFD_CLOEXEC, 3);
    if (fd < 0) {
      int e = errno;
      closeAll();
      ThrowErrno(env, "dup map fd", e);
    }
    maps.push_back({bpf_map__name(map), "", fd});
  }
  obj.reset();
  try {
    Napi::Object result = Napi::Object::New(env);
    Napi::Array pa = Napi::Array::New(env, progs.size());
    for (size_t i = 0; i < progs.size(); i++) {
      Napi::Object o = ProgInfoObject(env, progs[i].fd);
      o.Set("name", progs[i].name);  // the full name (the kernel keeps 15 characters)
      o.Set("section", progs[i].section);
      o.Set("fd", progs[i].fd);
      pa.Set(i, o);
    }
    Napi::Array ma = Napi::Array::New(env, maps.size());
    for (size_t i = 0; i < maps.size(); i++) {
      Napi::Object o = MapInfoObject(env, maps[i].fd);
      o.Set("name", maps[i].name);
      o.Set("fd", maps[i].fd);
      ma.Set(i, o);
    }
    result.Set("programs", pa);
    result.Set("maps", ma);
    result.Set("log", TakeLog());
    return result;
  } catch (...) {
    closeAll();
    throw;
  }
}

// objPin(fd, path): bpf_obj_pin (the path's directory must exist on a bpffs).
Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  std::string path = ArgString(info, 1, "path");
  ClearLog();
  if (bpf_obj_pin(fd, path.c_str())) ThrowErrno(info.Env(), "pin " + path, errno);
  return info.Env().Undefined();
}

// objGet(path) → a new fd (O_CLOEXEC) for a pinned program or map.
Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  ClearLog();
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(info.Env(), "open pinned " + path, errno);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  if (fd < 0 || close(fd)) ThrowErrno(info.Env(), "close", fd < 0 ? EBADF : errno);
  return info.Env().Undefined();
}

Napi::Value ProgInfo(const Napi::CallbackInfo& info) { return ProgInfoObject(info.Env(), ArgInt(info, 0, "fd")); }
Napi::Value MapInfo(const Napi::CallbackInfo& info) { return MapInfoObject(info.Env(), ArgInt(info, 0, "fd")); }

// progFdById(id) → fd of a loaded program (what an XDP/tc query returns is an id).
Napi::Value ProgFdById(const Napi::CallbackInfo& info) {
  uint32_t id = ArgU32(info, 0, "id");
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) ThrowErrno(info.Env(), "bpf_prog_get_fd_by_id", errno);
  return Napi::Number::New(info.Env(), fd);
}

// progTestRun(fd, data, dataOutSize, repeat, ctxIn | null, ctxOutSize) → {retval, data, duration, ctx}
// BPF_PROG_RUN: runs the program on a copy of `data` without any device, returns what it left in the packet.
Napi::Value ProgTestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  Napi::Buffer<uint8_t> data = ArgBuffer(info, 1, "data");
  uint32_t outSize = ArgU32(info, 2, "dataOutSize");
  uint32_t repeat = ArgU32(info, 3, "repeat");
  uint32_t ctxOutSize = ArgU32(info, 5, "ctxOutSize");
  std::vector<uint8_t> out(outSize ? outSize : 1), ctxOut(ctxOutSize ? ctxOutSize : 1);
  OT_OPTS(bpf_test_run_opts, opts);
  opts.data_in = data.Data();
  opts.data_size_in = data.Length();
  opts.data_out = out.data();
  opts.data_size_out = outSize;
  opts.repeat = repeat;
  if (info[4].IsBuffer()) {
    Napi::Buffer<uint8_t> ctx = info[4].As<Napi::Buffer<uint8_t>>();
    opts.ctx_in = ctx.Data();
    opts.ctx_size_in = ctx.Length();
  }
  if (ctxOutSize) {
    opts.ctx_out = ctxOut.data();
    opts.ctx_size_out = ctxOutSize;
  }
  ClearLog();
  if (bpf_prog_test_run_opts(fd, &opts)) ThrowErrno(env, "BPF_PROG_RUN", errno);
  Napi::Object r = Napi::Object::New(env);
  r.Set("retval", opts.retval);
  r.Set("duration", opts.duration);
  r.Set("data", Napi::Buffer<uint8_t>::Copy(env, out.data(), std::min(opts.data_size_out, outSize)));
  if (ctxOutSize) r.Set("ctx", Napi::Buffer<uint8_t>::Copy(env, ctxOut.data(), std::min(opts.ctx_size_out, ctxOutSize)));
  return r;
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) ThrowErrno(info.Env(), "libbpf_num_possible_cpus", n);
  return Napi::Number::New(info.Env(), n);
}

// isBpffs(path) → whether path is the root of (or inside) a mounted bpffs.
Napi::Value IsBpffs(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  struct statfs st;
  if (statfs(path.c_str(), &st)) {
    if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
    ThrowErrno(info.Env(), "statfs " + path, errno);
  }
  return Napi::Boolean::New(info.Env(), static_cast<unsigned long>(st.f_type) == BPF_FS_MAGIC);
}

// mountBpffs(path): mount -t bpf bpf <path> -o mode=0700 (the caller checks isBpffs first).
Napi::Value MountBpffs(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0, "path");
  if (mount("bpf", path.c_str(), "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700"))
    ThrowErrno(info.Env(), "mount -t bpf bpf " + path, errno);
  return info.Env().Undefined();
}

}  // namespace

void InitObjects(Napi::Env env, Napi::Object exports) {
  exports.Set("loadObject", Napi::Function::New(env, LoadObject, "loadObject"));
  exports.Set("objPin", Napi::Function::New(env, ObjPin, "objPin"));
  exports.Set("objGet", Napi::Function::New(env, ObjGet, "objGet"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("progInfo", Napi::Function::New(env, ProgInfo, "progInfo"));
  exports.Set("mapInfo", Napi::Function::New(env, MapInfo, "mapInfo"));
  exports.Set("progFdById", Napi::Function::New(env, ProgFdById, "progFdById"));
  exports.Set("progTestRun", Napi::Function::New(env, ProgTestRun, "progTestRun"));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus, "numPossibleCpus"));
  exports.Set("isBpffs", Napi::Function::New(env, IsBpffs, "isBpffs"));
  exports.Set("mountBpffs", Napi::Function::New(env, MountBpffs, "mountBpffs"));
}

}  // namespace ot
