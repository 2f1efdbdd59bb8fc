// Host studio, first page: the host's channels (all of them for admins) and a form to create one.
// A new channel's stream key is shown here once, as the server gives it.

import { useState } from 'preact/hooks';
import { get, humanError, post, type Channel, type ChannelWithKey, type List } from '../api';
import { ErrorNote, Loading } from '../components/Status';
import { StreamKey } from '../components/StreamKey';
import { count, t } from '../i18n';
import { useLoad } from '../load';
import { useMe } from '../session';
import { NeedsRole } from './NeedsRole';

export function Studio() {
  const me = useMe();
  const channels = useLoad(() => get<List<Channel>>('/channels'), [], 10_000);
  const [created, setCreated] = useState<ChannelWithKey | null>(null);

  const gate = NeedsRole({ me, roles: ['host', 'admin'] });
  if (gate) return gate;
  const mine = (channels.data?.items ?? []).filter((c) => me!.role === 'admin' || c.host_id === me!.id);

  return (
    <div class="studio">
      <h1>{t('studio.channels')}</h1>
      {channels.error && <ErrorNote message={channels.error} retry={channels.reload} />}
      {!channels.data && !channels.error && <Loading />}
      {channels.data && mine.length === 0 && <p class="muted">{t('studio.none')}</p>}
      <ul class="studio-list">
        {mine.map((c) => (
          <li key={c.id} class="card">
            <div>
              <strong>{c.title}</strong>{' '}
              <span class={`status ${c.status}`}>{c.status === 'live' ? t('channel.live') : t('channel.offline')}</span>
              {c.status === 'live' && <span class="muted"> · {t('channel.viewers', { n: count(c.viewers) })}</span>}
            </div>
            <a class="button small" href={`/studio/${c.id}`}>
              {t('studio.open')}
            </a>
          </li>
        ))}
      </ul>
      {created && (
        <section class="panel" aria-labelledby="new-key">
          <h2 id="new-key">{created.title}</h2>
          <StreamKey server={created.ingest_url} streamKey={created.stream_key} />
          <a class="button primary" href={`/studio/${created.id}`}>
            {t('studio.open')}
          </a>
        </section>
      )}
      <CreateChannel
        onCreated={(c) => {
          setCreated(c);
          channels.reload();
        }}
      />
    </div>
  );
}

function CreateChannel({ onCreated }: { onCreated: (c: ChannelWithKey) => void }) {
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const [scheduled, setScheduled] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = { title, description, scheduled_at: scheduled ? new Date(scheduled).toISOString() : null };
      onCreated(await post<ChannelWithKey>('/channels', body));
      setTitle('');
      setDescription('');
      setScheduled('');
    } catch (err) {
      setError(humanError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="panel" aria-labelledby="create-title">
      <h2 id="create-title">{t('studio.create')}</h2>
      <form class="stack" onSubmit={submit}>
        <label>
          {t('studio.channelTitle')}
          <input required maxLength={120} value={title} onInput={(e) => setTitle((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          {t('studio.description')}
          <textarea rows={2} maxLength={2000} value={description} onInput={(e) => setDescription((e.currentTarget as HTMLTextAreaElement).value)} />
        </label>
        <label>
          {t('studio.scheduled')}
          <input type="datetime-local" value={scheduled} onInput={(e) => setScheduled((e.currentTarget as HTMLInputElement).value)} />
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {t('studio.create')}
        </button>
      </form>
    </section>
  );
}
