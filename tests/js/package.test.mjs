// The npm package's shape, without node_modules: every module's runtime exports are the ones
// its hand-written .d.ts declares (and no more), the exports map points at real files, and the
// Node publisher's pure helpers.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { backoffDelay, createPublisher, parseRetryAfter, RETRYABLE, TidingsError } from '../../js/server.js';

const root = new URL('../../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));

/** Names a module exports at run time, read from its source (`export function|class|const`). */
function jsExports(path) {
  const source = readFileSync(new URL(path, root), 'utf8');
  const declared = [...source.matchAll(/^export (?:async )?(?:function|class|const|let) (\w+)/gm)].map((m) => m[1]);
  // Re-exports: `export { a, b as c } from './x.js';` (values only: `export type {…}` is a type).
  const reexported = [...source.matchAll(/^export \{([^}]*)\} from /gm)].flatMap((m) =>
    m[1].split(',').map((name) => name.trim().split(/\s+as\s+/).pop()).filter(Boolean),
  );
  return [...declared, ...reexported].sort();
}

/** Values (not types) a .d.ts declares. */
function dtsExports(path) {
  const source = readFileSync(new URL(path, root), 'utf8');
  return [...source.matchAll(/^export (?:declare )?(?:function|class|const) (\w+)/gm)].map((m) => m[1]).filter((v, i, a) => a.indexOf(v) === i).sort();
}

describe('package.json', () => {
  test('every export has types next to its module, and both files exist', () => {
    for (const [name, entry] of Object.entries(pkg.exports)) {
      if (typeof entry === 'string') {
        assert.ok(existsSync(new URL(entry, root)), entry);
        continue;
      }
      assert.ok(entry.types && entry.default, name);
      assert.equal(entry.types, entry.default.replace(/\.js$/, '.d.ts'), name);
      for (const target of Object.values(entry)) assert.ok(existsSync(new URL(target, root)), target);
    }
  });

  test('each .d.ts declares exactly the values its module exports', () => {
    for (const entry of Object.values(pkg.exports)) {
      if (typeof entry === 'string') continue;
      assert.deepEqual(dtsExports(entry.types), jsExports(entry.default), entry.default);
    }
  });

  test('ES modules only, nothing to build, never published by accident', () => {
    assert.equal(pkg.type, 'module');
    assert.equal(pkg.private, true);
    assert.equal(pkg.scripts, undefined);
    assert.deepEqual(Object.keys(pkg.dependencies ?? {}), []);
    assert.deepEqual(Object.keys(pkg.peerDependencies).sort(), ['react', 'vue']);
    assert.ok(Object.values(pkg.peerDependenciesMeta).every((meta) => meta.optional));
  });

  test('the server entry imports nothing but the platform', () => {
    // js/server.js re-exports its webhook and outbox helpers from two sibling modules; none of
    // the three imports anything (Web Crypto, fetch, TextEncoder are globals).
    const source = readFileSync(new URL('js/server.js', root), 'utf8');
    assert.deepEqual([...source.matchAll(/^import .* from '([^']+)'/gm)].map((m) => m[1]), []);
    const siblings = [...source.matchAll(/^export .* from '([^']+)'/gm)].map((m) => m[1]);
    assert.deepEqual(siblings, ['./webhooks.js', './outbox.js']);
    for (const sibling of siblings) {
      const code = readFileSync(new URL(`js/${sibling.slice(2)}`, root), 'utf8');
      assert.deepEqual([...code.matchAll(/^(?:import|export) .* from '([^']+)'/gm)], [], sibling);
      assert.ok(pkg.files.includes(`js/${sibling.slice(2)}`), `${sibling} is packed`);
    }
  });
});

describe('tidings/server helpers', () => {
  test('Retry-After: delta seconds or an HTTP date, else null', () => {
    const now = Date.parse('2026-11-26T12:00:00Z');
    assert.equal(parseRetryAfter('0', now), 0);
    assert.equal(parseRetryAfter(' 7 ', now), 7000);
    assert.equal(parseRetryAfter('Thu, 26 Nov 2026 12:00:03 GMT', now), 3000);
    assert.equal(parseRetryAfter('Thu, 26 Nov 2026 11:00:00 GMT', now), 0);
    for (const bad of [null, undefined, '', 'soon', '-1', '1.5']) assert.equal(parseRetryAfter(bad, now), null, String(bad));
  });

  test('backoff: full jitter under min(cap, base * 2^attempt)', () => {
    assert.equal(backoffDelay(0, { base: 500, random: () => 0 }), 0);
    assert.equal(backoffDelay(0, { base: 500, random: () => 0.999 }), 499);
    assert.equal(backoffDelay(3, { base: 500, random: () => 0.5 }), 2000);
    assert.equal(backoffDelay(20, { base: 500, cap: 30000, random: () => 0.5 }), 15000);
  });

  test('retryable statuses and errors', () => {
    assert.deepEqual([...RETRYABLE], [408, 425, 429, 500, 502, 503, 504]);
    assert.equal(new TidingsError('x', { status: 503 }).retryable, true);
    assert.equal(new TidingsError('x').retryable, true); // no answer
    assert.equal(new TidingsError('x', { status: 422, code: 'validation_failed' }).retryable, false);
    const err = new TidingsError('x', { status: 409, code: 'conflict', detail: 'd', problem: { code: 'conflict' } });
    assert.ok(err instanceof Error);
    assert.deepEqual([err.name, err.status, err.code, err.detail], ['TidingsError', 409, 'conflict', 'd']);
  });

  test('configuration comes from options or TIDINGS_URL / TIDINGS_API_KEY, and is checked', () => {
    const saved = { ...process.env };
    try {
      delete process.env.TIDINGS_URL;
      delete process.env.TIDINGS_API_KEY;
      assert.throws(() => createPublisher(), /TIDINGS_URL/);
      assert.throws(() => createPublisher({ url: 'http://127.0.0.1:1' }), /TIDINGS_API_KEY/);
      process.env.TIDINGS_URL = 'http://127.0.0.1:1/';
      process.env.TIDINGS_API_KEY = 'k';
      assert.equal(createPublisher().url, 'http://127.0.0.1:1');
      assert.throws(() => createPublisher({ retries: 1.5 }), TypeError);
    } finally {
      process.env = saved;
    }
  });
});
