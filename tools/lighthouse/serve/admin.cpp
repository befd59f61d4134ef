#include "serve/admin.h"

#include <chrono>

#include "json_event.h"

namespace lighthouse::serve {
namespace {

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// Problems listed in a job's report; the count says how many there were.
constexpr std::size_t kListedProblems = 100;

}  // namespace

Admin::~Admin() {
  if (worker_.joinable()) worker_.join();
}

Response Admin::enter_emergency(const Request& request) {
  const tool::Json body = tool::parse_json_text(request.body.empty() ? "{}" : request.body, true);
  if (!body.is_object() || body.size() != 1 || !body.contains("reason") || !body["reason"].is_string()) {
    throw Error(ErrorCode::invalid_argument, "the body must be {\"reason\": \"why\"}");
  }
  store_.enter_emergency(body["reason"].get<std::string>());
  return json_response(200, tool::health_json(store_.health()));
}

Response Admin::clear_emergency() {
  store_.clear_emergency();
  return json_response(200, tool::health_json(store_.health()));
}

Response Admin::start_verify() {
  const std::lock_guard lock(mutex_);
  if (last_ && last_->status == "running") {
    Response busy = json_response(409, {{"error", "conflict"},
                                        {"message", "verify job " + std::to_string(last_->id) + " is running"},
                                        {"job", last_->id}});
    busy.headers.emplace_back("Location", "/admin/jobs/" + std::to_string(last_->id));
    return busy;
  }
  if (worker_.joinable()) worker_.join();  // the previous job, finished
  last_ = Job{next_id_++, "running", now_ns(), 0, std::nullopt, ""};
  const std::uint64_t id = last_->id;
  worker_ = std::thread([this, id] {
    std::optional<VerifyReport> report;
    std::string error;
    try {
      report = store_.verify();
    } catch (const std::exception& e) {
      error = e.what();
    }
    const std::lock_guard done(mutex_);
    if (!last_ || last_->id != id) return;
    last_->finished_ns = now_ns();
    last_->status = report ? "done" : "failed";
    last_->report = std::move(report);
    last_->error = std::move(error);
  });
  Response accepted = json_response(202, describe(*last_));
  accepted.headers.emplace_back("Location", "/admin/jobs/" + std::to_string(id));
  return accepted;
}

Response Admin::job(const std::string& id) const {
  const std::lock_guard lock(mutex_);
  if (!last_ || std::to_string(last_->id) != id) {
    return error_response(404, "not_found", "no job " + id.substr(0, 32) + " (the server keeps the latest verify job)");
  }
  return json_response(200, describe(*last_));
}

tool::Json Admin::describe(const Job& job) const {
  tool::Json out;
  out["job"] = job.id;
  out["kind"] = "verify";
  out["status"] = job.status;
  out["started_ns"] = job.started_ns;
  if (job.finished_ns != 0) out["finished_ns"] = job.finished_ns;
  if (!job.error.empty()) out["error"] = job.error;
  if (job.report) {
    const VerifyReport& r = *job.report;
    tool::Json report;
    report["ok"] = r.ok();
    report["events_checked"] = r.events_checked;
    report["index_entries_checked"] = r.index_entries_checked;
    report["pages_checked"] = r.pages_checked;
    report["problem_count"] = r.problem_count;
    report["problems"] = tool::Json::array();
    for (std::size_t i = 0; i < r.problems.size() && i < kListedProblems; ++i) {
      report["problems"].push_back(
          {{"category", r.problems[i].category}, {"subject", r.problems[i].subject}, {"detail", r.problems[i].detail}});
    }
    out["report"] = std::move(report);
  }
  return out;
}

}  // namespace lighthouse::serve
