//! Clients that mean harm, against the real binary: a path that climbs out of playback
//! forwarding, a crowd of sign-ups, headers that never end, connections that idle or pile up,
//! RTMP connections that never publish, oversized and endless WebSocket frames, and event reports
//! without a cookie. Each is refused or cut off, clearly, and nothing else is hurt.

use crate::helpers::*;
use futures::{SinkExt, StreamExt};
use olive_bus::Bus as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// One raw HTTP/1.1 request on a fresh connection; the status line's code, or 0 if the
/// connection closed without an answer.
async fn raw_status(base: &str, target: &str) -> u16 {
    let mut tcp = TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: olive\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

/// Whether the server closes `tcp` within `within` (a read returns the end, or an error).
async fn closed_within(tcp: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// A stand-in for the node that holds a live: it records every request line and the node
/// headers, and answers each `200 from-owner`.
/// Each request line a fake node saw, with its `x-olive-node-auth`.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

struct FakeNode {
    url: String,
    seen: Seen,
}

impl FakeNode {
    async fn start() -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Arc::default();
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let line = head.lines().next().unwrap_or_default().trim_end_matches(" HTTP/1.1").to_owned();
                    let auth = head
                        .lines()
                        .find_map(|l| l.to_ascii_lowercase().strip_prefix("x-olive-node-auth: ").map(str::to_owned));
                    log.lock().unwrap().push((line, auth));
                    let body = "from-owner";
                    let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                    let _ = tcp.write_all(answer.as_bytes()).await;
                });
            }
        });
        FakeNode { url, seen }
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(|(line, _)| line.clone()).collect()
    }
}

/// A bus name of this test's own on the test Redis, or `None` (with a notice) without one.
fn redis_bus(label: &str) -> Option<String> {
    let Ok(redis) = std::env::var("OLIVE_TEST_REDIS_URL") else {
        eprintln!("OLIVE_TEST_REDIS_URL is not set: skipping {label}");
        return None;
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    Some(format!("{redis}#{label}-{}-{nanos}", std::process::id()))
}

/// Point 1 (and 15): a live held by another node is forwarded there only as a path rebuilt from
/// what was parsed, so `..\..\metrics` reaches nothing on the owner; and a client that calls
/// itself a node is not believed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn playback_forwarding_sends_only_parsed_paths_and_believes_only_nodes() {
    let Some(bus) = redis_bus("traversal") else { return };
    let owner = FakeNode::start().await;
    let node = Server::start_with(Db::Sqlite, &["--bus-url", &bus]).await;
    let host = node.create_user("traversal-host@example.com", "host").await;
    let (channel, _) = crate::live::channel_with_key(&host, "Held elsewhere").await;
    // The fake node holds the live, as a real one would after taking the publish.
    let leases = olive_bus::redis_bus::RedisBus::open(&bus, None).unwrap();
    let holder = format!("node-a {}", owner.url);
    let lease = format!("live:{channel}");
    assert_eq!(leases.leases().acquire(&lease, &holder, Duration::from_secs(60)).await.unwrap(), None);

    for target in [
        format!("/live/{channel}/..\\..\\metrics"),
        format!("/live/{channel}/..%5C..%5Cmetrics"),
        format!("/live/{channel}/%2e%2e%2f%2e%2e%2fmetrics"),
        format!("/live/{channel}/seg-1.m4s%2f..%2f..%2fmetrics"),
        format!("/live/{channel}/..%5C..%5Capi%5Cv1%5Cusers"),
    ] {
        assert_eq!(raw_status(&node.base, &target).await, 404, "{target}");
    }
    assert_eq!(owner.requests(), Vec::<String>::new(), "nothing reached the owner");

    let blocking = format!("/live/{channel}/index.m3u8?_HLS_msn=5&_HLS_part=1&x=..%2f..%2fmetrics");
    for target in
        [blocking.as_str(), &format!("/live/{channel}/part-5-1.m4s"), &format!("/live/{channel}/thumbnail.jpg")]
    {
        let r = node.client.get(node.url(target)).send().await.unwrap();
        assert_eq!((r.status(), r.text().await.unwrap()), (StatusCode::OK, "from-owner".to_owned()), "{target}");
    }
    // A client sending the node header itself is forwarded like any client (before, it was
    // believed: not forwarded, and not metered).
    let spoofed =
        node.client.get(node.url(&format!("/live/{channel}/seg-7.m4s"))).header("x-olive-forwarded", "node-x");
    assert_eq!(spoofed.send().await.unwrap().text().await.unwrap(), "from-owner");
    let seen = owner.seen.lock().unwrap().clone();
    let lines: Vec<&str> = seen.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        lines,
        [
            format!("GET /live/{channel}/index.m3u8?_HLS_msn=5&_HLS_part=1"),
            format!("GET /live/{channel}/part-5-1.m4s"),
            format!("GET /live/{channel}/thumbnail.jpg"),
            format!("GET /live/{channel}/seg-7.m4s"),
        ]
    );
    for (line, auth) in &seen {
        let auth = auth.as_deref().unwrap_or_default();
        assert!(auth.len() == 64 && auth.bytes().all(|b| b.is_ascii_hexdigit()), "{line}: node auth {auth:?}");
    }
}

/// Loopback addresses 127.0.x.y, so a test can be many clients.
fn loopback(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, (n / 250) as u8 + 1, (n % 250) as u8 + 2))
}

/// The peak resident memory of a process so far, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Point 2: 300 sign-ups at once from 300 addresses (so no per-address limit helps) cost a
/// bounded amount of memory: the password hashes run one per core, a few wait, and the rest are
/// told `503 busy` with `Retry-After` at once. Before, each took 19 MiB on a blocking thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_parallel_signups_cost_bounded_memory_and_get_clear_refusals() {
    let node = Server::start().await;
    let before = peak_rss_kib(node.pid());
    // Every client is made first and each sign-up is a task of its own, so all 300 go out at once
    // and each sends its request as soon as it connects (a connection that sends nothing for 10 s
    // is closed by the server, rightly).
    let clients: Vec<reqwest::Client> =
        (0..300).map(|n| reqwest::Client::builder().local_address(loopback(n)).build().unwrap()).collect();
    let attempts: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(n, client)| {
            let url = node.url("/api/v1/auth/signup");
            tokio::spawn(async move {
                let body = json!({"email": format!("crowd-{n}@example.com"), "password": PASSWORD});
                let r = client.post(url).json(&body).send().await?;
                let retry_after = r.headers().contains_key("retry-after");
                Ok::<_, reqwest::Error>((r.status(), retry_after, r.json::<Value>().await?))
            })
        })
        .collect();
    let (mut answers, mut failed) = (Vec::with_capacity(attempts.len()), Vec::new());
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(answer) => answers.push(answer),
            Err(e) => failed.push(e.to_string()),
        }
    }
    if !failed.is_empty() {
        let logs = node.output.lock().unwrap().join("\n");
        panic!("{} sign-ups got no answer: {failed:?}\nserver log:\n{logs}", failed.len());
    }
    let accepted = answers.iter().filter(|(s, _, _)| *s == StatusCode::ACCEPTED).count();
    let busy = answers.iter().filter(|(s, _, _)| *s == StatusCode::SERVICE_UNAVAILABLE).count();
    assert_eq!(accepted + busy, 300, "only accepted or busy: {answers:?}");
    assert!(accepted >= 2, "some were served: {accepted}");
    assert!(busy > 0, "past the hashing queue, refusals");
    for (status, retry_after, body) in &answers {
        if *status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(retry_after, "a refusal says when to come back");
            assert_eq!(body["error"]["code"], "busy");
        }
    }
    let peak = peak_rss_kib(node.pid());
    eprintln!("300 parallel sign-ups: {accepted} accepted, {busy} busy; peak RSS {before} -> {peak} KiB");
    assert!(peak < 400 * 1024, "peak RSS {peak} KiB: hashing memory is bounded");
    // The refused come back and get in, as a client following Retry-After would.
    let late = node.signup("crowd-late@example.com").await;
    assert_eq!(late.get("/api/v1/me").send().await.unwrap().status(), StatusCode::OK);
}

/// Point 3: a request head that never completes is cut off after the header timeout.
#[tokio::test]
async fn a_slow_header_client_is_closed() {
    let node = Server::start_with(Db::Sqlite, &["--http-header-timeout-secs", "1"]).await;
    let mut tcp = TcpStream::connect(node.base.trim_start_matches("http://")).await.unwrap();
    tcp.write_all(b"GET /api/v1/channels HTTP/1.1\r\nHost: olive\r\nX-Slow: ").await.unwrap();
    let started = Instant::now();
    // More header bytes now and then do not keep it open.
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if tcp.write_all(b"a").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), trickle).await;
    assert!(closed_within(&mut tcp, Duration::from_secs(1)).await, "still open after {:?}", started.elapsed());
    // Others are served as usual.
    assert_eq!(node.client.get(node.url("/livez")).send().await.unwrap().status(), StatusCode::OK);
}

/// Point 3: a keep-alive connection with nothing in flight is closed after the idle timeout, and
/// one that sends nothing at all after the peek timeout.
#[tokio::test]
async fn idle_and_silent_connections_are_closed() {
    let flags = ["--http-idle-timeout-secs", "1", "--http-peek-timeout-secs", "1"];
    let node = Server::start_with(Db::Sqlite, &flags).await;
    let addr = node.base.trim_start_matches("http://").to_owned();
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /livez HTTP/1.1\r\nHost: olive\r\n\r\n").await.unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut idle, Duration::from_secs(4)).await, "an idle keep-alive connection stays open");
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(4)).await, "a silent connection stays open");
    // A connection in use, with pauses shorter than the idle timeout, stays open.
    let mut busy = TcpStream::connect(&addr).await.unwrap();
    for _ in 0..3 {
        busy.write_all(b"GET /livez HTTP/1.1\r\nHost: olive\r\n\r\n").await.unwrap();
        let n = busy.read(&mut answer).await.unwrap();
        assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"), "served while in use");
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
}

/// Point 3: past the connection cap a new connection is answered `503` and closed, while the
/// open ones go on working; once one closes, a new one gets in.
#[tokio::test]
async fn past_the_connection_cap_new_connections_are_refused_and_open_ones_work() {
    let node = Server::start_with(Db::Sqlite, &["--http-max-connections", "4"]).await;
    let addr = node.base.trim_start_matches("http://").to_owned();
    let mut open = Vec::new();
    for _ in 0..4 {
        let mut tcp = TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(b"GET /livez HTTP/1.1\r\nHost: olive\r\n\r\n").await.unwrap();
        let mut answer = [0u8; 512];
        let n = tcp.read(&mut answer).await.unwrap();
        assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
        open.push(tcp);
    }
    let mut refused = TcpStream::connect(&addr).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), refused.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1") && answer.contains("too_many_connections"), "{answer}");
    // The open connections are still served.
    for tcp in &mut open {
        tcp.write_all(b"GET /livez HTTP/1.1\r\nHost: olive\r\n\r\n").await.unwrap();
        let mut answer = [0u8; 512];
        let n = tcp.read(&mut answer).await.unwrap();
        assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    }
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if raw_status(&node.base, "/livez").await == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "a freed place was never given again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The RTMP handshake (RTMP 1.0 §5.2), done by hand so the test can then misbehave.
async fn rtmp_handshake(rtmp: &str) -> TcpStream {
    let addr = rtmp.trim_start_matches("rtmp://").trim_end_matches("/live");
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(0u8, 8));
    c0c1.extend((0..1528).map(|i| (i % 251) as u8));
    tcp.write_all(&c0c1).await.unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 1536 + 1536];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut s0s1s2)).await.unwrap().unwrap();
    tcp.write_all(&s0s1s2[1..1537]).await.unwrap();
    tcp
}

/// Point 6: RTMP connections that never publish are closed at the publish deadline even while
/// they keep sending; past a few per address, more are refused at once; and before a publish a
/// message may not be large.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rtmp_connections_that_never_publish_are_cut_off() {
    let flags = ["--rtmp-publish-timeout-secs", "2", "--rtmp-unpublished-per-address", "2"];
    let node = Server::start_with(Db::Sqlite, &flags).await;
    // Two connections trickle an unfinished command, a byte every 300 ms: reads never time out.
    let trickler = |mut tcp: TcpStream| async move {
        // A Type 0 header on chunk stream 3: a 100-byte AMF0 command (type 20), stream 0.
        let header = [0x03u8, 0, 0, 0, 0, 0, 100, 20, 0, 0, 0, 0];
        let started = Instant::now();
        for byte in header.iter().chain(std::iter::repeat_n(&0x05u8, 99)) {
            if tcp.write_all(&[*byte]).await.is_err() {
                return started.elapsed();
            }
            let mut buf = [0u8; 4096];
            match tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
                _ => {}
            }
        }
        Duration::MAX
    };
    let first = tokio::spawn(trickler(rtmp_handshake(&node.rtmp).await));
    let second = tokio::spawn(trickler(rtmp_handshake(&node.rtmp).await));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A third from the same address is refused at once.
    let addr = node.rtmp.trim_start_matches("rtmp://").trim_end_matches("/live");
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut third, Duration::from_secs(1)).await, "a third unpublished connection is kept");
    for task in [first, second] {
        let lasted = task.await.unwrap();
        assert!(lasted < Duration::from_secs(5), "a connection that never published lasted {lasted:?}");
    }
    // Before a publish, a message the size of a keyframe is refused (commands are small).
    let mut big = rtmp_handshake(&node.rtmp).await;
    let mut header = vec![0x03u8, 0, 0, 0, 0x10, 0, 0, 20, 0, 0, 0, 0];
    header.extend(std::iter::repeat_n(0x05u8, 128));
    let _ = big.write_all(&header).await;
    assert!(closed_within(&mut big, Duration::from_secs(2)).await, "a 1 MiB message before publishing is taken");
}

async fn websocket(node: &Server, channel: i64) -> crate::room::Socket {
    crate::room::connect(node, channel, None).await
}

/// Point 10: a frame larger than the protocol allows closes the socket; hearts past a person's
/// pace are not counted; junk past a few frames closes the socket; other viewers carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_websocket_frames_and_floods_are_cut_off() {
    let node = Server::start().await;
    let host = node.create_user("ws-flood-host@example.com", "host").await;
    let (channel, _) = crate::live::channel_with_key(&host, "Flooded").await;
    let mut watcher = websocket(&node, channel).await;

    let mut big = websocket(&node, channel).await;
    let frame = json!({"type": "chat", "text": "x".repeat(5000)}).to_string();
    let _ = big.send(Message::Text(frame.into())).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match big.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => continue,
            }
        }
    });
    assert!(closed.await.unwrap_or(false), "a 5 kB frame keeps the socket open");

    // 60 hearts at once from one socket: at most the burst (20) are counted.
    let mut tapper = websocket(&node, channel).await;
    for _ in 0..60 {
        tapper.send(Message::Text(r#"{"type":"heart"}"#.into())).await.unwrap();
    }
    let mut counted = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    while let Some(frame) = crate::room::next(&mut watcher, deadline.saturating_duration_since(Instant::now())).await {
        if frame["type"] == "hearts" {
            counted += frame["count"].as_i64().unwrap();
        }
    }
    assert_eq!(counted, 20, "hearts past the pace are not counted");

    let mut junk = websocket(&node, channel).await;
    let mut closed = false;
    for _ in 0..20 {
        if junk.send(Message::Text("not json".into())).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !closed {
        closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match junk.next().await {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                    Some(Ok(_)) => continue,
                }
            }
        })
        .await
        .unwrap_or(false);
    }
    assert!(closed, "a socket sending only junk stays open");
    // The watcher is still in the room.
    let mut tapper2 = websocket(&node, channel).await;
    tapper2.send(Message::Text(r#"{"type":"heart"}"#.into())).await.unwrap();
    assert_eq!(crate::room::next_of(&mut watcher, "hearts", Duration::from_secs(5)).await["count"], 1);
}

/// Point 8: a client that drops its cookie is a new visitor each time, but not a new address:
/// a loop of cookieless reports is limited, and another address is not.
#[tokio::test]
async fn cookieless_event_loops_are_limited_per_address() {
    let node = Server::start().await;
    let report = json!({"events": [{"type": "view", "target": {"kind": "product", "id": 1}}]});
    let mut limited = None;
    for n in 0..300 {
        let r = node.client.post(node.url("/api/v1/events")).json(&report).send().await.unwrap();
        match r.status() {
            StatusCode::ACCEPTED => continue,
            StatusCode::TOO_MANY_REQUESTS => {
                limited = Some(n);
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let limited = limited.expect("300 cookieless reports in a row were all taken");
    assert!((100..=140).contains(&limited), "limited after {limited}");
    let elsewhere = reqwest::Client::builder().local_address(loopback(7)).build().unwrap();
    let r = elsewhere.post(node.url("/api/v1/events")).json(&report).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED, "another address is not limited by this one");
}
