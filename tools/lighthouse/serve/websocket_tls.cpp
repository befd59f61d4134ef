// WebSocket subscriptions over TLS (--tls-cert) (serve/websocket.h).
#include "serve/websocket.h"

namespace lighthouse::serve::detail {

template awaitable<void> serve_websocket(beast::ssl_stream<beast::tcp_stream>, http::request<http::string_body>, Shared&,
                                         std::optional<std::uint8_t>, std::string);

}  // namespace lighthouse::serve::detail
