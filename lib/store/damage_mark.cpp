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
    {
      std::ofstream out(temp, std::ios::trunc);
      out << why << '\n';
      if (!out) return;
    }
    // Made durable like every other file the store relies on.
    sync_path(temp, false);
    fs::rename(temp, mark);
    sync_path(store_dir, true);
  } catch (...) {
  }
}

std::optional<std::string> get(const fs::path& store_dir) {
  std::ifstream in(store_dir / kFileName);
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

}  // namespace lighthouse::damage_mark
