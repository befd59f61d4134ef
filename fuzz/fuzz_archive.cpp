// libFuzzer target: the archive readers — a segment file (gzip members of
// length-prefixed records, each decoded) and a manifest. Damaged input must
// raise Error(corruption) (or invalid_argument for a manifest that is not
// one): never crash, allocate without bound or hang.
//
// The first byte picks the reader; the rest is the file.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "archive/archive_record.h"
#include "archive/manifest.h"
#include "archive/segment_file.h"
#include "lighthouse/error.h"

namespace {

const std::filesystem::path& work_dir() {
  static const std::filesystem::path dir = [] {
    const char* shm = "/dev/shm";
    std::filesystem::path base = std::filesystem::exists(shm) ? shm : std::filesystem::temp_directory_path();
    auto d = base / ("lighthouse-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

void write_file(const std::filesystem::path& path, const std::uint8_t* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool manifest = data[0] & 1;
  try {
    if (manifest) {
      write_file(work_dir() / "manifest.json", data + 1, size - 1);
      (void)lighthouse::archive::load_manifest(work_dir());
    } else {
      const auto path = work_dir() / "segment.gz";
      write_file(path, data + 1, size - 1);
      lighthouse::archive::SegmentReader reader(path, 1u << 20);
      std::string record;
      while (reader.next(record)) (void)lighthouse::archive::decode_archive_record(record, "fuzz");
    }
  } catch (const lighthouse::Error& error) {
    if (error.code() != lighthouse::ErrorCode::corruption && error.code() != lighthouse::ErrorCode::invalid_argument &&
        error.code() != lighthouse::ErrorCode::not_found && error.code() != lighthouse::ErrorCode::unsupported_format) {
      __builtin_trap();
    }
  }
  return 0;
}
