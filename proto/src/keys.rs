//! The keys flamethread's key-value buckets hold, each made by one function.
//!
//! A key's shape is a contract between the writers and readers of a bucket (two replicas of a
//! service, or, for reply keys, the service that asks for a post and the poster that keeps it),
//! so none is `format!`-ed where it is used; `tests/it/tidy.rs` refuses the prefixes anywhere
//! else in `services/`.

/// Keys of the incident bucket ([`crate::Subjects::incident_bucket`]), alert-watcher's state.
pub mod incident {
    /// Prefix of an incident's state: listing keys with it lists the incidents.
    pub const STATE_PREFIX: &str = "fp.";

    /// An incident's state (`IncidentState`), by the incident's fingerprint.
    pub fn state(fingerprint: &str) -> String {
        format!("{STATE_PREFIX}{fingerprint}")
    }

    /// The channels an Alertmanager alert has incidents in, so that its webhook (which knows no
    /// channel) finds them.
    pub fn alert_channels(alert_fingerprint: &str) -> String {
        format!("amchannels.{alert_fingerprint}")
    }

    /// What Alertmanager's webhook last said of an alert.
    pub fn webhook_alert(alert_fingerprint: &str) -> String {
        format!("amhook.{alert_fingerprint}")
    }

    /// The incident a storm member joined, by the member's fingerprint.
    pub fn storm_member(fingerprint: &str) -> String {
        format!("member.{fingerprint}")
    }

    /// A storm group's leader, by the group's key.
    pub fn storm_group(group: &str) -> String {
        format!("storm.{group}")
    }

    /// The short claim a "Silence" click holds while it talks to Alertmanager.
    pub fn silencing(incident_id: &str) -> String {
        format!("silencing.{incident_id}")
    }
}

/// Keys of the reply bucket ([`crate::Subjects::reply_bucket`]): one record per reply
/// remediation-poster keeps up to date in Slack.
pub mod reply {
    /// What a reply answers: its key's first part.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Kind {
        /// An incident's reply in its alert's thread.
        Incident,
        /// The answer to a `/profile` (or a "Profile now" on an app).
        ProfileRequest,
        /// A sandbox run's result.
        Sandbox,
        /// Any other post (`PostRequest.reply_key`, or its `post_id`).
        Post,
    }

    impl Kind {
        pub const fn prefix(self) -> &'static str {
            match self {
                Kind::Incident => "incident.",
                Kind::ProfileRequest => "profile-request.",
                Kind::Sandbox => "sandbox.",
                Kind::Post => "post.",
            }
        }
    }

    /// The KV key of a reply: the kind's prefix and the id, with the characters NATS keys do not
    /// allow replaced.
    pub fn key(kind: Kind, id: &str) -> String {
        let id: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{}{id}", kind.prefix())
    }

    /// The `PostRequest.reply_key` of the answers about an incident's silence (made, expired),
    /// which replace each other in place.
    pub fn silence(incident_id: &str) -> String {
        format!("silence:{incident_id}")
    }

    /// The `PostRequest.reply_key` of the offer to run a shared file, which its answer (run,
    /// declined) replaces in place.
    pub fn sandbox_offer(file_id: &str) -> String {
        format!("sandbox-offer:{file_id}")
    }
}

/// Keys of the object store ([`crate::Subjects::blob_bucket`]): what one service stores and
/// another reads (a drawing profile-fetcher's pages serve, a file the gateway fetched for the
/// sandbox, a dead letter's payload).
pub mod object {
    /// A profile's interactive flamegraph (SVG), by page id.
    pub fn flamegraph(page_id: &str) -> String {
        format!("flamegraphs/{page_id}.svg")
    }

    /// The differential flamegraph against the baseline (SVG).
    pub fn diff(page_id: &str) -> String {
        format!("flamegraphs/{page_id}.diff.svg")
    }

    /// The folded stacks a flamegraph was drawn from.
    pub fn folded(page_id: &str) -> String {
        format!("profiles/{page_id}.folded")
    }

    /// A metrics chart (SVG).
    pub fn chart(page_id: &str) -> String {
        format!("charts/{page_id}.svg")
    }

    /// The flamegraph's PNG preview, for Slack (which shows no SVG).
    pub fn flamegraph_png(page_id: &str) -> String {
        format!("flamegraphs/{page_id}.png")
    }

    /// The diff's PNG preview.
    pub fn diff_png(page_id: &str) -> String {
        format!("flamegraphs/{page_id}.diff.png")
    }

    /// The chart as a PNG.
    pub fn chart_png(page_id: &str) -> String {
        format!("charts/{page_id}.png")
    }

    /// A file shared in Slack, fetched by slack-gateway for sandbox-runner. The file's name is
    /// the sharer's: only ASCII letters, digits, `.`, `-` and `_` are kept, so that it cannot
    /// climb out of its folder or reach the key's other parts.
    pub fn slack_file(file_id: &str, file_name: &str) -> String {
        format!(
            "slack-files/{}/{}",
            safe_name(file_id),
            safe_name(file_name)
        )
    }

    /// A dead letter's payload, too big to keep inline in the letter.
    pub fn dead_letter(stream: &str, stream_sequence: u64) -> String {
        format!("dead-letters/{stream}.{stream_sequence}")
    }

    /// `name` with every character but ASCII letters, digits, `.`, `-` and `_` replaced by `_`;
    /// `file` if nothing but dots is left.
    pub fn safe_name(name: &str) -> String {
        let cleaned: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if cleaned.trim_matches('.').is_empty() {
            "file".to_owned()
        } else {
            cleaned
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_shared_file_name_cannot_climb_out_of_its_folder() {
            assert_eq!(safe_name("load test.py"), "load_test.py");
            assert_eq!(safe_name("../../etc/passwd"), ".._.._etc_passwd");
            assert_eq!(safe_name(".."), "file");
            assert_eq!(safe_name(""), "file");
            assert_eq!(slack_file("F1/..", "a/b.py"), "slack-files/F1_../a_b.py");
        }
    }
}
