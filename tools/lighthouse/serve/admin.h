// The admin routes of `lighthouse serve` (scope `admin`): enter and clear a
// manual emergency, and verify as a job that runs in the background while
// the server goes on serving, its report fetched when it is done.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "serve/api.h"

namespace lighthouse::serve {

class Admin {
 public:
  explicit Admin(Store& store) : store_(store) {}
  // Waits for a running verify job: the store must outlive it.
  ~Admin();
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;

  Response enter_emergency(const Request& request);
  Response clear_emergency();
  // 202 with the job's ID and Location; 409 while a verify job runs.
  Response start_verify();
  Response job(const std::string& id) const;

 private:
  struct Job {
    std::uint64_t id = 0;
    std::string status;  // running, done, failed
    std::uint64_t started_ns = 0, finished_ns = 0;
    std::optional<VerifyReport> report;
    std::string error;
  };
  tool::Json describe(const Job& job) const;

  Store& store_;
  mutable std::mutex mutex_;
  std::uint64_t next_id_ = 1;
  std::optional<Job> last_;  // the latest verify job (one at a time)
  std::thread worker_;
};

}  // namespace lighthouse::serve
