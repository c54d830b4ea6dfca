// The bell's message catalogues: complete in every locale, lookups, fallbacks, overrides.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import {
  CATALOGUES,
  DEFAULT_LOCALE,
  placeholders,
  resolveLocale,
  translator,
  typeName,
} from '../../src/tidings/web/static/tidings-i18n.js';

const english = CATALOGUES[DEFAULT_LOCALE];

describe('catalogues', () => {
  test('ship en, de and es', () => {
    assert.deepEqual(Object.keys(CATALOGUES).sort(), ['de', 'en', 'es']);
  });

  for (const [locale, catalogue] of Object.entries(CATALOGUES)) {
    test(`${locale} has every key of en, no other, with the same placeholders`, () => {
      assert.deepEqual(Object.keys(catalogue).sort(), Object.keys(english).sort());
      for (const [key, text] of Object.entries(catalogue)) {
        assert.ok(text.trim(), `${locale}.${key} is empty`);
        assert.deepEqual(placeholders(text), placeholders(english[key]), `${locale}.${key}`);
      }
    });
  }

  test('every known notification type has a label', () => {
    const py = readFileSync(new URL('../../src/tidings/domain/notifications.py', import.meta.url), 'utf8');
    const known = py.match(/KNOWN_TYPES = \(([^)]*)\)/)[1].match(/"(\w+)"/g).map((s) => s.slice(1, -1));
    assert.ok(known.length > 5);
    for (const type of known) assert.ok(english[`type.${type}`], type);
  });

  test('the bell, inbox, toasts and push modules have no English strings left in them', () => {
    const modules = ['tidings-bell', 'tidings-toasts', 'tidings-push', 'tidings-inbox', 'tidings-inbox-parts', 'tidings-actions', 'tidings-dom'];
    for (const name of modules) {
      const source = readFileSync(new URL(`../../src/tidings/web/static/${name}.js`, import.meta.url), 'utf8');
      for (const text of Object.values(english)) {
        if (text.length > 8) assert.ok(!source.includes(`'${text}'`), `${name}.js still has '${text}'`);
      }
    }
  });
});

describe('resolveLocale', () => {
  test('exact, then by language, else en', () => {
    assert.equal(resolveLocale('de'), 'de');
    assert.equal(resolveLocale('de-AT'), 'de');
    assert.equal(resolveLocale('ES_mx'), 'es');
    assert.equal(resolveLocale('fr'), 'en');
  });

  test("without a tag: the browser's languages in order", () => {
    assert.equal(resolveLocale('', ['fr-FR', 'es-ES', 'de']), 'es');
    assert.equal(resolveLocale(null, ['fr']), 'en');
    assert.equal(resolveLocale(undefined, []), 'en');
  });
});

describe('translator', () => {
  test('looks up in the locale and fills placeholders', () => {
    const t = translator('de');
    assert.equal(t.locale, 'de');
    assert.equal(t('markAll'), 'Alle als gelesen markieren');
    assert.equal(t('unreadLabel', { count: '3+' }), 'Benachrichtigungen, 3+ ungelesen');
    assert.equal(translator('es')('state.reconnecting'), 'Reconectando…');
  });

  test('host overrides win, for any key, type labels too', () => {
    const t = translator('de', { markAll: 'Alles gelesen', 'type.booking_created': 'Hüpfburg gebucht', 'type.invoice_due': 'Rechnung' });
    assert.equal(t('markAll'), 'Alles gelesen');
    assert.equal(t('viewAll'), 'Alle anzeigen');
    assert.equal(t.type('booking_created'), 'Hüpfburg gebucht');
    assert.equal(t.type('invoice_due'), 'Rechnung');
    assert.equal(t.type('payment_failed'), 'Zahlung fehlgeschlagen');
  });

  test('unknown keys and types never fail', () => {
    const t = translator('es');
    assert.equal(t('no.such.key'), 'no.such.key');
    assert.equal(t.type('invoice.overdue'), 'Invoice overdue');
    assert.equal(typeName(''), '');
  });
});
