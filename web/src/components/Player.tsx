// The video player. hls.js (in low-latency mode for lives) wherever Media Source Extensions
// exist; the browser's own HLS only where they do not (iOS Safari). Chromium also claims native
// HLS, but without LL-HLS, so support is checked in that order. The <video> carries
// data-engine and data-latency so people (and tests) can see what plays and how far behind live.

import { useEffect, useRef, useState } from 'preact/hooks';
import type Hls from 'hls.js';
import { t } from '../i18n';
import { Icon } from './Icon';

export interface PlayerHandle {
  video: HTMLVideoElement;
  /** The wall-clock moment (EXT-X-PROGRAM-DATE-TIME) of the picture on screen. */
  currentDate(): Date | null;
}

interface Props {
  src: string;
  live: boolean;
  poster?: string;
  label: string;
  onReady?: (handle: PlayerHandle) => void;
  onTime?: (seconds: number) => void;
}

function mediaSourceAvailable(): boolean {
  const ms = (window as { ManagedMediaSource?: unknown; MediaSource?: { isTypeSupported(t: string): boolean } }).MediaSource;
  return !!ms && ms.isTypeSupported('video/mp4; codecs="avc1.42E01E,mp4a.40.2"');
}

export function Player({ src, live, poster, label, onReady, onTime }: Props) {
  const videoRef = useRef<HTMLVideoElement>(null);
  const [muted, setMuted] = useState(true);
  const [latency, setLatency] = useState<number | null>(null);

  useEffect(() => {
    const video = videoRef.current!;
    let hls: Hls | null = null;
    let cancelled = false;
    let latencyTimer: number | undefined;

    const play = () => video.play().catch(() => undefined);
    // The box takes the stream's own shape, so a vertical (9:16) live fills a phone's screen.
    const fit = () => {
      if (video.videoWidth && video.videoHeight) video.style.aspectRatio = `${video.videoWidth} / ${video.videoHeight}`;
    };
    video.addEventListener('resize', fit);

    if (mediaSourceAvailable()) {
      import('hls.js/light').then(({ default: HlsClass }) => {
        if (cancelled) return;
        const instance = new HlsClass({ lowLatencyMode: live, backBufferLength: live ? 30 : 90, enableWorker: true });
        hls = instance;
        video.dataset.engine = 'hls.js';
        instance.on(HlsClass.Events.MANIFEST_PARSED, play);
        instance.on(HlsClass.Events.ERROR, (_event, data) => {
          if (!data.fatal) return;
          if (data.type === HlsClass.ErrorTypes.MEDIA_ERROR) instance.recoverMediaError();
          else window.setTimeout(() => instance.startLoad(), 1000);
        });
        instance.loadSource(src);
        instance.attachMedia(video);
        onReady?.({ video, currentDate: () => instance.playingDate ?? null });
        if (live) {
          latencyTimer = window.setInterval(() => {
            const l = instance.latency;
            if (Number.isFinite(l) && l > 0) {
              video.dataset.latency = l.toFixed(3);
              setLatency(l);
            }
          }, 1000);
        }
      });
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.dataset.engine = 'native';
      video.src = src;
      video.addEventListener('loadedmetadata', play, { once: true });
      onReady?.({
        video,
        currentDate: () => {
          const start = (video as { getStartDate?: () => Date }).getStartDate?.();
          return start && !Number.isNaN(start.getTime()) ? new Date(start.getTime() + video.currentTime * 1000) : null;
        },
      });
    }
    return () => {
      cancelled = true;
      video.removeEventListener('resize', fit);
      window.clearInterval(latencyTimer);
      hls?.destroy();
      video.removeAttribute('src');
      video.load();
    };
  }, [src, live]);

  return (
    <div class="player">
      <video
        ref={videoRef}
        poster={poster}
        muted={muted}
        autoplay
        playsInline
        controls={!live}
        aria-label={label}
        onTimeUpdate={(e) => onTime?.((e.currentTarget as HTMLVideoElement).currentTime)}
      />
      {live && latency !== null && <span class="latency">{t('watch.latency', { s: latency.toFixed(1) })}</span>}
      {live && muted && (
        <button class="unmute" type="button" onClick={() => setMuted(false)}>
          <Icon name="mute" /> {t('watch.unmute')}
        </button>
      )}
    </div>
  );
}
