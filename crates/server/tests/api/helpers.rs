//! Starting and stopping the real server, and the few calls every test makes.

use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_olive");
pub const PASSWORD: &str = "correct horse battery";

/// Which database a server uses.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite,
    Postgres(String),
}

impl Db {
    /// A fresh PostgreSQL database, or `None` (with a notice) when `OLIVE_TEST_DATABASE_URL` is unset.
    pub async fn postgres() -> Option<Db> {
        olive_store_postgres::test_support::fresh_database("olive_it").await.map(Db::Postgres)
    }
}

/// Taken by the browser test and by the tests that keep a core busy for long (encoding pictures,
/// labelling them): on two cores, the browser's live-edge latency check would otherwise measure the
/// machine's load rather than the player.
pub static CPU_HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct Server {
    child: Option<Child>,
    pub base: String,
    /// `rtmp://127.0.0.1:PORT/live`
    pub rtmp: String,
    /// `http://127.0.0.1:PORT/metrics`: the metrics listener.
    pub metrics: String,
    pub data_dir: tempfile::TempDir,
    pub db: Db,
    /// Every line the server printed on stdout.
    pub output: Arc<Mutex<Vec<String>>>,
    pub client: Client,
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(Db::Sqlite, &[]).await
    }

    pub async fn start_with(db: Db, extra: &[&str]) -> Server {
        Self::start_in(tempfile::tempdir().unwrap(), db, extra, &[]).await
    }

    /// Starts with extra environment variables (e.g. `OLIVE_LOG_FORMAT=json`).
    pub async fn start_with_env(env: &[(&str, &str)]) -> Server {
        Self::start_in(tempfile::tempdir().unwrap(), Db::Sqlite, &[], env).await
    }

    /// Starts with extra flags and environment variables.
    pub async fn start_with_flags_and_env(db: Db, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_in(tempfile::tempdir().unwrap(), db, extra, env).await
    }

    /// Kills this server with SIGKILL — a crash — and starts another on the same storage.
    pub async fn crash_and_restart(mut self, extra: &[&str]) -> Server {
        let mut child = self.child.take().unwrap();
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap());
        Self::start_in(data_dir, self.db.clone(), extra, &[]).await
    }

    /// Stops this server and starts another on the same storage.
    pub async fn restart(mut self, extra: &[&str]) -> Server {
        let status = self.stop_child().await;
        assert!(status.success());
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap());
        Self::start_in(data_dir, self.db.clone(), extra, &[]).await
    }

    /// Starts on a data directory an earlier server left.
    pub async fn start_in_dir(data_dir: tempfile::TempDir, extra: &[&str]) -> Server {
        Self::start_in(data_dir, Db::Sqlite, extra, &[]).await
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(Child::id).expect("running")
    }

    /// Waits for the server to exit by itself (after a signal sent elsewhere).
    pub async fn wait(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("stopped within 30 s").unwrap()
    }

    async fn start_in(data_dir: tempfile::TempDir, db: Db, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.arg("serve").args(["--http", "127.0.0.1:0", "--rtmp", "127.0.0.1:0"]).args(extra);
        storage_args(&mut cmd, &data_dir, &db);
        // Tests sign up and log in many accounts from one address; the hostile tests pass the
        // limits they check as flags, which win over these. Lives play as basic unless a test
        // gives the node transcode slots (`--transcode-slots N`): the ladder tests do.
        cmd.env("RUST_LOG", "info")
            .env_remove("OLIVE_LOG_FORMAT")
            .env("OLIVE_TRANSCODE_SLOTS", "0")
            .env("OLIVE_SIGNUP_LIMIT", "1000000")
            .env("OLIVE_LOGIN_LIMIT", "1000000")
            .env("OLIVE_METRICS_ADDR", "127.0.0.1:0")
            .envs(env.iter().copied());
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
        let mut child = cmd.spawn().expect("start olive");
        let stdout = child.stdout.take().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let sink = output.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut addr_tx = Some(addr_tx);
            let (mut rtmp, mut metrics) = (None, None);
            while let Ok(Some(line)) = lines.next_line().await {
                let after = |marker: &str| {
                    line.split(marker)
                        .nth(1)
                        .map(|rest| rest.chars().take_while(|c| !c.is_whitespace() && *c != '"').collect::<String>())
                };
                if let Some(addr) = after("rtmp listener ready on rtmp://") {
                    rtmp = Some(addr);
                }
                if let Some(url) = after("metrics listener ready on http://") {
                    metrics = Some(url);
                }
                if let Some(addr) = after("http listener ready on http://") {
                    if let Some(tx) = addr_tx.take() {
                        let _ = tx.send((addr, rtmp.clone().unwrap_or_default(), metrics.clone().unwrap_or_default()));
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let (addr, rtmp, metrics) = tokio::time::timeout(Duration::from_secs(60), addr_rx)
            .await
            .expect("olive did not report its HTTP listener within 60 s")
            .expect("olive exited before listening");
        Server {
            child: Some(child),
            base: format!("http://{addr}"),
            rtmp: format!("rtmp://{rtmp}"),
            metrics: format!("http://{metrics}"),
            data_dir,
            db,
            output,
            client: Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An anonymous GET whose answer is JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.client.get(self.url(path)).send().await.unwrap().json().await.expect("a JSON answer")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        self.stop_child().await
    }

    /// As [`Server::stop`], keeping the data directory to look at.
    pub async fn stop_keeping_data(mut self) -> (std::process::ExitStatus, tempfile::TempDir) {
        let status = self.stop_child().await;
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap());
        (status, data_dir)
    }

    async fn stop_child(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let pid = child.id().expect("running").to_string();
        let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("stopped within 30 s").unwrap()
    }

    /// `olive admin create-user` against this server's storage, while it runs.
    pub async fn create_user(&self, email: &str, role: &str) -> Session {
        let mut cmd = Command::new(BIN);
        cmd.args(["admin", "create-user", "--email", email, "--password", PASSWORD, "--role", role]);
        storage_args(&mut cmd, &self.data_dir, &self.db);
        let out = cmd.output().await.unwrap();
        assert!(out.status.success(), "create-user failed: {}", String::from_utf8_lossy(&out.stderr));
        self.login(email, PASSWORD).await
    }

    /// Signs up (as a client would: again after `503 busy`), then logs in.
    pub async fn signup(&self, email: &str) -> Session {
        let body = json!({"email": email, "password": PASSWORD});
        let r = patiently(|| self.client.post(self.url("/api/v1/auth/signup")).json(&body).send()).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "signup {email}");
        self.login(email, PASSWORD).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Session {
        let body = json!({"email": email, "password": password});
        let r = patiently(|| self.client.post(self.url("/api/v1/auth/login")).json(&body).send()).await;
        assert_eq!(r.status(), StatusCode::OK, "login {email}");
        Session::from_response(self, r).await
    }

    /// An admin-created skincare product with `stock` units.
    pub async fn product(&self, admin: &Session, name: &str, stock: i64) -> i64 {
        self.product_in(admin, name, "skincare", stock).await
    }

    /// An admin-created product of `category` with `stock` units.
    pub async fn product_in(&self, admin: &Session, name: &str, category: &str, stock: i64) -> i64 {
        let r = admin
            .post("/api/v1/products")
            .json(&json!({"name": name, "category": category, "price_minor": 10_000, "stock": stock}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    pub async fn stock(&self, product: i64) -> i64 {
        let v: Value = self
            .client
            .get(self.url(&format!("/api/v1/products/{product}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["stock"].as_i64().unwrap()
    }
}

/// `promtool check metrics` on a scrape: every metric described, names as Prometheus would have
/// them. Skipped (with a notice) where promtool is not installed.
pub async fn promtool_checks(scrape: &str) {
    use tokio::io::AsyncWriteExt;
    let Ok(mut promtool) = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool is not installed: skipping the metrics lint (apt-get install prometheus)");
        return;
    };
    promtool.stdin.take().unwrap().write_all(scrape.as_bytes()).await.unwrap();
    let out = promtool.wait_with_output().await.unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool check metrics: {said}");
}

/// Sends a request until it is not refused with `503 busy` (the server hashes a bounded number of
/// passwords at once), waiting a fifth of what `Retry-After` says, with jitter; at most a minute.
pub async fn patiently<F, Fut>(send: F) -> Response
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<Response>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = send().await.unwrap();
        if r.status() != StatusCode::SERVICE_UNAVAILABLE || tokio::time::Instant::now() > deadline {
            return r;
        }
        let wait = r.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(1);
        tokio::time::sleep(Duration::from_millis(200 * wait + rand_jitter())).await;
    }
}

/// Up to 300 ms, so refused clients do not all come back at once.
fn rand_jitter() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::from(d.subsec_nanos()) % 300)
}

fn storage_args(cmd: &mut Command, data_dir: &tempfile::TempDir, db: &Db) {
    cmd.arg("--data-dir").arg(data_dir.path());
    if let Db::Postgres(url) = db {
        cmd.args(["--database-url", url]);
    }
    for var in [
        "OLIVE_CONFIG",
        "OLIVE_DATA_DIR",
        "OLIVE_DATABASE_URL",
        "OLIVE_OBJECT_STORE_URL",
        "OLIVE_BUS_URL",
        "OLIVE_HTTP_ADDR",
        "OLIVE_RTMP_ADDR",
        "OLIVE_PUBLIC_URL",
    ] {
        cmd.env_remove(var);
    }
}

/// A signed-in client using the bearer token from sign-up or login.
#[derive(Clone)]
pub struct Session {
    pub token: String,
    pub user: Value,
    pub base: String,
    pub client: Client,
    pub set_cookie: Option<String>,
}

impl Session {
    async fn from_response(server: &Server, r: Response) -> Session {
        let set_cookie = r.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = r.json().await.unwrap();
        Session {
            token: body["token"].as_str().unwrap().to_owned(),
            user: body["user"].clone(),
            base: server.base.clone(),
            client: server.client.clone(),
            set_cookie,
        }
    }

    pub fn id(&self) -> i64 {
        self.user["id"].as_i64().unwrap()
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.put(format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.patch(format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.delete(format!("{}{path}", self.base)).bearer_auth(&self.token)
    }
}

/// The error code of an error response, asserting the status.
pub async fn error_code(r: Response, status: StatusCode) -> String {
    assert_eq!(r.status(), status, "unexpected status");
    let body: Value = r.json().await.expect("errors are JSON");
    body["error"]["code"].as_str().expect("error.code").to_owned()
}

/// Waits until `url` answers at all (any status), for a server just started; `what` names it.
pub async fn wait_until_answers(url: &str, within: Duration, what: &str) {
    let client = Client::new();
    let deadline = std::time::Instant::now() + within;
    while client.get(url).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "{what} did not answer on {url} within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A loopback port nobody listens on at the moment of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills a server the hard way (`kill -9`), as a crash would.
pub fn kill_9(node: &Server) {
    let status = std::process::Command::new("kill").args(["-KILL", &node.pid().to_string()]).status().unwrap();
    assert!(status.success());
}

/// One order of one unit at `base`, giving the order id only for a `201 Created` (anything else,
/// a transport error included, is `None`): what a failover test's shopper logs as acknowledged.
pub async fn try_order(client: &Client, base: &str, token: &str, product: i64, key: &str) -> Option<i64> {
    let r = client
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({"items": [{"product_id": product, "quantity": 1}]}))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    (r.status() == StatusCode::CREATED).then_some(())?;
    r.json::<Value>().await.ok()?["id"].as_i64()
}
