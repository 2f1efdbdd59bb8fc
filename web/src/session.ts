// Who is signed in, shared by every page: loaded once from /api/v1/me, changed by log-in and
// log-out. The session itself is the HttpOnly cookie the server sets.

import { useEffect, useState } from 'preact/hooks';
import { get, post, type User } from './api';

/** The server writes who is signed in into the page (see crates/api/src/web.rs). */
function embedded(): User | null | undefined {
  const text = document.getElementById('olive-me')?.textContent;
  if (!text) return undefined;
  try {
    return JSON.parse(text) as User | null;
  } catch {
    return undefined;
  }
}

let current: User | null | undefined = embedded();
const listeners = new Set<(user: User | null) => void>();

function set(user: User | null) {
  current = user;
  listeners.forEach((listener) => listener(user));
}

export async function loadMe(): Promise<User | null> {
  try {
    set(await get<User>('/me'));
  } catch {
    set(null);
  }
  return current ?? null;
}

export async function logIn(email: string, password: string): Promise<User> {
  const session = await post<{ user: User }>('/auth/login', { email, password });
  set(session.user);
  return session.user;
}

export async function signUp(email: string, password: string, displayName: string): Promise<User> {
  await post('/auth/signup', { email, password, display_name: displayName || undefined });
  return logIn(email, password);
}

export async function logOut() {
  await post('/auth/logout').catch(() => undefined);
  set(null);
}

/** The signed-in user; `undefined` while it is being found out. */
export function useMe(): User | null | undefined {
  const [user, setUser] = useState(current);
  useEffect(() => {
    listeners.add(setUser);
    if (current === undefined) loadMe();
    else setUser(current);
    return () => void listeners.delete(setUser);
  }, []);
  return user;
}
