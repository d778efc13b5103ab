//! Headless Chromium for page tests: the rendered DOM and screenshots, each run with a profile
//! directory of its own.

use std::{path::PathBuf, process::Command};

use anyhow::{Context as _, bail};

/// Debian's headless `chromium` (or `$CHROMIUM_BIN`).
pub fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Headless Chromium with its own profile in `profile`, quiet (no first-run, sync, component
/// or background traffic): add what it should do and the URL.
pub fn headless_chromium(profile: &std::path::Path) -> Command {
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// Runs headless Chromium on `url` with `args` (in a profile of its own, in `profile`) until it
/// exits; its standard output, or why it failed.
fn run_chromium(profile: &std::path::Path, args: &[String], url: &str) -> anyhow::Result<Vec<u8>> {
    let output = headless_chromium(profile)
        .args(args)
        .arg(url)
        .output()
        .with_context(|| {
            format!(
                "cannot run {} (tests/run.sh installs chromium)",
                chromium().display()
            )
        })?;
    if !output.status.success() {
        bail!(
            "chromium failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output.stdout)
}

/// The DOM of `url` after its scripts ran, as headless Chromium sees it.
pub fn rendered_dom(url: &str) -> anyhow::Result<String> {
    let profile = tempfile::tempdir()?;
    let args = [
        "--virtual-time-budget=4000".to_owned(),
        "--dump-dom".to_owned(),
    ];
    Ok(String::from_utf8(run_chromium(
        profile.path(),
        &args,
        url,
    )?)?)
}

/// A PNG screenshot of `url` after its scripts ran, `width`×`height` pixels, as headless
/// Chromium draws it.
pub fn screenshot(url: &str, width: u32, height: u32) -> anyhow::Result<Vec<u8>> {
    let profile = tempfile::tempdir()?;
    let shot = profile.path().join("screenshot.png");
    let args = [
        "--hide-scrollbars".to_owned(),
        "--virtual-time-budget=4000".to_owned(),
        format!("--window-size={width},{height}"),
        format!("--screenshot={}", shot.display()),
    ];
    run_chromium(profile.path(), &args, url)?;
    std::fs::read(&shot).with_context(|| format!("chromium wrote no {}", shot.display()))
}
