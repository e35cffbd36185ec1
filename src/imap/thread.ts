// THREAD=REFERENCES (RFC 5256 2.2), as a pure function over the messages a search matched:
// containers by Message-ID linked by References (In-Reply-To when there are none), empty
// containers pruned, roots merged by base subject, siblings by date; written in the THREAD
// response grammar: `(1 2 (3)(4 5))` -- a chain inline, a branch as parenthesised sub-threads.
// Invariants: terminates on any input (loops in references are never linked), every message
// appears exactly once.

import { normaliseSubject } from '../mail/parse.ts'

export interface ThreadInput {
  /** What the answer names the message by (sequence number or UID). */
  n: number
  messageId: string | null
  inReplyTo: string | null
  references: string[]
  subject: string
  date: number
}

interface Container {
  msg: ThreadInput | null
  parent: Container | null
  children: Container[]
}

const cleanId = (id: string) => id.trim().replace(/^<|>$/g, '').toLowerCase()

function isAncestor(a: Container, b: Container): boolean {
  for (let c: Container | null = b; c; c = c.parent) if (c === a) return true
  return false
}

function link(parent: Container, child: Container): void {
  if (child.parent === parent || isAncestor(child, parent)) return
  if (child.parent) child.parent.children = child.parent.children.filter((c) => c !== child)
  child.parent = parent
  parent.children.push(child)
}

const dateOf = (c: Container): number => c.msg?.date ?? (c.children[0] ? dateOf(c.children[0]) : 0)
const firstN = (c: Container): number => c.msg?.n ?? (c.children[0] ? firstN(c.children[0]) : 0)

export function threadReferences(messages: ThreadInput[]): string {
  const byId = new Map<string, Container>()
  const get = (id: string) => {
    let c = byId.get(id)
    if (!c) {
      c = { msg: null, parent: null, children: [] }
      byId.set(id, c)
    }
    return c
  }
  const all: Container[] = []
  for (const m of messages) {
    let id = m.messageId ? cleanId(m.messageId) : ''
    let c = id ? get(id) : null
    if (!c || c.msg) {
      // No Message-ID, or a duplicate: a container of its own (RFC 5256 2.2 step 1A).
      id = `\u0000${m.n}`
      c = get(id)
    }
    c.msg = m
    all.push(c)
    const refs = (m.references.length ? m.references : m.inReplyTo ? [m.inReplyTo] : []).map(cleanId)
    let prev: Container | null = null
    for (const r of refs) {
      const rc = get(r)
      if (prev && !rc.parent) link(prev, rc)
      prev = rc
    }
    if (c.parent) c.parent.children = c.parent.children.filter((x) => x !== c)
    c.parent = null
    if (prev && prev !== c && !isAncestor(c, prev)) link(prev, c)
  }
  // Roots, then pruning of empty containers (step 4).
  const prune = (list: Container[], isRoot: boolean): Container[] => {
    const out: Container[] = []
    for (const c of list) {
      c.children = prune(c.children, false)
      if (c.msg) out.push(c)
      else if (c.children.length === 0) continue
      else if (!isRoot || c.children.length === 1) {
        for (const k of c.children) k.parent = c.parent
        out.push(...c.children)
      } else out.push(c)
    }
    return out
  }
  let roots = prune(
    [...byId.values()].filter((c) => !c.parent),
    true,
  )
  // Step 5: roots with the same base subject are gathered, a non-reply taking the replies.
  const bySubject = new Map<string, Container>()
  const merged: Container[] = []
  for (const r of roots.sort((a, b) => dateOf(a) - dateOf(b) || firstN(a) - firstN(b))) {
    const subj = r.msg ? r.msg.subject : (r.children[0]?.msg?.subject ?? '')
    const base = normaliseSubject(subj)
    const other = base ? bySubject.get(base) : undefined
    if (!other) {
      if (base) bySubject.set(base, r)
      merged.push(r)
      continue
    }
    const isReply = (c: Container) =>
      !!c.msg && normaliseSubject(c.msg.subject) !== c.msg.subject.trim().toLowerCase()
    if (other.msg && !isReply(other)) other.children.push(r)
    else if (!other.msg) other.children.push(r)
    else {
      // Two replies with the same subject: siblings under a new empty container.
      const holder: Container = { msg: null, parent: null, children: [other, r] }
      merged[merged.indexOf(other)] = holder
      bySubject.set(base, holder)
    }
  }
  roots = merged
  const sortTree = (list: Container[]) => {
    list.sort((a, b) => dateOf(a) - dateOf(b) || firstN(a) - firstN(b))
    for (const c of list) sortTree(c.children)
  }
  sortTree(roots)
  const render = (c: Container): string => {
    let s = c.msg ? String(c.msg.n) : ''
    if (c.children.length === 1) s += (s ? ' ' : '') + render(c.children[0] as Container)
    else if (c.children.length > 1) s += (s ? ' ' : '') + c.children.map((k) => `(${render(k)})`).join('')
    return s
  }
  return roots.map((r) => `(${render(r)})`).join('')
}
