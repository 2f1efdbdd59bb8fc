// How far behind the wall clock each rendition of a live plays in the web app's hls.js (Chromium
// through playwright-core): the player's data-behind (wall clock minus the picture's
// EXT-X-PROGRAM-DATE-TIME), sampled every 250 ms for SECONDS with each rendition chosen in the
// quality menu in turn. Every rendition carries the source's program date-times, so the
// difference between a rung and the source is what the transcoding adds. Run by
// bench/rung-latency.sh:
//   node tools/rung-latency.mjs <watch page URL> <chromium> [seconds]

import { chromium } from 'playwright-core';

const [url, executablePath, seconds = '30'] = process.argv.slice(2);
if (!url || !executablePath) {
  console.error('usage: node tools/rung-latency.mjs <watch page URL> <chromium> [seconds]');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath,
  headless: true,
  chromiumSandbox: false,
  args: ['--disable-gpu', '--no-first-run', '--autoplay-policy=no-user-gesture-required'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
await page.goto(url);
const menu = page.locator('select.quality');
await menu.waitFor({ timeout: 60_000 });
const renditions = (await menu.locator('option').allTextContents()).slice(1);
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
const results = [];
for (const rendition of renditions) {
  await menu.selectOption({ label: rendition });
  const deadline = Date.now() + 30_000;
  while ((await page.$eval('video', (v) => v.dataset.rung)) !== rendition) {
    if (Date.now() > deadline) throw new Error(`${rendition} never played`);
    await page.waitForTimeout(250);
  }
  await page.waitForTimeout(8_000); // settle at the live edge
  const samples = [];
  const end = Date.now() + Number(seconds) * 1000;
  while (Date.now() < end) {
    const behind = await page.$eval('video', (v) => Number(v.dataset.behind));
    if (Number.isFinite(behind)) samples.push(behind);
    await page.waitForTimeout(250);
  }
  results.push({ rendition, median_ms: median(samples), samples: samples.length });
}
await browser.close();
const source = results[0];
console.log('| rendition | behind the wall clock, median | added over the source |');
console.log('| --- | ---: | ---: |');
for (const r of results) {
  console.log(`| ${r.rendition} | ${r.median_ms} ms | ${r === source ? '' : `${r.median_ms - source.median_ms} ms`} |`);
}
