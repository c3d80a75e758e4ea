/**
 * The playground (/playground in `minigate dev`), end to end in headless Chromium: the real CLI,
 * two browser contexts as two users (each tab keeps its session in sessionStorage). Both log
 * in, see each other in the room, chat; one uploads a picture and sees it downloaded back. The
 * network panel shows the requests and frames. Screenshots go to test-results/playground*.png.
 * No console errors anywhere.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, type RunningCli } from './helpers/cli.js';

const CHROMIUM = '/usr/bin/chromium';
const RESULTS = fileURLToPath(new URL('../../../test-results/', import.meta.url));
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const STEP = 15_000;

let dir: string;
let dev: RunningCli;
let browser: Browser;
let playground: string;
let devUrl: string;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mg-playground-'));
  dev = startCli(['dev', '--port', '0', '--https-port', '0', '--data', path.join(dir, 'data'), '--json']);
  const facts = JSON.parse(await dev.waitForLine(/^\{/)) as { url: string; playground: string };
  playground = facts.playground;
  devUrl = facts.url;
  expect(playground).toBe(`${facts.url}/playground/`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: STEP });
});

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close();
  await dev?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A PNG (RGB, a gradient) made here: signature, IHDR, one IDAT, IEND. */
function png(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes: Buffer) => {
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1); // filter byte 0
    for (let x = 0; x < width; x++) {
      rows[row + 1 + x * 3] = Math.round((255 * x) / width);
      rows[row + 2 + x * 3] = Math.round((255 * y) / height);
      rows[row + 3 + x * 3] = 200;
    }
  }
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

/** What the test reads of an <img> (the tests compile without the DOM types). */
interface Loaded {
  complete: boolean;
  naturalWidth: number;
  naturalHeight: number;
}

interface Phone {
  page: Page;
  errors: string[];
}

/** A browser context (its own sessionStorage: its own user) on the playground, logged in. */
async function openPhone(): Promise<Phone> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  context.setDefaultTimeout(STEP);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  await page.goto(playground);
  await page.click('#login');
  await expect.poll(() => page.textContent('#openid'), { timeout: STEP }).toMatch(/^o[\w-]+$/);
  return { page, errors };
}

describe('playground', () => {
  it('logs two users in, chats between them, round-trips a picture, and shows the traffic', async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`).toBe(true);
    const alice = await openPhone();
    const bob = await openPhone();
    const aliceId = (await alice.page.textContent('#openid'))!;
    const bobId = (await bob.page.textContent('#openid'))!;
    expect(aliceId).not.toBe(bobId);

    // The profile is GET /auth/session's answer.
    await expect.poll(() => alice.page.textContent('#profile'), { timeout: STEP }).toContain(aliceId);

    // Both in the room, each seeing the other.
    for (const phone of [alice, bob]) await phone.page.click('#tab-chat');
    for (const phone of [alice, bob]) {
      await phone.page.waitForSelector('#chat-state[data-state="open"]');
      await expect
        .poll(() => phone.page.$$eval('#presence .member', (nodes) => nodes.map((n) => n.getAttribute('title')).sort()), { timeout: STEP })
        .toEqual([aliceId, bobId].sort());
    }

    // Alice speaks; Bob hears it (and Alice sees her own message, on her side).
    await alice.page.fill('#chat-input', '你好，Bob');
    await alice.page.click('#chat-send');
    await bob.page.waitForSelector('.msg:not(.mine) .bubble:text("你好，Bob")');
    await alice.page.waitForSelector('.msg.mine .bubble:text("你好，Bob")');

    // Bob uploads a picture and sees it come back through wx.downloadFile.
    await bob.page.click('#tab-pics');
    const [chooser] = await Promise.all([bob.page.waitForEvent('filechooser'), bob.page.click('#pick')]);
    await chooser.setFiles({ name: 'gradient.png', mimeType: 'image/png', buffer: png(160, 96) });
    const img = await bob.page.waitForSelector('img.downloaded');
    await bob.page.waitForFunction((node) => (node as unknown as Loaded).complete && (node as unknown as Loaded).naturalWidth > 0, img);
    expect(await img.evaluate((node) => [(node as unknown as Loaded).naturalWidth, (node as unknown as Loaded).naturalHeight])).toEqual([160, 96]);
    expect(await img.getAttribute('src')).toMatch(/^blob:/);

    // The network panel: requests with their status, the socket, frames both ways.
    const log = (page: Page, selector: string) => page.$$eval(`#log ${selector}`, (nodes) => nodes.length);
    await expect.poll(() => log(bob.page, '.entry.http[data-path="/auth/login"][data-method="POST"][data-status="200"]'), { timeout: STEP }).toBe(1);
    expect(await log(bob.page, '.entry.http[data-path="/__sandbox/login"][data-status="200"]')).toBe(1);
    expect(await log(bob.page, '.entry.http[data-path="/auth/session"][data-status="200"]')).toBeGreaterThanOrEqual(1);
    expect(await log(bob.page, '.entry.http[data-path="/files"][data-method="POST"][data-status="201"]')).toBe(1);
    await expect.poll(() => log(bob.page, '.entry.http[data-path^="/files/"][data-method="GET"][data-status="200"]'), { timeout: STEP }).toBe(1);
    expect(await log(bob.page, '.entry.ws[data-path="/channel"][data-status="101"]')).toBe(1);
    expect(await log(bob.page, '.frame[data-dir="out"][data-type="join"]')).toBe(1);
    expect(await log(bob.page, '.frame[data-dir="in"][data-type="joined"]')).toBe(1);
    expect(await log(bob.page, '.frame[data-dir="in"][data-type="message"]')).toBeGreaterThanOrEqual(1);
    expect(await log(alice.page, '.frame[data-dir="out"][data-type="publish"]')).toBe(1);
    expect(await log(alice.page, '.frame[data-dir="in"][data-type="ack"]')).toBe(1);

    // A line opens to its headers and bodies: the login answer holds the session token.
    await bob.page.click('#log .entry.http[data-path="/auth/login"] summary');
    expect(await bob.page.textContent('#log .entry.http[data-path="/auth/login"] .detail')).toMatch(/"token":/);
    await bob.page.click('#log .entry.http[data-path="/auth/login"] summary');
    // For the screenshot: the upload opened, the panel at its end.
    await bob.page.click('#log .entry.http[data-path="/files"] summary');
    await bob.page.$eval('#log', (list) => (list.scrollTop = list.scrollHeight));

    // Bob's phone with the picture and the login opened in the panel; Alice's on the chat.
    mkdirSync(RESULTS, { recursive: true });
    for (const [phone, name] of [[bob, 'playground.png'], [alice, 'playground-chat.png']] as const) {
      const file = path.join(RESULTS, name);
      rmSync(file, { force: true });
      await phone.page.screenshot({ path: file });
      expect(readFileSync(file).subarray(0, 8)).toEqual(PNG_SIGNATURE);
    }

    // Logging out leaves nothing of Bob for the next user: no picture, the hint back.
    await bob.page.click('#tab-me');
    await bob.page.click('#logout');
    await bob.page.waitForSelector('#login:not([hidden])');
    await bob.page.click('#tab-pics');
    expect(await bob.page.$$eval('#pictures > *', (nodes) => nodes.length)).toBe(0);
    expect(await bob.page.textContent('#upload-status')).toContain('登录后选一张图片');

    expect(alice.errors).toEqual([]);
    expect(bob.errors).toEqual([]);
  }, 90_000);

  /** Whether an element lies wholly inside the viewport (what the tests can see of a DOMRect). */
  const inside = (page: Page, selector: string) =>
    page.$eval(selector, (node) => {
      const r = (node as unknown as { getBoundingClientRect(): { top: number; bottom: number; left: number; right: number } }).getBoundingClientRect();
      const w = globalThis as unknown as { innerWidth: number; innerHeight: number };
      return r.top >= 0 && r.left >= 0 && r.bottom <= w.innerHeight && r.right <= w.innerWidth;
    });

  it('fits a laptop (1280×820) and a phone (390×844): / leads there, the tab bar is whole, the text matches the layout', async () => {
    mkdirSync(RESULTS, { recursive: true });
    for (const [width, height, name, where] of [
      [1280, 820, 'playground-1280x820.png', 'on the right'],
      [390, 844, 'playground-390x844.png', 'in the panel below'],
    ] as const) {
      const context = await browser.newContext({ viewport: { width, height } });
      contexts.push(context);
      context.setDefaultTimeout(STEP);
      const page = await context.newPage();
      // The URL minigate dev prints, without a path: a page that goes on to the playground.
      await page.goto(`${devUrl}/`);
      await page.waitForURL(playground);
      await page.waitForSelector('#login');
      expect(await inside(page, '.tabbar'), `${width}×${height}: the tab bar is cut`).toBe(true);
      const intro = await page.$eval('.intro p', (node) => (node as unknown as { innerText: string }).innerText);
      expect(intro).toContain(where);
      const file = path.join(RESULTS, name);
      rmSync(file, { force: true });
      await page.screenshot({ path: file });
    }
  }, 60_000);

  it('buys a coffee: the shop makes the order, client.pay() opens the cashier, the sandbox pays, the order is paid', async () => {
    const phone = await openPhone();
    await phone.page.waitForSelector('#shop-card:not([hidden])');
    // The cashier is a confirm(): cancelled first, then paid.
    phone.page.once('dialog', (dialog) => void dialog.dismiss());
    await phone.page.click('#pay');
    await expect.poll(() => phone.page.textContent('#toast'), { timeout: STEP }).toBe('已取消支付');
    phone.page.once('dialog', (dialog) => void dialog.accept());
    await phone.page.click('#pay');
    await expect.poll(() => phone.page.textContent('#toast'), { timeout: STEP }).toBe('支付成功');
    const order = JSON.parse((await phone.page.textContent('#order'))!) as { state: string; amount: number; openid: string };
    expect(order).toMatchObject({ state: 'SUCCESS', amount: 1, openid: (await phone.page.textContent('#openid'))! });
    const log = (selector: string) => phone.page.$$eval(`#log ${selector}`, (nodes) => nodes.length);
    expect(await log('.entry.http[data-path="/playground/shop/order"][data-method="POST"][data-status="200"]')).toBe(2);
    expect(await log('.entry.http[data-path="/__sandbox/pay/tap"][data-status="200"]')).toBe(1);
    expect(phone.errors).toEqual([]);
  }, 60_000);

  it('says what went wrong in one language: a Chinese phrase and the code', async () => {
    // WeChat refuses the next codes (40029: invalid code), so the login fails as it would for real.
    const fault = await fetch(`${devUrl}/__sandbox/faults`, { method: 'POST', body: JSON.stringify({ path: '/sns/jscode2session', errcode: 40029, times: 5 }) });
    expect(fault.status).toBeLessThan(300);
    try {
      const context = await browser.newContext({ viewport: { width: 1280, height: 820 } });
      contexts.push(context);
      context.setDefaultTimeout(STEP);
      const page = await context.newPage();
      const consoleLines: string[] = [];
      page.on('console', (message) => consoleLines.push(message.text()));
      await page.goto(playground);
      await page.click('#login');
      // Timed out in full npm test runs (a click before the page's module was ready was lost; see
      // the case below); say what the page saw if it ever does again.
      await page.waitForSelector('#toast:not([hidden])').catch(async (error: Error) => {
        const traffic = await page.$$eval('#log .entry', (nodes) => nodes.map((n) => (n.textContent ?? '').replace(/\s+/g, ' ').slice(0, 200)));
        throw new Error(`${error.message}\npage console:\n${consoleLines.join('\n')}\ntraffic log:\n${traffic.join('\n')}`);
      });
      const text = (await page.textContent('#toast'))!;
      expect(text).toMatch(/^登录失败：[^A-Za-z]+（[A-Z_]+）$/);
    } finally {
      await fetch(`${devUrl}/__sandbox/faults`, { method: 'DELETE' });
    }
  }, 60_000);

  it('does not lose a click on 微信登录 made while the page is still starting (its config slow to come)', async () => {
    // Under load dev/config.json came after the load event, and a click in between did nothing:
    // the button now stays disabled until its handler is there, and a click waits for it.
    const context = await browser.newContext({ viewport: { width: 1280, height: 820 } });
    contexts.push(context);
    context.setDefaultTimeout(STEP);
    const page = await context.newPage();
    await page.route('**/dev/config.json', async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await route.continue();
    });
    await page.goto(playground);
    expect(await page.isDisabled('#login')).toBe(true);
    await page.click('#login');
    await expect.poll(() => page.textContent('#openid'), { timeout: STEP }).toMatch(/^o[\w-]+$/);
  }, 60_000);
});
