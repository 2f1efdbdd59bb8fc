// Log in and sign up. After either, the visitor goes back to where they came from (`?next=`,
// same-site paths only).

import { useState } from 'preact/hooks';
import { humanError } from '../api';
import { t } from '../i18n';
import { navigate } from '../router';
import { logIn, signUp } from '../session';

function next(): string {
  const wanted = new URLSearchParams(location.search).get('next') ?? '/';
  return wanted.startsWith('/') && !wanted.startsWith('//') ? wanted : '/';
}

function AuthForm({ mode }: { mode: 'login' | 'signup' }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const signup = mode === 'signup';

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (signup) await signUp(email, password, name);
      else await logIn(email, password);
      navigate(next(), true);
    } catch (err) {
      setError(humanError(err));
      setBusy(false);
    }
  }

  const other = `?next=${encodeURIComponent(next())}`;
  return (
    <section class="auth">
      <h1>{signup ? t('auth.signup') : t('auth.login')}</h1>
      <form onSubmit={submit}>
        <label>
          {t('auth.email')}
          <input type="email" name="email" required autoComplete="email" value={email} onInput={(e) => setEmail((e.currentTarget as HTMLInputElement).value)} />
        </label>
        {signup && (
          <label>
            {t('auth.name')}
            <input name="name" maxLength={40} autoComplete="nickname" value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
          </label>
        )}
        <label>
          {t('auth.password')}
          <input
            type="password"
            name="password"
            required
            minLength={signup ? 8 : undefined}
            autoComplete={signup ? 'new-password' : 'current-password'}
            value={password}
            onInput={(e) => setPassword((e.currentTarget as HTMLInputElement).value)}
          />
          {signup && <span class="hint">{t('auth.passwordHint')}</span>}
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary wide" disabled={busy}>
          {signup ? t('nav.signup') : t('auth.login')}
        </button>
      </form>
      <p class="muted">
        {signup ? t('auth.haveAccount') : t('auth.noAccount')} <a href={(signup ? '/login' : '/signup') + other}>{signup ? t('nav.login') : t('nav.signup')}</a>
      </p>
    </section>
  );
}

export const LogIn = () => <AuthForm mode="login" />;
export const SignUp = () => <AuthForm mode="signup" />;
