// verify_archive, cross_check_archive and the manifest's readers.
#include "lighthouse/archive.h"

#include "archive/archive_walk.h"
#include "archive/manifest.h"
#include "lighthouse/store.h"

namespace lighthouse {
namespace fs = std::filesystem;

ArchiveManifest read_manifest(const fs::path& dir) { return archive::load_manifest(dir); }

std::string archive::verify_through(const fs::path& dir, const ArchiveManifest& manifest,
                                   std::uint64_t from_sequence, std::uint64_t to_sequence) {
  std::string chain;
  bool reached = false;
  archive::ArchiveWalk(dir, manifest, from_sequence).run([&](const RecordedEvent& e, std::size_t) {
    if (e.id.sequence == to_sequence) {
      chain = to_hex(e.chain);
      reached = true;
      return false;
    }
    return true;
  });
  if (!reached) {
    throw Error(ErrorCode::invalid_argument, "archive '" + dir.string() + "' holds no event with sequence " +
                                                 std::to_string(to_sequence));
  }
  return chain;
}

std::vector<ArchiveProblem> cross_check_archive(const Store& store, const fs::path& dir) {
  const ArchiveManifest m = archive::load_manifest(dir);
  const StoreStats stats = store.stats();
  std::vector<ArchiveProblem> problems;
  const std::uint64_t base = stats.base_sequence;
  if (base > 1 && m.base_sequence == base) {
    // An archive begun after the truncation: it must chain from the anchor.
    if (m.base_chain != stats.base_chain) {
      problems.push_back({archive::kManifestName,
                          "the archive starts at the store's base but not from its chain anchor"});
    }
  } else if (base > 1) {
    if (m.last_sequence + 1 < base || m.base_sequence > base - 1) {
      problems.push_back({archive::kManifestName,
                          "the archive holds sequences " + std::to_string(m.base_sequence) + ".." +
                              std::to_string(m.last_sequence) + ", not the store's truncated event " +
                              std::to_string(base - 1)});
    } else if (archive::verify_through(dir, m, base - 1, base - 1) != stats.base_chain) {
      problems.push_back({archive::kManifestName, "event " + std::to_string(base - 1) +
                                                      " of the archive does not carry the store's chain anchor"});
    }
  }
  if (m.last_sequence >= base && m.last_sequence <= stats.last_sequence) {
    Query at;
    at.from_sequence = m.last_sequence;
    at.to_sequence = m.last_sequence;
    auto event = store.query(at).next();
    if (!event || to_hex(event->chain) != m.last_chain || event->id.to_string() != m.last_id) {
      problems.push_back({archive::kManifestName, "the archive's checkpoint " + m.last_id +
                                                      " is not the store's event " +
                                                      std::to_string(m.last_sequence)});
    }
  } else if (m.last_sequence > stats.last_sequence) {
    problems.push_back({archive::kManifestName, "the archive holds events past the store's last (" +
                                                    std::to_string(stats.last_sequence) + ")"});
  }
  return problems;
}

ArchiveVerifyReport verify_archive(const fs::path& dir) {
  ArchiveVerifyReport report;
  report.manifest = archive::load_manifest(dir);
  report.leftovers = archive::leftover_files(dir, report.manifest);
  archive::ArchiveWalk walk(dir, report.manifest);
  try {
    walk.run([](const RecordedEvent&, std::size_t) { return true; });
  } catch (const Error& error) {
    std::string what = error.what();
    auto colon = what.find(": ");
    report.problems.push_back({what.substr(0, colon), colon == std::string::npos ? what : what.substr(colon + 2)});
  }
  report.events = walk.events();
  return report;
}

}  // namespace lighthouse
