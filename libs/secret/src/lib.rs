//! A token or password from the config: usable where it is needed ([`Secret::expose`]), never
//! printed. Every credential flamethread reads (Slack's tokens, NATS's, Alertmanager's webhook
//! credentials, the pages' and the span intake's tokens, Pyroscope's, Prometheus's) is this one
//! type, so `--check-config`, logs and panics show `<redacted>` whatever holds it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a secret is printed as (`Debug`, `--check-config`'s TOML). Read back as a secret, it is
/// refused: a file `--check-config` wrote needs the real secrets, from the environment or set in
/// it, rather than starting with `<redacted>` as a password.
pub const REDACTED: &str = "<redacted>";

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
            REDACTED
        })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        let value = String::deserialize(deserializer)?;
        if value == REDACTED {
            return Err(serde::de::Error::custom(
                "is `<redacted>`, what --check-config prints in place of a secret: set the secret itself (its environment variable, or here)",
            ));
        }
        Ok(Secret(value))
    }
}

/// Empty stays empty (it loads back the same); anything else is [`REDACTED`].
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { REDACTED })
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

    #[test]
    fn a_secret_is_serialized_redacted_and_the_redaction_is_refused_as_a_secret() {
        let secret = Secret::from("xoxb-very-secret");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"<redacted>\"");
        assert_eq!(serde_json::to_string(&Secret::default()).unwrap(), "\"\"");
        let empty: Secret = serde_json::from_str("\"\"").unwrap();
        assert!(empty.is_empty());
        let refused = serde_json::from_str::<Secret>("\"<redacted>\"").unwrap_err();
        assert!(
            refused.to_string().contains("set the secret itself"),
            "{refused}"
        );
    }
}
