// Buy-now sheet: a modal over the page (the stream keeps playing behind it) that places the order
// with one idempotency key per sheet, so pressing again after a dropped connection cannot buy twice.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { humanError, idempotencyKey, post, type Order } from '../api';
import { price, t } from '../i18n';
import { useMe } from '../session';
import { track } from '../events';

export interface Buyable {
  id: number;
  name: string;
  price_minor: number;
  currency: string;
  image?: string;
  /** Units that can still be bought, when known. */
  available?: number;
  /** A running deal: its id (sent with the order, so an ended deal is refused rather than sold at the
   * usual price), price and per-customer limit. */
  deal?: { id: number; price_minor: number; limit: number };
}

export function BuySheet({
  product,
  channelId,
  onClose,
}: {
  product: Buyable | import('../api').Product;
  /** The live it is bought from: counted in its host's stats. */
  channelId?: number;
  onClose: () => void;
}) {
  const item = useMemo(() => toBuyable(product), [product]);
  const me = useMe();
  const dialog = useRef<HTMLDialogElement>(null);
  const [quantity, setQuantity] = useState(1);
  const [state, setState] = useState<'idle' | 'placing' | 'done'>('idle');
  const [error, setError] = useState<string | null>(null);
  const key = useMemo(() => idempotencyKey(), [product, quantity]);
  const unit = item.deal?.price_minor ?? item.price_minor;
  const max = Math.max(1, Math.min(10, item.deal?.limit ?? 10, item.available ?? 10));
  const soldOut = item.available !== undefined && item.available <= 0;

  useEffect(() => {
    dialog.current?.showModal();
    track('click', 'product', item.id);
  }, []);

  async function place(event: Event) {
    event.preventDefault();
    setState('placing');
    setError(null);
    try {
      const order = { items: [{ product_id: item.id, quantity }], channel_id: channelId, deal_id: item.deal?.id };
      await post<Order>('/orders', order, { 'Idempotency-Key': key });
      setState('done');
    } catch (err) {
      setError(humanError(err));
      setState('idle');
    }
  }

  return (
    <dialog ref={dialog} class="sheet" aria-labelledby="buy-title" onClose={onClose} onCancel={onClose}>
      <form method="dialog" class="sheet-body" onSubmit={place}>
        <header>
          <h2 id="buy-title">{t('buy.title', { name: item.name })}</h2>
          <button type="button" class="icon" aria-label={t('buy.close')} onClick={() => dialog.current?.close()}>
            ✕
          </button>
        </header>
        <div class="sheet-product">
          {item.image && <img src={item.image} alt={t('product.image', { name: item.name })} width="96" height="96" />}
          <div>
            {item.deal && <span class="badge deal">{t('deal.title')}</span>}
            <p class="price">
              {item.deal && <s class="muted">{price(item.price_minor, item.currency)}</s>} {price(unit, item.currency)}
            </p>
            {item.deal && <p class="muted">{t('deal.limit', { n: item.deal.limit })}</p>}
          </div>
        </div>
        {state === 'done' ? (
          <p class="success" role="status">
            {t('buy.done')} <a href="/orders">{t('nav.orders')}</a>
          </p>
        ) : me === null ? (
          <a class="button primary wide" href={`/login?next=${encodeURIComponent(location.pathname)}`}>
            {t('buy.loginFirst')}
          </a>
        ) : soldOut ? (
          <p class="sold-out-note">{t('product.soldOut')}</p>
        ) : (
          <>
            <label class="quantity">
              {t('buy.quantity')}
              <select value={quantity} onChange={(e) => setQuantity(Number((e.currentTarget as HTMLSelectElement).value))}>
                {Array.from({ length: max }, (_, i) => (
                  <option value={i + 1}>{i + 1}</option>
                ))}
              </select>
            </label>
            <p class="total">
              {t('buy.total')} <strong>{price(unit * quantity, item.currency)}</strong>
            </p>
            {error && (
              <p class="error" role="alert">
                {error}
              </p>
            )}
            <button type="submit" class="primary wide" disabled={state === 'placing' || me === undefined}>
              {state === 'placing' ? t('buy.placing') : t('buy.place')}
            </button>
          </>
        )}
      </form>
    </dialog>
  );
}

function toBuyable(product: Buyable | import('../api').Product): Buyable {
  if ('images' in product) {
    return {
      id: product.id,
      name: product.name,
      price_minor: product.price_minor,
      currency: product.currency,
      image: product.images[0]?.url,
      available: product.stock,
    };
  }
  return product;
}
