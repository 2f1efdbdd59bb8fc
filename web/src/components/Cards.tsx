// The cards pages are made of: a channel, a replay, a product.

import type { Channel, Product, Replay } from '../api';
import { count, dateTime, price, t } from '../i18n';
import { Icon } from './Icon';

export function ChannelCard({ channel, freshness, reason }: { channel: Channel; freshness: number; reason?: string }) {
  const live = channel.status === 'live';
  return (
    <a class="card channel-card" href={`/watch/${channel.id}`}>
      <div class="frame">
        {live ? (
          <img
            src={`${channel.thumbnail_url}?v=${freshness}`}
            alt={t('channel.thumbnail', { title: channel.title })}
            loading="lazy"
            onError={(e) => ((e.currentTarget as HTMLImageElement).style.visibility = 'hidden')}
          />
        ) : (
          <div class="placeholder" aria-hidden="true">
            ▶
          </div>
        )}
        {live && <span class="badge live">{t('channel.live')}</span>}
        {live && <span class="badge viewers"><Icon name="eye" size={14} /> {t('channel.viewers', { n: count(channel.viewers) })}</span>}
      </div>
      <h3>{channel.title}</h3>
      {!live && channel.scheduled_at && <p class="muted">{t('channel.startsAt', { when: dateTime(channel.scheduled_at) })}</p>}
      {reason && <p class="reason">{reason}</p>}
      {channel.description && <p class="muted clamp">{channel.description}</p>}
    </a>
  );
}

export function ReplayCard({ replay, reason }: { replay: Replay; reason?: string }) {
  const minutes = Math.max(1, Math.round((replay.duration_ms ?? 0) / 60000));
  return (
    <a class="card replay-card" href={`/replays/${replay.id}`}>
      <div class="frame">
        {replay.thumbnail_url ? (
          <img src={replay.thumbnail_url} alt={t('replay.thumbnail', { title: replay.title })} loading="lazy" />
        ) : (
          <div class="placeholder" aria-hidden="true">
            ↺
          </div>
        )}
        <span class="badge">{t('replay.duration', { m: minutes })}</span>
      </div>
      <h3>{replay.title}</h3>
      {reason && <p class="reason">{reason}</p>}
    </a>
  );
}

export function productImage(product: Pick<Product, 'images'>): string | undefined {
  return product.images[0]?.url;
}

export function ProductCard({ product, onBuy }: { product: Product; onBuy?: (product: Product) => void }) {
  const soldOut = product.stock <= 0;
  const image = productImage(product);
  return (
    <article class="card product-card" aria-label={product.name}>
      <div class="frame square">
        {image ? <img src={image} alt={t('product.image', { name: product.name })} loading="lazy" /> : <div class="placeholder" aria-hidden="true" />}
        {soldOut && <span class="badge sold-out">{t('product.soldOut')}</span>}
      </div>
      <p class="brand">{product.brand}</p>
      <h3>{product.name}</h3>
      <p class="price">{price(product.price_minor, product.currency)}</p>
      {onBuy && (
        <button type="button" class="buy" disabled={soldOut} onClick={() => onBuy(product)}>
          {soldOut ? t('product.soldOut') : t('product.buy')}
        </button>
      )}
    </article>
  );
}
