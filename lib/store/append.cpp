// Appends: validation, submission to the committer, and the committer's
// group transaction.
#include <algorithm>
#include <cerrno>
#include <chrono>

#include "monitor/prometheus.h"
#include "store/schema.h"

#include "store/store_impl.h"
#include "store/validation.h"
#include "store/write_txn.h"

namespace lighthouse {

void Store::Impl::enqueue(std::unique_ptr<AppendRequest> request) {
  for (std::size_t i = 0; i < request->batches.size(); ++i) {
    try {
      request->bytes +=
          validation::check_batch(request->batches[i], options_.limits, request->allow_reserved);
    } catch (Error& error) {
      if (!request->one_batch) throw error.with_index(i);
      throw;
    }
    request->events += request->batches[i].events.size();
  }
  validation::check_totals(request->events, request->bytes, options_.limits);
  refuse_read_only(false);
  if (auto failed = failed_error()) throw *failed;
  auto lock = use();  // refuses a closed store
  admit(*request);
  committer_->submit(std::move(request));
}

std::future<AppendResult> Store::Impl::submit(Batch batch, bool allow_reserved) {
  auto request = std::make_unique<AppendRequest>();
  request->priority = batch.priority;
  request->batches.push_back(std::move(batch));
  request->allow_reserved = allow_reserved;
  auto future = request->single.emplace().get_future();
  enqueue(std::move(request));
  return future;
}

std::future<std::vector<AppendResult>> Store::Impl::submit(std::vector<Batch> batches,
                                                           bool allow_reserved) {
  auto request = std::make_unique<AppendRequest>();
  request->priority = Priority::critical;
  for (const Batch& b : batches) request->priority = std::min(request->priority, b.priority);
  request->batches = std::move(batches);
  request->allow_reserved = allow_reserved;
  request->one_batch = false;
  auto future = request->several.emplace().get_future();
  enqueue(std::move(request));
  return future;
}

namespace {

bool is_request_error(const Error& error) {
  return dynamic_cast<const lmdb::LmdbError*>(&error) == nullptr;
}

// Calls `f` with the lighthouse::Error `error` holds (nothing for another kind).
template <typename F>
void with_error(const std::exception_ptr& error, F&& f) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    f(e);
  } catch (...) {
  }
}

std::uint64_t steady_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}
std::uint64_t since_ns(std::chrono::steady_clock::time_point start) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
}
}  // namespace

void Store::Impl::persist_sla(MDB_txn* txn) {
  const SlaReport report = monitor_->report();
  const std::uint64_t wall = now_ns();
  const std::string json =
      monitor::measures_json(report, monitor_->since_open(), monitor_->error_counts(), wall);
  lmdb::put(txn, dbs_.meta, schema::meta::kSlaReport, json);
}

void Store::Impl::commit_group(std::vector<std::unique_ptr<AppendRequest>>& group) {
  const auto taken = std::chrono::steady_clock::now();
  if (monitor_) {
    for (const auto& request : group) monitor_->record_queue_wait(
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(taken - request->enqueued).count()));
  }
  std::uint64_t transaction_ns = 0, commit_ns = 0;
  if (group_results_.size() < group.size()) group_results_.resize(group.size());
  auto& results = group_results_;
  std::vector<std::exception_ptr> errors(group.size());
  std::exception_ptr group_error;
  if (auto failed = failed_error()) group_error = std::make_exception_ptr(*failed);
  for (int attempt = 0; !group_error; ++attempt) {
    try {
      auto txn = begin_write();
      // The health state, as every process on the store sees it now.
      const monitor::HealthRecord health = read_health(txn->get());
      adopt_health(health);
      WriteTxn write(txn->get(), dbs_, options_, node_id_, now_ns());
      for (std::size_t i = 0; i < group.size(); ++i) {
        AppendRequest& request = *group[i];
        results[i].clear();
        errors[i] = nullptr;
        if (auto refused = refusal(health, request.priority)) {
          errors[i] = std::make_exception_ptr(*refused);
          continue;
        }
        if (request.one_batch) {
          // Checks precede writes, so a failing batch has written nothing.
          try {
            results[i].push_back(write.write(request.batches.front()));
          } catch (const Error& error) {
            if (!is_request_error(error)) throw;
            errors[i] = std::current_exception();
          }
          continue;
        }
        // Several batches, all or nothing: a nested transaction undoes the
        // earlier batches when a later one fails.
        const WriteState saved = write.state();
        write.close_cursors();
        lmdb::Txn child(env_.get(), false, txn->get());
        write.use_txn(child.get());
        try {
          for (std::size_t k = 0; k < request.batches.size(); ++k) {
            try {
              results[i].push_back(write.write(request.batches[k]));
            } catch (Error& error) {
              if (!is_request_error(error)) throw;
              throw error.with_index(k);
            }
          }
          write.close_cursors();
          child.commit();
        } catch (const Error& error) {
          write.close_cursors();
          child.abort();
          write.use_txn(txn->get());
          if (!is_request_error(error)) throw;
          write.restore(saved);
          results[i].clear();
          errors[i] = std::current_exception();
        }
        write.use_txn(txn->get());
      }
      if (write.finish()) {
        write.close_cursors();
        if (monitor_) {
          // At most once per 10 s window of the monitor's clock, the report
          // rides on this commit (the first commit carries one).
          const std::uint64_t t = monitor_->now();
          if (!last_persist_ns_ || t - *last_persist_ns_ >= 10'000'000'000ull) {
            persist_sla(txn->get());
            last_persist_ns_ = t;
          }
        }
        transaction_ns = since_ns(taken);
        const auto committing = std::chrono::steady_clock::now();
        txn->commit();
        commit_ns = since_ns(committing);
        commits_.fetch_add(1, std::memory_order_relaxed);
        appended_.store(true, std::memory_order_relaxed);
        notify_subscribers();
      }
      break;
    } catch (const lmdb::LmdbError& error) {
      if (error.rc() == MDB_MAP_FULL && attempt < 16) {
        try {
          grow_map();
          continue;
        } catch (const Error& grow_error) {
          group_error = std::make_exception_ptr(Error(grow_error.code(), grow_error.what()));
          break;
        }
      }
      std::string reason = error.what();
      if (error.rc() == MDB_PANIC || error.rc() > 0) record_failure(reason);
      ErrorCode code = error.rc() == MDB_PANIC || error.rc() > 0 ? ErrorCode::store_failed
                                                                  : error.code();
      group_error = std::make_exception_ptr(
          Error(code, reason + (code == ErrorCode::store_failed
                                    ? "; the store refuses writes until it is reopened"
                                    : "")));
    } catch (const Error& error) {
      group_error = std::make_exception_ptr(Error(error.code(), error.what()));
    } catch (const std::exception& error) {
      group_error = std::make_exception_ptr(
          Error(ErrorCode::internal, std::string("append failed: ") + error.what()));
    }
  }
  // An I/O failure is an emergency at once: recorded before any caller
  // hears of the failure, so that what they see next agrees with it.
  if (group_error && options_.health.enabled && !failure().empty() &&
      health_cache_.load(std::memory_order_relaxed) != static_cast<std::uint8_t>(HealthState::emergency)) {
    health_tick();
  }
  if (monitor_ && !group_error && commit_ns != 0) {
    std::uint64_t events = 0, bytes = 0;
    for (std::size_t i = 0; i < group.size(); ++i) {
      if (errors[i]) continue;
      for (const auto& r : results[i]) {
        if (!r.replayed) events += r.events.size();
      }
      bytes += group[i]->bytes;
    }
    monitor_->record_group(transaction_ns, commit_ns, events, bytes);
  }
  for (std::size_t i = 0; i < group.size(); ++i) {
    std::exception_ptr error = errors[i];
    // Corruption met while checking a request is a health trigger: looked at
    // before its caller gets the exception (theirs to free afterwards).
    if (error) {
      with_error(error, [&](const Error& e) {
        if (e.code() == ErrorCode::corruption) note_corruption(e.what());
      });
    }
    if (group_error) {
      // Each caller gets an exception object of its own: callers on other
      // threads must not share one (its message is reference-counted).
      try {
        std::rethrow_exception(group_error);
      } catch (const Error& e) {
        error = std::make_exception_ptr(Error(e.code(), e.what()));
      }
    }
    if (monitor_) {
      if (error) with_error(error, [&](const Error& e) { monitor_->record_error(std::string(to_string(e.code()))); });
      monitor_->record_append(since_ns(group[i]->enqueued));
    }
    group[i]->complete(error ? nullptr : &results[i], error);
  }
  if (monitor_) {
    // Breaches are looked for at most once a second, off the callers' path.
    const std::uint64_t t = steady_ns();
    if (t - last_evaluation_ns_ >= 1'000'000'000ull) {
      last_evaluation_ns_ = t;
      monitor_->evaluate();
    }
  }
}

}  // namespace lighthouse
