// One channel's studio: OBS settings and key rotation, go-live status and stream health, live
// stats, the line-up with a pin button per product, live deals, and chat moderation.

import { useEffect, useRef, useState } from 'preact/hooks';
import { get, humanError, patch, post, put, type Channel, type Lineup, type List, type Product } from '../api';
import { Chat } from '../components/Chat';
import { ErrorNote, Loading } from '../components/Status';
import { StreamKey } from '../components/StreamKey';
import { count, price, t } from '../i18n';
import { useLoad } from '../load';
import { Room, type ChatFrame } from '../room';
import { nextDeal, type RunningDeal } from '../components/Deal';
import { useMe } from '../session';
import { NeedsRole } from './NeedsRole';
import { Icon } from '../components/Icon';

interface Stats {
  viewers: number;
  orders: number;
  revenue: { currency: string; total_minor: number }[];
}

export function StudioChannel({ id }: { id: number }) {
  const me = useMe();
  const channel = useLoad(() => get<Channel>(`/channels/${id}`), [id, me?.id], 2000);
  const stats = useLoad(() => get<Stats>(`/channels/${id}/stats`), [id, me?.id], 5000);
  const [streamKey, setStreamKey] = useState<string | null>(null);
  const [messages, setMessages] = useState<ChatFrame[]>([]);
  const [viewers, setViewers] = useState<number | null>(null);
  const [hearts, setHearts] = useState(0);
  const [connected, setConnected] = useState(false);
  const [refusal, setRefusal] = useState<{ code: string; at: number } | null>(null);
  const [deal, setDeal] = useState<RunningDeal | null>(null);
  const room = useRef<Room | null>(null);

  useEffect(() => {
    const r = new Room(
      id,
      (frame) => {
        if (frame.type === 'chat') setMessages((m) => [...m.filter((x) => x.id !== frame.id), frame].slice(-200));
        else if (frame.type === 'chat_deleted') setMessages((m) => m.filter((x) => x.id !== frame.id));
        else if (frame.type === 'viewers') setViewers(frame.count);
        else if (frame.type === 'hearts') setHearts((h) => h + frame.count);
        else if (frame.type === 'deal' || frame.type === 'deal_stock' || frame.type === 'deal_ended') setDeal((d) => nextDeal(d, frame));
        else if (frame.type === 'error') setRefusal({ code: frame.code, at: Date.now() });
      },
      (status) => setConnected(status === 'open'),
    );
    room.current = r;
    return () => r.close();
  }, [id]);

  const gate = NeedsRole({ me, roles: ['host', 'admin'] });
  if (gate) return gate;
  if (channel.error && !channel.data) return <ErrorNote message={channel.error} retry={channel.reload} />;
  if (!channel.data) return <Loading />;
  const c = channel.data;
  const live = c.status === 'live';

  async function rotate() {
    if (!window.confirm(t('studio.rotateConfirm'))) return;
    try {
      const fresh = await post<{ stream_key: string }>(`/channels/${id}/stream-key`);
      setStreamKey(fresh.stream_key);
    } catch (err) {
      window.alert(humanError(err));
    }
  }

  return (
    <div class="studio-channel">
      <header class="studio-head">
        <div>
          <h1>{c.title}</h1>
          <span class={`status ${c.status}`} role="status">
            {live ? t('channel.live') : t('channel.offline')}
          </span>
        </div>
        <a class="button" href={`/watch/${c.id}`}>
          {t('studio.watch')}
        </a>
      </header>

      <div class="studio-grid">
        <section class="panel" aria-labelledby="stats-title">
          <h2 id="stats-title">{t('studio.stats')}</h2>
          <dl class="stats">
            <div>
              <dt>{t('studio.viewers')}</dt>
              <dd data-stat="viewers">{count(viewers ?? c.viewers)}</dd>
            </div>
            <div>
              <dt>{t('studio.hearts')}</dt>
              <dd data-stat="hearts">{count(hearts)}</dd>
            </div>
            <div>
              <dt>{t('studio.orders')}</dt>
              <dd data-stat="orders">{stats.data ? count(stats.data.orders) : '–'}</dd>
            </div>
            <div>
              <dt>{t('studio.revenue')}</dt>
              <dd data-stat="revenue">{stats.data ? (stats.data.revenue.length ? stats.data.revenue.map((r) => price(r.total_minor, r.currency)).join(' + ') : price(0)) : '–'}</dd>
            </div>
          </dl>
        </section>

        <section class="panel" aria-labelledby="health-title">
          <h2 id="health-title">{t('studio.health')}</h2>
          {c.health ? <Health health={c.health} /> : <p class="muted">{t('studio.waiting')}</p>}
          {c.ladder && <Ladder ladder={c.ladder} />}
        </section>

        <section class="panel" aria-labelledby="obs-title">
          <h2 id="obs-title">{t('studio.obs')}</h2>
          <StreamKey server={c.ingest_url ?? ''} streamKey={streamKey} />
          <button type="button" class="small" onClick={rotate}>
            {t('studio.rotate')}
          </button>
        </section>
      </div>

      <div class="studio-grid wide">
        <LineupEditor channelId={id} />
        <div class="stack">
          <DealPanel channelId={id} deal={deal} />
          <Moderation channel={c} onSaved={channel.reload} />
          <Chat
            channelId={id}
            messages={messages}
            refusal={refusal}
            connected={connected}
            moderate
            send={(text) => !!room.current?.send({ type: 'chat', text })}
          />
        </div>
      </div>
    </div>
  );
}

function Health({ health }: { health: NonNullable<Channel['health']> }) {
  const low = health.bitrate_bps < 500_000;
  return (
    <>
      <dl class="stats">
        <div>
          <dt>{t('studio.bitrate')}</dt>
          <dd data-stat="bitrate">{(health.bitrate_bps / 1_000_000).toFixed(2)} Mbit/s</dd>
        </div>
        <div>
          <dt>{t('studio.fps')}</dt>
          <dd data-stat="fps">{health.fps.toFixed(1)}</dd>
        </div>
        <div>
          <dt>{t('studio.keyframes')}</dt>
          <dd data-stat="keyframes">{health.keyframe_interval_ms != null ? `${(health.keyframe_interval_ms / 1000).toFixed(1)} s` : '–'}</dd>
        </div>
        <div>
          <dt>{t('studio.resolution')}</dt>
          <dd>{health.width && health.height ? `${health.width}×${health.height}` : '–'}</dd>
        </div>
        <div>
          <dt>{t('studio.lastFrame')}</dt>
          <dd>{(health.ms_since_last_frame / 1000).toFixed(1)} s</dd>
        </div>
      </dl>
      {low && (
        <p class="warning" role="alert">
          {t('studio.healthLow')}
        </p>
      )}
    </>
  );
}

/** Each rung of the live's ladder, or why it plays the source only. */
function Ladder({ ladder }: { ladder: NonNullable<Channel['ladder']> }) {
  if (!ladder.running || !ladder.health) {
    const why = ladder.fallback ? t(`studio.fallback.${ladder.fallback.code}`) : t('studio.basic');
    return (
      <p class="muted" data-ladder="basic">
        {why}
      </p>
    );
  }
  return (
    <table class="rungs" data-ladder="running">
      <caption>
        {t('studio.ladder')}
        {ladder.health.encoder_node && (
          <span class="muted" data-encoder-node={ladder.health.encoder_node}>
            {' · '}
            {t('studio.encodedOn', { node: ladder.health.encoder_node })}
          </span>
        )}
      </caption>
      <thead>
        <tr>
          <th scope="col">{t('studio.rung')}</th>
          <th scope="col">{t('studio.fps')}</th>
          <th scope="col">{t('studio.bitrate')}</th>
          <th scope="col">{t('studio.lag')}</th>
        </tr>
      </thead>
      <tbody>
        {ladder.health.rungs.map((r) => (
          <tr data-rung={r.name} class={r.encoder_lag_ms > 1000 || r.dropped_parts > 0 ? 'warning' : ''}>
            <th scope="row">{r.name}</th>
            <td>{r.fps.toFixed(1)}</td>
            <td>{(r.bitrate_bps / 1_000_000).toFixed(2)} Mbit/s</td>
            <td>{r.encoder_lag_ms >= 0 ? `${(r.encoder_lag_ms / 1000).toFixed(2)} s` : '–'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function LineupEditor({ channelId }: { channelId: number }) {
  const catalogue = useLoad(() => get<List<Product>>('/products?limit=100'), []);
  const saved = useLoad(() => get<Lineup>(`/channels/${channelId}/lineup`), [channelId]);
  const [ids, setIds] = useState<number[] | null>(null);
  const [pick, setPick] = useState('');
  const [note, setNote] = useState<string | null>(null);
  const [pinned, setPinned] = useState<number | null>(null);
  const lineup = ids ?? saved.data?.product_ids ?? [];
  const byId = new Map((catalogue.data?.items ?? []).map((p) => [p.id, p]));

  async function save(next: number[]) {
    setIds(next);
    try {
      const result = await put<Lineup>(`/channels/${channelId}/lineup`, { product_ids: next });
      setIds(result.product_ids);
      setNote(null);
    } catch (err) {
      setNote(humanError(err));
      setIds(null);
      saved.reload();
    }
  }

  async function pin(productId: number) {
    try {
      await post(`/channels/${channelId}/pin`, { product_id: productId });
      setPinned(productId);
      setNote(null);
    } catch (err) {
      setNote(humanError(err));
    }
  }

  const move = (i: number, by: number) => {
    const next = [...lineup];
    [next[i], next[i + by]] = [next[i + by], next[i]];
    save(next);
  };

  return (
    <section class="panel" aria-labelledby="lineup-edit-title">
      <h2 id="lineup-edit-title">{t('studio.lineup')}</h2>
      <p class="muted small">{t('studio.lineupHelp')}</p>
      {(saved.error || catalogue.error) && <ErrorNote message={(saved.error || catalogue.error)!} retry={saved.reload} />}
      {(!saved.data || !catalogue.data) && !saved.error && !catalogue.error && <Loading />}
      {catalogue.data && (
        <ol class="lineup-edit">
          {lineup.map((pid, i) => {
            const p = byId.get(pid);
            return (
              <li key={pid}>
                {p?.images[0] && <img src={p.images[0].url} alt={t('product.image', { name: p.name })} width="48" height="48" />}
                <span class="grow">
                  <strong>{p?.name ?? `#${pid}`}</strong>
                  <span class="muted small">
                    {' '}
                    {p && price(p.price_minor, p.currency)} · {p && (p.stock > 0 ? t('product.inStock', { n: p.stock }) : t('product.soldOut'))}
                  </span>
                </span>
                <button type="button" class={`small${pinned === pid ? ' primary' : ''}`} onClick={() => pin(pid)} aria-label={`${t('studio.pin')}: ${p?.name ?? pid}`}>
                  <Icon name="pin" /> {pinned === pid ? t('studio.pinned') : t('studio.pin')}
                </button>
                <button type="button" class="icon" disabled={i === 0} onClick={() => move(i, -1)} aria-label={`${t('studio.moveUp')}: ${p?.name ?? pid}`}>
                  ↑
                </button>
                <button type="button" class="icon" disabled={i === lineup.length - 1} onClick={() => move(i, 1)} aria-label={`${t('studio.moveDown')}: ${p?.name ?? pid}`}>
                  ↓
                </button>
                <button type="button" class="icon" onClick={() => save(lineup.filter((x) => x !== pid))} aria-label={`${t('studio.remove')}: ${p?.name ?? pid}`}>
                  ✕
                </button>
              </li>
            );
          })}
        </ol>
      )}
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          if (pick) save([...lineup, Number(pick)]);
          setPick('');
        }}
      >
        <label class="grow">
          <span class="visually-hidden">{t('studio.addPick')}</span>
          <select value={pick} onChange={(e) => setPick((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">{t('studio.addPick')}</option>
            {(catalogue.data?.items ?? [])
              .filter((p) => !lineup.includes(p.id))
              .map((p) => (
                <option value={p.id}>
                  {p.brand} {p.name}
                </option>
              ))}
          </select>
        </label>
        <button type="submit" disabled={!pick}>
          {t('studio.add')}
        </button>
      </form>
      {note && (
        <p class="error" role="alert">
          {note}
        </p>
      )}
    </section>
  );
}

function DealPanel({ channelId, deal }: { channelId: number; deal: RunningDeal | null }) {
  const lineup = useLoad(async () => {
    const { product_ids } = await get<Lineup>(`/channels/${channelId}/lineup`);
    return Promise.all(product_ids.map((pid) => get<Product>(`/products/${pid}`)));
  }, [channelId]);
  const [form, setForm] = useState({ product: '', price: '', quantity: '100', limit: '2', duration: '300' });
  const [note, setNote] = useState<string | null>(null);
  const running = deal && !deal.ended ? deal : null;
  const field = (name: keyof typeof form) => (e: Event) => setForm({ ...form, [name]: (e.currentTarget as HTMLInputElement).value });

  async function start(event: Event) {
    event.preventDefault();
    try {
      await post(`/channels/${channelId}/deals`, {
        product_id: Number(form.product),
        price_minor: Number(form.price),
        quantity: Number(form.quantity),
        per_customer_limit: Number(form.limit),
        duration_s: Number(form.duration),
      });
      setNote(null);
    } catch (err) {
      setNote(humanError(err));
    }
  }

  async function end(dealId: number) {
    try {
      await post(`/deals/${dealId}/end`);
    } catch (err) {
      setNote(humanError(err));
    }
  }

  return (
    <section class="panel" aria-labelledby="deal-title">
      <h2 id="deal-title"><Icon name="bolt" /> {t('studio.deal')}</h2>
      {running ? (
        <div class="stack">
          <p>
            <strong>{running.product.name}</strong> ·{' '}
            {price(running.price_minor, running.currency)}
          </p>
          <p>{t('studio.dealSold', { sold: running.sold, listed: running.listed })}</p>
          <button type="button" class="danger" onClick={() => end(running.id)}>
            {t('studio.dealStop')}
          </button>
        </div>
      ) : (
        <form class="stack" onSubmit={start}>
          <label>
            {t('studio.dealProduct')}
            <select required value={form.product} onChange={field('product')}>
              <option value="">{t('studio.addPick')}</option>
              {lineup.data?.map((p) => (
                <option value={p.id}>
                  {p.name} ({price(p.price_minor, p.currency)})
                </option>
              ))}
            </select>
          </label>
          <div class="inline">
            <label>
              {t('studio.dealPrice')}
              <input type="number" required min={0} value={form.price} onInput={field('price')} />
            </label>
            <label>
              {t('studio.dealQuantity')}
              <input type="number" required min={1} value={form.quantity} onInput={field('quantity')} />
            </label>
          </div>
          <div class="inline">
            <label>
              {t('studio.dealLimit')}
              <input type="number" required min={1} value={form.limit} onInput={field('limit')} />
            </label>
            <label>
              {t('studio.dealDuration')}
              <input type="number" required min={10} max={1200} value={form.duration} onInput={field('duration')} />
            </label>
          </div>
          <button type="submit" class="primary">
            {t('studio.dealStart')}
          </button>
        </form>
      )}
      {note && (
        <p class="error" role="alert">
          {note}
        </p>
      )}
    </section>
  );
}

function Moderation({ channel, onSaved }: { channel: Channel; onSaved: () => void }) {
  const [slow, setSlow] = useState(String(channel.chat_slow_mode_s));
  const [words, setWords] = useState((channel.chat_banned_words ?? []).join('\n'));
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);

  async function save(event: Event) {
    event.preventDefault();
    try {
      await patch(`/channels/${channel.id}`, {
        chat_slow_mode_s: Number(slow),
        chat_banned_words: words
          .split('\n')
          .map((w) => w.trim())
          .filter(Boolean),
      });
      setNote({ ok: true, text: t('common.saved') });
      onSaved();
    } catch (err) {
      setNote({ ok: false, text: humanError(err) });
    }
  }

  return (
    <section class="panel" aria-labelledby="moderation-title">
      <h2 id="moderation-title">{t('studio.moderation')}</h2>
      <form class="stack" onSubmit={save}>
        <label>
          {t('studio.slowMode')}
          <input type="number" min={0} max={3600} value={slow} onInput={(e) => setSlow((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          {t('studio.bannedWords')}
          <textarea rows={3} value={words} onInput={(e) => setWords((e.currentTarget as HTMLTextAreaElement).value)} />
        </label>
        <button type="submit">{t('common.save')}</button>
        {note && (
          <p class={note.ok ? 'success' : 'error'} role={note.ok ? 'status' : 'alert'}>
            {note.text}
          </p>
        )}
      </form>
    </section>
  );
}
