// Bearer tokens of `lighthouse serve --token-file`: each with its scopes.
// The file holds one token per line, `TOKEN SCOPES` or `sha256:HEX SCOPES`
// (the token's SHA-256 in hexadecimal, so that the file need not hold the
// secret itself), SCOPES a comma-separated subset of read, append, admin;
// blank lines and lines starting with '#' are ignored.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
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

// Browser sessions (POST /session): a random session ID, given to the
// browser as an HttpOnly, SameSite=Strict cookie, stands for the scopes of
// the token that opened it, until it expires or is ended. Only the IDs'
// SHA-256 is kept, compared in constant time as the tokens are.
class Sessions {
 public:
  explicit Sessions(std::chrono::seconds lifetime = std::chrono::hours(12)) : lifetime_(lifetime) {}
  // A new session's ID (64 hexadecimal digits from the OS's random source).
  // Errors: internal (no random bytes).
  std::string open(std::uint8_t scopes);
  std::optional<std::uint8_t> scopes_of(std::string_view id);
  void end(std::string_view id);
  std::chrono::seconds lifetime() const { return lifetime_; }

 private:
  struct Session {
    std::array<unsigned char, 32> digest;
    std::uint8_t scopes;
    std::chrono::steady_clock::time_point expires;
  };
  std::chrono::seconds lifetime_;
  std::mutex mutex_;
  std::vector<Session> sessions_;
};

}  // namespace lighthouse::serve
