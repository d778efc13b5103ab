//! What the harness posts and when: a schedule of Alertmanager notifications (pure, no I/O).
//!
//! A storm is mostly repeats: each distinct alert is *introduced* once (the message that opens
//! its incident and whose thread gets the reply), and every other message re-posts an alert
//! already firing, as Alertmanager does on `repeat_interval` or when a group changes. Introductions
//! are spread evenly over `introduce_within` (a burst when that is short, a steady trickle of new
//! alerts when it is the whole run); all messages are spread evenly over the run.

use std::time::Duration;

use serde_json::{Value, json};

/// The least time between an alert's first notification and a repeat of it.
pub const REPEAT_AFTER: Duration = Duration::from_secs(2);

/// How many, how fast, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Distinct alerts (each its own service, so each its own incident and reply).
    pub alerts: usize,
    /// Notifications posted in all, introductions included (at least `alerts`).
    pub messages: usize,
    /// Over how long the messages are posted.
    pub over: Duration,
    /// The introductions happen within this much of the start (at most `over`).
    pub introduce_within: Duration,
    /// Alerts go round-robin to this many channels.
    pub channels: usize,
}

/// One notification of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// When to post it, from the start of the run.
    pub at: Duration,
    /// Which alert it is about.
    pub alert: usize,
    /// Whether it introduces the alert (the first notification about it).
    pub introduces: bool,
}

/// Why a shape cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError(pub String);

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShapeError {}

impl Shape {
    /// Checks that the shape makes sense before anything is started.
    pub fn validate(&self) -> Result<(), ShapeError> {
        let error = |text: &str| Err(ShapeError(text.to_owned()));
        if self.alerts == 0 {
            return error("--alerts must be at least 1");
        }
        if self.messages < self.alerts {
            return error(
                "--messages must be at least --alerts (each alert is posted once at least)",
            );
        }
        if self.channels == 0 || self.channels > 99 {
            return error("--channels must be between 1 and 99");
        }
        if self.introduce_within > self.over {
            return error("--introduce-within cannot be longer than --seconds");
        }
        Ok(())
    }

    /// The schedule, ordered by time. Deterministic: the same shape gives the same schedule.
    pub fn schedule(&self) -> Vec<Planned> {
        let (alerts, messages) = (self.alerts, self.messages.max(self.alerts));
        let introduction_at =
            |alert: usize| self.introduce_within.mul_f64(alert as f64 / alerts as f64);
        let repeats = messages - alerts;
        let mut schedule = Vec::with_capacity(messages);
        schedule.extend((0..alerts).map(|alert| Planned {
            at: introduction_at(alert),
            alert,
            introduces: true,
        }));
        // Repeats fill the run after the first REPEAT_AFTER; each repeats an alert introduced at
        // least REPEAT_AFTER before it (Alertmanager never re-sends an alert milliseconds after
        // the first notification; posts racing each other would make the repeat the alert's
        // first message), picked by a fixed stride so that every firing alert keeps coming back.
        let repeats_from = REPEAT_AFTER.min(self.over);
        let repeat_span = self.over - repeats_from;
        let mut cursor = 0usize;
        schedule.extend((0..repeats).map(|index| {
            let at = repeats_from + repeat_span.mul_f64(index as f64 / repeats as f64);
            let eligible = (0..alerts)
                .take_while(|&alert| introduction_at(alert) + REPEAT_AFTER <= at)
                .count()
                .max(1);
            cursor = cursor.wrapping_add(7919);
            Planned {
                at,
                alert: cursor % eligible,
                introduces: false,
            }
        }));
        // A stable sort keeps an alert's introduction before its repeats at the same instant.
        schedule.sort_by_key(|planned| (planned.at, !planned.introduces));
        schedule
    }

    /// The channel (emulator id) of an alert.
    pub fn channel_of(&self, alert: usize) -> String {
        channel_id(alert % self.channels)
    }

    /// Every channel the run uses, as (id, name).
    pub fn channels(&self) -> Vec<(String, String)> {
        (0..self.channels)
            .map(|index| {
                let name = if index == 0 {
                    "alerts".to_owned()
                } else {
                    format!("alerts-{index:02}")
                };
                (channel_id(index), name)
            })
            .collect()
    }
}

fn channel_id(index: usize) -> String {
    if index == 0 {
        "C0ALERTS".to_owned()
    } else {
        format!("C0LOAD{index:02}")
    }
}

/// The service an alert is about; also its app in Pyroscope.
pub fn service_of(alert: usize) -> String {
    format!("svc-{alert:03}")
}

const ALERT_NAMES: [(&str, &str); 3] = [
    ("HighLatency", "p99 latency above 500ms"),
    ("HighCpu", "CPU above 90% of its limit"),
    ("ErrorBudgetBurn", "error budget burning 14x"),
];

/// The control-API post for one notification: Alertmanager's Slack notifier with the widely used
/// custom template that lists each alert's labels (`*Details:*` with `• *key:* \`value\``), so
/// the watcher reads the labels from the message itself (no Alertmanager API in this run).
pub fn notification(channel: &str, alert: usize) -> Value {
    let (alertname, summary) = ALERT_NAMES[alert % ALERT_NAMES.len()];
    let service = service_of(alert);
    let link = "http://alertmanager:9093/#/alerts?receiver=slack";
    json!({
        "channel": channel,
        "bot_id": "B0AMGR",
        "username": "Alertmanager",
        "attachments": [{
            "color": "danger",
            "title": format!("[FIRING:1] {alertname}"),
            "title_link": link,
            "text": format!(
                "*Alert:* {summary} on {service} - `page`\n*Details:*\n  • *alertname:* `{alertname}`\n  • *service:* `{service}`\n  • *severity:* `page`\n"
            ),
            "fallback": format!("[FIRING:1] {alertname} | {link}"),
            "mrkdwn_in": ["text"],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(alerts: usize, messages: usize, within: u64) -> Shape {
        Shape {
            alerts,
            messages,
            over: Duration::from_secs(60),
            introduce_within: Duration::from_secs(within),
            channels: 3,
        }
    }

    #[test]
    fn every_alert_is_introduced_once_before_any_repeat_of_it() {
        for (alerts, messages, within) in [(30, 3000, 5), (30, 30, 60), (7, 1000, 60), (1, 50, 0)] {
            let schedule = shape(alerts, messages, within).schedule();
            assert_eq!(schedule.len(), messages);
            let mut introduced = vec![None; alerts];
            for planned in &schedule {
                if planned.introduces {
                    assert!(
                        introduced[planned.alert].is_none(),
                        "introduced twice: {planned:?}"
                    );
                    introduced[planned.alert] = Some(planned.at);
                } else {
                    let first = introduced[planned.alert].expect("a repeat before its alert");
                    assert!(
                        planned.at >= first + REPEAT_AFTER,
                        "a repeat too soon: {planned:?}"
                    );
                }
            }
            assert!(introduced.iter().all(Option::is_some));
            assert!(schedule.windows(2).all(|pair| pair[0].at <= pair[1].at));
            assert!(
                schedule
                    .iter()
                    .all(|planned| planned.at < Duration::from_secs(60))
            );
        }
    }

    #[test]
    fn a_burst_introduces_every_alert_within_its_window_and_repeats_fill_the_run() {
        let schedule = shape(30, 3000, 5).schedule();
        let last_introduction = schedule.iter().filter(|p| p.introduces).map(|p| p.at).max();
        assert!(last_introduction < Some(Duration::from_secs(5)));
        let late_repeats = schedule
            .iter()
            .filter(|p| p.at > Duration::from_secs(55))
            .count();
        assert!(
            late_repeats > 200,
            "repeats continue to the end: {late_repeats}"
        );
        let repeated: std::collections::BTreeSet<usize> = schedule
            .iter()
            .filter(|p| !p.introduces)
            .map(|p| p.alert)
            .collect();
        assert_eq!(repeated.len(), 30, "every alert keeps coming back");
    }

    #[test]
    fn bad_shapes_say_which_flag_is_wrong() {
        assert!(shape(30, 3000, 5).validate().is_ok());
        let wrong = |shape: Shape| shape.validate().unwrap_err().0;
        assert!(wrong(shape(0, 10, 5)).contains("--alerts"));
        assert!(wrong(shape(30, 10, 5)).contains("--messages"));
        assert!(wrong(shape(3, 10, 61)).contains("--introduce-within"));
        assert!(
            wrong(Shape {
                channels: 0,
                ..shape(3, 10, 5)
            })
            .contains("--channels")
        );
    }

    #[test]
    fn notifications_go_round_robin_and_carry_their_service_label() {
        let shape = shape(5, 10, 5);
        assert_eq!(shape.channel_of(0), "C0ALERTS");
        assert_eq!(shape.channel_of(4), "C0LOAD01");
        assert_eq!(
            shape.channels()[2],
            ("C0LOAD02".to_owned(), "alerts-02".to_owned())
        );
        let post = notification("C0LOAD01", 4);
        let text = post["attachments"][0]["text"].as_str().unwrap();
        assert!(text.contains("*service:* `svc-004`"), "{text}");
        assert_eq!(post["channel"], "C0LOAD01");
    }
}
