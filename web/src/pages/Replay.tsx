// A replay: the recorded show with its product timeline as chapters that seek to the moment a
// product was pinned, and the show's chat replayed in time with the video.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, get, type Product, type Replay } from '../api';
import { BuySheet } from '../components/BuySheet';
import { ProductCard } from '../components/Cards';
import { Player, type PlayerHandle } from '../components/Player';
import { ErrorNote, Loading } from '../components/Status';
import { clock, t } from '../i18n';
import { useLoad } from '../load';
import { track, watchTime } from '../events';

interface ReplayChat {
  id: number;
  user: { id: number; name: string };
  text: string;
  offset_ms: number;
}

interface Pin {
  product_id: number;
  offset_ms: number;
}

/** Chat pages fetched at most, 200 messages each. */
const CHAT_PAGES = 25;

async function loadChat(id: number): Promise<ReplayChat[]> {
  const all: ReplayChat[] = [];
  let after = 0;
  for (let page = 0; page < CHAT_PAGES; page++) {
    const { items, next_after } = await get<{ items: ReplayChat[]; next_after: number | null }>(`/replays/${id}/chat?limit=200&after=${after}`);
    all.push(...items);
    if (!next_after) break;
    after = next_after;
  }
  return all;
}

export function ReplayPage({ id }: { id: number }) {
  const replay = useLoad(
    () =>
      get<Replay & { pins: Pin[]; products: number[] }>(`/replays/${id}`).catch((err) => {
        if (err instanceof ApiError && err.status === 404) return null;
        throw err;
      }),
    [id],
  );
  const products = useLoad(async () => {
    const r = replay.data;
    if (!r) return new Map<number, Product>();
    const ids = [...new Set([...r.products, ...r.pins.map((p) => p.product_id)])];
    const found = await Promise.all(ids.map((pid) => get<Product>(`/products/${pid}`).catch(() => null)));
    return new Map(found.filter((p): p is Product => !!p).map((p) => [p.id, p]));
  }, [replay.data]);
  const chat = useLoad(() => loadChat(id), [id]);
  const [position, setPosition] = useState(0);
  const [buying, setBuying] = useState<Product | null>(null);
  const player = useRef<PlayerHandle | null>(null);
  const stopWatching = useRef<(() => void) | null>(null);

  useEffect(() => {
    track('view', 'replay', id);
    return () => {
      stopWatching.current?.();
      stopWatching.current = null;
    };
  }, [id]);

  const said = useMemo(() => (chat.data ?? []).filter((m) => m.offset_ms <= position * 1000).slice(-100), [chat.data, position]);

  if (replay.error) return <ErrorNote message={replay.error} retry={replay.reload} />;
  if (replay.data === null) return <ErrorNote message={t('replay.notFound')} />;
  if (!replay.data) return <Loading />;
  const r = replay.data;
  const current = [...r.pins].reverse().find((p) => p.offset_ms <= position * 1000);

  return (
    <div class="watch replay">
      <div class="stage">
        <Player src={r.playback_url} live={false} poster={r.thumbnail_url ?? undefined} label={r.title} onReady={(h) => {
            player.current = h;
            stopWatching.current?.();
            stopWatching.current = watchTime(h.video, 'replay', id);
          }} onTime={setPosition} />
      </div>
      <div class="watch-side">
        <header class="watch-title">
          <p class="badge">{t('replay.title')}</p>
          <h1>{r.title}</h1>
        </header>
        <section aria-labelledby="chapters-title">
          <h2 id="chapters-title">{t('replay.chapters')}</h2>
          {r.pins.length === 0 && <p class="muted">{t('replay.noChapters')}</p>}
          <ol class="chapters">
            {r.pins.map((pin) => {
              const product = products.data?.get(pin.product_id);
              return (
                <li key={`${pin.product_id}-${pin.offset_ms}`}>
                  <button
                    type="button"
                    class={`chapter${current === pin ? ' current' : ''}`}
                    aria-current={current === pin ? 'true' : undefined}
                    onClick={() => {
                      const video = player.current?.video;
                      if (!video) return;
                      video.currentTime = pin.offset_ms / 1000;
                      video.play().catch(() => undefined);
                    }}
                  >
                    <span class="time">{clock(pin.offset_ms / 1000)}</span> {product?.name ?? `#${pin.product_id}`}
                  </button>
                </li>
              );
            })}
          </ol>
        </section>
        <section class="chat" aria-labelledby="replay-chat-title">
          <h2 id="replay-chat-title">{t('replay.chat')}</h2>
          {chat.error && <ErrorNote message={chat.error} retry={chat.reload} />}
          <ol class="messages">
            {said.map((m) => (
              <li key={m.id}>
                <span class="time muted">{clock(m.offset_ms / 1000)}</span> <strong class="author">{m.user.name}</strong> <span class="text">{m.text}</span>
              </li>
            ))}
          </ol>
        </section>
      </div>
      <section class="lineup" aria-labelledby="replay-lineup">
        <h2 id="replay-lineup">{t('watch.lineup')}</h2>
        <div class="carousel">
          {[...(products.data?.values() ?? [])].map((p) => (
            <ProductCard key={p.id} product={p} onBuy={setBuying} />
          ))}
        </div>
      </section>
      {buying && <BuySheet product={buying} onClose={() => setBuying(null)} />}
    </div>
  );
}
