//! How to reach NATS, as every service's config file spells it (the `[nats]` table).

pub use secret::Secret;
use std::{fmt, path::PathBuf, time::Duration};

use serde::Deserialize;

/// Connection and provisioning settings for NATS. Every field has a default, so an empty
/// `[nats]` table connects to a local server.
#[derive(Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated. Default `nats://127.0.0.1:4222`.
    pub url: String,
    /// Prefix of every subject, stream and bucket. Default `ft`.
    pub prefix: String,
    /// Authentication token. Default none.
    pub token: Option<Secret>,
    /// A `.creds` file (JWT + nkey seed). Default none.
    pub credentials_file: Option<PathBuf>,
    /// User name, with `password`. Default none.
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub tls: TlsConfig,
    /// How long one connection attempt may take. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Replicas of each stream, bucket and object store (3 on a 3-node cluster). Default 1.
    pub replicas: usize,
    /// How often a message is delivered before it is dead-lettered. Default 5.
    pub max_deliver: i64,
    /// How much JetStream keeps (`[nats.retention]`): nothing grows with time or traffic alone.
    pub retention: RetentionConfig,
    /// How long a consumer may hold a message before it is redelivered. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub ack_wait: Duration,
}

/// TLS to the NATS server. Any of these set turns TLS on.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Require TLS even without certificates below (server certificate checked against the
    /// system roots). Default false.
    pub required: bool,
    /// CA certificate (PEM) to verify the server with. Default none.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), with `key_file`, for mutual TLS. Default none.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".to_owned(),
            prefix: proto::subjects::DEFAULT_PREFIX.to_owned(),
            token: None,
            credentials_file: None,
            user: None,
            password: None,
            tls: TlsConfig::default(),
            connect_timeout: Duration::from_secs(5),
            replicas: 1,
            max_deliver: 5,
            retention: RetentionConfig::default(),
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// `urls` (comma-separated) with any `user:password@` or `token@` replaced, for logs and errors.
pub fn without_credentials(urls: &str) -> String {
    urls.split(',')
        .map(|url| {
            let authority = url.find("://").map_or(0, |scheme| scheme + 3);
            match url[authority..].rfind('@') {
                Some(at) => format!(
                    "{}<redacted>@{}",
                    &url[..authority],
                    &url[authority + at + 1..]
                ),
                None => url.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

const MIB: i64 = 1 << 20;

/// `[nats.retention]`: limits on every stream, bucket and object store, applied at start-up
/// (`Bus::provision`) and on every restart after a change. JetStream reserves the byte limits
/// against its `max_file_store`: the defaults add up to about 1.5 GiB.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Bytes kept per stream; the oldest messages go first. Default 128 MiB (about 60,000
    /// messages of backlog per stream). Ages are per stream: 7 days, 30 for dead letters.
    pub stream_max_bytes: i64,
    /// How long an entry of the incident and reply buckets lives without being written. An
    /// open incident is rewritten on each notification; one silent for this long is forgotten.
    /// Default `14d`.
    #[serde(with = "humantime_serde")]
    pub state_max_age: Duration,
    /// Bytes per KV bucket. Default 64 MiB.
    pub state_max_bytes: i64,
    /// Largest value in a KV bucket. Default 1 MiB (NATS's default max payload).
    pub state_max_value: i32,
    /// How long shared files, folded stacks, flamegraphs and charts are kept. Default `7d`
    /// (links in old threads then say the page is gone).
    #[serde(with = "humantime_serde")]
    pub blobs_max_age: Duration,
    /// Bytes in the object store. Default 512 MiB.
    pub blobs_max_bytes: i64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            stream_max_bytes: 128 * MIB,
            state_max_age: Duration::from_secs(14 * 86_400),
            state_max_bytes: 64 * MIB,
            state_max_value: MIB as i32,
            blobs_max_age: Duration::from_secs(7 * 86_400),
            blobs_max_bytes: 512 * MIB,
        }
    }
}

impl RetentionConfig {
    fn validate(&self) -> Result<(), String> {
        for (key, bytes, least) in [
            ("stream_max_bytes", self.stream_max_bytes, MIB),
            ("state_max_bytes", self.state_max_bytes, MIB),
            ("blobs_max_bytes", self.blobs_max_bytes, 8 * MIB),
        ] {
            if bytes < least {
                return Err(format!(
                    "nats.retention.{key}: at least {least} bytes, got {bytes}"
                ));
            }
        }
        if i64::from(self.state_max_value) < 1024
            || i64::from(self.state_max_value) > self.state_max_bytes
        {
            return Err("nats.retention.state_max_value: from 1 KiB to state_max_bytes".to_owned());
        }
        for (key, age) in [
            ("state_max_age", self.state_max_age),
            ("blobs_max_age", self.blobs_max_age),
        ] {
            if age < Duration::from_secs(3600) {
                return Err(format!("nats.retention.{key}: at least 1h"));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsConfig")
            .field("url", &without_credentials(&self.url))
            .field("prefix", &self.prefix)
            .field("token", &self.token)
            .field("credentials_file", &self.credentials_file)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("replicas", &self.replicas)
            .field("max_deliver", &self.max_deliver)
            .field("retention", &self.retention)
            .field("ack_wait", &self.ack_wait)
            .finish()
    }
}

impl NatsConfig {
    /// The servers in `url`: one URL, or several separated by commas (a cluster's nodes; the
    /// client also learns the others from whichever it reaches).
    pub fn servers(&self) -> Result<Vec<async_nats::ServerAddr>, String> {
        if self.url.trim().is_empty() {
            return Err("nats.url: must not be empty".to_owned());
        }
        self.url
            .split(',')
            .map(str::trim)
            .map(|url| {
                let not_a_url = |why: String| {
                    format!(
                        "nats.url: {:?} is not a NATS URL ({why})",
                        without_credentials(url)
                    )
                };
                let server = url
                    .parse::<async_nats::ServerAddr>()
                    .map_err(|err| not_a_url(err.to_string()))?;
                if server.host().is_empty() {
                    return Err(not_a_url("no host".to_owned()));
                }
                Ok(server)
            })
            .collect()
    }

    /// Checks what serde cannot: the prefix, and settings that only make sense together.
    pub fn validate(&self) -> Result<(), String> {
        proto::Subjects::new(&self.prefix).map_err(|err| format!("nats.prefix: {err}"))?;
        self.servers()?;
        if self.password.is_some() != self.user.is_some() {
            return Err("nats.user and nats.password: set both or neither".to_owned());
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return Err("nats.tls.cert_file and nats.tls.key_file: set both or neither".to_owned());
        }
        if self.max_deliver < 1 {
            return Err(format!(
                "nats.max_deliver: must be at least 1, got {}",
                self.max_deliver
            ));
        }
        self.retention.validate()?;
        if self.replicas == 0 || self.replicas > 5 {
            return Err(format!(
                "nats.replicas: must be 1 to 5, got {}",
                self.replicas
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_server_list_is_read_one_url_at_a_time() {
        let config = |url: &str| super::NatsConfig {
            url: url.to_owned(),
            ..Default::default()
        };
        let servers = config("nats://127.0.0.1:4222, nats://10.0.0.2:4222,tls://n3.example:4223")
            .servers()
            .unwrap();
        let ports: Vec<u16> = servers.iter().map(async_nats::ServerAddr::port).collect();
        assert_eq!(ports, [4222, 4222, 4223]);
        assert!(config("nats://127.0.0.1:4222").validate().is_ok());
        for bad in [
            "",
            " ",
            "nats://a:4222,",
            "nats://a:notaport",
            "nats://a:1,nats://b:99999",
        ] {
            let err = config(bad).servers().unwrap_err();
            assert!(err.starts_with("nats.url: "), "{bad:?}: {err}");
            assert!(config(bad).validate().is_err(), "{bad:?}");
        }
        // A password in a URL never shows in the error about it.
        let err = config("nats://me:s3cret@a:bad").servers().unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn urls_are_shown_without_their_credentials() {
        assert_eq!(
            super::without_credentials(
                "nats://user:s3cret@a:4222,nats://tok3n@b:4222,nats://c:4222"
            ),
            "nats://<redacted>@a:4222,nats://<redacted>@b:4222,nats://c:4222"
        );
        let config = super::NatsConfig {
            url: "nats://user:s3cret@a:4222".to_owned(),
            ..super::NatsConfig::default()
        };
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
