//! Alertmanager's API v2: recovering what its default Slack template leaves out (label keys,
//! annotations, `startsAt`) with `GET /api/v2/alerts?filter=alertname="…"`, then the alerts
//! whose label values include every value the title showed; and silences, created
//! (`POST /api/v2/silences`) and expired (`DELETE /api/v2/silence/{id}`) for the buttons.

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
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiAlert {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: Option<DateTime<Utc>>,
    #[serde(rename = "generatorURL", default)]
    generator_url: Option<String>,
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
        let matcher = format!("alertname=\"{}\"", name.replace('"', "\\\""));
        let alerts: Vec<ApiAlert> = self
            .http
            .get(format!("{}/api/v2/alerts", self.url))
            .query(&[("filter", matcher.as_str())])
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|err| format!("Alertmanager API: {err}"))?
            .json()
            .await
            .map_err(|err| format!("Alertmanager API answered something else: {err}"))?;
        Ok(combine(alerts, values))
    }
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
