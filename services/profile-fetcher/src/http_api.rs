//! What the HTTP APIs on profile-fetcher's listeners (markers, span intake, SQL) read from a
//! request the same way: the bearer token and the media type.

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq as _;

/// Whether `Authorization` is `Bearer <token>`, compared in constant time.
pub(crate) fn bearer_is(headers: &HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    bool::from(given.as_bytes().ct_eq(format!("Bearer {token}").as_bytes()))
}

/// `Content-Type` without its parameters, lower case (`application/json`), or empty.
pub(crate) fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default()
}
