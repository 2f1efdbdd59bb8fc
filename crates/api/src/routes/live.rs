//! Live playback: the multivariant playlist of a live's ladder, each rendition's LL-HLS playlist
//! with blocking reload, delta updates and rendition reports, and the init segments, segments and
//! parts they name, all served from the channel's in-memory windows. The source rendition lives
//! at `/live/{id}/`, each rung under `/live/{id}/{rung}/`.
//! Playlists are never cached; media URIs never repeat (sequence numbers start from the wall
//! clock), so they are cached for good. Every answer allows any origin: players live on other
//! sites too. A live held by another node is forwarded there ([`crate::peers`]).

use crate::error::ApiError;
use crate::peers::{HlsQuery, PeerPath};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use olive_core::ChannelId;
use olive_media::{LiveChannel, MediaFile, RungName, Wanted};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// How long a plain playlist request waits for a stream's first part.
const FIRST_PART_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize)]
pub struct PlaylistQuery {
    #[serde(rename = "_HLS_msn")]
    msn: Option<u64>,
    #[serde(rename = "_HLS_part")]
    part: Option<u32>,
    #[serde(rename = "_HLS_skip")]
    skip: Option<String>,
}

fn bad_request(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// Where a live's playback is served from.
enum Source {
    Here(Arc<LiveChannel>),
    Forwarded(Response),
}

/// The channel's window on this node, or the answer of the node that holds its live: a live that
/// ended here may since have started on another node. `path` is what would be asked of that node,
/// already parsed: nothing else is forwarded.
async fn live_source(state: &AppState, path: PeerPath, headers: &HeaderMap) -> Result<Source, ApiError> {
    let (id, rung) = match path {
        PeerPath::Playlist(id, rung, _) | PeerPath::Media(id, rung, _) => (id, rung),
        PeerPath::Master(id) | PeerPath::Thumbnail(id) => (id, None),
    };
    let here = state.media.rendition(id, rung);
    if here.as_ref().is_none_or(|live| live.is_ended()) {
        if let Some(owner) = crate::peers::owner_elsewhere(state, id, headers).await {
            let answer = crate::peers::forward(state, &owner, path).await?;
            return Ok(Source::Forwarded(of_channel(answer, id)));
        }
    }
    here.map(Source::Here).ok_or_else(|| ApiError::not_found("live stream"))
}

fn channel_id(raw: &str, what: &'static str) -> Result<ChannelId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(what))
}

fn rung_name(raw: &str, what: &'static str) -> Result<RungName, ApiError> {
    RungName::parse(raw).ok_or_else(|| ApiError::not_found(what))
}

/// How long the multivariant playlist waits for a starting ladder's rungs to have media.
const LADDER_WARM_UP: Duration = Duration::from_secs(3);

/// `GET /live/{channel_id}/master.m3u8` — the multivariant playlist (RFC 8216bis §4.4.6): the
/// source and its ladder's rungs, best first, with one audio group.
pub async fn master(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = channel_id(&id, "live stream")?;
    let live = match live_source(&state, PeerPath::Master(id), &headers).await? {
        Source::Here(live) => live,
        Source::Forwarded(response) => return Ok(response),
    };
    if !live.has_media() {
        live.wait_for(Wanted::Part { msn: live.next_msn(), index: 0 }, FIRST_PART_WAIT).await;
    }
    let deadline = tokio::time::Instant::now() + LADDER_WARM_UP;
    while state.media.ladder_warming_up(id) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = state.media.multivariant(id).ok_or_else(|| ApiError::not_found("live stream"))?;
    Ok(of_channel(with_headers(text.into_response(), "application/vnd.apple.mpegurl", "no-cache, no-store"), id))
}

/// `GET /live/{channel_id}/{rung}/index.m3u8` — a rung's media playlist, as the source's.
pub async fn rung_playlist(
    State(state): State<AppState>,
    Path((id, rung)): Path<(String, String)>,
    headers: HeaderMap,
    query: Result<Query<PlaylistQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let (id, rung) = (channel_id(&id, "live stream")?, rung_name(&rung, "live stream")?);
    rendition_playlist(state, id, Some(rung), headers, query).await
}

/// `GET /live/{channel_id}/{rung}/{file}` — a rung's init segments, segments and parts.
pub async fn rung_media_file(
    State(state): State<AppState>,
    Path((id, rung, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (id, rung) = (channel_id(&id, "media file")?, rung_name(&rung, "media file")?);
    let file = MediaFile::parse(&file).ok_or_else(|| ApiError::not_found("media file"))?;
    rendition_media_file(state, id, Some(rung), file, headers).await
}

/// The channel's bytes: egress is charged to it.
fn of_channel(mut response: Response, channel: ChannelId) -> Response {
    response.extensions_mut().insert(crate::middleware::ChannelEgress(channel));
    response
}

fn with_headers(mut response: Response, content_type: &'static str, cache: &'static str) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(HeaderName::from_static("access-control-expose-headers"), HeaderValue::from_static("age, date"));
    response
}

/// `GET /live/{channel_id}/index.m3u8` — RFC 8216bis §6.2.5.2 blocking reload with `_HLS_msn`
/// and `_HLS_part`, §6.2.5.1 delta updates with `_HLS_skip=YES`.
pub async fn playlist(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<PlaylistQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let id = channel_id(&id, "live stream")?;
    rendition_playlist(state, id, None, headers, query).await
}

async fn rendition_playlist(
    state: AppState,
    id: ChannelId,
    rung: Option<RungName>,
    headers: HeaderMap,
    query: Result<Query<PlaylistQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|_| bad_request("_HLS_msn and _HLS_part must be non-negative integers"))?;
    let skip = q.skip.as_deref().is_some_and(|s| s == "YES" || s == "v2");
    let forwarded = HlsQuery { msn: q.msn, part: q.part, skip };
    let live = match live_source(&state, PeerPath::Playlist(id, rung, forwarded), &headers).await? {
        Source::Here(live) => live,
        Source::Forwarded(response) => return Ok(response),
    };
    let limit = live.target_duration() * 3;
    match (q.msn, q.part) {
        (None, Some(_)) => return Err(bad_request("_HLS_part needs _HLS_msn")),
        (Some(msn), part) => {
            if live.is_too_far_ahead(msn) {
                return Err(bad_request("_HLS_msn is more than two segments ahead of the live edge"));
            }
            let wanted = match part {
                Some(index) => Wanted::Part { msn, index },
                None => Wanted::Segment { msn },
            };
            if !live.wait_for(wanted, limit).await && !live.is_ended() {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_yet_available",
                    "the requested part did not arrive in time",
                ));
            }
        }
        (None, None) => {
            if !live.has_media() {
                let first = Wanted::Part { msn: live.next_msn(), index: 0 };
                live.wait_for(first, FIRST_PART_WAIT).await;
            }
        }
    }
    let reports = state.media.rendition_reports(id, rung);
    let text = live.playlist_with_reports(skip, &reports).ok_or_else(|| ApiError::not_found("live stream"))?;
    Ok(of_channel(with_headers(text.into_response(), "application/vnd.apple.mpegurl", "no-cache, no-store"), id))
}

/// `GET /live/{channel_id}/{file}` — init segments, segments and parts. A part that is announced
/// (the preload hint) but not yet cut is waited for, as LL-HLS clients expect.
pub async fn media_file(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Only a name the live window could hold is looked up here or sent to another node.
    let id = channel_id(&id, "media file")?;
    let file = MediaFile::parse(&file).ok_or_else(|| ApiError::not_found("media file"))?;
    rendition_media_file(state, id, None, file, headers).await
}

async fn rendition_media_file(
    state: AppState,
    id: ChannelId,
    rung: Option<RungName>,
    file: MediaFile,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("media file");
    let live = match live_source(&state, PeerPath::Media(id, rung, file), &headers).await? {
        Source::Here(live) => live,
        Source::Forwarded(response) => return Ok(response),
    };
    let bytes: Bytes = match file {
        MediaFile::Init(v) => live.init(v).ok_or_else(not_found)?,
        MediaFile::Segment(msn) => {
            let parts = live.segment(msn).ok_or_else(not_found)?;
            let length: usize = parts.iter().map(Bytes::len).sum();
            let body =
                axum::body::Body::from_stream(futures::stream::iter(parts.into_iter().map(Ok::<_, std::io::Error>)));
            let mut response = body.into_response();
            response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            return Ok(of_channel(with_headers(response, "video/mp4", "public, max-age=31536000, immutable"), id));
        }
        MediaFile::Part(msn, index) => match live.part(msn, index) {
            Some(b) => b,
            None => {
                if live.is_too_far_ahead(msn) {
                    return Err(not_found());
                }
                live.wait_for(Wanted::Part { msn, index }, live.target_duration() * 3).await;
                live.part(msn, index).ok_or_else(not_found)?
            }
        },
    };
    Ok(of_channel(with_headers(bytes.into_response(), "video/mp4", "public, max-age=31536000, immutable"), id))
}

/// `GET /live/{channel_id}/thumbnail.jpg`: the newest thumbnail of the channel's live (from the
/// node that holds it), or of its last visible replay when it is not live.
pub async fn thumbnail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = channel_id(&id, "thumbnail")?;
    let here = state.thumbnails.latest(id).filter(|_| state.media.registry().holds(id));
    if here.is_none() {
        if let Some(owner) = crate::peers::owner_elsewhere(&state, id, &headers).await {
            return crate::peers::forward(&state, &owner, PeerPath::Thumbnail(id)).await.map(|r| of_channel(r, id));
        }
    }
    // Not live here or anywhere: the picture of its last visible replay, never a stale live's.
    let jpeg = match here {
        Some(t) => t.jpeg,
        None => {
            let last = olive_commerce::replays::last_of(state.store.as_ref(), id).await?;
            let key = last.and_then(|r| r.thumbnail_key).ok_or_else(|| ApiError::not_found("thumbnail"))?;
            state.objects.get(&key).await.map_err(|_| ApiError::not_found("thumbnail"))?.bytes
        }
    };
    Ok(of_channel(with_headers(jpeg.into_response(), "image/jpeg", "public, max-age=2"), id))
}
