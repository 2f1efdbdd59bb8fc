//! Three nodes behind nginx, on loopback: one PostgreSQL database, one Redis, one S3-compatible
//! server (moto), and Debian's nginx in front. ffmpeg publishes to node 1; viewers follow the live
//! through nginx's playback pool (nodes 2 and 3, which forward to node 1); chat crosses nodes; a
//! flash sale of 100 units owned by node 2 meets 2,000 buyers through nginx, and node 2 is killed
//! (`kill -9`) in the middle of it. Then node 1, the ingesting node, is killed too: its live is
//! shown offline until the broadcaster reconnects to node 3.
//!
//! Skipped with a notice unless ffmpeg, nginx, moto, PostgreSQL and Redis are all at hand (CI has
//! them all).

use crate::helpers::*;
use crate::live::{channel_with_key, clip, have_ffmpeg, publish};
use crate::room::{connect, next_of, send};
use crate::s3::S3Server;
use futures::StreamExt;
use olive_bench::hls::hinted_part;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const BUYERS: usize = 2_000;
const UNITS: i64 = 100;

/// Debian's nginx in front of the nodes: every route over all of them, live playback over the
/// nodes that do not ingest.
struct Nginx {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

fn nginx_binary() -> Option<&'static str> {
    ["/usr/sbin/nginx", "nginx"].into_iter().find(|bin| {
        std::process::Command::new(bin)
            .arg("-v")
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

impl Nginx {
    async fn start(bin: &str, all: &[&Server], playback: &[&Server]) -> Nginx {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // Workers run as nobody when nginx is started as root: they need to reach the temp dirs.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o777)).unwrap();
        let servers = |nodes: &[&Server]| {
            nodes
                .iter()
                .map(|n| format!("server {} max_fails=1 fail_timeout=5s;", n.base.trim_start_matches("http://")))
                .collect::<Vec<_>>()
                .join("\n        ")
        };
        let port = free_port();
        let (d, t) = (dir.path().display(), tmp.display());
        let conf = format!(
            r#"
worker_processes 1;
worker_rlimit_nofile 16384;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {t}/body;
    proxy_temp_path {t}/proxy;
    fastcgi_temp_path {t}/fastcgi;
    uwsgi_temp_path {t}/uwsgi;
    scgi_temp_path {t}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    upstream olive {{
        {all}
        keepalive 64;
    }}
    upstream playback {{
        {playback}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_connect_timeout 1s;
        proxy_read_timeout 30s;
        proxy_next_upstream error timeout http_502;
        location /live/ {{
            proxy_buffering off;
            proxy_pass http://playback;
        }}
        location / {{
            proxy_pass http://olive;
        }}
    }}
}}
"#,
            all = servers(all),
            playback = servers(playback),
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start nginx");
        let base = format!("http://127.0.0.1:{port}");
        wait_until_answers(&format!("{base}/livez"), Duration::from_secs(20), "nginx").await;
        Nginx { child, base, _dir: dir }
    }
}

impl Drop for Nginx {
    /// SIGTERM to the master, which stops its worker too (SIGKILL would leave the worker behind).
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
    }
}

/// `session`, talking to `base` instead.
fn via(session: &Session, base: &str) -> Session {
    Session { base: base.to_owned(), ..session.clone() }
}

/// What one LL-HLS viewer saw.
#[derive(Debug, Default)]
struct Watched {
    parts: u64,
    errors: u64,
    /// Parts fetched after node 2 was killed.
    parts_after_kill: u64,
}

/// Follows a live as an LL-HLS player does: the playlist, then the part its preload hint names
/// (which blocks until it is cut), then the playlist again blocking on that part. Any failure starts
/// over from a plain playlist request.
async fn follow(base: String, channel: i64, stop: Arc<AtomicBool>, killed: Arc<AtomicBool>) -> Watched {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
    let mut seen = Watched::default();
    let mut query = String::new();
    while !stop.load(Ordering::Acquire) {
        let playlist = client.get(format!("{base}/live/{channel}/index.m3u8{query}")).send().await;
        let text = match playlist {
            Ok(r) if r.status() == StatusCode::OK => r.text().await.unwrap_or_default(),
            _ => {
                seen.errors += 1;
                query.clear();
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Some((hint, msn, index)) = hinted_part(&text) else {
            query.clear();
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let part = match client.get(format!("{base}/live/{channel}/{hint}")).send().await {
            Ok(r) if r.status() == StatusCode::OK => r.bytes().await.ok(),
            _ => None,
        };
        match part {
            Some(bytes) if !bytes.is_empty() => {
                seen.parts += 1;
                if killed.load(Ordering::Acquire) {
                    seen.parts_after_kill += 1;
                }
                query = format!("?_HLS_msn={msn}&_HLS_part={index}");
            }
            _ => {
                seen.errors += 1;
                query.clear();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    seen
}

/// What the sale's buyers got.
#[derive(Default)]
struct Sale {
    /// Every order id a buyer was given (201, or 200 for a retry of the same key).
    acknowledged: Vec<i64>,
    refused: u64,
    retries: u64,
}

/// One buyer presses "buy" once (after `delay`), and again with the same key whenever the answer
/// was not final (a node went away, or the deal's owner did not answer), until `deadline`.
async fn press_buy(
    client: reqwest::Client,
    base: String,
    token: String,
    product: i64,
    key: String,
    delay: Duration,
) -> (Option<i64>, bool, u64) {
    tokio::time::sleep(delay).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut retries = 0;
    loop {
        let r = client
            .post(format!("{base}/api/v1/orders"))
            .bearer_auth(&token)
            .header("idempotency-key", &key)
            .json(&json!({"items": [{"product_id": product, "quantity": 1}]}))
            .send()
            .await;
        if let Ok(r) = r {
            match r.status() {
                StatusCode::CREATED | StatusCode::OK => {
                    let order: Value = r.json().await.unwrap();
                    assert_eq!(order["items"][0]["unit_price_minor"], 7_000, "sold at the deal's price");
                    return (order["id"].as_i64(), false, retries);
                }
                StatusCode::CONFLICT => {
                    let body: Value = r.json().await.unwrap();
                    assert_eq!(body["error"]["code"], "out_of_stock", "{body}");
                    return (None, true, retries);
                }
                StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {}
                other => panic!("unexpected answer to a buyer: {other} {}", r.text().await.unwrap_or_default()),
            }
        }
        assert!(Instant::now() < deadline, "buyer {key} got no final answer in 90 s");
        retries += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_behind_nginx_share_lives_chat_and_a_flash_sale() {
    if !have_ffmpeg() {
        return;
    }
    let Some(nginx) = nginx_binary() else {
        eprintln!("nginx is not installed: skipping the three-node test (apt-get install nginx-light)");
        return;
    };
    let Some(db) = Db::postgres().await else { return };
    let Ok(redis) = std::env::var("OLIVE_TEST_REDIS_URL") else {
        eprintln!("OLIVE_TEST_REDIS_URL is not set: skipping the three-node test");
        return;
    };
    let Some(s3) = S3Server::start().await else { return };
    let _cpu = CPU_HEAVY.lock().await;
    let bus = format!("{redis}#cluster-{}", std::process::id());
    let objects = s3.url("cluster");
    let start = |name: &'static str| {
        let (db, bus, objects, env) = (db.clone(), bus.clone(), objects.clone(), s3.env());
        async move {
            let flags = ["--bus-url", &bus, "--node-id", name, "--object-store-url", &objects];
            Server::start_with_flags_and_env(db, &[&flags[..], &["--trusted-proxies", "127.0.0.1"]].concat(), &env)
                .await
        }
    };
    let node1 = start("node-1").await;
    let node2 = start("node-2").await;
    let node3 = start("node-3").await;
    let lb = Nginx::start(nginx, &[&node1, &node2, &node3], &[&node2, &node3]).await;

    // A host and an admin; a product of 100 units on the show's line-up.
    let admin = via(&node1.create_user("cluster-admin@example.com", "admin").await, &lb.base);
    let host = via(&node1.create_user("cluster-host@example.com", "host").await, &lb.base);
    let product = node1.product(&admin, "Cushion compact", UNITS).await;
    let (channel, key) = channel_with_key(&host, "Three nodes").await;
    let r = host.put(&format!("/api/v1/channels/{channel}/lineup")).json(&json!({"product_ids": [product]})).send();
    assert_eq!(r.await.unwrap().status(), StatusCode::OK);

    // ffmpeg publishes to node 1; the live plays through nodes 2 and 3 and through nginx.
    let clip = clip(node1.data_dir.path()).await;
    let mut publisher = publish(&clip, &format!("{}/{key}", node1.rtmp));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let playlist = loop {
        let r = client.get(format!("{}/live/{channel}/index.m3u8", node3.base)).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        if status == StatusCode::OK && text.matches("#EXTINF:").count() >= 2 {
            break text;
        }
        assert!(Instant::now() < deadline, "node 3 never served node 1's live: {status} {text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let listed: Value =
        client.get(format!("{}/api/v1/channels/{channel}", lb.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["status"], "live");
    // A blocking reload on node 2 waits for the next part on node 1, as on node 1 itself.
    let (_, msn, index) = hinted_part(&playlist).expect("a live playlist hints its next part");
    let asked = Instant::now();
    let blocked = client
        .get(format!("{}/live/{channel}/index.m3u8?_HLS_msn={msn}&_HLS_part={index}", node2.base))
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), StatusCode::OK);
    let text = blocked.text().await.unwrap();
    assert!(text.contains(&format!("part-{msn}-{index}.m4s")), "answered once the part was cut: {text}");
    assert!(asked.elapsed() < Duration::from_secs(6), "within three target durations");
    let probed = crate::live::ffprobe(
        &["-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0"],
        &format!("{}/live/{channel}/index.m3u8", lb.base),
    )
    .await;
    assert!(probed.contains("h264,1280,720") && probed.contains("aac"), "ffprobe through nginx: {probed}");
    let thumb_deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = client.get(format!("{}/live/{channel}/thumbnail.jpg", node3.base)).send().await.unwrap();
        if r.status() == StatusCode::OK {
            assert_eq!(r.headers()["content-type"], "image/jpeg");
            break;
        }
        assert!(Instant::now() < thumb_deadline, "node 3 never served the live's thumbnail");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Viewers follow the live through nginx for the rest of the test.
    let (stop_viewers, killed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let viewers: Vec<_> =
        (0..6).map(|_| tokio::spawn(follow(lb.base.clone(), channel, stop_viewers.clone(), killed.clone()))).collect();

    // Chat crosses nodes both ways; each node counts the viewers of every node.
    let chatter = node1.signup("cluster-chatter@example.com").await;
    let chatter3 = node3.signup("cluster-chatter3@example.com").await;
    let mut on1 = connect(&node1, channel, Some(&chatter.token)).await;
    let mut on3 = connect(&node3, channel, Some(&chatter3.token)).await;
    send(&mut on1, json!({"type": "chat", "text": "hello from node 1"})).await;
    assert_eq!(next_of(&mut on3, "chat", Duration::from_secs(5)).await["text"], "hello from node 1");
    send(&mut on3, json!({"type": "chat", "text": "안녕 from node 3"})).await;
    let mut heard = next_of(&mut on1, "chat", Duration::from_secs(5)).await;
    if heard["text"] == "hello from node 1" {
        heard = next_of(&mut on1, "chat", Duration::from_secs(5)).await;
    }
    assert_eq!(heard["text"], "안녕 from node 3");
    let count_deadline = Instant::now() + Duration::from_secs(10);
    while next_of(&mut on3, "viewers", Duration::from_secs(5)).await["count"].as_i64() < Some(2) {
        assert!(Instant::now() < count_deadline, "node 3 never counted node 1's viewer");
    }

    // 2,000 shoppers sign up through nginx (spread over the three nodes).
    let signed_up: Vec<String> = futures::stream::iter(0..BUYERS)
        .map(|i| {
            let (client, base) = (client.clone(), lb.base.clone());
            async move {
                let account = json!({"email": format!("buyer-{i}@cluster.example.com"), "password": PASSWORD});
                let r = patiently(|| client.post(format!("{base}/api/v1/auth/signup")).json(&account).send()).await;
                assert_eq!(r.status(), StatusCode::ACCEPTED);
                let r = patiently(|| client.post(format!("{base}/api/v1/auth/login")).json(&account).send()).await;
                assert_eq!(r.status(), StatusCode::OK);
                r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
            }
        })
        .buffer_unordered(12)
        .collect()
        .await;

    // The host starts the deal on node 2, which owns it; the other nodes forward to it.
    let host2 = via(&host, &node2.base);
    let r = host2
        .post(&format!("/api/v1/channels/{channel}/deals"))
        .json(&json!({"product_id": product, "price_minor": 7_000, "quantity": UNITS,
                      "per_customer_limit": 1, "duration_s": 300}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let deal = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert_eq!(next_of(&mut on1, "deal", Duration::from_secs(5)).await["id"].as_i64(), Some(deal));
    drop((on1, on3));

    // Every buyer presses "buy" within four seconds; node 2 is killed once 20 orders are in.
    let buy_client =
        reqwest::Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(BUYERS).build().unwrap();
    let created = Arc::new(AtomicU64::new(0));
    let buyers: Vec<_> = signed_up
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let (client, base, created) = (buy_client.clone(), lb.base.clone(), created.clone());
            let delay = Duration::from_millis((i as u64 * 7_919) % 4_000);
            tokio::spawn(async move {
                let answer = press_buy(client, base, token, product, format!("cluster-{i}"), delay).await;
                if answer.0.is_some() {
                    created.fetch_add(1, Ordering::AcqRel);
                }
                answer
            })
        })
        .collect();
    let kill_deadline = Instant::now() + Duration::from_secs(30);
    while created.load(Ordering::Acquire) < 20 {
        assert!(Instant::now() < kill_deadline, "20 orders never came");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    kill_9(&node2);
    killed.store(true, Ordering::Release);
    let at_kill = created.load(Ordering::Acquire);
    let mut sale = Sale::default();
    for b in buyers {
        let (order, refused, retries) = b.await.unwrap();
        sale.acknowledged.extend(order);
        sale.refused += u64::from(refused);
        sale.retries += retries;
    }
    eprintln!(
        "flash sale: {} orders ({} before node 2 was killed), {} refused, {} retries",
        sale.acknowledged.len(),
        at_kill,
        sale.refused,
        sale.retries
    );
    assert!(at_kill < UNITS as u64, "node 2 died in the middle of the sale ({at_kill} sold before)");
    let distinct: HashSet<i64> = sale.acknowledged.iter().copied().collect();
    assert_eq!(distinct.len(), sale.acknowledged.len(), "one order per buyer");
    assert_eq!(sale.acknowledged.len() as i64, UNITS, "exactly the units listed were sold");
    assert_eq!(sale.refused, (BUYERS as u64) - UNITS as u64);

    // The database agrees: 100 orders for the product, the very ones acknowledged; the deal sold 100.
    let Db::Postgres(url) = &node1.db else { unreachable!() };
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let stored: Vec<i64> = sqlx::query_scalar("SELECT order_id FROM order_items WHERE product_id = $1")
        .bind(product)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(stored.iter().copied().collect::<HashSet<i64>>(), distinct, "no acknowledged order lost, none extra");
    let d: Value = client.get(format!("{}/api/v1/deals/{deal}", lb.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!((d["sold"].as_i64(), d["listed"].as_i64()), (Some(UNITS), Some(UNITS)), "{d}");

    // Viewers kept watching through node 3 once node 2 was gone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_viewers.store(true, Ordering::Release);
    for v in viewers {
        let watched = v.await.unwrap();
        eprintln!("viewer: {watched:?}");
        assert!(watched.parts_after_kill >= 4, "a viewer kept playing after node 2 died: {watched:?}");
    }

    // Node 1, which ingests the live, dies: the live is shown offline until the broadcaster
    // reconnects, to node 3.
    kill_9(&node1);
    let _ = publisher.kill().await;
    let offline_deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let c: Value =
            client.get(format!("{}/api/v1/channels/{channel}", node3.base)).send().await.unwrap().json().await.unwrap();
        if c["status"] == "offline" {
            break;
        }
        assert!(Instant::now() < offline_deadline, "the dead node's live never went offline: {c}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    publisher = publish(&clip, &format!("{}/{key}", node3.rtmp));
    let live_deadline = Instant::now() + Duration::from_secs(40);
    loop {
        // Refused while the sweep that marked it offline still held the channel: OBS would retry too.
        if publisher.try_wait().unwrap().is_some() {
            publisher = publish(&clip, &format!("{}/{key}", node3.rtmp));
        }
        let r = client.get(format!("{}/live/{channel}/index.m3u8", lb.base)).send().await.unwrap();
        let (status, text) = (r.status(), r.text().await.unwrap());
        if status == StatusCode::OK && text.matches("#EXTINF:").count() >= 1 && !text.contains("#EXT-X-ENDLIST") {
            break;
        }
        assert!(Instant::now() < live_deadline, "the live never came back on node 3: {status} {text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let c: Value =
        client.get(format!("{}/api/v1/channels/{channel}", lb.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(c["status"], "live");
    let _ = publisher.kill().await;
    assert!(node3.stop().await.success());
}
