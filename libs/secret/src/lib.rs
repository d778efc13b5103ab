//! A token or password from the config: usable where it is needed ([`Secret::expose`]), never
//! printed. Every credential flamethread reads (Slack's tokens, NATS's, Alertmanager's webhook
//! credentials, the pages' and the span intake's tokens, Pyroscope's, Prometheus's) is this one
//! type, so `--check-config`, logs and panics show `<redacted>` whatever holds it.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A secret string. `Debug` shows `<redacted>`, or `<empty>` when nothing is set.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Nothing set (or only blanks).
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_read_from_config_and_never_printed() {
        let secret: Secret = serde_json::from_str("\"xoxb-very-secret\"").unwrap();
        assert_eq!(secret.expose(), "xoxb-very-secret");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(<redacted>)");
        assert_eq!(format!("{:?}", Secret::default()), "<empty>");
        assert!(Secret::from("  ").is_empty());
    }
}
