// Bearer tokens of `lighthouse serve --token-file`: each with its scopes.
// The file holds one token per line, `TOKEN SCOPES` or `sha256:HEX SCOPES`
// (the token's SHA-256 in hexadecimal, so that the file need not hold the
// secret itself), SCOPES a comma-separated subset of read, append, admin;
// blank lines and lines starting with '#' are ignored.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lighthouse::serve {

enum class Scope : std::uint8_t { read = 1, append = 2, admin = 4 };

class Tokens {
 public:
  // Errors: invalid_argument naming the line, not_found / io_error for the file.
  static Tokens load(const std::filesystem::path& file);
  static Tokens parse(std::string_view text, const std::string& source);

  // The scopes of `token` (a bit set of Scope), or nothing for a token that
  // is not in the file. Compares against every entry in constant time.
  std::optional<std::uint8_t> scopes_of(std::string_view token) const;
  std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    std::array<unsigned char, 32> digest;
    std::uint8_t scopes;
  };
  std::vector<Entry> entries_;
};

}  // namespace lighthouse::serve
