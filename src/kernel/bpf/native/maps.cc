// Map element operations on fds: lookup, update, delete, iteration, dumps and bulk updates.
#include <bpf/bpf.h>

#include <vector>

#include "common.h"

namespace ot {

namespace {

// mapLookup(fd, key, valueSize) → Buffer | null (no such key). valueSize is the whole value (all CPUs for per-CPU maps).
Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  Napi::Buffer<uint8_t> key = ArgBuffer(info, 1, "key");
  uint32_t valueSize = ArgU32(info, 2, "valueSize");
  Napi::Buffer<uint8_t> value = Napi::Buffer<uint8_t>::New(env, valueSize);
  if (bpf_map_lookup_elem(fd, key.Data(), value.Data())) {
    if (errno == ENOENT) return env.Null();
    ThrowErrno(env, "map lookup", errno);
  }
  return value;
}

// mapUpdate(fd, key, value, flags): BPF_ANY 0, BPF_NOEXIST 1, BPF_EXIST 2.
Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  Napi::Buffer<uint8_t> key = ArgBuffer(info, 1, "key");
  Napi::Buffer<uint8_t> value = ArgBuffer(info, 2, "value");
  uint32_t flags = ArgU32(info, 3, "flags");
  if (bpf_map_update_elem(fd, key.Data(), value.Data(), flags)) ThrowErrno(info.Env(), "map update", errno);
  return info.Env().Undefined();
}

// mapDelete(fd, key) → whether the key existed.
Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  Napi::Buffer<uint8_t> key = ArgBuffer(info, 1, "key");
  if (bpf_map_delete_elem(fd, key.Data())) {
    if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
    ThrowErrno(info.Env(), "map delete", errno);
  }
  return Napi::Boolean::New(info.Env(), true);
}

// mapNextKey(fd, key | null, keySize) → the key after `key` (the first key for null), or null at the end.
Napi::Value MapNextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  uint32_t keySize = ArgU32(info, 2, "keySize");
  const void* cur = info[1].IsBuffer() ? info[1].As<Napi::Buffer<uint8_t>>().Data() : nullptr;
  Napi::Buffer<uint8_t> next = Napi::Buffer<uint8_t>::New(env, keySize);
  if (bpf_map_get_next_key(fd, cur, next.Data())) {
    if (errno == ENOENT) return env.Null();
    ThrowErrno(env, "map get_next_key", errno);
  }
  return next;
}

// mapDump(fd, keySize, valueSize, maxEntries) → {keys, values, count}: every entry, keys and values packed.
// Uses BPF_MAP_LOOKUP_BATCH (one syscall per chunk) where the map type has it, else get_next_key + lookup
// (LPM tries); entries deleted meanwhile are skipped, so a dump never fails because the map changed.
Napi::Value MapDump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  uint32_t keySize = ArgU32(info, 1, "keySize");
  uint32_t valueSize = ArgU32(info, 2, "valueSize");
  uint32_t maxEntries = ArgU32(info, 3, "maxEntries");
  std::vector<uint8_t> keys(static_cast<size_t>(keySize) * maxEntries + keySize);
  std::vector<uint8_t> values(static_cast<size_t>(valueSize) * maxEntries + valueSize);
  uint32_t total = 0;
  bool batched = false;

  std::vector<uint8_t> inBatch(keySize < 8 ? 8 : keySize), outBatch(inBatch.size());
  OT_OPTS(bpf_map_batch_opts, opts);
  bool first = true;
  while (total < maxEntries) {
    uint32_t count = maxEntries - total;
    int err = bpf_map_lookup_batch(fd, first ? nullptr : inBatch.data(), outBatch.data(), &keys[total * keySize],
                                   &values[static_cast<size_t>(total) * valueSize], &count, &opts);
    int e = err ? errno : 0;
    if (err && e != ENOENT) {
      if (first && (e == EINVAL || e == ENOTSUP || e == 524 /* ENOTSUPP */)) break;  // no batch ops: iterate
      ThrowErrno(env, "map lookup_batch", e);
    }
    batched = true;
    first = false;
    total += count;
    if (e == ENOENT) break;
    inBatch = outBatch;
  }
  if (!batched) {
    total = 0;
    const void* prev = nullptr;
    std::vector<uint8_t> cur(keySize);
    while (total < maxEntries) {
      if (bpf_map_get_next_key(fd, prev, cur.data())) {
        if (errno == ENOENT) break;
        ThrowErrno(env, "map get_next_key", errno);
      }
      std::memcpy(&keys[total * keySize], cur.data(), keySize);
      prev = &keys[total * keySize];
      if (bpf_map_lookup_elem(fd, cur.data(), &values[static_cast<size_t>(total) * valueSize])) {
        if (errno == ENOENT) continue;  // deleted meanwhile; `prev` still leads to the next key
        ThrowErrno(env, "map lookup", errno);
      }
      total++;
    }
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("count", total);
  r.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), static_cast<size_t>(total) * keySize));
  r.Set("values", Napi::Buffer<uint8_t>::Copy(env, values.data(), static_cast<size_t>(total) * valueSize));
  return r;
}

// mapUpdateMany(fd, keys, values, keySize, valueSize, flags) → count. One call for many elements (a blocklist of
// 100k prefixes is 100k syscalls either way, but not 100k JS→native transitions). Stops at the first error,
// which names the element's index.
Napi::Value MapUpdateMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  Napi::Buffer<uint8_t> keys = ArgBuffer(info, 1, "keys");
  Napi::Buffer<uint8_t> values = ArgBuffer(info, 2, "values");
  uint32_t keySize = ArgU32(info, 3, "keySize");
  uint32_t valueSize = ArgU32(info, 4, "valueSize");
  uint32_t flags = ArgU32(info, 5, "flags");
  if (keySize == 0 || valueSize == 0 || keys.Length() % keySize || values.Length() % valueSize ||
      keys.Length() / keySize != values.Length() / valueSize)
    throw Napi::RangeError::New(env, "keys and values must hold the same number of whole elements");
  size_t n = keys.Length() / keySize;
  for (size_t i = 0; i < n; i++) {
    if (bpf_map_update_elem(fd, keys.Data() + i * keySize, values.Data() + i * valueSize, flags))
      ThrowErrno(env, "map update of element " + std::to_string(i), errno);
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

}  // namespace

void InitMaps(Napi::Env env, Napi::Object exports) {
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup, "mapLookup"));
  exports.Set("mapUpdate", Napi::Function::New(env, MapUpdate, "mapUpdate"));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete, "mapDelete"));
  exports.Set("mapNextKey", Napi::Function::New(env, MapNextKey, "mapNextKey"));
  exports.Set("mapDump", Napi::Function::New(env, MapDump, "mapDump"));
  exports.Set("mapUpdateMany", Napi::Function::New(env, MapUpdateMany, "mapUpdateMany"));
}

}  // namespace ot
