//! Replay playback: `/vod/{replay_id}/master.m3u8` (the source and every recorded rung of the
//! live's ladder), `/vod/{replay_id}/index.m3u8` (the source's) and `/vod/{replay_id}/{rung}/index.m3u8`,
//! and the init segments and segments they name, streamed from object storage with byte ranges
//! (RFC 9110 §14), plus the replay's thumbnail.
//!
//! The playlist is written from the recording's segment list in the database, so it is complete
//! (`VOD`, `#EXT-X-ENDLIST`) once the replay is ready and growing (`EVENT`) while the live is
//! still being recorded (visible then only to its host and admins). Media files never change once
//! written, so they are cached for good. One range is served as 206; several are answered with
//! the whole file (which RFC 9110 allows), and a range past the end is 416.

use crate::error::{ApiError, ApiResult};
use crate::extract::Viewer;
use crate::middleware::ChannelEgress;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_range_header::RangeUnsatisfiableError;
use olive_commerce::replays;
use olive_core::ReplayId;
use olive_media::record::{media_key, multivariant, playlist};
use olive_media::{MediaFile, RungName};
use olive_store::{Replay, ReplayStatus};

/// How long shared caches may keep a replay's media: what a hide or delete has to outlast.
pub const MEDIA_MAX_AGE: &str = "public, max-age=300";

fn not_found() -> ApiError {
    ApiError::not_found("replay")
}

async fn replay(state: &AppState, viewer: &Viewer, id: &str) -> ApiResult<Replay> {
    let id: ReplayId = id.parse().map_err(|_| not_found())?;
    Ok(replays::visible(state.store.as_ref(), viewer.user(), id).await?)
}

fn headers(response: &mut Response, content_type: &'static str, cache: &'static str) {
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
}

fn playlist_response(replay: &Replay, text: String) -> Response {
    let complete = replay.status == ReplayStatus::Ready;
    let mut response = text.into_response();
    let cache = if complete && !replay.hidden { "public, max-age=60" } else { "no-cache" };
    headers(&mut response, "application/vnd.apple.mpegurl", cache);
    response.extensions_mut().insert(ChannelEgress(replay.channel_id));
    response
}

/// The replay the viewer may see, with its recording's segments.
async fn recorded(state: &AppState, viewer: &Viewer, id: &str) -> ApiResult<(Replay, Vec<olive_store::ReplaySegment>)> {
    let replay = replay(state, viewer, id).await?;
    let segments = replays::segments(state.store.as_ref(), &replay).await?;
    Ok((replay, segments))
}

/// `GET /vod/{replay_id}/master.m3u8`: the source and every recorded rung.
pub async fn master(State(state): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> ApiResult<Response> {
    let (replay, segments) = recorded(&state, &viewer, &id).await?;
    let text =
        multivariant(&state.objects, replay.id, &segments).await.ok_or_else(|| ApiError::not_found("playlist"))?;
    Ok(playlist_response(&replay, text))
}

/// `GET /vod/{replay_id}/index.m3u8`: the source's.
pub async fn playlist_file(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (replay, segments) = recorded(&state, &viewer, &id).await?;
    let text = playlist(&segments, None, replay.status == ReplayStatus::Ready).unwrap_or_default();
    Ok(playlist_response(&replay, text))
}

/// `GET /vod/{replay_id}/{rung}/index.m3u8`: a recorded rung's, line for line beside the source's.
pub async fn rung_playlist(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, rung)): Path<(String, String)>,
) -> ApiResult<Response> {
    let rung = RungName::parse(&rung).ok_or_else(|| ApiError::not_found("playlist"))?;
    let (replay, segments) = recorded(&state, &viewer, &id).await?;
    let text = playlist(&segments, Some(rung), replay.status == ReplayStatus::Ready)
        .ok_or_else(|| ApiError::not_found("playlist"))?;
    Ok(playlist_response(&replay, text))
}

/// `GET /vod/{replay_id}/{rung}/{file}`: a rung's `init-{v}.mp4` or `seg-{msn}.m4s`.
pub async fn rung_media_file(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, rung, file)): Path<(String, String, String)>,
    request: HeaderMap,
) -> ApiResult<Response> {
    let rung = RungName::parse(&rung).ok_or_else(|| ApiError::not_found("media file"))?;
    let file = match MediaFile::parse(&file) {
        Some(f @ (MediaFile::Init(_) | MediaFile::Segment(_))) => f,
        _ => return Err(ApiError::not_found("media file")),
    };
    let replay = replay(&state, &viewer, &id).await?;
    stored_file(&state, &replay, media_key(replay.id, Some(rung), file), "video/mp4", &request).await
}

/// `GET /vod/{replay_id}/{file}`: `init-{v}.mp4`, `seg-{msn}.m4s`, `thumbnail.jpg`.
pub async fn media_file(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, file)): Path<(String, String)>,
    request: HeaderMap,
) -> ApiResult<Response> {
    // A recording has init segments and segments (no parts), and a thumbnail.
    let file = match file.as_str() {
        "thumbnail.jpg" => None,
        name => match MediaFile::parse(name) {
            Some(f @ (MediaFile::Init(_) | MediaFile::Segment(_))) => Some(f),
            _ => return Err(ApiError::not_found("media file")),
        },
    };
    let replay = replay(&state, &viewer, &id).await?;
    let (key, content_type) = match file {
        Some(f) => (media_key(replay.id, None, f), "video/mp4"),
        None => (replay.thumbnail_key.clone().ok_or_else(|| ApiError::not_found("thumbnail"))?, "image/jpeg"),
    };
    stored_file(&state, &replay, key, content_type, &request).await
}

/// An object of the replay's, whole or one byte range of it.
async fn stored_file(
    state: &AppState,
    replay: &Replay,
    key: String,
    content_type: &'static str,
    request: &HeaderMap,
) -> ApiResult<Response> {
    let gone = |e: olive_objects::ObjectError| match e {
        olive_objects::ObjectError::NotFound(_) => ApiError::not_found("media file"),
        e => olive_commerce::CommerceError::from(e).into(),
    };
    let size = state.objects.size(&key).await.map_err(gone)?;
    let range = request
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| http_range_header::parse_range_header(v).and_then(|parsed| parsed.validate(size)));
    let (status, range) = match range {
        None => (StatusCode::OK, None),
        Some(Ok(ranges)) if ranges.len() == 1 => (StatusCode::PARTIAL_CONTENT, Some(ranges[0].clone())),
        Some(Err(RangeUnsatisfiableError::Unsatisfiable)) => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            let value = HeaderValue::from_str(&format!("bytes */{size}")).expect("digits are a valid header");
            response.headers_mut().insert(header::CONTENT_RANGE, value);
            return Ok(response);
        }
        // Several ranges, or a header we may ignore: the whole file.
        Some(_) => (StatusCode::OK, None),
    };
    let stream = state.objects.stream(&key, range.clone().map(|r| *r.start()..*r.end() + 1)).await.map_err(gone)?;
    let mut response = (status, Body::from_stream(stream)).into_response();
    let length = range.as_ref().map_or(size, |r| r.end() - r.start() + 1);
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(r) = &range {
        let value = format!("bytes {}-{}/{size}", r.start(), r.end());
        h.insert(header::CONTENT_RANGE, HeaderValue::from_str(&value).expect("digits are a valid header"));
    }
    let cache = if replay.hidden || replay.status != ReplayStatus::Ready { "private, no-cache" } else { MEDIA_MAX_AGE };
    headers(&mut response, content_type, cache);
    response.extensions_mut().insert(ChannelEgress(replay.channel_id));
    Ok(response)
}
