#include "common/net_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>

namespace shardwise {
namespace {

// strerror's text, lower-cased at the start: "address already in use".
std::string error_text(int error) {
  std::string text = std::strerror(error);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

struct AddrInfoDeleter {
  void operator()(addrinfo* info) const { freeaddrinfo(info); }
};
using AddrInfoList = std::unique_ptr<addrinfo, AddrInfoDeleter>;

StatusOr<AddrInfoList> resolve(const HostPort& address, int socket_type, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socket_type;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  const std::string port = std::to_string(address.port);
  const bool any = address.host == "*";  // 0.0.0.0 and :: resolve as themselves
  addrinfo* found = nullptr;
  const int error = getaddrinfo(any ? nullptr : address.host.c_str(), port.c_str(), &hints, &found);
  if (error != 0) {
    return unavailable("{}: cannot resolve {}: {}", address.to_string(), address.host,
                       gai_strerror(error));
  }
  return AddrInfoList(found);
}

// A socket descriptor closed when it goes out of scope.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::string HostPort::to_string() const {
  const std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return port < 0 ? shown : shown + ":" + std::to_string(port);
}

StatusOr<HostPort> parse_host_optional_port(std::string_view address, std::string_view what) {
  HostPort parsed;
  std::string_view rest;
  if (address.starts_with("[")) {
    const size_t close = address.find(']');
    if (close == std::string_view::npos) {
      return invalid_argument("{} {}: an IPv6 host needs its closing ']'", what, address);
    }
    parsed.host = std::string(address.substr(1, close - 1));
    rest = address.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(":")) {
      return invalid_argument("{} {}: expected [HOST]:PORT", what, address);
    }
  } else {
    const size_t colon = address.find(':');
    if (colon != std::string_view::npos && address.find(':', colon + 1) != std::string_view::npos) {
      return invalid_argument("{} {}: write an IPv6 host in brackets, [HOST]:PORT", what, address);
    }
    parsed.host = std::string(address.substr(0, colon));
    if (colon != std::string_view::npos) rest = address.substr(colon);
  }
  if (parsed.host.empty()) return invalid_argument("{} {}: the host is missing", what, address);
  parsed.port = -1;
  if (rest.empty()) return parsed;
  const std::string_view digits = rest.substr(1);
  int port = -1;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() || port < 0 ||
      port > 65535) {
    return invalid_argument("{} {}: the port must be a number from 0 to 65535", what, address);
  }
  parsed.port = port;
  return parsed;
}

StatusOr<HostPort> parse_host_port(std::string_view address, std::string_view what) {
  SW_ASSIGN_OR_RETURN(HostPort parsed, parse_host_optional_port(address, what));
  if (parsed.port < 0) return invalid_argument("{} {}: expected HOST:PORT", what, address);
  return parsed;
}

bool is_wildcard_host(std::string_view host) {
  return host == "0.0.0.0" || host == "::" || host == "*";
}

Status probe_listen(const HostPort& address) {
  SW_ASSIGN_OR_RETURN(AddrInfoList found, resolve(address, SOCK_STREAM, true));
  int error = EADDRNOTAVAIL;
  for (const addrinfo* info = found.get(); info != nullptr; info = info->ai_next) {
    Socket socket(::socket(info->ai_family, info->ai_socktype, info->ai_protocol));
    if (socket.fd() < 0) {
      error = errno;
      continue;
    }
    // As the servers themselves do: a port in TIME_WAIT is free, a listening one is not.
    const int yes = 1;
    setsockopt(socket.fd(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (bind(socket.fd(), info->ai_addr, info->ai_addrlen) == 0) return ok_status();
    error = errno;
  }
  return unavailable("{}: {}", address.to_string(), error_text(error));
}

std::string why_cannot_listen(std::string_view address) {
  StatusOr<HostPort> parsed = parse_host_port(address, "");
  if (!parsed.ok()) return std::string(address);
  const Status probe = probe_listen(*parsed);
  return probe.ok() ? std::string(address) : probe.message();
}

StatusOr<std::string> local_address_toward(const HostPort& peer) {
  SW_ASSIGN_OR_RETURN(AddrInfoList found, resolve(peer, SOCK_DGRAM, false));
  int error = EHOSTUNREACH;
  for (const addrinfo* info = found.get(); info != nullptr; info = info->ai_next) {
    Socket socket(::socket(info->ai_family, info->ai_socktype, info->ai_protocol));
    if (socket.fd() < 0 || connect(socket.fd(), info->ai_addr, info->ai_addrlen) != 0) {
      error = errno;
      continue;
    }
    sockaddr_storage local{};
    socklen_t length = sizeof(local);
    if (getsockname(socket.fd(), reinterpret_cast<sockaddr*>(&local), &length) != 0) {
      error = errno;
      continue;
    }
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw =
        local.ss_family == AF_INET6
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr);
    if (inet_ntop(local.ss_family, raw, text, sizeof(text)) == nullptr) {
      error = errno;
      continue;
    }
    return std::string(text);
  }
  return unavailable("no route from this host to {}: {}", peer.to_string(), error_text(error));
}

}  // namespace shardwise
