//! Tokens: who may read or write which documents, signed with HMAC-SHA256 by the server's
//! secret, so the server keeps no list of them.
//!
//! A token is `v1.{claims}.{signature}`, both parts URL-safe base64 without padding; the
//! claims are JSON: `{"doc": "notes", "access": "write", "exp": 1767225600}`. `doc` is one
//! document id, or a prefix ending in `*` (`team-a.*` names every document whose id starts
//! with `team-a.`); `access` is `read`, `write` or `admin` (the `/status` and `/metrics`
//! pages); `exp` is when it expires, in seconds since the Unix epoch. The signature covers the
//! claims part as sent, and is checked in constant time (`Mac::verify_slice`).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a token lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Read the document and its presence, and show a caret; no change.
    Read,
    /// Read and change the document.
    Write,
    /// Read `/status` and `/metrics`.
    Admin,
}

/// A token's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// A document id, or a prefix ending in `*`; empty for an admin token.
    #[serde(default)]
    pub doc: String,
    pub access: Access,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
}

impl Claims {
    /// Whether these claims name document `doc`.
    pub fn covers(&self, doc: &str) -> bool {
        match self.doc.strip_suffix('*') {
            Some(prefix) => doc.starts_with(prefix),
            None => self.doc == doc,
        }
    }
}

/// Whether `byte` may be part of a document id: `A-Z a-z 0-9 . _ -`.
pub(crate) fn is_id_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"._-".contains(&byte)
}

/// Whether `doc` can be a token's scope: a document id, or a prefix of one ending in `*` (a
/// lone `*` is every document).
pub fn is_scope(doc: &str) -> bool {
    let id = doc.strip_suffix('*').unwrap_or(doc);
    id.bytes().all(is_id_byte) && (!id.is_empty() || doc.ends_with('*'))
}

/// Seconds since the Unix epoch, for token expiry.
pub fn unix_now() -> u64 {
    unix_now_ms() / 1000
}

/// Milliseconds since the Unix epoch, for token expiry and the times of changes and
/// versions: the one place the server reads the wall clock.
#[allow(clippy::disallowed_methods, reason = "token expiry and change times are wall-clock time")]
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// `ms` milliseconds since the Unix epoch in RFC 3339 (UTC, with milliseconds).
pub fn rfc3339(ms: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(time).to_string()
}

/// Why a token was not accepted (each is HTTP 401).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not of the form v1.CLAIMS.SIGNATURE")]
    Malformed,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
}

/// The server's signing secret.
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret from its bytes; `None` if there are fewer than 16, too few to be one.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<Secret> {
        let bytes = bytes.into();
        (bytes.len() >= 16).then_some(Secret(bytes))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length.
        HmacSha256::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }

    /// A signed token holding `claims`.
    pub fn mint(&self, claims: &Claims) -> String {
        let json = serde_json::to_vec(claims).expect("claims serialize");
        let body = URL_SAFE_NO_PAD.encode(json);
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("v1.{body}.{signature}")
    }

    /// The claims of `token` if this secret signed it and it has not expired at `now` (seconds
    /// since the Unix epoch).
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some("v1"), Some(body), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&signature).map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}
