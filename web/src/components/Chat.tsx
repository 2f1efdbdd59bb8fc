// The chat panel: messages as text (never HTML), the send form for signed-in viewers, refusals
// shown as sentences under the box, and delete / mute / ban beside each message for moderators.

import { useEffect, useRef, useState } from 'preact/hooks';
import { del, humanError, put } from '../api';
import { hasMessage, t } from '../i18n';
import type { ChatFrame } from '../room';
import { useMe } from '../session';

interface Props {
  channelId: number;
  messages: ChatFrame[];
  /** The last refusal from the room, as an error code. */
  refusal: { code: string; at: number } | null;
  connected: boolean;
  moderate: boolean;
  send: (text: string) => boolean;
}

export function Chat({ channelId, messages, refusal, connected, moderate, send }: Props) {
  const me = useMe();
  const [text, setText] = useState('');
  const [note, setNote] = useState<string | null>(null);
  const list = useRef<HTMLOListElement>(null);
  const pinnedToBottom = useRef(true);

  useEffect(() => {
    const el = list.current;
    if (el && pinnedToBottom.current) el.scrollTop = el.scrollHeight;
  }, [messages]);

  useEffect(() => {
    if (refusal) setNote(hasMessage(`error.${refusal.code}`) ? t(`error.${refusal.code}` as never) : t('error.generic'));
  }, [refusal]);

  function submit(event: Event) {
    event.preventDefault();
    const trimmed = text.trim();
    if (!trimmed) return setNote(t('error.empty_message'));
    if ([...trimmed].length > 300) return setNote(t('error.message_too_long'));
    if (send(trimmed)) {
      setText('');
      setNote(null);
    } else {
      setNote(t('chat.reconnecting'));
    }
  }

  async function act(action: () => Promise<unknown>) {
    try {
      await action();
    } catch (err) {
      setNote(humanError(err));
    }
  }

  return (
    <section class="chat" aria-labelledby="chat-title">
      <h2 id="chat-title">{t('chat.title')}</h2>
      {!connected && <p class="muted small">{t('chat.reconnecting')}</p>}
      <ol
        ref={list}
        class="messages"
        aria-live="polite"
        onScroll={(e) => {
          const el = e.currentTarget as HTMLOListElement;
          pinnedToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
      >
        {messages.length === 0 && <li class="muted">{t('chat.empty')}</li>}
        {messages.map((m) => (
          <li key={m.id} data-id={m.id}>
            <strong class="author">{m.user.name}</strong> <span class="text">{m.text}</span>
            {moderate && me && m.user.id !== me.id && (
              <span class="moderation">
                <button type="button" class="link small" onClick={() => act(() => del(`/channels/${channelId}/chat/${m.id}`))}>
                  {t('chat.delete')}
                </button>
                <button
                  type="button"
                  class="link small"
                  onClick={() => act(() => put(`/channels/${channelId}/chat/restrictions/${m.user.id}`, { mute_minutes: 10 }))}
                >
                  {t('chat.mute')}
                </button>
                <button
                  type="button"
                  class="link small danger"
                  onClick={() => act(() => put(`/channels/${channelId}/chat/restrictions/${m.user.id}`, { ban: true }))}
                >
                  {t('chat.ban')}
                </button>
              </span>
            )}
          </li>
        ))}
      </ol>
      {me ? (
        <form class="chat-form" onSubmit={submit}>
          <label class="visually-hidden" for="chat-text">
            {t('chat.placeholder')}
          </label>
          <input
            id="chat-text"
            value={text}
            maxLength={600}
            autoComplete="off"
            placeholder={t('chat.placeholder')}
            onInput={(e) => setText((e.currentTarget as HTMLInputElement).value)}
          />
          <button type="submit" class="primary">
            {t('chat.send')}
          </button>
        </form>
      ) : (
        me === null && (
          <a class="button wide" href={`/login?next=${encodeURIComponent(location.pathname)}`}>
            {t('chat.loginToChat')}
          </a>
        )
      )}
      {note && (
        <p class="error small" role="alert">
          {note}
        </p>
      )}
    </section>
  );
}
