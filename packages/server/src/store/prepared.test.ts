import { sql, type LogEvent } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.js';
import { openDatabase, type OpenedDatabase } from './dialects.js';
import { runMigrations } from './migrations.js';
import { prepare } from './prepared.js';

describe('prepared queries', () => {
  let opened: OpenedDatabase;
  const events: LogEvent[] = [];

  beforeAll(async () => {
    opened = await openDatabase('sqlite::memory:', silentLogger(), { onQuery: (event) => void events.push(event) });
    await runMigrations(opened.db);
  });
  afterAll(() => opened?.db.destroy());

  it('compiles once and binds each run’s values by name, a name used twice included', async () => {
    const { db } = opened;
    const put = prepare<{ key: string; value: string; at: number }, never>(db, (v) => db.insertInto('kv').values({ key: v('key'), value: v('value'), updated_at: v('at') }));
    const find = prepare<{ key: string; at: number }, { value: string }>(db, (v) =>
      db.selectFrom('kv').select('value').where('key', '=', v('key')).where('updated_at', '>=', v('at')).where('updated_at', '<=', v('at')),
    );
    expect(put.sql).toBe('insert into "kv" ("key", "value", "updated_at") values (?, ?, ?)');
    await put.run(db, { key: 'a', value: 'one', at: 1 });
    await put.run(db, { key: 'b', value: 'two', at: 2 });
    await db.transaction().execute((trx) => put.run(trx, { key: 'c', value: 'three', at: 3 }));
    expect((await find.run(db, { key: 'b', at: 2 })).rows).toEqual([{ value: 'two' }]);
    expect((await find.run(db, { key: 'b', at: 3 })).rows).toEqual([]);
    expect((await find.run(db, { key: 'c', at: 3 })).rows).toEqual([{ value: 'three' }]);
  });

  it('runs through Kysely: the log hook sees each run with its statement kind and its values', async () => {
    const { db } = opened;
    const put = prepare<{ key: string }, never>(db, (v) => db.insertInto('kv').values({ key: v('key'), value: sql`'x'`, updated_at: sql`0` }));
    events.length = 0;
    await put.run(db, { key: 'logged' });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ level: 'query', query: { query: { kind: 'InsertQueryNode' }, parameters: ['logged'] } });
  });

  it('refuses a query with a constant value (it would be bound into every run)', () => {
    const { db } = opened;
    expect(() => prepare<{ key: string }, never>(db, (v) => db.selectFrom('kv').selectAll().where('key', '=', v('key')).where('value', '=', 'fixed'))).toThrow(
      /parameter 2 is not a named value/,
    );
  });
});
