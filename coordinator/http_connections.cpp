#include "coordinator/http_connections.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace shardwise {
namespace {

using Clock = std::chrono::steady_clock;

// httplib's default: a client that takes no bytes for this long is gone.
constexpr auto kWriteTimeout = std::chrono::seconds(5);
constexpr std::size_t kReadChunk = 16 << 10;

// One client connection; whoever reads it (the reception, then one pool thread) owns it.
struct Connection {
  int fd = -1;
  SSL* ssl = nullptr;           // TLS connections only
  bool handshake_done = false;  // always true without TLS
  std::string buffer;           // received, not yet consumed
  Clock::time_point deadline;   // for the request head
  int requests = 0;

  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    if (ssl != nullptr) {
      ERR_clear_error();
      SSL_shutdown(ssl);  // close_notify, best effort: the socket does not block
      SSL_free(ssl);
    }
    if (fd >= 0) ::close(fd);
  }
};

enum class Progress { kData, kWantRead, kWantWrite, kClosed };

Progress ssl_progress(SSL* ssl, int rc) {
  const int error = SSL_get_error(ssl, rc);
  ERR_clear_error();
  if (error == SSL_ERROR_WANT_READ) return Progress::kWantRead;
  if (error == SSL_ERROR_WANT_WRITE) return Progress::kWantWrite;
  return Progress::kClosed;
}

// One non-blocking read (after the TLS handshake, which it advances first) of at most
// `max_bytes` into the connection's buffer.
Progress receive(Connection& c, std::size_t max_bytes) {
  if (!c.handshake_done) {
    ERR_clear_error();
    const int rc = SSL_accept(c.ssl);
    if (rc != 1) return ssl_progress(c.ssl, rc);
    c.handshake_done = true;
  }
  char chunk[kReadChunk];
  const std::size_t want = std::min(sizeof(chunk), max_bytes);
  while (true) {
    ssize_t n = 0;
    if (c.ssl != nullptr) {
      ERR_clear_error();
      const int rc = SSL_read(c.ssl, chunk, static_cast<int>(want));
      if (rc <= 0) return ssl_progress(c.ssl, rc);
      n = rc;
    } else {
      n = ::recv(c.fd, chunk, want, 0);
      if (n == 0) return Progress::kClosed;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? Progress::kWantRead : Progress::kClosed;
    }
    c.buffer.append(chunk, static_cast<std::size_t>(n));
    return Progress::kData;
  }
}

// Waits until `fd` is ready for `events` or `deadline` passes; false on timeout or error.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), INT_MAX)));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

// Where the request head ends in `buffer` (past its blank line), or npos.
std::size_t head_end(const std::string& buffer) {
  const std::size_t crlf = buffer.find("\r\n\r\n");
  const std::size_t lf = buffer.find("\n\n");
  if (crlf == std::string::npos && lf == std::string::npos) return std::string::npos;
  return crlf < lf ? crlf + 4 : lf + 2;
}

// A response the reception sends before closing a connection, best effort: the client may be
// gone or not reading.
void send_and_forget(Connection& c, int status, std::string_view reason, std::string_view why) {
  const std::string body = fmt::format(
      R"({{"error":{{"message":"{}","type":"invalid_request_error","code":"{}"}}}})", why, status);
  const std::string response = fmt::format(
      "HTTP/1.1 {} {}\r\nConnection: close\r\nContent-Type: application/json\r\n"
      "Content-Length: {}\r\n\r\n{}",
      status, reason, body.size(), body);
  if (c.ssl == nullptr) {
    (void)!::send(c.fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  } else if (c.handshake_done) {
    ERR_clear_error();
    (void)SSL_write(c.ssl, response.data(), static_cast<int>(response.size()));
    ERR_clear_error();
  }
}

// The epoll thread where connections wait for their request head.
class Reception {
 public:
  using Ready = std::function<void(std::shared_ptr<Connection>)>;

  Reception(const HttpLimits& limits, Ready ready)
      : limits_(limits),
        ready_(std::move(ready)),
        epoll_(epoll_create1(EPOLL_CLOEXEC)),
        wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = wake_;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &event);
    thread_ = std::thread([this] { run(); });
  }
  ~Reception() {
    stop();
    ::close(wake_);
    ::close(epoll_);
  }
  Reception(const Reception&) = delete;
  Reception& operator=(const Reception&) = delete;

  // From any thread: the connection's next request head is awaited from now on. After stop(),
  // the connection is closed instead.
  void watch(std::shared_ptr<Connection> c) {
    c->deadline = Clock::now() + limits_.header_timeout;
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      incoming_.push_back(std::move(c));
    }
    wake();
  }

  // Closes every waiting connection and joins the thread.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
    }
    wake();
    thread_.join();
  }

 private:
  void wake() {
    const uint64_t one = 1;
    (void)!::write(wake_, &one, sizeof(one));
  }

  void run() {
    std::vector<epoll_event> events(256);
    while (true) {
      const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 250);
      std::vector<std::shared_ptr<Connection>> arrived;
      {
        std::lock_guard lock(mutex_);
        if (stopped_) break;
        arrived.swap(incoming_);
      }
      for (int i = 0; i < n; ++i) {
        if (events[i].data.fd == wake_) {
          uint64_t count = 0;
          (void)!::read(wake_, &count, sizeof(count));
        } else {
          advance(events[i].data.fd);
        }
      }
      for (auto& c : arrived) admit(std::move(c));
      expire(Clock::now());
    }
    waiting_.clear();  // closes them
  }

  void admit(std::shared_ptr<Connection> c) {
    if (waiting_.size() >= limits_.max_waiting) evict_oldest();
    const int fd = c->fd;
    waiting_.emplace(fd, std::move(c));
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event);
    advance(fd);  // bytes may be buffered already (pipelining, TLS records)
  }

  // Reads what `fd` has; hands the connection on once its head is complete.
  void advance(int fd) {
    const auto it = waiting_.find(fd);
    if (it == waiting_.end()) return;
    Connection& c = *it->second;
    while (true) {
      if (head_end(c.buffer) <= limits_.max_header_bytes) {
        std::shared_ptr<Connection> ready = std::move(it->second);
        forget(it);
        ready_(std::move(ready));
        return;
      }
      if (c.buffer.size() > limits_.max_header_bytes + 4) {
        send_and_forget(c, 431, "Request Header Fields Too Large",
                        fmt::format("the request head passed {} bytes", limits_.max_header_bytes));
        forget(it);
        return;
      }
      const Progress progress = receive(c, limits_.max_header_bytes + 5 - c.buffer.size());
      if (progress == Progress::kData) continue;
      if (progress == Progress::kClosed) {
        forget(it);
        return;
      }
      epoll_event event{};
      event.events = progress == Progress::kWantWrite ? EPOLLOUT : EPOLLIN;
      event.data.fd = fd;
      epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &event);
      return;
    }
  }

  void forget(std::unordered_map<int, std::shared_ptr<Connection>>::iterator it) {
    epoll_ctl(epoll_, EPOLL_CTL_DEL, it->first, nullptr);
    waiting_.erase(it);
  }

  void expire(Clock::time_point now) {
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->second->deadline > now) {
        ++it;
        continue;
      }
      send_and_forget(*it->second, 408, "Request Timeout",
                      fmt::format("the request head did not arrive within {} ms",
                                  limits_.header_timeout.count()));
      epoll_ctl(epoll_, EPOLL_CTL_DEL, it->first, nullptr);
      it = waiting_.erase(it);
    }
  }

  void evict_oldest() {
    const auto oldest = std::min_element(
        waiting_.begin(), waiting_.end(),
        [](const auto& a, const auto& b) { return a.second->deadline < b.second->deadline; });
    if (oldest != waiting_.end()) forget(oldest);
  }

  const HttpLimits limits_;
  const Ready ready_;
  const int epoll_;
  const int wake_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<Connection>> incoming_;             // guarded by mutex_
  bool stopped_ = false;                                          // guarded by mutex_
  std::unordered_map<int, std::shared_ptr<Connection>> waiting_;  // the thread's own
  std::thread thread_;
};

// httplib's view of a connection whose request head is buffered: reads come from the buffer,
// then from the socket until the head's deadline, or the body's once the head is parsed.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(Connection& c, const HttpLimits& limits)
      : c_(c), limits_(limits), deadline_(c.deadline) {}
  // Leaves the unread bytes (a pipelined next request) in the connection's buffer.
  ~ConnectionStream() override { c_.buffer.erase(0, taken_); }

  // Called once the head is parsed: the body's deadline starts, and how much of it there is
  // tells whether the connection can serve another request.
  void start_body(const httplib::Request& request) {
    deadline_ = Clock::now() + limits_.body_timeout;
    body_taken_ = 0;
    const std::string length = request.get_header_value("Content-Length");
    const bool chunked =
        request.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos;
    body_length_ = chunked ? -1 : 0;
    if (!chunked && !length.empty()) {
      const auto [end, error] =
          std::from_chars(length.data(), length.data() + length.size(), body_length_);
      if (error != std::errc() || end != length.data() + length.size()) body_length_ = -1;
    }
  }
  // True when the request's body was read exactly (a chunked one cannot be told) and no read
  // failed: then the next bytes are the next request's.
  bool reusable() const { return !failed_ && body_length_ >= 0 && body_taken_ == body_length_; }

  bool is_readable() const override {
    return taken_ < c_.buffer.size() || (c_.ssl != nullptr && SSL_pending(c_.ssl) > 0) ||
           wait_for(c_.fd, POLLIN, deadline_);
  }

  bool is_writable() const override {
    if (!wait_for(c_.fd, POLLOUT, Clock::now() + kWriteTimeout)) return false;
    // A peer that closed reads as end of file: its stream is cancelled, not written into.
    pollfd p{c_.fd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return true;
    char byte = 0;
    return ::recv(c_.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) != 0;
  }

  ssize_t read(char* ptr, size_t size) override {
    if (taken_ == c_.buffer.size()) {
      c_.buffer.clear();
      taken_ = 0;
      if (!refill()) return failed_ ? -1 : 0;
    }
    const std::size_t n = std::min(size, c_.buffer.size() - taken_);
    std::memcpy(ptr, c_.buffer.data() + taken_, n);
    taken_ += n;
    body_taken_ += static_cast<int64_t>(n);
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    const auto deadline = Clock::now() + kWriteTimeout;
    while (true) {
      Progress progress = Progress::kWantWrite;
      if (c_.ssl != nullptr) {
        ERR_clear_error();
        const int rc = SSL_write(c_.ssl, ptr, static_cast<int>(std::min<size_t>(size, INT_MAX)));
        if (rc > 0) return rc;
        progress = ssl_progress(c_.ssl, rc);
      } else {
        const ssize_t n = ::send(c_.fd, ptr, size, MSG_NOSIGNAL);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) progress = Progress::kClosed;
      }
      if (progress == Progress::kClosed ||
          !wait_for(c_.fd, progress == Progress::kWantRead ? POLLIN : POLLOUT, deadline)) {
        failed_ = true;
        return -1;
      }
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    if (getpeername(c_.fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      describe(address, ip, port);
    }
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    if (getsockname(c_.fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      describe(address, ip, port);
    }
  }
  socket_t socket() const override { return c_.fd; }

 private:
  static void describe(const sockaddr_storage& address, std::string& ip, int& port) {
    char text[INET6_ADDRSTRLEN] = {};
    if (address.ss_family == AF_INET) {
      const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
      inet_ntop(AF_INET, &v4.sin_addr, text, sizeof(text));
      port = ntohs(v4.sin_port);
    } else if (address.ss_family == AF_INET6) {
      const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
      inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof(text));
      port = ntohs(v6.sin6_port);
    }
    ip = text;
  }

  // Reads more into the (empty) buffer before the deadline; false at end of file, or with
  // failed_ set on a timeout or error.
  bool refill() {
    while (true) {
      const Progress progress = receive(c_, kReadChunk);
      if (progress == Progress::kData) return true;
      if (progress == Progress::kClosed) return false;
      if (!wait_for(c_.fd, progress == Progress::kWantWrite ? POLLOUT : POLLIN, deadline_)) {
        failed_ = true;
        return false;
      }
    }
  }

  Connection& c_;
  const HttpLimits& limits_;
  Clock::time_point deadline_;
  std::size_t taken_ = 0;    // of c_.buffer
  int64_t body_length_ = 0;  // -1: unknown (chunked)
  int64_t body_taken_ = 0;
  bool failed_ = false;
};

// httplib's server with its connections read as above. `Base` is httplib::Server or SSLServer.
template <typename Base>
class GuardedServer final : public Base {
 public:
  template <typename... BaseArgs>
  GuardedServer(const HttpLimits& limits, int threads, BaseArgs... base_args)
      : Base(base_args...),
        limits_(limits),
        reception_(limits, [this](std::shared_ptr<Connection> c) {
          tasks_->enqueue([this, c] { serve(c); });
        }) {
    this->new_task_queue = [this, threads] {
      tasks_ = new Tasks(threads, reception_);
      return tasks_;
    };
  }

 private:
  // The pool threads. Shutting them down stops the reception first, so that it hands them
  // nothing more, then lets the requests in flight finish.
  class Tasks final : public httplib::TaskQueue {
   public:
    Tasks(int threads, Reception& reception)
        : pool_(static_cast<std::size_t>(threads)), reception_(reception) {}
    void enqueue(std::function<void()> fn) override { pool_.enqueue(std::move(fn)); }
    void shutdown() override {
      reception_.stop();
      pool_.shutdown();
    }

   private:
    httplib::ThreadPool pool_;
    Reception& reception_;
  };

  // httplib calls this on a pool thread for each accepted socket; it only hands it over.
  bool process_and_close_socket(socket_t sock) override {
    auto c = std::make_shared<Connection>();
    c->fd = sock;
    ::fcntl(sock, F_SETFL, ::fcntl(sock, F_GETFL) | O_NONBLOCK);
    if constexpr (std::is_same_v<Base, httplib::SSLServer>) {
      c->ssl = SSL_new(this->ssl_context());
      if (c->ssl == nullptr) return false;
      SSL_set_fd(c->ssl, sock);
      SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    } else {
      c->handshake_done = true;
    }
    reception_.watch(std::move(c));
    return true;
  }

  // One request of a connection whose head has arrived; then back to the reception for the
  // next one, unless the connection is done.
  void serve(const std::shared_ptr<Connection>& c) {
    const bool last = ++c->requests >= limits_.max_requests_per_connection;
    bool client_closes = false;
    bool reusable = false;
    bool ok = false;
    {
      ConnectionStream stream(*c, limits_);
      ok = this->process_request(stream, last, client_closes,
                                 [&](httplib::Request& request) { stream.start_body(request); });
      reusable = stream.reusable();
    }
    if (ok && reusable && !last && !client_closes && this->is_running()) reception_.watch(c);
  }

  const HttpLimits limits_;
  Reception reception_;
  Tasks* tasks_ = nullptr;  // owned by httplib from new_task_queue() until it shuts it down
};

}  // namespace

std::unique_ptr<httplib::Server> make_guarded_http_server(const HttpLimits& limits, int threads,
                                                          const std::string& tls_cert_file,
                                                          const std::string& tls_key_file) {
  if (tls_cert_file.empty()) {
    return std::make_unique<GuardedServer<httplib::Server>>(limits, threads);
  }
  return std::make_unique<GuardedServer<httplib::SSLServer>>(limits, threads, tls_cert_file.c_str(),
                                                             tls_key_file.c_str());
}

}  // namespace shardwise
