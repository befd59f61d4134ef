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

}  // namespace lighthouse::codec
