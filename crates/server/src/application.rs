//! The application: everything `olive serve` runs, as a library. [`Application::build`] opens the
//! engines, binds the HTTP, RTMP and metrics listeners (port 0 in tests), seeds demo content when
//! asked, starts the workers and serves; [`Application::stopped`] waits for its
//! [`ShutdownTrigger`] and stops everything in order. The `olive` binary turns signals into the
//! trigger; tests start the platform in-process the same way.

use crate::config::ServeConfig;
use crate::{demo, engines, labelling, operations, replication, telemetry};
use anyhow::Context;
use chrono::Utc;
use olive_api::{app, ApiSettings, AppState, Live};
use olive_commerce::accounts::AccountLimits;
use olive_commerce::deal_desk::DealDesk;
use olive_commerce::recommendations::jobs as reco_jobs;
use olive_media::ingest::Ingest;
use olive_media::record::{self, Recordings};
use olive_media::registry::LiveRegistry;
use olive_media::stream_events::StreamEvent;
use olive_media::thumbnail::Thumbnails;
use olive_media::{LiveMedia, MediaSettings};
use olive_realtime::hub::Hub;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often a node looks for lives whose node stopped holding them.
const ORPHAN_SWEEP: Duration = Duration::from_secs(5);

/// The whole platform in one process: its listeners bound, its workers running. Made by
/// [`Application::build`]; stopped by its [`ShutdownTrigger`], after which [`Application::stopped`]
/// returns once everything has stopped in order.
pub struct Application {
    http_addr: SocketAddr,
    rtmp_addr: SocketAddr,
    metrics_addr: SocketAddr,
    trigger: ShutdownTrigger,
    running: Running,
}

/// Starts an application's orderly shutdown; cloned freely (a signal handler, a test).
#[derive(Clone)]
pub struct ShutdownTrigger(Arc<watch::Sender<bool>>);

impl ShutdownTrigger {
    pub fn shutdown(&self) {
        let _ = self.0.send(true);
    }
}

/// What runs, in the order it stops.
struct Running {
    http: JoinHandle<()>,
    rtmp: JoinHandle<()>,
    jobs: (watch::Sender<bool>, JoinHandle<()>),
    usage: (watch::Sender<bool>, JoinHandle<()>),
    metrics: (watch::Sender<bool>, JoinHandle<()>),
    background: Vec<JoinHandle<()>>,
    replicator: Option<replication::Replicator>,
    objects: olive_objects::Objects,
    api_lane: crate::api_lane::ApiLane,
}

impl Application {
    /// Opens the engines, binds the listeners (port 0 picks a free one), starts the workers and
    /// serves, in the background, until [`ShutdownTrigger::shutdown`].
    pub async fn build(config: ServeConfig) -> anyhow::Result<Application> {
        let metrics = telemetry::metrics().context("installing the metrics recorder")?;

        replication::refuse_standby(&config.storage)?;
        let engines = engines::open(&config.storage).await?;
        tracing::info!(
            database = engines.store.engine(),
            objects = engines.objects.engine(),
            data_dir = %config.storage.data_dir.display(),
            "storage ready"
        );
        let bus = olive_bus::from_url(&config.bus_url, config.bus_ca.as_deref()).context("opening the bus")?;
        let replicator = match &config.replica_url {
            Some(place) => Some(replication::Replicator::start(place, &config.storage, &engines.objects).await?),
            None => None,
        };

        if config.demo {
            demo::seed_if_empty(engines.store.as_ref(), &engines.objects, &config.storage.data_dir).await?;
        }

        // Bound first: other nodes are told where this one answers.
        let listener =
            TcpListener::bind(config.http).await.with_context(|| format!("cannot listen on {}", config.http))?;
        let addr = listener.local_addr()?;
        let registry = Arc::new(LiveRegistry::new(bus.clone(), &config.node_id, &config.advertise_url(addr)));
        let media_settings = MediaSettings {
            publish_timeout: config.limits.rtmp_publish_timeout,
            unpublished_per_address: config.limits.rtmp_unpublished_per_address,
            ..Default::default()
        };
        let ladders = ladders(&config).await.with_cluster(bus.clone(), &config.node_id);
        let media = Arc::new(LiveMedia::new(media_settings).with_registry(registry.clone()).with_ladders(ladders));
        if config.ladder.slots.is_none() && media.ladders().unavailable().is_none() {
            tokio::spawn(measure_slots(media.clone(), config.ladder.clone()));
        }
        let rtmp = TcpListener::bind(config.rtmp).await.with_context(|| format!("cannot listen on {}", config.rtmp))?;
        let rtmp_addr = rtmp.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let recordings = Arc::new(
            Recordings::new(engines.store.clone(), engines.objects.clone(), config.node_id.clone())
                .metered(media.usage().clone()),
        );
        let classifier = labelling::load(&config.vision_model, config.vision_model_given).await?;
        let thumbnails = Arc::new(
            Thumbnails::new(engines.objects.clone(), engines.store.clone())
                .with_labelling(classifier.is_some())
                .metered(media.usage().clone()),
        );
        let ingest = Arc::new(Ingest {
            media: media.clone(),
            store: engines.store.clone(),
            bus: bus.clone(),
            recordings: recordings.clone(),
            thumbnails: thumbnails.clone(),
        });
        let sweeper = tokio::spawn(ingest.clone().sweep_orphans(ORPHAN_SWEEP));
        let rtmp_task = tokio::spawn(olive_media::ingest::serve(rtmp, ingest, wait_for_stop(stopped)));
        tracing::info!(addr = %rtmp_addr, "rtmp listener ready on rtmp://{rtmp_addr}/live");

        let webhook_targets = if config.limits.allow_private_webhooks {
            olive_jobs::webhooks::WebhookTargets::AnyAddress
        } else {
            olive_jobs::webhooks::WebhookTargets::PublicOnly
        };
        // Read from the bus in the background: a node starts (and says it is not ready) while Redis
        // is still coming up.
        let node_secret = olive_api::peers::NodeSecret::default();
        let secret_reader = tokio::spawn(read_node_secret(bus.clone(), node_secret.clone()));
        let settings = ApiSettings {
            public_origin: config.public_origin(),
            ingest_url: format!("rtmp://{rtmp_addr}/live"),
            node: config.node_id.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            node_secret: node_secret.clone(),
            webhook_targets,
            account_limits: AccountLimits {
                signups_per_address: AccountLimits::signups_per_hour(config.limits.signups_per_hour),
                logins_per_address: AccountLimits::logins_per_minute(config.limits.logins_per_minute),
                ..Default::default()
            },
        };
        let hub = Hub::new(engines.store.clone(), bus.clone(), config.node_id.clone());
        let deal_rules = olive_commerce::deals::DealRules { floor_percent: config.limits.deal_floor_percent };
        let deals =
            DealDesk::new(engines.store.clone(), bus.clone(), config.node_id.clone(), Arc::new(Utc::now), deal_rules);
        let deal_news = deals.subscribe();
        deals.resume().await.context("cannot resume this node's running deals")?;
        let deals_desk = deals.clone();
        let usage = media.usage().clone();
        let state = AppState::new(
            engines.store.clone(),
            engines.objects.clone(),
            bus.clone(),
            settings,
            Live { media, thumbnails, hub: hub.clone(), deals },
            Some(metrics.clone()),
            config.cost.prices,
        );
        let draining = state.draining.clone();
        // Background jobs: webhook deliveries, recording finalisation, replay registration, training,
        // and (with a model) thumbnail labelling.
        let (jobs_stop, jobs_stopped) = watch::channel(false);
        let job_settings = olive_jobs::WorkerSettings { lease: config.job_lease, ..Default::default() };
        let mut worker = olive_jobs::Worker::new(engines.store.clone(), job_settings)
            .register(Arc::new(olive_jobs::webhooks::Deliverer::new(engines.store.clone(), webhook_targets)))
            .register(Arc::new(olive_jobs::order_effects::OrderPlaced::new(
                engines.store.clone(),
                bus.clone(),
                olive_api::dto::OrderView::json,
            )))
            .register(Arc::new(olive_jobs::order_effects::StockChanged::new(bus.clone())))
            .register(Arc::new(record::Finalise {
                store: engines.store.clone(),
                objects: engines.objects.clone(),
                usage: usage.clone(),
            }))
            .register(Arc::new(record::Register { store: engines.store.clone(), view: olive_api::urls::replay_ready }))
            .register(Arc::new(reco_jobs::Train { store: engines.store.clone(), objects: engines.objects.clone() }))
            .register(Arc::new(reco_jobs::Compact { store: engines.store.clone() }));
        if let Some(classifier) = classifier {
            let label = olive_media::labelling::Label::new(
                engines.store.clone(),
                engines.objects.clone(),
                classifier,
                bus.clone(),
            )
            .metered(usage.clone());
            worker = worker.register(Arc::new(label));
        }
        let jobs = tokio::spawn(worker.run(wait_for_stop(jobs_stopped)));
        let (usage_stop, usage_stopped) = watch::channel(false);
        let usage_flusher = tokio::spawn(flush_usage_until(
            operations::UsageFlusher::new(engines.store.clone(), usage),
            wait_for_stop(usage_stopped),
        ));
        let background = [
            secret_reader,
            sweeper,
            tokio::spawn(registry.heartbeat()),
            tokio::spawn(olive_api::ladder_link::take_ladders(state.clone())),
            tokio::spawn(hub.clone().deliver()),
            tokio::spawn(hub.clone().follow_deals(deal_news)),
            tokio::spawn(deals_desk.clone().serve()),
            tokio::spawn(deals_desk.watch()),
            tokio::spawn(hub.tick()),
            tokio::spawn(recording_sweeper(recordings)),
            tokio::spawn(stream_events_to_webhooks(state.bus.clone(), engines.store.clone())),
            state.cache.spawn_listener(),
            tokio::spawn(operations::process_metrics(metrics.clone())),
            tokio::spawn(operations::database_gauges(engines.store.clone(), config.cost)),
            tokio::spawn(operations::probe_bus(state.bus.clone(), config.node_id.clone())),
            tokio::spawn(session_sweeper(state.clone())),
            tokio::spawn(olive_jobs::every(
                olive_jobs::JobQueue::new(engines.store.clone()),
                reco_jobs::TRAIN_JOB,
                config.reco_train,
            )),
            tokio::spawn(olive_jobs::every(
                olive_jobs::JobQueue::new(engines.store.clone()),
                reco_jobs::COMPACT_JOB,
                Duration::from_secs(86_400),
            )),
            tokio::spawn(reco_jobs::follow(engines.objects.clone(), state.recommendations.clone())),
        ];

        let drain = config.drain;
        let api_lane = crate::api_lane::ApiLane::start().context("starting the API runtime")?;
        let metrics_listener =
            TcpListener::bind(config.metrics).await.with_context(|| format!("cannot listen on {}", config.metrics))?;
        let metrics_addr = metrics_listener.local_addr()?;
        let (metrics_stop, metrics_stopped) = watch::channel(false);
        let metrics_server = tokio::spawn(crate::http_server::serve(
            metrics_listener,
            olive_api::metrics_app(metrics.clone()),
            None,
            config.limits.http,
            wait_for_stop(metrics_stopped),
        ));
        tracing::info!(addr = %metrics_addr, "metrics listener ready on http://{metrics_addr}/metrics");
        tracing::info!(%addr, "http listener ready on http://{addr}");
        let (trigger, triggered) = watch::channel(false);
        let http = tokio::spawn(crate::http_server::serve(
            listener,
            app(state),
            Some(api_lane.handle()),
            config.limits.http,
            async move {
                wait_for_stop(triggered).await;
                tracing::info!("shutting down: finishing requests in flight");
                // Readiness fails first, so load balancers move new traffic elsewhere while this node
                // still answers; then it stops taking connections and drains.
                draining.store(true, std::sync::atomic::Ordering::Release);
                if !drain.is_zero() {
                    tracing::info!(seconds = drain.as_secs(), "draining: /readyz answers 503 before stopping");
                    tokio::time::sleep(drain).await;
                }
                let _ = stop.send(true);
            },
        ));
        Ok(Application {
            http_addr: addr,
            rtmp_addr,
            metrics_addr,
            trigger: ShutdownTrigger(Arc::new(trigger)),
            running: Running {
                http,
                rtmp: rtmp_task,
                jobs: (jobs_stop, jobs),
                usage: (usage_stop, usage_flusher),
                metrics: (metrics_stop, metrics_server),
                background: background.into(),
                replicator,
                objects: engines.objects.clone(),
                api_lane,
            },
        })
    }

    /// Where the HTTP API, the web app and playback answer.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where broadcasters publish (`rtmp://{addr}/live/{key}`).
    pub fn rtmp_addr(&self) -> SocketAddr {
        self.rtmp_addr
    }

    /// Where `/metrics` answers.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    pub fn shutdown_trigger(&self) -> ShutdownTrigger {
        self.trigger.clone()
    }

    /// Waits for the shutdown (requests in flight finish first), then stops the rest in order:
    /// publishers are disconnected and their channels marked offline, the job in progress and the
    /// jobs due finish, usage is written out, and the replica is brought up to date.
    pub async fn stopped(self) {
        let running = self.running;
        let _ = running.http.await;
        let _ = running.rtmp.await;
        let _ = running.jobs.0.send(true);
        let _ = running.jobs.1.await;
        let _ = running.usage.0.send(true);
        let _ = running.usage.1.await;
        let _ = running.metrics.0.send(true);
        let _ = running.metrics.1.await;
        for task in running.background {
            task.abort();
        }
        if let Some(replicator) = running.replicator {
            replicator.stop(&running.objects).await;
        }
        // Tasks that requests on the API lane started (a deal's owner among them) end with it.
        drop(running.api_lane);
        tracing::info!("stopped cleanly");
    }
}

/// Turns `stream.started` / `stream.ended` bus events into webhook deliveries.
async fn stream_events_to_webhooks(bus: Arc<dyn olive_bus::Bus>, store: Arc<dyn olive_store::Store>) {
    let mut events = bus.subscribe(olive_bus::topics::STREAM_EVENTS);
    while let Some(message) = events.recv().await {
        let Some(event) = message.ok().and_then(|bytes| StreamEvent::parse(&bytes)) else { continue };
        let kind = event.kind.as_str();
        let data = serde_json::json!({ "channel_id": event.channel_id, "at": event.at });
        if let Err(e) = olive_jobs::webhooks::publish(store.as_ref(), kind, &event.id(), data, Utc::now()).await {
            tracing::error!(error = %e, event = kind, "could not queue a stream webhook");
        }
    }
}

/// Reads the secret the nodes on this bus share, retrying until the bus answers.
async fn read_node_secret(bus: Arc<dyn olive_bus::Bus>, into: olive_api::peers::NodeSecret) {
    let mut delay = Duration::from_millis(100);
    loop {
        match bus.shared_secret().await {
            Ok(secret) => return into.learn(secret.into()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the node secret from the bus yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

/// Flushes usage periodically until `stop`, then once more.
async fn flush_usage_until(mut flusher: operations::UsageFlusher, stop: impl std::future::Future<Output = ()>) {
    tokio::select! {
        () = stop => {}
        () = async {
            let mut tick = tokio::time::interval(operations::USAGE_FLUSH);
            loop {
                tick.tick().await;
                flusher.flush().await;
            }
        } => {}
    }
    flusher.flush().await;
}

/// Finalises recordings nobody is writing: at start-up this node's own, left by a crash; then,
/// every minute, those of nodes silent for two minutes.
async fn recording_sweeper(recordings: Arc<Recordings>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        match recordings.recover(Duration::from_secs(120), Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(recordings = n, "unfinished recordings queued for finalisation"),
            Err(e) => tracing::warn!(error = %e, "could not look for unfinished recordings"),
        }
    }
}

/// Deletes expired sessions every hour.
async fn session_sweeper(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match state.store.delete_expired_sessions(Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired sessions removed"),
            Err(e) => tracing::warn!(error = %e, "could not remove expired sessions"),
        }
    }
}

/// The ladders this node makes: the encoder is checked before the first live (a node without one
/// serves `basic` channels and says why); with `--transcode-slots auto` one slot is offered until
/// the measurement in [`measure_slots`] ends.
async fn ladders(config: &ServeConfig) -> olive_media::Ladders {
    let settings = olive_media::LadderSettings {
        spec: config.ladder.spec.clone(),
        encoder: config.ladder.encoder.clone(),
        slots: config.ladder.slots.unwrap_or(1),
        work_dir: std::env::temp_dir(),
        ..Default::default()
    };
    let encoder = if settings.spec.0.is_empty() {
        Err("the ladder has no rungs (--ladder)".to_owned())
    } else if config.ladder.slots == Some(0) {
        Ok(()) // no slot to use it in: every standard live says so
    } else {
        olive_media::ladder::probe_encoder(&settings.encoder).await
    };
    match &encoder {
        Ok(()) => tracing::info!(
            encoder = %settings.encoder.program.display(),
            ladder = %settings.spec,
            slots = config.ladder.slots.map_or_else(|| "measuring".to_owned(), |n| n.to_string()),
            "adaptive bitrate ready"
        ),
        Err(why) => tracing::warn!(reason = %why, "no adaptive bitrate on this node: standard channels play as basic"),
    }
    olive_media::Ladders::new(settings, encoder)
}

/// Measures how many ladders this node can encode and offers that many slots.
async fn measure_slots(media: Arc<LiveMedia>, ladder: crate::config::LadderConfig) {
    match olive_media::ladder::measure_slots(&ladder.encoder, &ladder.spec).await {
        Ok((slots, per_ladder)) => {
            tracing::info!(slots, cores_per_ladder = format!("{per_ladder:.2}"), "transcode slots measured");
            media.ladders().set_slots(slots);
        }
        Err(why) => tracing::warn!(reason = %why, "could not measure transcode slots; offering one"),
    }
}
