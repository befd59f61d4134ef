#include "store/damage_mark.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "files.h"

namespace lighthouse::damage_mark {
namespace fs = std::filesystem;

void set(const fs::path& store_dir, const std::string& why) noexcept {
  try {
    const fs::path mark = store_dir / kFileName;
    const fs::path temp = store_dir / (std::string(kFileName) + ".tmp");
    const std::string text = why + "\n";
    ::unlink(temp.c_str());
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return;
    const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    if (!written) return;
    // Made durable like every other file the store relies on.
    sync_path(temp, false);
    if (::rename(temp.c_str(), mark.c_str()) != 0) return;
    sync_path(store_dir, true);
  } catch (...) {
  }
}

std::optional<std::string> get(const fs::path& store_dir) {
  const fs::path mark = store_dir / kFileName;
  if (::access(mark.c_str(), F_OK) != 0) return std::nullopt;
  std::ifstream in(mark);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  std::string why = text.str();
  while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
  return why.empty() ? std::string("damage was found") : why;
}

void clear(const fs::path& store_dir) noexcept {
  std::error_code ec;
  if (fs::remove(store_dir / kFileName, ec) && !ec) {
    try {
      sync_path(store_dir, true);
    } catch (...) {
    }
  }
}

std::optional<std::string> refusal(const fs::path& store_dir) {
  auto why = get(store_dir);
  if (!why) return std::nullopt;
  return "store '" + store_dir.string() + "' is marked damaged (" + *why +
         "): writes are refused, since LMDB would reuse pages of a damaged file; run `lighthouse repair` (or copy "
         "out what can be read with `lighthouse salvage`)";
}

}  // namespace lighthouse::damage_mark
