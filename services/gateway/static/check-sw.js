// Tamga /check's service worker: keeps the checkpoint page and its offline verifier
// (static/check.js) so that the page opens again without network. Network first: the
// server's page is the truth whenever it can be reached; the cached copy only when not.
// The trust bundle itself is kept by the page (localStorage), not here.
'use strict';

const CACHE = 'tamga-check-v1';
const SHELL = ['/check', '/static/check.js'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE)
    .then((cache) => cache.addAll(SHELL))
    .catch(() => {})
    .then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (!SHELL.includes(url.pathname)) return;
  event.respondWith(fetch(event.request)
    .then((response) => {
      // Only the signed-in page (200), never a sign-in page or an error.
      if (response.ok) {
        const copy = response.clone();
        caches.open(CACHE).then((cache) => cache.put(url.pathname, copy));
      }
      return response;
    })
    .catch(() => caches.match(url.pathname)
      .then((cached) => cached ?? Response.error())));
});
