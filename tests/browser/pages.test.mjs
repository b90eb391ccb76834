// Tamga's pages in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
// the checkpoint card for an accepted, a rejected, a forged and an unknown-authority QR, the
// three states in two languages, the consignment and recognition chain of a green card, the
// red card hiding the declaration, a receipt id typed in, the repeated-scan amber, the signed
// check record (xmlsec1), the offline verifier with the network cut (green, red, amber for an
// unknown authority, for no bundle and for a stale bundle; the offline checks recorded once
// back online), the language switch, the auditor page, the dashboard over a seeded run with
// its checkpoint panels, and accessibility basics (lang attribute, labelled inputs, verdict
// in words with enough contrast).
//
// Run by `make browser` (part of `make test`): TAMGA_BIN is the tamga binary, TAMGA_BROWSER_OUT
// the output folder (screenshots in OUT/screenshots/).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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

/** A browser signed in with `token`, its device set to `checkpoint` (the cookie the form
 * remembers). */
async function signedIn(token, { locale = 'en-US', checkpoint = 'AZ-ALAT', options = {} } = {}) {
  const context = await browser.newContext({ locale, viewport: { width: 1100, height: 900 }, ...options });
  if (checkpoint) {
    await context.addCookies([{ name: 'tamga_checkpoint', value: checkpoint, url: env.url }]);
  }
  const page = await context.newPage();
  await page.goto(`${env.url}/login`);
  await page.getByLabel(/token|токен|anahtar|açar/i).fill(token);
  await page.locator('form[action="/login"] button[type=submit]').click();
  return { context, page };
}

/** Submits `q` on /check and waits for the recorded check's page (/check/{id}). */
async function check(page, q) {
  await page.goto(`${env.url}/check`);
  await page.locator('#q').fill(q);
  await Promise.all([
    page.waitForURL(/\/check\/chk-[0-9a-f]{32}/),
    page.locator('form[action="/check"] button[type=submit]').click(),
  ]);
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
  assert.equal(await page.locator('section').first().locator('svg[role=img]').count(), 2);
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

// --- The checkpoint beyond yes/no (issue 17) -------------------------------------------

// When set, the README's screenshots are also written there (then `pngquant` them into docs/).
const DOCS = process.env.TAMGA_DOCS_OUT;

async function shot(locator, name) {
  await locator.screenshot({ path: join(SHOTS, name) });
  if (DOCS) await locator.screenshot({ path: join(DOCS, name) });
}

test('three states in two languages: green, red and amber, each in its own words', async () => {
  const cases = [
    [env.goodQr, 'accepted', { en: 'ACCEPTED', ru: 'ПРИНЯТА' }],
    [env.tamperedQr, 'not-authentic', { en: 'NOT AUTHENTIC', ru: 'НЕ ПОДЛИННАЯ' }],
    [env.farQr, 'could-not-check', { en: 'COULD NOT CHECK', ru: 'ПРОВЕРИТЬ НЕ УДАЛОСЬ' }],
  ];
  const { context, page } = await signedIn(env.officerToken);
  for (const [q, kind, words] of cases) {
    let card = await check(page, q);
    assert.equal(await card.getAttribute('data-verdict'), kind);
    await card.getByText(words.en, { exact: true }).waitFor();
    assert.ok((await contrast(card)) >= 4.5, `${kind}: contrast`);
    await shot(card, `check-${kind}-en.png`);
    // The same recorded check in Russian: no second check.
    const url = page.url();
    await page.goto(`${url}?lang=ru`);
    card = page.locator('.card');
    await card.getByText(words.ru, { exact: true }).waitFor();
    assert.equal(await page.getAttribute('html', 'lang'), 'ru');
    assert.match(await card.innerText(), /Проверка chk-[0-9a-f]{32} записана: AZ-ALAT/);
    await shot(card, `check-${kind}-ru.png`);
    await page.goto(`${url}?lang=en`);
  }
  await context.close();
});

test('green card: the consignment in large type and the recognition chain, one line per step', async () => {
  const { context, page } = await signedIn(env.officerToken);
  const card = await check(page, env.goodQr);
  await card.getByText('ACCEPTED', { exact: true }).waitFor();
  const consignment = await card.locator('dl.consignment').innerText();
  for (const [label, value] of [['LRN', /KZ26TMG0000000001/], ['Vehicle', /TRK-\d{5}/],
    ['Containers', /TMGU\d{7}/], ['Seals', /KZS\d{7}/], ['Gross mass', /\d+\.\d kg/], ['HS codes', /\d{6}/]]) {
    assert.match(consignment, new RegExp(`${label}\\s+${value.source}`), label);
  }
  const size = await card.locator('dl.consignment dd').first()
    .evaluate((el) => parseFloat(getComputedStyle(el).fontSize));
  assert.ok(size >= 24, `consignment in large type (${size}px)`);
  const chain = await card.locator('.chain li').allInnerTexts();
  assert.equal(chain.length, 4, chain.join('\n'));
  assert.match(chain[0], /^Broker's certificate: .*KZ.*\(serial [0-9a-f]+\)/);
  assert.match(chain[1], /^Issued under KZ's CA: .*KZ Demo Root CA/);
  assert.match(chain[2], /^Recognised in trust bundle v\d+ \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)/);
  assert.match(chain[3], /^Counter-signed by .*AZ Customs Authority.* \(certificate [0-9a-f]{16}…\) at \d{4}-/);
  assert.match(await card.innerText(), /Check chk-[0-9a-f]{32} recorded at AZ-ALAT/);
  await shot(card, 'check-green.png');
  await context.close();
});

test('red card: the reason and nothing of the declaration', async () => {
  const { context, page } = await signedIn(env.officerToken);
  for (const [q, word] of [[env.badQr, 'REJECTED'], [env.tamperedQr, 'NOT AUTHENTIC'], [env.badId, 'REJECTED']]) {
    const card = await check(page, q);
    await card.getByText(word, { exact: true }).waitFor();
    const text = await card.innerText();
    assert.match(text, /Reason: \S/);
    for (const leak of [/KZ26TMG/, /TRK-/, /TMGU/, /kz-demo-broker/, /Recognition chain/, /rcpt-/]) {
      assert.doesNotMatch(text, leak, `${word} card shows nothing of the declaration (${leak})`);
    }
    assert.equal(await card.locator('dl').count(), 0);
  }
  await shot(page.locator('.card'), 'check-red.png');
  await context.close();
});

test('a receipt id typed by the officer is looked up (the QR is unreadable)', async () => {
  const { context, page } = await signedIn(env.officerToken);
  const card = await check(page, env.goodReceiptId);
  await card.getByText('ACCEPTED', { exact: true }).waitFor();
  assert.match(await card.innerText(), /How it was checked: on the server/);
  const unknown = await check(page, 'rcpt-000000000000000000000000');
  await unknown.getByText('COULD NOT CHECK', { exact: true }).waitFor();
  assert.match(await unknown.innerText(), /Nothing was found for this input/);
  await context.close();
});

test('copies caught: a second scan at another checkpoint is amber "already presented at POST at TIME"', async () => {
  const first = await signedIn(env.officerToken, { checkpoint: 'AZ-ALAT' });
  let card = await check(first.page, env.repeatQr);
  await card.getByText('ACCEPTED', { exact: true }).waitFor();
  // The same post looking again: still green.
  card = await check(first.page, env.repeatQr);
  await card.getByText('ACCEPTED', { exact: true }).waitFor();
  await first.context.close();
  const other = await signedIn(env.officer2Token, { checkpoint: 'AZ-ASTARA', locale: 'tr-TR' });
  card = await check(other.page, env.repeatQr);
  await card.getByText('DAHA ÖNCE SUNULDU', { exact: true }).waitFor();
  assert.equal(await card.getAttribute('data-verdict'), 'already-presented');
  assert.match(await card.innerText(), /Daha önce sunuldu: AZ-ALAT, \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
  await other.page.goto(`${other.page.url()}?lang=en`);
  card = other.page.locator('.card');
  await card.getByText('ALREADY PRESENTED', { exact: true }).waitFor();
  const text = await card.innerText();
  assert.match(text, /Already presented at AZ-ALAT at \d{4}-\d\d-\d\d \d\d:\d\d UTC\./);
  assert.match(text, /The paper may be a copy/);
  assert.match(text, /Vehicle\s+TRK-/, 'the officer compares the truck');
  assert.ok((await contrast(card)) >= 4.5);
  await shot(card, 'check-repeated.png');
  await other.context.close();
});

test('the signed check record: served as XML, verified by xmlsec1, valid against check.xsd', async () => {
  const { context, page } = await signedIn(env.officerToken);
  const card = await check(page, env.goodQr);
  const href = await card.getByRole('link', { name: 'Signed check record (XML)' }).getAttribute('href');
  assert.match(href, /^\/v1\/checks\/chk-[0-9a-f]{32}$/);
  const r = await page.request.get(`${env.url}${href}`);
  assert.equal(r.status(), 200);
  assert.match(r.headers()['content-type'], /^application\/xml/);
  const xml = await r.text();
  assert.match(xml, /<Result>accepted<\/Result>/);
  assert.match(xml, /<Checkpoint>AZ-ALAT<\/Checkpoint>/);
  const file = join(OUT, 'check-record.xml');
  writeFileSync(file, xml);
  const keys = join(dirname(env.trustDir), 'keys', 'AZ');
  const v = spawnSync('xmlsec1', ['--verify', '--trusted-pem', join(env.trustDir, 'AZ', 'root-ca.pem'),
    '--untrusted-pem', join(keys, 'issuing-ca.pem'),
    '--id-attr:Id', 'http://uri.etsi.org/01903/v1.3.2#:SignedProperties', file], { encoding: 'utf8' });
  assert.equal(v.status, 0, `xmlsec1: ${v.stderr}`);
  const schema = spawnSync('xmllint', ['--noout', '--schema', join(here, '../../schemas/check.xsd'), file],
    { encoding: 'utf8' });
  assert.equal(schema.status, 0, schema.stderr);
  // Changed by one word: xmlsec1 refuses it.
  writeFileSync(file, xml.replace('<Result>accepted', '<Result>rejected'));
  const forged = spawnSync('xmlsec1', ['--verify', '--trusted-pem', join(env.trustDir, 'AZ', 'root-ca.pem'),
    '--untrusted-pem', join(keys, 'issuing-ca.pem'),
    '--id-attr:Id', 'http://uri.etsi.org/01903/v1.3.2#:SignedProperties', file], { encoding: 'utf8' });
  assert.notEqual(forged.status, 0);
  await context.close();
});

/** Opens /check online and waits until the trust bundle is on the device. */
async function offlineReady(page) {
  await page.goto(`${env.url}/check`);
  // Locators, not waitForFunction: the page's CSP allows no eval.
  await page.locator('html[data-offline-ready]').waitFor({ state: 'attached' });
  return page.locator('html').getAttribute('data-offline-ready');
}

async function checkOffline(page, q) {
  // The previous card goes first, so that the next assertions read the new one.
  await page.evaluate(() => document.getElementById('card-slot').replaceChildren());
  await page.locator('#q').fill(q);
  await page.locator('form[action="/check"] button[type=submit]').click();
  const card = page.locator('.card[data-offline=true]');
  await card.waitFor();
  return card;
}

test('offline: with the network cut, the page checks QR codes with the downloaded bundle', async () => {
  const { context, page } = await signedIn(env.officerToken, { checkpoint: 'AZ-MOBILE' });
  assert.equal(await offlineReady(page), 'true');
  await page.getByText(/Offline checking ready: trust bundle v\d+ of/).waitFor();
  await context.setOffline(true);
  let card = await checkOffline(page, env.offlineQr);
  await card.getByText('ACCEPTED', { exact: true }).waitFor();
  let text = await card.innerText();
  assert.match(text, /on this device, offline/);
  assert.match(text, /LRN\s+KZ26TMG0000000072/);
  assert.match(text, /Recognised in trust bundle v\d+/);
  await shot(card, 'check-offline-green.png');
  card = await checkOffline(page, env.tamperedQr);
  await card.getByText('NOT AUTHENTIC', { exact: true }).waitFor();
  text = await card.innerText();
  assert.match(text, /Reason: /);
  assert.doesNotMatch(text, /KZ26TMG/);
  card = await checkOffline(page, env.otherQr);
  await card.getByText('NOT AUTHENTIC', { exact: true }).waitFor();
  card = await checkOffline(page, env.farQr);
  await card.getByText('COULD NOT CHECK', { exact: true }).waitFor();
  assert.match(await card.innerText(), /not in this trust list/);
  card = await checkOffline(page, 'KZ26TMG0000000072');
  await card.getByText('COULD NOT CHECK', { exact: true }).waitFor();
  assert.match(await card.innerText(), /only a QR code can be checked/);
  await page.getByText(/Offline checks waiting to be recorded: 5\./).waitFor();
  // Back online: the five offline checks are recorded (once).
  await context.setOffline(false);
  await page.locator('#offline-status[data-uploaded="5"]').waitFor({ state: 'attached' });
  assert.equal(await page.evaluate(() => localStorage.getItem('tamga.pending')), '[]');
  await context.close();
});

test('offline: no bundle on the device, and a bundle past its next update, are amber — never red', async () => {
  // No bundle: the server unreachable and nothing downloaded.
  let s = await signedIn(env.officerToken, { checkpoint: 'AZ-MOBILE' });
  await offlineReady(s.page);
  await s.context.setOffline(true);
  await s.page.evaluate(() => localStorage.removeItem('tamga.bundle'));
  let card = await checkOffline(s.page, env.tamperedQr);
  await card.getByText('COULD NOT CHECK', { exact: true }).waitFor();
  assert.match(await card.innerText(), /no trust bundle/);
  await s.context.close();
  // Stale: the device's clock two days after the bundle was issued (it is current for 24 h).
  s = await signedIn(env.officerToken, { checkpoint: 'AZ-MOBILE', locale: 'az-AZ' });
  await s.page.clock.install({ time: Date.now() + 2 * 86_400_000 });
  await offlineReady(s.page);
  await s.context.setOffline(true);
  for (const q of [env.offlineQr, env.tamperedQr]) {
    card = await checkOffline(s.page, q);
    await card.getByText('YOXLANILA BİLMƏDİ', { exact: true }).waitFor();
    assert.equal(await card.getAttribute('data-verdict'), 'could-not-check');
    assert.match(await card.innerText(), /etibar paketi köhnəlib/);
  }
  await shot(card, 'check-offline-stale.png');
  await s.page.evaluate(() => localStorage.removeItem('tamga.pending'));
  await s.context.close();
});

test('dashboard: scans per checkpoint per day, repeated-scan alerts, forwarding to first scan, CSV', async () => {
  const { context, page } = await signedIn(env.analystToken, { checkpoint: null });
  await page.goto(`${env.url}/dashboard`);
  await page.getByRole('heading', { name: 'Checkpoint checks' }).waitFor();
  const scans = page.locator('#scans');
  await scans.getByText('AZ-ALAT').first().waitFor();
  await scans.getByText('AZ-ASTARA').first().waitFor();
  await scans.getByText('AZ-EXIT').first().waitFor();
  // The offline check logged at AZ-EXIT and uploaded twice is there once.
  const exit = await scans.locator('tr', { hasText: 'AZ-EXIT' }).locator('td').allInnerTexts();
  assert.deepEqual([exit[0], exit[1], exit[exit.length - 1]], ['AZ-EXIT', '1', '1'], exit.join(' | '));
  assert.equal(env.uploads, '1,0');
  const alerts = await page.locator('#repeated tbody').innerText();
  assert.match(alerts, /AZ-ASTARA\s+officer-astara\s+AZ-ALAT, \d{4}-\d\d-\d\d \d\d:\d\d UTC\s+KZ26TMG0000000073\s+KZ → AZ/);
  assert.match(alerts, /AZ-EXIT\s+officer-exit/);
  const crossing = await page.locator('#crossing tbody').innerText();
  assert.match(crossing, /KZ → AZ\s+\d+\s+[\d.]+\s+[\d.]+/);
  assert.deepEqual(await unlabelled(page), []);
  await shot(page.locator('#checks-panels'), 'dashboard-checks.png');
  await page.locator('#repeated-panel').screenshot({ path: join(SHOTS, 'dashboard-repeated.png') });
  if (DOCS) await page.locator('#repeated-panel').screenshot({ path: join(DOCS, 'dashboard-repeated.png') });
  for (const [table, header] of [['scans', /^period,checkpoint,scans,accepted,/],
    ['repeated', /^time,check_id,checkpoint,officer,first_checkpoint,/],
    ['crossing', /^corridor,declarations,forward_to_first_scan_p50_hours,/]]) {
    const r = await page.request.get(`${env.url}/dashboard/checks.csv?table=${table}`);
    assert.equal(r.status(), 200);
    const csv = await r.text();
    assert.match(csv, header);
    assert.ok(csv.trim().split('\r\n').length >= 2, `${table}: rows`);
  }
  await context.close();
});

test('offline verifier: no changed character of a good payload is ever green (the script itself, in Node)', async () => {
  // The same file the page loads, run here: every character of a good payload changed in
  // turn is red or amber — never green, never an exception other than a verdict.
  const source = readFileSync(join(here, '../../services/gateway/static/check.js'), 'utf8');
  new Function(source)();
  const { openBundle, verifyQr, Refused } = globalThis.TamgaOffline;
  const r = await fetch(`${env.url}/v1/trust-bundle`);
  assert.equal(r.status, 200);
  const now = Date.now() / 1000;
  const bundle = await openBundle(new Uint8Array(await r.arrayBuffer()), now);
  const good = await verifyQr(env.goodQr, bundle, now);
  assert.equal(good.claims.decision, 'accepted');
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:';
  let refused = 0;
  for (let i = 5; i < env.goodQr.length; i++) {
    const c = env.goodQr[i];
    const other = alphabet[(alphabet.indexOf(c) + 1 + (i % 44)) % 45];
    const changed = env.goodQr.slice(0, i) + other + env.goodQr.slice(i + 1);
    try {
      const v = await verifyQr(changed, bundle, now);
      // Base45 has spare values: a change that decodes to the same bytes is the same code.
      assert.equal(v.digest, good.digest, `position ${i}`);
      assert.deepEqual(v.claims, good.claims, `position ${i}`);
    } catch (e) {
      assert.ok(e instanceof Refused, `position ${i}: ${e}`);
      refused++;
    }
  }
  assert.ok(refused > env.goodQr.length * 0.9, `${refused} refused`);
  // Truncated, empty, wrong prefix, oversize: refused.
  for (const bad of [env.goodQr.slice(0, -3), 'TMG1:', 'HC1:ABC', `TMG1:${'A'.repeat(7000)}`]) {
    await assert.rejects(verifyQr(bad, bundle, now), (e) => e instanceof Refused);
  }
});
