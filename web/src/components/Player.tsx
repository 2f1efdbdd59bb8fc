// The video player. hls.js (in low-latency mode for lives) wherever Media Source Extensions
// exist; the browser's own HLS only where they do not (iOS Safari). Chromium also claims native
// HLS, but without LL-HLS, so support is checked in that order. The <video> carries
// data-engine, data-latency, data-behind and data-rung so people (and tests) can see what plays,
// in which rendition and how far behind live (data-behind: milliseconds from the picture's
// EXT-X-PROGRAM-DATE-TIME to this machine's clock). A live with a ladder gets a quality menu: Auto (hls.js
// chooses by the measured bandwidth, and the menu names the rung it chose), then each rung.

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

interface Rung {
  index: number;
  name: string;
}

function rungName(height: number | undefined): string {
  return height ? `${height}p` : '?';
}

export function Player({ src, live, poster, label, onReady, onTime }: Props) {
  const videoRef = useRef<HTMLVideoElement>(null);
  const hlsRef = useRef<Hls | null>(null);
  const [muted, setMuted] = useState(true);
  const [latency, setLatency] = useState<number | null>(null);
  const [rungs, setRungs] = useState<Rung[]>([]);
  const [playing, setPlaying] = useState<string | null>(null);
  const [chosen, setChosen] = useState(-1);

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
        // A live that fell behind (a stall, a slow phone) plays up to 1.5x until it is back at the edge.
        const instance = new HlsClass({
          lowLatencyMode: live,
          maxLiveSyncPlaybackRate: live ? 1.5 : 1,
          backBufferLength: live ? 30 : 90,
          enableWorker: true,
        });
        hls = instance;
        hlsRef.current = instance;
        video.dataset.engine = 'hls.js';
        instance.on(HlsClass.Events.MANIFEST_PARSED, (_event, data) => {
          setRungs(
            data.levels
              .map((level, index) => ({ index, name: rungName(level.height), height: level.height ?? 0 }))
              .sort((a, b) => b.height - a.height),
          );
          play();
        });
        instance.on(HlsClass.Events.LEVEL_SWITCHED, (_event, data) => {
          const name = rungName(instance.levels[data.level]?.height);
          video.dataset.rung = name;
          setPlaying(name);
        });
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
            const date = instance.playingDate;
            if (date) video.dataset.behind = String(Date.now() - date.getTime());
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
      hlsRef.current = null;
      setRungs([]);
      setPlaying(null);
      setChosen(-1);
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
      {rungs.length > 1 && (
        <select
          class="quality"
          aria-label={t('watch.quality')}
          value={String(chosen)}
          onChange={(e) => {
            const level = Number((e.currentTarget as HTMLSelectElement).value);
            setChosen(level);
            if (hlsRef.current) hlsRef.current.currentLevel = level;
          }}
        >
          <option value="-1">{playing && chosen === -1 ? t('watch.auto_at', { rung: playing }) : t('watch.auto')}</option>
          {rungs.map((r) => (
            <option value={String(r.index)}>{r.name}</option>
          ))}
        </select>
      )}
      {live && latency !== null && <span class="latency">{t('watch.latency', { s: latency.toFixed(1) })}</span>}
      {live && muted && (
        <button class="unmute" type="button" onClick={() => setMuted(false)}>
          <Icon name="mute" /> {t('watch.unmute')}
        </button>
      )}
    </div>
  );
}
