// The archive manifest (manifest.json): reading, validating and replacing it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "lighthouse/archive.h"

namespace lighthouse::archive {

inline constexpr const char* kManifestName = "manifest.json";
// The chain value an archive of a store that was never truncated starts from.
inline const std::string kZeroChain(64, '0');

// Segment file names sort in event order and say which sequences they hold.
std::string segment_name(std::uint64_t first_sequence, std::uint64_t last_sequence);
// Returns true iff `name` is a segment or temporary file an export writes.
bool is_archive_file(const std::string& name);
bool is_temporary_file(const std::string& name);

// The segment and temporary files in `dir` that `manifest` does not name
// (what an interrupted export left), sorted.
std::vector<std::string> leftover_files(const std::filesystem::path& dir, const ArchiveManifest& manifest);

// Errors: not_found (no manifest), corruption (not JSON, a field missing or
// of the wrong type, a file name outside the archive directory).
ArchiveManifest load_manifest(const std::filesystem::path& dir);

// Replaces the manifest crash-safely: temporary file, sync, rename, sync
// the directory. Errors: io_error.
void store_manifest(const std::filesystem::path& dir, const ArchiveManifest& manifest, unsigned file_mode = 0600);

// Verifies the segments holding sequences from_sequence..to_sequence (file
// sizes and hashes, records, checksums, chain from the manifest's value
// before them) and returns the chain value after `to_sequence`, hex.
// Errors: corruption, invalid_argument (the archive does not hold it).
std::string verify_through(const std::filesystem::path& dir, const ArchiveManifest& manifest,
                           std::uint64_t from_sequence, std::uint64_t to_sequence);

}  // namespace lighthouse::archive
