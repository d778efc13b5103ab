//! What a run found, as the Markdown that goes into BENCHMARKS.md.

use std::{fmt, time::Duration};

use hdrhistogram::Histogram;

use crate::{faults::Injected, plan::Shape, stack::Topology};

/// One process's resident memory and CPU time so far, from `/proc/<pid>`.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub rss_kib: u64,
    pub cpu_seconds: f64,
}

/// Reads `pid`'s resident set and CPU time; `None` when it is gone.
pub fn sample(pid: Option<u32>) -> Option<Sample> {
    let process = procfs::process::Process::new(i32::try_from(pid?).ok()?).ok()?;
    let stat = process.stat().ok()?;
    let status = process.status().ok()?;
    Some(Sample {
        rss_kib: status.vmrss?,
        cpu_seconds: (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64,
    })
}

/// One distinct alert's fate.
#[derive(Debug, Clone)]
pub struct AlertOutcome {
    /// The service the alert is about (each alert its own).
    pub service: String,
    /// Its channel and thread `ts`, to look it up.
    pub thread: String,
    pub reply_after: Option<Duration>,
    pub profile_after: Option<Duration>,
    /// Flamethread's replies in its thread (one is right).
    pub replies: usize,
}

/// One service's resources over the run.
#[derive(Debug, Clone)]
pub struct ServiceUsage {
    /// The service, and which replica when there are more (`alert-watcher #2`).
    pub name: String,
    pub idle_kib: u64,
    pub peak_kib: u64,
    pub end_kib: u64,
    pub cpu_seconds: f64,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Report {
    pub shape: Shape,
    pub topology: Topology,
    /// How long posting the schedule took (the schedule's length when the harness kept up).
    pub posting: Duration,
    pub poll: Duration,
    pub alerts: Vec<AlertOutcome>,
    pub services: Vec<ServiceUsage>,
    /// The poster's `ft_poster_*` counters at the end (posts, edits, 429s, claim waits).
    pub poster_counters: Vec<String>,
    /// Messages the services gave up on (`ft_bus_consumed_total{outcome="dead_letter"}`, all
    /// processes): each one is work lost.
    pub dead_letters: u64,
    /// The NATS nodes killed during the run.
    pub faults: Vec<Injected>,
    /// Replies the posters posted (`ft_poster_posts_total`), and how many of them the posters
    /// timed from their alert (`ft_alert_to_reply_seconds_count`): the same, when every post is
    /// measured.
    pub posts: u64,
    pub posts_timed: u64,
}

/// The sum of every series of the metric `name` in a Prometheus text exposition.
pub fn metric_sum(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

/// The sum of a service's `ft_bus_consumed_total{outcome="dead_letter"}` series in its
/// Prometheus text exposition.
pub fn dead_letters(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| {
            line.starts_with("ft_bus_consumed_total{") && line.contains("outcome=\"dead_letter\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

impl Report {
    /// Every alert got exactly one reply, and it shows the profile; nothing was dead-lettered.
    pub fn is_clean(&self) -> bool {
        self.dead_letters == 0
            && self
                .alerts
                .iter()
                .all(|alert| alert.replies == 1 && alert.profile_after.is_some())
    }

    fn percentiles(durations: impl Iterator<Item = Duration>) -> Option<[Duration; 4]> {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).ok()?;
        for duration in durations {
            let micros = u64::try_from(duration.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            histogram.saturating_record(micros);
        }
        (!histogram.is_empty()).then(|| {
            [0.5, 0.9, 0.99, 1.0]
                .map(|quantile| Duration::from_micros(histogram.value_at_quantile(quantile)))
        })
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = &self.shape;
        let per_minute = shape.messages as f64 * 60.0 / shape.over.as_secs_f64().max(0.001);
        writeln!(
            f,
            "{} notifications for {} distinct alerts over {} s ({per_minute:.0}/min; new alerts within the first {} s) into {} channel(s); posted in {}",
            shape.messages,
            shape.alerts,
            shape.over.as_secs(),
            shape.introduce_within.as_secs(),
            shape.channels,
            seconds(self.posting),
        )?;
        writeln!(
            f,
            "NATS: {}; {} process(es) of each service",
            if self.topology.cluster {
                "a 3-node JetStream cluster, everything at 3 replicas"
            } else {
                "one server"
            },
            self.topology.replicas,
        )?;
        for fault in &self.faults {
            writeln!(f, "fault: {fault}")?;
        }
        let replied = self.alerts.iter().filter(|a| a.replies == 1).count();
        let missing = self.alerts.iter().filter(|a| a.replies == 0).count();
        let duplicated = self.alerts.iter().filter(|a| a.replies > 1).count();
        let with_profile = self
            .alerts
            .iter()
            .filter(|a| a.profile_after.is_some())
            .count();
        writeln!(
            f,
            "exactly one reply: {replied}/{n}; no reply: {missing}; more than one: {duplicated}; reply shows the profile: {with_profile}/{n}; dead-lettered: {dead}\n",
            n = self.alerts.len(),
            dead = self.dead_letters,
        )?;
        writeln!(
            f,
            "replies posted: {}; timed from their alert (ft_alert_to_reply_seconds): {}",
            self.posts, self.posts_timed
        )?;
        for alert in self.alerts.iter().filter(|a| a.replies != 1) {
            writeln!(
                f,
                "{} replies to the alert about {} (thread {})",
                alert.replies, alert.service, alert.thread
            )?;
        }
        for alert in self
            .alerts
            .iter()
            .filter(|a| a.replies == 1 && a.profile_after.is_none())
        {
            writeln!(
                f,
                "the reply to the alert about {} never showed its profile (thread {})",
                alert.service, alert.thread
            )?;
        }
        writeln!(f, "| latency per alert | p50 | p90 | p99 | max |")?;
        writeln!(f, "|---|---|---|---|---|")?;
        let rows = [
            (
                "alert posted → reply posted",
                Report::percentiles(self.alerts.iter().filter_map(|a| a.reply_after)),
            ),
            (
                "alert posted → reply shows the profile",
                Report::percentiles(self.alerts.iter().filter_map(|a| a.profile_after)),
            ),
        ];
        for (what, figures) in rows {
            match figures {
                Some([p50, p90, p99, max]) => writeln!(
                    f,
                    "| {what} | {} | {} | {} | {} |",
                    seconds(p50),
                    seconds(p90),
                    seconds(p99),
                    seconds(max)
                )?,
                None => writeln!(f, "| {what} | – | – | – | – |")?,
            }
        }
        writeln!(f)?;
        writeln!(
            f,
            "| service | RSS idle | RSS peak | RSS at the end | CPU time |"
        )?;
        writeln!(f, "|---|---|---|---|---|")?;
        for service in &self.services {
            writeln!(
                f,
                "| {} | {} | {} | {} | {:.2} s |",
                service.name,
                mib(service.idle_kib),
                mib(service.peak_kib),
                mib(service.end_kib),
                service.cpu_seconds
            )?;
        }
        if !self.poster_counters.is_empty() {
            writeln!(f, "\nremediation-poster's counters:")?;
            for line in &self.poster_counters {
                writeln!(f, "    {line}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_are_summed_over_consumers_and_nothing_else() {
        let metrics = "# HELP ft_bus_consumed_total Messages a consumer finished.\n\
            # TYPE ft_bus_consumed_total counter\n\
            ft_bus_consumed_total{consumer=\"a\",outcome=\"ack\"} 40\n\
            ft_bus_consumed_total{consumer=\"a\",outcome=\"dead_letter\"} 2\n\
            ft_bus_consumed_total{consumer=\"b\",outcome=\"dead_letter\"} 3\n\
            ft_bus_consumed_total{consumer=\"b\",outcome=\"retry\"} 7\n\
            ft_other_total{outcome=\"dead_letter\"} 100\n";
        assert_eq!(dead_letters(metrics), 5);
        assert_eq!(dead_letters(""), 0);
        assert_eq!(metric_sum(metrics, "ft_bus_consumed_total"), 52);
        assert_eq!(metric_sum(metrics, "ft_bus_consumed"), 0);
        assert_eq!(metric_sum(metrics, "ft_other_total"), 100);
    }

    #[test]
    fn a_run_with_a_missing_or_doubled_reply_is_not_clean() {
        let outcome = |replies| AlertOutcome {
            service: "svc-000".to_owned(),
            thread: "C0ALERTS 1733140000.000100".to_owned(),
            reply_after: Some(Duration::from_secs(1)),
            profile_after: Some(Duration::from_secs(2)),
            replies,
        };
        let report = |alerts| Report {
            shape: Shape {
                alerts: 2,
                messages: 2,
                over: Duration::from_secs(1),
                introduce_within: Duration::ZERO,
                channels: 1,
            },
            topology: Topology::default(),
            posting: Duration::from_secs(1),
            poll: Duration::from_millis(250),
            alerts,
            services: Vec::new(),
            poster_counters: Vec::new(),
            dead_letters: 0,
            faults: Vec::new(),
            posts: 0,
            posts_timed: 0,
        };
        assert!(report(vec![outcome(1), outcome(1)]).is_clean());
        assert!(!report(vec![outcome(1), outcome(0)]).is_clean());
        assert!(!report(vec![outcome(2), outcome(1)]).is_clean());
        let mut lost = report(vec![outcome(1), outcome(1)]);
        lost.dead_letters = 1;
        assert!(!lost.is_clean());
        let text = report(vec![outcome(1), outcome(2)]).to_string();
        assert!(text.contains("more than one: 1"), "{text}");
        assert!(
            text.contains("| alert posted → reply posted | 1.00 s |"),
            "{text}"
        );
    }
}
