#include "codec/sha256.h"

#include <openssl/evp.h>

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

EVP_MD_CTX* context() {
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                          &EVP_MD_CTX_free);
  if (!ctx) fail("EVP_MD_CTX_new");
  return ctx.get();
}

}  // namespace

Sha256Hasher::Sha256Hasher() {
  if (EVP_DigestInit_ex2(context(), algorithm(), nullptr) != 1) fail("EVP_DigestInit_ex2");
}

void Sha256Hasher::update(std::string_view bytes) {
  if (EVP_DigestUpdate(context(), bytes.data(), bytes.size()) != 1) fail("EVP_DigestUpdate");
}

void Sha256Hasher::update(const Sha256& digest) {
  if (EVP_DigestUpdate(context(), digest.data(), digest.size()) != 1) fail("EVP_DigestUpdate");
}

Sha256 Sha256Hasher::finish() {
  Sha256 out;
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(context(), out.data(), &size) != 1 || size != out.size()) {
    fail("EVP_DigestFinal_ex");
  }
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

Sha256 sha256(std::string_view bytes) {
  Sha256Hasher hasher;
  hasher.update(bytes);
  return hasher.finish();
}

}  // namespace lighthouse::codec
