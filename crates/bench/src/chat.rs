//! `olive bench chat`: one channel's live room under load. N viewer sockets (spread over several
//! 127.0.0.x source addresses, so the client side does not run out of ports) listen, M signed-in
//! chatters send at a total rate for a bounded time, and every viewer times every bench message
//! from the moment it was sent (the send time rides in the text) to the moment it arrived. The
//! chatters may also tap hearts in bursts, once a second each; the room announces hearts as one
//! count per tick, and every viewer adds the counts up, so a heart the room dropped shows.
//! Reports delivery latency p50/p99/max, messages delivered per second, messages lost, and the
//! server's CPU and RSS (per viewer too) when given its pid.

use crate::stats::{sample_process, Histogram, Percentiles};
use anyhow::Context;
use futures::{SinkExt, StreamExt};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// `http://127.0.0.1:8080`
    pub base: String,
    pub channel: i64,
    pub viewers: usize,
    /// Bearer tokens of the accounts that chat.
    pub chatters: Vec<String>,
    /// Messages per second, all chatters together.
    pub rate: f64,
    /// Hearts per second, all chatters together, each chatter's share sent as one burst a second.
    pub hearts: u64,
    pub duration: Duration,
    /// Viewers are spread over 127.0.0.1 … 127.0.0.N.
    pub source_addresses: u8,
    pub server_pids: Vec<u32>,
    pub allow_remote: bool,
    /// The run's name in the bench messages' text. Several bench processes given the same one
    /// (one chatting, others only listening with no chatters) measure one room together, each
    /// with its own viewers, when one process cannot hold them all.
    pub run_id: Option<String>,
    /// Where each delivery's latency is also recorded by second, for plots and progress.
    pub timeline: Option<Arc<crate::timeline::Timeline>>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ChatReport {
    pub viewers: usize,
    pub viewers_failed: usize,
    pub chatters: usize,
    pub sent: u64,
    pub refused: u64,
    pub delivered: u64,
    /// `None` when only listening (this process does not know how many were sent).
    pub lost: Option<u64>,
    pub delivered_per_second: f64,
    pub hearts_sent: u64,
    /// Hearts sent but missing from a viewer's announced total, summed over viewers (`None` when
    /// only listening).
    pub hearts_lost: Option<u64>,
    /// From send to the frame reaching the viewer's socket (the kernel's receive timestamp).
    pub latency: Percentiles,
    /// From send to the load generator reading it (adds this process's own queueing).
    pub latency_read: Percentiles,
    pub server_cpu_percent: Option<f64>,
    pub server_rss_mib: Option<f64>,
    /// Server RSS growth per connected viewer, measured idle before chatting starts.
    pub rss_per_idle_viewer_kib: Option<f64>,
}

fn unix_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The send time in microseconds, if `frame` is a chat frame of bench run `run` (a joining viewer
/// is also sent the room's recent history, which may hold earlier runs' messages). Found by
/// searching the text rather than parsing the JSON: the load generator shares the machine with the
/// server, and at a million frames a second a full parse per frame would be its bottleneck.
/// What precedes a bench message's fields in a chat frame of run `run`.
fn marker(run: &str) -> String {
    format!(r#""text":"bench:{run}:"#)
}

fn sent_after_marker(frame: &str, marker: &str) -> Option<u64> {
    if !frame.starts_with(r#"{"type":"chat""#) {
        return None;
    }
    let rest = &frame[frame.find(marker)? + marker.len()..];
    let body = &rest[..rest.find('"')?];
    body.rsplit(':').next()?.parse().ok()
}

/// The count of a hearts frame (`{"type":"hearts","count":N}`), found without a full parse as
/// chat frames are.
fn hearts_count(frame: &str) -> Option<u64> {
    let rest = frame.strip_prefix(r#"{"type":"hearts","count":"#)?;
    let digits = rest.find(|c: char| !c.is_ascii_digit()).map_or(rest, |end| &rest[..end]);
    digits.parse().ok()
}

/// Asks the kernel to stamp received data with the time it arrived (`SO_TIMESTAMPNS`), so delivery
/// is timed to the viewer's socket, not to when this process got round to reading it: one load
/// generator reading 19,000 sockets after a burst is itself a queue real viewers do not have.
fn receive_timestamps(stream: &tokio::net::TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor, and an option value of the size given.
    let done = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// One `recvmsg`: the bytes read, and the arrival time of the last of them (Unix microseconds)
/// when the kernel stamped it.
fn recv_stamped(stream: &tokio::net::TcpStream, buf: &mut [u8]) -> std::io::Result<(usize, Option<u64>)> {
    use std::os::fd::AsRawFd;
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // Room for one control message holding a timespec, aligned as cmsghdr needs.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: a valid socket descriptor and a msghdr whose buffers are live and sized.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: walking the control messages the kernel wrote into `control`, with its macros.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                stamp = Some(ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000);
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, stamp))
}

/// A listening viewer's connection, read without a WebSocket library: the server's frames are
/// unmasked and small, so each is a 2- or 4-byte header and a payload read straight out of one
/// buffer. At two million frames a second on the machine the server runs on, a library's
/// per-message allocation and checks would make the load generator the bottleneck.
struct RawViewer {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
    /// Where unread bytes start in `buffer`.
    start: usize,
}

impl RawViewer {
    async fn connect(target: SocketAddr, source: IpAddr, authority: &str, path: &str) -> anyhow::Result<Self> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tcp_from(source, target).await?;
        receive_timestamps(&stream)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: b2xpdmUtYmVuY2gtdmlld2Vy\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buffer = vec![0u8; 16 * 1024];
        let mut filled = 0;
        let head_end = loop {
            let n = stream.read(&mut buffer[filled..]).await?;
            anyhow::ensure!(n > 0, "the server closed during the upgrade");
            filled += n;
            if let Some(i) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            anyhow::ensure!(filled < buffer.len(), "an upgrade answer larger than 16 KiB");
        };
        anyhow::ensure!(buffer.starts_with(b"HTTP/1.1 101"), "the upgrade was refused");
        buffer.truncate(filled);
        Ok(RawViewer { stream, buffer, start: head_end })
    }

    /// Calls `on_text` with every text frame, the time its bytes reached this socket (the
    /// kernel's receive timestamp, in Unix microseconds) and the time they were read, until the
    /// connection ends.
    async fn read_texts(&mut self, mut on_text: impl FnMut(&str, u64, u64)) -> anyhow::Result<()> {
        let (mut arrived, mut read_at) = (unix_micros(), unix_micros());
        loop {
            // Every whole frame in the buffer.
            loop {
                let unread = &self.buffer[self.start..];
                if unread.len() < 2 {
                    break;
                }
                let opcode = unread[0] & 0x0f;
                let (len, header) = match unread[1] & 0x7f {
                    126 if unread.len() >= 4 => (u16::from_be_bytes([unread[2], unread[3]]) as usize, 4),
                    127 if unread.len() >= 10 => {
                        (u64::from_be_bytes(unread[2..10].try_into().expect("8 bytes")) as usize, 10)
                    }
                    126 | 127 => break,
                    n => (n as usize, 2),
                };
                anyhow::ensure!(len <= 16 << 20, "a frame of {len} bytes");
                if unread.len() < header + len {
                    break;
                }
                match opcode {
                    0x1 => on_text(std::str::from_utf8(&unread[header..header + len])?, arrived, read_at),
                    0x8 => return Ok(()),
                    _ => {}
                }
                self.start += header + len;
            }
            // Keep the partial frame at the front, then read more after it.
            self.buffer.drain(..self.start);
            self.start = 0;
            let filled = self.buffer.len();
            let want = (filled + 16 * 1024).max(self.buffer.capacity());
            self.buffer.resize(want, 0);
            let (n, stamp) = loop {
                self.stream.readable().await?;
                let stream = &self.stream;
                let free = &mut self.buffer[filled..];
                match stream.try_io(tokio::io::Interest::READABLE, || recv_stamped(stream, free)) {
                    Ok(got) => break got,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            self.buffer.truncate(filled + n);
            if n == 0 {
                return Ok(());
            }
            // Everything one read brings is stamped with its last segment's arrival.
            read_at = unix_micros();
            arrived = stamp.unwrap_or(read_at);
        }
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A TCP connection to `target`, from `source` when both are loopback (so that many viewers do not
/// run out of one address's ports).
async fn tcp_from(source: IpAddr, target: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = if target.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    if target.is_ipv4() && source.is_ipv4() && target.ip().is_loopback() {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A chatter's WebSocket.
async fn connect(ws_url: &str, token: &str) -> anyhow::Result<Socket> {
    let mut request = ws_url.into_client_request()?;
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
    let host = request.uri().host().context("no host")?.to_owned();
    let port = request.uri().port_u16().unwrap_or(80);
    let target: SocketAddr = format!("{host}:{port}").parse().context("the target must be an IP address")?;
    let stream = tcp_from(IpAddr::V4(Ipv4Addr::LOCALHOST), target).await?;
    Ok(tokio_tungstenite::client_async(request, stream).await?.0)
}

pub async fn run(opts: ChatOptions) -> anyhow::Result<ChatReport> {
    let (url, host) = crate::http_target(&opts.base, opts.allow_remote)?;
    let ws_url = format!("ws://{}/api/v1/channels/{}/ws", url.authority(), opts.channel);
    let ws_path = format!("/api/v1/channels/{}/ws", opts.channel);
    let target: SocketAddr = SocketAddr::new(host, url.port().unwrap_or(80));
    let run = opts.run_id.clone().unwrap_or_else(|| unix_micros().to_string());

    let histogram = Arc::new(Histogram::new());
    let read_histogram = Arc::new(Histogram::new());
    let delivered = Arc::new(AtomicU64::new(0));
    // Hearts the chatters tapped, and those missing from each viewer's announced total, summed.
    let hearts_sent = Arc::new(AtomicU64::new(0));
    let hearts_missing = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let rss_before = opts.server_pids.first().and_then(|p| sample_process(*p).ok()).map(|s| s.rss_bytes);

    // Viewers, connected a few at a time.
    let mut viewers = tokio::task::JoinSet::new();
    let mut failed = 0;
    let limit = Arc::new(tokio::sync::Semaphore::new(256));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<bool>(1024);
    for i in 0..opts.viewers {
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % opts.source_addresses.max(1) as usize) as u8));
        let (histogram, read_histogram, delivered, mut stop) =
            (histogram.clone(), read_histogram.clone(), delivered.clone(), stop_rx.clone());
        let (hearts_sent, hearts_missing) = (hearts_sent.clone(), hearts_missing.clone());
        let (ready, limit, run, timeline) = (ready_tx.clone(), limit.clone(), run.clone(), opts.timeline.clone());
        let (authority, path) = (url.authority().to_owned(), ws_path.clone());
        viewers.spawn(async move {
            let permit = limit.acquire_owned().await;
            let viewer = RawViewer::connect(target, source, &authority, &path).await;
            drop(permit);
            let Ok(mut viewer) = viewer else {
                let _ = ready.send(false).await;
                return;
            };
            let _ = ready.send(true).await;
            drop(ready);
            let marker = marker(&run);
            // Latencies are gathered here and handed to the shared histogram in bulk, so the
            // viewers on different threads do not fight over its counters frame by frame.
            let mut latencies: Vec<(u64, u64)> = Vec::with_capacity(256);
            let flush = |latencies: &mut Vec<(u64, u64)>| {
                let now = Instant::now();
                for (arrived, read) in latencies.iter() {
                    histogram.record(*arrived);
                    read_histogram.record(*read);
                    if let Some(t) = &timeline {
                        t.record(now, Duration::from_millis(*arrived));
                    }
                }
                delivered.fetch_add(latencies.len() as u64, Ordering::Relaxed);
                latencies.clear();
            };
            // Handed over when the buffer is full, and at least every 200 ms so the timeline's
            // seconds stay true at low rates.
            let mut flushed = Instant::now();
            let mut hearts = 0u64;
            let read = viewer.read_texts(|text, arrived_us, read_us| {
                if let Some(n) = hearts_count(text) {
                    hearts = hearts.saturating_add(n);
                    return;
                }
                if let Some(sent) = sent_after_marker(text, &marker) {
                    latencies.push((arrived_us.saturating_sub(sent) / 1000, read_us.saturating_sub(sent) / 1000));
                    if latencies.len() == latencies.capacity() || flushed.elapsed() >= Duration::from_millis(200) {
                        flush(&mut latencies);
                        flushed = Instant::now();
                    }
                }
            });
            tokio::select! {
                _ = stop.changed() => {}
                _ = read => {}
            }
            flush(&mut latencies);
            // Stopped only after every chatter is done: the sent count is final.
            hearts_missing.fetch_add(hearts_sent.load(Ordering::Relaxed).saturating_sub(hearts), Ordering::Relaxed);
        });
    }
    drop(ready_tx);
    let mut connected = 0;
    for _ in 0..opts.viewers {
        match ready_rx.recv().await {
            Some(true) => connected += 1,
            Some(false) | None => failed += 1,
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = opts.server_pids.first().and_then(|p| sample_process(*p).ok()).map(|s| s.rss_bytes);

    // Chatters, each at its share of the rate.
    let cpu_before = opts.server_pids.iter().filter_map(|p| sample_process(*p).ok()).map(|s| s.cpu).sum::<Duration>();
    let started = std::time::Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let period = Duration::from_secs_f64(opts.chatters.len() as f64 / opts.rate.max(0.001));
    let mut chatters = tokio::task::JoinSet::new();
    let count = opts.chatters.len();
    for (n, token) in opts.chatters.iter().enumerate() {
        let (ws_url, token, sent, refused, hearts_sent, duration) =
            (ws_url.clone(), token.clone(), sent.clone(), refused.clone(), hearts_sent.clone(), opts.duration);
        // This chatter's share of the hearts, tapped in one burst a second.
        let burst = opts.hearts / count as u64 + u64::from((n as u64) < opts.hearts % count as u64);
        let run = run.clone();
        chatters.spawn(async move {
            let mut socket = connect(&ws_url, &token).await?;
            // Spread the chatters' sends evenly over one period.
            tokio::time::sleep(period.mul_f64(n as f64 / count as f64)).await;
            let mut tick = tokio::time::interval(period);
            let mut heart_tick = tokio::time::interval(Duration::from_secs(1));
            let end = tokio::time::Instant::now() + duration;
            let mut seq = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if tokio::time::Instant::now() >= end {
                            break;
                        }
                        seq += 1;
                        let text = format!("bench:{run}:{n}:{seq}:{}", unix_micros());
                        let frame = serde_json::json!({"type": "chat", "text": text}).to_string();
                        socket.send(Message::Text(frame.into())).await?;
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    _ = heart_tick.tick(), if burst > 0 => {
                        if tokio::time::Instant::now() >= end {
                            break;
                        }
                        for _ in 0..burst {
                            socket.feed(Message::Text(r#"{"type":"heart"}"#.into())).await?;
                        }
                        socket.flush().await?;
                        hearts_sent.fetch_add(burst, Ordering::Relaxed);
                    }
                    frame = socket.next() => match frame {
                        Some(Ok(Message::Text(t))) if t.contains("\"type\":\"error\"") => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(Ok(_)) => {}
                        _ => anyhow::bail!("a chatter's connection closed"),
                    },
                }
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    if opts.chatters.is_empty() {
        // Listening only: another process chats.
        tokio::time::sleep(opts.duration).await;
    }
    while let Some(done) = chatters.join_next().await {
        done??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_after = opts.server_pids.iter().filter_map(|p| sample_process(*p).ok()).map(|s| s.cpu).sum::<Duration>();
    let rss_end = opts.server_pids.first().and_then(|p| sample_process(*p).ok()).map(|s| s.rss_bytes);
    // Let the last messages arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = stop_tx.send(true);
    while viewers.join_next().await.is_some() {}

    let sent = sent.load(Ordering::Relaxed);
    let refused = refused.load(Ordering::Relaxed);
    let delivered = delivered.load(Ordering::Relaxed);
    let expected = (sent - refused) * connected as u64;
    Ok(ChatReport {
        viewers: connected,
        viewers_failed: failed,
        chatters: opts.chatters.len(),
        sent,
        refused,
        delivered,
        lost: (!opts.chatters.is_empty()).then(|| expected.saturating_sub(delivered)),
        delivered_per_second: delivered as f64 / seconds.max(0.001),
        hearts_sent: hearts_sent.load(Ordering::Relaxed),
        hearts_lost: (!opts.chatters.is_empty()).then(|| hearts_missing.load(Ordering::Relaxed)),
        latency: histogram.percentiles(),
        latency_read: read_histogram.percentiles(),
        server_cpu_percent: (!opts.server_pids.is_empty())
            .then(|| (cpu_after - cpu_before).as_secs_f64() / seconds.max(0.001) * 100.0),
        server_rss_mib: rss_end.map(|b| b as f64 / (1 << 20) as f64),
        rss_per_idle_viewer_kib: match (rss_before, rss_idle) {
            (Some(a), Some(b)) if connected > 0 => Some((b.saturating_sub(a)) as f64 / connected as f64 / 1024.0),
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_messages_carry_their_send_time() {
        let frame =
            r#"{"type":"chat","id":1,"user":{"id":1,"name":"b"},"text":"bench:42:3:17:1800000000123456","ts":"x"}"#;
        assert_eq!(sent_after_marker(frame, &marker("42")), Some(1_800_000_000_123_456));
        assert_eq!(sent_after_marker(frame, &marker("41")), None, "another run's message");
        assert_eq!(sent_after_marker(r#"{"type":"chat","text":"hello"}"#, &marker("42")), None);
        assert_eq!(sent_after_marker(r#"{"type":"viewers","count":3}"#, &marker("42")), None);
        assert_eq!(sent_after_marker("not json", &marker("42")), None);
    }

    #[test]
    fn hearts_frames_carry_their_count() {
        assert_eq!(hearts_count(r#"{"type":"hearts","count":250}"#), Some(250));
        assert_eq!(hearts_count(r#"{"type":"hearts","count":7,"more":1}"#), Some(7));
        assert_eq!(hearts_count(r#"{"type":"hearts","count":}"#), None);
        assert_eq!(hearts_count(r#"{"type":"hearts","count":99999999999999999999999}"#), None, "overflow");
        assert_eq!(hearts_count(r#"{"type":"chat","text":"{\"type\":\"hearts\",\"count\":5}"}"#), None);
        assert_eq!(hearts_count(""), None);
    }

    #[test]
    fn the_histogram_reads_percentiles_by_the_millisecond() {
        let h = Histogram::new();
        for ms in 1..=100 {
            h.record(ms);
        }
        h.record(10_000_000);
        let p = h.percentiles();
        assert_eq!((p.count, p.p50_ms, p.max_ms), (101, 51.0, 60_000.0));
    }
}
