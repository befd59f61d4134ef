#include "files.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <cstring>
#include <string>

#include "lighthouse/error.h"

namespace lighthouse {

void sync_path(const std::filesystem::path& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw Error(ErrorCode::io_error, std::string(fd < 0 ? "cannot open '" : "cannot sync '") + path.string() +
                                         "': " + write_failure(err, directory ? path : path.parent_path()));
  }
  ::close(fd);
}

std::string byte_size(std::uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " bytes";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = -1;
  while (value >= 1024 && unit < 3) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
  return text;
}

std::string write_failure(int err, const std::filesystem::path& where, const std::filesystem::path& store_file) {
  // A filesystem with less than this free is full for a store: LMDB writes
  // whole pages, and a short write is how it meets the end of the space.
  constexpr std::uint64_t kNearlyFull = 1u << 20;
  struct statvfs fs {};
  std::filesystem::path probe = where;
  std::error_code ec;
  while (!probe.empty() && !std::filesystem::exists(probe, ec)) probe = probe.parent_path();
  const bool known = !probe.empty() && ::statvfs(probe.c_str(), &fs) == 0;
  const std::uint64_t free_bytes = known ? static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize : 0;
  if (err != ENOSPC && !(err == EIO && known && free_bytes < kNearlyFull)) return std::strerror(err);
  std::string out = "no space left on device: " + (known ? byte_size(free_bytes) : std::string("nothing")) +
                    " free on the filesystem of '" + where.string() + "'";
  if (!store_file.empty()) {
    const std::uint64_t size = std::filesystem::file_size(store_file, ec);
    if (!ec) out += "; the store's data file is " + byte_size(size);
  }
  return out;
}

void check_copy_destination(const std::filesystem::path& destination, const std::filesystem::path& store,
                            const char* what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(destination, ec) && (!fs::is_directory(destination, ec) || !fs::is_empty(destination, ec))) {
    throw Error(ErrorCode::invalid_argument, std::string(what) + " destination '" + destination.string() +
                                                 "' exists and is not an empty directory");
  }
  const fs::path where = fs::weakly_canonical(destination, ec);
  auto [s, w] = std::mismatch(store.begin(), store.end(), where.begin(), where.end());
  if (!ec && s == store.end()) {
    throw Error(ErrorCode::invalid_argument, std::string(what) + " destination '" + destination.string() + "' is " +
                                                 (w == where.end() ? "the store itself" : "inside the store's directory"));
  }
}

}  // namespace lighthouse
