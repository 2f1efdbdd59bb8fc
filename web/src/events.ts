// What the shopper does, reported in batches for the recommender (POST /api/v1/events): at most
// every 10 s, and when the page is hidden or left (sendBeacon, which survives the unload).

export type EventType = 'watch' | 'view' | 'click' | 'cart' | 'heart';
export type TargetKind = 'product' | 'channel' | 'replay';

interface Reported {
  type: EventType;
  target: { kind: TargetKind; id: number };
  seconds?: number;
  quantity?: number;
}

const MAX_BATCH = 50;
const queue: Reported[] = [];
let timer: number | undefined;

export function track(type: EventType, kind: TargetKind, id: number, extra: { seconds?: number; quantity?: number } = {}) {
  if (!Number.isInteger(id) || id <= 0) return;
  queue.push({ type, target: { kind, id }, ...extra });
  if (queue.length >= MAX_BATCH) flush();
  else if (timer === undefined) timer = window.setTimeout(flush, 10_000);
}

function flush(beacon = false) {
  window.clearTimeout(timer);
  timer = undefined;
  while (queue.length) {
    const body = JSON.stringify({ events: queue.splice(0, MAX_BATCH) });
    if (beacon && navigator.sendBeacon) {
      navigator.sendBeacon('/api/v1/events', new Blob([body], { type: 'application/json' }));
    } else {
      fetch('/api/v1/events', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body, keepalive: true }).catch(() => undefined);
    }
  }
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') flush(true);
});
window.addEventListener('pagehide', () => flush(true));

/** Counts seconds of playback while `video` plays and reports them every minute, and on stop. */
export function watchTime(video: HTMLVideoElement, kind: TargetKind, id: number): () => void {
  let seconds = 0;
  const tick = window.setInterval(() => {
    if (!video.paused && !video.ended) seconds += 1;
    if (seconds >= 60) report();
  }, 1000);
  const report = () => {
    if (seconds > 0) track('watch', kind, id, { seconds: Math.min(seconds, 3600) });
    seconds = 0;
  };
  return () => {
    window.clearInterval(tick);
    report();
  };
}
