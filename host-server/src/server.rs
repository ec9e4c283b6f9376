//! `perpetua serve`: opens the store (taking the writer lease), starts the command processor
//! and the projector, and serves the HTTP API and the audit viewer. With `--standby`, a
//! second server waits for the lease instead of refusing to start: it listens at once and
//! answers `503 STANDBY` (readiness: not ready) until the active writer dies or loses its
//! database session, then takes the lease over — bumping the writer epoch, which fences the
//! old writer's commits — loads the engine from snapshot and tail, and serves.

use crate::checkpoints::Signer;
use crate::db::Db;
use crate::feed::Source;
use crate::http::{self, AppState, Role, Serving, User};
use crate::listener::{self, ConnectionLimits};
use crate::metrics::Metrics;
use crate::processor::{self, LeaseState, ProcessorOptions};
use crate::projector::{Projector, ProjectorLease};
use crate::store::{CommandAppend, Store, StoreError, WriterLease};
use perpetua_core::event::Event;
use perpetua_core::ids::UserId;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often the writer checks that it still holds its lease, between commits (each commit
/// checks it too, under the head's lock).
const LEASE_CHECK_EVERY: Duration = Duration::from_millis(500);

/// What `serve` needs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Where to listen: `host:port`, the host a name or an address (`localhost:8080`,
    /// `0.0.0.0:8080`, `[::1]:8080`; port 0 picks a free one).
    pub listen: String,
    /// Fill an empty store with the demo story and its users.
    pub demo: bool,
    /// Where the audit viewer's files come from.
    pub viewer: http::Viewer,
    /// Origins browser clients may call the API from.
    pub cors: http::Cors,
    /// Requests per second per token (0: no limit).
    pub rate_limit_per_token: u32,
    /// The processor's settings.
    pub processor: ProcessorOptions,
    /// Bounds on client connections, and on the drain at shutdown.
    pub limits: ConnectionLimits,
    /// The admin's token (`PERPETUA_ADMIN_TOKEN`); without one, a first start makes one and
    /// prints it once.
    pub admin_token: Option<String>,
    /// Wait for the writer lease (a hot standby) instead of failing while another writer
    /// holds it.
    pub standby: bool,
    /// All in one, or one part of it (`--role writer|projector|query`).
    pub serving: Serving,
    /// A projector (`--role projector`) reads the log from the relay's NATS stream instead
    /// of the store.
    pub nats: Option<crate::relay::RelayOptions>,
    /// The read models' database when it is not the log's (`--read-models-url`): where a
    /// projector writes them, and where writers and query servers read them.
    pub read_models_url: Option<String>,
    /// How a writer signs checkpoints of the log's head.
    pub checkpoints: crate::checkpoints::CheckpointOptions,
}

/// The read models' database: the log's, or `options.read_models_url` (PostgreSQL or MariaDB),
/// given the store's schema first (its log tables stay empty there; the read models'
/// registry is part of it). With it, the store whose database holds them: the projector
/// lease is taken there, so it guards the read models wherever they are.
async fn read_models_db(store: &Store, options: &ServeOptions) -> Result<(Db, Store), String> {
    let Some(url) = &options.read_models_url else {
        return Ok((Db::open(store.url(), 8).await.map_err(fail)?, store.clone()));
    };
    if crate::store::Backend::of_url(url).map_err(fail)? == crate::store::Backend::Sqlite {
        return Err("--read-models-url takes a PostgreSQL or MariaDB URL (on SQLite the read models have their own \
                    file already)"
            .into());
    }
    let holder = Store::open(&crate::store::StoreOptions::new(url)).await.map_err(fail)?;
    Ok((Db::open(url, 8).await.map_err(fail)?, holder))
}

/// How often a standby tries to take the writer lease. Each try is one short database
/// session; a writer that died is replaced within this, plus the database noticing.
const STANDBY_POLL: Duration = Duration::from_millis(100);

fn fail(e: StoreError) -> String {
    format!("{e} ({})", e.code())
}

/// Makes sure an admin can log in: with `PERPETUA_ADMIN_TOKEN`, a user holding that token;
/// otherwise, on first start (no admin yet), a generated token printed once.
async fn bootstrap_admin(db: &Db, admin_token: Option<&str>) -> Result<(), String> {
    if let Some(token) = admin_token {
        let token = token.trim().to_owned();
        if token.len() < 16 {
            return Err("PERPETUA_ADMIN_TOKEN must be at least 16 characters".into());
        }
        let held = db.fetch("SELECT role FROM users WHERE token_hash = ?", &[http::token_digest(&token).into()]).await;
        match held.map_err(fail)?.first() {
            Some(row) if crate::db::text(row, 0) == "admin" => {}
            Some(_) => return Err("PERPETUA_ADMIN_TOKEN is the token of a user who is not an admin".into()),
            None => {
                let admin = User {
                    user_id: UserId(uuid::Uuid::new_v4()),
                    name: "admin".into(),
                    role: Role::Admin,
                    account_id: None,
                };
                http::insert_user(db, &admin, &token, crate::now_ms()).await.map_err(fail)?;
                tracing::info!("admin user created with the token from PERPETUA_ADMIN_TOKEN");
            }
        }
        return Ok(());
    }
    let admins = db.fetch("SELECT user_id FROM users WHERE role = 'admin'", &[]).await.map_err(fail)?;
    if admins.is_empty() {
        let token = http::new_token();
        let admin =
            User { user_id: UserId(uuid::Uuid::new_v4()), name: "admin".into(), role: Role::Admin, account_id: None };
        http::insert_user(db, &admin, &token, crate::now_ms()).await.map_err(fail)?;
        println!("perpetua: first start: admin token (shown once, keep it): {token}");
    }
    Ok(())
}

/// Appends the demo story to an empty store and creates a user with a token for each of its
/// traders, plus an auditor; prints the tokens (once).
async fn load_demo(store: &Store, db: &Db) -> Result<(), String> {
    if store.head().await.map_err(fail)?.last_position > 0 {
        tracing::info!("--demo: the store already holds events; demo data not added");
        return Ok(());
    }
    let (_, events) = perpetua_core::demo::sealed_log();
    for chunk in CommandAppend::per_command(events.iter().cloned()).chunks(500) {
        store.append(chunk).await.map_err(fail)?;
    }
    let mut names = perpetua_core::demo::TRADERS.iter();
    println!("perpetua: demo data: {} events; tokens (shown once):", events.len());
    for event in &events {
        let Ok(envelope) = event.decode() else { continue };
        let Event::AccountCreated(created) = &envelope.event else { continue };
        if created.kind != perpetua_core::types::AccountKind::Trader {
            continue;
        }
        let name = names.next().copied().unwrap_or("trader");
        let user = User {
            user_id: created.user_id,
            name: name.into(),
            role: Role::Trader,
            account_id: Some(created.account_id),
        };
        let token = http::new_token();
        http::insert_user(db, &user, &token, crate::now_ms()).await.map_err(fail)?;
        println!("  trader  {name:<8} account {}  token {token}", created.account_id);
    }
    let auditor =
        User { user_id: UserId(uuid::Uuid::new_v4()), name: "auditor".into(), role: Role::Auditor, account_id: None };
    let token = http::new_token();
    http::insert_user(db, &auditor, &token, crate::now_ms()).await.map_err(fail)?;
    println!("  auditor                                                  token {token}");
    Ok(())
}

/// Lists the default markets on an empty store (the log's first command).
async fn genesis(processor: &processor::ProcessorHandle) -> Result<(), String> {
    let command = perpetua_core::Command::Genesis { markets: perpetua_core::market::spec::default_markets() };
    match processor.submit(command, Default::default(), None).await {
        Ok(processor::Outcome::Done { position, .. }) => {
            tracing::info!(position, "empty store: default markets listed (genesis)");
            Ok(())
        }
        Ok(processor::Outcome::Refused(e)) => Err(format!("genesis refused: {e}")),
        Ok(processor::Outcome::Reply { .. }) => Err("genesis answered from an idempotency record".into()),
        Err(e) => Err(format!("genesis failed: {e}")),
    }
}

/// Checks a lease every [`LEASE_CHECK_EVERY`] until it is lost, then records why in
/// `state`: the writer lease through `store` (its lock and the writer epoch), or without a
/// store a lock only (the projector lease: a page written after its lock was lost is refused
/// by the projector epoch anyway, once another projector has taken the lease). A database
/// that cannot be asked is not a lost lease (the next commit checks it anyway); a session
/// that is gone, or an epoch that moved, is.
/// Returns the lease when `stop` fires (the server shuts down) or once it is lost.
async fn monitor_lease(
    store: Option<Store>,
    mut lease: WriterLease,
    state: LeaseState,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> WriterLease {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(LEASE_CHECK_EVERY) => {}
            _ = &mut stop => return lease,
        }
        // (A lock session that hangs counts as lost: see store::check_lock.)
        let checked = match &store {
            Some(store) => store.check_lease(&mut lease).await,
            None => crate::store::check_lock(&mut lease).await,
        };
        match checked {
            Ok(()) => {}
            Err(e @ StoreError::LeaseLost(_)) => {
                state.lose(if store.is_some() { e.to_string() } else { format!("the projector lease: {e}") });
                return lease;
            }
            Err(e) => tracing::warn!(error = %e, "the lease could not be checked; checking again"),
        }
    }
}

/// Waits for SIGINT or SIGTERM.
pub async fn interrupted() -> &'static str {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match terminate.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = interrupt => "SIGINT",
        () = terminated => "SIGTERM",
    }
}

/// Ends the process if the drain has not finished `grace` after its bound: whatever a client
/// or the database does, the server is gone within the bound it promised (the lease is a
/// lock the operating system lets go with the process).
/// Longest the lease's monitor, then its release, may take once the drain is over.
const LEASE_RELEASE_TIMEOUT: Duration = Duration::from_millis(750);

fn watchdog(bound: Duration) {
    // Longer than the lease's release after the deadline (twice LEASE_RELEASE_TIMEOUT at most).
    const GRACE: Duration = Duration::from_secs(2);
    std::thread::spawn(move || {
        std::thread::sleep(bound + GRACE);
        tracing::error!("the drain took longer than {bound:?}; exiting now");
        std::process::exit(3);
    });
}

/// A server assembled but not yet listening: its router and the parts its shutdown drains.
pub struct Started {
    /// The HTTP API and the viewer, ready to serve.
    pub app: axum::Router,
    /// The single writer.
    pub processor: processor::ProcessorHandle,
    /// The read models' projector.
    pub projector: crate::projector::ProjectorHandle,
    /// Whether this writer still holds its lease.
    pub lease: LeaseState,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Set to true to drain: live streams end with a final message, readiness says no.
    pub drain: tokio::sync::watch::Sender<bool>,
    /// The monitors of the leases it holds (the writer's, the projector's, both, or none on
    /// a query server).
    monitors: Vec<Monitor>,
}

/// A lease's monitor task (it returns the lease when told to stop) and how to stop it.
type Monitor = (tokio::task::JoinHandle<WriterLease>, tokio::sync::oneshot::Sender<()>);

/// Starts [`monitor_lease`] on `lease` (through `store` for the writer lease).
fn monitor(store: Option<Store>, lease: WriterLease, state: &LeaseState) -> Monitor {
    let (stop_monitor, stop) = tokio::sync::oneshot::channel();
    (tokio::spawn(monitor_lease(store, lease, state.clone(), stop)), stop_monitor)
}

impl Started {
    /// Stops the leases' monitors and gives the leases back (each step bounded).
    pub async fn release_lease(self) {
        for (monitor, stop_monitor) in self.monitors {
            let _ = stop_monitor.send(());
            match tokio::time::timeout(LEASE_RELEASE_TIMEOUT, monitor).await {
                Ok(Ok(lease)) => {
                    if tokio::time::timeout(LEASE_RELEASE_TIMEOUT, lease.release()).await.is_err() {
                        tracing::warn!("a lease was not released in time; it expires on its own");
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "a lease monitor ended abnormally"),
                Err(_) => tracing::warn!("a lease monitor did not stop in time; the lease expires on its own"),
            }
        }
        self.metrics.writer_lease_held.set(0);
    }
}

/// Assembles a server on `store`: takes the writer lease, makes sure an admin exists (and the
/// demo story, if asked), starts the processor and the projector, and builds the router. The
/// in-process tests drive the router it returns; [`serve`] puts it behind a listener.
pub async fn start(store: Store, options: &ServeOptions) -> Result<Started, String> {
    let lease = store.acquire_writer_lease().await.map_err(fail)?;
    start_holding(store, lease, options).await
}

/// How often a query server reads the log's head and the read models' state.
const FOLLOW_POLL: Duration = Duration::from_millis(10);

/// Assembles a query server (`--role query`): no lease, no processor, no projector; the
/// query and audit routes over the read models and the log that a writer and its projector
/// (other processes) keep, `minPosition` waiting for that projector (its checkpoint, read
/// every [`FOLLOW_POLL`]). Command routes and live streams answer 421 `WRONG_ROLE`.
pub async fn start_query(store: Store, options: &ServeOptions) -> Result<Started, String> {
    let db = Db::open(store.url(), 8).await.map_err(fail)?;
    let (read_models, _) = read_models_db(&store, options).await?;
    let metrics = Arc::new(Metrics::default());
    let processor = processor::follow(store.clone(), FOLLOW_POLL).await.map_err(fail)?;
    let projector = crate::projector::ProjectorHandle::follow(read_models.clone(), FOLLOW_POLL).await.map_err(fail)?;
    // Its metrics show the positions it follows, as a writer's show its own.
    let (mut head, mut projection, gauges) = (processor.head(), projector.state.clone(), metrics.clone());
    tokio::spawn(async move {
        use crate::metrics::SetPosition as _;
        loop {
            gauges.log_head.set_position(head.borrow_and_update().position);
            gauges.projection_position.set_position(projection.borrow_and_update().position);
            let changed = tokio::select! {
                changed = head.changed() => changed,
                changed = projection.changed() => changed,
            };
            if changed.is_err() {
                break;
            }
        }
    });
    let parts =
        Parts { store, db, read_models, processor, projector, metrics, lease: LeaseState::default(), signer: None };
    assemble(parts, Serving::Query, Vec::new(), options).await
}

/// How long a writer waits for the projector lease (the process it took over from may hold
/// it a moment longer, until it notices it lost the writer lease and stops).
const PROJECTOR_LEASE_WAIT: Duration = Duration::from_secs(10);

/// Takes the projector lease, trying again every 100 ms while another process holds it, for
/// at most `wait` (`None`: until it is free, as a projector standing by does).
async fn wait_for_projector_lease(store: &Store, db: &Db, wait: Option<Duration>) -> Result<ProjectorLease, String> {
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        match crate::projector::take_lease(store, db).await {
            Ok(lease) => return Ok(lease),
            Err(StoreError::ProjectorLeaseHeld(holder)) => {
                if wait.is_some_and(|wait| started.elapsed() >= wait) {
                    return Err(fail(StoreError::ProjectorLeaseHeld(holder)));
                }
                if !said {
                    tracing::info!(%holder, "another process holds the projector lease; waiting for it");
                    said = true;
                }
                tokio::time::sleep(STANDBY_POLL).await;
            }
            Err(e) => return Err(fail(e)),
        }
    }
}

/// Assembles a projector (`--role projector`): takes the projector lease (waiting for it
/// while another projector holds it), follows the log's head — the store's, or with
/// `options.nats` the relay's stream's — and writes the read models into the database of
/// `store`, which with NATS need not be the log's. It serves the probes, the metrics, the
/// market streams and the admin's rebuilds; every other route answers 421 `WRONG_ROLE`.
pub async fn start_projector(store: Store, options: &ServeOptions) -> Result<Started, String> {
    let db = Db::open(store.url(), 8).await.map_err(fail)?;
    let (read_models, holder) = read_models_db(&store, options).await?;
    let metrics = Arc::new(Metrics::default());
    let lease = wait_for_projector_lease(&holder, &read_models, None).await?;
    let (source, processor) = match &options.nats {
        Some(nats) => {
            let feed = crate::feed::NatsFeed::connect(nats.clone()).await?;
            let head = feed.follow_head(FOLLOW_POLL).await?;
            (Source::Nats(feed), processor::following(head))
        }
        None => (Source::Store(store.clone()), processor::follow(store.clone(), FOLLOW_POLL).await.map_err(fail)?),
    };
    let projector =
        Projector::open(source, read_models.clone(), metrics.clone(), Some(&lease)).await.map_err(|e| e.to_string())?;
    let projector = projector.spawn(processor.head());
    let (mut head, gauges) = (processor.head(), metrics.clone());
    tokio::spawn(async move {
        use crate::metrics::SetPosition as _;
        loop {
            gauges.log_head.set_position(head.borrow_and_update().position);
            if head.changed().await.is_err() {
                break;
            }
        }
    });
    let lease_state = LeaseState::default();
    let monitors = vec![monitor(None, lease.lock, &lease_state)];
    let parts = Parts { store, db, read_models, processor, projector, metrics, lease: lease_state, signer: None };
    assemble(parts, Serving::Projector, monitors, options).await
}

/// What a server is assembled from.
struct Parts {
    store: Store,
    db: Db,
    read_models: Db,
    processor: processor::ProcessorHandle,
    projector: crate::projector::ProjectorHandle,
    metrics: Arc<Metrics>,
    lease: LeaseState,
    /// The writer's checkpoint signer (with the Merkle tree it shares with the audit routes).
    signer: Option<Arc<Signer>>,
}

/// The router over `parts` (with the users loaded), and the server that drains them.
async fn assemble(
    parts: Parts,
    serving: Serving,
    monitors: Vec<Monitor>,
    options: &ServeOptions,
) -> Result<Started, String> {
    let Parts { store, db, read_models, processor, projector, metrics, lease, signer } = parts;
    let users = http::load_users(&db).await.map_err(fail)?;
    let (drain, draining) = tokio::sync::watch::channel(false);
    let state = AppState::new(http::AppParts {
        store,
        db,
        read_models,
        processor: processor.clone(),
        projector: projector.clone(),
        metrics: metrics.clone(),
        users: Arc::new(RwLock::new(users)),
        lease: lease.clone(),
        draining,
        rate_limit: Arc::new(http::RateLimit::new(options.rate_limit_per_token)),
        serving,
        audit_tree: signer.as_ref().map_or_else(Arc::default, |signer| signer.tree()),
        signer,
    });
    let app = http::router(state, options.viewer.clone(), &options.cors);
    Ok(Started { app, processor, projector, lease, metrics, drain, monitors })
}

/// [`start`] with the lease already taken (by a standby that waited for it).
async fn start_holding(store: Store, lease: WriterLease, options: &ServeOptions) -> Result<Started, String> {
    let lease_state = LeaseState::default();
    let db = Db::open(store.url(), 8).await.map_err(fail)?;
    // All in one, this process projects the read models too, under the projector lease: taken
    // first, so that a start that cannot have it changes nothing (a writer it took over from
    // may hold it a moment longer, until it notices and stops).
    let projector_lease = match options.serving {
        Serving::Writer => None,
        _ => Some(wait_for_projector_lease(&store, &db, Some(PROJECTOR_LEASE_WAIT)).await?),
    };
    bootstrap_admin(&db, options.admin_token.as_deref()).await?;
    if options.demo {
        load_demo(&store, &db).await?;
    }
    let metrics = Arc::new(Metrics::default());
    let processor = processor::start(store.clone(), metrics.clone(), options.processor.clone(), lease_state.clone())
        .await
        .map_err(|e| e.to_string())?;
    metrics.writer_lease_held.set(1);
    let mut monitors = vec![monitor(Some(store.clone()), lease, &lease_state)];
    if store.head().await.map_err(fail)?.last_position == 0 {
        genesis(&processor).await?;
    }
    // The writer alone follows the read models another process projects.
    let (read_models, _) = read_models_db(&store, options).await?;
    let projector = match projector_lease {
        None => crate::projector::ProjectorHandle::follow(read_models.clone(), FOLLOW_POLL).await.map_err(fail)?,
        Some(projector_lease) => {
            let source = Source::Store(store.clone());
            let projector = Projector::open(source, db.clone(), metrics.clone(), Some(&projector_lease))
                .await
                .map_err(|e| e.to_string())?;
            // A lost projector lease stops this server as a lost writer lease does.
            monitors.push(monitor(None, projector_lease.lock, &lease_state));
            projector.spawn(processor.head())
        }
    };
    let signer = start_signer(&store, &processor, &options.checkpoints).await?;
    let parts =
        Parts { store, db, read_models, processor, projector, metrics, lease: lease_state, signer: Some(signer) };
    assemble(parts, options.serving, monitors, options).await
}

/// The writer's checkpoint signer: its key read (or made), the newest stored checkpoint
/// found, and, unless checkpoints are signed only on demand, its periodic task started.
async fn start_signer(
    store: &Store,
    processor: &processor::ProcessorHandle,
    options: &crate::checkpoints::CheckpointOptions,
) -> Result<Arc<Signer>, String> {
    let key = match &options.key_file {
        Some(path) => crate::checkpoints::load_or_create_key(path),
        None => crate::checkpoints::new_key(),
    }
    .map_err(|e| e.to_string())?;
    let signer = Arc::new(Signer::new(key, store.clone(), Arc::default()).await.map_err(fail)?);
    match &options.key_file {
        Some(path) => tracing::info!(key_id = signer.key_id(), path = %path.display(), "signing checkpoints"),
        None => tracing::warn!(
            key_id = signer.key_id(),
            "signing checkpoints with a key made for this process only (give --signing-key to keep one)"
        ),
    }
    if let Some(every) = options.every {
        tokio::spawn(signer.clone().run(processor.head(), every));
    }
    Ok(signer)
}

/// Runs the server until interrupted, then drains within `options.limits.drain_timeout`:
/// stops accepting, ends live streams with a last message, waits for requests in progress,
/// lets queued commands commit, stops the projector at its checkpoint, releases the lease.
/// Returns an error — and so the process exits non-zero — when the writer lease is lost: the
/// server has then stopped committing already.
pub async fn serve(store: Store, options: ServeOptions) -> Result<(), String> {
    let signal = Signal::listen();
    if options.standby && matches!(options.serving, Serving::Query | Serving::Projector) {
        return Err(format!(
            "--standby is for a writer: a {} server does not take the writer lease (a second projector waits for the \
             projector lease on its own)",
            options.serving.name()
        ));
    }
    if options.read_models_url.is_some() && options.serving == Serving::All {
        return Err("--read-models-url is for the roles apart (writer, projector, query): all in one, the read \
                    models are in the log's database"
            .into());
    }
    if options.nats.is_some() && options.serving != Serving::Projector {
        return Err("--nats-url is for a projector (--role projector): it reads the log from the relay's stream".into());
    }
    let (started, listener) = if options.standby {
        let listener = bind(&options.listen).await?;
        let Some((lease, listener, answering)) = stand_by(&store, listener, &options, signal.clone()).await? else {
            return Ok(());
        };
        // The standby goes on answering STANDBY while the engine loads; a signal now stops it
        // (the lease is dropped with the start that holds it, and so released).
        let started = tokio::select! {
            started = start_holding(store.clone(), lease, &options) => started,
            signal = signal.clone().received() => {
                tracing::info!(signal, "stopping while taking over; the lease is released");
                answering.stop().await;
                return Ok(());
            }
        };
        answering.stop().await;
        (started?, listener)
    } else if options.serving == Serving::Query {
        let started = start_query(store.clone(), &options).await?;
        (started, bind(&options.listen).await?)
    } else if options.serving == Serving::Projector {
        // It may wait for the projector lease, or for the relay's stream, for as long as it
        // takes: a signal stops that wait.
        let started = tokio::select! {
            started = start_projector(store.clone(), &options) => started?,
            signal = signal.clone().received() => {
                tracing::info!(signal, "stopping before the projector started");
                return Ok(());
            }
        };
        (started, bind(&options.listen).await?)
    } else {
        let started = start(store.clone(), &options).await?;
        (started, bind(&options.listen).await?)
    };
    let viewer = options.viewer.describe();
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    // On stdout, for people and scripts: the address (tests and tools read this line).
    let role = match options.serving {
        Serving::All => String::new(),
        role => format!(" (role: {})", role.name()),
    };
    println!("perpetua: {} store{role}, listening on http://{address}", store.backend().name());
    println!("perpetua: open http://{address}/ for {viewer}; the API is described at http://{address}/openapi.json");
    tracing::info!(%address, backend = store.backend().name(), "serving");
    let bound = options.limits.drain_timeout;
    let drain_started = Arc::new(std::sync::OnceLock::new());
    let signalled = drain_started.clone();
    let drain = started.drain.clone();
    let shutdown = async move {
        let signal = signal.received().await;
        let _ = signalled.set(std::time::Instant::now());
        tracing::info!(signal, "draining (at most {bound:?})");
        watchdog(bound);
        drain.send_replace(true);
    };
    let limits = listener::raise_open_file_limit(options.limits);
    let server = listener::serve(listener, started.app.clone(), limits, shutdown);
    tokio::select! {
        served = server => served.map_err(|e| format!("server error: {e}"))?,
        reason = started.lease.wait_lost() => {
            // Every commit is fenced already; stop serving at once rather than drain.
            started.metrics.writer_lease_held.set(0);
            return Err(format!("stopping (WRITER_LEASE_LOST): {reason}"));
        }
    }
    // The HTTP side is closed (or out of time): commit what is queued, let the projector
    // write its last page, give the lease back — every step within the one deadline, so the
    // watchdog (deadline + its grace) never cuts a step short that was still in time.
    let signalled = drain_started.get().copied().unwrap_or_else(std::time::Instant::now);
    let deadline = tokio::time::Instant::from_std(signalled + bound);
    let drained = tokio::time::timeout_at(deadline, started.processor.drain()).await.is_ok();
    if !drained {
        tracing::warn!("commands still queued after the drain's bound; they were not committed");
    } else if tokio::time::timeout_at(deadline, started.projector.stopped()).await.is_err() {
        tracing::warn!(
            "the projector did not reach the head in time; it goes on from its checkpoint at the next start"
        );
    }
    started.release_lease().await;
    tracing::info!("stopped");
    Ok(())
}

async fn bind(listen: &str) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::AddrInUse => "the address is in use (is another server running?)".to_owned(),
            std::io::ErrorKind::AddrNotAvailable => "no interface of this machine has that address".to_owned(),
            std::io::ErrorKind::PermissionDenied => "permission denied (ports below 1024 need privileges)".to_owned(),
            _ => e.to_string(),
        };
        format!("cannot listen on {listen}: {why}")
    })
}

/// A standby's wait: listens at once (answering [`standby_router`]) and tries to take the
/// writer lease every [`STANDBY_POLL`] until it holds it. Returns the lease and the same
/// socket for the server proper, or `None` when interrupted while waiting.
async fn stand_by(
    store: &Store,
    listener: tokio::net::TcpListener,
    options: &ServeOptions,
    signal: Signal,
) -> Result<Option<(WriterLease, tokio::net::TcpListener, Answering)>, String> {
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    // One socket, two accept loops in turn: the standby's until the lease is taken, then the
    // server's (a connection accepted in between is answered STANDBY, and its client retries).
    let socket = listener.into_std().map_err(|e| e.to_string())?;
    let for_server = socket.try_clone().map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::from_std(socket).map_err(|e| e.to_string())?;
    println!("perpetua: {} store, standby on http://{address}: waiting for the writer lease", store.backend().name());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let answering = tokio::spawn(listener::serve(listener, standby_router(), options.limits, async {
        let _ = stopped.await;
    }));
    let answering = Answering { stop, task: answering };
    let waited = tokio::select! {
        lease = wait_for_lease(store) => Some(lease),
        signal = signal.received() => {
            tracing::info!(signal, "the standby stops");
            None
        }
    };
    let Some(lease) = waited else {
        answering.stop().await;
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::from_std(for_server).map_err(|e| e.to_string())?;
    Ok(Some((lease, listener, answering)))
}

/// The standby's accept loop, answering STANDBY until stopped.
struct Answering {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Answering {
    /// Stops accepting; the connections it has finish their (immediate) answers on their own.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(LEASE_RELEASE_TIMEOUT, self.task).await;
    }
}

/// The first SIGINT or SIGTERM, whenever it is asked for: one listener for the whole process,
/// from the start, so a signal that arrives while nothing waits for it (a standby taking
/// over) is not lost.
#[derive(Clone)]
struct Signal(tokio::sync::watch::Receiver<Option<&'static str>>);

impl Signal {
    fn listen() -> Signal {
        let (sender, receiver) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            let signal = interrupted().await;
            sender.send_replace(Some(signal));
            // Kept open, so that receivers wait on it rather than see it closed.
            std::future::pending::<()>().await;
        });
        Signal(receiver)
    }

    async fn received(mut self) -> &'static str {
        match self.0.wait_for(Option::is_some).await {
            Ok(signal) => (*signal).expect("waited for a signal"),
            Err(_) => std::future::pending().await,
        }
    }
}

/// Tries to take the writer lease until it is free. A database that cannot be reached is
/// waited for too (a standby outlives a database restart).
async fn wait_for_lease(store: &Store) -> WriterLease {
    // A try that hangs (a database that drops packets) is given up and made again.
    const TRY_TIMEOUT: Duration = Duration::from_secs(5);
    let waiting_since = std::time::Instant::now();
    let (mut said, mut failures) = (false, 0u64);
    loop {
        let failure = match tokio::time::timeout(TRY_TIMEOUT, store.acquire_writer_lease()).await {
            Ok(Ok(lease)) => {
                let waited_ms = waiting_since.elapsed().as_millis() as u64;
                tracing::info!(waited_ms, "standby: took the writer lease over");
                println!("perpetua: standby took the writer lease over; loading the engine");
                return lease;
            }
            Ok(Err(StoreError::WriterLeaseHeld(holder))) => {
                if !said {
                    tracing::info!(holder, "standby: another writer holds the lease; waiting for it");
                    said = true;
                }
                failures = 0;
                tokio::time::sleep(STANDBY_POLL).await;
                continue;
            }
            Ok(Err(e)) => format!("{e} ({})", e.code()),
            Err(_) => format!("the database did not answer within {TRY_TIMEOUT:?}"),
        };
        // Said at the first failure and then every 30 s or so, not at every try.
        if failures % 60 == 0 {
            tracing::warn!(error = %failure, failures = failures + 1, "standby: the lease cannot be tried; trying again");
        }
        failures += 1;
        tokio::time::sleep(STANDBY_POLL * 5).await;
    }
}

/// What a standby answers while it waits: `/healthz` 200 (the process is up) with
/// `status: "standby"`, `/readyz` 503, and every other request 503 `STANDBY` with
/// `Retry-After: 1` — the active writer serves it; a load balancer that checks readiness sends
/// nothing here until this server has taken over.
fn standby_router() -> axum::Router {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;
    use axum::Json;
    let health = || async { Json(serde_json::json!({ "status": "standby", "role": "standby" })) };
    let not_now = || async {
        let error = crate::http::wire::Error {
            error: crate::http::wire::ErrorDetail {
                code: "STANDBY".to_owned(),
                message: "this server is the standby writer: it serves once the active writer is gone; retry, \
                          or ask the active writer"
                    .to_owned(),
                request_id: None,
            },
        };
        (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], Json(error)).into_response()
    };
    axum::Router::new().route("/healthz", get(health)).route("/readyz", get(not_now)).fallback(not_now)
}
