/**
 * The drain pass's memory of identities (worker/settle/pass-identities.ts), pure: which delivered events re-identification
 * must read. An entity the run identified is never read again in the run; one it looked at is read again only
 * when an event carries another snapshot of it, and then with every event of the batch that touches it.
 */
import { describe, expect, it } from 'vitest';
import { type DeliveredEvent, PassIdentities, sameFields, type Touch } from '../../worker/settle/pass-identities.ts';

const user = (id: string, fields: Touch['fields']): Touch => ({ kind: 'user', id, fields });
const org = (id: string, fields: Touch['fields']): Touch => ({ kind: 'organization', id, fields });
const event = (uuid: string, at: number, ...touches: Touch[]): DeliveredEvent => ({ uuid, at, touches });

describe('sameFields', () => {
  it.each([
    ['both empty', {}, {}, true],
    ['the same scalars in another key order', { a: 1, b: 'x', c: true, d: null }, { d: null, c: true, b: 'x', a: 1 }, true],
    ['a value differs', { email: 'a@x.io' }, { email: 'b@x.io' }, false],
    ['a type differs', { n: 1 }, { n: '1' }, false],
    ['a key missing', { a: 1, b: 2 }, { a: 1 }, false],
    ['a key added', { a: 1 }, { a: 1, b: 2 }, false],
    ['null against a missing key', { a: null }, {}, false],
    ['a nested object (not what record() stores): not known to be equal', { a: { b: 1 } }, { a: { b: 1 } }, false],
    ['an unknown snapshot', undefined, {}, false],
  ] as const)('%s', (_name, a, b, same) => {
    expect(sameFields(a, b)).toBe(same);
    expect(sameFields(b, a)).toBe(same);
  });
});

describe('PassIdentities', () => {
  it('the first batch of a run reads every event that touches an entity, none without', () => {
    const run = new PassIdentities();
    const batch = [event('e1', 1, user('u1', { email: 'a' }), org('o1', { name: 'Acme' })), event('e2', 2), event('e3', 3, user('u2', {}))];
    expect(run.toRead(batch).read).toEqual([0, 2]);
  });

  it('after a look, events repeating the newest snapshot are not read; another snapshot is, with every event touching that entity', () => {
    const run = new PassIdentities();
    const first = [
      event('e1', 1, user('u1', { email: 'a' }), org('o1', { name: 'Acme' })),
      event('e2', 2, user('u2', { email: 'x' }), org('o1', { name: 'Acme' })),
    ];
    run.learn(first, []);
    expect(run.toRead([event('e3', 3, user('u1', { email: 'a' }), org('o1', { name: 'Acme' })), event('e4', 4, user('u2', { email: 'x' }))]).read).toEqual([]);
    const changed = [
      event('e5', 5, user('u1', { email: 'a' }), org('o1', { name: 'Acme' })),
      event('e6', 6, user('u2', { email: 'x' })),
      event('e7', 7, user('u1', { email: 'b' })),
    ];
    // u1 changed in e7: e5 (an older snapshot of u1) is read too, so the newest still decides; e6 is not
    expect(run.toRead(changed).read).toEqual([0, 2]);
  });

  it('an empty snapshot (an $ai_* event naming its run entities) is settled once the entity was looked at, and never replaces the remembered one', () => {
    const run = new PassIdentities();
    // never looked at: read (the entity may be new)
    expect(run.toRead([event('e1', 1, user('u1', {}))]).read).toEqual([0]);
    run.learn([event('e2', 2, user('u1', { email: 'a' }))], []);
    // product and LLM events of one run alternate: neither is read again
    expect(run.toRead([event('e3', 3, user('u1', {})), event('e4', 4, user('u1', { email: 'a' })), event('e5', 5, user('u1', {}))]).read).toEqual([]);
    // a newer empty snapshot read with a changed entity of its event does not replace the remembered one
    run.learn([event('e6', 6, user('u1', {}), org('o1', { name: 'Acme' }))], []);
    expect(run.toRead([event('e7', 7, user('u1', { email: 'a' }))]).read).toEqual([]);
    // an unknown snapshot is still read
    expect(run.toRead([event('e8', 8, user('u1', undefined))]).read).toEqual([0]);
  });

  it('remembers the newest snapshot it read (ties: the greater uuid), not the last one', () => {
    const run = new PassIdentities();
    run.learn([event('e2', 20, user('u1', { email: 'new' })), event('e1', 10, user('u1', { email: 'old' }))], []);
    expect(run.toRead([event('e3', 30, user('u1', { email: 'new' }))]).read).toEqual([]);
    expect(run.toRead([event('e3', 30, user('u1', { email: 'old' }))]).read).toEqual([0]);
    const tie = new PassIdentities();
    tie.learn(
      [
        event('0190a000-0000-7000-8000-00000000000b', 5, user('u1', { email: 'b' })),
        event('0190a000-0000-7000-8000-00000000000a', 5, user('u1', { email: 'a' })),
      ],
      [],
    );
    expect(tie.toRead([event('e', 6, user('u1', { email: 'b' }))]).read).toEqual([]);
    expect(tie.toRead([event('e', 6, user('u1', { email: 'a' }))]).read).toEqual([0]);
  });

  it('a learn with an older snapshot keeps the newer one remembered', () => {
    const run = new PassIdentities();
    run.learn([event('e2', 20, user('u1', { email: 'new' }))], []);
    run.learn([event('e1', 10, user('u1', { email: 'old' }))], []);
    expect(run.toRead([event('e3', 30, user('u1', { email: 'new' }))]).read).toEqual([]);
  });

  it('an entity the run identified is never read again in the run, whatever its snapshot', () => {
    const run = new PassIdentities();
    run.learn([event('e1', 1, user('u1', { email: 'a' }), org('o1', {}))], ['user:u1']);
    expect(run.toRead([event('e2', 2, user('u1', { email: 'changed' })), event('e3', 3, user('u1', undefined))])).toEqual({ read: [], exclude: ['user:u1'] });
    // the statement reads e4 for o1, and is told to leave u1 (identified) out; o1 (only looked at) is not left out
    expect(run.toRead([event('e4', 4, user('u1', { email: 'changed' }), org('o1', { name: 'new' }))])).toEqual({ read: [0], exclude: ['user:u1'] });
  });

  it('remembers at most its limit of entities: one beyond it is read each time, the ones remembered are kept up to date', () => {
    const run = new PassIdentities(2);
    run.learn([event('e1', 1, user('u1', { a: 1 }), user('u2', { a: 1 }), user('u3', { a: 1 }))], []);
    expect(run.toRead([event('e2', 2, user('u1', { a: 1 })), event('e3', 3, user('u2', { a: 1 })), event('e4', 4, user('u3', { a: 1 }))]).read).toEqual([2]);
    run.learn([event('e5', 5, user('u1', { a: 2 }))], []);
    expect(run.toRead([event('e6', 6, user('u1', { a: 2 }))]).read).toEqual([]);
  });

  it('an unknown snapshot (a row of one event: its snapshots stay in the database) is always read', () => {
    const run = new PassIdentities();
    run.learn([event('e1', 1, user('u1', undefined))], []);
    expect(run.toRead([event('e2', 2, user('u1', undefined))]).read).toEqual([0]);
    run.learn([event('e3', 3, user('u1', { email: 'a' }))], []);
    expect(run.toRead([event('e4', 4, user('u1', { email: 'a' }))]).read).toEqual([]);
  });

  it('canonical: an equal snapshot is swapped for the one the run remembers (looked at or identified); another, or an entity it does not remember, is kept', () => {
    const run = new PassIdentities();
    const remembered = { email: 'a', name: 'A' };
    const identifiedSnapshot = { email: 'b' };
    run.learn([event('e1', 1, user('u1', remembered)), event('e2', 2, user('u2', identifiedSnapshot))], ['user:u2']);
    const copy = { name: 'A', email: 'a' };
    expect(run.canonical('user', 'u1', copy)).toBe(remembered);
    const changed = { email: 'a', name: 'B' };
    expect(run.canonical('user', 'u1', changed)).toBe(changed);
    // an entity the run identified is adopted too (its snapshot is never compared again, only reused)
    expect(run.canonical('user', 'u2', { email: 'b' })).toBe(identifiedSnapshot);
    const unknown = { email: 'c' };
    expect(run.canonical('user', 'u3', unknown)).toBe(unknown);
    const otherKind = { email: 'a', name: 'A' };
    expect(run.canonical('organization', 'u1', otherKind)).toBe(otherKind);
  });
});
