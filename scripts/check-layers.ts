// The import-direction lint (`npm run lint` runs it as `node scripts/check-layers.ts [root]`).
// Owns the layer table for the folders under src/ and the one rule it enforces: imports point
// down the table only (DESIGN.md "Layout", STYLE.md "Dependency direction").
//
// Invariants:
// - Every top-level folder under src/ is in LAYERS; a new folder is a violation until it is added,
//   so the rule cannot be sidestepped by inventing a folder.
// - Type-only imports count: a protocol must not even see store types (services re-export them).
// - Only relative specifiers are checked; packages (`fastify`, `node:fs`) are always allowed.
// - Imports are found by a small tokenizer, not a regex over raw text, so an import written in a
//   comment or inside a string is not mistaken for one.

import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Violation {
  /** The importing file, relative to the project root with `/` separators (`src/smtp/session.ts`). */
  file: string
  /** 1-based line of the import statement; 0 when the violation is about a folder, not an import. */
  line: number
  /** The imported file, relative to the project root (`src/store/db.ts`). */
  target: string
  /** Why it is not allowed, written for the author who has to fix it. */
  rule: string
}

type Group = 'wiring' | 'protocol' | 'service' | 'tool' | 'store' | 'base'

interface Layer {
  group: Group
  /** Layers this one may import, besides itself. `*` means any layer under src/. */
  may: readonly string[]
}

const TOOLS = ['mail', 'dns', 'net', 'tls'] as const
const BASE = ['config', 'log', 'time'] as const
const MAIN = 'main.ts'

/** The layer table, top to bottom. Add a new top-level folder of src/ here. */
export const LAYERS: Readonly<Record<string, Layer>> = {
  [MAIN]: { group: 'wiring', may: ['*'] },
  cli: { group: 'protocol', may: ['services', ...TOOLS, ...BASE, MAIN] },
  http: { group: 'protocol', may: ['services', ...TOOLS, ...BASE] },
  smtp: { group: 'protocol', may: ['services', ...TOOLS, ...BASE] },
  imap: { group: 'protocol', may: ['services', ...TOOLS, ...BASE] },
  web: { group: 'protocol', may: ['services', ...TOOLS, ...BASE] },
  roles: { group: 'wiring', may: ['*'] },
  services: { group: 'service', may: ['store', ...TOOLS, ...BASE] },
  mail: { group: 'tool', may: [...TOOLS, ...BASE] },
  dns: { group: 'tool', may: [...TOOLS, ...BASE] },
  net: { group: 'tool', may: [...TOOLS, ...BASE] },
  tls: { group: 'tool', may: [...TOOLS, ...BASE] },
  store: { group: 'store', may: [...BASE] },
  config: { group: 'base', may: [...BASE] },
  log: { group: 'base', may: [...BASE] },
  time: { group: 'base', may: [...BASE] },
}

const SOURCE_EXT = /\.(?:[cm]?[jt]s|[jt]sx)$/
const SKIP_DIRS = new Set(['node_modules', 'dist'])
const OUTSIDE_SRC = ['test', 'bench', 'scripts']

/** Checks every source file under `<rootDir>/src` and returns the violations, sorted by file and line. */
export function checkLayers(rootDir: string): Violation[] {
  return scan(rootDir).violations
}

interface ScanResult {
  files: number
  imports: number
  violations: Violation[]
}

function scan(rootDir: string): ScanResult {
  const root = resolve(rootDir)
  const src = join(root, 'src')
  const violations: Violation[] = []
  for (const entry of readdirSync(src, { withFileTypes: true })) {
    if (entry.isDirectory() && !entry.name.startsWith('.') && !Object.hasOwn(LAYERS, entry.name)) {
      const folder = `src/${entry.name}/`
      violations.push({ file: folder, line: 0, target: folder, rule: unknownLayer(entry.name) })
    } else if (entry.isFile() && SOURCE_EXT.test(entry.name) && entry.name !== MAIN) {
      const file = `src/${entry.name}`
      violations.push({ file, line: 0, target: file, rule: looseFile(entry.name) })
    }
  }
  const files = sourceFiles(src)
  let imports = 0
  for (const abs of files) {
    const file = toPosix(relative(root, abs))
    const from = layerOf(file)
    if (from === undefined) continue // its folder is already reported above
    for (const { specifier, line } of findImports(readFileSync(abs, 'utf8'))) {
      if (!isRelative(specifier)) continue // a package: `fastify`, `node:fs`
      imports++
      const target = toPosix(relative(root, resolve(dirname(abs), specifier)))
      const rule = ruleFor(from, target)
      if (rule !== null) violations.push({ file, line, target, rule })
    }
  }
  violations.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line))
  return { files: files.length, imports, violations }
}

function sourceFiles(dir: string): string[] {
  const out: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) out.push(...sourceFiles(path))
    } else if (entry.isFile() && SOURCE_EXT.test(entry.name)) {
      out.push(path)
    }
  }
  return out.sort()
}

const isRelative = (specifier: string): boolean => /^(?:\.{1,2}(?:\/|$)|\/)/.test(specifier)

const toPosix = (path: string): string => path.split(sep).join('/')

/** `src/smtp/session.ts` → `smtp`; `src/main.ts` → `main.ts`; undefined outside src/ or for unknown names. */
function layerOf(file: string): string | undefined {
  const parts = file.split('/')
  const name = parts[1]
  if (parts[0] !== 'src' || name === undefined) return undefined
  if (parts.length === 2 && name !== MAIN) return undefined // a loose file at the top of src/
  return Object.hasOwn(LAYERS, name) ? name : undefined
}

function unknownLayer(name: string): string {
  return `src/${name} is not in the layer table; add it to LAYERS in scripts/check-layers.ts with the layers it may import`
}

function looseFile(name: string): string {
  return `src/${name} sits at the top of src/, where only main.ts belongs; move it into a layer folder`
}

/** Null when `from` may import `target`, else the rule it breaks. */
function ruleFor(from: string, target: string): string | null {
  const top = target.split('/')[0]!
  if (top !== 'src') {
    if (OUTSIDE_SRC.includes(top)) {
      return `code under src/ never imports from ${top}/; ${top}/ depends on src/, not the reverse`
    }
    return null
  }
  const parts = target.split('/')
  const to = layerOf(target)
  if (to === undefined) {
    if (parts.length <= 2) return looseFile(parts[1] ?? '')
    return unknownLayer(parts[1]!)
  }
  const layer = LAYERS[from]!
  if (to === from || layer.may.includes('*') || layer.may.includes(to)) return null
  const toGroup = LAYERS[to]!.group
  switch (layer.group) {
    case 'protocol':
      if (to === 'store') return `protocols (${from}) never import the store; go through a service`
      if (toGroup === 'protocol') {
        return `protocols (${from}) never import another protocol (${to}); share the code through a service or a lower layer`
      }
      return `protocols (${from}) never import src/main.ts; main.ts wires the protocols, only cli may start it`
    case 'service':
      if (toGroup === 'protocol') {
        return `services never import a protocol (${to}); protocols call services, and services never see protocol types`
      }
      return 'services never import src/main.ts; main.ts builds the services and passes them their dependencies'
    case 'tool':
      return `${from} may import only mail, dns, net, tls, config, log and time; never ${describe(to)}`
    case 'store':
      return `the store imports only config, log and time; it knows nothing above it (${describe(to)})`
    case 'base':
      return `${from} imports only config, log and time; nothing else in src/ (${describe(to)})`
    default:
      return null
  }
}

function describe(layer: string): string {
  if (layer === MAIN) return 'src/main.ts'
  return LAYERS[layer]!.group === 'protocol' ? `a protocol (${layer})` : layer
}

// --- Finding imports -------------------------------------------------------------------------

interface Token {
  kind: 'name' | 'string' | 'template' | 'punct' | 'regex' | 'number'
  value: string
  line: number
}

export interface FoundImport {
  specifier: string
  line: number
}

/**
 * The module specifiers a source text imports: `import … from`, `export … from`, `import type`,
 * side-effect `import '…'` and `import('…')` with a literal (which also covers `typeof import('…')`).
 * The line is the one the `import` or `export` keyword is on.
 */
export function findImports(text: string): FoundImport[] {
  const tokens = tokenize(text)
  const found: FoundImport[] = []
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!
    if (t.kind !== 'name' || (t.value !== 'import' && t.value !== 'export')) continue
    const prev = tokens[i - 1]
    if (prev?.kind === 'punct' && (prev.value === '.' || prev.value === '?.')) continue // obj.import
    const next = tokens[i + 1]
    if (next === undefined) break
    if (t.value === 'import' && next.kind === 'string') {
      found.push({ specifier: next.value, line: t.line })
      continue
    }
    if (t.value === 'import' && next.kind === 'punct' && next.value === '(') {
      const arg = tokens[i + 2]
      const after = tokens[i + 3]
      if (arg?.kind === 'string' && after?.kind === 'punct' && (after.value === ')' || after.value === ',')) {
        found.push({ specifier: arg.value, line: t.line })
      }
      continue
    }
    // import/export <clause> from '…': the clause is names, braces, commas and `*`.
    for (let j = i + 1; j < tokens.length; j++) {
      const c = tokens[j]!
      if (c.kind === 'name') {
        const s = tokens[j + 1]
        if (c.value === 'from' && s?.kind === 'string') {
          found.push({ specifier: s.value, line: t.line })
          break
        }
        if (j > i + 1 && (c.value === 'import' || c.value === 'export')) break
        continue
      }
      if (c.kind === 'punct' && ['{', '}', ',', '*'].includes(c.value)) continue
      break
    }
  }
  return found
}

const REGEX_AFTER_NAME = new Set([
  'return',
  'typeof',
  'instanceof',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'case',
  'do',
  'else',
  'yield',
  'await',
])
const PUNCT = ['?.', '=>', '...', '**', '&&', '||', '??', '==', '!=', '<=', '>=']

/**
 * Splits source text into names, strings, templates and punctuation, dropping comments. Good enough
 * for finding imports: regex literals are told from division by the previous token, quoted strings
 * end at a line break (so JSX text with an apostrophe cannot swallow the file), and `${}` nests.
 */
function tokenize(text: string): Token[] {
  const tokens: Token[] = []
  const templateDepth: number[] = [] // brace depth at each open `${`
  let braces = 0
  let line = 1
  let i = 0
  const n = text.length

  const readTemplate = (startLine: number): void => {
    // i is just past the opening backtick or the closing `}` of a substitution.
    let value = ''
    while (i < n) {
      const ch = text[i]!
      if (ch === '\\') {
        value += text[i + 1] ?? ''
        if (text[i + 1] === '\n') line++
        i += 2
      } else if (ch === '`') {
        i++
        tokens.push({ kind: 'string', value, line: startLine })
        return
      } else if (ch === '$' && text[i + 1] === '{') {
        i += 2
        templateDepth.push(braces)
        braces++
        tokens.push({ kind: 'template', value, line: startLine })
        return
      } else {
        if (ch === '\n') line++
        value += ch
        i++
      }
    }
    tokens.push({ kind: 'template', value, line: startLine })
  }

  const regexAllowed = (): boolean => {
    const prev = tokens[tokens.length - 1]
    if (prev === undefined) return true
    if (prev.kind === 'name') return REGEX_AFTER_NAME.has(prev.value)
    if (prev.kind === 'punct') return prev.value !== ')' && prev.value !== ']'
    return false
  }

  while (i < n) {
    const ch = text[i]!
    const next = text[i + 1]
    if (ch === '\n') {
      line++
      i++
    } else if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\f' || ch === '\v' || ch === '\uFEFF') {
      i++
    } else if (ch === '/' && next === '/') {
      while (i < n && text[i] !== '\n') i++
    } else if (ch === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2)
      const stop = end === -1 ? n : end + 2
      for (let k = i; k < stop; k++) if (text[k] === '\n') line++
      i = stop
    } else if (ch === "'" || ch === '"') {
      let value = ''
      i++
      while (i < n && text[i] !== ch && text[i] !== '\n') {
        if (text[i] === '\\') {
          if (text[i + 1] === '\n') line++
          value += text[i + 1] ?? ''
          i += 2
        } else {
          value += text[i]
          i++
        }
      }
      if (text[i] === ch) i++
      tokens.push({ kind: 'string', value, line })
    } else if (ch === '`') {
      i++
      readTemplate(line)
    } else if (ch === '/' && regexAllowed()) {
      const start = i
      let inClass = false
      i++
      while (i < n && text[i] !== '\n') {
        const c = text[i]
        if (c === '\\') i++
        else if (c === '[') inClass = true
        else if (c === ']') inClass = false
        else if (c === '/' && !inClass) break
        i++
      }
      i++
      while (i < n && /[a-z]/i.test(text[i]!)) i++
      tokens.push({ kind: 'regex', value: text.slice(start, i), line })
    } else if (/[A-Za-z_$\u0080-\uFFFF]/.test(ch)) {
      const start = i
      while (i < n && /[\w$\u0080-\uFFFF]/.test(text[i]!)) i++
      tokens.push({ kind: 'name', value: text.slice(start, i), line })
    } else if (/[0-9]/.test(ch) || (ch === '.' && next !== undefined && /[0-9]/.test(next))) {
      const start = i
      while (i < n && /[\w.]/.test(text[i]!)) i++
      tokens.push({ kind: 'number', value: text.slice(start, i), line })
    } else if (ch === '{') {
      braces++
      tokens.push({ kind: 'punct', value: ch, line })
      i++
    } else if (ch === '}') {
      braces--
      i++
      if (templateDepth.length > 0 && templateDepth[templateDepth.length - 1] === braces) {
        templateDepth.pop()
        readTemplate(line)
      } else {
        tokens.push({ kind: 'punct', value: ch, line })
      }
    } else {
      const multi = PUNCT.find((p) => text.startsWith(p, i))
      const value = multi ?? ch
      tokens.push({ kind: 'punct', value, line })
      i += value.length
    }
  }
  return tokens
}

// --- Command line ----------------------------------------------------------------------------

function main(argv: readonly string[]): number {
  const root = argv[0] ?? fileURLToPath(new URL('..', import.meta.url))
  const { files, imports, violations } = scan(root)
  for (const v of violations) {
    console.error(
      v.line === 0 ? `${v.file}: ${v.rule}` : `${v.file}:${v.line} imports ${v.target}: ${v.rule}`,
    )
  }
  if (violations.length > 0) return 1
  console.log(`check-layers: ${files} files under src/, ${imports} relative imports, no layer violations`)
  return 0
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2))
