// The watch page: the live at its edge, the product the host pinned shown when the picture
// reaches the pin's moment, the running deal with its countdown and stock, hearts, chat, and the
// show's line-up, all buyable without leaving the stream.

import { useEffect, useRef, useState } from 'preact/hooks';
import { get, type Channel, type FeedItem, type Lineup, type Product } from '../api';
import { BuySheet, type Buyable } from '../components/BuySheet';
import { ProductCard, ReplayCard } from '../components/Cards';
import { Chat } from '../components/Chat';
import { DealBanner, nextDeal, type RunningDeal } from '../components/Deal';
import { Player, type PlayerHandle } from '../components/Player';
import { ErrorNote, Loading } from '../components/Status';
import { count, price, t } from '../i18n';
import { useLoad } from '../load';
import { Room, type ChatFrame, type Frame, type PinnedProduct } from '../room';
import { useMe } from '../session';
import { track, watchTime } from '../events';
import { Icon } from '../components/Icon';

const MAX_MESSAGES = 200;

interface Pin {
  product: PinnedProduct;
  pts: number;
}

export function Watch({ id }: { id: number }) {
  const me = useMe();
  const channel = useLoad(() => get<Channel>(`/channels/${id}`), [id], 5000);
  const lineup = useLoad(async () => {
    const { product_ids } = await get<Lineup>(`/channels/${id}/lineup`);
    return Promise.all(product_ids.map((pid) => get<Product>(`/products/${pid}`)));
  }, [id]);

  const similar = useLoad(() => get<{ items: FeedItem[] }>(`/similar?kind=channel&id=${id}&limit=12`), [id]);
  const [messages, setMessages] = useState<ChatFrame[]>([]);
  const [viewers, setViewers] = useState<number | null>(null);
  const [hearts, setHearts] = useState(0);
  const [floating, setFloating] = useState<number[]>([]);
  const [pending, setPending] = useState<Pin | null>(null);
  const [shown, setShown] = useState<Pin | null>(null);
  const [deal, setDeal] = useState<RunningDeal | null>(null);
  const [refusal, setRefusal] = useState<{ code: string; at: number } | null>(null);
  const [connected, setConnected] = useState(false);
  const [buying, setBuying] = useState<Buyable | Product | null>(null);
  const room = useRef<Room | null>(null);
  const player = useRef<PlayerHandle | null>(null);
  const stopWatching = useRef<(() => void) | null>(null);

  // The recommender hears that the shopper opened this live, and how long they watched it.
  useEffect(() => {
    track('view', 'channel', id);
    return () => {
      stopWatching.current?.();
      stopWatching.current = null;
    };
  }, [id]);

  useEffect(() => {
    setMessages([]);
    setPending(null);
    setShown(null);
    setDeal(null);
    const onFrame = (frame: Frame) => {
      switch (frame.type) {
        case 'chat':
          setMessages((m) => (m.some((x) => x.id === frame.id) ? m : [...m, frame].slice(-MAX_MESSAGES)));
          break;
        case 'chat_deleted':
          setMessages((m) => m.filter((x) => x.id !== frame.id));
          break;
        case 'viewers':
          setViewers(frame.count);
          break;
        case 'hearts':
          setHearts((h) => h + frame.count);
          launchHearts(frame.count);
          break;
        case 'pin':
          setPending({ product: frame.product, pts: Date.parse(frame.pts) });
          break;
        case 'deal':
        case 'deal_stock':
          setDeal((d) => nextDeal(d, frame));
          break;
        case 'deal_ended':
          setDeal((d) => nextDeal(d, frame));
          window.setTimeout(() => setDeal((d) => (d && d.id === frame.id ? null : d)), 5000);
          break;
        case 'error':
          setRefusal({ code: frame.code, at: Date.now() });
          break;
      }
    };
    const r = new Room(id, onFrame, (status) => setConnected(status === 'open'));
    room.current = r;
    return () => r.close();
  }, [id]);

  // A pin is shown when the picture on screen reaches its moment on the media timeline.
  useEffect(() => {
    if (!pending) return;
    const check = () => {
      const at = player.current?.currentDate();
      if (!at || at.getTime() >= pending.pts || channel.data?.status !== 'live') {
        setShown(pending);
        return true;
      }
      return false;
    };
    if (check()) return;
    const timer = window.setInterval(() => check() && window.clearInterval(timer), 100);
    return () => window.clearInterval(timer);
  }, [pending, channel.data?.status]);

  function launchHearts(n: number) {
    const ids = Array.from({ length: Math.min(n, 8) }, () => Math.random());
    setFloating((f) => [...f, ...ids].slice(-24));
    window.setTimeout(() => setFloating((f) => f.filter((x) => !ids.includes(x))), 2000);
  }

  if (channel.error && !channel.data) return <ErrorNote message={channel.error} retry={channel.reload} />;
  if (!channel.data) return <Loading />;
  const c = channel.data;
  const live = c.status === 'live';
  const moderate = !!me && (me.role === 'admin' || me.id === c.host_id);
  const pinnedProduct = shown && lineup.data?.find((p) => p.id === shown.product.id);
  const onScreen = (c.labels ?? []).filter((l) => l.confidence >= 0.1).slice(0, 3).map((l) => l.name);

  const buyPinned = (p: PinnedProduct) => {
    const full = lineup.data?.find((x) => x.id === p.id);
    setBuying(
      deal && !deal.ended && deal.product.id === p.id
        ? dealBuyable(deal, full)
        : full ?? { id: p.id, name: p.name, price_minor: p.price_minor, currency: p.currency, image: p.image_url ?? undefined },
    );
  };

  return (
    <div class="watch">
      <div class="stage">
        {live ? (
          <Player
            src={c.playback_url}
            live
            poster={c.thumbnail_url}
            label={c.title}
            onReady={(handle) => {
              player.current = handle;
              stopWatching.current?.();
              stopWatching.current = watchTime(handle.video, 'channel', id);
            }}
          />
        ) : (
          <div class="player offline">
            <p>{t('watch.offline')}</p>
          </div>
        )}
        <div class="overlay top">
          {live && <span class="badge live">{t('channel.live')}</span>}
          <span class="badge viewers" aria-live="off">
            <Icon name="eye" size={14} /> {t('channel.viewers', { n: count(viewers ?? c.viewers) })}
          </span>
        </div>
        <div class="hearts-layer" aria-hidden="true">
          {floating.map((h) => (
            <span key={h} class="floating-heart" style={{ left: `${20 + h * 60}%` }}>
              <Icon name="heart" size={26} />
            </span>
          ))}
        </div>
        {shown && (
          <aside class="pinned-card" aria-live="polite" aria-label={t('watch.pinned')}>
            {shown.product.image_url && <img src={shown.product.image_url} alt={t('product.image', { name: shown.product.name })} />}
            <div>
              <p class="small muted">{t('watch.pinned')}</p>
              <p class="name">{shown.product.name}</p>
              <p class="price">{price(shown.product.price_minor, shown.product.currency)}</p>
            </div>
            <button
              type="button"
              class="primary"
              disabled={pinnedProduct ? pinnedProduct.stock <= 0 : false}
              onClick={() => buyPinned(shown.product)}
            >
              {pinnedProduct && pinnedProduct.stock <= 0 ? t('product.soldOut') : t('product.buy')}
            </button>
          </aside>
        )}
      </div>

      <div class="watch-side">
        <header class="watch-title">
          <h1>{c.title}</h1>
          {c.description && <p class="muted">{c.description}</p>}
          {onScreen.length > 0 && (
            <p class="on-screen muted">
              {t('watch.onScreen')} {onScreen.join(' · ')}
            </p>
          )}
        </header>
        {deal && <DealBanner deal={deal} onBuy={() => setBuying(dealBuyable(deal, lineup.data?.find((p) => p.id === deal.product.id)))} />}
        <div class="heart-bar">
          <button type="button" class="heart-button" aria-label={t('watch.heart')} onClick={() => {
              if (room.current?.send({ type: 'heart' })) {
                launchHearts(1);
                track('heart', 'channel', id);
              }
            }}
          >
            <Icon name="heart" size={26} />
          </button>
          <span class="muted">{t('watch.hearts', { n: count(hearts) })}</span>
        </div>
        <Chat
          channelId={id}
          messages={messages}
          refusal={refusal}
          connected={connected}
          moderate={moderate}
          send={(text) => !!room.current?.send({ type: 'chat', text })}
        />
      </div>

      <section class="lineup" aria-labelledby="lineup-title">
        <h2 id="lineup-title">{t('watch.lineup')}</h2>
        {lineup.error && <ErrorNote message={lineup.error} retry={lineup.reload} />}
        {lineup.data?.length === 0 && <p class="muted">{t('watch.noLineup')}</p>}
        <div class="carousel">
          {lineup.data?.map((p) => (
            <ProductCard
              key={p.id}
              product={p}
              onBuy={(product) => setBuying(deal && !deal.ended && deal.product.id === product.id ? dealBuyable(deal, product) : product)}
            />
          ))}
        </div>
      </section>
      <MoreLikeThis items={similar.data?.items ?? []} lineup={lineup.data ?? []} onBuy={setBuying} />
      {buying && (
        <BuySheet
          product={buying}
          channelId={id}
          onClose={() => {
            setBuying(null);
            lineup.reload();
          }}
        />
      )}
    </div>
  );
}

function dealBuyable(deal: RunningDeal, product: Product | undefined): Buyable {
  return {
    id: deal.product.id,
    name: deal.product.name,
    price_minor: product?.price_minor ?? deal.product.price_minor,
    currency: deal.currency,
    image: deal.product.image_url ?? undefined,
    available: deal.remaining,
    deal: { id: deal.id, price_minor: deal.price_minor, limit: deal.per_customer_limit },
  };
}

/** Replays and products like this show (its own line-up left out), each with its reason. */
function MoreLikeThis({ items, lineup, onBuy }: { items: FeedItem[]; lineup: Product[]; onBuy: (p: Product) => void }) {
  const shown = items.filter((i) => i.replay || (i.product && !lineup.some((p) => p.id === i.product!.id)));
  if (shown.length === 0) return null;
  return (
    <section class="more-like-this" aria-labelledby="more-title">
      <h2 id="more-title">{t('watch.moreLikeThis')}</h2>
      <div class="carousel">
        {shown.map((i) =>
          i.replay ? (
            <ReplayCard key={`r${i.id}`} replay={i.replay} reason={i.reason} />
          ) : (
            <div key={`p${i.id}`}>
              <ProductCard product={i.product!} onBuy={onBuy} />
              <p class="reason">{i.reason}</p>
            </div>
          ),
        )}
      </div>
    </section>
  );
}
