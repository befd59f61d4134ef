// The files and directories Lighthouse creates: their permissions, and
// making them durable.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <filesystem>
#include <system_error>

namespace lighthouse {

// A directory's mode for files of `file_mode`: each class that may read may
// also search (0600 → 0700, 0640 → 0750).
inline unsigned directory_mode(unsigned file_mode) {
  unsigned mode = file_mode & 0777u;
  if (mode & 0400u) mode |= 0100u;
  if (mode & 0040u) mode |= 0010u;
  if (mode & 0004u) mode |= 0001u;
  return mode;
}

// A directory path in normal form, its last element the directory itself:
// "a/store/" is a/store, "a/x/.." is a.
inline std::filesystem::path directory_path(const std::filesystem::path& path) {
  std::filesystem::path dir = path.lexically_normal();
  if (dir.filename().empty() && dir.has_parent_path()) dir = dir.parent_path();
  return dir;
}

// Creates `dir` (and its missing parents) with the directory mode for files
// of `file_mode`, less the process's umask, as the files in it get. Returns
// whether it created `dir`; `ec` is set on failure.
inline bool create_directory_for(const std::filesystem::path& path, unsigned file_mode, std::error_code& ec) {
  ec.clear();
  const std::filesystem::path dir = directory_path(path);
  if (dir.has_parent_path() && dir.parent_path() != dir) {
    std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec) return false;
  }
  if (::mkdir(dir.c_str(), static_cast<mode_t>(directory_mode(file_mode))) == 0) return true;
  if (errno == EEXIST && std::filesystem::is_directory(dir, ec)) return false;
  if (!ec) ec = std::error_code(errno, std::generic_category());
  return false;
}

// fsync of a file or a directory. Errors: io_error naming the path.
void sync_path(const std::filesystem::path& path, bool directory);

// A copy's destination (`what`: "backup", "salvage"): a new or empty
// directory, neither the store's directory `store` (canonical) nor anything
// inside it. Checked before anything is created there. Errors:
// invalid_argument.
void check_copy_destination(const std::filesystem::path& destination, const std::filesystem::path& store,
                            const char* what);

// What a failed write with `err` (an errno) in the filesystem of `where`
// means, in the store's words: for ENOSPC — and for EIO when the filesystem
// is (nearly) full, which is how LMDB reports a short write — "no space left
// on device" with the free space there and the size of `store_file` (when
// given); otherwise strerror(err).
std::string write_failure(int err, const std::filesystem::path& where, const std::filesystem::path& store_file = {});

// "12.3 MiB", "512 bytes".
std::string byte_size(std::uint64_t bytes);

}  // namespace lighthouse
