//! profile-fetcher's part of App Home: the apps it can profile. On `slack.home_opened` it lists
//! Pyroscope's apps of the last day and the `[live]` pprof targets ([`known_apps`], pure) and
//! passes them on to remediation-poster as a `post.home`, which draws the rest of the Home.

use std::collections::BTreeMap;

use chrono::Utc;
use proto::{HomeOpened, HomeRequest, KnownApp, SchemaVersion, TimeWindow, home::MAX_APPS};

use crate::fetcher::Fetcher;

/// How far back Pyroscope's apps are listed.
const APPS_SINCE: chrono::Duration = chrono::Duration::hours(24);

/// The apps to offer, by name, at most [`MAX_APPS`]: a `[live]` target is profiled live, so it is
/// marked so even when Pyroscope knows it too.
pub fn known_apps(pyroscope: &[String], live: &[String]) -> Vec<KnownApp> {
    let mut apps: BTreeMap<&str, bool> =
        pyroscope.iter().map(|app| (app.as_str(), false)).collect();
    for app in live {
        apps.insert(app, true);
    }
    apps.into_iter()
        .take(MAX_APPS)
        .map(|(name, live)| KnownApp {
            name: name.to_owned(),
            live,
        })
        .collect()
}

impl Fetcher {
    pub(crate) async fn on_home_opened(&self, opened: HomeOpened) -> Result<(), bus::HandlerError> {
        let now = Utc::now();
        let (pyroscope_apps, apps_note) = match &self.pyroscope {
            None => (Vec::new(), None),
            Some(pyroscope) => match pyroscope
                .apps(TimeWindow {
                    from: now - APPS_SINCE,
                    to: now,
                })
                .await
            {
                Ok(apps) => (apps, None),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot list Pyroscope's apps for App Home");
                    (
                        Vec::new(),
                        Some(format!("Pyroscope did not list its apps: {err}")),
                    )
                }
            },
        };
        let total = pyroscope_apps.len() + self.live.known_apps().len();
        let apps = known_apps(&pyroscope_apps, &self.live.known_apps());
        let apps_note = apps_note.or_else(|| {
            (total > apps.len())
                .then(|| format!("The first {MAX_APPS} apps by name; `/profile` lists them all."))
        });
        self.bus
            .publish(&HomeRequest {
                schema_version: SchemaVersion::CURRENT,
                home_id: opened.event_id,
                user: opened.user,
                apps,
                apps_note,
                opened_at: opened.received_at,
            })
            .await
            .map(|_| ())
            .map_err(bus::HandlerError::retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_targets_are_marked_live_and_the_list_is_bounded() {
        let pyroscope = vec!["checkout".to_owned(), "cart".to_owned()];
        let live = vec!["checkout".to_owned(), "alert-watcher".to_owned()];
        assert_eq!(
            known_apps(&pyroscope, &live),
            [
                KnownApp {
                    name: "alert-watcher".into(),
                    live: true
                },
                KnownApp {
                    name: "cart".into(),
                    live: false
                },
                KnownApp {
                    name: "checkout".into(),
                    live: true
                },
            ]
        );
        let many: Vec<String> = (0..500).map(|n| format!("app-{n:03}")).collect();
        let apps = known_apps(&many, &[]);
        assert_eq!(apps.len(), MAX_APPS);
        assert_eq!(apps[0].name, "app-000");
    }
}
