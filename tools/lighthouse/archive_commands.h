// `lighthouse export`, `import`, `archive verify` and `archive list`.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

namespace lighthouse::tool {

void run_export(const std::string& store, const std::string& dir, std::uint64_t segment_bytes,
                int level, std::ostream& out);
void run_import(const std::string& dir, const std::string& store, const std::string& until,
                std::ostream& out);
// Exit code 0 when the archive verifies (leftovers are warnings), 5 when not.
int run_archive_verify(const std::string& dir, std::ostream& out);
void run_archive_list(const std::string& dir, std::ostream& out);

}  // namespace lighthouse::tool
