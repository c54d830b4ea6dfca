// Notification text per locale (issue 10 item 5): a notification rendered from per-type
// templates carries its other locales in `l10n`; the bell and the toasts pick by `locale`.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { localText } from '../../src/tidings/web/static/tidings-i18n.js';

const rendered = {
  id: 1,
  type: 'booking_created',
  title: 'Booking #42',
  body: '2 items',
  l10n: { de: { title: 'Buchung #42', body: '2 Teile' }, 'es-MX': { title: 'Reserva #42', body: '' } },
};

describe('localText', () => {
  test('picks the exact tag, then the language, then another tag of the language', () => {
    assert.deepEqual(localText(rendered, 'de'), { title: 'Buchung #42', body: '2 Teile' });
    assert.equal(localText(rendered, 'de-AT').title, 'Buchung #42');
    assert.equal(localText(rendered, 'es_mx').title, 'Reserva #42');
    assert.equal(localText(rendered, 'es').title, 'Reserva #42');
  });
  test('falls back to the notification’s own text', () => {
    assert.deepEqual(localText(rendered, 'fr'), { title: 'Booking #42', body: '2 items' });
    assert.deepEqual(localText(rendered, undefined), { title: 'Booking #42', body: '2 items' });
    assert.deepEqual(localText({ title: 'plain' }, 'de'), { title: 'plain', body: '' });
    assert.deepEqual(localText({ title: 't', l10n: { de: 'not an object' } }, 'de'), { title: 't', body: '' });
    assert.deepEqual(localText({ title: 't', l10n: null }, 'de'), { title: 't', body: '' });
  });
});
