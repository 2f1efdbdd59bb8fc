// Admin: the catalogue (stock, prices, images), users and roles, channels, replays, webhooks,
// failed background jobs and the month's estimated cost. Each section is a tab with its own address (/admin/products, …).

import { useState } from 'preact/hooks';
import { ApiError, del, get, humanError, patch, post, request, type Channel, type List, type Product, type Replay, type Role, type User } from '../api';
import { ErrorNote, Loading } from '../components/Status';
import { count, dateTime, price, t, type Key } from '../i18n';
import { useLoad } from '../load';
import { useMe } from '../session';
import { NeedsRole } from './NeedsRole';

const SECTIONS = ['products', 'users', 'channels', 'replays', 'webhooks', 'jobs', 'cost'] as const;
type Section = (typeof SECTIONS)[number];

export function Admin({ section }: { section?: string }) {
  const me = useMe();
  const gate = NeedsRole({ me, roles: ['admin'] });
  if (gate) return gate;
  const current: Section = SECTIONS.includes(section as Section) ? (section as Section) : 'products';
  return (
    <div class="admin">
      <h1>{t('admin.title')}</h1>
      <nav class="tabs" aria-label={t('admin.title')}>
        {SECTIONS.map((s) => (
          <a href={`/admin/${s}`} aria-current={s === current ? 'page' : undefined}>
            {t(`admin.${s}` as Key)}
          </a>
        ))}
      </nav>
      {current === 'products' && <Products />}
      {current === 'users' && <Users />}
      {current === 'channels' && <Channels />}
      {current === 'replays' && <Replays />}
      {current === 'webhooks' && <Webhooks />}
      {current === 'jobs' && <Jobs />}
      {current === 'cost' && <Cost />}
    </div>
  );
}

function useNote() {
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);
  const run = async (action: () => Promise<unknown>, done?: () => void) => {
    try {
      await action();
      setNote({ ok: true, text: t('common.saved') });
      done?.();
    } catch (err) {
      setNote({ ok: false, text: humanError(err) });
    }
  };
  const view = note && (
    <p class={note.ok ? 'success' : 'error'} role={note.ok ? 'status' : 'alert'}>
      {note.text}
    </p>
  );
  return { run, view };
}

function Products() {
  const statuses = ['active', 'draft', 'archived'] as const;
  const products = useLoad(async () => {
    const lists = await Promise.all(statuses.map((s) => get<List<Product>>(`/products?status=${s}&limit=100`)));
    return lists.flatMap((l) => l.items).sort((a, b) => a.id - b.id);
  }, []);
  const { run, view } = useNote();

  return (
    <section>
      <NewProduct onCreated={products.reload} />
      {view}
      {products.error && <ErrorNote message={products.error} retry={products.reload} />}
      {!products.data && !products.error && <Loading />}
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">{t('admin.image')}</th>
              <th scope="col">{t('admin.name')}</th>
              <th scope="col">{t('admin.price')}</th>
              <th scope="col">{t('admin.stock')}</th>
              <th scope="col">{t('admin.status')}</th>
            </tr>
          </thead>
          <tbody>
            {products.data?.map((p) => (
              <tr key={p.id}>
                <td>
                  {p.images[0] ? <img src={p.images[0].url} alt={t('product.image', { name: p.name })} width="48" height="48" /> : null}
                  <label class="upload small">
                    {t('admin.upload')}
                    <input
                      type="file"
                      accept="image/png,image/jpeg"
                      onChange={(e) => {
                        const file = (e.currentTarget as HTMLInputElement).files?.[0];
                        if (file) run(() => upload(p.id, file), products.reload);
                      }}
                    />
                  </label>
                </td>
                <td>
                  <strong>{p.name}</strong>
                  <br />
                  <span class="muted small">
                    {p.brand} · {p.category}
                  </span>
                </td>
                <td>
                  <NumberCell label={`${t('admin.price')}: ${p.name}`} value={p.price_minor} onSave={(v) => run(() => patch(`/products/${p.id}`, { price_minor: v }), products.reload)} />
                  <span class="muted small">{price(p.price_minor, p.currency)}</span>
                </td>
                <td>
                  <NumberCell label={`${t('admin.stock')}: ${p.name}`} value={p.stock} onSave={(v) => run(() => patch(`/products/${p.id}`, { stock: v }), products.reload)} />
                  {p.stock <= 0 && <span class="badge sold-out-inline">{t('product.soldOut')}</span>}
                </td>
                <td>
                  <select
                    aria-label={`${t('admin.status')}: ${p.name}`}
                    value={p.status}
                    onChange={(e) => run(() => patch(`/products/${p.id}`, { status: (e.currentTarget as HTMLSelectElement).value }), products.reload)}
                  >
                    {statuses.map((s) => (
                      <option value={s}>{t(`product.${s}` as Key)}</option>
                    ))}
                  </select>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

async function upload(id: number, file: File) {
  const response = await fetch(`/api/v1/products/${id}/images`, { method: 'POST', body: file, headers: { 'Content-Type': file.type } });
  if (!response.ok) {
    const code = await response
      .json()
      .then((b) => b?.error?.code)
      .catch(() => undefined);
    throw new ApiError(response.status, code ?? 'generic');
  }
}

function NumberCell({ label, value, onSave }: { label: string; value: number; onSave: (v: number) => void }) {
  const [text, setText] = useState(String(value));
  const changed = text !== String(value);
  return (
    <form
      class="inline-edit"
      onSubmit={(e) => {
        e.preventDefault();
        onSave(Number(text));
      }}
    >
      <input type="number" min={0} aria-label={label} value={text} onInput={(e) => setText((e.currentTarget as HTMLInputElement).value)} />
      {changed && (
        <button type="submit" class="small primary">
          {t('common.save')}
        </button>
      )}
    </form>
  );
}

function NewProduct({ onCreated }: { onCreated: () => void }) {
  const empty = { name: '', brand: '', category: '', price: '', stock: '' };
  const [form, setForm] = useState(empty);
  const { run, view } = useNote();
  const field = (name: keyof typeof form) => (e: Event) => setForm({ ...form, [name]: (e.currentTarget as HTMLInputElement).value });
  return (
    <details class="panel">
      <summary>{t('admin.newProduct')}</summary>
      <form
        class="grid-form"
        onSubmit={(e) => {
          e.preventDefault();
          run(
            () =>
              post('/products', {
                name: form.name,
                brand: form.brand,
                category: form.category,
                price_minor: Number(form.price),
                stock: Number(form.stock),
              }),
            () => {
              setForm(empty);
              onCreated();
            },
          );
        }}
      >
        <label>
          {t('admin.name')}
          <input required value={form.name} onInput={field('name')} />
        </label>
        <label>
          {t('admin.brand')}
          <input value={form.brand} onInput={field('brand')} />
        </label>
        <label>
          {t('admin.category')}
          <input required value={form.category} onInput={field('category')} />
        </label>
        <label>
          {t('admin.price')}
          <input type="number" min={0} required value={form.price} onInput={field('price')} />
        </label>
        <label>
          {t('admin.stock')}
          <input type="number" min={0} required value={form.stock} onInput={field('stock')} />
        </label>
        <button type="submit" class="primary">
          {t('admin.create')}
        </button>
      </form>
      {view}
    </details>
  );
}

function Users() {
  const users = useLoad(() => get<List<User>>('/users?limit=200'), []);
  const { run, view } = useNote();
  const me = useMe();
  return (
    <section>
      {view}
      {users.error && <ErrorNote message={users.error} retry={users.reload} />}
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">{t('admin.email')}</th>
              <th scope="col">{t('admin.name')}</th>
              <th scope="col">{t('admin.role')}</th>
              <th scope="col">{t('admin.joined')}</th>
            </tr>
          </thead>
          <tbody>
            {users.data?.items.map((u) => (
              <tr key={u.id}>
                <td>{u.email}</td>
                <td>{u.display_name}</td>
                <td>
                  <select
                    aria-label={`${t('admin.role')}: ${u.email}`}
                    value={u.role}
                    disabled={u.id === me?.id}
                    onChange={(e) => run(() => patch(`/users/${u.id}`, { role: (e.currentTarget as HTMLSelectElement).value as Role }), users.reload)}
                  >
                    {(['viewer', 'host', 'admin'] as const).map((r) => (
                      <option value={r}>{t(`role.${r}`)}</option>
                    ))}
                  </select>
                </td>
                <td>{dateTime(u.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function Channels() {
  const channels = useLoad(() => get<List<Channel>>('/channels'), [], 10_000);
  return (
    <section>
      {channels.error && <ErrorNote message={channels.error} retry={channels.reload} />}
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">{t('studio.channelTitle')}</th>
              <th scope="col">{t('admin.status')}</th>
              <th scope="col">{t('admin.viewers')}</th>
              <th scope="col">{t('admin.host')}</th>
              <th scope="col">
                <span class="visually-hidden">{t('studio.open')}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {channels.data?.items.map((c) => (
              <tr key={c.id}>
                <td>{c.title}</td>
                <td>
                  <span class={`status ${c.status}`}>{c.status === 'live' ? t('channel.live') : t('channel.offline')}</span>
                </td>
                <td>{count(c.viewers)}</td>
                <td>#{c.host_id}</td>
                <td>
                  <a href={`/studio/${c.id}`}>{t('studio.open')}</a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function Replays() {
  const replays = useLoad(() => get<List<Replay>>('/replays?limit=100'), []);
  const { run, view } = useNote();
  return (
    <section>
      {view}
      {replays.error && <ErrorNote message={replays.error} retry={replays.reload} />}
      {replays.data?.items.length === 0 && <p class="muted">{t('admin.empty')}</p>}
      <div class="table-wrap">
        <table>
          <tbody>
            {replays.data?.items.map((r) => (
              <tr key={r.id}>
                <td>
                  <a href={`/replays/${r.id}`}>{r.title}</a>
                </td>
                <td>{r.started_at ? dateTime(r.started_at) : ''}</td>
                <td>{t('replay.duration', { m: Math.max(1, Math.round((r.duration_ms ?? 0) / 60000)) })}</td>
                <td>
                  <button type="button" class="small" onClick={() => run(() => patch(`/replays/${r.id}`, { hidden: true }), replays.reload)}>
                    {t('admin.hide')}
                  </button>{' '}
                  <button
                    type="button"
                    class="small danger"
                    onClick={() => window.confirm(t('admin.deleteConfirm')) && run(() => del(`/replays/${r.id}`), replays.reload)}
                  >
                    {t('admin.delete')}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

interface Webhook {
  id: number;
  url: string;
  events: string[];
  created_at: string;
}

function Webhooks() {
  const hooks = useLoad(() => get<List<Webhook>>('/webhooks'), []);
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState('order.placed, stream.started, stream.ended, recording.ready');
  const [secret, setSecret] = useState<string | null>(null);
  const { run, view } = useNote();
  return (
    <section>
      <form
        class="panel grid-form"
        onSubmit={(e) => {
          e.preventDefault();
          run(async () => {
            const created = await post<{ secret: string }>('/webhooks', {
              url,
              events: events
                .split(',')
                .map((x) => x.trim())
                .filter(Boolean),
            });
            setSecret(created.secret);
            setUrl('');
          }, hooks.reload);
        }}
      >
        <h2>{t('admin.newWebhook')}</h2>
        <label>
          {t('admin.url')}
          <input type="url" required value={url} onInput={(e) => setUrl((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          {t('admin.events')}
          <input value={events} onInput={(e) => setEvents((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <button type="submit" class="primary">
          {t('admin.create')}
        </button>
      </form>
      {secret && (
        <p class="panel">
          {t('admin.secret')}: <code>{secret}</code>
        </p>
      )}
      {view}
      {hooks.error && <ErrorNote message={hooks.error} retry={hooks.reload} />}
      <ul class="plain-list">
        {hooks.data?.items.map((h) => (
          <li key={h.id}>
            <code>{h.url}</code> <span class="muted small">{h.events.join(', ')}</span>{' '}
            <button type="button" class="small danger" onClick={() => run(() => del(`/webhooks/${h.id}`), hooks.reload)}>
              {t('admin.delete')}
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

interface Job {
  id: number;
  kind: string;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  updated_at: string;
}

function Jobs() {
  const jobs = useLoad(() => request<List<Job>>('GET', '/jobs?status=dead&limit=100'), []);
  return (
    <section>
      {jobs.error && <ErrorNote message={jobs.error} retry={jobs.reload} />}
      {jobs.data?.items.length === 0 && <p class="muted">{t('admin.noJobs')}</p>}
      {!!jobs.data?.items.length && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">{t('admin.kind')}</th>
                <th scope="col">{t('admin.attempts')}</th>
                <th scope="col">{t('admin.lastError')}</th>
              </tr>
            </thead>
            <tbody>
              {jobs.data.items.map((j) => (
                <tr key={j.id}>
                  <td>{j.id}</td>
                  <td>{j.kind}</td>
                  <td>
                    {j.attempts} / {j.max_attempts}
                  </td>
                  <td class="small">{j.last_error ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

interface CostLine {
  channel_id: number | null;
  egress_bytes: number;
  stored_bytes: number;
  cpu_ms: number;
  total_usd: number;
}

interface CostReport {
  channels: CostLine[];
  total: CostLine;
}

const gb = (bytes: number) => (bytes / 1e9).toFixed(3);
const usd = (amount: number) => `$${amount.toFixed(amount < 10 ? 4 : 2)}`;

function Cost() {
  const report = useLoad(() => get<CostReport>('/admin/cost'), []);
  const row = (name: string, l: CostLine) => (
    <tr key={name}>
      <td>{name}</td>
      <td>{gb(l.egress_bytes)}</td>
      <td>{gb(l.stored_bytes)}</td>
      <td>{(l.cpu_ms / 1e3).toFixed(1)}</td>
      <td>{usd(l.total_usd)}</td>
    </tr>
  );
  return (
    <section>
      <p class="muted">{t('admin.costIntro')}</p>
      {report.error && <ErrorNote message={report.error} retry={report.reload} />}
      {report.data?.channels.length === 0 && <p class="muted">{t('admin.noCost')}</p>}
      {!!report.data?.channels.length && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">{t('admin.channels')}</th>
                <th scope="col">{t('admin.egress')}</th>
                <th scope="col">{t('admin.stored')}</th>
                <th scope="col">{t('admin.cpu')}</th>
                <th scope="col">USD</th>
              </tr>
            </thead>
            <tbody>
              {report.data.channels.map((l) => row(l.channel_id === null ? t('admin.platform') : `#${l.channel_id}`, l))}
              {row(t('admin.total'), report.data.total)}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
