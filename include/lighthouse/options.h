// Options for opening a store. Plain structs with their defaults in place;
// each field says what it does to crash safety or memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "lighthouse/event.h"
#include "lighthouse/export.h"
#include "lighthouse/health.h"
#include "lighthouse/sla.h"
#include "lighthouse/tracing.h"

namespace lighthouse {

enum class Durability : std::uint8_t {
  // Every commit is flushed (data pages, then the meta page) before the
  // append is acknowledged. An acknowledged append survives a crash of the
  // process and a loss of power.
  sync,
  // Data pages are flushed at commit, the meta page is not (LMDB's
  // MDB_NOMETASYNC): one sync per commit instead of two. An acknowledged
  // append survives a crash of the process. A loss of power may undo the
  // last transaction whose commit returned before it — exactly that one:
  // the next commit's flush makes the meta page before it durable — and
  // any in flight, but never corrupts the store: it opens and verifies, and
  // holds every batch whole or not at all (the power-loss tests of
  // tests/crash/ check this). Lighthouse has no mode that can corrupt a
  // store (LMDB's MDB_NOSYNC can, so it is not offered).
  no_meta_sync,
};

struct Limits {
  // Type + aggregate + metadata keys and values + data of one event.
  std::size_t max_event_bytes = 1 << 20;
  // Events in one append_batch (or in all batches of one append_batches).
  std::size_t max_batch_events = 10'000;
  // Content bytes in one append_batch (or append_batches).
  std::size_t max_batch_bytes = 64u << 20;
  // Names: type 1..max_name_bytes, aggregate 0..max_name_bytes. LMDB keys
  // are at most 511 bytes, so this cannot exceed 255.
  std::size_t max_name_bytes = 255;
  std::size_t max_idempotency_key_bytes = 128;
};

// Nanoseconds since the Unix epoch. Injectable for tests; the store makes
// the timestamps it assigns strictly increasing whatever the clock does.
using Clock = std::function<std::uint64_t()>;

// Store::open refuses options out of range with Error(invalid_argument) naming
// the option, before it creates anything: limits of 0, name limits beyond what
// LMDB keys hold (255; idempotency keys 511), a file mode that does not let
// the owner read and write, a map of less than 64 KiB or more than 64 TiB,
// NaN or negative durations and targets, health thresholds outside [0, 1] or
// out of order, and enum values outside their enumerators.
struct Options {
  // Open the store read-only: every write raises Error(read_only), and the
  // process never writes to the store's data files (a verify() that finds
  // the file's structure damaged leaves its damage mark beside them).
  bool read_only = false;

  // Create the directory and an empty store when none exists.
  bool create_if_missing = true;

  // Permissions of the files a new store creates (data.mdb, lock.mdb); the
  // directory it creates gets the same plus search (x) where reading is
  // allowed: 0600 → 0700. Owner-only by default. Existing files keep theirs.
  unsigned file_mode = 0600;

  Durability durability = Durability::sync;

  // The initial size of LMDB's memory map. Address space, not memory: pages
  // are read in on demand. When the data outgrows it, the store doubles the
  // map by itself (no caller sees an error), and adopts a map grown by
  // another process.
  std::size_t map_size = std::size_t{1} << 34;  // 16 GiB

  // The most the map may grow to; 0: no maximum (bounded by the disk). A
  // store at its maximum refuses appends with Error(limit_exceeded), and its
  // map usage (used / maximum) is a health trigger.
  std::size_t max_map_size = 0;

  // The node id written into the IDs this process assigns. Defaults to the
  // one chosen when the store was created.
  std::optional<std::uint32_t> node_id;

  Limits limits;

  // Group commit: appends queued while a commit is in progress are taken
  // into the next transaction together — one sync for all of them — up to
  // these bounds. A batch is never split; each fails or succeeds alone.
  std::size_t max_group_events = 16'384;
  std::size_t max_group_bytes = 64u << 20;

  // Data of at least this many bytes is stored zstd-compressed (flagged in the
  // record; checksums cover the uncompressed bytes). 0 turns compression off.
  std::size_t compression_threshold = 4096;
  int compression_level = 3;

  // Check the store's invariants on open, in O(1): the meta counters against
  // the first and last events (a broken one raises Error(corruption)). Turn
  // it off only to inspect or repair a damaged store with verify() and
  // repair(). The data file's size and format version are always checked.
  bool check_on_open = true;

  // Check the LMDB file's whole structure on open, before LMDB reads it (the
  // check verify() runs first: every page of every tree and of the free
  // list). Off by default: it reads the whole file — about 0.4 s per GiB
  // from the page cache, about 1.5 times a sequential read of the file from
  // disk (docs/performance.md, "The structural check"). A
  // store found damaged is refused with Error(corruption) and marked (see
  // verify()). The two meta pages are checked on every open regardless.
  bool check_structure_on_open = false;

  // What every read (get, query, aggregate read, subscription delivery)
  // checks of each event it reads. `fast` (the default): the record's 64-bit
  // XXH3 check over its stored bytes and key, before anything is decoded or
  // decompressed — any damage to a stored record is detected, for 30–40 ns
  // a 300-byte record against the 0.5 µs of `full`'s SHA-256. `full`: also the SHA-256 checksum over the
  // event's whole content (what verify(), backup(), export and import always
  // check). `off`: nothing; damaged content may be returned. A format-1
  // store's records have no fast check: `fast` verifies their SHA-256.
  ReadCheck verify_on_read = ReadCheck::fast;

  Clock clock;  // empty: the system clock
  // Monotonic nanoseconds for the SLA monitor's windows (and so for the
  // health triggers that read them). Empty: std::chrono::steady_clock.
  Clock monotonic_clock;

  // The SLA monitor: timings of every transaction, append and query, checked
  // against `sla`. A process that writes persists its latest report in the
  // store at most once per 10 s window, on a commit it makes anyway (never a
  // sync of its own), and when the store closes. Costs about 1 MiB of memory
  // per open store (the windows' histograms) and 1.8 % of an append's
  // instructions.
  bool monitor = true;
  SlaTargets sla;

  // Health states and degradation (see lighthouse/health.h).
  HealthOptions health;

  // Spans of appends, commits, reads, deliveries and the exclusive tasks,
  // handed to tracing.sink (see lighthouse/tracing.h). No sink: nothing is
  // recorded, and no event gets a trace context it was not given.
  tracing::TracingOptions tracing;

  // Quorum replication (docs/replication.md, lighthouse/replication.h): on a
  // store a replicator runs in `quorum` mode, an append completes only once
  // the stream acknowledged its events, or fails with
  // Error(replication_pending) after this many seconds (its events are
  // durable here and will be replicated; a retry with the same idempotency
  // key returns them). Readers see events up to the acknowledged position.
  double quorum_timeout_seconds = 5.0;
};

}  // namespace lighthouse
