// `lighthouse init`, `get` and `stats`: each prints one JSON line to `out`.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "lighthouse/store.h"

namespace lighthouse::tool {

// Opens the store at `path`, which must exist (else Error(not_found) naming
// the path). Read commands pass read_only = true. A command's --check asks
// for the structural check of the whole file on open.
Store open_existing(const std::string& path, bool read_only);
void check_structure_on_open(bool on);
// Options::quorum_timeout_seconds of every store the tool opens (--quorum-timeout).
void set_quorum_timeout(double seconds);
bool structure_check_requested();

// Creates a store and prints its path, node id and format version. Refuses
// (std::runtime_error, exit code 1) when a store exists at `path` already:
// init never adopts a store it did not create.
void run_init(const std::string& path, std::optional<std::uint32_t> node_id, std::ostream& out);

// Prints the event with ID `id_text`. A malformed ID is Error(invalid_argument),
// checked before the store is opened; an absent event is Error(not_found).
void run_get(const std::string& path, const std::string& id_text, std::ostream& out);

void run_stats(const std::string& path, std::ostream& out);

}  // namespace lighthouse::tool
