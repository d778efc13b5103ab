//! Alertmanager's API v2: recovering what its default Slack template leaves out (label keys,
//! annotations, `startsAt`, and the alerts' fingerprints) with
//! `GET /api/v2/alerts?filter=alertname="…"`, then the alerts whose label values include every
//! value the title showed; and silences for the buttons: which alerts a silence's matchers would
//! match (`GET /api/v2/alerts` with them), the silences already made
//! (`GET /api/v2/silences`), created (`POST /api/v2/silences`) and expired
//! (`DELETE /api/v2/silence/{id}`). Answers are size-capped: Alertmanager is trusted to say
//! what it knows, not to be small.

use runtime::{auth::AuthError, body::ExchangeError};
use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Why a call to Alertmanager's API failed, said so that a person reading it in a reply knows
/// whose side the problem is on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the Alertmanager client: {0}")]
    Client(#[from] AuthError),
    /// Not reached, too slow, or too much.
    #[error("Alertmanager ({path}): {source}")]
    Exchange {
        path: String,
        #[source]
        source: ExchangeError,
    },
    /// Alertmanager answered with an error status.
    #[error("Alertmanager refused {path} ({status}): {body}")]
    Refused {
        path: String,
        status: reqwest::StatusCode,
        /// The start of what it said, trimmed.
        body: String,
    },
    #[error("Alertmanager answered {path} with something else: {source}")]
    Unexpected {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0:?} is not a silence id")]
    NotASilenceId(String),
}

#[derive(Debug, Clone)]
pub struct AlertmanagerApi {
    http: reqwest::Client,
    url: String,
    timeout: Duration,
}

/// What the API knows about a group's alerts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recovered {
    /// Labels every matching alert shares.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The earliest start among them.
    pub starts_at: Option<DateTime<Utc>>,
    pub generator_url: Option<String>,
    /// Alertmanager's fingerprints of the matching alerts.
    pub fingerprints: Vec<String>,
}

/// An alert Alertmanager matches with a silence's matchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedAlert {
    pub fingerprint: String,
    pub labels: BTreeMap<String, String>,
}

/// A silence Alertmanager has (any state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingSilence {
    pub id: String,
    /// `active`, `pending` or `expired`.
    pub state: String,
    pub comment: String,
    /// Its equality matchers (regex and negative matchers make it not one of flamethread's).
    pub matchers: BTreeMap<String, String>,
    pub ends_at: DateTime<Utc>,
}

/// Largest API answer read (a busy Alertmanager lists thousands of alerts).
const MAX_ANSWER: usize = 16 << 20;

/// Most of a refusal's text quoted back.
const MAX_REFUSAL: usize = 1_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiAlert {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: Option<DateTime<Utc>>,
    #[serde(rename = "generatorURL", default)]
    generator_url: Option<String>,
    #[serde(default)]
    fingerprint: String,
}

impl AlertmanagerApi {
    pub fn new(
        url: &str,
        timeout: Duration,
        auth: &runtime::auth::ServerAuth,
    ) -> Result<AlertmanagerApi, Error> {
        Ok(AlertmanagerApi {
            http: auth.client(Some(timeout))?,
            url: url.trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    /// The labels of the alerts named `name` whose label values include all of `values`;
    /// `Ok(None)` when none matches (resolved meanwhile, or another Alertmanager's).
    pub async fn recover(&self, name: &str, values: &[String]) -> Result<Option<Recovered>, Error> {
        let matcher = filter_matcher("alertname", name);
        let alerts: Vec<ApiAlert> = self.alerts(&[matcher]).await?;
        Ok(combine(alerts, values))
    }

    /// Every alert Alertmanager holds (active, silenced, inhibited or unprocessed) that all of
    /// `matchers` match.
    pub async fn alerts_matching(
        &self,
        matchers: &BTreeMap<String, String>,
    ) -> Result<Vec<MatchedAlert>, Error> {
        let filters: Vec<String> = matchers
            .iter()
            .map(|(name, value)| filter_matcher(name, value))
            .collect();
        Ok(self
            .alerts(&filters)
            .await?
            .into_iter()
            // Alertmanager already filtered; equality is checked again here, not assumed.
            .filter(|alert| {
                matchers
                    .iter()
                    .all(|(name, value)| alert.labels.get(name) == Some(value))
            })
            .map(|alert| MatchedAlert {
                fingerprint: alert.fingerprint,
                labels: alert.labels,
            })
            .collect())
    }

    /// The silences whose matchers include `name="value"` for every one of `matchers`.
    pub async fn silences_matching(
        &self,
        matchers: &BTreeMap<String, String>,
    ) -> Result<Vec<ExistingSilence>, Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ApiSilence {
            id: String,
            status: Status,
            #[serde(default)]
            comment: String,
            matchers: Vec<ApiMatcher>,
            ends_at: DateTime<Utc>,
        }
        #[derive(Deserialize)]
        struct Status {
            state: String,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ApiMatcher {
            name: String,
            value: String,
            is_regex: bool,
            #[serde(default = "yes")]
            is_equal: bool,
        }
        fn yes() -> bool {
            true
        }
        let filters: Vec<(&str, String)> = matchers
            .iter()
            .map(|(name, value)| ("filter", filter_matcher(name, value)))
            .collect();
        let silences: Vec<ApiSilence> = self.get_json("/api/v2/silences", &filters).await?;
        Ok(silences
            .into_iter()
            .filter(|silence| {
                silence
                    .matchers
                    .iter()
                    .all(|matcher| !matcher.is_regex && matcher.is_equal)
            })
            .map(|silence| ExistingSilence {
                id: silence.id,
                state: silence.status.state,
                comment: silence.comment,
                matchers: silence
                    .matchers
                    .into_iter()
                    .map(|matcher| (matcher.name, matcher.value))
                    .collect(),
                ends_at: silence.ends_at,
            })
            .collect())
    }

    /// The fingerprints of every alert Alertmanager holds now (active, silenced, inhibited or
    /// unprocessed; resolved ones are not listed).
    pub async fn current_fingerprints(&self) -> Result<std::collections::HashSet<String>, Error> {
        Ok(self
            .alerts(&[])
            .await?
            .into_iter()
            .map(|alert| alert.fingerprint)
            .filter(|fingerprint| !fingerprint.is_empty())
            .collect())
    }

    async fn alerts(&self, filters: &[String]) -> Result<Vec<ApiAlert>, Error> {
        let query: Vec<(&str, String)> = filters
            .iter()
            .map(|filter| ("filter", filter.clone()))
            .collect();
        self.get_json("/api/v2/alerts", &query).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, Error> {
        let request = self.http.get(format!("{}{path}", self.url)).query(query);
        let body = self.exchange(path, request).await?;
        serde_json::from_slice(&body).map_err(|source| Error::Unexpected {
            path: path.to_owned(),
            source,
        })
    }

    /// Sends `request` and reads its answer, at most [`MAX_ANSWER`] bytes; an error status is a
    /// refusal quoting the start of what Alertmanager said.
    async fn exchange(
        &self,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, Error> {
        let (status, body) = runtime::body::exchange(request, MAX_ANSWER, self.timeout)
            .await
            .map_err(|source| Error::Exchange {
                path: path.to_owned(),
                source,
            })?;
        if status.is_success() {
            Ok(body)
        } else {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            let cut = text
                .char_indices()
                .nth(MAX_REFUSAL)
                .map_or(text.len(), |(at, _)| at);
            Err(Error::Refused {
                path: path.to_owned(),
                status,
                body: text[..cut].to_owned(),
            })
        }
    }
}

/// `name="value"` as Alertmanager's filter syntax wants it (quotes and backslashes escaped).
fn filter_matcher(name: &str, value: &str) -> String {
    let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{name}=\"{quoted}\"")
}

fn combine(alerts: Vec<ApiAlert>, values: &[String]) -> Option<Recovered> {
    let matching: Vec<ApiAlert> = alerts
        .into_iter()
        .filter(|alert| {
            values
                .iter()
                .all(|value| alert.labels.values().any(|v| v == value))
        })
        .collect();
    let first = matching.first()?;
    let mut labels = first.labels.clone();
    labels.retain(|key, value| {
        matching
            .iter()
            .all(|alert| alert.labels.get(key) == Some(value))
    });
    Some(Recovered {
        labels,
        annotations: first.annotations.clone(),
        starts_at: matching.iter().filter_map(|alert| alert.starts_at).min(),
        generator_url: first.generator_url.clone(),
        fingerprints: matching
            .iter()
            .map(|alert| alert.fingerprint.clone())
            .filter(|fingerprint| !fingerprint.is_empty())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_shares_its_common_labels_and_earliest_start() {
        let alerts: Vec<ApiAlert> = serde_json::from_str(r#"[
            {"labels": {"alertname": "HighCPU", "service": "checkout", "instance": "a:9100"}, "annotations": {"summary": "hot"},
             "startsAt": "2026-11-22T10:05:00Z", "generatorURL": "http://prometheus:9090/graph?g0.expr=cpu", "fingerprint": "1", "status": {"state": "active"}},
            {"labels": {"alertname": "HighCPU", "service": "checkout", "instance": "b:9100"}, "annotations": {},
             "startsAt": "2026-11-22T10:01:00Z", "fingerprint": "2", "status": {"state": "active"}},
            {"labels": {"alertname": "HighCPU", "service": "cart", "instance": "c:9100"}, "startsAt": "2026-11-22T09:00:00Z"}
        ]"#).unwrap();
        let recovered = combine(alerts, &["HighCPU".into(), "checkout".into()]).unwrap();
        assert_eq!(
            recovered.labels.get("service").map(String::as_str),
            Some("checkout")
        );
        assert!(
            !recovered.labels.contains_key("instance"),
            "instances differ within the group"
        );
        assert_eq!(
            recovered.starts_at.unwrap().to_rfc3339(),
            "2026-11-22T10:01:00+00:00"
        );
        assert_eq!(combine(Vec::new(), &["HighCPU".into()]), None);
    }
}

/// A silence to create: equality matchers on labels, for a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSilence {
    pub matchers: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

impl AlertmanagerApi {
    /// Creates `silence`; its id.
    pub async fn create_silence(&self, silence: &NewSilence) -> Result<String, Error> {
        let matchers: Vec<serde_json::Value> = silence
            .matchers
            .iter()
            .map(|(name, value)| {
                serde_json::json!({"name": name, "value": value, "isRegex": false, "isEqual": true})
            })
            .collect();
        let body = serde_json::json!({
            "matchers": matchers,
            "startsAt": silence.starts_at,
            "endsAt": silence.ends_at,
            "createdBy": silence.created_by,
            "comment": silence.comment,
        });
        let path = "/api/v2/silences";
        let request = self.http.post(format!("{}{path}", self.url)).json(&body);
        let answer = self.exchange(path, request).await?;
        #[derive(Deserialize)]
        struct Created {
            #[serde(rename = "silenceID")]
            silence_id: String,
        }
        serde_json::from_slice::<Created>(&answer)
            .map(|created| created.silence_id)
            .map_err(|source| Error::Unexpected {
                path: path.to_owned(),
                source,
            })
    }

    /// Expires the silence `id` (gone already is fine).
    pub async fn expire_silence(&self, id: &str) -> Result<(), Error> {
        let valid = !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if !valid {
            return Err(Error::NotASilenceId(id.to_owned()));
        }
        let path = format!("/api/v2/silence/{id}");
        let request = self.http.delete(format!("{}{path}", self.url));
        match self.exchange(&path, request).await {
            Ok(_) => Ok(()),
            Err(Error::Refused { status, .. }) if status == reqwest::StatusCode::NOT_FOUND => {
                Ok(())
            }
            Err(err) => Err(err),
        }
    }
}
