//! How flamethread proves who it is to a server it queries: a Prometheus-compatible API or an
//! Alertmanager. Grafana Cloud wants a bearer token (or basic auth with the instance id), Mimir and
//! Cortex a tenant header (`X-Scope-OrgID`), a Prometheus behind its `web.config.file` basic auth,
//! and a private CA signs the certificates of servers inside a company. One table says it for
//! each server (`[prometheus.auth]`, `[alertmanager.auth]`), and [`ServerAuth::client`] makes the
//! HTTP client that sends it with every request.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use secret::Secret;
use serde::Deserialize;

/// Credentials and trust for one server. Every field is optional; all empty (the default) sends
/// nothing and trusts the system's certificate authorities.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerAuth {
    /// Sent as `Authorization: Bearer …`. Not with `username`.
    pub bearer_token: Secret,
    /// Basic auth's user, with `password`.
    pub username: String,
    pub password: Secret,
    /// Headers sent with every request, e.g. `X-Scope-OrgID` for a Mimir or Cortex tenant. Not
    /// `Authorization`: that is what the fields above are for.
    pub headers: BTreeMap<String, String>,
    /// A PEM file of certificate authorities trusted besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
}

/// Why a [`ServerAuth`] cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("bearer_token and username: set one or the other")]
    BearerAndBasic,
    #[error("username and password: set both or neither")]
    HalfBasic,
    #[error("username: basic auth cannot carry a ':' in the user name")]
    ColonInUsername,
    #[error("headers.{name}: {why}")]
    Header { name: String, why: String },
    #[error("ca_file {path}: {source}")]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ca_file {path}: not PEM certificates ({source})")]
    Certificate {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error("ca_file {path}: no certificate in it")]
    NoCertificate { path: PathBuf },
    #[error(transparent)]
    Client(#[from] crate::body::ClientError),
}

impl ServerAuth {
    /// Checks what can be checked without calling the server: `section` prefixes the field names
    /// in the message (`prometheus.auth`).
    pub fn validate(&self, section: &str) -> Result<(), String> {
        self.headers()
            .map(drop)
            .map_err(|err| format!("{section}.{err}"))
    }

    /// The headers every request carries: the authorization (marked sensitive, so it never shows
    /// in a debug print of a request) and the extra ones.
    fn headers(&self) -> Result<HeaderMap, AuthError> {
        let basic = !self.username.is_empty() || !self.password.is_empty();
        if basic && !self.bearer_token.is_empty() {
            return Err(AuthError::BearerAndBasic);
        }
        if basic && (self.username.is_empty() || self.password.is_empty()) {
            return Err(AuthError::HalfBasic);
        }
        if self.username.contains(':') {
            return Err(AuthError::ColonInUsername);
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let bad = |why: &str| AuthError::Header {
                name: name.clone(),
                why: why.to_owned(),
            };
            let header: HeaderName = name.parse().map_err(|_| bad("not a valid header name"))?;
            if header == AUTHORIZATION {
                return Err(bad("set bearer_token, or username and password, instead"));
            }
            let mut value: HeaderValue = value
                .parse()
                .map_err(|_| bad("the value has characters a header cannot carry"))?;
            // A header may carry a key (`X-Api-Key`): never shown in a debug print.
            value.set_sensitive(true);
            if headers.insert(header, value).is_some() {
                return Err(bad("set twice (header names ignore case)"));
            }
        }
        let authorization = if !self.bearer_token.is_empty() {
            Some(format!("Bearer {}", self.bearer_token.expose().trim()))
        } else if basic {
            use base64::Engine as _;
            let pair = format!("{}:{}", self.username, self.password.expose());
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
        } else {
            None
        };
        if let Some(authorization) = authorization {
            let mut value: HeaderValue = authorization.parse().map_err(|_| AuthError::Header {
                name: "authorization".to_owned(),
                why: "the credentials have characters a header cannot carry".to_owned(),
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Ok(headers)
    }

    /// The HTTP client for this server: [`crate::body::client`]'s, sending these credentials and
    /// headers with every request and trusting `ca_file` too.
    pub fn client(&self, timeout: Option<Duration>) -> Result<reqwest::Client, AuthError> {
        let mut builder = crate::body::builder(timeout).default_headers(self.headers()?);
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path).map_err(|source| AuthError::CaFile {
                path: path.clone(),
                source,
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                AuthError::Certificate {
                    path: path.clone(),
                    source,
                }
            })?;
            if certificates.is_empty() {
                return Err(AuthError::NoCertificate { path: path.clone() });
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(builder.build().map_err(crate::body::ClientError::from)?)
    }
}

#[cfg(test)]
mod tests;
