// Tamga's pages in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
// the checkpoint card for an accepted, a rejected, a forged and an unknown-authority QR, the
// language switch, the auditor page, the dashboard over a seeded run, and accessibility
// basics (lang attribute, labelled inputs, verdict in words with enough contrast).
//
// Run by `make browser` (part of `make test`): TAMGA_BIN is the tamga binary, TAMGA_BROWSER_OUT
// the output folder (screenshots in OUT/screenshots/).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const OUT = process.env.TAMGA_BROWSER_OUT ?? join(here, '../../target/browser-tests');
const TAMGA = process.env.TAMGA_BIN ?? join(here, '../../target/debug/tamga');
const SHOTS = join(OUT, 'screenshots');
let env;
let serverPid;
let browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const setup = spawnSync('bash', [join(here, 'setup.sh'), join(OUT, 'site'), TAMGA], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  assert.equal(setup.status, 0, `setup failed: ${setup.stderr}`);
  serverPid = Number(setup.stdout.trim().split('\n').pop());
  env = JSON.parse(readFileSync(join(OUT, 'site', 'env.json'), 'utf8'));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  await browser?.close();
  if (serverPid) {
    try { process.kill(serverPid, 'SIGTERM'); } catch { /* already gone */ }
  }
});

async function signedIn(token, { locale = 'en-US' } = {}) {
  const context = await browser.newContext({ locale, viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${env.url}/login`);
  await page.getByLabel(/token|токен|anahtar|açar/i).fill(token);
  await page.locator('form[action="/login"] button[type=submit]').click();
  return { context, page };
}

async function check(page, q) {
  await page.goto(`${env.url}/check`);
  await page.getByLabel(/QR/).fill(q);
  await page.locator('form[action="/check"] button[type=submit]').click();
  return page.locator('.card');
}

/** WCAG contrast ratio of an element's text colour on its background. */
async function contrast(locator) {
  return locator.evaluate((el) => {
    const rgb = (s) => s.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
    const lum = ([r, g, b]) => {
      const f = (c) => {
        c /= 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const cs = getComputedStyle(el);
    const a = lum(rgb(cs.color));
    const b = lum(rgb(cs.backgroundColor));
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  });
}

/** Every visible form control has a label (its own <label for>, or aria-label). */
async function unlabelled(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('input:not([type=hidden]), textarea, select')]
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
      .map((el) => el.outerHTML));
}

test('checkpoint: an accepted declaration is a green card with words, details and how it was checked', async () => {
  const { context, page } = await signedIn(env.officerToken);
  const card = await check(page, env.goodQr);
  await assert.doesNotReject(card.getByText('ACCEPTED', { exact: true }).waitFor());
  const text = await card.innerText();
  assert.match(text, /Authentic: the declaration was accepted/);
  assert.match(text, /KZ → AZ/);
  assert.match(text, /kz-demo-broker/);
  assert.match(text, /LRN\s+KZ26TMG/);
  assert.match(text, /Checked against the trust list of \d{4}-\d\d-\d\d/);
  assert.match(text, /How it was checked: the QR code's signature, and this server's record/);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  assert.deepEqual(await unlabelled(page), []);
  assert.ok((await contrast(card)) >= 4.5, 'verdict colours have enough contrast');
  assert.equal(await card.getAttribute('data-verdict'), 'accepted');
  await page.screenshot({ path: join(SHOTS, 'check-accepted.png'), fullPage: true });
  await context.close();
});

test('checkpoint: a rejected declaration is red with the reason in plain words', async () => {
  const { context, page } = await signedIn(env.officerToken);
  const card = await check(page, env.badQr);
  await card.getByText('REJECTED', { exact: true }).waitFor();
  const text = await card.innerText();
  assert.match(text, /Reason: /);
  assert.doesNotMatch(text, /kz-demo-broker/, 'a red card shows nothing of the declaration');
  assert.ok((await contrast(card)) >= 4.5);
  await page.screenshot({ path: join(SHOTS, 'check-rejected.png'), fullPage: true });
  await context.close();
});

test('checkpoint: a tampered QR is red "not authentic"; so is one from a forged authority', async () => {
  const { context, page } = await signedIn(env.officerToken);
  let card = await check(page, env.tamperedQr);
  await card.getByText('NOT AUTHENTIC', { exact: true }).waitFor();
  assert.match(await card.innerText(), /Do not accept the paper/);
  assert.doesNotMatch(await card.innerText(), /KZ26TMG/);
  await page.screenshot({ path: join(SHOTS, 'check-forged.png'), fullPage: true });
  card = await check(page, env.otherQr);
  await card.getByText('NOT AUTHENTIC', { exact: true }).waitFor();
  card = await check(page, 'TMG1:NOT-A-CODE');
  await card.getByText('NOT AUTHENTIC', { exact: true }).waitFor();
  assert.match(await card.innerText(), /not a readable Tamga code/);
  await context.close();
});

test('checkpoint: an authority unknown to the trust list is amber "could not check", never red', async () => {
  const { context, page } = await signedIn(env.officerToken);
  const card = await check(page, env.farQr);
  await card.getByText('COULD NOT CHECK', { exact: true }).waitFor();
  const text = await card.innerText();
  assert.match(text, /not in this trust list/);
  assert.match(text, /This does not mean it is forged/);
  assert.equal(await card.getAttribute('data-verdict'), 'could-not-check');
  assert.ok((await contrast(card)) >= 4.5);
  await page.screenshot({ path: join(SHOTS, 'check-unknown-authority.png'), fullPage: true });
  await context.close();
});

test('checkpoint: by LRN and by declaration id, checked online', async () => {
  const { context, page } = await signedIn(env.officerToken);
  // The UZ → AZ declaration of the seed (KZ26TMG0000000001 was also submitted forged).
  let card = await check(page, 'UZ26TMG0000000005');
  await card.getByText('ACCEPTED', { exact: true }).waitFor();
  assert.match(await card.innerText(), /How it was checked: on the server/);
  card = await check(page, env.badId);
  await card.getByText('REJECTED', { exact: true }).waitFor();
  card = await check(page, 'NO-SUCH-LRN');
  await card.getByText('COULD NOT CHECK', { exact: true }).waitFor();
  await context.close();
});

test('languages: the switch, Accept-Language, and the lang attribute follow', async () => {
  const { context, page } = await signedIn(env.officerToken);
  await page.goto(`${env.url}/check?q=${encodeURIComponent(env.goodQr)}`);
  await page.getByRole('link', { name: 'Русский' }).click();
  await page.getByText('ПРИНЯТА', { exact: true }).waitFor();
  assert.equal(await page.getAttribute('html', 'lang'), 'ru');
  assert.match(await page.locator('.card').innerText(), /Проверено по списку доверия от/);
  await page.screenshot({ path: join(SHOTS, 'check-accepted-ru.png'), fullPage: true });
  // The choice is remembered (cookie) on the next page without ?lang.
  await page.goto(`${env.url}/check`);
  assert.equal(await page.getAttribute('html', 'lang'), 'ru');
  await page.getByRole('link', { name: 'Қазақша' }).click();
  assert.equal(await page.getAttribute('html', 'lang'), 'kk');
  await page.getByText('Декларацияны тексеру', { exact: true }).first().waitFor();
  await context.close();
  for (const [locale, word, lang] of [['tr-TR', 'KABUL EDİLDİ', 'tr'], ['az-AZ', 'QƏBUL EDİLİB', 'az']]) {
    const s = await signedIn(env.officerToken, { locale });
    await s.page.goto(`${env.url}/check?q=${encodeURIComponent(env.goodQr)}`);
    await s.page.getByText(word, { exact: true }).waitFor();
    assert.equal(await s.page.getAttribute('html', 'lang'), lang);
    await s.context.close();
  }
});

test('access: a broker token does not open the pages; an officer cannot open the dashboard', async () => {
  const { context, page } = await signedIn(env.brokerToken);
  await page.getByText('This token is unknown, revoked, or not allowed on this page.').waitFor();
  assert.deepEqual(await unlabelled(page), []);
  await context.close();
  const o = await signedIn(env.officerToken);
  const r = await o.page.goto(`${env.url}/dashboard`);
  assert.equal(r.status(), 403);
  await o.page.getByText('Not allowed', { exact: true }).waitFor();
  const d = await o.page.goto(`${env.url}/declarations/${env.goodId}`);
  assert.equal(d.status(), 403);
  await o.context.close();
});

test('auditor: audit trail with chain positions and hashes, chain verified, report, certificate path, downloads', async () => {
  const { context, page } = await signedIn(env.auditorToken);
  await page.goto(`${env.url}/declarations/${env.goodId}`);
  await page.getByText(/Audit chain verified up to event \d+/).first().waitFor();
  const rows = page.locator('table').first().locator('tbody tr');
  assert.ok((await rows.count()) >= 4, 'submitted, received, verified, countersigned, forwarded');
  const first = await rows.first().innerText();
  assert.match(first, /[0-9a-f]{64}/, 'each event shows its hash');
  for (const stage of ['submitted', 'received', 'verified', 'countersigned', 'forwarded']) {
    await page.locator('table').first().getByText(stage, { exact: true }).first().waitFor();
  }
  await page.getByRole('heading', { name: 'Simple report' }).waitFor();
  await page.getByText('TOTAL_PASSED', { exact: true }).waitFor();
  await page.getByRole('heading', { name: 'Certificate path of the signer' }).waitFor();
  assert.match(await page.locator('table').nth(1).innerText(), /KZ Demo Root CA/);
  await page.getByText('Full report (JSON)').click();
  await page.getByText('"indication": "TOTAL_PASSED"').waitFor();
  for (const name of ['Signed receipt (XML)', 'Counter-signed document (XML)', 'Validation report (JSON)', 'Receipt QR code (SVG)']) {
    const href = await page.getByRole('link', { name }).getAttribute('href');
    const r = await page.request.get(`${env.url}${href}`);
    assert.equal(r.status(), 200, name);
  }
  await page.screenshot({ path: join(SHOTS, 'auditor.png'), fullPage: true });
  // From the checkpoint, an auditor follows the link to this page.
  const card = await check(page, env.goodQr);
  await card.getByRole('link', { name: 'Audit trail' }).click();
  await page.getByText(/Audit chain verified up to event \d+/).first().waitFor();
  await context.close();
});

test('dashboard: per corridor and day, charts with the numbers beside them, CSV', async () => {
  const { context, page } = await signedIn(env.analystToken);
  await page.goto(`${env.url}/dashboard`);
  await page.getByRole('heading', { name: 'Declarations by corridor' }).waitFor();
  const table = page.locator('#numbers');
  await table.getByText('KZ → AZ').first().waitFor();
  const text = await page.locator('main').innerText();
  assert.match(text, /Totals: Submitted \d+ · Accepted \d+ · Rejected [1-9]\d*/);
  assert.equal(await page.locator('svg[role=img]').count(), 2);
  assert.deepEqual(await unlabelled(page), []);
  await page.getByText('digest_mismatch').first().waitFor();
  await page.screenshot({ path: join(SHOTS, 'dashboard.png'), fullPage: true });
  // Filters: one corridor, per hour.
  await page.getByLabel('Corridor').selectOption('KZ-AZ');
  await page.getByLabel('Per').selectOption('hour');
  await page.getByRole('button', { name: 'Show' }).click();
  await table.getByText('KZ → AZ').first().waitFor();
  assert.match(await table.locator('tbody th').first().innerText(), /\d{4}-\d\d-\d\d \d\d:00/);
  const href = await page.getByRole('link', { name: 'Download CSV' }).getAttribute('href');
  const csv = await (await page.request.get(`${env.url}${href}`)).text();
  assert.match(csv, /^period,origin,destination,submitted,accepted,rejected,/);
  assert.match(csv, /KZ,AZ,\d+,\d+,\d+/);
  await context.close();
});
