// The app shell: header with navigation and the language switch, then the page for the path.

import { render } from 'preact';
import './style.css';
import { lang, setLanguage, t } from './i18n';
import { match, navigate, usePath } from './router';
import { logOut, useMe } from './session';
import { Home } from './pages/Home';
import { Watch } from './pages/Watch';
import { LogIn, SignUp } from './pages/Auth';
import { Orders } from './pages/Orders';
import { ReplayPage } from './pages/Replay';
import { NotFound } from './pages/NotFound';
import { Studio } from './pages/Studio';
import { StudioChannel } from './pages/StudioChannel';
import { Admin } from './pages/Admin';

function Header() {
  const me = useMe();
  return (
    <header class="top">
      <a class="skip" href="#main">
        {t('nav.skip')}
      </a>
      <a class="brand" href="/">
        <img src={document.querySelector<HTMLLinkElement>('link[rel=icon]')?.href} alt="" width="28" height="28" />
        {t('app.name')}
      </a>
      <nav aria-label="Main">
        <a href="/">{t('nav.home')}</a>
        {me && <a href="/orders">{t('nav.orders')}</a>}
        {me && (me.role === 'host' || me.role === 'admin') && <a href="/studio">{t('nav.studio')}</a>}
        {me?.role === 'admin' && <a href="/admin">{t('nav.admin')}</a>}
        {me === null && <a href="/login">{t('nav.login')}</a>}
        {me === null && (
          <a class="button small" href="/signup">
            {t('nav.signup')}
          </a>
        )}
        {me && (
          <button
            type="button"
            class="link"
            onClick={async () => {
              await logOut();
              navigate('/');
            }}
          >
            {t('nav.logout')}
          </button>
        )}
        <label class="language">
          <span class="visually-hidden">{t('nav.language')}</span>
          <select value={lang} onChange={(e) => setLanguage((e.currentTarget as HTMLSelectElement).value as 'en' | 'ko')}>
            <option value="ko">한국어</option>
            <option value="en">English</option>
          </select>
        </label>
      </nav>
    </header>
  );
}

function Page({ path }: { path: string }) {
  let params: Record<string, string> | null;
  if (match('/', path)) return <Home />;
  if ((params = match('/watch/:id', path))) return <Watch id={Number(params.id)} />;
  if ((params = match('/replays/:id', path))) return <ReplayPage id={Number(params.id)} />;
  if (match('/orders', path)) return <Orders />;
  if (match('/login', path)) return <LogIn />;
  if (match('/signup', path)) return <SignUp />;
  if (match('/studio', path)) return <Studio />;
  if ((params = match('/studio/:id', path))) return <StudioChannel id={Number(params.id)} />;
  if (match('/admin', path)) return <Admin />;
  if ((params = match('/admin/:section', path))) return <Admin section={params.section} />;
  return <NotFound />;
}

function App() {
  const path = usePath();
  return (
    <>
      <Header />
      <main id="main" tabIndex={-1}>
        <Page path={path} />
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
