#include "serve/tokens.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>

#include "lighthouse/error.h"
#include "parse.h"

namespace lighthouse::serve {
namespace {

std::array<unsigned char, 32> digest_of(std::string_view text) {
  std::array<unsigned char, 32> out{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data());
  return out;
}

[[noreturn]] void bad_line(const std::string& source, std::size_t line, const std::string& what) {
  throw Error(ErrorCode::invalid_argument, "token file '" + source + "', line " + std::to_string(line) + ": " + what);
}

std::uint8_t parse_scopes(std::string_view text, const std::string& source, std::size_t line) {
  std::uint8_t scopes = 0;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view name = text.substr(0, comma);
    if (name == "read") {
      scopes |= static_cast<std::uint8_t>(Scope::read);
    } else if (name == "append") {
      scopes |= static_cast<std::uint8_t>(Scope::append);
    } else if (name == "admin") {
      scopes |= static_cast<std::uint8_t>(Scope::admin);
    } else {
      bad_line(source, line, "unknown scope '" + std::string(name.substr(0, 32)) + "' (read, append or admin)");
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  if (scopes == 0) bad_line(source, line, "a token without scopes");
  return scopes;
}

}  // namespace

Tokens Tokens::load(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    throw Error(ErrorCode::not_found, "no token file at '" + file.string() + "'");
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) throw Error(ErrorCode::io_error, "cannot read token file '" + file.string() + "'");
  return parse(text.str(), file.string());
}

Tokens Tokens::parse(std::string_view text, const std::string& source) {
  Tokens tokens;
  std::size_t number = 0;
  while (!text.empty()) {
    const auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    line.remove_prefix(first);
    const auto space = line.find_first_of(" \t");
    if (space == std::string_view::npos) bad_line(source, number, "a token without scopes");
    const std::string_view token = line.substr(0, space);
    std::string_view scopes = line.substr(space);
    scopes.remove_prefix(scopes.find_first_not_of(" \t"));
    while (!scopes.empty() && (scopes.back() == ' ' || scopes.back() == '\t')) scopes.remove_suffix(1);
    Entry entry{};
    if (token.substr(0, 7) == "sha256:") {
      const std::string_view hex = token.substr(7);
      if (hex.size() != 64) bad_line(source, number, "a sha256: token needs 64 hexadecimal digits");
      for (std::size_t i = 0; i < 32; ++i) {
        const int hi = tool::hex_digit(hex[2 * i]), lo = tool::hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) bad_line(source, number, "a sha256: token needs 64 hexadecimal digits");
        entry.digest[i] = static_cast<unsigned char>(hi * 16 + lo);
      }
    } else {
      if (token.size() < 16) bad_line(source, number, "a token of fewer than 16 characters is too easy to guess");
      entry.digest = digest_of(token);
    }
    entry.scopes = parse_scopes(scopes, source, number);
    tokens.entries_.push_back(entry);
  }
  if (tokens.entries_.empty()) {
    throw Error(ErrorCode::invalid_argument, "token file '" + source + "' holds no token");
  }
  return tokens;
}

std::optional<std::uint8_t> Tokens::scopes_of(std::string_view token) const {
  const auto digest = digest_of(token);
  std::uint8_t found = 0;
  bool matched = false;
  for (const Entry& entry : entries_) {
    // Every entry is compared, whichever matches: the time does not say which.
    const bool same = CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0;
    found |= same ? entry.scopes : std::uint8_t{0};
    matched |= same;
  }
  if (!matched) return std::nullopt;
  return found;
}

std::string Sessions::open(std::uint8_t scopes) {
  std::array<unsigned char, 32> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    throw Error(ErrorCode::internal, "no random bytes for a session ID");
  }
  static const char* digits = "0123456789abcdef";
  std::string id;
  for (unsigned char b : random) {
    id += digits[b >> 4];
    id += digits[b & 15];
  }
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  std::erase_if(sessions_, [&](const Session& s) { return s.expires <= now; });
  sessions_.push_back({digest_of(id), scopes, now + lifetime_});
  return id;
}

std::optional<std::uint8_t> Sessions::scopes_of(std::string_view id) {
  const auto digest = digest_of(id);
  const auto now = std::chrono::steady_clock::now();
  std::optional<std::uint8_t> found;
  std::lock_guard lock(mutex_);
  for (const Session& s : sessions_) {
    const bool same = CRYPTO_memcmp(s.digest.data(), digest.data(), digest.size()) == 0;
    if (same && s.expires > now) found = s.scopes;
  }
  return found;
}

void Sessions::end(std::string_view id) {
  const auto digest = digest_of(id);
  std::lock_guard lock(mutex_);
  std::erase_if(sessions_, [&](const Session& s) { return CRYPTO_memcmp(s.digest.data(), digest.data(), digest.size()) == 0; });
}

}  // namespace lighthouse::serve
