// The bell's cards (issue 10 item 3): node --test tests/js/
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { groupCards } from '../../src/tidings/web/static/tidings-groups.js';

const n = (id, group, read = false) => ({ id, group, read, title: `n${id}` });

describe('groupCards', () => {
  test('one card per group, in the order of its newest item; ungrouped items stand alone', () => {
    const cards = groupCards([n(5, 'booking:42'), n(4, null), n(3, 'booking:7'), n(2, 'booking:42'), n(1, undefined)]);
    assert.deepEqual(
      cards.map((c) => [c.key, c.item.id, c.earlier.map((e) => e.id)]),
      [
        ['booking:42', 5, [2]],
        [null, 4, []],
        ['booking:7', 3, []],
        [null, 1, []],
      ],
    );
  });

  test('a card is unread when any of its items is unread', () => {
    const [card] = groupCards([n(3, 'g', true), n(2, 'g', false), n(1, 'g', true)]);
    assert.equal(card.unread, true);
    assert.equal(groupCards([n(3, 'g', true), n(2, 'g', true)])[0].unread, false);
  });

  test('every item lands in exactly one card', () => {
    const latest = [n(6, 'a'), n(5, 'b'), n(4, 'a'), n(3, ''), n(2, 'b'), n(1, 'a')];
    const ids = groupCards(latest).flatMap((c) => [c.item.id, ...c.earlier.map((e) => e.id)]);
    assert.deepEqual(ids.sort(), [1, 2, 3, 4, 5, 6]);
  });

  test('no view, no cards', () => {
    assert.deepEqual(groupCards(undefined), []);
    assert.deepEqual(groupCards([]), []);
  });
});
