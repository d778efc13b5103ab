//! Encoding and decoding messages.
//!
//! Decoding tells apart the three ways a payload can be unusable, because each gets a different
//! dead-letter code: it is not JSON at all, it is JSON of a schema version this build does not
//! understand, or it is JSON of the right version but the wrong shape. Shape errors carry the
//! path of the offending field (`incident.alert.name: missing field`), which is what a person
//! reading the dead-letter subject needs.

use serde::Deserialize;

use crate::{Message, SchemaVersion};

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is not valid JSON: {0}")]
    NotJson(String),
    #[error("unsupported schema_version {found} (this build understands {supported})")]
    UnsupportedVersion { found: String, supported: u32 },
    #[error("payload does not match the schema: {0}")]
    Shape(String),
}

impl DecodeError {
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            DecodeError::NotJson(_) | DecodeError::Shape(_) => crate::ErrorCode::Malformed,
            DecodeError::UnsupportedVersion { .. } => crate::ErrorCode::UnsupportedSchemaVersion,
        }
    }
}

/// Decodes a message, classifying failures (see the module docs).
pub fn decode<M: Message>(payload: &[u8]) -> Result<M, DecodeError> {
    #[derive(Deserialize)]
    struct VersionProbe {
        schema_version: Option<serde_json::Value>,
    }

    let probe: VersionProbe = match serde_json::from_slice(payload) {
        Ok(probe) => probe,
        Err(err) if err.is_syntax() || err.is_eof() => {
            return Err(DecodeError::NotJson(err.to_string()));
        }
        Err(err) => return Err(DecodeError::Shape(err.to_string())),
    };
    match probe.schema_version {
        None => {
            return Err(DecodeError::Shape(
                "missing field `schema_version`".to_owned(),
            ));
        }
        Some(found) if found.as_u64() != Some(u64::from(SchemaVersion::CURRENT.get())) => {
            return Err(DecodeError::UnsupportedVersion {
                found: found.to_string(),
                supported: SchemaVersion::CURRENT.get(),
            });
        }
        Some(_) => {}
    }

    let deserializer = &mut serde_json::Deserializer::from_slice(payload);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path == "." {
            DecodeError::Shape(inner.to_string())
        } else {
            DecodeError::Shape(format!("{path}: {inner}"))
        }
    })
}

/// Encodes a message as JSON.
pub fn encode<M: Message>(message: &M) -> Vec<u8> {
    // Serializing our own types cannot fail: every map key is a string and no type has a
    // fallible `Serialize` impl.
    serde_json::to_vec(message).expect("proto messages always serialize")
}
