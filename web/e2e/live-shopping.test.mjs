// The whole live-shopping path in a real browser (Debian's Chromium driven by playwright-core)
// against the real olive binary while ffmpeg publishes a live. crates/server/tests/api/web_app.rs
// starts the server with demo content and runs this file with:
//   OLIVE_URL, OLIVE_RTMP (rtmp://host:port/live), OLIVE_HOST_EMAIL/PASSWORD,
//   OLIVE_ADMIN_EMAIL/PASSWORD, OLIVE_SCREENSHOTS (directory), OLIVE_CHROMIUM (executable).
// Every page's console errors and uncaught exceptions are collected; the last step asserts none.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { BASE, CHROMIUM_FLAGS, SHOTS, api, env, eventually, publish, shot, token, videoState, watch } from './support.mjs';

const CHANNEL = 1;

const problems = [];
let browser;
let work;
let publisher;
let stamp = Date.now();

async function newPage(name, options = {}) {
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 860 }, ...options });
  return watch(await context.newPage(), name, problems);
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'olive-e2e-'));
  // A 10 s clip encoded once (small, with B-frames, 1 s GOP), then published in a loop without
  // re-encoding, so ffmpeg costs little beside the browser.
  const clip = join(work, 'clip.flv');
  execFileSync('ffmpeg', [
    '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', '10', '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '800k', '-bf', '2', '-g', '30', '-keyint_min', '30', '-sc_threshold', '0',
    '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', clip,
  ]);
  const host = await token(env('OLIVE_HOST_EMAIL'), env('OLIVE_HOST_PASSWORD'));
  const { stream_key } = await api(`/channels/${CHANNEL}/stream-key`, { method: 'POST', headers: host });
  publisher = publish(clip, stream_key);
  await eventually('the channel to go live', async () => (await api(`/channels/${CHANNEL}`)).status === 'live', 30_000);
  await eventually('the first thumbnail', async () => (await fetch(`${BASE}/live/${CHANNEL}/thumbnail.jpg`)).ok, 30_000);

  // A product whose name is markup: every page must show it as text.
  const admin = await token(env('OLIVE_ADMIN_EMAIL'), env('OLIVE_ADMIN_PASSWORD'));
  const hostile = await api('/products', {
    method: 'POST',
    headers: admin,
    body: JSON.stringify({ name: '<img src=x onerror=alert(1)>Glow', category: 'skincare', price_minor: 9900, stock: 5 }),
  });
  const { product_ids } = await api(`/channels/${CHANNEL}/lineup`);
  await api(`/channels/${CHANNEL}/lineup`, { method: 'PUT', headers: host, body: JSON.stringify({ product_ids: [...product_ids, hostile.id] }) });

  browser = await chromium.launch({ executablePath: env('OLIVE_CHROMIUM'), headless: true, chromiumSandbox: false, args: CHROMIUM_FLAGS });
});

after(async () => {
  await browser?.close();
  if (publisher && publisher.exitCode === null) publisher.kill('SIGKILL');
  if (work) rmSync(work, { recursive: true, force: true });
});

test('a shopper watches, chats and buys while the host pins; the replay seeks by chapter', async (t) => {
  const shopper = await newPage('shopper');
  // What the app reports for the recommender (views, watch time, hearts, clicks).
  let eventsAccepted = 0;
  shopper.on('response', (r) => {
    if (r.url().endsWith('/api/v1/events') && r.status() === 202) eventsAccepted += 1;
  });
  const email = `shopper-${stamp}@olive.test`;

  await t.test('a wrong password gets a sentence, not JSON', async () => {
    // Chromium logs every refused request (here the 401) as a console error, so this page only
    // collects uncaught exceptions.
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`login: uncaught: ${error.message}`));
    await page.goto(`${BASE}/login`);
    await page.getByLabel('Email').fill('nobody@olive.test');
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Log in' }).click();
    const alert = page.getByRole('alert');
    await alert.getByText('That email and password do not match.').waitFor();
    assert.ok(!(await alert.textContent()).includes('{'), 'no JSON shown');
    await context.close();
  });

  await t.test('signs up and sees the live on the home page', async () => {
    await shopper.goto(`${BASE}/`);
    await shopper.getByRole('link', { name: 'Sign up' }).click();
    await shopper.getByLabel('Email').fill(email);
    await shopper.getByLabel('Name shown in chat').fill('Minji');
    await shopper.getByLabel('Password').fill('correct horse battery');
    await shopper.getByRole('button', { name: 'Sign up' }).click();
    await shopper.getByRole('link', { name: 'My orders' }).waitFor();
    const card = shopper.locator(`a.channel-card[href="/watch/${CHANNEL}"]`);
    await card.locator('.badge.live').waitFor();
    await card.locator('img').evaluate((img) => img.decode());
    await shot(shopper, 'home', true);
  });

  await t.test('opens the live: hls.js plays it near the live edge', async () => {
    await shopper.locator(`a.channel-card[href="/watch/${CHANNEL}"]`).click();
    await shopper.waitForURL(`**/watch/${CHANNEL}`);
    const start = await eventually('the video to play', async () => {
      const s = await videoState(shopper);
      return s.time > 0.5 && s.frames > 0 ? s : null;
    });
    assert.equal(start.engine, 'hls.js', 'Media Source Extensions are there, so hls.js plays, not native HLS');
    const later = await eventually('playback to advance', async () => {
      const s = await videoState(shopper);
      return s.time > start.time + 1.5 ? s : null;
    });
    assert.ok(later.frames > start.frames, `frames decoded: ${start.frames} then ${later.frames}`);
    const latency = await eventually('hls.js to report a latency under 3 s', async () => {
      const s = await videoState(shopper);
      return s.latency !== null && s.latency < 3 ? s.latency : null;
    });
    t.diagnostic(`latency to the live edge: ${latency.toFixed(2)} s`);
  });

  const other = await newPage('second shopper');
  await t.test('a chat message reaches a second browser as text', async () => {
    const otherEmail = `other-${stamp}@olive.test`;
    await other.goto(`${BASE}/signup?next=/watch/${CHANNEL}`);
    await other.getByLabel('Email').fill(otherEmail);
    await other.getByLabel('Password').fill('correct horse battery');
    await other.getByRole('button', { name: 'Sign up' }).click();
    await other.waitForURL(`**/watch/${CHANNEL}`);
    await other.getByLabel('Say something nice').waitFor();

    const text = `Hello <b>from</b> Minji ${stamp}`;
    await shopper.getByLabel('Say something nice').fill(text);
    await shopper.getByRole('button', { name: 'Send', exact: true }).click();
    const received = other.locator('.messages li', { hasText: text });
    await received.waitFor({ timeout: 10_000 });
    assert.equal(await received.locator('.author').textContent(), 'Minji');
    assert.equal(await received.locator('b').count(), 0, 'markup in chat is shown as text');
    // The hostile product's name shows as text in the line-up, and no alert ran.
    await shopper.locator('.lineup h3', { hasText: '<img src=x onerror=alert(1)>Glow' }).waitFor();
  });

  const host = await newPage('host');
  let pinnedName;
  await t.test('the host pins a product from the studio and the card appears in sync', async () => {
    await host.goto(`${BASE}/login?next=/studio/${CHANNEL}`);
    await host.getByLabel('Email').fill(env('OLIVE_HOST_EMAIL'));
    await host.getByLabel('Password').fill(env('OLIVE_HOST_PASSWORD'));
    await host.getByRole('button', { name: 'Log in' }).click();
    await host.waitForURL(`**/studio/${CHANNEL}`);
    await host.locator('[data-stat="bitrate"]').waitFor({ timeout: 15_000 });
    const first = host.locator('.lineup-edit li').first();
    await first.locator('img').waitFor();
    pinnedName = (await first.locator('strong').textContent()).trim();
    await first.getByRole('button', { name: /^Pin:/ }).click();
    await first.getByRole('button', { name: /^Pin:/ }).filter({ hasText: 'Pinned' }).waitFor();
    const card = shopper.locator('.pinned-card');
    await card.locator('.name', { hasText: pinnedName }).waitFor({ timeout: 15_000 });
    await shot(shopper, 'watch');
  });

  await t.test('the shopper buys the pinned product without leaving the stream and finds it in My orders', async () => {
    // The sheet is a modal dialog: Escape closes it, and the stream is still there.
    await shopper.locator('.pinned-card').getByRole('button', { name: 'Buy now' }).click();
    await shopper.getByRole('dialog').waitFor();
    await shopper.keyboard.press('Escape');
    await shopper.getByRole('dialog').waitFor({ state: 'detached' });
    await shopper.locator('.pinned-card').getByRole('button', { name: 'Buy now' }).click();
    const sheet = shopper.getByRole('dialog');
    await sheet.getByRole('button', { name: 'Place order' }).click();
    await sheet.getByText('Ordered!').waitFor();
    const s = await videoState(shopper);
    assert.equal(s.paused, false, 'the live kept playing behind the sheet');
    await sheet.getByRole('button', { name: 'Close' }).click();
    await shopper.getByRole('link', { name: 'My orders' }).click();
    await shopper.locator('.order', { hasText: pinnedName }).waitFor();
    await shot(shopper, 'orders');
    // The host's live stats count it.
    await host.locator('[data-stat="orders"]', { hasText: '1' }).waitFor({ timeout: 15_000 });
    await shot(host, 'studio', true);
  });

  await t.test('a live deal: countdown and stock on the watch page, deal price, sold out, ended by the host', async () => {
    await shopper.goBack();
    await shopper.waitForURL(`**/watch/${CHANNEL}`);
    const form = host.locator('form', { has: host.getByRole('button', { name: 'Start deal' }) });
    const select = form.getByLabel('Product');
    const option = select.locator('option').nth(2);
    const dealName = (await option.textContent()).split(' (')[0];
    await select.selectOption({ index: 2 });
    await form.getByLabel('Deal price (won)').fill('15000');
    await form.getByLabel('Units').fill('2');
    await form.getByLabel('Per customer').fill('2');
    await form.getByLabel('Duration').fill('120');
    await form.getByRole('button', { name: 'Start deal' }).click();

    const banner = shopper.locator('.deal-banner');
    await banner.getByText(dealName).waitFor({ timeout: 10_000 });
    await banner.getByText('2 left').waitFor();
    const countdown = await banner.getByRole('timer').textContent();
    assert.match(countdown, /^Ends in [12]:\d\d$/, countdown);
    await shot(shopper, 'watch-deal');
    await banner.getByRole('button', { name: 'Buy now' }).click();
    const sheet = shopper.getByRole('dialog');
    await sheet.getByText('₩15,000').first().waitFor();
    await sheet.getByLabel('Quantity').selectOption('2');
    await sheet.getByText('₩30,000').waitFor();
    await sheet.getByRole('button', { name: 'Place order' }).click();
    await sheet.getByText('Ordered!').waitFor();
    await sheet.getByRole('button', { name: 'Close' }).click();
    // Everyone sees it sold out; the second shopper cannot buy it.
    await other.locator('.deal-banner').getByRole('button', { name: 'Sold out' }).waitFor({ timeout: 10_000 });
    assert.equal(await other.locator('.deal-banner').getByRole('button', { name: 'Sold out' }).isDisabled(), true);
    await host.getByText('2 of 2 sold').waitFor({ timeout: 10_000 });
    await host.getByRole('button', { name: 'End deal now' }).click();
    await shopper.locator('.deal-banner').getByText('The deal has ended').waitFor({ timeout: 10_000 });
    // The order was made at the deal price.
    const orders = await shopper.evaluate(() => fetch('/api/v1/orders').then((r) => r.json()));
    const dealOrder = orders.items.find((o) => o.items[0].name === dealName);
    assert.equal(dealOrder.total_minor, 30_000);
  });

  await t.test('the watch page on a phone, in Korean', async () => {
    const phone = await newPage('phone', {
      locale: 'ko-KR',
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    await phone.goto(`${BASE}/watch/${CHANNEL}`);
    assert.equal(await phone.getAttribute('html', 'lang'), 'ko');
    await phone.getByText('지금 소개 중').waitFor({ timeout: 15_000 });
    await eventually('the phone video to play', async () => (await videoState(phone)).time > 0.5);
    await shot(phone, 'watch-phone');
    await phone.context().close();
  });

  await t.test('the admin pages', async () => {
    const admin = await newPage('admin');
    await admin.goto(`${BASE}/login?next=/admin/products`);
    await admin.getByLabel('Email').fill(env('OLIVE_ADMIN_EMAIL'));
    await admin.getByLabel('Password').fill(env('OLIVE_ADMIN_PASSWORD'));
    await admin.getByRole('button', { name: 'Log in' }).click();
    await admin.waitForURL('**/admin/products');
    await admin.locator('table tbody tr').first().waitFor();
    await admin.locator('td', { hasText: '<img src=x onerror=alert(1)>Glow' }).waitFor();
    await shot(admin, 'admin', true);
    const tabs = { users: 'Users', channels: 'Channels', replays: 'Replays', webhooks: 'Webhooks', jobs: 'Failed jobs', cost: 'Cost' };
    for (const [section, name] of Object.entries(tabs)) {
      await admin.getByRole('link', { name, exact: true }).click();
      await admin.waitForURL(`**/admin/${section}`);
    }
    // The month's cost: the platform's own usage is flushed every 10 s, so a table or, before the
    // first flush, the note that nothing is recorded yet.
    await admin.getByText('This month so far').waitFor();
    await admin.locator('td', { hasText: 'Total' }).or(admin.getByText('No usage recorded')).first().waitFor();
    await admin.context().close();
  });

  let replayId;
  await t.test('the live ends cleanly and becomes a replay', async () => {
    // Leave the live pages first: their players would otherwise ask for a playlist that ends.
    for (const page of [shopper, other, host]) await page.goto(`${BASE}/orders`);
    publisher.kill('SIGINT');
    replayId = await eventually(
      'the replay to be ready',
      async () => (await api(`/replays?channel_id=${CHANNEL}`)).items.find((r) => r.status === 'ready' && r.pins.length > 0)?.id,
      60_000,
    );
  });

  await t.test('the replay plays and a chapter click seeks to the pin', async () => {
    const replay = await api(`/replays/${replayId}`);
    await shopper.goto(`${BASE}/replays/${replayId}`);
    await eventually('the replay to play', async () => (await videoState(shopper)).time > 0.3);
    assert.equal((await videoState(shopper)).engine, 'hls.js');
    const chapter = shopper.locator('.chapter').first();
    await chapter.waitFor();
    const target = replay.pins[0].offset_ms / 1000;
    // Seek somewhere else first so the click has to move the picture.
    await shopper.$eval('video', (v, to) => (v.currentTime = to), target > 3 ? 0 : target + 3);
    await chapter.click();
    await eventually(`the video to seek to ${target.toFixed(1)} s`, async () => Math.abs((await videoState(shopper)).time - target) < 1.5);
    await shot(shopper, 'replay');
  });

  await t.test('the app reported what the shopper did, and no page logged an error', () => {
    assert.ok(eventsAccepted > 0, 'event batches accepted');
    assert.deepEqual(problems, []);
  });
});
