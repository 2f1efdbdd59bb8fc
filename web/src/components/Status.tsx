import { t } from '../i18n';

/** A failure, in words, with a way to try again. */
export function ErrorNote({ message, retry }: { message: string; retry?: () => void }) {
  return (
    <div class="error-note" role="alert">
      <p>{message}</p>
      {retry && (
        <button type="button" onClick={retry}>
          {t('common.retry')}
        </button>
      )}
    </div>
  );
}

export function Loading() {
  return (
    <p class="loading" aria-live="polite">
      {t('common.loading')}
    </p>
  );
}
