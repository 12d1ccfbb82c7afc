#include "shard/serve/serve_stream.h"

#include <grpcpp/grpcpp.h>

#include "shard/serve/shard_protocol.h"

namespace shardwise {

// Reads the client's starts and cancels, and writes what the stream hands it. Deletes itself
// in OnDone, which gRPC calls only after Finish.
class ServeStream::Reactor final
    : public grpc::ServerBidiReactor<v1::ShardServeRequest, v1::ShardServeResponse> {
 public:
  explicit Reactor(std::shared_ptr<ServeStream> stream) : stream_(std::move(stream)) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return stream_->on_closed();
    stream_->on_request(request_);
    request_.Clear();
    StartRead(&request_);
  }
  void OnWriteDone(bool ok) override { stream_->on_write_done(ok); }
  void OnCancel() override { stream_->on_closed(); }
  void OnDone() override {
    stream_->on_reactor_done();
    delete this;
  }

 private:
  std::shared_ptr<ServeStream> stream_;
  v1::ShardServeRequest request_;
};

// One request's events, handed to the stream under the client's id for it.
class ServeStream::RequestSink final : public EventSink {
 public:
  RequestSink(std::shared_ptr<ServeStream> stream, uint64_t request_id)
      : stream_(std::move(stream)), request_id_(request_id) {}
  void push(StatusOr<StreamEvent> item) override { stream_->append(request_id_, item); }
  void flush() override { stream_->flush(); }

 private:
  std::shared_ptr<ServeStream> stream_;
  uint64_t request_id_;
};

std::pair<std::shared_ptr<ServeStream>,
          grpc::ServerBidiReactor<v1::ShardServeRequest, v1::ShardServeResponse>*>
ServeStream::open(EngineLoop& loop) {
  auto stream = std::make_shared<ServeStream>(loop);
  auto* reactor = new Reactor(stream);
  std::lock_guard lock(stream->mutex_);
  stream->reactor_ = reactor;
  return {stream, reactor};
}

void ServeStream::drain() {
  Reactor* reactor = nullptr;
  bool finish = false;
  {
    std::lock_guard lock(mutex_);
    reactor = reactor_;
    draining_ = true;
    finish = finish_due_locked();
  }
  act(reactor, false, finish);
}

void ServeStream::on_request(const v1::ShardServeRequest& request) {
  const uint64_t id = request.request_id();
  std::shared_ptr<RequestSink> sink;
  Status failure;
  Reactor* reactor = nullptr;
  bool write = false;
  {
    std::lock_guard lock(mutex_);
    reactor = reactor_;
    auto it = requests_.find(id);
    if (request.has_start() && it != requests_.end()) {
      // Its answer could not be told from the running request's: the client is broken.
      failure = invalid_argument("request id {} is already running on this stream", id);
    } else if (request.has_start()) {
      if (draining_) {
        fail_locked(id, unavailable("the shard is shutting down"));
      } else {
        sink = std::make_shared<RequestSink>(shared_from_this(), id);
        requests_.emplace(id, sink);
      }
    } else if (request.cancel() && it != requests_.end()) {
      sink = it->second;
    }
    write = take_pending_locked();
  }
  act(reactor, write, false);
  if (!failure.ok()) {
    return on_closed(
        grpc::Status(static_cast<grpc::StatusCode>(failure.code()), failure.message()));
  }
  if (!sink) return;
  if (!request.has_start()) return loop_.cancel(sink);
  loop_.submit(to_request(request.start()), sink);
  // Closed while it was being submitted: on_closed()'s cancel may have reached the loop first.
  bool closed = false;
  {
    std::lock_guard lock(mutex_);
    closed = closed_;
  }
  if (closed) loop_.cancel(sink);
}

void ServeStream::on_write_done(bool ok) {
  Reactor* reactor = nullptr;
  bool write = false, finish = false;
  {
    std::lock_guard lock(mutex_);
    reactor = reactor_;
    write_in_flight_ = false;
    if (!ok) closed_ = true;  // the client went away; on_closed() cancels the requests
    write = take_pending_locked();
    finish = finish_due_locked();
  }
  act(reactor, write, finish);
}

void ServeStream::on_closed(const grpc::Status& status) {
  std::unordered_map<uint64_t, std::shared_ptr<RequestSink>> requests;
  Reactor* reactor = nullptr;
  bool finish = false;
  {
    std::lock_guard lock(mutex_);
    reactor = reactor_;
    if (!closed_) end_status_ = status;
    closed_ = true;
    requests.swap(requests_);
    finish = finish_due_locked();
  }
  for (const auto& [id, sink] : requests) loop_.cancel(sink);
  act(reactor, false, finish);
}

void ServeStream::on_reactor_done() {
  std::lock_guard lock(mutex_);
  reactor_ = nullptr;
  finished_ = true;
}

void ServeStream::append(uint64_t request_id, const StatusOr<StreamEvent>& item) {
  std::lock_guard lock(mutex_);
  if (closed_ || finished_) return;
  if (!item.ok()) return fail_locked(request_id, item.status());
  if (Status failure = event_failure(*item); !failure.ok()) {
    return fail_locked(request_id, failure);
  }
  v1::ShardRequestUpdate& update = pending_update(request_id);
  add_token(*item, *update.mutable_tokens());
  if (item->finish_reason) {
    update.set_finish_reason(std::string(finish_reason_name(*item->finish_reason)));
    requests_.erase(request_id);
  }
}

void ServeStream::flush() {
  Reactor* reactor = nullptr;
  bool write = false, finish = false;
  {
    std::lock_guard lock(mutex_);
    reactor = reactor_;
    write = take_pending_locked();
    finish = finish_due_locked();
  }
  act(reactor, write, finish);
}

v1::ShardRequestUpdate& ServeStream::pending_update(uint64_t request_id) {
  auto [it, added] = pending_index_.try_emplace(request_id, pending_.updates_size());
  if (!added) return *pending_.mutable_updates(it->second);
  v1::ShardRequestUpdate* update = pending_.add_updates();
  update->set_request_id(request_id);
  return *update;
}

void ServeStream::fail_locked(uint64_t request_id, const Status& status) {
  v1::ShardRequestUpdate& update = pending_update(request_id);
  update.set_error_code(static_cast<int32_t>(status.code()));
  update.set_error_message(status.message());
  requests_.erase(request_id);
}

bool ServeStream::take_pending_locked() {
  if (write_in_flight_ || closed_ || finished_ || pending_.updates().empty()) return false;
  writing_.Swap(&pending_);
  pending_.Clear();
  pending_index_.clear();
  write_in_flight_ = true;
  return true;
}

bool ServeStream::finish_due_locked() {
  if (finished_ || write_in_flight_ || !reactor_) return false;
  const bool drained = draining_ && requests_.empty() && pending_.updates().empty();
  if (!closed_ && !drained) return false;
  finished_ = true;
  return true;
}

// A write or Finish is started only by the thread that set write_in_flight_ or finished_, and
// Finish only while no write is in flight, so the reactor cannot be deleted under either call.
void ServeStream::act(Reactor* reactor, bool write, bool finish) {
  if (write) reactor->StartWrite(&writing_);
  if (finish) reactor->Finish(end_status_);
}

}  // namespace shardwise
