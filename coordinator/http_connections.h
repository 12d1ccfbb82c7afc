// The HTTP server's connections, read so that slow or oversized requests cannot take its threads
// (slowloris). cpp-httplib gives each connection a pool thread from accept() until it closes and
// waits up to its read timeout for every header line, so 64 clients sending a line every few
// seconds held all 64 threads forever. Here a connection waits for its request head (request line
// and headers) on one epoll thread, costing a socket and a buffer, and takes a pool thread only
// once the whole head has arrived, within a deadline and a size limit; the body is then read
// within a deadline of its own. Plain HTTP and TLS alike.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace httplib {
class Server;
}

namespace shardwise {

struct HttpLimits {
  // From connecting (or the end of the previous response) to the end of the request head;
  // past it the connection gets 408 and is closed.
  std::chrono::milliseconds header_timeout{10'000};
  // From the end of the head to the end of the body (4 MiB at 1 Mbit/s takes ~35 s).
  std::chrono::milliseconds body_timeout{60'000};
  // Request line and headers together; past it the connection gets 431 and is closed.
  std::size_t max_header_bytes = std::size_t{64} << 10;
  // Headers in one request (checked by the router, which answers 431).
  std::size_t max_headers = 100;
  // Connections waiting for their head; past it the one waiting longest is closed, so that a
  // flood of idle connections cannot lock newcomers out.
  std::size_t max_waiting = 4096;
  // Requests served on one keep-alive connection before it is closed.
  int max_requests_per_connection = 100;
};

// A cpp-httplib server (HTTPS when `tls_cert_file` is set) whose connections are read as above,
// with `threads` pool threads for requests whose head has arrived. Routes, handlers, bind(),
// listen_after_bind() and stop() are httplib's; is_valid() is false when the certificate or key
// cannot be loaded.
std::unique_ptr<httplib::Server> make_guarded_http_server(const HttpLimits& limits, int threads,
                                                          const std::string& tls_cert_file,
                                                          const std::string& tls_key_file);

}  // namespace shardwise
