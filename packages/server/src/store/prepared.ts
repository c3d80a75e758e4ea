/**
 * Queries built and compiled by Kysely once, then run many times with new values. Building and
 * compiling a query costs more than SQLite takes to run it (about 16 µs a statement for a login's
 * upsert, insert and select, measured on this project's 2-core test machine); a query prepared here
 * costs only the copy of its parameter list. It still runs through Kysely (the transaction's
 * connection, the query timer of metrics.ts, the statement kind of its root node).
 *
 * `build` writes the query once (a Kysely builder, or `sql` compiled for `db`'s dialect) with
 * `value(name)` wherever a value goes; every bound parameter of
 * the compiled query must come from one (a constant would be frozen into every run, so it is
 * refused: write constants into the SQL). The same name may be used several times.
 */
import type { Compilable, CompiledQuery, Kysely, QueryResult, RawBuilder } from 'kysely';

const NAME = Symbol('minigate.prepared.value');

interface Slot {
  readonly [NAME]: string;
}

function isSlot(value: unknown): value is Slot {
  return typeof value === 'object' && value !== null && NAME in value;
}

export interface Prepared<V, R> {
  /** The SQL text, compiled once (what the database sees on every run). */
  readonly sql: string;
  /** Runs the query on `db` (the database or an open transaction) with these values. */
  run(executor: Kysely<any>, values: V): Promise<QueryResult<R>>;
}

export function prepare<V extends Record<string, unknown>, R>(
  db: Kysely<any>,
  build: (value: <K extends keyof V & string>(name: K) => V[K]) => Compilable<R> | RawBuilder<R>,
): Prepared<V, R> {
  const query = build((name) => ({ [NAME]: name }) as never);
  const compiled = 'isRawBuilder' in query ? query.compile(db) : query.compile();
  const names = compiled.parameters.map((parameter, i) => {
    if (!isSlot(parameter)) throw new Error(`prepared query: parameter ${i + 1} is not a named value: ${compiled.sql}`);
    return parameter[NAME];
  });
  return {
    sql: compiled.sql,
    run: (executor, values) => {
      const bound: CompiledQuery<R> = { ...compiled, parameters: names.map((name) => values[name]) };
      return executor.executeQuery(bound);
    },
  };
}
