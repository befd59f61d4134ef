#include "replication/nats_client.h"

#include <algorithm>
#include <cmath>

namespace lighthouse::replication {
namespace {

bool valid_stream_name(const std::string& name) {
  if (name.empty() || name.size() > 255) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return c > 32 && c < 127 && c != '.' && c != '*' && c != '>' && c != '/' && c != '\\';
  });
}

bool valid_subject(const std::string& subject) {
  if (subject.empty() || subject.front() == '.' || subject.back() == '.') return false;
  for (std::size_t i = 0; i < subject.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(subject[i]);
    if (c <= 32 || c >= 127 || c == '*' || c == '>') return false;
    if (c == '.' && subject[i + 1] == '.') return false;
  }
  return true;
}

std::int64_t milliseconds(double seconds) { return static_cast<std::int64_t>(std::ceil(seconds * 1000)); }

}  // namespace

void check_stream_options(const StreamOptions& o) {
  if (o.servers.empty()) throw Error(ErrorCode::invalid_argument, "no NATS server given (--nats nats://HOST:PORT,...)");
  for (const std::string& s : o.servers) {
    if (s.empty() || s.find_first_of(" \t\r\n,") != std::string::npos) {
      throw Error(ErrorCode::invalid_argument, "bad NATS server URL '" + s + "'");
    }
  }
  if (!valid_stream_name(o.stream)) {
    throw Error(ErrorCode::invalid_argument, "bad stream name '" + o.stream +
                                                 "': 1-255 printable ASCII characters, none of . * > / \\ or space");
  }
  if (!o.subject.empty() && !valid_subject(o.subject)) {
    throw Error(ErrorCode::invalid_argument, "bad subject '" + o.subject + "': tokens separated by '.', no wildcards");
  }
  if (!(o.timeout_seconds >= 0.01 && o.timeout_seconds <= 3600)) {
    throw Error(ErrorCode::invalid_argument, "the NATS timeout must be 0.01 to 3600 seconds");
  }
}

std::string subject_of(const StreamOptions& o) { return o.subject.empty() ? "lighthouse." + o.stream : o.subject; }

std::string joined_servers(const StreamOptions& o) {
  std::string servers;
  for (const std::string& s : o.servers) servers += (servers.empty() ? "" : ",") + s;
  return servers;
}

std::string describe(const StreamOptions& o) { return "stream '" + o.stream + "' at " + joined_servers(o); }

std::string nats_failure(const std::string& what, natsStatus s, jsErrCode code) {
  std::string text = what + ": " + natsStatus_GetText(s);
  if (code != 0) text += " (JetStream error " + std::to_string(static_cast<int>(code)) + ")";
  return text;
}

Connection::Connection(const StreamOptions& options, jsPubAckHandler ack, void* ack_closure, std::int64_t max_pending)
    : wait_ms_(milliseconds(options.timeout_seconds)) {
  std::vector<const char*> urls;
  for (const std::string& s : options.servers) urls.push_back(s.c_str());
  natsStatus s = natsOptions_Create(&opts_);
  if (s == NATS_OK) s = natsOptions_SetServers(opts_, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetName(opts_, "lighthouse");
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts_, wait_ms_);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts_, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts_, 100);
  if (s == NATS_OK) s = natsOptions_SetPingInterval(opts_, 1000);
  if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(opts_, 3);
  if (s != NATS_OK) {
    natsOptions_Destroy(opts_);
    throw Error(ErrorCode::invalid_argument, nats_failure("NATS options", s));
  }
  s = natsConnection_Connect(&nc_, opts_);
  if (s != NATS_OK) {
    natsOptions_Destroy(opts_);
    throw Error(ErrorCode::io_error, nats_failure("connecting to " + describe(options), s));
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = wait_ms_;
  jo.PublishAsync.AckHandler = ack;
  jo.PublishAsync.AckHandlerClosure = ack_closure;
  jo.PublishAsync.MaxPending = max_pending;
  s = natsConnection_JetStream(&js_, nc_, &jo);
  if (s != NATS_OK) {
    natsConnection_Destroy(nc_);
    natsOptions_Destroy(opts_);
    throw Error(ErrorCode::io_error, nats_failure("JetStream context", s));
  }
}

Connection::~Connection() {
  jsCtx_Destroy(js_);
  natsConnection_Close(nc_);
  natsConnection_Destroy(nc_);
  natsOptions_Destroy(opts_);
}

std::optional<StreamState> Connection::stream_state(const std::string& stream) const {
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, &code);
  if (s == NATS_NOT_FOUND || code == JSStreamNotFoundErr) return std::nullopt;
  if (s != NATS_OK) throw Error(ErrorCode::io_error, nats_failure("reading the state of stream '" + stream + "'", s, code));
  StreamState state;
  state.first = si->State.FirstSeq;
  state.last = si->State.LastSeq;
  state.messages = si->State.Msgs;
  if (si->Config != nullptr) {
    state.max_message_bytes = si->Config->MaxMsgSize;
    state.replicas = si->Config->Replicas;
    for (int i = 0; i < si->Config->SubjectsLen; ++i) state.subjects.emplace_back(si->Config->Subjects[i]);
  }
  jsStreamInfo_Destroy(si);
  return state;
}

void Connection::create_stream(const std::string& stream, const std::string& subject, int replicas,
                               std::int32_t max_message_bytes) const {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subjects[] = {subject.c_str()};
  cfg.Name = stream.c_str();
  cfg.Description = "the log of a Lighthouse store (docs/replication.md)";
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = replicas;
  cfg.DenyDelete = true;
  cfg.DenyPurge = true;
  cfg.MaxMsgSize = max_message_bytes;
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_AddStream(&si, js_, &cfg, nullptr, &code);
  jsStreamInfo_Destroy(si);
  if (s != NATS_OK) {
    throw Error(code != 0 ? ErrorCode::invalid_argument : ErrorCode::io_error,
                nats_failure("creating stream '" + stream + "' (R=" + std::to_string(replicas) + ")", s, code));
  }
}

std::optional<StreamMessage> Connection::message(const std::string& stream, std::uint64_t sequence) const {
  natsMsg* msg = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetMsg(&msg, js_, stream.c_str(), sequence, nullptr, &code);
  if (s == NATS_NOT_FOUND || code == JSNoMessageFoundErr) return std::nullopt;
  if (s != NATS_OK) {
    throw Error(ErrorCode::io_error,
                nats_failure("reading message " + std::to_string(sequence) + " of stream '" + stream + "'", s, code));
  }
  StreamMessage m;
  m.sequence = sequence;
  m.data.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  const char* id = nullptr;
  if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id != nullptr) m.message_id = id;
  natsMsg_Destroy(msg);
  return m;
}

}  // namespace lighthouse::replication
