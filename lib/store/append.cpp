// Appends: validation, submission to the committer, and the committer's
// group transaction.
#include <cerrno>

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
  if (options_.read_only) {
    throw Error(ErrorCode::read_only, "store '" + path_.string() + "' is open read-only");
  }
  if (auto reason = failure(); !reason.empty()) {
    throw Error(ErrorCode::store_failed, "store '" + path_.string() + "' refuses writes after: " +
                                             reason + "; close and reopen it");
  }
  auto lock = use();  // refuses a closed store
  committer_->submit(std::move(request));
}

std::future<AppendResult> Store::Impl::submit(Batch batch, bool allow_reserved) {
  auto request = std::make_unique<AppendRequest>();
  request->batches.push_back(std::move(batch));
  request->allow_reserved = allow_reserved;
  auto future = request->single.get_future();
  enqueue(std::move(request));
  return future;
}

std::future<std::vector<AppendResult>> Store::Impl::submit(std::vector<Batch> batches,
                                                           bool allow_reserved) {
  auto request = std::make_unique<AppendRequest>();
  request->batches = std::move(batches);
  request->allow_reserved = allow_reserved;
  request->one_batch = false;
  auto future = request->several.get_future();
  enqueue(std::move(request));
  return future;
}

namespace {

bool is_request_error(const Error& error) {
  return dynamic_cast<const lmdb::LmdbError*>(&error) == nullptr;
}

}  // namespace

void Store::Impl::commit_group(std::vector<std::unique_ptr<AppendRequest>>& group) {
  std::vector<std::vector<AppendResult>> results(group.size());
  std::vector<std::exception_ptr> errors(group.size());
  std::exception_ptr group_error;
  if (auto reason = failure(); !reason.empty()) {
    group_error = std::make_exception_ptr(
        Error(ErrorCode::store_failed, "store '" + path_.string() +
                                           "' refuses writes after: " + reason +
                                           "; close and reopen it"));
  }
  for (int attempt = 0; !group_error; ++attempt) {
    try {
      auto txn = begin_write();
      WriteTxn write(txn->get(), dbs_, options_, node_id_, now_ns());
      for (std::size_t i = 0; i < group.size(); ++i) {
        AppendRequest& request = *group[i];
        results[i].clear();
        errors[i] = nullptr;
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
        txn->commit();
        commits_.fetch_add(1, std::memory_order_relaxed);
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
  for (std::size_t i = 0; i < group.size(); ++i) {
    std::exception_ptr error = errors[i];
    if (group_error) {
      // Each caller gets an exception object of its own: callers on other
      // threads must not share one (its message is reference-counted).
      try {
        std::rethrow_exception(group_error);
      } catch (const Error& e) {
        error = std::make_exception_ptr(Error(e.code(), e.what()));
      }
    }
    group[i]->complete(error ? nullptr : &results[i], error);
  }
}

}  // namespace lighthouse
