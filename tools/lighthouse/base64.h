// Standard base64 (RFC 4648, section 4), with padding.
#pragma once

#include <string>
#include <string_view>

namespace lighthouse::tool {

std::string base64_encode(std::string_view bytes);

// Decodes strictly: the standard alphabet only, no whitespace, length a
// multiple of 4, '=' only as the final padding, and unused bits zero — so
// every byte string has exactly one accepted encoding.
// Throws Error(invalid_argument) naming the first offending position.
std::string base64_decode(std::string_view text);

}  // namespace lighthouse::tool
