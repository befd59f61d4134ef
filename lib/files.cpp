#include "files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "lighthouse/error.h"

namespace lighthouse {

void sync_path(const std::filesystem::path& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw Error(ErrorCode::io_error,
                std::string(fd < 0 ? "cannot open '" : "cannot sync '") + path.string() + "': " + std::strerror(err));
  }
  ::close(fd);
}

}  // namespace lighthouse
