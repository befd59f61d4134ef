// The damage mark: a file beside data.mdb ("lighthouse-damaged") that a
// verify() which found the file's structure damaged leaves behind. Every
// process's writers obey it — the committer refuses each group while it is
// there — until repair() (of a store whose structure is whole again) or
// salvage clears it. Reads go on: they are what salvage and an operator need.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace lighthouse::damage_mark {

inline constexpr const char* kFileName = "lighthouse-damaged";

// Leaves the mark with `why` (best effort: a store whose directory cannot
// be written keeps no mark, and verify still reports the damage).
void set(const std::filesystem::path& store_dir, const std::string& why) noexcept;
// What the mark says, when there is one (one failed access() when none).
std::optional<std::string> get(const std::filesystem::path& store_dir);
// The error a write gets while the store is marked.
std::optional<std::string> refusal(const std::filesystem::path& store_dir);
void clear(const std::filesystem::path& store_dir) noexcept;

}  // namespace lighthouse::damage_mark
