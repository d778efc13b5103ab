//! Alertmanager's API v2: recovering what its default Slack template leaves out (label keys,
//! annotations, `startsAt`, and the alerts' fingerprints) with
//! `GET /api/v2/alerts?filter=alertname="…"`, then the alerts whose label values include every
//! value the title showed; and silences for the buttons: which alerts a silence's matchers would
//! match (`GET /api/v2/alerts` with them), the silences already made
//! (`GET /api/v2/silences`), created (`POST /api/v2/silences`) and expired
//! (`DELETE /api/v2/silence/{id}`). Answers are size-capped: Alertmanager is trusted to say
//! what it knows, not to be small.

use runtime::body::{BodyError, NO_STALL_LIMIT, read_capped};
use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Debug, Clone)]
pub struct AlertmanagerApi {
    http: reqwest::Client,
    url: String,
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
    pub fn new(url: &str, timeout: Duration) -> Result<AlertmanagerApi, String> {
        runtime::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|err| format!("cannot build the Alertmanager client: {err}"))?;
        Ok(AlertmanagerApi {
            http,
            url: url.trim_end_matches('/').to_owned(),
        })
    }

    /// The labels of the alerts named `name` whose label values include all of `values`;
    /// `Ok(None)` when none matches (resolved meanwhile, or another Alertmanager's).
    pub async fn recover(
        &self,
        name: &str,
        values: &[String],
    ) -> Result<Option<Recovered>, String> {
        let matcher = filter_matcher("alertname", name);
        let alerts: Vec<ApiAlert> = self.alerts(&[matcher]).await?;
        Ok(combine(alerts, values))
    }

    /// Every alert Alertmanager holds (active, silenced, inhibited or unprocessed) that all of
    /// `matchers` match.
    pub async fn alerts_matching(
        &self,
        matchers: &BTreeMap<String, String>,
    ) -> Result<Vec<MatchedAlert>, String> {
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
    ) -> Result<Vec<ExistingSilence>, String> {
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
    pub async fn current_fingerprints(&self) -> Result<std::collections::HashSet<String>, String> {
        Ok(self
            .alerts(&[])
            .await?
            .into_iter()
            .map(|alert| alert.fingerprint)
            .filter(|fingerprint| !fingerprint.is_empty())
            .collect())
    }

    async fn alerts(&self, filters: &[String]) -> Result<Vec<ApiAlert>, String> {
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
    ) -> Result<T, String> {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .query(query)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|err| format!("Alertmanager API: {err}"))?;
        let body = read_capped(response, MAX_ANSWER, NO_STALL_LIMIT)
            .await
            .map_err(|err| match err {
                BodyError::TooLarge(_) => format!(
                    "Alertmanager API: the answer to {path} is over {} MiB",
                    MAX_ANSWER >> 20
                ),
                err => format!("Alertmanager API: {err}"),
            })?;
        serde_json::from_slice(&body)
            .map_err(|err| format!("Alertmanager API answered something else: {err}"))
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
    pub async fn create_silence(&self, silence: &NewSilence) -> Result<String, String> {
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
        let response = self
            .http
            .post(format!("{}/api/v2/silences", self.url))
            .json(&body)
            .send()
            .await
            .map_err(|err| format!("cannot reach Alertmanager: {err}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|err| format!("Alertmanager's answer: {err}"))?;
        if !status.is_success() {
            return Err(format!(
                "Alertmanager refused the silence ({status}): {}",
                text.trim()
            ));
        }
        #[derive(Deserialize)]
        struct Created {
            #[serde(rename = "silenceID")]
            silence_id: String,
        }
        serde_json::from_str::<Created>(&text)
            .map(|created| created.silence_id)
            .map_err(|err| format!("Alertmanager's answer is not a silence id: {err}"))
    }

    /// Expires the silence `id` (gone already is fine).
    pub async fn expire_silence(&self, id: &str) -> Result<(), String> {
        let valid = !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if !valid {
            return Err(format!("{id:?} is not a silence id"));
        }
        let response = self
            .http
            .delete(format!("{}/api/v2/silence/{id}", self.url))
            .send()
            .await
            .map_err(|err| format!("cannot reach Alertmanager: {err}"))?;
        let status = response.status();
        if status.is_success() || status.as_u16() == 404 {
            Ok(())
        } else {
            Err(format!(
                "Alertmanager refused to expire the silence ({status}): {}",
                response.text().await.unwrap_or_default().trim()
            ))
        }
    }
}
