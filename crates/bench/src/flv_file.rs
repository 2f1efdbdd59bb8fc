//! Reads an FLV file into its tags, keeping each tag's payload as it would travel in an RTMP
//! message (Adobe FLV spec §E.4). The container is eleven header bytes a tag; the payloads are
//! passed on untouched, so no codec parsing happens here.

use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    Audio,
    Video,
    Script,
}

#[derive(Debug, Clone)]
pub struct Tag {
    pub kind: TagKind,
    pub timestamp_ms: u32,
    pub payload: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum FlvFileError {
    #[error("not an FLV file (convert with: ffmpeg -i IN -c copy OUT.flv)")]
    NotFlv,
    #[error("FLV file truncated at byte {0}")]
    Truncated(usize),
    #[error("FLV file holds no audio or video tags")]
    Empty,
}

/// All audio, video and script tags of an FLV file, in file order.
pub fn parse(bytes: &Bytes) -> Result<Vec<Tag>, FlvFileError> {
    if bytes.len() < 13 || &bytes[..3] != b"FLV" {
        return Err(FlvFileError::NotFlv);
    }
    let header_len = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) as usize;
    let mut at = header_len + 4; // the first PreviousTagSize
    let mut tags = Vec::new();
    while at + 11 <= bytes.len() {
        let kind = match bytes[at] & 0x1f {
            8 => Some(TagKind::Audio),
            9 => Some(TagKind::Video),
            18 => Some(TagKind::Script),
            _ => None,
        };
        let size = u32::from_be_bytes([0, bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let timestamp_ms = u32::from_be_bytes([bytes[at + 7], bytes[at + 4], bytes[at + 5], bytes[at + 6]]);
        let start = at + 11;
        let end = start + size;
        if end > bytes.len() {
            return Err(FlvFileError::Truncated(at));
        }
        if let Some(kind) = kind {
            tags.push(Tag { kind, timestamp_ms, payload: bytes.slice(start..end) });
        }
        at = end + 4;
    }
    if !tags.iter().any(|t| t.kind != TagKind::Script) {
        return Err(FlvFileError::Empty);
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(kind: u8, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut t = vec![kind];
        t.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        t.extend_from_slice(&ts.to_be_bytes()[1..]);
        t.push((ts >> 24) as u8);
        t.extend_from_slice(&[0, 0, 0]);
        t.extend_from_slice(payload);
        t.extend_from_slice(&((payload.len() + 11) as u32).to_be_bytes());
        t
    }

    #[test]
    fn reads_tags_with_extended_timestamps() {
        let mut f = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        f.extend(tag(9, 0, b"\x17\x00key"));
        f.extend(tag(8, 0x0100_0021, b"\xaf\x01aac"));
        let tags = parse(&Bytes::from(f)).unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].kind, TagKind::Video);
        assert_eq!(&tags[0].payload[..], b"\x17\x00key");
        assert_eq!(tags[1].timestamp_ms, 0x0100_0021);
    }

    #[test]
    fn refuses_other_files_and_truncation() {
        assert!(matches!(parse(&Bytes::from_static(b"\x00\x00\x00\x18ftypisom")), Err(FlvFileError::NotFlv)));
        let mut f = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        f.extend(&tag(9, 0, b"0123456789")[..15]);
        assert!(matches!(parse(&Bytes::from(f)), Err(FlvFileError::Truncated(13))));
    }
}
