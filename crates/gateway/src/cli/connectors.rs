//! `mno connectors`: a connector install's status, and a sync now. Both ask
//! the running platform's API as a user (the org's admin for `sync`), so the
//! one-sync-per-install rule and the credentials' sealing hold as for any client.

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::reportln;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Running, last success, last error, counts per entity, records parked, recent conflicts and refusals.
    Status(Target),
    /// Pull the outside API's changes now; prints the status once it ends.
    Sync(Target),
}

#[derive(Debug, clap::Args)]
struct Target {
    /// The organisation's id.
    #[arg(long)]
    org: String,
    /// The connector app's id.
    #[arg(long)]
    app: String,
    /// The platform's URL.
    #[arg(long, env = "MNO_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A session token of a member of the org (POST /hub/v1/sessions).
    #[arg(long, env = "MNO_TOKEN", hide_env_values = true)]
    token: String,
    /// Print the API's JSON answer instead of a summary.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> Result<()> {
    let (target, method) = match &args.command {
        Command::Status(t) => (t, reqwest::Method::GET),
        Command::Sync(t) => (t, reqwest::Method::POST),
    };
    let tail = if method == reqwest::Method::GET {
        "connector"
    } else {
        "sync"
    };
    let url = format!(
        "{}/hub/v1/orgs/{}/installs/{}/{tail}",
        target.url.trim_end_matches('/'),
        target.org,
        target.app
    );
    let response = reqwest::Client::new()
        .request(method, &url)
        .bearer_auth(&target.token)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}; is the platform up (MNO_URL)?"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let detail = body["errors"][0]["detail"].as_str().unwrap_or("no detail");
        bail!("{status}: {detail}");
    }
    if target.json {
        reportln!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    let c = &body["connector"];
    let text = |v: &Value| v.as_str().unwrap_or("never").to_owned();
    reportln!(
        "{} connector of app {} in org {}: {}",
        text(&c["connector"]),
        text(&c["app_id"]),
        text(&c["org"]),
        if c["running"] == true {
            "syncing now"
        } else {
            "idle"
        }
    );
    reportln!("  last success: {}", text(&c["last_success_at"]));
    match c["app_credentials"].as_str() {
        Some("app") => reportln!("  app credentials: those the app's owner registered"),
        Some("install") => reportln!("  app credentials: given with this install"),
        _ => {}
    }
    if let Some(error) = c["last_error"].as_str() {
        reportln!(
            "  last error ({}, {} failure(s) in a row): {error}",
            text(&c["last_error_at"]),
            c["failures"]
        );
    }
    for e in c["entities"].as_array().into_iter().flatten() {
        reportln!(
            "  {:<16} {:<12} pulled {:>6}  pushed {:>6}  conflicts {:>4}  rejected {:>4}",
            text(&e["entity"]),
            text(&e["direction"]),
            e["pulled"],
            e["pushed"],
            e["conflicts"],
            e["rejected"]
        );
    }
    for p in c["parked"].as_array().into_iter().flatten() {
        reportln!(
            "  parked {} {} (since {}, {} sync(s)): {}",
            text(&p["entity"]),
            text(&p["record"]),
            text(&p["since"]),
            p["passes"],
            text(&p["reason"])
        );
    }
    for entry in c["recent"].as_array().into_iter().flatten() {
        reportln!(
            "  {} {} {} {}: {}",
            text(&entry["at"]),
            text(&entry["kind"]),
            text(&entry["entity"]),
            text(&entry["record"]),
            text(&entry["detail"])
        );
    }
    Ok(())
}
