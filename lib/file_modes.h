// Permissions of the files and directories Lighthouse creates.
#pragma once

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

}  // namespace lighthouse
