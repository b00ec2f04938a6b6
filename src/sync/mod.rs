//! `nova-actions sync`: a mirror of a real Nova's action history, read through Nova's own API
//! (the same JSON Nova serves; no database credentials), that keeps what Nova later archives.
//!
//! A pass reads the servers changed since the watermark (Nova's `changes-since` on servers also
//! lists deleted ones) and every live server, then each one's actions changed since the
//! watermark (following `links`), shows each of those for its events, and stores each server
//! with its changed actions as one import (idempotent: stored actions are matched by start time
//! and request id and replaced in place). The watermark, the time the pass started, is written
//! only once everything the pass read is durable, and the next pass reads from `overlap` before
//! it: a crash re-reads at most a pass and an overlap, and skips nothing.

pub mod mapping;
pub mod status;
pub mod upstream;

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::config::SyncConfig;
use crate::model::{Action, Event, Server, ServerHistory};
use crate::pytext::urlencode;
use crate::store::{Store, StoreError};
use crate::timeutil::{Micros, format_micros, now_micros};
use status::SyncStatus;
use upstream::{Upstream, UpstreamError};

/// Where the store keeps the watermark: the start of the last complete pass (UTC microseconds).
pub const WATERMARK: &str = "sync.watermark";
/// Where the store keeps the actions to show again: `[[server, request_id], ...]`, those with an
/// unfinished event when last read. Nova does not move an action's `updated_at` when an event
/// arrives without a matching request id, so `changes-since` alone would never see it finish.
pub const UNFINISHED: &str = "sync.unfinished";
/// Where the store keeps the start of the last pass that read every live server's actions.
pub const SWEPT: &str = "sync.swept";
/// Where the store keeps how far the pass under way got (a [`Checkpoint`]), so that a pass
/// interrupted by a crash or a restart (a big cloud's first pass can take hours) goes on from
/// there instead of starting over.
pub const CHECKPOINT: &str = "sync.checkpoint";

/// How far a pass got: every server up to `through` (in id order) is stored and durable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// The pass's start: its watermark once complete.
    pub started: Micros,
    pub sweep: bool,
    /// A server id, hyphenated.
    pub through: String,
    /// Actions seen unfinished so far: `(server, request_id)`.
    pub unfinished: Vec<(String, String)>,
}

/// A checkpoint is written after this many servers, or this long, whichever comes first.
const CHECKPOINT_SERVERS: u64 = 100;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

/// Why a pass stopped.
#[derive(Debug)]
pub enum SyncError {
    Upstream(UpstreamError),
    Store(StoreError),
    /// Nova answered something this mirror cannot read.
    Unreadable(String),
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::Upstream(e) => write!(f, "upstream: {e}"),
            SyncError::Store(e) => write!(f, "store: {e}"),
            SyncError::Unreadable(why) => write!(f, "upstream answer: {why}"),
        }
    }
}

impl SyncError {
    /// The cause, as a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            SyncError::Upstream(UpstreamError::Config(_)) => "config",
            SyncError::Upstream(UpstreamError::Transport { .. }) => "transport",
            SyncError::Upstream(e) => match e.status() {
                Some(401) => "unauthorized",
                Some(403) => "forbidden",
                Some(429) => "rate_limited",
                Some(500..) => "upstream_5xx",
                _ => "upstream_status",
            },
            SyncError::Store(_) => "store",
            SyncError::Unreadable(_) => "unreadable",
        }
    }
}

impl From<UpstreamError> for SyncError {
    fn from(e: UpstreamError) -> Self {
        SyncError::Upstream(e)
    }
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        SyncError::Store(e)
    }
}

impl From<mapping::Unreadable> for SyncError {
    fn from(e: mapping::Unreadable) -> Self {
        SyncError::Unreadable(e.0)
    }
}

/// What one pass copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub servers: u64,
    pub actions: u64,
    pub events: u64,
    /// Requests sent upstream (Nova and Keystone), retries included.
    pub requests: u64,
}

/// Runs passes every `interval` until the process stops; with `once`, one pass. Errors are
/// logged one line each and retried with backoff; `once` returns the pass's error instead.
pub async fn run(
    store: Arc<Store>,
    config: SyncConfig,
    once: bool,
    status: Arc<SyncStatus>,
) -> Result<PassReport, SyncError> {
    let mut failures = 0u32;
    // Kept between passes (one Keystone token for as long as it is accepted); dropped after a
    // failure, so that the next attempt authenticates and negotiates afresh.
    let mut upstream: Option<Rc<Upstream>> = None;
    loop {
        let started = std::time::Instant::now();
        let sent_before = status.snapshot().requests_sent();
        let mut outcome = connected_pass(&store, &config, &status, &mut upstream).await;
        if let Ok(report) = &mut outcome {
            report.requests = status.snapshot().requests_sent() - sent_before;
        }
        let elapsed = started.elapsed();
        record(&status, &outcome, elapsed);
        match (&outcome, once) {
            (_, true) => return outcome,
            (Ok(report), false) => {
                failures = 0;
                log::info!(
                    "sync pass done in {:.1} s: {} servers, {} actions, {} events copied; {} upstream requests",
                    elapsed.as_secs_f64(),
                    report.servers,
                    report.actions,
                    report.events,
                    report.requests
                );
                let rest = Duration::from_secs(config.interval.seconds()).saturating_sub(elapsed);
                actix_web::rt::time::sleep(rest).await;
            }
            (Err(e), false) => {
                upstream = None;
                failures += 1;
                let wait = backoff(failures, config.interval.seconds());
                log::warn!("sync pass failed (retrying in {} s): {e}", wait.as_secs());
                actix_web::rt::time::sleep(wait).await;
            }
        }
    }
}

fn record(status: &SyncStatus, outcome: &Result<PassReport, SyncError>, elapsed: Duration) {
    status.update(|s| {
        s.pass_done = 0;
        s.pass_total = 0;
        match outcome {
            Ok(report) => {
                s.passes_ok += 1;
                s.last_success = Some(now_micros());
                s.last_pass_seconds = elapsed.as_secs_f64();
                s.servers += report.servers;
                s.actions += report.actions;
                s.events += report.events;
            }
            Err(e) => {
                s.passes_failed += 1;
                *s.errors.entry(e.kind()).or_default() += 1;
            }
        }
    });
}

/// Exponential backoff from 1 s, capped at the poll interval (at least 1 s), with jitter.
fn backoff(failures: u32, interval: u64) -> Duration {
    let cap = interval.max(1);
    let base = 1u64
        .checked_shl(failures.min(20))
        .unwrap_or(u64::MAX)
        .min(cap);
    let jitter = (now_micros().unsigned_abs() % 1000) as f64 / 1000.0;
    Duration::from_secs_f64(base as f64 * (0.5 + jitter / 2.0))
}

async fn connected_pass(
    store: &Arc<Store>,
    config: &SyncConfig,
    status: &Arc<SyncStatus>,
    upstream: &mut Option<Rc<Upstream>>,
) -> Result<PassReport, SyncError> {
    let upstream = match upstream {
        Some(u) => Rc::clone(u),
        None => {
            let connected = Rc::new(Upstream::connect(config, Arc::clone(status)).await?);
            explain_version_once(connected.minor());
            status.update(|s| s.microversion.clone_from(&connected.version));
            upstream.insert(connected).clone()
        }
    };
    let seconds = |span: crate::config::Span| {
        i64::try_from(span.seconds())
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000)
    };
    let plan = Plan {
        overlap: seconds(config.overlap),
        sweep_every: seconds(config.sweep_interval),
        concurrency: config.concurrency.max(1),
    };
    pass(store, &upstream, &plan, status).await
}

/// What an old upstream cannot give, said once per process.
fn explain_version_once(minor: u32) {
    static BELOW_58: std::sync::Once = std::sync::Once::new();
    static BELOW_21: std::sync::Once = std::sync::Once::new();
    if minor < 58 {
        BELOW_58.call_once(|| {
            log::warn!(
                "sync: the upstream speaks up to 2.{minor}; below 2.58 actions have no \
                 changes-since, so each changed server's whole action list is read every pass \
                 (actions already mirrored with all events finished are not shown again)"
            );
        });
    }
    if minor < 21 {
        BELOW_21.call_once(|| {
            log::warn!(
                "sync: the upstream speaks up to 2.{minor}; below 2.21 a deleted server's \
                 actions cannot be read, so the mirror keeps what it copied before the deletion"
            );
        });
    }
}

/// How a pass reads.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// How far before the watermark a pass reads again (microseconds).
    pub overlap: Micros,
    /// How often a pass reads every live server's actions (microseconds; 0: every pass).
    pub sweep_every: Micros,
    /// Upstream requests in flight at once.
    pub concurrency: usize,
}

/// One pass; see the module comment.
pub async fn pass(
    store: &Arc<Store>,
    upstream: &Rc<Upstream>,
    plan: &Plan,
    status: &SyncStatus,
) -> Result<PassReport, SyncError> {
    let resumed = read_checkpoint(store).await?;
    let started = resumed.as_ref().map_or_else(now_micros, |c| c.started);
    let stored_time = |key: &'static str| async move {
        let text = store.run(move |s| s.meta(key)).await?;
        Ok::<_, SyncError>(text.and_then(|w| w.parse::<Micros>().ok()))
    };
    let watermark = stored_time(WATERMARK).await?;
    // A store mirrored before sweeps existed read every live server at every pass.
    let swept = stored_time(SWEPT).await?.or(watermark);
    let since = watermark.map(|w| w.saturating_sub(plan.overlap));
    let sweep = match &resumed {
        Some(c) => c.sweep,
        None => swept.is_none_or(|t| started.saturating_sub(t) >= plan.sweep_every),
    };
    let mut servers = BTreeMap::new();
    // From the epoch on the first pass: `changes-since` is what lists deleted servers too.
    let since_text = format!("{}Z", format_micros(since.unwrap_or(0)));
    let changed = format!(
        "/servers/detail?{}",
        urlencode(&[("all_tenants", "1"), ("changes-since", &since_text)])
    );
    collect_servers(upstream, &changed, &mut servers).await?;
    // Actions are read from the watermark, or on a sweep from the last sweep: an action Nova
    // recorded without touching its server since then is found only this way.
    let actions_since = if sweep {
        swept.map(|t| t.saturating_sub(plan.overlap))
    } else {
        since
    };
    if sweep {
        // Also on the first pass: a server with neither an update nor a creation time (an
        // upstream that is itself fed by imports) passes no `changes-since`.
        collect_servers(upstream, "/servers/detail?all_tenants=1", &mut servers).await?;
    }
    let mut recheck = unfinished_by_server(store).await?;
    // A server with actions to re-read that no listing returned keeps its stored record.
    for id in recheck.keys() {
        if !servers.contains_key(id) {
            let id = *id;
            if let Some(stored) = store.run(move |s| s.server(&id)).await? {
                servers.insert(id, stored);
            }
        }
    }
    let total = servers.len();
    let through = match resumed.as_ref() {
        Some(c) => Some(Uuid::parse_str(&c.through).map_err(|e| corrupt(CHECKPOINT, e))?),
        None => None,
    };
    let mut unfinished = resumed.map(|c| c.unfinished).unwrap_or_default();
    let mut done = 0u64;
    if let Some(through) = through {
        // Those stored before the interruption; anything changed since is after `started`,
        // and the next pass reads it.
        servers.retain(|id, _| *id > through);
        done = (total - servers.len()) as u64;
        log::info!("sync: resuming the interrupted pass: {done} of {total} servers were read");
    }
    status.update(|s| {
        s.pass_total = total as u64;
        s.pass_done = done;
    });
    let mut report = PassReport::default();
    let mut last_progress = std::time::Instant::now();
    let mut last_checkpoint = (std::time::Instant::now(), done);
    for (id, server) in servers {
        let mut actions = changed_actions(store, upstream, &id, actions_since, plan).await?;
        let again = recheck.remove(&id).unwrap_or_default();
        let missing: Vec<String> = again
            .into_iter()
            .filter(|rid| !actions.iter().any(|(a, _)| a.request_id == *rid))
            .collect();
        actions.extend(shown_again(upstream, &id, &missing, plan.concurrency).await?);
        unfinished.extend(
            actions
                .iter()
                .filter(|(_, events)| events.iter().any(|e| e.finish_time.is_none()))
                .map(|(a, _)| (id.hyphenated().to_string(), a.request_id.clone())),
        );
        if last_progress.elapsed() >= Duration::from_secs(10) {
            log::info!("sync: {done} of {total} servers read");
            last_progress = std::time::Instant::now();
        }
        done += 1;
        report.servers += 1;
        status.update(|s| s.pass_done = done);
        report.actions += actions.len() as u64;
        report.events += actions.iter().map(|(_, e)| e.len() as u64).sum::<u64>();
        let history = ServerHistory {
            uuid: id,
            server,
            actions,
        };
        store
            .run(move |s| {
                s.import_server(&history)?;
                s.durable()
            })
            .await?;
        if done - last_checkpoint.1 >= CHECKPOINT_SERVERS
            || last_checkpoint.0.elapsed() >= CHECKPOINT_EVERY
        {
            let checkpoint = Checkpoint {
                started,
                sweep,
                through: id.hyphenated().to_string(),
                unfinished: unfinished.clone(),
            };
            let text = serde_json::to_string(&checkpoint).expect("a checkpoint serializes");
            // Durable with the next server's import, or the end of the pass: lost, it only
            // means reading more again.
            store.run(move |s| s.set_meta(CHECKPOINT, &text)).await?;
            last_checkpoint = (std::time::Instant::now(), done);
        }
    }
    let unfinished = serde_json::to_string(&unfinished).expect("strings serialize");
    store
        .run(move |s| {
            s.set_meta(UNFINISHED, &unfinished)?;
            s.set_meta(CHECKPOINT, "")?;
            if sweep {
                s.set_meta(SWEPT, &started.to_string())?;
            }
            s.set_meta(WATERMARK, &started.to_string())?;
            s.durable()
        })
        .await?;
    Ok(report)
}

/// A named value of the mirror's that the store holds but that does not read back.
fn corrupt(key: &str, why: impl std::fmt::Display) -> SyncError {
    SyncError::Store(StoreError::Corrupt(format!("{key}: {why}")))
}

/// The checkpoint of an interrupted pass, if one was left.
async fn read_checkpoint(store: &Arc<Store>) -> Result<Option<Checkpoint>, SyncError> {
    let text = store.run(|s| s.meta(CHECKPOINT)).await?;
    match text.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => serde_json::from_str(text)
            .map(Some)
            .map_err(|e| corrupt(CHECKPOINT, e)),
    }
}

/// The actions to show again, by server.
async fn unfinished_by_server(
    store: &Arc<Store>,
) -> Result<BTreeMap<Uuid, Vec<String>>, SyncError> {
    let text = store.run(|s| s.meta(UNFINISHED)).await?;
    let listed: Vec<(String, String)> = match text {
        Some(text) => serde_json::from_str(&text).map_err(|e| corrupt(UNFINISHED, e))?,
        None => Vec::new(),
    };
    let mut by_server: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for (id, rid) in listed {
        let id = Uuid::parse_str(&id).map_err(|e| corrupt(UNFINISHED, e))?;
        by_server.entry(id).or_default().push(rid);
    }
    Ok(by_server)
}

/// These actions of a server, shown again (those Nova no longer has are left as stored).
async fn shown_again(
    upstream: &Rc<Upstream>,
    id: &Uuid,
    request_ids: &[String],
    concurrency: usize,
) -> Result<Vec<(Action, Vec<Event>)>, SyncError> {
    let base = format!("/servers/{id}/os-instance-actions");
    show_all(upstream, &base, request_ids, concurrency).await
}

/// Every server of a listing, following `servers_links`.
async fn collect_servers(
    upstream: &Upstream,
    first: &str,
    into: &mut BTreeMap<Uuid, Server>,
) -> Result<(), SyncError> {
    let mut next = Some(first.to_string());
    while let Some(page) = next.take() {
        let doc = upstream.get(&page).await?;
        for item in doc["servers"].as_array().into_iter().flatten() {
            let (id, server) = mapping::server(item)?;
            into.insert(id, server);
        }
        next = next_link(&doc["servers_links"]);
    }
    Ok(())
}

fn next_link(links: &Value) -> Option<String> {
    links
        .as_array()?
        .iter()
        .find(|l| l["rel"] == "next")
        .and_then(|l| l["href"].as_str())
        .map(str::to_string)
}

/// A server's actions changed since `since` (all of them when None), oldest first, each with
/// its events, shown `concurrency` at a time.
async fn changed_actions(
    store: &Arc<Store>,
    upstream: &Rc<Upstream>,
    id: &Uuid,
    since: Option<Micros>,
    plan: &Plan,
) -> Result<Vec<(Action, Vec<Event>)>, SyncError> {
    let base = format!("/servers/{id}/os-instance-actions");
    let paged = upstream.minor() >= 58;
    let mut next = Some(match (since, paged) {
        (Some(t), true) => format!(
            "{base}?{}",
            urlencode(&[("changes-since", &format!("{}Z", format_micros(t)))])
        ),
        _ => base.clone(),
    });
    let mut request_ids = Vec::new();
    while let Some(page) = next.take() {
        let doc = match upstream.get(&page).await {
            // The server vanished upstream mid-pass: keep what the mirror has.
            Err(e) if e.status() == Some(404) => return Ok(Vec::new()),
            other => other?,
        };
        for item in doc["instanceActions"].as_array().into_iter().flatten() {
            if let Some(rid) = item["request_id"].as_str() {
                request_ids.push(rid.to_string());
            }
        }
        next = if paged {
            next_link(&doc["links"])
        } else {
            None
        };
    }
    if !paged && since.is_some() {
        request_ids = not_yet_complete(store, id, request_ids).await?;
    }
    let mut actions = show_all(upstream, &base, &request_ids, plan.concurrency).await?;
    // Nova lists newest first; a server's history is stored in recording order.
    actions.reverse();
    Ok(actions)
}

/// Without `changes-since` (below 2.58) every action is listed at every pass: those already
/// mirrored with all their events finished are not shown again.
async fn not_yet_complete(
    store: &Arc<Store>,
    id: &Uuid,
    request_ids: Vec<String>,
) -> Result<Vec<String>, SyncError> {
    let id = *id;
    let kept = store
        .run(move |s| {
            let mut kept = Vec::new();
            for rid in request_ids {
                let complete = s.show(&id, &rid, true)?.is_some_and(|(_, events)| {
                    !events.is_empty() && events.iter().all(|e| e.finish_time.is_some())
                });
                if !complete {
                    kept.push(rid);
                }
            }
            Ok(kept)
        })
        .await?;
    Ok(kept)
}

/// Each action shown, `concurrency` at a time, in the order given; those Nova no longer has
/// (404) are left out.
async fn show_all(
    upstream: &Rc<Upstream>,
    base: &str,
    request_ids: &[String],
    concurrency: usize,
) -> Result<Vec<(Action, Vec<Event>)>, SyncError> {
    let gate = Rc::new(tokio::sync::Semaphore::new(concurrency));
    let shows: Vec<_> = request_ids
        .iter()
        .map(|rid| {
            let (upstream, gate) = (Rc::clone(upstream), Rc::clone(&gate));
            let path = format!("{base}/{}", crate::pytext::quote_path(rid));
            actix_web::rt::spawn(async move {
                let _turn = gate.acquire().await;
                upstream.get(&path).await
            })
        })
        .collect();
    let mut actions = Vec::with_capacity(shows.len());
    for show in shows {
        let doc = match show.await {
            Ok(Ok(doc)) => doc,
            Ok(Err(e)) if e.status() == Some(404) => continue,
            Ok(Err(e)) => return Err(e.into()),
            Err(e) => return Err(SyncError::Unreadable(format!("a show task failed: {e}"))),
        };
        actions.push(mapping::action(&doc["instanceAction"])?);
    }
    Ok(actions)
}
