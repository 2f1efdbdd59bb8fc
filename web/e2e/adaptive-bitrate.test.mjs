// Adaptive bitrate in a real browser: a `standard` live (its ladder made by the node) played by
// the web app's hls.js in Chromium (playwright-core) while the DevTools protocol throttles the
// page's network. crates/server/tests/api/web_app.rs starts the server with transcode slots and
// runs this file with the variables named in support.mjs.
//
// Throttled to 1.5 Mbit/s the player must settle on a rung that fits, without a stall longer than
// a second after its first 10 s; unthrottled it must climb back to the top rung; and the quality
// menu must switch rungs by hand and back to Auto.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { BASE, CHROMIUM_FLAGS, SHOTS, api, env, eventually, publish, shot, token, watch } from './support.mjs';

const THROTTLE_BPS = 1_500_000;
const problems = [];
let browser;
let work;
let publisher;
let channel;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  work = mkdtempSync(join(tmpdir(), 'olive-abr-'));
  // A broadcaster's 720p30 at a constant 2.5 Mbit/s (filler keeps it there even on a test
  // pattern; the noise makes the rungs spend their own bit rates), 2 s keyframes, AAC audio.
  const clip = join(work, 'clip.flv');
  execFileSync('ffmpeg', [
    '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '12',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '2500k', '-minrate', '2500k', '-maxrate', '2500k', '-bufsize', '2500k',
    '-x264-params', 'nal-hrd=cbr', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '96k', '-f', 'flv', clip,
  ]);
  const host = await token(env('OLIVE_HOST_EMAIL'), env('OLIVE_HOST_PASSWORD'));
  const created = await api('/channels', { method: 'POST', headers: host, body: JSON.stringify({ title: 'Ladder in a browser' }) });
  channel = created.id;
  assert.equal(created.type, 'standard', 'channels are standard by default');
  publisher = publish(clip, created.stream_key);
  await eventually('the ladder to run', async () => (await api(`/channels/${channel}`)).ladder?.running === true, 60_000);
  await eventually(
    'every rendition in the master playlist',
    async () => ((await (await fetch(`${BASE}/live/${channel}/master.m3u8`)).text()).match(/#EXT-X-STREAM-INF/g) ?? []).length === 4,
    60_000,
  );
  // The page's poster is the live's thumbnail: the first one exists before a shopper comes.
  await eventually('the first thumbnail', async () => (await fetch(`${BASE}/live/${channel}/thumbnail.jpg`)).ok, 30_000);
  browser = await chromium.launch({ executablePath: env('OLIVE_CHROMIUM'), headless: true, chromiumSandbox: false, args: CHROMIUM_FLAGS });
});

after(async () => {
  await browser?.close();
  publisher?.kill('SIGKILL');
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The bandwidth each rung declares in the master playlist, by its name ("480p"). */
async function declaredBandwidth() {
  const master = await (await fetch(`${BASE}/live/${channel}/master.m3u8`)).text();
  const rungs = {};
  for (const [, attributes] of master.matchAll(/#EXT-X-STREAM-INF:(.*)/g)) {
    const bandwidth = Number(/(?:^|,)BANDWIDTH=(\d+)/.exec(attributes)[1]);
    const height = Number(/RESOLUTION=\d+x(\d+)/.exec(attributes)[1]);
    rungs[`${height}p`] = bandwidth;
  }
  return rungs;
}

/** Stalls (waiting → playing) on the page's video, measured in the page, in ms since `origin`. */
async function recordStalls(page) {
  await page.$eval('video', (video) => {
    const log = { stalls: [], waitingSince: null, rungs: [] };
    window.__abr = log;
    video.addEventListener('waiting', () => {
      if (log.waitingSince === null) log.waitingSince = performance.now();
    });
    const resumed = () => {
      if (log.waitingSince !== null) log.stalls.push({ at: log.waitingSince, ms: performance.now() - log.waitingSince });
      log.waitingSince = null;
    };
    video.addEventListener('playing', resumed);
    video.addEventListener('timeupdate', () => {
      if (log.waitingSince !== null && !video.paused && video.readyState >= 3) resumed();
    });
    new MutationObserver(() => log.rungs.push({ at: performance.now(), rung: video.dataset.rung })).observe(video, {
      attributes: true,
      attributeFilter: ['data-rung'],
    });
  });
}

/** The stalls since `since` (page time, ms), an unfinished one included. */
const stallsSince = (page, since) =>
  page.evaluate((since) => {
    const log = window.__abr;
    const now = performance.now();
    const all = [...log.stalls];
    if (log.waitingSince !== null) all.push({ at: log.waitingSince, ms: now - log.waitingSince, open: true });
    return all.filter((s) => s.at + s.ms > since);
  }, since);

const rungOf = (page) => page.$eval('video', (v) => v.dataset.rung ?? null);
const pageNow = (page) => page.evaluate(() => performance.now());

test('hls.js fits the ladder to a throttled network, climbs back, and switches by hand', { timeout: 240_000 }, async () => {
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 860 } });
  const page = watch(await context.newPage(), 'abr', problems);
  const devtools = await context.newCDPSession(page);
  await devtools.send('Network.enable');
  const throttle = (bps) =>
    devtools.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: bps ? 20 : 0,
      downloadThroughput: bps ? bps / 8 : -1,
      uploadThroughput: bps ? bps / 8 : -1,
    });
  await throttle(THROTTLE_BPS);
  await page.goto(`${BASE}/watch/${channel}`);
  await page.waitForSelector('video[data-engine="hls.js"]');
  await recordStalls(page);
  const start = await pageNow(page);
  await eventually('playback to start', async () => (await page.$eval('video', (v) => v.currentTime)) > 0.5, 30_000);
  const bandwidth = await declaredBandwidth();
  assert.ok(bandwidth['720p'] > THROTTLE_BPS, `the source does not fit the throttle: ${JSON.stringify(bandwidth)}`);

  // Throttled: after the first 10 s, the player settles on a rung that fits and does not stall.
  await new Promise((r) => setTimeout(r, 40_000));
  const settled = await rungOf(page);
  assert.ok(settled && settled !== '720p', `settled on ${settled}`);
  assert.ok(bandwidth[settled] <= THROTTLE_BPS, `${settled} declares ${bandwidth[settled]} bit/s, over the throttle`);
  const stalls = await stallsSince(page, start + 10_000);
  assert.deepEqual(
    stalls.filter((s) => s.ms > 1000),
    [],
    `stalls over 1 s after the first 10 s: ${JSON.stringify(stalls)}`,
  );
  const history = await page.evaluate(() => window.__abr.rungs.map((r) => `${(r.at / 1000).toFixed(1)}s ${r.rung}`));
  console.log(`throttled to ${THROTTLE_BPS} bit/s: declared ${JSON.stringify(bandwidth)}; rungs ${history.join(', ')}; stalls ${JSON.stringify(stalls)}`);
  const frames = await page.$eval('video', (v) => v.getVideoPlaybackQuality().totalVideoFrames);
  assert.ok(frames > 600, `${frames} frames shown in 40 s`);
  await shot(page, 'abr-throttled');

  // Unthrottled: it climbs back to the top rung.
  await throttle(null);
  const unthrottled = await pageNow(page);
  await eventually('the player to climb back to 720p', async () => (await rungOf(page)) === '720p', 60_000);
  console.log(`unthrottled: back on 720p after ${((await pageNow(page)) - unthrottled) / 1000} s`);

  // By hand: the quality menu lists Auto and every rung; choosing one plays it, Auto comes back.
  const menu = page.locator('select.quality');
  const options = await menu.locator('option').allTextContents();
  assert.deepEqual(options.slice(1), ['720p', '480p', '360p', '160p'], `menu: ${options}`);
  assert.match(options[0], /^Auto \(720p\)$/);
  await menu.selectOption({ label: '160p' });
  await eventually('the 160p rung to play', async () => (await rungOf(page)) === '160p', 30_000);
  const shown = await eventually('160p pictures on screen', async () => {
    const height = await page.$eval('video', (v) => v.videoHeight);
    return height === 160 && height;
  });
  assert.equal(shown, 160);
  await menu.selectOption({ index: 0 });
  await eventually('Auto to climb again', async () => (await rungOf(page)) === '720p', 60_000);
  await context.close();
  assert.deepEqual(problems, [], problems.join('\n'));
});
