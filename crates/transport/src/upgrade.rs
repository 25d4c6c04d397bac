//! The HTTP side of the WebSocket handshake (RFC 6455, section 4.2): checks an upgrade
//! request's headers and derives the `Sec-WebSocket-Accept` of the 101 answer. The HTTP server
//! (hyper, say) sends that answer and hands the upgraded stream to [`crate::Connection::run`].

use tokio_tungstenite::tungstenite::{
    handshake::derive_accept_key,
    http::{HeaderMap, HeaderValue, header},
};

use crate::Error;

/// Checks that `headers` ask for a WebSocket (version 13) and returns the value of the
/// `Sec-WebSocket-Accept` header to answer with.
pub fn accept_key(headers: &HeaderMap) -> Result<HeaderValue, Error> {
    let has = |name: header::HeaderName, value: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|part| part.trim().eq_ignore_ascii_case(value)))
        })
    };
    let key = headers.get(header::SEC_WEBSOCKET_KEY).ok_or(Error::NotAnUpgrade)?;
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err(Error::NotAnUpgrade);
    }
    if !has(header::SEC_WEBSOCKET_VERSION, "13") {
        return Err(Error::UnsupportedVersion);
    }
    // The accept key is base64, always a valid header value.
    HeaderValue::from_str(&derive_accept_key(key.as_bytes())).map_err(|_| Error::NotAnUpgrade)
}

/// The headers of the 101 answer to an upgrade, besides its status: `Upgrade`, `Connection`
/// and `Sec-WebSocket-Accept`.
pub fn answer_headers(accept: HeaderValue) -> [(header::HeaderName, HeaderValue); 3] {
    [
        (header::UPGRADE, HeaderValue::from_static("websocket")),
        (header::CONNECTION, HeaderValue::from_static("Upgrade")),
        (header::SEC_WEBSOCKET_ACCEPT, accept),
    ]
}
