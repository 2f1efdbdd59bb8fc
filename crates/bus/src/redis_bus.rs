//! The bus between nodes: Redis pub/sub. Every topic is the Redis channel `olive:{topic}`, or
//! `{name}:{topic}` with `redis://host:port#name`, so that several Olive deployments (or test runs)
//! can share one Redis: pub/sub channels are global to the server, whatever the database number.
//!
//! Pub/sub rather than streams: what travels is live and disposable (a chat line already stored in
//! the database, a heart count, an invalidation), each node needs every message once while it is
//! up, and a node that was down has nothing to catch up on — it reads the database when it starts.
//! Pub/sub delivers in publish order per publisher connection, which keeps one node's chat in
//! order on every other node.
//!
//! One background task holds a pattern subscription (`olive:*`) and hands each message to this
//! node's subscribers through the same bounded broadcast channels as the memory bus; if the
//! connection drops it reconnects with backoff (messages published meanwhile are lost, which the
//! rule above allows). Publishing goes through a `ConnectionManager`, which reconnects by itself.
//!
//! Shared rate limits ([`SharedLimits`]) are GCRA schedules kept in Redis keys
//! `{name}:limit:{key}`, advanced by one Lua script on Redis's own clock, so every node counts
//! against the same allowance and no two nodes' clocks need agree.
//!
//! Leases ([`Leases`]) are keys `{name}:lease:{key}` holding the holder's name with Redis's own
//! expiry; taking, renewing and releasing compare the holder in one Lua script each, so a node
//! whose lease ran out and was taken by another can never extend or delete the new one.

use crate::{Bus, BusError, Leases, MemoryBus, SharedLimits, Subscription};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

pub struct RedisBus {
    client: redis::Client,
    prefix: String,
    publisher: OnceCell<ConnectionManager>,
    /// This node's subscribers, fed by the listener task.
    local: Arc<MemoryBus>,
    listener: tokio::task::JoinHandle<()>,
}

impl RedisBus {
    /// `url` is `redis[s]://[user:password@]host:port[/db][#name]`; `ca`, for `rediss://`, the PEM
    /// authority that signed the server's certificate when the system's do not.
    pub fn open(url: &str, ca: Option<&[u8]>) -> Result<Self, BusError> {
        let (url, name) = url.split_once('#').unwrap_or((url, "olive"));
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(BusError::Backend(format!("redis bus name {name:?}: use letters, digits, '-', '_', '.'")));
        }
        // The URL may hold a password: errors say what is wrong with it, never what it is.
        let client = match ca {
            Some(pem) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates { client_tls: None, root_cert: Some(pem.to_vec()) },
            ),
            None => redis::Client::open(url),
        }
        .map_err(|e| BusError::Backend(format!("redis URL: {e}")))?;
        let prefix = format!("{name}:");
        let local = Arc::new(MemoryBus::default());
        let listener = tokio::spawn(listen(client.clone(), prefix.clone(), local.clone()));
        Ok(RedisBus { client, prefix, publisher: OnceCell::new(), local, listener })
    }

    fn limits_script() -> &'static redis::Script {
        static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        // KEYS[1]: the schedule; ARGV: period in ms, burst. Returns 0 (allowed) or the wait in ms.
        SCRIPT.get_or_init(|| {
            redis::Script::new(
                r"
                local t = redis.call('TIME')
                local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
                local period = tonumber(ARGV[1])
                local tolerance = period * (tonumber(ARGV[2]) - 1)
                local tat = tonumber(redis.call('GET', KEYS[1]) or now)
                if tat < now then tat = now end
                if tat - now > tolerance then return tat - now - tolerance end
                redis.call('SET', KEYS[1], tat + period, 'PX', tat + period - now + 1000)
                return 0
                ",
            )
        })
    }

    fn lease_key(&self, key: &str) -> String {
        format!("{}lease:{key}", self.prefix)
    }

    /// Runs one of the lease scripts: KEYS[1] the lease, ARGV[1] the holder, ARGV[2] the ttl in ms.
    async fn lease_script<T: redis::FromRedisValue>(
        &self,
        script: &'static std::sync::OnceLock<redis::Script>,
        source: &str,
        key: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<T, BusError> {
        let mut conn = self.publisher().await?;
        script
            .get_or_init(|| redis::Script::new(source))
            .key(self.lease_key(key))
            .arg(holder)
            .arg(ttl.as_millis().max(1) as i64)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| BusError::Backend(e.to_string()))
    }

    async fn publisher(&self) -> Result<ConnectionManager, BusError> {
        self.publisher
            .get_or_try_init(|| self.client.get_connection_manager())
            .await
            .cloned()
            .map_err(|e| BusError::Backend(e.to_string()))
    }
}

#[async_trait]
impl SharedLimits for RedisBus {
    async fn take(&self, key: &str, period: Duration, burst: u32) -> Result<Option<Duration>, BusError> {
        let mut conn = self.publisher().await?;
        let wait_ms: i64 = Self::limits_script()
            .key(format!("{}limit:{key}", self.prefix))
            .arg(period.as_millis().max(1) as i64)
            .arg(burst.max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| BusError::Backend(e.to_string()))?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms as u64)))
    }
}

static ACQUIRE: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
static RENEW: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
static RELEASE: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();

#[async_trait]
impl Leases for RedisBus {
    async fn acquire(&self, key: &str, holder: &str, ttl: Duration) -> Result<Option<String>, BusError> {
        // Returns nil when taken, else the other holder.
        const SOURCE: &str = r"
            local h = redis.call('GET', KEYS[1])
            if h and h ~= ARGV[1] then return h end
            redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
            return nil
        ";
        self.lease_script(&ACQUIRE, SOURCE, key, holder, ttl).await
    }

    async fn renew(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool, BusError> {
        const SOURCE: &str = r"
            if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
            redis.call('PEXPIRE', KEYS[1], ARGV[2])
            return 1
        ";
        self.lease_script::<i64>(&RENEW, SOURCE, key, holder, ttl).await.map(|renewed| renewed == 1)
    }

    async fn release(&self, key: &str, holder: &str) -> Result<(), BusError> {
        const SOURCE: &str = r"
            if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
            return 0
        ";
        self.lease_script::<i64>(&RELEASE, SOURCE, key, holder, Duration::ZERO).await.map(drop)
    }

    async fn holder(&self, key: &str) -> Result<Option<String>, BusError> {
        let mut conn = self.publisher().await?;
        redis::cmd("GET")
            .arg(self.lease_key(key))
            .query_async(&mut conn)
            .await
            .map_err(|e| BusError::Backend(e.to_string()))
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Receives every `olive:*` message and hands it to local subscribers, reconnecting forever.
async fn listen(client: redis::Client, prefix: String, local: Arc<MemoryBus>) {
    let mut delay = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.psubscribe(format!("{prefix}*")).await {
                Ok(()) => {
                    delay = Duration::from_millis(100);
                    let mut messages = pubsub.into_on_message();
                    while let Some(message) = messages.next().await {
                        if let Some(topic) = message.get_channel_name().strip_prefix(prefix.as_str()) {
                            let _ = local.publish(topic, Bytes::copy_from_slice(message.get_payload_bytes())).await;
                        }
                    }
                    tracing::warn!("redis bus subscription ended; reconnecting");
                }
                Err(e) => tracing::warn!(error = %e, "redis bus could not subscribe; retrying"),
            },
            Err(e) => tracing::warn!(error = %e, "redis bus unreachable; retrying"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[async_trait]
impl Bus for RedisBus {
    fn engine(&self) -> &'static str {
        "redis"
    }

    fn shared_limits(&self) -> Option<&dyn SharedLimits> {
        Some(self)
    }

    fn leases(&self) -> &dyn Leases {
        self
    }

    async fn publish(&self, topic: &str, message: Bytes) -> Result<(), BusError> {
        let mut conn = self.publisher().await?;
        redis::cmd("PUBLISH")
            .arg(format!("{}{topic}", self.prefix))
            .arg(message.as_ref())
            .query_async::<i64>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| BusError::Backend(e.to_string()))
    }

    fn subscribe(&self, topic: &str) -> Subscription {
        self.local.subscribe(topic)
    }

    async fn shared_secret(&self) -> Result<String, BusError> {
        let mut conn = self.publisher().await?;
        let key = format!("{}secret:nodes", self.prefix);
        // The first node to ask sets it; every node then reads the same value.
        redis::cmd("SET")
            .arg(&key)
            .arg(crate::random_secret())
            .arg("NX")
            .query_async::<Option<String>>(&mut conn)
            .await
            .map_err(|e| BusError::Backend(e.to_string()))?;
        redis::cmd("GET")
            .arg(&key)
            .query_async::<Option<String>>(&mut conn)
            .await
            .map_err(|e| BusError::Backend(e.to_string()))?
            .ok_or_else(|| BusError::Backend("the node secret vanished from Redis".to_owned()))
    }

    async fn ping(&self) -> Result<(), BusError> {
        let mut conn = self.publisher().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| BusError::Backend(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis_url() -> Option<String> {
        let url = std::env::var("OLIVE_TEST_REDIS_URL").ok();
        if url.is_none() {
            eprintln!("OLIVE_TEST_REDIS_URL is not set: skipping the Redis bus test");
        }
        url
    }

    /// A bus name no other run uses, so keys and channels start empty.
    fn unique(url: &str, label: &str) -> String {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        format!("{url}#{label}-{}-{nanos}", std::process::id())
    }

    #[tokio::test]
    async fn two_nodes_hear_each_other_in_order() {
        let Some(url) = redis_url() else { return };
        // A bus name of its own: other tests may share the server.
        let url = format!("{url}#bus-test-{}", std::process::id());
        let (a, b) = (RedisBus::open(&url, None).unwrap(), RedisBus::open(&url, None).unwrap());
        let other = RedisBus::open(&format!("{}#another-deployment", url.split('#').next().unwrap()), None).unwrap();
        let mut on_other = other.subscribe("t");
        a.ping().await.unwrap();
        let topic = "t";
        let mut on_b = b.subscribe(topic);
        let mut on_a = a.subscribe(topic);
        // The listener subscribes in the background: publish until the first message is heard.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            a.publish(topic, Bytes::from_static(b"hello")).await.unwrap();
            if let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(100), on_b.recv()).await {
                assert_eq!(m, "hello");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "node b never heard node a");
        }
        while tokio::time::timeout(Duration::from_millis(200), on_b.recv()).await.is_ok() {}
        for i in 0..200 {
            a.publish(topic, Bytes::from(i.to_string())).await.unwrap();
        }
        for i in 0..200 {
            let m = tokio::time::timeout(Duration::from_secs(5), on_b.recv()).await.unwrap().unwrap().unwrap();
            assert_eq!(m, i.to_string().as_str(), "in publish order");
        }
        // The publisher hears itself too, as on the memory bus.
        let heard = tokio::time::timeout(Duration::from_secs(5), on_a.recv()).await.unwrap().unwrap().unwrap();
        assert_eq!(heard, "hello");
        assert_eq!(a.engine(), "redis");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), on_other.recv()).await.is_err(),
            "names keep deployments apart"
        );
    }

    /// Two nodes draw on one allowance: a burst of 3 then one a second, whichever node asks.
    #[tokio::test]
    async fn nodes_share_one_rate_limit() {
        let Some(url) = redis_url() else { return };
        let url = unique(&url, "limit-test");
        let (a, b) = (RedisBus::open(&url, None).unwrap(), RedisBus::open(&url, None).unwrap());
        let (la, lb) = (a.shared_limits().unwrap(), b.shared_limits().unwrap());
        let period = Duration::from_secs(1);
        assert_eq!(la.take("chat:1:7", period, 3).await.unwrap(), None);
        assert_eq!(lb.take("chat:1:7", period, 3).await.unwrap(), None);
        assert_eq!(la.take("chat:1:7", period, 3).await.unwrap(), None);
        let wait = lb.take("chat:1:7", period, 3).await.unwrap().expect("the fourth at once is refused");
        assert!(wait > Duration::from_millis(800) && wait <= period, "{wait:?}");
        // A refusal takes nothing; another user and another deployment have their own allowance.
        assert!(la.take("chat:1:7", period, 3).await.unwrap().is_some());
        assert_eq!(la.take("chat:1:8", period, 3).await.unwrap(), None);
        let other = RedisBus::open(&format!("{url}-other"), None).unwrap();
        assert_eq!(other.shared_limits().unwrap().take("chat:1:7", period, 3).await.unwrap(), None);
        // With a burst of 1 (slow mode) the second is refused at once.
        assert_eq!(la.take("slow:1:7", Duration::from_secs(30), 1).await.unwrap(), None);
        assert!(lb.take("slow:1:7", Duration::from_secs(30), 1).await.unwrap().unwrap() > Duration::from_secs(29));
        assert!(MemoryBus::default().shared_limits().is_none(), "one process keeps its limits itself");
    }

    /// A lease is one node's at a time across nodes, runs out on Redis's clock, and a node whose
    /// lease was taken over can neither renew nor release the new holder's.
    #[tokio::test]
    async fn nodes_see_one_holder_per_lease() {
        let Some(url) = redis_url() else { return };
        let url = unique(&url, "lease-test");
        let (a, b) = (RedisBus::open(&url, None).unwrap(), RedisBus::open(&url, None).unwrap());
        let (la, lb) = (a.leases(), b.leases());
        let short = Duration::from_millis(300);
        assert_eq!(la.acquire("live:9", "node-a http://a", short).await.unwrap(), None);
        assert_eq!(lb.acquire("live:9", "node-b http://b", short).await.unwrap().as_deref(), Some("node-a http://a"));
        assert_eq!(lb.holder("live:9").await.unwrap().as_deref(), Some("node-a http://a"));
        assert!(la.renew("live:9", "node-a http://a", short).await.unwrap());
        assert!(!lb.renew("live:9", "node-b http://b", short).await.unwrap());
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(lb.holder("live:9").await.unwrap(), None, "a lease nobody renews runs out");
        assert_eq!(lb.acquire("live:9", "node-b http://b", Duration::from_secs(30)).await.unwrap(), None);
        assert!(!la.renew("live:9", "node-a http://a", short).await.unwrap(), "the old holder lost it");
        la.release("live:9", "node-a http://a").await.unwrap();
        assert_eq!(la.holder("live:9").await.unwrap().as_deref(), Some("node-b http://b"));
        lb.release("live:9", "node-b http://b").await.unwrap();
        assert_eq!(la.holder("live:9").await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_an_error_not_a_hang() {
        let bus = RedisBus::open("redis://127.0.0.1:1", None).unwrap();
        let pinged = tokio::time::timeout(Duration::from_secs(30), bus.ping()).await.expect("ping gave up");
        assert!(pinged.is_err());
        assert!(matches!(RedisBus::open("redis://[::1", None), Err(BusError::Backend(_))));
        assert!(matches!(RedisBus::open("redis://127.0.0.1:6379#bad name", None), Err(BusError::Backend(_))));
    }

    /// A Redis of this test's own that speaks only TLS and asks for a password, with a
    /// certificate from an authority made here. `None` (and a notice) without redis-server and
    /// openssl.
    struct TlsRedis {
        port: u16,
        ca: Vec<u8>,
        _child: tokio::process::Child,
        _dir: tempfile::TempDir,
    }

    fn run(dir: &std::path::Path, program: &str, args: &[&str]) -> bool {
        std::process::Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    async fn tls_redis(password: &str) -> Option<TlsRedis> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
        let made = run(
            d,
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=olive-test-ca",
            ],
        ) && run(
            d,
            "openssl",
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ) && run(
            d,
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "ext",
            ],
        );
        if !made {
            eprintln!("openssl is not installed: skipping the TLS Redis test");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let spawned = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--tls-cert-file", "server.pem", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.pem"])
            .args(["--tls-auth-clients", "no", "--requirepass", password])
            .current_dir(d)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let Ok(child) = spawned else {
            eprintln!("redis-server is not installed: skipping the TLS Redis test");
            return None;
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "redis-server never listened with TLS");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(TlsRedis { port, ca: std::fs::read(d.join("ca.pem")).unwrap(), _child: child, _dir: dir })
    }

    /// `rediss://` with a password: the bus works, nodes share their secret; a wrong password, an
    /// unknown authority or plain text does not connect, and no error shows the password.
    #[tokio::test]
    async fn a_bus_over_tls_with_a_password() {
        let Some(redis) = tls_redis("bus-pass-1234").await else { return };
        let url = format!("rediss://:bus-pass-1234@127.0.0.1:{}#tls-test", redis.port);
        let (a, b) = (RedisBus::open(&url, Some(&redis.ca)).unwrap(), RedisBus::open(&url, Some(&redis.ca)).unwrap());
        a.ping().await.expect("TLS and the password are accepted");
        let mut on_b = b.subscribe("t");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            a.publish("t", Bytes::from_static(b"over tls")).await.unwrap();
            if let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(100), on_b.recv()).await {
                assert_eq!(&m[..], b"over tls");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "b never heard a over TLS");
        }
        let secret = a.shared_secret().await.unwrap();
        assert_eq!(secret.len(), 64);
        assert_eq!(b.shared_secret().await.unwrap(), secret, "every node reads the same node secret");
        for (url, ca) in [
            (format!("rediss://:wrong-pass@127.0.0.1:{}", redis.port), Some(&redis.ca[..])),
            (format!("rediss://:bus-pass-1234@127.0.0.1:{}", redis.port), None),
            (format!("redis://:bus-pass-1234@127.0.0.1:{}", redis.port), None),
        ] {
            let bus = RedisBus::open(&url, ca).unwrap();
            let refused = tokio::time::timeout(Duration::from_secs(10), bus.ping()).await.expect("an answer in time");
            let e = refused.expect_err(&url);
            assert!(!e.to_string().contains("bus-pass-1234"), "{e}");
        }
    }

    #[tokio::test]
    async fn the_memory_bus_keeps_one_secret() {
        let bus = MemoryBus::default();
        let secret = bus.shared_secret().await.unwrap();
        assert_eq!(secret.len(), 64);
        assert_eq!(bus.shared_secret().await.unwrap(), secret);
        assert_ne!(MemoryBus::default().shared_secret().await.unwrap(), secret);
    }
}
