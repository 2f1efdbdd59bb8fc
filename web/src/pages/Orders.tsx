// My orders, newest first, with cancel where the order still allows it.

import { useState } from 'preact/hooks';
import { get, humanError, post, type List, type Order } from '../api';
import { ErrorNote, Loading } from '../components/Status';
import { dateTime, hasMessage, price, t } from '../i18n';
import { useLoad } from '../load';
import { useMe } from '../session';

export function Orders() {
  const me = useMe();
  const orders = useLoad(() => (me ? get<List<Order>>('/orders') : Promise.resolve(undefined)), [me?.id]);
  const [error, setError] = useState<string | null>(null);

  if (me === undefined) return <Loading />;
  if (me === null)
    return (
      <section class="empty-page">
        <p>{t('auth.needLogin')}</p>
        <a class="button primary" href="/login?next=/orders">
          {t('nav.login')}
        </a>
      </section>
    );

  async function cancel(id: number) {
    try {
      await post(`/orders/${id}/cancel`);
      orders.reload();
    } catch (err) {
      setError(humanError(err));
    }
  }

  return (
    <section class="orders">
      <h1>{t('orders.title')}</h1>
      {error && <ErrorNote message={error} />}
      {orders.error && <ErrorNote message={orders.error} retry={orders.reload} />}
      {!orders.data && !orders.error && <Loading />}
      {orders.data?.items.length === 0 && <p class="muted">{t('orders.none')}</p>}
      <ul class="order-list">
        {orders.data?.items.map((o) => (
          <li key={o.id} class="order">
            <header>
              <strong>{t('orders.number', { id: o.id })}</strong>
              <span class={`status ${o.status}`}>{hasMessage(`status.${o.status}`) ? t(`status.${o.status}` as never) : o.status}</span>
              <time class="muted" dateTime={o.created_at}>
                {dateTime(o.created_at)}
              </time>
            </header>
            <ul>
              {o.items.map((item) => (
                <li key={item.product_id}>
                  {item.name} × {item.quantity} <span class="muted">{price(item.unit_price_minor * item.quantity, o.currency)}</span>
                </li>
              ))}
            </ul>
            <footer>
              <strong>{price(o.total_minor, o.currency)}</strong>
              {o.status === 'placed' && (
                <button type="button" class="link" onClick={() => cancel(o.id)}>
                  {t('orders.cancel')}
                </button>
              )}
            </footer>
          </li>
        ))}
      </ul>
    </section>
  );
}
