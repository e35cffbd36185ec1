// PostgreSQL through pg. Owns the pool and the schema Postern's tables live in.
// Invariants: every pooled connection runs with search_path set to the configured schema
// (so parallel test schemas never see each other); int8 and numeric come back as numbers
// (epoch milliseconds fit in 2^53), so rows look the same as on SQLite.
// Prepared statements: the pool names the first MAX_NAMED distinct statement texts of the
// data it runs (SELECT, INSERT, UPDATE, DELETE, WITH), so each connection parses and plans
// them once and then only binds and executes. A schema change that alters the result columns
// of a prepared statement would make PostgreSQL refuse it: Postern's statements name their
// columns, and migrations run before the app's work (DDL is never named).

import pg from 'pg'

const INT8 = 20
const NUMERIC = 1700

const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8 || oid === NUMERIC) return (v: string) => (v === null ? null : Number(v))
    return pg.types.getTypeParser(oid, format)
  },
} as unknown as pg.CustomTypesConfig

export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`

export interface PostgresOptions {
  url: string
  schema: string
  poolSize: number
}

export function clientConfig(opts: PostgresOptions): pg.ClientConfig {
  return {
    connectionString: opts.url,
    types,
    options: `-c search_path=${quoteIdent(opts.schema)}`,
    application_name: 'postern',
  }
}

/** One connection of its own (the change bus LISTENs on it), with the pool's settings. */
export function newPostgresClient(opts: PostgresOptions): pg.Client {
  return new pg.Client(clientConfig(opts))
}

const MAX_NAMED = 400
const DATA = /^\s*(select|insert|update|delete|with)\b/i

/** Names for statement texts, one namespace per pool; undefined once MAX_NAMED are taken. */
export function statementNames(max = MAX_NAMED): (text: string) => string | undefined {
  const names = new Map<string, string>()
  return (text) => {
    let name = names.get(text)
    if (name || names.size >= max || !DATA.test(text)) return name
    name = `postern_${names.size}`
    names.set(text, name)
    return name
  }
}

type QueryFn = (...args: unknown[]) => unknown

/** Makes a client run parameterised data statements as named (prepared) ones. */
function prepareStatements(client: pg.PoolClient, nameOf: (text: string) => string | undefined): void {
  const query = client.query.bind(client) as QueryFn
  const named: QueryFn = (text, values, ...rest) => {
    const name = typeof text === 'string' && Array.isArray(values) ? nameOf(text) : undefined
    return name ? query({ name, text, values }, ...rest) : query(text, values, ...rest)
  }
  client.query = named as typeof client.query
}

/** Creates the schema when missing, then returns a pool bound to it. */
export async function openPostgresPool(opts: PostgresOptions): Promise<pg.Pool> {
  const boot = new pg.Client({ connectionString: opts.url })
  try {
    await boot.connect()
  } catch (err) {
    throw new Error(`cannot connect to PostgreSQL (database.url): ${(err as Error).message}`)
  }
  try {
    await boot.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(opts.schema)}`)
  } catch (err) {
    // Two processes creating the same schema at once race on the catalog; the loser may see a
    // unique violation although the schema now exists.
    if ((err as { code?: string }).code !== '23505') throw err
  } finally {
    await boot.end()
  }
  const pool = new pg.Pool({ ...clientConfig(opts), max: opts.poolSize })
  pool.on('error', () => {}) // an idle client's error is reported by the next query that uses the pool
  const nameOf = statementNames()
  pool.on('connect', (client) => prepareStatements(client, nameOf))
  return pool
}
