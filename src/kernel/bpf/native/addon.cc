// opentransit_bpf: a small N-API binding of libbpf (Debian's libbpf 1.1). The TypeScript wrapper
// (src/kernel/bpf/index.ts) holds the policy; this code only translates calls and errors.
#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <string.h>

#include "common.h"

namespace ot {

namespace {
std::string g_log;
const size_t kMaxLog = 1 << 20;

int CaptureLog(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  if (g_log.size() >= kMaxLog) return 0;
  // One message can be the whole verifier log: measure first, then format into the log itself.
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return 0;
  size_t at = g_log.size();
  g_log.resize(at + n + 1);
  vsnprintf(&g_log[at], n + 1, fmt, args);
  g_log.resize(at + n);
  return 0;
}

// The last `lines` lines of a log (the verifier's verdict is at its end).
std::string Tail(const std::string& log, int lines) {
  size_t pos = log.size();
  while (pos > 0 && (log[pos - 1] == '\n')) pos--;
  size_t end = pos;
  for (int i = 0; i < lines && pos > 0; i++) {
    size_t nl = log.rfind('\n', pos - 1);
    pos = nl == std::string::npos ? 0 : nl;
    if (pos == 0) break;
  }
  return log.substr(pos == 0 ? 0 : pos + 1, end - (pos == 0 ? 0 : pos + 1));
}
}  // namespace

void ClearLog() { g_log.clear(); }
std::string TakeLog() {
  std::string s;
  s.swap(g_log);
  return s;
}
void InstallLogCapture() { libbpf_set_print(CaptureLog); }

namespace {
Napi::Error MakeErrnoError(Napi::Env env, const std::string& what, int err, const std::string& log) {
  if (err < 0) err = -err;
  std::string msg = what + ": " + strerror(err);
  if (!log.empty()) msg += "\n" + Tail(log, 20);
  Napi::Error e = Napi::Error::New(env, msg);
  const char* name = strerrorname_np(err);
  e.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  e.Set("errno", Napi::Number::New(env, err));
  if (!log.empty()) e.Set("log", Napi::String::New(env, log));
  return e;
}
}  // namespace

void ThrowErrno(Napi::Env env, const std::string& what, int err) { throw MakeErrnoError(env, what, err, TakeLog()); }

Napi::Error ErrnoError(Napi::Env env, const std::string& what, int err) { return MakeErrnoError(env, what, err, ""); }

int ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 4294967295.0 || d != static_cast<double>(static_cast<uint32_t>(d)))
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer in 0..2^32-1");
  return static_cast<uint32_t>(d);
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) throw Napi::TypeError::New(info.Env(), std::string(name) + " must not contain NUL");
  return s;
}

bool ArgOptString(const Napi::CallbackInfo& info, size_t i, const char* name, std::string* out) {
  if (info[i].IsNull() || info[i].IsUndefined()) return false;
  *out = ArgString(info, i, name);
  return true;
}

Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsBuffer()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

}  // namespace ot

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ot::InstallLogCapture();
  ot::InitMaps(env, exports);
  ot::InitObjects(env, exports);
  ot::InitNetns(env, exports);
  ot::InitRingbuf(env, exports);
  ot::InitNsfs(env, exports);
  ot::InitNft(env, exports);
  ot::InitNlwatch(env, exports);
  return exports;
}

NODE_API_MODULE(opentransit_bpf, Init)
