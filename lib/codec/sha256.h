// SHA-256 through OpenSSL's EVP interface: the algorithm is fetched once per
// process and each thread reuses one digest context.
#pragma once

#include <string_view>

#include "lighthouse/event.h"

namespace lighthouse::codec {

class Sha256Hasher {
 public:
  Sha256Hasher();  // starts a digest on this thread's context
  void update(std::string_view bytes);
  void update(const Sha256& digest);
  Sha256 finish();
};

Sha256 sha256(std::string_view bytes);

// The digest whose lower-case hexadecimal (to_hex) is `hex`; 32 zero bytes
// when `hex` is not 64 hexadecimal digits (an empty anchor: the chain's start).
Sha256 digest_from_hex(std::string_view hex) noexcept;

// A digest with a context of its own, for data that arrives in pieces while
// other digests are computed on the same thread (a file being written).
class StreamingSha256 {
 public:
  StreamingSha256();
  ~StreamingSha256();
  StreamingSha256(const StreamingSha256&) = delete;
  StreamingSha256& operator=(const StreamingSha256&) = delete;
  void update(std::string_view bytes);
  Sha256 finish();

 private:
  void* ctx_;  // EVP_MD_CTX
};

}  // namespace lighthouse::codec
