//! A minimal RTMP publisher for load tests: the simple handshake, `connect`, `createStream`,
//! `publish`, then audio/video/data messages. Chunking uses `scuffle-rtmp`'s chunk writer and
//! commands are AMF0 through `scuffle-amf0`, so only the order of the conversation is ours.
//! What the server sends back is read and discarded; a closed connection ends publishing.

use bytes::Bytes;
use scuffle_amf0::{Amf0Encoder, Amf0Object, Amf0Value};
use scuffle_bytes_util::StringCow;
use scuffle_rtmp::chunk::writer::ChunkWriter;
use scuffle_rtmp::chunk::{Chunk, CHUNK_STREAM_ID_AUDIO, CHUNK_STREAM_ID_COMMAND, CHUNK_STREAM_ID_VIDEO};
use scuffle_rtmp::messages::MessageType;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

const HANDSHAKE_SIZE: usize = 1536;
const CHUNK_SIZE: usize = 4096;
/// The message stream `createStream` gives the first stream on a connection.
const STREAM_ID: u32 = 1;

/// Where to publish: `rtmp://host:port/app/stream_key`.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: String,
    pub app: String,
    pub key: String,
    pub tc_url: String,
}

impl Target {
    pub fn parse(base: &str, key: &str) -> anyhow::Result<Self> {
        let url = url::Url::parse(base)?;
        anyhow::ensure!(url.scheme() == "rtmp", "{base}: not an rtmp:// URL");
        let host = url.host_str().ok_or_else(|| anyhow::anyhow!("{base}: no host"))?;
        let port = url.port().unwrap_or(1935);
        let app = url.path().trim_matches('/').to_owned();
        anyhow::ensure!(!app.is_empty(), "{base}: no application (e.g. rtmp://host/live)");
        Ok(Target {
            addr: format!("{host}:{port}"),
            app,
            key: key.to_owned(),
            tc_url: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Loopback (127.0.0.0/8, ::1, localhost) only, unless the caller allows otherwise.
    pub fn is_loopback(&self) -> bool {
        let host = self.addr.rsplit_once(':').map_or(self.addr.as_str(), |(h, _)| h).trim_matches(['[', ']']);
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

pub struct Publisher {
    writer: OwnedWriteHalf,
    chunks: ChunkWriter,
    buf: Vec<u8>,
    closed: Arc<AtomicBool>,
}

fn amf0(values: &[Amf0Value<'_>]) -> Bytes {
    let mut out = Vec::new();
    let mut enc = Amf0Encoder::new(&mut out);
    for v in values {
        v.encode(&mut enc).expect("encoding AMF0 into a Vec cannot fail");
    }
    Bytes::from(out)
}

fn string(s: &str) -> Amf0Value<'static> {
    Amf0Value::String(StringCow::from(s.to_owned()))
}

impl Publisher {
    /// Connects, shakes hands and asks to publish `target.key`.
    pub async fn connect(target: &Target) -> io::Result<Self> {
        let stream = TcpStream::connect(&target.addr).await?;
        stream.set_nodelay(true)?;
        let (mut reader, mut writer) = stream.into_split();

        // Simple handshake: C0 C1, read S0 S1 S2, send C2 = S1.
        let mut c0c1 = vec![3u8];
        c0c1.extend_from_slice(&[0; 8]);
        c0c1.extend((0..HANDSHAKE_SIZE - 8).map(|i| (i * 7 + 13) as u8));
        writer.write_all(&c0c1).await?;
        let mut s0s1s2 = vec![0u8; 1 + 2 * HANDSHAKE_SIZE];
        reader.read_exact(&mut s0s1s2).await?;
        writer.write_all(&s0s1s2[1..1 + HANDSHAKE_SIZE]).await?;

        let closed = Arc::new(AtomicBool::new(false));
        let flag = closed.clone();
        tokio::spawn(async move {
            let mut sink = vec![0u8; 4096];
            while matches!(reader.read(&mut sink).await, Ok(n) if n > 0) {}
            flag.store(true, Ordering::Relaxed);
        });

        let mut p = Publisher { writer, chunks: ChunkWriter::default(), buf: Vec::with_capacity(64 * 1024), closed };
        p.message(
            CHUNK_STREAM_ID_COMMAND,
            0,
            MessageType::SetChunkSize,
            0,
            Bytes::from((CHUNK_SIZE as u32).to_be_bytes().to_vec()),
        )?;
        p.chunks.set_chunk_size(CHUNK_SIZE);
        let mut props = Amf0Object::new();
        props.insert(StringCow::from("app".to_owned()), string(&target.app));
        props.insert(StringCow::from("type".to_owned()), string("nonprivate"));
        props.insert(StringCow::from("flashVer".to_owned()), string("FMLE/3.0 (compatible; olive-bench)"));
        props.insert(StringCow::from("tcUrl".to_owned()), string(&target.tc_url));
        let connect = amf0(&[string("connect"), Amf0Value::Number(1.0), Amf0Value::Object(props)]);
        p.message(CHUNK_STREAM_ID_COMMAND, 0, MessageType::CommandAMF0, 0, connect)?;
        let create = amf0(&[string("createStream"), Amf0Value::Number(2.0), Amf0Value::Null]);
        p.message(CHUNK_STREAM_ID_COMMAND, 0, MessageType::CommandAMF0, 0, create)?;
        let publish =
            amf0(&[string("publish"), Amf0Value::Number(3.0), Amf0Value::Null, string(&target.key), string("live")]);
        p.message(CHUNK_STREAM_ID_COMMAND, 0, MessageType::CommandAMF0, STREAM_ID, publish)?;
        p.flush().await?;
        Ok(p)
    }

    fn message(
        &mut self,
        chunk_stream: u32,
        timestamp: u32,
        kind: MessageType,
        stream: u32,
        payload: Bytes,
    ) -> io::Result<()> {
        self.chunks.write_chunk(&mut self.buf, Chunk::new(chunk_stream, timestamp, kind, stream, payload))
    }

    /// Queues a media or data message; call [`flush`](Self::flush) to send.
    pub fn queue(&mut self, kind: crate::flv_file::TagKind, timestamp_ms: u32, payload: Bytes) -> io::Result<()> {
        use crate::flv_file::TagKind;
        let (cs, mt) = match kind {
            TagKind::Audio => (CHUNK_STREAM_ID_AUDIO, MessageType::Audio),
            TagKind::Video => (CHUNK_STREAM_ID_VIDEO, MessageType::Video),
            TagKind::Script => (CHUNK_STREAM_ID_COMMAND, MessageType::DataAMF0),
        };
        self.message(cs, timestamp_ms, mt, STREAM_ID, payload)
    }

    pub async fn flush(&mut self) -> io::Result<usize> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the server closed the connection"));
        }
        let n = self.buf.len();
        self.writer.write_all(&self.buf).await?;
        self.buf.clear();
        Ok(n)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_know_loopback() {
        let t = Target::parse("rtmp://127.0.0.1:19350/live", "k").unwrap();
        assert_eq!((t.addr.as_str(), t.app.as_str(), t.key.as_str()), ("127.0.0.1:19350", "live", "k"));
        assert!(t.is_loopback());
        assert!(Target::parse("rtmp://localhost/live", "k").unwrap().is_loopback());
        assert!(!Target::parse("rtmp://10.0.0.8/live", "k").unwrap().is_loopback());
        assert!(Target::parse("http://x/live", "k").is_err());
        assert!(Target::parse("rtmp://x", "k").is_err());
    }
}
