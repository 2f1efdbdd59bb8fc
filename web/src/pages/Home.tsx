// Shopper home: who is live now (thumbnails and viewer counts kept fresh), upcoming shows,
// replays, and the catalogue.

import { useState } from 'preact/hooks';
import { get, type Channel, type Feed, type List, type Product } from '../api';
import { ChannelCard, ProductCard, ReplayCard } from '../components/Cards';
import { ErrorNote, Loading } from '../components/Status';
import { BuySheet } from '../components/BuySheet';
import { t } from '../i18n';
import { useLoad } from '../load';

const REFRESH_MS = 10_000;

export function Home() {
  const channels = useLoad(() => get<List<Channel>>('/channels'), [], REFRESH_MS);
  // Lives now and replays, in the order the recommender chose for this shopper.
  const feed = useLoad(() => get<Feed>('/feed'), [], REFRESH_MS);
  const products = useLoad(() => get<List<Product>>('/products?limit=24'), []);
  const [buying, setBuying] = useState<Product | null>(null);
  const freshness = Math.floor(Date.now() / REFRESH_MS);

  const all = channels.data?.items ?? [];
  const fed = feed.data?.items ?? [];
  const live = feed.data
    ? fed.filter((i) => i.kind === 'channel' && i.channel).map((i) => ({ channel: i.channel!, reason: i.reason }))
    : all.filter((c) => c.status === 'live').sort((a, b) => b.viewers - a.viewers).map((channel) => ({ channel, reason: undefined }));
  const replays = fed.filter((i) => i.kind === 'replay' && i.replay).map((i) => ({ replay: i.replay!, reason: i.reason }));
  const now = Date.now();
  const upcoming = all
    .filter((c) => c.status !== 'live' && c.scheduled_at && Date.parse(c.scheduled_at) > now - 3600_000)
    .sort((a, b) => Date.parse(a.scheduled_at!) - Date.parse(b.scheduled_at!));

  return (
    <div class="home">
      <section aria-labelledby="live-now">
        <h2 id="live-now">
          <span class="dot" aria-hidden="true" /> {t('home.live')}
        </h2>
        {channels.error && <ErrorNote message={channels.error} retry={channels.reload} />}
        {!channels.data && !channels.error && <Loading />}
        {channels.data && live.length === 0 && <p class="muted">{t('home.noLive')}</p>}
        <div class="grid live-grid">
          {live.map(({ channel, reason }) => (
            <ChannelCard key={channel.id} channel={channel} freshness={freshness} reason={feed.data?.personalised ? reason : undefined} />
          ))}
        </div>
      </section>

      <section aria-labelledby="upcoming">
        <h2 id="upcoming">{t('home.upcoming')}</h2>
        {channels.data && upcoming.length === 0 && <p class="muted">{t('home.noUpcoming')}</p>}
        <div class="row">
          {upcoming.map((c) => (
            <ChannelCard key={c.id} channel={c} freshness={freshness} />
          ))}
        </div>
      </section>

      <section aria-labelledby="replays">
        <h2 id="replays">{t('home.replays')}</h2>
        {feed.error && <ErrorNote message={feed.error} retry={feed.reload} />}
        {feed.data && replays.length === 0 && <p class="muted">{t('home.noReplays')}</p>}
        <div class="row">
          {replays.map(({ replay, reason }) => (
            <ReplayCard key={replay.id} replay={replay} reason={reason} />
          ))}
        </div>
      </section>

      <section aria-labelledby="catalogue">
        <h2 id="catalogue">{t('home.products')}</h2>
        {products.error && <ErrorNote message={products.error} retry={products.reload} />}
        <div class="grid products">
          {products.data?.items.map((p) => (
            <ProductCard key={p.id} product={p} onBuy={setBuying} />
          ))}
        </div>
      </section>
      {buying && <BuySheet product={buying} onClose={() => setBuying(null)} />}
    </div>
  );
}
