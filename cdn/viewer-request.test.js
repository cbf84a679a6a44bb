// Unit tests of viewer-request.js with Node's test runner: `node --test cdn/` (make node-test).
// The function file has no exports (CloudFront Functions have no module system), so it is
// evaluated in a fresh context and its handler taken from there.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const test = require('node:test');
const vm = require('node:vm');

const source = fs.readFileSync(path.join(__dirname, 'viewer-request.js'), 'utf8');
const handler = vm.runInNewContext(`${source}\nhandler;`, {});

// Accept headers that browsers send for <img> requests (recorded late 2024 / 2025).
const ACCEPT = {
  chrome: 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8',
  firefox: 'image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5',
  safari17: 'image/webp,image/avif,image/jpeg,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5',
  oldSafari: 'image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5',
  curl: '*/*',
};

function request(uri, accept) {
  const headers = {};
  if (accept !== undefined) {
    headers.accept = { value: accept };
  }
  return { uri, method: 'GET', querystring: {}, headers, cookies: {} };
}

function rewrite(uri, accept) {
  return handler({ version: '1.0', context: { eventType: 'viewer-request' }, request: request(uri, accept) }).uri;
}

test('Chrome and Edge get AVIF', () => {
  assert.equal(rewrite('/photos/cat_web.auto', ACCEPT.chrome), '/photos/cat_web-avif.avif');
});

test('Firefox gets AVIF', () => {
  assert.equal(rewrite('/photos/cat_web.auto', ACCEPT.firefox), '/photos/cat_web-avif.avif');
});

test('Safari 17+ gets AVIF though it lists WebP first (same q, AVIF wins the tie)', () => {
  assert.equal(rewrite('/photos/cat_web.auto', ACCEPT.safari17), '/photos/cat_web-avif.avif');
});

test('old Safari gets WebP: image/* does not count as AVIF', () => {
  assert.equal(rewrite('/photos/cat_web.auto', ACCEPT.oldSafari), '/photos/cat_web-webp.webp');
});

test('curl (*/*) gets JPEG', () => {
  assert.equal(rewrite('/photos/cat_web.auto', ACCEPT.curl), '/photos/cat_web-jpeg.jpg');
});

test('no Accept header gets JPEG', () => {
  assert.equal(rewrite('/photos/cat_web.auto'), '/photos/cat_web-jpeg.jpg');
  assert.equal(rewrite('/photos/cat_web.auto', ''), '/photos/cat_web-jpeg.jpg');
});

test('q=0 excludes a format', () => {
  assert.equal(rewrite('/a/b.auto', 'image/avif;q=0,image/webp,*/*'), '/a/b-webp.webp');
  assert.equal(rewrite('/a/b.auto', 'image/avif; q=0.0, image/webp;q=0'), '/a/b-jpeg.jpg');
  assert.equal(rewrite('/a/b.auto', 'image/webp;q=0,image/avif'), '/a/b-avif.avif');
});

test('the higher q-value wins', () => {
  assert.equal(rewrite('/a/b.auto', 'image/avif;q=0.5,image/webp;q=0.9'), '/a/b-webp.webp');
  assert.equal(rewrite('/a/b.auto', 'image/webp;q=0.5,image/avif;q=0.6'), '/a/b-avif.avif');
});

test('media types and parameters are matched case-insensitively and with spaces', () => {
  assert.equal(rewrite('/a/b.auto', ' Image/AVIF ; Q=1 , */*'), '/a/b-avif.avif');
});

test('a header sent several times counts all its values', () => {
  const event = { request: request('/a/b.auto') };
  event.request.headers.accept = { value: 'text/html', multiValue: [{ value: 'text/html' }, { value: 'image/webp' }] };
  assert.equal(handler(event).uri, '/a/b-webp.webp');
});

test('URIs with an extension or none are left untouched', () => {
  for (const uri of ['/photos/cat_web.jpg', '/photos/cat_web-avif.avif', '/photos/cat_web',
                     '/', '/index.html', '/photos/.auto', '/photos.auto/cat.jpg', '/photos/cat.AUTO']) {
    assert.equal(rewrite(uri, ACCEPT.chrome), uri);
  }
});

test('the rest of the request is passed on unchanged', () => {
  const event = { request: request('/a/b.auto', ACCEPT.chrome) };
  event.request.querystring = { v: { value: '2' } };
  const result = handler(event);
  assert.equal(result, event.request);
  assert.deepEqual(result.querystring, { v: { value: '2' } });
  assert.equal(result.headers.accept.value, ACCEPT.chrome);
});

test('keys at the top level and deep folders', () => {
  assert.equal(rewrite('/cat_web.auto', ACCEPT.firefox), '/cat_web-avif.avif');
  assert.equal(rewrite('/variants/a/b/c/cat_web.auto', ACCEPT.oldSafari), '/variants/a/b/c/cat_web-webp.webp');
});
