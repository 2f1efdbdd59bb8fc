// The OBS settings: the server URL and the stream key, hidden until asked for, with copy buttons.

import { useState } from 'preact/hooks';
import { t } from '../i18n';

function CopyField({ label, value, secret }: { label: string; value: string; secret?: boolean }) {
  const [shown, setShown] = useState(!secret);
  const [copied, setCopied] = useState(false);
  async function copy() {
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      // Clipboard refused (no permission): select the text so it can be copied by hand.
      setShown(true);
    }
    setCopied(true);
    window.setTimeout(() => setCopied(false), 1500);
  }
  return (
    <div class="copy-field">
      <span class="label">{label}</span>
      <code class={shown ? '' : 'hidden-secret'} aria-label={shown ? undefined : `${label} (${t('common.hide')})`}>
        {shown ? value : '•'.repeat(24)}
      </code>
      {secret && (
        <button type="button" class="small" aria-pressed={shown} onClick={() => setShown(!shown)}>
          {shown ? t('common.hide') : t('common.show')}
        </button>
      )}
      <button type="button" class="small" onClick={copy}>
        {copied ? t('common.copied') : t('common.copy')}
      </button>
    </div>
  );
}

export function StreamKey({ server, streamKey }: { server: string; streamKey: string | null }) {
  return (
    <div class="stream-key">
      <p class="muted small">{t('studio.obsHelp')}</p>
      <CopyField label={t('studio.server')} value={server} />
      {streamKey ? <CopyField label={t('studio.key')} value={streamKey} secret /> : <p class="muted small">{t('studio.keyHidden')}</p>}
    </div>
  );
}
