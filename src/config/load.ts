// Loads the configuration once at start: defaults <- config file <- POSTERN_* environment <-
// command-line flags, validates every key against schema.ts and freezes the result.
// Only this module reads process.env for configuration. Errors name the key, the source
// and the problem, all at once, so a broken config is fixed in one pass.

import { existsSync, readFileSync } from 'node:fs'
import { hostname as osHostname } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { type Config, type FlatKey, flatKeys, type KeyDef } from './schema.ts'

export type Source = 'default' | 'file' | 'env' | 'flag' | 'derived'

export class ConfigError extends Error {
  readonly problems: string[]
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

export interface LoadOptions {
  /** Config flags as given on the command line (`--http-port 0`, `--http-port=0`, `--config f`). */
  args?: readonly string[]
  env?: Readonly<Record<string, string | undefined>>
  cwd?: string
}

export interface LoadedConfig {
  config: Config
  /** Where each key's value came from, by dotted path. */
  sources: ReadonlyMap<string, Source>
  /** The config file that was read, if any. */
  file: string | null
}

const DEFAULT_FILE = 'postern.config.json'

/** Splits config flags out of an argument list; anything else is returned in `rest`. */
export function splitConfigFlags(args: readonly string[]): {
  flags: Map<string, string>
  configFile: string | null
  rest: string[]
} {
  const byFlag = new Map(flatKeys().map((k) => [k.flag, k]))
  const flags = new Map<string, string>()
  const rest: string[] = []
  let configFile: string | null = null
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string
    const eq = arg.indexOf('=')
    const name = eq > 0 ? arg.slice(0, eq) : arg
    const key = byFlag.get(name)
    if (name === '--config' || key) {
      let value: string | undefined
      if (eq > 0) value = arg.slice(eq + 1)
      else if (key?.def.kind === 'boolean' && (args[i + 1] === undefined || args[i + 1]?.startsWith('--')))
        value = 'true'
      else value = args[++i]
      if (value === undefined) throw new ConfigError([`${name}: needs a value`])
      if (name === '--config') configFile = value
      else flags.set((key as FlatKey).path, value)
    } else rest.push(arg)
  }
  return { flags, configFile, rest }
}

function parseText(def: KeyDef<unknown>, text: string): unknown {
  const t = text.trim()
  if (def.nullable && (t === '' || t === 'null')) return null
  switch (def.kind) {
    case 'integer':
      return /^-?\d+$/.test(t) ? Number(t) : text
    case 'boolean':
      if (/^(true|1|yes|on)$/i.test(t)) return true
      if (/^(false|0|no|off)$/i.test(t)) return false
      return text
    case 'list':
      return t === '' ? [] : t.split(',').map((s) => s.trim())
    default:
      return text
  }
}

/** Returns a problem text, or null when the value fits the key. */
function check(def: KeyDef<unknown>, value: unknown): string | null {
  if (value === null) return def.nullable ? null : 'must not be null'
  switch (def.kind) {
    case 'string':
      if (typeof value !== 'string') return `must be a string (got ${JSON.stringify(value)})`
      return def.pattern && !def.pattern.test(value)
        ? `must be ${def.patternDoc} (got ${JSON.stringify(value)})`
        : null
    case 'integer': {
      if (typeof value !== 'number' || !Number.isInteger(value))
        return `must be an integer (got ${JSON.stringify(value)})`
      const min = def.min ?? Number.MIN_SAFE_INTEGER
      const max = def.max ?? Number.MAX_SAFE_INTEGER
      return value < min || value > max ? `must be between ${min} and ${max} (got ${value})` : null
    }
    case 'boolean':
      return typeof value === 'boolean' ? null : `must be true or false (got ${JSON.stringify(value)})`
    case 'enum':
      return typeof value === 'string' && def.values?.includes(value)
        ? null
        : `must be one of ${def.values?.join(', ')} (got ${JSON.stringify(value)})`
    case 'list': {
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
        return `must be a list of strings (got ${JSON.stringify(value)})`
      const bad = def.values ? value.filter((v) => !def.values?.includes(v)) : []
      return bad.length ? `unknown value ${bad.join(', ')}; allowed: ${def.values?.join(', ')}` : null
    }
  }
}

function getPath(obj: unknown, path: string): { found: boolean; value: unknown } {
  let cur: unknown = obj
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || !(part in cur)) return { found: false, value: undefined }
    cur = (cur as Record<string, unknown>)[part]
  }
  return { found: true, value: cur }
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.')
  let cur = obj
  for (const part of parts.slice(0, -1)) {
    cur[part] ??= {}
    cur = cur[part] as Record<string, unknown>
  }
  cur[parts.at(-1) as string] = value
}

/** Dotted paths of every leaf in a parsed config file, to report unknown keys. */
function leafPaths(obj: unknown, prefix = ''): string[] {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return [prefix]
  return Object.entries(obj).flatMap(([k, v]) => leafPaths(v, prefix ? `${prefix}.${k}` : k))
}

function closest(path: string, keys: readonly string[]): string | null {
  const distance = (a: string, b: string) => {
    const d = Array.from({ length: b.length + 1 }, (_, i) => i)
    for (let i = 1; i <= a.length; i++) {
      let prev = d[0] as number
      d[0] = i
      for (let j = 1; j <= b.length; j++) {
        const tmp = d[j] as number
        d[j] = Math.min(
          (d[j] as number) + 1,
          (d[j - 1] as number) + 1,
          prev + (a[i - 1] === b[j - 1] ? 0 : 1),
        )
        prev = tmp
      }
    }
    return d[b.length] as number
  }
  const best = keys.map((k) => ({ k, d: distance(path, k) })).sort((x, y) => x.d - y.d)[0]
  return best && best.d <= 3 ? best.k : null
}

export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env
  const cwd = opts.cwd ?? process.cwd()
  const { flags, configFile } = splitConfigFlags(opts.args ?? [])
  const keys = flatKeys()
  const problems: string[] = []

  // 1. The file: --config, else POSTERN_CONFIG, else ./postern.config.json when present.
  const explicit = configFile ?? env.POSTERN_CONFIG ?? null
  const filePath = explicit ? resolve(cwd, explicit) : resolve(cwd, DEFAULT_FILE)
  let fileData: unknown = {}
  let file: string | null = null
  if (existsSync(filePath)) {
    file = filePath
    try {
      fileData = JSON.parse(readFileSync(filePath, 'utf8'))
      if (typeof fileData !== 'object' || fileData === null || Array.isArray(fileData))
        throw new Error('the top level must be a JSON object')
    } catch (err) {
      throw new ConfigError([`${filePath}: not valid JSON (${(err as Error).message})`])
    }
    const known = keys.map((k) => k.path)
    for (const leaf of leafPaths(fileData)) {
      if (known.includes(leaf)) continue
      const hint = closest(leaf, known)
      problems.push(`${leaf} (${filePath}): unknown key${hint ? `; did you mean ${hint}?` : ''}`)
    }
  } else if (explicit) {
    throw new ConfigError([`config file ${filePath} does not exist`])
  }

  // 2. Layer the sources per key.
  const out: Record<string, unknown> = {}
  const sources = new Map<string, Source>()
  for (const key of keys) {
    let value: unknown = key.def.default
    let source: Source = 'default'
    let origin = 'default'
    const fromFile = getPath(fileData, key.path)
    if (fromFile.found) {
      value = fromFile.value
      source = 'file'
      origin = filePath
    }
    const fromEnv = env[key.env]
    if (fromEnv !== undefined) {
      value = parseText(key.def, fromEnv)
      source = 'env'
      origin = key.env
    }
    const fromFlag = flags.get(key.path)
    if (fromFlag !== undefined) {
      value = parseText(key.def, fromFlag)
      source = 'flag'
      origin = key.flag
    }
    const problem = check(key.def, value)
    if (problem) problems.push(`${key.path} (${origin}): ${problem}`)
    setPath(out, key.path, Array.isArray(value) ? Object.freeze([...value]) : value)
    sources.set(key.path, source)
  }
  if (problems.length) throw new ConfigError(problems)

  // 3. Fill derived values and make paths absolute.
  const derive = (path: string, value: unknown) => {
    setPath(out, path, value)
    sources.set(path, 'derived')
  }
  const c = out as unknown as Mutable<Config>
  c.data_dir = resolve(cwd, c.data_dir)
  if (c.secrets_file === null) derive('secrets_file', join(c.data_dir, 'secrets.json'))
  else c.secrets_file = resolve(cwd, c.secrets_file)
  if (c.blobs.dir === null) derive('blobs.dir', join(c.data_dir, 'blobs'))
  else c.blobs.dir = resolve(cwd, c.blobs.dir)
  for (const p of ['tls.cert_file', 'tls.key_file', 'tls.sni_dir'] as const) {
    const v = getPath(c, p).value
    if (typeof v === 'string' && !isAbsolute(v)) setPath(out, p, resolve(cwd, v))
  }
  if (c.hostname === null) derive('hostname', osHostname())
  if (c.https.host === null) derive('https.host', c.http.host)
  if ((c.tls.cert_file === null) !== (c.tls.key_file === null))
    throw new ConfigError(['tls.cert_file and tls.key_file: set both or neither'])
  return { config: deepFreeze(out) as unknown as Config, sources, file }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] }

function deepFreeze<T>(obj: T): T {
  if (typeof obj === 'object' && obj !== null) {
    for (const v of Object.values(obj)) deepFreeze(v)
    Object.freeze(obj)
  }
  return obj
}

/** A copy of the config with secret keys replaced, for printing and GET /v1/config. */
export function redactConfig(config: Config): Record<string, unknown> {
  const copy = structuredClone(config) as unknown as Record<string, unknown>
  for (const key of flatKeys()) {
    if (!key.def.secret) continue
    const { value } = getPath(copy, key.path)
    if (value !== null && value !== undefined) setPath(copy, key.path, redactValue(String(value)))
  }
  return copy
}

/** Keeps the shape of a URL (scheme, host, database) and hides any password; hides other strings. */
function redactValue(value: string): string {
  try {
    const url = new URL(value)
    if (url.password) url.password = 'REDACTED'
    return url.toString()
  } catch {
    return 'REDACTED'
  }
}

/** The value of one key by dotted path (for `postern config --get`). */
export function configValue(config: Config, path: string): unknown {
  return getPath(config, path).value
}
