// What a page shows instead of itself to someone not signed in, or without the role it needs.

import type { Role, User } from '../api';
import { Loading } from '../components/Status';
import { t } from '../i18n';

export function NeedsRole({ me, roles }: { me: User | null | undefined; roles: Role[] }) {
  if (me === undefined) return <Loading />;
  if (me === null)
    return (
      <section class="empty-page">
        <p>{t('auth.needLogin')}</p>
        <a class="button primary" href={`/login?next=${encodeURIComponent(location.pathname)}`}>
          {t('nav.login')}
        </a>
      </section>
    );
  if (!roles.includes(me.role))
    return (
      <section class="empty-page">
        <p>{t('error.forbidden')}</p>
        <a class="button" href="/">
          {t('notFound.home')}
        </a>
      </section>
    );
  return null;
}
