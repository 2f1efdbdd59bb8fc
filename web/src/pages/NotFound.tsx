import { t } from '../i18n';

export function NotFound() {
  return (
    <section class="empty-page">
      <h1>{t('notFound.title')}</h1>
      <p>{t('notFound.body')}</p>
      <a class="button" href="/">
        {t('notFound.home')}
      </a>
    </section>
  );
}
