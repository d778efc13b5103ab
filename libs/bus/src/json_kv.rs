//! JSON values in a JetStream key-value bucket, changed by compare-and-set.
//!
//! Every service that keeps state in KV (alert-watcher's incidents, the poster's reply records)
//! changes it the same way: read the value and its revision, change it in memory, write it only
//! if the key is still at that revision, and on a conflict start again from a fresh read. Two
//! replicas may race; neither overwrites what the other wrote. This module is that loop, once.

use async_nats::jetstream::kv;
use serde::{Serialize, de::DeserializeOwned};

use crate::HandlerError;

/// What went wrong reading or writing a JSON value in KV.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("reading {key}: {source}")]
    Read {
        key: String,
        #[source]
        source: kv::EntryError,
    },
    #[error("{key} is unreadable: {source}")]
    Unreadable {
        key: String,
        /// The revision of what could not be read, to replace it against.
        revision: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode {key}: {source}")]
    Encode {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing {key}: {detail}")]
    Write { key: String, detail: String },
    #[error("{key} kept changing under {rounds} writes")]
    Contended { key: String, rounds: usize },
}

impl From<KvError> for HandlerError {
    /// A value no code can read or write is refused; the rest may pass.
    fn from(err: KvError) -> HandlerError {
        match err {
            KvError::Unreadable { .. } | KvError::Encode { .. } => HandlerError::reject(err),
            KvError::Read { .. } | KvError::Write { .. } | KvError::Contended { .. } => {
                HandlerError::retry(err)
            }
        }
    }
}

/// The value under `key` (`None` when there is none, or it was deleted) and the revision to
/// write against (0 when the key never existed).
pub async fn read<T: DeserializeOwned>(
    store: &kv::Store,
    key: &str,
) -> Result<(Option<T>, u64), KvError> {
    let entry = store.entry(key).await.map_err(|source| KvError::Read {
        key: key.to_owned(),
        source,
    })?;
    match entry {
        Some(entry) if entry.operation == kv::Operation::Put => {
            let value =
                serde_json::from_slice(&entry.value).map_err(|source| KvError::Unreadable {
                    key: key.to_owned(),
                    revision: entry.revision,
                    source,
                })?;
            Ok((Some(value), entry.revision))
        }
        Some(entry) => Ok((None, entry.revision)),
        None => Ok((None, 0)),
    }
}

/// [`read`], where a value that does not parse (written by an older version, or damaged) reads
/// as none, to be replaced by the next write against its revision.
pub async fn read_tolerant<T: DeserializeOwned>(
    store: &kv::Store,
    key: &str,
) -> Result<(Option<T>, u64), KvError> {
    match read(store, key).await {
        Err(KvError::Unreadable { revision, .. }) => Ok((None, revision)),
        read => read,
    }
}

/// Writes `value` whatever is there.
pub async fn put<T: Serialize>(store: &kv::Store, key: &str, value: &T) -> Result<(), KvError> {
    let bytes = serde_json::to_vec(value).map_err(|source| KvError::Encode {
        key: key.to_owned(),
        source,
    })?;
    store
        .put(key, bytes.into())
        .await
        .map_err(|err| write_error(key, err))?;
    Ok(())
}

/// Writes `value` if `key` is still at `revision` (0: it does not exist yet); `false`, and
/// nothing written, when someone else wrote first.
pub async fn compare_and_set<T: Serialize>(
    store: &kv::Store,
    key: &str,
    value: &T,
    revision: u64,
) -> Result<bool, KvError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|source| KvError::Encode {
            key: key.to_owned(),
            source,
        })?
        .into();
    let written = if revision == 0 {
        match store.create(key, bytes).await {
            Ok(_) => true,
            Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => false,
            Err(err) => return Err(write_error(key, err)),
        }
    } else {
        match store.update(key, bytes, revision).await {
            Ok(_) => true,
            Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => false,
            Err(err) => return Err(write_error(key, err)),
        }
    };
    if !written {
        metrics::counter!("ft_kv_cas_conflicts_total").increment(1);
    }
    Ok(written)
}

fn write_error(key: &str, err: impl std::fmt::Display) -> KvError {
    KvError::Write {
        key: key.to_owned(),
        detail: err.to_string(),
    }
}

/// Read, `change`, compare-and-set, until it lands or `rounds` writes were lost. Returns the
/// value as written, or as read when `change` said nothing changed (a missing key reads as
/// `T::default()`).
pub async fn update<T: Serialize + DeserializeOwned + Default>(
    store: &kv::Store,
    key: &str,
    rounds: usize,
    mut change: impl FnMut(&mut T) -> bool,
) -> Result<T, KvError> {
    for _ in 0..rounds {
        let (value, revision) = read::<T>(store, key).await?;
        let mut value = value.unwrap_or_default();
        if !change(&mut value) {
            return Ok(value);
        }
        if compare_and_set(store, key, &value, revision).await? {
            return Ok(value);
        }
    }
    Err(KvError::Contended {
        key: key.to_owned(),
        rounds,
    })
}
