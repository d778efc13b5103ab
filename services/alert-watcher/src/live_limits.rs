//! Who may take a live profile, and how often. A live profile makes an app's pprof endpoint
//! spend seconds of CPU on being profiled, so `/profile … now`, pickers that ask for one and
//! "Profile now" obey the same `[actions] profile_now` allow-list, then a token bucket per person
//! and one per app (governor). The buckets live in this replica's memory: with several replicas,
//! each allows its share.

use std::num::NonZeroU32;

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use proto::{ProfileRequest, evidence::ProfileMode};

use crate::{ActionsConfig, actions};

#[derive(Debug)]
pub(crate) struct LiveLimits {
    allowed: Vec<String>,
    allow_anyone: bool,
    per_person: DefaultKeyedRateLimiter<String>,
    per_app: DefaultKeyedRateLimiter<String>,
}

/// Keys kept before forgetting those whose buckets are full again.
const FORGET_PAST: usize = 10_000;

impl LiveLimits {
    pub(crate) fn new(config: &ActionsConfig) -> LiveLimits {
        let per = |count: u32| NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN);
        LiveLimits {
            allowed: config.profile_now.clone(),
            allow_anyone: config.allow_anyone,
            per_person: RateLimiter::keyed(Quota::per_hour(per(config.live_per_person_per_hour))),
            per_app: RateLimiter::keyed(Quota::per_minute(per(config.live_per_app_per_minute))),
        }
    }

    /// `Ok` when `user` may have `request` now (always, for what is not a live profile); else
    /// what to tell them.
    pub(crate) fn check(&self, user: &str, request: &ProfileRequest) -> Result<(), String> {
        if !matches!(request.mode, ProfileMode::Live { .. }) {
            return Ok(());
        }
        if !actions::allowed(user, &self.allowed, self.allow_anyone) {
            return Err("Live profiles are for the people alert-watcher's [actions] profile_now names; ask one of them, or use `/profile <app> 30m` for the continuous profile.".to_owned());
        }
        for limiter in [&self.per_person, &self.per_app] {
            if limiter.len() > FORGET_PAST {
                limiter.retain_recent();
            }
        }
        let now = DefaultClock::default().now();
        if let Err(not_until) = self.per_person.check_key(&user.to_owned()) {
            return Err(format!(
                "You have taken as many live profiles as allowed for now; try again in {}.",
                proto::slack::duration_text(not_until.wait_time_from(now).max(SECOND))
            ));
        }
        let app = request.app.clone().unwrap_or_default();
        if let Err(not_until) = self.per_app.check_key(&app) {
            return Err(format!(
                "`{}` was profiled live moments ago; try again in {}.",
                app,
                proto::slack::duration_text(not_until.wait_time_from(now).max(SECOND))
            ));
        }
        Ok(())
    }
}

const SECOND: std::time::Duration = std::time::Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use proto::ReplyTarget;

    use super::*;

    fn live(app: &str) -> ProfileRequest {
        let now = chrono::Utc::now();
        ProfileRequest {
            schema_version: proto::SchemaVersion::CURRENT,
            request_id: "r".into(),
            app: Some(app.into()),
            window: proto::TimeWindow { from: now, to: now },
            profile_type: None,
            mode: ProfileMode::Live { seconds: 5 },
            incident_id: None,
            requested_by: None,
            reply: ReplyTarget::ResponseUrl { url: String::new() },
        }
    }

    #[test]
    fn live_profiles_obey_the_allow_list_and_both_rates() {
        let config = ActionsConfig {
            profile_now: vec!["U1".into(), "U2".into()],
            live_per_person_per_hour: 2,
            live_per_app_per_minute: 1,
            ..ActionsConfig::default()
        };
        let limits = LiveLimits::new(&config);
        assert!(
            limits
                .check("U9", &live("checkout"))
                .unwrap_err()
                .contains("profile_now")
        );
        assert_eq!(limits.check("U1", &live("checkout")), Ok(()));
        let app = limits.check("U2", &live("checkout")).unwrap_err();
        assert!(app.contains("`checkout` was profiled live"), "{app}");
        assert_eq!(limits.check("U1", &live("cart")), Ok(()));
        let person = limits.check("U1", &live("billing")).unwrap_err();
        assert!(person.contains("as many live profiles"), "{person}");
        // The continuous profile is not live: no limit.
        let mut continuous = live("checkout");
        continuous.mode = ProfileMode::Continuous;
        assert_eq!(limits.check("U9", &continuous), Ok(()));
        // Nobody by default.
        let closed = LiveLimits::new(&ActionsConfig::default());
        assert!(closed.check("U1", &live("checkout")).is_err());
    }
}
