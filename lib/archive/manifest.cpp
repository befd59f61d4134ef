#include "archive/manifest.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <type_traits>
#include <nlohmann/json.hpp>

#include "archive/segment_file.h"
#include "files.h"
#include "lighthouse/error.h"
#include "text.h"

namespace lighthouse::archive {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

[[noreturn]] void bad(const fs::path& dir, const std::string& why) {
  throw Error(ErrorCode::corruption,
              "manifest of archive '" + dir.string() + "' is not valid: " + why);
}

template <typename T>
T field(const Json& j, const char* name, const fs::path& dir) {
  auto it = j.find(name);
  if (it == j.end()) bad(dir, std::string("field '") + name + "' is missing");
  if constexpr (std::is_integral_v<T>) {
    // Only an unsigned integer that fits: nlohmann converts a float or an
    // out-of-range number with undefined behaviour (found by fuzz_archive:
    // fuzz/corpus/fuzz_archive/regression-float-field).
    if (!it->is_number_unsigned() || it->template get<std::uint64_t>() > std::numeric_limits<T>::max()) {
      bad(dir, std::string("field '") + name + "' is not an unsigned integer in range");
    }
  }
  try {
    return it->template get<T>();
  } catch (const Json::exception&) {
    bad(dir, std::string("field '") + name + "' has the wrong type");
  }
}

void require_hex(const fs::path& dir, const std::string& value, const char* what) {
  if (value.size() != 64 || value.find_first_not_of("0123456789abcdef") != std::string::npos) {
    bad(dir, std::string(what) + " is not 64 lower-case hex digits");
  }
}

}  // namespace

std::string segment_name(std::uint64_t first, std::uint64_t last) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "events-%020llu-%020llu.msgpack.gz",
                static_cast<unsigned long long>(first), static_cast<unsigned long long>(last));
  return buf;
}

bool is_temporary_file(const std::string& name) { return name.rfind(".tmp-", 0) == 0; }

bool is_archive_file(const std::string& name) {
  return is_temporary_file(name) ||
         (name.rfind("events-", 0) == 0 && name.size() > 11 &&
          name.compare(name.size() - 11, 11, ".msgpack.gz") == 0);
}

ArchiveManifest load_manifest(const fs::path& dir) {
  const fs::path path = dir / kManifestName;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      throw Error(ErrorCode::not_found, "no archive manifest at '" + path.string() + "'");
    }
    throw Error(ErrorCode::io_error, "cannot read '" + path.string() + "'");
  }
  Json j;
  try {
    j = Json::parse(in);
  } catch (const Json::exception& e) {
    // In the archive's words, without the JSON library's exception tag or
    // its quote of the last bytes it read.
    std::string what = e.what();
    if (auto tag = what.find("] "); tag != std::string::npos) what.erase(0, tag + 2);
    if (auto last = what.find("; last read"); last != std::string::npos) what.resize(last);
    bad(dir, "not JSON (" + what + ")");
  }
  if (!j.is_object()) bad(dir, "not a JSON object");
  if (field<std::string>(j, "format", dir) != "lighthouse-archive") bad(dir, "unknown format");
  ArchiveManifest m;
  m.version = field<std::uint32_t>(j, "version", dir);
  if (m.version != 1 && m.version != 2) bad(dir, "version " + std::to_string(m.version) + " is not supported");
  m.segment_bytes = field<std::uint64_t>(j, "segment_bytes", dir);
  m.max_record_bytes = field<std::uint64_t>(j, "max_record_bytes", dir);
  m.node_id = field<std::uint32_t>(j, "node_id", dir);
  m.base_sequence = field<std::uint64_t>(j, "base_sequence", dir);
  m.base_chain = field<std::string>(j, "base_chain", dir);
  require_hex(dir, m.base_chain, "base_chain");
  const Json& checkpoint = j.contains("checkpoint") ? j["checkpoint"] : Json();
  if (!checkpoint.is_object()) bad(dir, "field 'checkpoint' is missing");
  m.last_id = field<std::string>(checkpoint, "last_id", dir);
  m.last_sequence = field<std::uint64_t>(checkpoint, "last_sequence", dir);
  m.last_chain = field<std::string>(checkpoint, "chain", dir);
  require_hex(dir, m.last_chain, "checkpoint chain");
  if (!j.contains("segments") || !j["segments"].is_array()) bad(dir, "field 'segments' is missing");
  for (const Json& s : j["segments"]) {
    if (!s.is_object()) bad(dir, "a segment is not an object");
    ArchiveSegment seg;
    seg.file = field<std::string>(s, "file", dir);
    // A manifest must not lead a reader out of its directory.
    if (seg.file.empty() || seg.file.find('/') != std::string::npos || seg.file == "." ||
        seg.file == ".." || !is_archive_file(seg.file) || is_temporary_file(seg.file)) {
      bad(dir, "segment file name " + text::quoted(seg.file, 80) + " is not a segment in the archive directory");
    }
    seg.first_id = field<std::string>(s, "first_id", dir);
    seg.last_id = field<std::string>(s, "last_id", dir);
    seg.first_sequence = field<std::uint64_t>(s, "first_sequence", dir);
    seg.last_sequence = field<std::uint64_t>(s, "last_sequence", dir);
    seg.count = field<std::uint64_t>(s, "count", dir);
    seg.record_bytes = field<std::uint64_t>(s, "record_bytes", dir);
    seg.compressed_bytes = field<std::uint64_t>(s, "compressed_bytes", dir);
    seg.sha256 = field<std::string>(s, "sha256", dir);
    seg.chain = field<std::string>(s, "chain", dir);
    require_hex(dir, seg.sha256, "a segment's sha256");
    require_hex(dir, seg.chain, "a segment's chain");
    m.segments.push_back(std::move(seg));
  }
  return m;
}

void store_manifest(const fs::path& dir, const ArchiveManifest& m, unsigned file_mode) {
  Json j;
  j["format"] = "lighthouse-archive";
  j["version"] = m.version;
  j["segment_bytes"] = m.segment_bytes;
  j["max_record_bytes"] = m.max_record_bytes;
  j["node_id"] = m.node_id;
  j["base_sequence"] = m.base_sequence;
  j["base_chain"] = m.base_chain;
  j["checkpoint"] = {{"last_id", m.last_id}, {"last_sequence", m.last_sequence}, {"chain", m.last_chain}};
  Json segments = Json::array();
  for (const auto& s : m.segments) {
    segments.push_back({{"file", s.file},
                        {"first_id", s.first_id},
                        {"last_id", s.last_id},
                        {"first_sequence", s.first_sequence},
                        {"last_sequence", s.last_sequence},
                        {"count", s.count},
                        {"record_bytes", s.record_bytes},
                        {"compressed_bytes", s.compressed_bytes},
                        {"sha256", s.sha256},
                        {"chain", s.chain}});
  }
  j["segments"] = segments;
  const std::string text = j.dump(2) + "\n";
  const fs::path temp = dir / ".tmp-manifest.json";
  const fs::path final_path = dir / kManifestName;
  // A leftover temporary file (or a link planted in its place) is removed,
  // never written through: the manifest is always a new file of our own.
  ::unlink(temp.c_str());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, file_mode);
  if (fd < 0) {
    throw Error(ErrorCode::io_error, "cannot create '" + temp.string() + "': " + std::strerror(errno));
  }
  std::string_view rest = text;
  while (!rest.empty()) {
    ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      throw Error(ErrorCode::io_error, "cannot write '" + temp.string() + "': " + std::strerror(err));
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    throw Error(ErrorCode::io_error, "cannot sync '" + temp.string() + "': " + std::strerror(err));
  }
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    throw Error(ErrorCode::io_error, "cannot sync '" + temp.string() + "': " + std::strerror(err));
  }
  if (::rename(temp.c_str(), final_path.c_str()) != 0) {
    throw Error(ErrorCode::io_error, "cannot replace '" + final_path.string() + "': " + std::strerror(errno));
  }
  sync_path(dir, true);
}

std::vector<std::string> leftover_files(const fs::path& dir, const ArchiveManifest& m) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!archive::is_archive_file(name)) continue;
    bool listed = std::any_of(m.segments.begin(), m.segments.end(),
                              [&](const ArchiveSegment& s) { return s.file == name; });
    if (!listed) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace lighthouse::archive
