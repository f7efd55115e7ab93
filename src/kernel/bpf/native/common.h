// Shared helpers of the libbpf addon: errors that carry errno, libbpf log capture, zeroed libbpf opts.
#pragma once

#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace ot {

// Zeroes a libbpf *_opts struct in place and sets .sz (what LIBBPF_OPTS does in C; its statement expression is not
// C++). In place, never returned by value: a copy need not preserve padding, and libbpf refuses opts whose bytes
// past the last field it knows are not zero ("has non-zero extra bytes").
#define OT_OPTS(type, name) \
  type name;                \
  std::memset(&name, 0, sizeof name); \
  name.sz = sizeof name

// libbpf's messages (verifier log included) since the last ClearLog(), so errors can carry them.
void ClearLog();
std::string TakeLog();
void InstallLogCapture();

// Throws a JS Error "<what>: <strerror>" with .code (errno name), .errno and, when libbpf said something, .log.
[[noreturn]] void ThrowErrno(Napi::Env env, const std::string& what, int err);
// The same Error without libbpf's log, to reject a promise with (async calls: the log is the JS thread's).
Napi::Error ErrnoError(Napi::Env env, const std::string& what, int err);

// Argument readers that throw a TypeError naming the argument.
int ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name);
uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name);
// A string or null/undefined (returns false for the latter).
bool ArgOptString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out);
Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* name);

// Module parts register their functions here.
void InitMaps(Napi::Env env, Napi::Object exports);
void InitObjects(Napi::Env env, Napi::Object exports);
void InitNetns(Napi::Env env, Napi::Object exports);
void InitRingbuf(Napi::Env env, Napi::Object exports);
void InitNsfs(Napi::Env env, Napi::Object exports);
void InitNft(Napi::Env env, Napi::Object exports);
void InitNlwatch(Napi::Env env, Napi::Object exports);

}  // namespace ot
