// A running deal: price, remaining stock as orders land, and a countdown taken from the server's
// `ends_in_ms` (so a wrong clock on the phone does not matter).

import { useEffect, useState } from 'preact/hooks';
import { clock, count, price, t } from '../i18n';
import type { DealFrame, Frame } from '../room';
import { Icon } from './Icon';

export interface RunningDeal extends DealFrame {
  sold: number;
  /** performance.now() at which it ends. */
  endsAt: number;
  ended: boolean;
}

/** The running deal after `frame` (unchanged for frames that are not about it). */
export function nextDeal(deal: RunningDeal | null, frame: Frame): RunningDeal | null {
  switch (frame.type) {
    case 'deal':
      return { ...frame, sold: frame.listed - frame.remaining, endsAt: performance.now() + frame.ends_in_ms, ended: false };
    case 'deal_stock':
      return deal && deal.id === frame.id ? { ...deal, remaining: frame.remaining, sold: frame.sold } : deal;
    case 'deal_ended':
      return deal && deal.id === frame.id ? { ...deal, sold: frame.sold, remaining: 0, ended: true } : deal;
    default:
      return deal;
  }
}

export function DealBanner({ deal, onBuy }: { deal: RunningDeal; onBuy: () => void }) {
  const [now, setNow] = useState(performance.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(performance.now()), 250);
    return () => window.clearInterval(timer);
  }, []);
  const left = Math.max(0, (deal.endsAt - now) / 1000);
  const over = deal.ended || left <= 0;
  const soldOut = deal.remaining <= 0;
  const ratio = deal.listed > 0 ? deal.remaining / deal.listed : 0;

  return (
    <section class={`deal-banner${over ? ' over' : ''}`} aria-labelledby="deal-title" aria-live="polite">
      <div class="deal-head">
        <h2 id="deal-title"><Icon name="bolt" /> {t('deal.title')}</h2>
        <span class="countdown" role="timer">
          {over ? t('deal.ended') : t('deal.endsIn', { t: clock(left) })}
        </span>
      </div>
      <p class="name">{deal.product.name}</p>
      <p class="price">
        <s class="muted">{price(deal.product.price_minor, deal.currency)}</s> <strong>{price(deal.price_minor, deal.currency)}</strong>
      </p>
      <div class="stock" aria-label={soldOut ? t('deal.soldOut') : t('deal.left', { n: count(deal.remaining) })}>
        <div class="stock-bar">
          <span style={{ width: `${Math.round(ratio * 100)}%` }} />
        </div>
        <span>{soldOut ? t('deal.soldOut') : t('deal.left', { n: count(deal.remaining) })}</span>
      </div>
      <p class="muted small">{t('deal.limit', { n: deal.per_customer_limit })}</p>
      <button type="button" class="primary wide" disabled={over || soldOut} onClick={onBuy}>
        {soldOut ? t('deal.soldOut') : t('product.buy')}
      </button>
    </section>
  );
}
