// What the browser tests share: their settings (from the environment the Rust test sets, see
// crates/server/tests/api/web_app.rs), the browser's flags, calls to the API and waiting.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (see crates/server/tests/api/web_app.rs)`);
  return value;
};
export const BASE = env('OLIVE_URL');
export const RTMP = env('OLIVE_RTMP');
export const SHOTS = env('OLIVE_SCREENSHOTS');

// As the machine needs them: no network beyond loopback, no GPU, no first-run or sync chatter.
export const CHROMIUM_FLAGS = [
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

/** Collects the page's console errors, uncaught exceptions and unexpected dialogs into `problems`. */
export function watch(page, name, problems) {
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`${name}: console error: ${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => problems.push(`${name}: uncaught: ${error.message}`));
  page.on('dialog', (dialog) => {
    if (dialog.type() === 'confirm') return dialog.accept();
    problems.push(`${name}: unexpected ${dialog.type()} dialog: ${dialog.message()}`);
    return dialog.dismiss();
  });
  return page;
}

export async function api(path, init = {}) {
  const response = await fetch(`${BASE}/api/v1${path}`, init);
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.status === 204 ? null : response.json();
}

export async function token(email, password) {
  const { token } = await api('/auth/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  return { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
}

export async function eventually(what, check, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/** Publishes `clip` to `streamKey` in a loop, without re-encoding, as OBS would send it. */
export function publish(clip, streamKey) {
  return spawn('ffmpeg', ['-v', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'flv', `${RTMP}/${streamKey}`], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

/** A screenshot for docs/screenshots, once the page's images all have alt text. */
export async function shot(page, name, fullPage = false) {
  assert.equal(await page.locator('img:not([alt])').count(), 0, `${name}: every image has alt text`);
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

/** What the <video> on the page is doing. */
export const videoState = (page) =>
  page.$eval('video', (v) => ({
    engine: v.dataset.engine,
    latency: v.dataset.latency ? Number(v.dataset.latency) : null,
    time: v.currentTime,
    frames: v.getVideoPlaybackQuality().totalVideoFrames,
    paused: v.paused,
  }));

