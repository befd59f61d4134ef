// `lighthouse append`: JSON lines from an input stream become events.
#pragma once

#include <ostream>

#include "lighthouse/store.h"

namespace lighthouse::tool {

// Reads JSON event lines from `input_fd` until its end and appends them to
// `store`, writing one JSON line per event to `out` after its commit.
//
// Streaming (atomic == false): each line is a batch of its own; lines are
// committed a group at a time — when a group reaches 1000 lines or 8 MiB of
// content, when the input has nothing more to read right now, and at its
// end — so a slow producer is acknowledged promptly.
// Atomic (atomic == true): all lines are validated, then committed together.
//
// At the first bad line — malformed, or refused by the store — throws
// Error naming the line ("line N: ..."). Nothing of that line's group is
// written; what was written to `out` before stays committed.
// Every batch carries `priority` (a degraded store sheds those below the
// priority it admits).
void run_append(Store& store, int input_fd, std::ostream& out, bool atomic,
                Priority priority = Priority::normal);

}  // namespace lighthouse::tool
