//! Configuration, read once at start: command-line flags win over `OLIVE_*` environment variables
//! (clap reads both), which win over the TOML file named by `--config`, which wins over defaults.
//! Every value is checked here, and a bad one stops start-up with a message naming its key.
//! Nothing below this crate reads the environment.

use clap::Args;
use olive_objects::S3Settings;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The storage flags every command that touches data takes.
#[derive(Args, Debug, Clone, Default)]
pub struct StorageArgs {
    /// TOML configuration file.
    #[arg(long, env = "OLIVE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the embedded database and objects live [default: ./olive-data].
    #[arg(long, env = "OLIVE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://… [default: sqlite://<data-dir>/olive.db].
    #[arg(long, env = "OLIVE_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// file:///DIR, s3://BUCKET/PREFIX or memory:// [default: file://<data-dir>/objects].
    #[arg(long, env = "OLIVE_OBJECT_STORE_URL", value_name = "URL")]
    pub object_store_url: Option<String>,
    /// For s3:// URLs: the S3-compatible server, e.g. http://minio:9000 [default: AWS].
    #[arg(long, env = "OLIVE_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// For s3:// URLs: the bucket's region [default: us-east-1].
    #[arg(long, env = "OLIVE_S3_REGION", value_name = "REGION")]
    pub s3_region: Option<String>,
    /// For s3:// URLs: the access key id.
    #[arg(long, env = "OLIVE_S3_ACCESS_KEY_ID", value_name = "ID")]
    pub s3_access_key_id: Option<String>,
    /// For s3:// URLs: the secret key (prefer the environment variable: flags show in `ps`).
    #[arg(long, env = "OLIVE_S3_SECRET_ACCESS_KEY", value_name = "SECRET", hide_env_values = true)]
    pub s3_secret_access_key: Option<SecretString>,
}

/// Unit prices and the monthly budget, for `olive cost report` and the budget metric. All in US
/// dollars; GB means 10^9 bytes.
#[derive(Args, Debug, Clone, Default)]
pub struct CostArgs {
    /// Price of one GB sent to viewers [default: 0.09].
    #[arg(long, env = "OLIVE_PRICE_EGRESS_PER_GB", value_name = "USD")]
    pub price_egress_per_gb: Option<f64>,
    /// Price of one GB received from broadcasters [default: 0].
    #[arg(long, env = "OLIVE_PRICE_INGEST_PER_GB", value_name = "USD")]
    pub price_ingest_per_gb: Option<f64>,
    /// Price of storing one GB for a month [default: 0.023].
    #[arg(long, env = "OLIVE_PRICE_STORAGE_PER_GB_MONTH", value_name = "USD")]
    pub price_storage_per_gb_month: Option<f64>,
    /// Price of one CPU-hour [default: 0.048].
    #[arg(long, env = "OLIVE_PRICE_CPU_PER_HOUR", value_name = "USD")]
    pub price_cpu_per_hour: Option<f64>,
    /// Monthly budget; `olive_budget_spent_ratio` is the month's spend so far over it [default: 500].
    #[arg(long, env = "OLIVE_MONTHLY_BUDGET", value_name = "USD")]
    pub monthly_budget: Option<f64>,
}

/// Prices and budget, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostConfig {
    pub prices: olive_commerce::cost::Prices,
    pub monthly_budget: f64,
}

impl CostConfig {
    fn resolve(args: &CostArgs, file: &FileConfig) -> Result<Self, ConfigError> {
        let defaults = olive_commerce::cost::Prices::default();
        let amount = |key: &'static str, flag: Option<f64>, file: Option<f64>, default: f64| {
            let value = flag.or(file).unwrap_or(default);
            if value.is_finite() && (0.0..=1e9).contains(&value) {
                Ok(value)
            } else {
                Err(bad(key, format!("{value} is not an amount of US dollars between 0 and 10^9")))
            }
        };
        let prices = olive_commerce::cost::Prices {
            egress_per_gb: amount(
                "price_egress_per_gb",
                args.price_egress_per_gb,
                file.price_egress_per_gb,
                defaults.egress_per_gb,
            )?,
            ingest_per_gb: amount(
                "price_ingest_per_gb",
                args.price_ingest_per_gb,
                file.price_ingest_per_gb,
                defaults.ingest_per_gb,
            )?,
            storage_per_gb_month: amount(
                "price_storage_per_gb_month",
                args.price_storage_per_gb_month,
                file.price_storage_per_gb_month,
                defaults.storage_per_gb_month,
            )?,
            cpu_per_hour: amount(
                "price_cpu_per_hour",
                args.price_cpu_per_hour,
                file.price_cpu_per_hour,
                defaults.cpu_per_hour,
            )?,
        };
        let monthly_budget = amount("monthly_budget", args.monthly_budget, file.monthly_budget, 500.0)?;
        Ok(CostConfig { prices, monthly_budget })
    }

    /// Reads the file named by the storage flags, then resolves.
    pub fn from_args(storage: &StorageArgs, args: &CostArgs) -> Result<Self, ConfigError> {
        Self::resolve(args, &read_file(storage.config.as_deref())?)
    }
}

/// How `standard` channels get their adaptive ladder.
#[derive(Args, Debug, Clone, Default)]
pub struct LadderArgs {
    /// The ladder's rungs, `HEIGHTp:KBPS[:FPS]` tallest first; rungs no shorter than the source
    /// are left out, and an empty list makes every channel basic
    /// [default: 720p:2500,480p:1200,360p:700,160p:250].
    #[arg(long, env = "OLIVE_LADDER", value_name = "RUNGS")]
    pub ladder: Option<String>,
    /// How many ladders this node encodes at once; `auto` measures it at start [default: auto].
    #[arg(long, env = "OLIVE_TRANSCODE_SLOTS", value_name = "N|auto")]
    pub transcode_slots: Option<String>,
    /// The ffmpeg program (with libx264) that encodes the ladders [default: ffmpeg].
    #[arg(long, env = "OLIVE_FFMPEG", value_name = "PATH")]
    pub ffmpeg: Option<PathBuf>,
    /// x264's preset for the rungs [default: superfast].
    #[arg(long, env = "OLIVE_X264_PRESET", value_name = "PRESET")]
    pub x264_preset: Option<String>,
}

/// The ladder settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LadderConfig {
    pub spec: olive_media::ladder::plan::LadderSpec,
    /// `None`: measured at start.
    pub slots: Option<usize>,
    pub encoder: olive_media::ladder::EncoderSettings,
}

impl LadderConfig {
    fn resolve(args: &LadderArgs, file: &FileConfig) -> Result<Self, ConfigError> {
        let spec = match args.ladder.clone().or_else(|| file.ladder.clone()) {
            Some(text) => text.parse().map_err(|e: String| bad("ladder", e))?,
            None => Default::default(),
        };
        let slots =
            match args.transcode_slots.clone().or_else(|| file.transcode_slots.clone()).as_deref() {
                None | Some("auto") => None,
                Some(n) => Some(n.parse::<usize>().ok().filter(|n| *n <= 1000).ok_or_else(|| {
                    bad("transcode_slots", format!("{n:?} is neither auto nor a count from 0 to 1000"))
                })?),
            };
        let preset =
            args.x264_preset.clone().or_else(|| file.x264_preset.clone()).unwrap_or_else(|| "superfast".into());
        const PRESETS: [&str; 10] =
            ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"];
        if !PRESETS.contains(&preset.as_str()) {
            return Err(bad(
                "x264_preset",
                format!("{preset:?} is not one of x264's presets ({})", PRESETS.join(", ")),
            ));
        }
        let program = args.ffmpeg.clone().or_else(|| file.ffmpeg.clone()).unwrap_or_else(|| "ffmpeg".into());
        Ok(LadderConfig { spec, slots, encoder: olive_media::ladder::EncoderSettings { program, preset } })
    }
}

/// The flags of `olive serve` beyond storage.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub cost: CostArgs,
    /// HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "OLIVE_HTTP_ADDR", value_name = "ADDR")]
    pub http: Option<String>,
    /// RTMP listen address [default: 127.0.0.1:1935].
    #[arg(long, env = "OLIVE_RTMP_ADDR", value_name = "ADDR")]
    pub rtmp: Option<String>,
    /// memory:// or redis://host:port[#name] (nodes sharing a Redis and a name share events) [default: memory://].
    #[arg(long, env = "OLIVE_BUS_URL", value_name = "URL")]
    pub bus_url: Option<String>,
    /// The origin browsers use, e.g. https://shop.example.com (enables Secure cookies).
    #[arg(long, env = "OLIVE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// How long a background job is held by the worker that claimed it before another node may
    /// run it again (seconds) [default: 60].
    #[arg(long, env = "OLIVE_JOB_LEASE_SECS", value_name = "SECS")]
    pub job_lease_secs: Option<u64>,
    /// How often the recommender is retrained from the shoppers' events (seconds; one node of
    /// many does it) [default: 600].
    #[arg(long, env = "OLIVE_RECO_TRAIN_SECS", value_name = "SECS")]
    pub reco_train_secs: Option<u64>,
    /// This node's name, stored with the recordings it makes so that after a crash it finalises
    /// its own at once [default: the host name].
    #[arg(long, env = "OLIVE_NODE_ID", value_name = "NAME")]
    pub node_id: Option<String>,
    /// The ONNX image classifier that labels live thumbnails (`tools/vision/prepare.sh` makes
    /// one). Without the file, labelling is off [default: <data-dir>/models/efficientnet-lite0.onnx].
    #[arg(long, env = "OLIVE_VISION_MODEL", value_name = "FILE")]
    pub vision_model: Option<PathBuf>,
    /// After SIGTERM, how long `/readyz` answers 503 (so load balancers stop sending new
    /// requests) before the server stops taking connections and drains (seconds) [default: 0].
    #[arg(long, env = "OLIVE_DRAIN_SECS", value_name = "SECS")]
    pub drain_secs: Option<u64>,
    /// Where the other nodes reach this node's HTTP listener, e.g. http://10.0.0.7:8080 (they
    /// forward playback of the lives ingested here to it) [default: http://<http address>, with
    /// the host name for an unspecified address].
    #[arg(long, env = "OLIVE_ADVERTISE_URL", value_name = "URL")]
    pub advertise_url: Option<String>,
    /// Load balancers whose X-Forwarded-For names the client (comma-separated IP addresses or
    /// CIDR ranges such as 10.0.0.0/8), for limits by client address [default: none; the TCP
    /// peer is the client].
    #[arg(long, env = "OLIVE_TRUSTED_PROXIES", value_name = "CIDRS", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
    /// Where Prometheus scrapes `/metrics` (a listener of its own, not routed to the public)
    /// [default: 127.0.0.1:9464].
    #[arg(long, env = "OLIVE_METRICS_ADDR", value_name = "ADDR")]
    pub metrics: Option<String>,
    /// For rediss:// bus URLs: a PEM file of the certificate authority that signed Redis's
    /// certificate, when it is not one the system trusts.
    #[arg(long, env = "OLIVE_BUS_CA_FILE", value_name = "FILE")]
    pub bus_ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub ladder: LadderArgs,
    /// Replicate the embedded database continuously with Litestream (and mirror local objects)
    /// to a directory, file:///DIR or s3://BUCKET/PREFIX, for `olive standby` to follow.
    #[arg(long, env = "OLIVE_REPLICA_URL", value_name = "DIR|URL")]
    pub replica_url: Option<String>,
    /// On an empty data dir, create demo channels, products and accounts.
    #[arg(long)]
    pub demo: bool,
}

/// The limits that keep one client from taking what others need (docs/SECURITY.md lists each).
#[derive(Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// A request's head must arrive within this of its first byte, or the connection is closed
    /// (seconds) [default: 10].
    #[arg(long, env = "OLIVE_HTTP_HEADER_TIMEOUT_SECS", value_name = "SECS")]
    pub http_header_timeout_secs: Option<u64>,
    /// A connection with nothing in flight for this long is closed (seconds) [default: 60].
    #[arg(long, env = "OLIVE_HTTP_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub http_idle_timeout_secs: Option<u64>,
    /// Connections open at once, WebSockets included; past it new ones get 503 [default: 20000].
    #[arg(long, env = "OLIVE_HTTP_MAX_CONNECTIONS", value_name = "N")]
    pub http_max_connections: Option<usize>,
    /// A new connection must send its first bytes within this (seconds) [default: 10].
    #[arg(long, env = "OLIVE_HTTP_PEEK_TIMEOUT_SECS", value_name = "SECS")]
    pub http_peek_timeout_secs: Option<u64>,
    /// Sign-ups one client address may make per hour [default: 30].
    #[arg(long, env = "OLIVE_SIGNUP_LIMIT", value_name = "PER_HOUR")]
    pub signup_limit: Option<u32>,
    /// Login attempts one client address may make per minute [default: 20].
    #[arg(long, env = "OLIVE_LOGIN_LIMIT", value_name = "PER_MINUTE")]
    pub login_limit: Option<u32>,
    /// An RTMP connection must publish with a valid stream key within this (seconds) [default: 10].
    #[arg(long, env = "OLIVE_RTMP_PUBLISH_TIMEOUT_SECS", value_name = "SECS")]
    pub rtmp_publish_timeout_secs: Option<u64>,
    /// RTMP connections one client address may hold open before publishing [default: 8].
    #[arg(long, env = "OLIVE_RTMP_UNPUBLISHED_PER_ADDRESS", value_name = "N")]
    pub rtmp_unpublished_per_address: Option<usize>,
    /// The lowest deal price a host may set, as a percentage of the product's price (admins may go
    /// lower) [default: 10].
    #[arg(long, env = "OLIVE_DEAL_FLOOR_PERCENT", value_name = "PERCENT")]
    pub deal_floor_percent: Option<u8>,
    /// Allow webhooks to private, loopback and link-local addresses (a receiver inside the
    /// operator's network) [default: refused].
    #[arg(long, env = "OLIVE_ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: bool,
}

/// The limits, checked.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    pub http: crate::http_limits::HttpLimits,
    pub signups_per_hour: u32,
    pub logins_per_minute: u32,
    pub rtmp_publish_timeout: std::time::Duration,
    pub rtmp_unpublished_per_address: usize,
    pub deal_floor_percent: u8,
    pub allow_private_webhooks: bool,
}

impl LimitsConfig {
    fn resolve(args: &LimitArgs, file: &FileConfig) -> Result<Self, ConfigError> {
        let secs = |key: &'static str, flag: Option<u64>, file: Option<u64>, default: u64, max: u64| {
            let value = flag.or(file).unwrap_or(default);
            if (1..=max).contains(&value) {
                Ok(std::time::Duration::from_secs(value))
            } else {
                Err(bad(key, format!("{value} is not between 1 and {max} seconds")))
            }
        };
        let defaults = crate::http_limits::HttpLimits::default();
        let http = crate::http_limits::HttpLimits {
            header_timeout: secs(
                "http_header_timeout_secs",
                args.http_header_timeout_secs,
                file.http_header_timeout_secs,
                defaults.header_timeout.as_secs(),
                600,
            )?,
            idle_timeout: secs(
                "http_idle_timeout_secs",
                args.http_idle_timeout_secs,
                file.http_idle_timeout_secs,
                defaults.idle_timeout.as_secs(),
                3600,
            )?,
            max_connections: match args.http_max_connections.or(file.http_max_connections) {
                None => defaults.max_connections,
                Some(n) if (1..=1_000_000).contains(&n) => n,
                Some(n) => return Err(bad("http_max_connections", format!("{n} is not between 1 and 1000000"))),
            },
            peek_timeout: secs(
                "http_peek_timeout_secs",
                args.http_peek_timeout_secs,
                file.http_peek_timeout_secs,
                defaults.peek_timeout.as_secs(),
                600,
            )?,
        };
        let signups_per_hour =
            args.signup_limit.or(file.signup_limit).unwrap_or(olive_commerce::accounts::DEFAULT_SIGNUPS_PER_HOUR);
        if !(1..=1_000_000).contains(&signups_per_hour) {
            return Err(bad("signup_limit", format!("{signups_per_hour} is not between 1 and 1000000 an hour")));
        }
        let logins_per_minute =
            args.login_limit.or(file.login_limit).unwrap_or(olive_commerce::accounts::DEFAULT_LOGINS_PER_MINUTE);
        if !(1..=1_000_000).contains(&logins_per_minute) {
            return Err(bad("login_limit", format!("{logins_per_minute} is not between 1 and 1000000 a minute")));
        }
        let rtmp_publish_timeout =
            secs("rtmp_publish_timeout_secs", args.rtmp_publish_timeout_secs, file.rtmp_publish_timeout_secs, 10, 600)?;
        let rtmp_unpublished_per_address =
            args.rtmp_unpublished_per_address.or(file.rtmp_unpublished_per_address).unwrap_or(8);
        if !(1..=10_000).contains(&rtmp_unpublished_per_address) {
            return Err(bad(
                "rtmp_unpublished_per_address",
                format!("{rtmp_unpublished_per_address} is not between 1 and 10000"),
            ));
        }
        let deal_floor_percent = args.deal_floor_percent.or(file.deal_floor_percent).unwrap_or(10);
        if deal_floor_percent > 100 {
            return Err(bad("deal_floor_percent", format!("{deal_floor_percent} is more than 100")));
        }
        Ok(LimitsConfig {
            http,
            signups_per_hour,
            logins_per_minute,
            rtmp_publish_timeout,
            rtmp_unpublished_per_address,
            deal_floor_percent,
            allow_private_webhooks: args.allow_private_webhooks || file.allow_private_webhooks.unwrap_or(false),
        })
    }
}

/// The TOML file: the same keys as the flags, in snake_case.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    http: Option<String>,
    rtmp: Option<String>,
    database_url: Option<String>,
    bus_url: Option<String>,
    object_store_url: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<SecretString>,
    public_url: Option<String>,
    job_lease_secs: Option<u64>,
    reco_train_secs: Option<u64>,
    node_id: Option<String>,
    vision_model: Option<PathBuf>,
    price_egress_per_gb: Option<f64>,
    price_ingest_per_gb: Option<f64>,
    price_storage_per_gb_month: Option<f64>,
    price_cpu_per_hour: Option<f64>,
    monthly_budget: Option<f64>,
    drain_secs: Option<u64>,
    advertise_url: Option<String>,
    trusted_proxies: Option<Vec<String>>,
    replica_url: Option<String>,
    metrics: Option<String>,
    bus_ca_file: Option<PathBuf>,
    http_header_timeout_secs: Option<u64>,
    http_idle_timeout_secs: Option<u64>,
    http_max_connections: Option<usize>,
    http_peek_timeout_secs: Option<u64>,
    signup_limit: Option<u32>,
    login_limit: Option<u32>,
    rtmp_publish_timeout_secs: Option<u64>,
    rtmp_unpublished_per_address: Option<usize>,
    deal_floor_percent: Option<u8>,
    allow_private_webhooks: Option<bool>,
    ladder: Option<String>,
    transcode_slots: Option<String>,
    ffmpeg: Option<PathBuf>,
    x264_preset: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    pub key: &'static str,
    pub message: String,
}

fn bad(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { key, message: message.into() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseEngine {
    Sqlite,
    Postgres,
}

/// Where data lives, checked.
#[derive(Debug)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub database_engine: DatabaseEngine,
    /// May hold a password: never logged.
    pub database_url: SecretString,
    pub object_store_url: SecretString,
    pub s3: S3Settings,
}

/// Everything `olive serve` needs, checked.
#[derive(Debug)]
pub struct ServeConfig {
    pub storage: StorageConfig,
    pub http: SocketAddr,
    pub rtmp: SocketAddr,
    pub bus_url: String,
    pub public_url: Option<String>,
    pub job_lease: std::time::Duration,
    pub reco_train: std::time::Duration,
    pub node_id: String,
    /// Where the labeller's model is looked for; `vision_model_given` when someone named it (then
    /// a missing file is an error rather than "labelling off").
    pub vision_model: PathBuf,
    pub vision_model_given: bool,
    pub cost: CostConfig,
    pub drain: std::time::Duration,
    /// Where other nodes reach this one; `None`: from the HTTP address once bound.
    pub advertise_url: Option<String>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The listener that serves `/metrics` to Prometheus.
    pub metrics: SocketAddr,
    /// The certificate authority of a TLS Redis bus, read from `--bus-ca-file`.
    pub bus_ca: Option<Vec<u8>>,
    pub limits: LimitsConfig,
    pub ladder: LadderConfig,
    /// Where Litestream replicates the embedded database.
    pub replica_url: Option<String>,
    pub demo: bool,
}

fn read_file(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| bad("config", format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| bad("config", format!("{}: {}", path.display(), e.message())))
}

impl StorageConfig {
    fn resolve(args: &StorageArgs, file: &FileConfig) -> Result<Self, ConfigError> {
        let data_dir = args.data_dir.clone().or_else(|| file.data_dir.clone()).unwrap_or_else(|| "./olive-data".into());
        if data_dir.as_os_str().is_empty() {
            return Err(bad("data_dir", "must not be empty"));
        }
        let database_url = match args.database_url.clone().or_else(|| file.database_url.clone()) {
            Some(url) => url,
            None => format!("sqlite://{}", data_dir.join("olive.db").display()),
        };
        let database_engine = if database_url.starts_with("sqlite:") {
            DatabaseEngine::Sqlite
        } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            DatabaseEngine::Postgres
        } else {
            let scheme = database_url.split(':').next().unwrap_or_default();
            return Err(bad(
                "database_url",
                format!("unsupported scheme {scheme:?}; use sqlite://PATH or postgres://…"),
            ));
        };
        let object_store_url = match args.object_store_url.clone().or_else(|| file.object_store_url.clone()) {
            Some(url) => url,
            None => directory_url(&data_dir.join("objects")).map_err(|message| bad("data_dir", message))?,
        };
        let scheme = object_store_url.split("://").next().unwrap_or_default();
        if !matches!(scheme, "file" | "memory" | "s3") || !object_store_url.contains("://") {
            return Err(bad(
                "object_store_url",
                format!("unsupported scheme {scheme:?}; use file:///DIR, s3://BUCKET/PREFIX or memory://"),
            ));
        }
        let s3_endpoint = args.s3_endpoint.clone().or_else(|| file.s3_endpoint.clone());
        if let Some(endpoint) = &s3_endpoint {
            let parsed = url::Url::parse(endpoint).map_err(|e| bad("s3_endpoint", format!("{endpoint:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(bad("s3_endpoint", format!("{endpoint:?} must be an http(s) URL")));
            }
        }
        let s3 = S3Settings {
            endpoint: s3_endpoint,
            region: args.s3_region.clone().or_else(|| file.s3_region.clone()),
            access_key_id: args.s3_access_key_id.clone().or_else(|| file.s3_access_key_id.clone()),
            secret_access_key: args.s3_secret_access_key.clone().or_else(|| file.s3_secret_access_key.clone()),
        };
        Ok(StorageConfig {
            data_dir,
            database_engine,
            database_url: SecretString::from(database_url),
            object_store_url: SecretString::from(object_store_url),
            s3,
        })
    }

    pub fn from_args(args: &StorageArgs) -> Result<Self, ConfigError> {
        let file = read_file(args.config.as_deref())?;
        Self::resolve(args, &file)
    }

    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }

    pub fn object_store_url(&self) -> &str {
        self.object_store_url.expose_secret()
    }

    /// The embedded database's file, or `None` on PostgreSQL.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        if self.database_engine != DatabaseEngine::Sqlite {
            return None;
        }
        let url = self.database_url();
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        Some(PathBuf::from(path.split('?').next().unwrap_or(path)))
    }
}

/// The `file://` URL of a directory, made absolute.
pub fn directory_url(path: &Path) -> Result<String, String> {
    let dir = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    url::Url::from_directory_path(&dir)
        .map(String::from)
        .map_err(|_| format!("{} cannot be used as a directory", dir.display()))
}

/// The kernel's host name (a pod's name on Kubernetes), or `olive` if it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "olive".to_owned())
}

/// An IP address (a range of one) or a CIDR range.
fn parse_range(text: &str) -> Option<ipnet::IpNet> {
    text.parse::<ipnet::IpNet>().ok().or_else(|| text.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

fn socket(key: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| bad(key, format!("{value:?} is not a socket address like 127.0.0.1:8080")))
}

impl ServeConfig {
    pub fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = read_file(args.storage.config.as_deref())?;
        let storage = StorageConfig::resolve(&args.storage, &file)?;
        let http = socket("http", args.http.as_deref().or(file.http.as_deref()).unwrap_or("127.0.0.1:8080"))?;
        let rtmp = socket("rtmp", args.rtmp.as_deref().or(file.rtmp.as_deref()).unwrap_or("127.0.0.1:1935"))?;
        let bus_url = args.bus_url.clone().or_else(|| file.bus_url.clone()).unwrap_or_else(|| "memory://".into());
        if !(bus_url == "memory://" || bus_url.starts_with("redis://") || bus_url.starts_with("rediss://")) {
            return Err(bad("bus_url", format!("{bus_url:?} is not supported; use memory:// or redis://host:port")));
        }
        let public_url = args.public_url.clone().or_else(|| file.public_url.clone());
        if let Some(url) = &public_url {
            let parsed = url::Url::parse(url).map_err(|e| bad("public_url", format!("{url:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(bad(
                    "public_url",
                    format!("{url:?} must be an http(s) origin like https://shop.example.com"),
                ));
            }
        }
        let job_lease_secs = args.job_lease_secs.or(file.job_lease_secs).unwrap_or(60);
        if !(1..=3600).contains(&job_lease_secs) {
            return Err(bad("job_lease_secs", format!("{job_lease_secs} is not between 1 and 3600 seconds")));
        }
        let job_lease = std::time::Duration::from_secs(job_lease_secs);
        let reco_train_secs = args.reco_train_secs.or(file.reco_train_secs).unwrap_or(600);
        if !(1..=86_400).contains(&reco_train_secs) {
            return Err(bad("reco_train_secs", format!("{reco_train_secs} is not between 1 and 86400 seconds")));
        }
        let reco_train = std::time::Duration::from_secs(reco_train_secs);
        let node_id = args.node_id.clone().or_else(|| file.node_id.clone()).unwrap_or_else(host_name);
        let valid = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if node_id.is_empty() || node_id.len() > 64 || !node_id.chars().all(valid) {
            return Err(bad("node_id", format!("{node_id:?} must be 1 to 64 letters, digits, '-', '_' or '.'")));
        }
        let given = args.vision_model.clone().or_else(|| file.vision_model.clone());
        if given.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(bad("vision_model", "must not be empty"));
        }
        let vision_model_given = given.is_some();
        let vision_model = given.unwrap_or_else(|| storage.data_dir.join("models").join("efficientnet-lite0.onnx"));
        let cost = CostConfig::resolve(&args.cost, &file)?;
        let drain_secs = args.drain_secs.or(file.drain_secs).unwrap_or(0);
        if drain_secs > 300 {
            return Err(bad("drain_secs", format!("{drain_secs} is more than 300 seconds")));
        }
        let advertise_url = args.advertise_url.clone().or_else(|| file.advertise_url.clone());
        if let Some(url) = &advertise_url {
            let parsed = url::Url::parse(url).map_err(|e| bad("advertise_url", format!("{url:?}: {e}")))?;
            if parsed.scheme() != "http" || parsed.host_str().is_none() || parsed.path() != "/" || url.contains(' ') {
                return Err(bad("advertise_url", format!("{url:?} must be an http origin like http://10.0.0.7:8080")));
            }
        }
        let trusted_proxies = args
            .trusted_proxies
            .clone()
            .or_else(|| file.trusted_proxies.clone())
            .unwrap_or_default()
            .iter()
            .map(|range| {
                parse_range(range.trim())
                    .ok_or_else(|| bad("trusted_proxies", format!("{range:?} is not an IP address or CIDR range")))
            })
            .collect::<Result<Vec<ipnet::IpNet>, _>>()?;
        let metrics =
            socket("metrics", args.metrics.as_deref().or(file.metrics.as_deref()).unwrap_or("127.0.0.1:9464"))?;
        let bus_ca = match args.bus_ca_file.clone().or_else(|| file.bus_ca_file.clone()) {
            Some(path) => Some(
                std::fs::read(&path).map_err(|e| bad("bus_ca_file", format!("cannot read {}: {e}", path.display())))?,
            ),
            None => None,
        };
        let limits = LimitsConfig::resolve(&args.limits, &file)?;
        let ladder = LadderConfig::resolve(&args.ladder, &file)?;
        let replica_url = args.replica_url.clone().or_else(|| file.replica_url.clone());
        if replica_url.is_some() && storage.database_engine != DatabaseEngine::Sqlite {
            return Err(bad(
                "replica_url",
                "Litestream replicates the embedded database; PostgreSQL has its own replication",
            ));
        }
        Ok(ServeConfig {
            storage,
            http,
            rtmp,
            bus_url,
            public_url,
            job_lease,
            reco_train,
            node_id,
            vision_model,
            vision_model_given,
            cost,
            drain: std::time::Duration::from_secs(drain_secs),
            advertise_url,
            trusted_proxies,
            metrics,
            bus_ca,
            limits,
            ladder,
            replica_url,
            demo: args.demo,
        })
    }

    /// Where other nodes reach this one, given the address the HTTP listener is bound to.
    pub fn advertise_url(&self, bound: SocketAddr) -> String {
        match &self.advertise_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None if bound.ip().is_unspecified() => format!("http://{}:{}", host_name(), bound.port()),
            None => format!("http://{bound}"),
        }
    }

    /// The origin part of `public_url` (scheme, host, port), as browsers send it in `Origin`.
    pub fn public_origin(&self) -> Option<String> {
        self.public_url.as_deref().and_then(|u| url::Url::parse(u).ok()).map(|u| u.origin().ascii_serialization())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resolves `args` with `file` as the TOML configuration file.
    fn serve(mut args: ServeArgs, file: &str) -> Result<ServeConfig, ConfigError> {
        let dir = std::env::temp_dir().join(format!("olive-config-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("olive.toml");
        std::fs::write(&path, file).unwrap();
        args.storage.config = Some(path);
        let resolved = ServeConfig::from_args(&args);
        let _ = std::fs::remove_dir_all(dir);
        resolved
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = serve(ServeArgs::default(), "").unwrap();
        assert_eq!(c.http, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.rtmp, "127.0.0.1:1935".parse().unwrap());
        assert_eq!(c.bus_url, "memory://");
        assert_eq!(c.storage.data_dir, PathBuf::from("./olive-data"));
        assert_eq!(c.storage.database_url(), "sqlite://./olive-data/olive.db");
        assert!(c.storage.object_store_url().starts_with("file:///"));
        assert!(c.storage.object_store_url().ends_with("/olive-data/objects/"));
    }

    #[test]
    fn flags_win_over_the_file() {
        let args = ServeArgs { http: Some("127.0.0.1:9000".into()), ..Default::default() };
        let c = serve(args, "http = \"127.0.0.1:7000\"\nrtmp = \"0.0.0.0:1936\"\ndata_dir = \"/tmp/x\"").unwrap();
        assert_eq!(c.http.port(), 9000);
        assert_eq!(c.rtmp.port(), 1936);
        assert_eq!(c.storage.database_url(), "sqlite:///tmp/x/olive.db");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            (ServeArgs { http: Some("localhost".into()), ..Default::default() }, "", "http"),
            (ServeArgs::default(), "rtmp = \"1935\"", "rtmp"),
            (ServeArgs::default(), "database_url = \"mysql://x\"", "database_url"),
            (ServeArgs::default(), "bus_url = \"kafka://x\"", "bus_url"),
            (ServeArgs::default(), "bus_url = \"redis:/x\"", "bus_url"),
            (ServeArgs::default(), "object_store_url = \"ftp://x\"", "object_store_url"),
            (ServeArgs::default(), "object_store_url = \"s3:bucket\"", "object_store_url"),
            (ServeArgs::default(), "s3_endpoint = \"minio:9000\"", "s3_endpoint"),
            (ServeArgs::default(), "public_url = \"javascript:alert(1)\"", "public_url"),
            (ServeArgs { job_lease_secs: Some(0), ..Default::default() }, "", "job_lease_secs"),
            (ServeArgs { node_id: Some("a b".into()), ..Default::default() }, "", "node_id"),
            (ServeArgs::default(), "vision_model = \"\"", "vision_model"),
            (ServeArgs::default(), "advertise_url = \"10.0.0.7:8080\"", "advertise_url"),
            (ServeArgs { advertise_url: Some("http://a:1/x".into()), ..Default::default() }, "", "advertise_url"),
            (ServeArgs::default(), "trusted_proxies = [\"10.0.0.1\", \"nginx\"]", "trusted_proxies"),
            (ServeArgs::default(), "trusted_proxies = [\"10.0.0.0/33\"]", "trusted_proxies"),
            (ServeArgs::default(), "metrics = \"9464\"", "metrics"),
            (ServeArgs::default(), "bus_ca_file = \"/nonexistent/ca.pem\"", "bus_ca_file"),
            (ServeArgs::default(), "http_header_timeout_secs = 0", "http_header_timeout_secs"),
            (ServeArgs::default(), "http_idle_timeout_secs = 99999", "http_idle_timeout_secs"),
            (ServeArgs::default(), "http_max_connections = 0", "http_max_connections"),
            (ServeArgs::default(), "http_peek_timeout_secs = 0", "http_peek_timeout_secs"),
            (ServeArgs::default(), "signup_limit = 0", "signup_limit"),
            (ServeArgs::default(), "login_limit = 0", "login_limit"),
            (ServeArgs::default(), "rtmp_publish_timeout_secs = 0", "rtmp_publish_timeout_secs"),
            (ServeArgs::default(), "rtmp_unpublished_per_address = 0", "rtmp_unpublished_per_address"),
            (ServeArgs::default(), "deal_floor_percent = 101", "deal_floor_percent"),
            (ServeArgs::default(), "ladder = \"480p:1200,480p:700\"", "ladder"),
            (ServeArgs::default(), "ladder = \"480:1200\"", "ladder"),
            (ServeArgs::default(), "transcode_slots = \"many\"", "transcode_slots"),
            (ServeArgs::default(), "x264_preset = \"fastest\"", "x264_preset"),
            (ServeArgs::default(), "database_url = \"postgres://x/y\"\nreplica_url = \"/r\"", "replica_url"),
            (ServeArgs::default(), "monthly_budget = -1.0", "monthly_budget"),
            (ServeArgs::default(), "price_egress_per_gb = nan", "price_egress_per_gb"),
            (
                ServeArgs {
                    cost: CostArgs { price_cpu_per_hour: Some(f64::INFINITY), ..Default::default() },
                    ..Default::default()
                },
                "",
                "price_cpu_per_hour",
            ),
        ];
        for (args, file, key) in cases {
            let err = serve(args, file).unwrap_err();
            assert_eq!(err.key, key, "{err}");
        }
    }

    #[test]
    fn the_ladder_defaults_to_phones_and_measured_slots() {
        let c = serve(ServeArgs::default(), "").unwrap();
        assert_eq!(c.ladder.spec.to_string(), "720p:2500,480p:1200,360p:700,160p:250");
        assert_eq!((c.ladder.slots, c.ladder.encoder.preset.as_str()), (None, "superfast"));
        let args = ServeArgs {
            ladder: LadderArgs { transcode_slots: Some("3".into()), ..Default::default() },
            ..Default::default()
        };
        let c = serve(args, "ladder = \"360p:700\"\nffmpeg = \"/opt/ffmpeg\"").unwrap();
        assert_eq!((c.ladder.spec.to_string().as_str(), c.ladder.slots), ("360p:700", Some(3)));
        assert_eq!(c.ladder.encoder.program, PathBuf::from("/opt/ffmpeg"));
    }

    #[test]
    fn the_vision_model_is_looked_for_in_the_data_dir_unless_named() {
        let args = ServeArgs {
            storage: StorageArgs { data_dir: Some("/tmp/x".into()), ..Default::default() },
            ..Default::default()
        };
        let c = serve(args.clone(), "").unwrap();
        assert_eq!(c.vision_model, PathBuf::from("/tmp/x/models/efficientnet-lite0.onnx"));
        assert!(!c.vision_model_given);
        let c = serve(args.clone(), "vision_model = \"/m/a.onnx\"").unwrap();
        assert_eq!((c.vision_model, c.vision_model_given), (PathBuf::from("/m/a.onnx"), true));
        let c = serve(ServeArgs { vision_model: Some("/m/b.onnx".into()), ..args }, "vision_model = \"/m/a.onnx\"")
            .unwrap();
        assert_eq!(c.vision_model, PathBuf::from("/m/b.onnx"), "the flag wins over the file");
    }

    #[test]
    fn s3_settings_come_from_the_file_and_keep_their_secret() {
        let file = "object_store_url = \"s3://media/olive\"\ns3_endpoint = \"http://127.0.0.1:9000\"\n\
                    s3_access_key_id = \"AKID\"\ns3_secret_access_key = \"hunter2\"\n";
        let c = serve(ServeArgs::default(), file).unwrap();
        assert_eq!(c.storage.object_store_url(), "s3://media/olive");
        assert_eq!(c.storage.s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.storage.s3.access_key_id.as_deref(), Some("AKID"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn prices_and_budget_come_from_flags_then_file_then_defaults() {
        let c = serve(ServeArgs::default(), "").unwrap();
        assert_eq!(c.cost.prices, olive_commerce::cost::Prices::default());
        assert_eq!((c.cost.monthly_budget, c.drain), (500.0, std::time::Duration::ZERO));
        let args = ServeArgs {
            cost: CostArgs { price_egress_per_gb: Some(0.05), ..Default::default() },
            drain_secs: Some(10),
            ..Default::default()
        };
        let c = serve(args, "price_egress_per_gb = 0.2\nprice_cpu_per_hour = 0.1\nmonthly_budget = 90.5\n").unwrap();
        assert_eq!((c.cost.prices.egress_per_gb, c.cost.prices.cpu_per_hour), (0.05, 0.1));
        assert_eq!((c.cost.monthly_budget, c.drain.as_secs()), (90.5, 10));
        let err = serve(ServeArgs { drain_secs: Some(301), ..Default::default() }, "").unwrap_err();
        assert_eq!(err.key, "drain_secs");
    }

    #[test]
    fn other_nodes_reach_this_one_where_it_says() {
        let c = serve(ServeArgs::default(), "").unwrap();
        assert_eq!(c.advertise_url("127.0.0.1:8081".parse().unwrap()), "http://127.0.0.1:8081");
        assert_eq!(c.advertise_url("0.0.0.0:8080".parse().unwrap()), format!("http://{}:8080", host_name()));
        let args = ServeArgs {
            trusted_proxies: Some(vec!["10.0.0.2".into(), " ::1".into(), "10.244.0.0/16".into(), "fd00::/8".into()]),
            ..Default::default()
        };
        let c = serve(args, "advertise_url = \"http://10.0.0.7:8080/\"").unwrap();
        assert_eq!(c.advertise_url("0.0.0.0:8080".parse().unwrap()), "http://10.0.0.7:8080");
        let ranges: Vec<String> = c.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(ranges, ["10.0.0.2/32", "::1/128", "10.244.0.0/16", "fd00::/8"]);
    }

    #[test]
    fn limits_have_their_defaults_and_come_from_flags_then_file() {
        let c = serve(ServeArgs::default(), "").unwrap();
        assert_eq!(c.limits.http, crate::http_limits::HttpLimits::default());
        assert_eq!(c.metrics, "127.0.0.1:9464".parse().unwrap());
        assert_eq!((c.limits.signups_per_hour, c.limits.rtmp_unpublished_per_address), (30, 8));
        assert_eq!((c.limits.deal_floor_percent, c.limits.allow_private_webhooks), (10, false));
        let args = ServeArgs {
            limits: LimitArgs { http_header_timeout_secs: Some(2), ..Default::default() },
            ..Default::default()
        };
        let file = "http_header_timeout_secs = 5\nhttp_max_connections = 300\nallow_private_webhooks = true\n";
        let c = serve(args, file).unwrap();
        assert_eq!(c.limits.http.header_timeout, std::time::Duration::from_secs(2));
        assert_eq!(c.limits.http.max_connections, 300);
        assert!(c.limits.allow_private_webhooks);
    }

    #[test]
    fn unknown_file_keys_are_named() {
        let err = serve(ServeArgs::default(), "htp = \"127.0.0.1:1\"\n").unwrap_err();
        assert_eq!(err.key, "config");
        assert!(err.to_string().contains("htp"), "{err}");
    }

    #[test]
    fn public_origin_drops_the_path() {
        let args = ServeArgs { public_url: Some("https://shop.example.com/live/".into()), ..Default::default() };
        let c = serve(args, "").unwrap();
        assert_eq!(c.public_origin().as_deref(), Some("https://shop.example.com"));
    }
}
