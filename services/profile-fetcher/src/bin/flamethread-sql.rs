//! SQL over flamethread's spans from the command line.
//!
//! ```text
//! flamethread-sql [--url http://127.0.0.1:9190] [--json] "SELECT SpanName, count(*) FROM otel_traces GROUP BY 1"
//! echo "SELECT …" | flamethread-sql
//! ```
//! Asks profile-fetcher's `POST /api/v1/sql` (on its pages listener) with the token in
//! `$FLAMETHREAD_SQL_TOKEN` (`traces.sql_token`), and prints the answer as a table (or the JSON
//! as it came with `--json`). Cell text comes from outside (span names, attributes), so control
//! characters are shown escaped, never sent to the terminal. Exits 1 when the query is refused,
//! 64 on a usage mistake.

#![allow(clippy::print_stdout, reason = "a command-line tool prints its answer")]

use std::{io::Read as _, process::ExitCode, time::Duration};

use clap::Parser;
use serde::Deserialize;

#[derive(Parser)]
#[command(
    name = "flamethread-sql",
    about = "Read-only SQL over flamethread's spans (otel_traces)"
)]
struct Args {
    /// profile-fetcher's pages listener.
    #[arg(long, env = "FLAMETHREAD_URL", default_value = "http://127.0.0.1:9190")]
    url: String,
    /// `traces.sql_token`.
    #[arg(long, env = "FLAMETHREAD_SQL_TOKEN", hide_env_values = true)]
    token: String,
    /// Print the answer's JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The query; read from standard input when left out.
    query: Option<String>,
}

#[derive(Deserialize)]
struct Answer {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    truncated: bool,
    elapsed_ms: u64,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(64)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("flamethread-sql: {err}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let query = match args.query {
        Some(query) => query,
        None => {
            let mut query = String::new();
            std::io::stdin()
                .read_to_string(&mut query)
                .map_err(|err| format!("cannot read the query from standard input: {err}"))?;
            query
        }
    };
    runtime::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    let (status, body) = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(330))
            .build()
            .map_err(|err| err.to_string())?;
        let response = client
            .post(format!("{}/api/v1/sql", args.url.trim_end_matches('/')))
            .bearer_auth(&args.token)
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .map_err(|err| format!("cannot reach {}: {err}", args.url))?;
        let status = response.status();
        let body = response.text().await.map_err(|err| err.to_string())?;
        Ok::<_, String>((status, body))
    })?;
    if !status.is_success() {
        let error = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|json| json["error"].as_str().map(str::to_owned))
            .unwrap_or(body);
        return Err(format!("{status}: {}", visible(&error)));
    }
    if args.json {
        println!("{body}");
        return Ok(());
    }
    let answer: Answer =
        serde_json::from_str(&body).map_err(|err| format!("an answer that is not one: {err}"))?;
    print!("{}", table(&answer.columns, &answer.rows));
    println!(
        "({} row{}{}, {} ms)",
        answer.rows.len(),
        if answer.rows.len() == 1 { "" } else { "s" },
        if answer.truncated {
            ", cut: more matched"
        } else {
            ""
        },
        answer.elapsed_ms
    );
    Ok(())
}

/// Control characters as escapes (`\n`, `\u{1b}`), so text from spans cannot move the cursor or
/// recolour the terminal.
fn visible(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Columns aligned, each at most 60 characters wide.
fn table(columns: &[String], rows: &[Vec<String>]) -> String {
    const WIDEST: usize = 60;
    let fit = |cell: &str| {
        let cell = visible(cell);
        if cell.chars().count() > WIDEST {
            let mut cut: String = cell.chars().take(WIDEST - 1).collect();
            cut.push('…');
            cut
        } else {
            cell
        }
    };
    let header: Vec<String> = columns.iter().map(|c| fit(c)).collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| fit(c)).collect())
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            body.iter()
                .filter_map(|row| row.get(i))
                .chain([&header[i]])
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut out = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join(" | ");
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(&header);
    out.push_str(
        &widths
            .iter()
            .map(|width| "-".repeat(*width))
            .collect::<Vec<_>>()
            .join("-+-"),
    );
    out.push('\n');
    for row in &body {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_aligned_and_cannot_reach_the_terminal_as_control_codes() {
        let columns = vec!["SpanName".to_owned(), "n".to_owned()];
        let rows = vec![
            vec!["GET /cart".to_owned(), "12".to_owned()],
            vec!["\u{1b}[31mred\u{1b}[0m\nnext".to_owned(), "3".to_owned()],
        ];
        let text = table(&columns, &rows);
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("\\u{1b}[31mred"), "{text}");
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.starts_with("SpanName"), "{text}");
    }
}
