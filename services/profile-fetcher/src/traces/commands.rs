//! `/flamethread sql …` and `/flamethread trace …` from Slack (`profile.traces`, sent by
//! alert-watcher), answered to the person who asked and nobody else.
//!
//! A query runs as `flamethread-sql`'s do (read-only, the same turns), under tighter limits: an
//! answer has to fit one Slack message, so it holds at most [`SLACK_ROWS`] rows of cells cut to
//! [`SLACK_CELL_CHARS`] characters, in a code block, and says how much more there was. "Trace
//! everything" is done by every replica's sampler as it follows the same subject
//! ([`super::sampling`]); this only says it is on.

use std::sync::Arc;

use bus::{Bus, HandlerError};
use chrono::Utc;
use proto::{Mrkdwn, PostRequest, SchemaVersion, TracesAsk, TracesCommand, mrkdwn};
use spans::Answer;

use super::{Queries, QueryRefusal, sampling::Sampler};

/// Most rows shown in Slack.
pub const SLACK_ROWS: usize = 20;
/// Most characters of a cell shown in Slack.
pub const SLACK_CELL_CHARS: usize = 60;
/// Most characters of the table's code block (Slack shows about 4,000 of a message).
const SLACK_TABLE_CHARS: usize = 3000;

/// What `profile.traces` needs: the store's queries and the sampler, when the intake is on.
#[derive(Debug)]
pub struct Commands {
    pub bus: Bus,
    pub queries: Option<Queries>,
    pub sampler: Option<Arc<Sampler>>,
    /// `traces.slack_sql`.
    pub slack_sql: bool,
}

impl Commands {
    pub async fn on_command(&self, command: TracesCommand) -> Result<(), HandlerError> {
        let text = match &command.ask {
            TracesAsk::Sql { query } => self.sql(query).await,
            TracesAsk::TraceAll { service, seconds } => self.trace_all(service, *seconds),
        };
        let answer = PostRequest {
            schema_version: SchemaVersion::CURRENT,
            post_id: format!("traces-{}", command.command_id),
            reply_key: None,
            target: command.reply.clone(),
            text,
            blocks: None,
            incident_id: None,
            stands_for: None,
        };
        self.bus
            .publish(&answer)
            .await
            .map(|_| ())
            .map_err(HandlerError::retry)
    }

    async fn sql(&self, query: &str) -> Mrkdwn {
        if !self.slack_sql {
            return Mrkdwn::plain(
                "SQL in Slack is off here (profile-fetcher's traces.slack_sql); ask whoever runs flamethread for flamethread-sql.",
            );
        }
        let Some(queries) = &self.queries else {
            return Mrkdwn::plain(super::STORE_OFF);
        };
        let mut limits = queries.limits();
        limits.max_rows = SLACK_ROWS;
        limits.max_cell_chars = SLACK_CELL_CHARS;
        let answered = queries.run(query, limits).await;
        ::metrics::counter!("ft_sql_queries_total", "status" => if answered.is_ok() { "slack_ok" } else { "slack_refused" })
            .increment(1);
        answer_text(query, answered)
    }

    fn trace_all(&self, service: &str, seconds: u64) -> Mrkdwn {
        let Some(sampler) = &self.sampler else {
            return Mrkdwn::plain(
                "The span intake is off: set profile-fetcher's traces.listen to receive spans.",
            );
        };
        let seconds = seconds.min(proto::span::MAX_TRACE_ALL.as_secs());
        let until = Utc::now() + chrono::Duration::seconds(seconds as i64);
        let rate = sampler.rate(service);
        let mut text = mrkdwn!(
            "Keeping every span of {} until {}, whatever its sampling says",
            Mrkdwn::code(service),
            Mrkdwn::date(
                until.timestamp(),
                "{time}",
                &until.format("%H:%M UTC").to_string()
            )
        );
        if rate >= 1.0 {
            text.push_plain(" (it keeps every trace already).");
        } else {
            text.push_plain(&format!(
                " (otherwise it keeps {} of traces).",
                percent(rate)
            ));
        }
        text
    }
}

fn percent(rate: f64) -> String {
    let percent = rate * 100.0;
    if percent >= 1.0 || percent == 0.0 {
        format!("{percent:.0}%")
    } else {
        format!("{percent:.2}%")
    }
}

/// The answer to `query` as Slack text: the table in a code block, or why there is none.
pub fn answer_text(query: &str, answered: Result<Answer, QueryRefusal>) -> Mrkdwn {
    let echo = Mrkdwn::code(&spans::cut_cell(
        query.split_whitespace().collect::<Vec<_>>().join(" "),
        200,
    ));
    let answer = match answered {
        Ok(answer) => answer,
        Err(err) => return mrkdwn!("{} was refused: {}", echo, err.to_string()),
    };
    if answer.rows.is_empty() {
        return mrkdwn!("{} matched no rows ({} ms).", echo, answer.elapsed_ms);
    }
    // Whole rows only: the header and rule, then as many rows as fit.
    let table = super::sql::table(&answer.columns, &answer.rows);
    let mut lines = table.lines();
    let mut shown = String::new();
    let mut rows_shown = 0;
    for line in lines.by_ref().take(2) {
        shown.push_str(line);
        shown.push('\n');
    }
    let mut length = proto::mrkdwn::escape(&shown).chars().count();
    for line in lines {
        // Counted as Slack receives it: escaped.
        length += proto::mrkdwn::escape(line).chars().count() + 1;
        if length > SLACK_TABLE_CHARS {
            break;
        }
        shown.push_str(line);
        shown.push('\n');
        rows_shown += 1;
    }
    let more = if rows_shown < answer.rows.len() || answer.truncated {
        format!(
            "the first {rows_shown} rows{}",
            if answer.truncated {
                " (there are more: narrow the query or use flamethread-sql)"
            } else {
                ""
            }
        )
    } else if rows_shown == 1 {
        "1 row".to_owned()
    } else {
        format!("{rows_shown} rows")
    };
    mrkdwn!(
        "{}: {} in {} ms\n```{}```",
        echo,
        more,
        answer.elapsed_ms,
        // Any backtick could close the block next to its fence: all of them are look-alikes.
        shown.trim_end().replace('`', "ˋ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(rows: usize, truncated: bool) -> Answer {
        Answer {
            columns: vec!["SpanName".into(), "p95_ms".into()],
            rows: (0..rows)
                .map(|n| vec![format!("GET /item/{n} <!channel> ```"), format!("{n}")])
                .collect(),
            truncated,
            elapsed_ms: 12,
        }
    }

    #[test]
    fn an_answer_is_a_code_block_whose_cells_stay_text() {
        let text = answer_text("SELECT *\n  FROM otel_traces", Ok(answer(2, false)));
        let text = text.as_str();
        assert!(
            text.starts_with("`SELECT * FROM otel_traces`: 2 rows in 12 ms\n```SpanName"),
            "{text}"
        );
        assert!(
            text.contains("GET /item/1 &lt;!channel&gt; ˋˋˋ | 1"),
            "{text}"
        );
        assert!(!text.contains("<!channel>"), "{text}");
        assert_eq!(text.matches("```").count(), 2, "{text}");
    }

    #[test]
    fn a_long_answer_is_cut_to_whole_rows_and_says_so() {
        let text = answer_text("SELECT 1", Ok(answer(200, true)));
        let text = text.as_str();
        assert!(text.chars().count() < 3500, "{}", text.chars().count());
        assert!(text.contains("the first "), "{text}");
        assert!(text.contains("narrow the query"), "{text}");
        assert!(text.ends_with("```"), "{text}");
    }

    #[test]
    fn a_refusal_says_why() {
        let text = answer_text(
            "DELETE FROM otel_traces",
            Err(QueryRefusal::Query(spans::QueryError::NotReadOnly(
                "DELETE".into(),
            ))),
        );
        assert!(
            text.as_str()
                .starts_with("`DELETE FROM otel_traces` was refused: only SELECT"),
            "{}",
            text.as_str()
        );
        let none = answer_text("SELECT 1 WHERE false", Ok(answer(0, false)));
        assert!(none.as_str().contains("matched no rows"));
    }
}
