// Checks HLS playlists with a third-party parser (hls-parser, in strict mode: every rule it knows
// of RFC 8216bis, LL-HLS tags included, is an error). Used by the ladder tests.
//
//   node web/tools/check-hls.mjs URL…
//
// Prints one JSON line per playlist ({"url", "kind", …}) and exits 1 at the first that breaks a rule.
import HLS from 'hls-parser';

HLS.setOptions({ strictMode: true });

for (const url of process.argv.slice(2)) {
  const res = await fetch(url);
  if (!res.ok) {
    console.error(`${url}: HTTP ${res.status}`);
    process.exit(1);
  }
  const text = await res.text();
  let playlist;
  try {
    playlist = HLS.parse(text);
  } catch (e) {
    console.error(`${url}: ${e.message}\n${text}`);
    process.exit(1);
  }
  if (playlist.isMasterPlaylist) {
    console.log(JSON.stringify({
      url,
      kind: 'multivariant',
      variants: playlist.variants.map((v) => ({
        uri: v.uri,
        bandwidth: v.bandwidth,
        averageBandwidth: v.averageBandwidth,
        resolution: v.resolution,
        frameRate: v.frameRate,
        codecs: v.codecs,
        audio: v.audio.map((a) => a.groupId),
      })),
    }));
  } else {
    console.log(JSON.stringify({
      url,
      kind: 'media',
      lowLatency: playlist.lowLatencyCompatibility ?? null,
      partTarget: playlist.partTargetDuration,
      segments: playlist.segments.length,
      parts: playlist.segments.flatMap((s) => s.parts ?? []).length + (playlist.prefetchSegments?.length ?? 0),
      renditionReports: (playlist.renditionReports ?? []).map((r) => r.uri),
      dateRanges: playlist.segments.flatMap((s) => (s.dateRange ? [s.dateRange.id] : [])),
    }));
  }
}
