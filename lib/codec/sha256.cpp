#include "codec/sha256.h"

// The one-shot and per-thread hashes use OpenSSL's SHA256_* functions:
// deprecated in OpenSSL 3 in favour of EVP, but kept through 3.x, and for the
// short fixed-size inputs of record format 2 (96 and 64 bytes per event in
// the write transaction) they cost 117 ns against EVP's 204 ns per digest
// on this machine (both use the CPU's SHA instructions): EVP's per-digest
// dispatch was half the time. StreamingSha256 (files) stays on EVP.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <memory>

#include "lighthouse/error.h"

namespace lighthouse::codec {
namespace {

[[noreturn]] void fail(const char* what) {
  throw Error(ErrorCode::internal, std::string("OpenSSL ") + what + " failed");
}

const EVP_MD* algorithm() {
  static const std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> md(
      EVP_MD_fetch(nullptr, "SHA256", nullptr), &EVP_MD_free);
  if (!md) fail("EVP_MD_fetch(SHA256)");
  return md.get();
}

SHA256_CTX& context() {
  thread_local SHA256_CTX ctx;
  return ctx;
}

}  // namespace

Sha256Hasher::Sha256Hasher() {
  if (SHA256_Init(&context()) != 1) fail("SHA256_Init");
}

void Sha256Hasher::update(std::string_view bytes) {
  if (SHA256_Update(&context(), bytes.data(), bytes.size()) != 1) fail("SHA256_Update");
}

void Sha256Hasher::update(const Sha256& digest) {
  if (SHA256_Update(&context(), digest.data(), digest.size()) != 1) fail("SHA256_Update");
}

Sha256 Sha256Hasher::finish() {
  Sha256 out;
  if (SHA256_Final(out.data(), &context()) != 1) fail("SHA256_Final");
  return out;
}

StreamingSha256::StreamingSha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr) fail("EVP_MD_CTX_new");
  if (EVP_DigestInit_ex2(static_cast<EVP_MD_CTX*>(ctx_), algorithm(), nullptr) != 1) {
    EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
    fail("EVP_DigestInit_ex2");
  }
}

StreamingSha256::~StreamingSha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void StreamingSha256::update(std::string_view bytes) {
  if (EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), bytes.data(), bytes.size()) != 1) {
    fail("EVP_DigestUpdate");
  }
}

Sha256 StreamingSha256::finish() {
  Sha256 out;
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), out.data(), &size) != 1 || size != 32) {
    fail("EVP_DigestFinal_ex");
  }
  return out;
}

Sha256 digest_from_hex(std::string_view hex) noexcept {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Sha256 out{};
  if (hex.size() != 2 * out.size()) return Sha256{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Sha256{};
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return out;
}

Sha256 sha256(std::string_view bytes) {
  Sha256Hasher hasher;
  hasher.update(bytes);
  return hasher.finish();
}

}  // namespace lighthouse::codec
