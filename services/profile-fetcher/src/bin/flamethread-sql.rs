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
use profile_fetcher::traces::sql::{table, visible};
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
