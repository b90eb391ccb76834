// Tamga /check in the officer's browser when the server cannot be reached.
//
// Progressive enhancement: the server-rendered form is the core (it checks against the
// server's record and records the check). This script only adds what the server cannot do
// while the network is down: it keeps the site's signed trust bundle (GET /v1/trust-bundle)
// in localStorage, checks a `TMG1:` QR payload here (schemas/qr.md: Base45, zlib,
// COSE_Sign1, the authority's certificate path to the destination's anchors, CRLs), shows
// the same three states — green, red, amber, never confused — and keeps each offline check
// in a local log (the format of `tamga receipt verify-qr --log`) that is sent to
// POST /v1/checks/offline once the network is back. A service worker (/check-sw.js) keeps
// this page and script for a reload without network.
//
// Only what the browser provides: WebCrypto (ECDSA, RSA), DecompressionStream (zlib), and
// the small Base45, CBOR and DER readers below.
'use strict';

(() => {
  const BUNDLE_KEY = 'tamga.bundle';
  const PENDING_KEY = 'tamga.pending';
  const MAX_PAYLOAD = 6000; // characters after TMG1:
  const MAX_COSE = 8192; // bytes after inflating: no zip bomb

  class Refused extends Error {
    constructor(state, code) {
      super(code);
      this.state = state; // 'not-authentic' | 'could-not-check'
      this.code = code;
    }
  }
  const malformed = () => new Refused('not-authentic', 'malformed');
  const amber = (code) => new Refused('could-not-check', code);
  const red = (code) => new Refused('not-authentic', code);

  const concat = (parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const b64encode = (bytes) => {
    let text = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  };
  const b64decode = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

  // --- Base45 (RFC 9285) ---------------------------------------------------------------
  const B45 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:';
  function base45(text) {
    const v = [...text].map((c) => {
      const i = B45.indexOf(c);
      if (i < 0) throw malformed();
      return i;
    });
    if (v.length % 3 === 1) throw malformed();
    const out = [];
    for (let i = 0; i < v.length; i += 3) {
      if (i + 2 < v.length) {
        const n = v[i] + v[i + 1] * 45 + v[i + 2] * 2025;
        if (n > 0xffff) throw malformed();
        out.push(n >> 8, n & 0xff);
      } else {
        const n = v[i] + v[i + 1] * 45;
        if (n > 0xff) throw malformed();
        out.push(n);
      }
    }
    return new Uint8Array(out);
  }

  // --- zlib (RFC 1950), bounded while inflating -------------------------------------------
  async function inflate(bytes, max) {
    const reader = new Blob([bytes]).stream()
      .pipeThrough(new DecompressionStream('deflate')).getReader();
    const parts = [];
    let n = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        n += value.length;
        if (n > max) { reader.cancel().catch(() => {}); throw malformed(); }
        parts.push(value);
      }
    } catch (e) {
      throw e instanceof Refused ? e : malformed();
    }
    return concat(parts);
  }

  // --- CBOR (RFC 8949): definite lengths, what COSE and the claims use -------------------
  function cbor(bytes) {
    let p = 0;
    const need = (n) => { if (n > bytes.length - p) throw malformed(); };
    const uint = (info) => {
      if (info < 24) return info;
      const len = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
      if (!len) throw malformed();
      need(len);
      let v = 0;
      for (let i = 0; i < len; i++) v = v * 256 + bytes[p++];
      return v;
    };
    const item = (depth) => {
      if (depth > 16) throw malformed();
      need(1);
      const b = bytes[p++];
      const major = b >> 5;
      const info = b & 31;
      switch (major) {
        case 0: return uint(info);
        case 1: return -1 - uint(info);
        case 2: case 3: {
          const n = uint(info);
          need(n);
          const v = bytes.subarray(p, p + n);
          p += n;
          return major === 2 ? v : new TextDecoder('utf-8', { fatal: true }).decode(v);
        }
        case 4: {
          const n = uint(info);
          need(n); // every item takes a byte at least
          return Array.from({ length: n }, () => item(depth + 1));
        }
        case 5: {
          const n = uint(info);
          need(n * 2);
          const m = new Map();
          for (let i = 0; i < n; i++) { const k = item(depth + 1); m.set(k, item(depth + 1)); }
          return m;
        }
        case 6: return { tag: uint(info), value: item(depth + 1) };
        default:
          if (info === 20) return false;
          if (info === 21) return true;
          if (info === 22) return null;
          throw malformed();
      }
    };
    const v = item(0);
    if (p !== bytes.length) throw malformed();
    return v;
  }
  const head = (major, n) => (n < 24 ? [major << 5 | n]
    : n < 256 ? [major << 5 | 24, n]
      : n < 65536 ? [major << 5 | 25, n >> 8, n & 255]
        : [major << 5 | 26, n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255]);
  const bstr = (b) => concat([new Uint8Array(head(2, b.length)), b]);

  // --- COSE_Sign1 (RFC 9052) ---------------------------------------------------------------
  const COSE_ALGS = {
    [-7]: { name: 'ECDSA', hash: 'SHA-256' },
    [-35]: { name: 'ECDSA', hash: 'SHA-384' },
    [-36]: { name: 'ECDSA', hash: 'SHA-512' },
    [-257]: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    [-258]: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-384' },
    [-259]: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-512' },
    [-37]: { name: 'RSA-PSS', hash: 'SHA-256', saltLength: 32 },
    [-38]: { name: 'RSA-PSS', hash: 'SHA-384', saltLength: 48 },
    [-39]: { name: 'RSA-PSS', hash: 'SHA-512', saltLength: 64 },
    [-8]: { name: 'Ed25519' },
  };

  function coseSign1(bytes) {
    let v = cbor(bytes);
    if (v && v.tag === 18) v = v.value;
    if (!Array.isArray(v) || v.length !== 4 || !(v[0] instanceof Uint8Array)
      || !(v[1] instanceof Map) || !(v[2] instanceof Uint8Array) || !(v[3] instanceof Uint8Array)) {
      throw malformed();
    }
    const prot = v[0].length ? cbor(v[0]) : new Map();
    if (!(prot instanceof Map)) throw malformed();
    const alg = COSE_ALGS[prot.get(1)];
    const kid = prot.get(4);
    if (!alg || !(kid instanceof Uint8Array)) throw malformed();
    let chain = v[1].get(33) ?? [];
    if (chain instanceof Uint8Array) chain = [chain];
    if (!Array.isArray(chain) || chain.length > 4 || chain.some((c) => !(c instanceof Uint8Array))) {
      throw malformed();
    }
    // Sig_structure = ["Signature1" (a text string), protected, external_aad = h'', payload]
    const context = new TextEncoder().encode('Signature1');
    const tbs = concat([new Uint8Array([0x84, ...head(3, context.length)]), context,
      bstr(v[0]), new Uint8Array([0x40]), bstr(v[2])]);
    return { alg, kid, chain, payload: v[2], signature: v[3], tbs };
  }

  function claimsOf(payload) {
    const m = cbor(payload);
    if (!(m instanceof Map) || m.get(1) !== 1) throw malformed();
    const text = (k, optional) => {
      const t = m.get(k);
      if (t === undefined && optional) return null;
      if (typeof t !== 'string' || t.length > 256 || /[\u0000-\u001f\u007f]/.test(t)) throw malformed();
      return t;
    };
    const digest = (k) => {
      const d = m.get(k);
      if (!(d instanceof Uint8Array) || d.length !== 32) throw malformed();
      return hex(d);
    };
    const decision = text(3);
    if (decision !== 'accepted' && decision !== 'rejected') throw malformed();
    if (!Number.isInteger(m.get(8))) throw malformed();
    return {
      receiptId: text(2), decision, documentSha256: digest(4), lrn: text(5, true),
      origin: text(6), destination: text(7), issuedAt: m.get(8),
      authorityCertificateSha256: digest(9), reason: text(10, true),
    };
  }

  // --- DER: certificates and CRLs -------------------------------------------------------
  function tlv(b, p) {
    if (p + 2 > b.length) throw malformed();
    const tag = b[p];
    let len = b[p + 1];
    let q = p + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n < 1 || n > 4 || q + n > b.length) throw malformed();
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + b[q++];
    }
    if (q + len > b.length) throw malformed();
    return { tag, start: p, body: q, end: q + len };
  }
  const kids = (b, node) => {
    const out = [];
    for (let p = node.body; p < node.end;) { const c = tlv(b, p); out.push(c); p = c.end; }
    return out;
  };
  const bytesOf = (b, n) => b.slice(n.start, n.end);
  const bodyOf = (b, n) => b.slice(n.body, n.end);
  const OIDS = {
    '2a864886f70d01010b': { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    '2a864886f70d01010c': { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-384' },
    '2a864886f70d01010d': { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-512' },
    '2a8648ce3d040302': { name: 'ECDSA', hash: 'SHA-256' },
    '2a8648ce3d040303': { name: 'ECDSA', hash: 'SHA-384' },
    '2a8648ce3d040304': { name: 'ECDSA', hash: 'SHA-512' },
  };
  const CURVES = { '2a8648ce3d030107': ['P-256', 32], '2b81040022': ['P-384', 48], '2b81040023': ['P-521', 66] };
  const NAMES = { '550406': 'C', '55040a': 'O', '55040b': 'OU', '550403': 'CN', '550407': 'L', '550408': 'ST' };

  function time(b, n) {
    const s = new TextDecoder().decode(bodyOf(b, n));
    const m = n.tag === 0x17 ? /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s)
      : /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
    if (!m) throw malformed();
    let year = Number(m[1]);
    if (n.tag === 0x17) year += year < 50 ? 2000 : 1900;
    return Date.UTC(year, m[2] - 1, m[3], m[4], m[5], m[6]) / 1000;
  }
  function dn(b, name) {
    return kids(b, name).map((set) => {
      const [oid, value] = kids(b, kids(b, set)[0]);
      const label = NAMES[hex(bodyOf(b, oid))];
      return label ? `${label}=${new TextDecoder().decode(bodyOf(b, value))}` : null;
    }).filter(Boolean).join(', ');
  }
  const integer = (bytes) => hex(bytes).replace(/^(00)+(?=.)/, '');

  function certificate(der) {
    const root = tlv(der, 0);
    const [tbs, sigAlg, sig] = kids(der, root);
    const f = kids(der, tbs);
    const i = f[0].tag === 0xa0 ? 1 : 0;
    const [serial, , issuer, validity, subject, spki] = f.slice(i);
    const [notBefore, notAfter] = kids(der, validity);
    const [keyAlg] = kids(der, spki);
    const [keyOid, keyParam] = kids(der, keyAlg);
    return {
      der, tbs: bytesOf(der, tbs), sigAlg: OIDS[hex(bodyOf(der, kids(der, sigAlg)[0]))],
      signature: bodyOf(der, sig).slice(1), serial: integer(bodyOf(der, serial)),
      issuer: bytesOf(der, issuer), subject: bytesOf(der, subject), subjectText: dn(der, subject),
      notBefore: time(der, notBefore), notAfter: time(der, notAfter), spki: bytesOf(der, spki),
      keyType: hex(bodyOf(der, keyOid)), curve: keyParam && keyParam.tag === 6 ? CURVES[hex(bodyOf(der, keyParam))] : null,
    };
  }

  function crl(der) {
    const root = tlv(der, 0);
    const [tbs, sigAlg, sig] = kids(der, root);
    const f = kids(der, tbs);
    let i = f[0].tag === 0x02 ? 1 : 0;
    const issuer = f[i + 1];
    const thisUpdate = time(der, f[i + 2]);
    let nextUpdate = null;
    i += 3;
    if (f[i] && (f[i].tag === 0x17 || f[i].tag === 0x18)) nextUpdate = time(der, f[i++]);
    const revoked = new Set();
    if (f[i] && f[i].tag === 0x30) {
      for (const entry of kids(der, f[i])) revoked.add(integer(bodyOf(der, kids(der, entry)[0])));
    }
    return {
      tbs: bytesOf(der, tbs), sigAlg: OIDS[hex(bodyOf(der, kids(der, sigAlg)[0]))],
      signature: bodyOf(der, sig).slice(1), issuer: bytesOf(der, issuer), thisUpdate, nextUpdate, revoked,
    };
  }

  // ECDSA in X.509 is DER SEQUENCE { r, s }; WebCrypto wants r || s.
  function rawEcdsa(sig, size) {
    const [r, s] = kids(sig, tlv(sig, 0)).map((n) => bodyOf(sig, n));
    const fit = (x) => {
      const t = x.slice(Math.max(0, x.length - size));
      if (x.slice(0, x.length - t.length).some((b) => b !== 0)) throw malformed();
      return concat([new Uint8Array(size - t.length), t]);
    };
    return concat([fit(r), fit(s)]);
  }

  // Verifies `data` signed by the key of certificate `cert` with algorithm `alg`.
  async function verifyWith(cert, alg, signature, data, x509) {
    if (!alg) throw amber('unsupported_algorithm');
    let importAlg;
    if (alg.name === 'ECDSA') {
      if (!cert.curve) throw amber('unsupported_algorithm');
      importAlg = { name: 'ECDSA', namedCurve: cert.curve[0] };
      if (x509) signature = rawEcdsa(signature, cert.curve[1]);
    } else if (alg.name === 'Ed25519') {
      importAlg = { name: 'Ed25519' };
    } else {
      importAlg = { name: alg.name, hash: alg.hash };
    }
    let key;
    try {
      key = await crypto.subtle.importKey('spki', cert.spki, importAlg, false, ['verify']);
    } catch {
      throw amber('unsupported_algorithm');
    }
    return crypto.subtle.verify(alg, key, signature, data);
  }

  // --- The trust bundle ------------------------------------------------------------------
  function pemOrDer(bytes, label) {
    const text = new TextDecoder().decode(bytes);
    if (!text.includes('-----BEGIN')) return [bytes];
    const re = new RegExp(`-----BEGIN ${label}-----([^-]+)-----END ${label}-----`, 'g');
    return [...text.matchAll(re)].map((m) => b64decode(m[1].replace(/\s+/g, '')));
  }

  function readBundle(bytes) {
    const sign1 = coseSign1(bytes);
    const m = cbor(sign1.payload);
    if (!(m instanceof Map) || m.get(1) !== 1) throw malformed();
    const anchors = {};
    const crls = {};
    for (const [cc, name, content] of m.get(5) ?? []) {
      if (/\.crl$/i.test(name)) {
        for (const der of pemOrDer(content, 'X509 CRL')) {
          try { (crls[cc] ??= []).push(crl(der)); } catch { /* the server reports its faults */ }
        }
      } else if (/\.(pem|crt|der)$/i.test(name)) {
        for (const der of pemOrDer(content, 'CERTIFICATE')) {
          try { (anchors[cc] ??= []).push(certificate(der)); } catch { /* idem */ }
        }
      }
    }
    return {
      sign1, issuedAt: m.get(2), nextUpdate: m.get(3), issuer: m.get(4),
      anchors, crls, authorities: m.get(6) ?? [],
    };
  }

  // The certificate path from `leaf` through `intermediates` to an anchor of `country`,
  // each signature, validity and (with `revocation`) the issuer's CRL checked.
  async function validatePath(bundle, country, leaf, intermediates, now, revocation) {
    const anchors = bundle.anchors[country] ?? [];
    if (!anchors.length) throw amber('unknown_authority');
    const path = [leaf];
    let current = leaf;
    for (let depth = 0; depth < 6; depth++) {
      if (anchors.some((a) => sameBytes(a.der, current.der))) break;
      const issuerOf = (c) => sameBytes(c.subject, current.issuer);
      const anchor = anchors.find(issuerOf);
      const next = anchor ?? intermediates.find(issuerOf);
      if (!next) throw amber('unknown_authority');
      if (!await verifyWith(next, current.sigAlg, current.signature, current.tbs, true)) {
        throw red('untrusted_authority');
      }
      path.push(next);
      current = next;
      if (anchor) break;
      if (depth === 5) throw amber('unknown_authority');
    }
    // Below the anchor: valid now and (with revocation) not revoked by its issuer's CRL.
    for (let i = 0; i < path.length - 1; i++) {
      const c = path[i];
      if (now < c.notBefore || now > c.notAfter) throw red('untrusted_authority');
      if (!revocation) continue;
      let newest = null;
      for (const l of bundle.crls[country] ?? []) {
        if (!sameBytes(l.issuer, c.issuer)) continue;
        if (!await verifyWith(path[i + 1], l.sigAlg, l.signature, l.tbs, true)) continue;
        if (!newest || l.thisUpdate > newest.thisUpdate) newest = l;
      }
      if (!newest || (newest.nextUpdate !== null && now > newest.nextUpdate)) {
        throw amber('revocation_unavailable');
      }
      if (newest.revoked.has(c.serial)) throw red('untrusted_authority');
    }
    return path;
  }

  async function openBundle(bytes, now) {
    const b = readBundle(bytes);
    // The bundle comes from this site, like this script; its signature is still checked so
    // that a damaged copy is never used.
    const leaf = b.sign1.chain[0] && certificate(b.sign1.chain[0]);
    if (!leaf || !sameBytes((await sha256(leaf.der)).slice(0, 8), b.sign1.kid)) throw malformed();
    if (!await verifyWith(leaf, b.sign1.alg, b.sign1.signature, b.sign1.tbs, false)) throw malformed();
    await validatePath(b, b.issuer, leaf, b.sign1.chain.slice(1).map(certificate), now, false);
    return b;
  }

  // --- The QR check (schemas/qr.md, "Checking") --------------------------------------------
  async function verifyQr(payload, bundle, now) {
    if (now > bundle.nextUpdate) throw amber('bundle_stale');
    if (!/^TMG1:/.test(payload)) throw malformed();
    const body = payload.slice(5);
    if (body.length > MAX_PAYLOAD) throw malformed();
    const sign1 = coseSign1(await inflate(base45(body), MAX_COSE));
    const claims = claimsOf(sign1.payload);
    let leafDer = sign1.chain[0];
    if (!leafDer) {
      for (const a of bundle.authorities) {
        if (sameBytes((await sha256(a)).slice(0, 8), sign1.kid)) leafDer = a;
      }
    }
    if (!leafDer) throw amber('unknown_authority');
    const digest = await sha256(leafDer);
    if (hex(digest) !== claims.authorityCertificateSha256 || !sameBytes(digest.slice(0, 8), sign1.kid)) {
      throw red('certificate_mismatch');
    }
    let leaf;
    try { leaf = certificate(leafDer); } catch { throw malformed(); }
    if (!await verifyWith(leaf, sign1.alg, sign1.signature, sign1.tbs, false)) throw red('bad_signature');
    const path = await validatePath(bundle, claims.destination.toUpperCase(), leaf,
      sign1.chain.slice(1).map(certificate), now, true);
    return { claims, authority: leaf, anchor: path[path.length - 1], digest: hex(digest) };
  }

  // --- The page --------------------------------------------------------------------------
  const when = (secs) => `${new Date(secs * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;

  function start() {
    const form = document.getElementById('check-form');
    const textsEl = document.getElementById('texts');
    if (!form || !textsEl) return;
    const texts = JSON.parse(textsEl.textContent);
    const t = (key, args = {}) => (texts[key] ?? key)
      .replace(/\{\s*\$(\w+)\s*\}/g, (_, name) => String(args[name] ?? ''));
    const status = document.getElementById('offline-status');
    const slot = document.getElementById('card-slot');

    const stored = () => {
      try {
        const s = JSON.parse(localStorage.getItem(BUNDLE_KEY) ?? 'null');
        return s && { ...s, bytes: b64decode(s.bytes) };
      } catch { return null; }
    };
    const pending = () => JSON.parse(localStorage.getItem(PENDING_KEY) ?? '[]');
    const showStatus = async () => {
      const s = stored();
      let line = s ? t('offline-ready', { version: s.issuedAt, date: when(s.issuedAt) }) : t('offline-none');
      const n = pending().length;
      if (n) line += ` ${t('offline-pending', { n })}`;
      status.textContent = line;
    };

    async function refreshBundle() {
      try {
        const r = await fetch('/v1/trust-bundle', { cache: 'no-store', credentials: 'same-origin' });
        if (!r.ok) return;
        const bytes = new Uint8Array(await r.arrayBuffer());
        const b = await openBundle(bytes, Date.now() / 1000);
        localStorage.setItem(BUNDLE_KEY, JSON.stringify({
          bytes: b64encode(bytes), issuedAt: b.issuedAt, nextUpdate: b.nextUpdate,
        }));
      } catch { /* keep the bundle we have */ }
    }

    async function uploadPending() {
      const lines = pending();
      if (!lines.length) return;
      try {
        const r = await fetch('/v1/checks/offline', {
          method: 'POST', credentials: 'same-origin',
          headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: lines.join('\n'),
        });
        if (!r.ok) return;
        const done = await r.json();
        localStorage.setItem(PENDING_KEY, JSON.stringify(pending().slice(lines.length)));
        status.dataset.uploaded = String(done.recorded + done.alreadyRecorded);
      } catch { /* later */ }
    }

    function el(tag, cls, text) {
      const e = document.createElement(tag);
      if (cls) e.className = cls;
      if (text !== undefined) e.textContent = text;
      return e;
    }
    function dl(cls, pairs) {
      const d = el('dl', cls);
      for (const [k, v] of pairs) if (v) { d.append(el('dt', '', t(k)), el('dd', '', v)); }
      return d;
    }

    function render(kind, { reason, claims, authority, anchor, digest, bundle }) {
      const words = {
        accepted: ['verdict-accepted', '✓'], rejected: ['verdict-rejected', '✗'],
        'not-authentic': ['verdict-not-authentic', '✗'], 'could-not-check': ['verdict-could-not-check', '?'],
      }[kind];
      const card = el('div', `card ${kind}`);
      card.setAttribute('role', 'status');
      card.dataset.verdict = kind;
      card.dataset.offline = 'true';
      const v = el('p', 'verdict');
      const icon = el('span', 'icon', words[1]);
      icon.setAttribute('aria-hidden', 'true');
      v.append(icon, el('span', '', t(words[0])));
      card.append(v, el('p', 'sub', t(`${words[0]}-sub`)));
      if (reason) {
        const key = kind === 'rejected' ? `reason-code-${reason}` : `reason-${reason.replace(/_/g, '-')}`;
        card.append(el('p', 'reason', `${t('field-reason')}: ${texts[key] ? t(key) : reason.replace(/_/g, ' ')}`));
      }
      // Only an authentic receipt of an accepted declaration is shown as fact.
      if (kind === 'accepted') {
        card.append(dl('consignment', [['field-lrn', claims.lrn]]));
        card.append(dl('', [
          ['field-corridor', `${claims.origin} → ${claims.destination}`],
          ['field-authority', authority.subjectText],
          ['field-issued', when(claims.issuedAt)],
          ['field-document', claims.documentSha256],
          ['field-receipt', claims.receiptId],
        ]));
        const chain = el('div', 'chain');
        chain.append(el('p', 'chain-title', t('chain-title')));
        const ol = el('ol');
        for (const line of [
          t('chain-broker-unknown'),
          t('chain-authority-ca', { country: claims.destination, subject: anchor.subjectText }),
          t('chain-trust-bundle', { version: bundle.issuedAt, date: when(bundle.issuedAt) }),
          t('chain-countersigned', { authority: authority.subjectText, certificate: digest.slice(0, 16), time: when(claims.issuedAt) }),
        ]) ol.append(el('li', '', line));
        chain.append(ol);
        card.append(chain);
      }
      const how = el('p', 'how', t('checked-offline'));
      if (bundle) { how.append(el('br'), t('checked-against', { date: when(bundle.issuedAt) })); }
      card.append(how);
      slot.replaceChildren(card);
    }

    async function checkHere(input, checkpoint, device) {
      const s = stored();
      const now = Date.now() / 1000;
      let kind;
      let code;
      let found = {};
      if (!/^tmg1:/i.test(input)) {
        [kind, code] = ['could-not-check', 'needs_server'];
      } else if (!s) {
        [kind, code] = ['could-not-check', 'no_bundle'];
      } else {
        try {
          const bundle = readBundle(s.bytes);
          found.bundle = bundle;
          const r = await verifyQr(input, bundle, now);
          found = { ...found, ...r };
          kind = r.claims.decision === 'accepted' ? 'accepted' : 'rejected';
          code = kind === 'accepted' ? 'authentic' : (r.claims.reason ?? 'rejected');
        } catch (e) {
          const refused = e instanceof Refused ? e : malformed();
          [kind, code] = [refused.state, refused.code];
        }
      }
      render(kind, { reason: code === 'authentic' ? null : code, ...found });
      // Kept for the server (tamga_check::log::Entry).
      const entry = {
        v: 1, at: new Date().toISOString(), checkpoint, officer: 'browser', device,
        payload: input, result: kind.replace(/-/g, '_'), code, bundleVersion: s ? s.issuedAt : null,
      };
      localStorage.setItem(PENDING_KEY, JSON.stringify([...pending(), JSON.stringify(entry)]));
      await showStatus();
    }

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const data = new FormData(form);
      const input = String(data.get('q') ?? '').trim();
      const checkpoint = String(data.get('checkpoint') ?? '').trim();
      const device = String(data.get('device') ?? '').trim() || 'web';
      if (navigator.onLine) {
        try {
          const r = await fetch(form.action, {
            method: 'POST', credentials: 'same-origin', body: new URLSearchParams(data),
          });
          if (r.redirected && /\/check\/chk-[0-9a-f]{32}$/.test(new URL(r.url).pathname)) {
            window.location.assign(r.url);
            return;
          }
          // Signed out, or a form error: the server's page says it (nothing was recorded).
          form.submit();
          return;
        } catch { /* the server cannot be reached: check here */ }
      }
      if (!input) return;
      if (!checkpoint) {
        status.textContent = t('check-choose-checkpoint');
        return;
      }
      await checkHere(input, checkpoint, device);
    });

    window.addEventListener('online', async () => {
      await refreshBundle();
      await uploadPending();
      await showStatus();
    });
    if ('serviceWorker' in navigator) {
      navigator.serviceWorker.register('/check-sw.js', { scope: '/check' }).catch(() => {});
    }
    (async () => {
      if (navigator.onLine) {
        await refreshBundle();
        await uploadPending();
      }
      await showStatus();
      document.documentElement.dataset.offlineReady = stored() ? 'true' : 'false';
    })();
  }

  // For tests and the curious: the verifier itself, without the page.
  globalThis.TamgaOffline = { openBundle, readBundle, verifyQr, Refused };
  if (typeof document === 'undefined') return;
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
