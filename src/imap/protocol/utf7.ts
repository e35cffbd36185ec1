// Modified UTF-7 for mailbox names (RFC 3501 5.1.3, kept by RFC 9051 for clients that have not
// enabled UTF8=ACCEPT): the wire form of a name when the session is not in UTF-8 mode.
// Invariants:
// - Printable US-ASCII (0x20-0x7E) stands for itself, except `&`, which is written `&-`.
//   Everything else is UTF-16 (big-endian) in modified base64 (`,` for `/`, no `=` padding)
//   between `&` and `-`; a run of such characters is one base64 section.
// - decodeMailboxName accepts only the one shortest, canonical encoding encodeMailboxName
//   writes, so a name has exactly one wire form: it refuses an `&` without `-`, characters
//   outside the modified base64 alphabet, printable ASCII inside base64 (`&ACY-` for `&`),
//   leftover or non-zero padding bits, unpaired surrogates, two base64 sections back to back
//   (the null shift `-&` that RFC 3501 forbids; `&...-&-` is fine: that `&-` is an ampersand),
//   and any octet that is not printable ASCII on the wire.
// - encodeMailboxName never fails: lone surrogates in the input become U+FFFD.

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,'
const B64_VALUE = new Int8Array(128).fill(-1)
for (let i = 0; i < B64.length; i++) B64_VALUE[B64.charCodeAt(i)] = i

const isPrintable = (c: number): boolean => c >= 0x20 && c <= 0x7e

function base64Units(units: number[]): string {
  let out = ''
  let buf = 0
  let bits = 0
  for (const u of units) {
    buf = (buf << 16) | u
    bits += 16
    while (bits >= 6) {
      bits -= 6
      out += B64[(buf >> bits) & 0x3f]
    }
    buf &= (1 << bits) - 1
  }
  if (bits > 0) out += B64[(buf << (6 - bits)) & 0x3f]
  return out
}

/** The modified UTF-7 wire form of a mailbox name. */
export function encodeMailboxName(name: string): string {
  const s = name.toWellFormed()
  let out = ''
  let run: number[] = []
  const flush = () => {
    if (run.length === 0) return
    out += `&${base64Units(run)}-`
    run = []
  }
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (isPrintable(c)) {
      flush()
      out += c === 0x26 ? '&-' : s[i]
    } else {
      run.push(c)
    }
  }
  flush()
  return out
}

/** The name a modified UTF-7 wire form stands for; throws Error on anything not canonical. */
export function decodeMailboxName(wire: string): string {
  let out = ''
  let i = 0
  let lastWasRun = false
  while (i < wire.length) {
    const c = wire.charCodeAt(i)
    if (!isPrintable(c)) {
      throw new Error('Mailbox name has a character that is not printable US-ASCII (use modified UTF-7)')
    }
    if (c !== 0x26) {
      out += wire[i]
      i++
      lastWasRun = false
      continue
    }
    const close = wire.indexOf('-', i + 1)
    if (close < 0) throw new Error("Mailbox name has an '&' not closed by '-'")
    if (close === i + 1) {
      out += '&'
      i += 2
      lastWasRun = false
      continue
    }
    if (lastWasRun) throw new Error('Mailbox name has two modified base64 sections back to back')
    out += decodeRun(wire.slice(i + 1, close))
    i = close + 1
    lastWasRun = true
  }
  return out
}

function decodeRun(b64: string): string {
  const units: number[] = []
  let buf = 0
  let bits = 0
  for (let k = 0; k < b64.length; k++) {
    const code = b64.charCodeAt(k)
    const v = code < 128 ? (B64_VALUE[code] as number) : -1
    if (v < 0) throw new Error(`Mailbox name has an invalid modified base64 character '${b64[k]}'`)
    buf = (buf << 6) | v
    bits += 6
    if (bits >= 16) {
      bits -= 16
      units.push((buf >> bits) & 0xffff)
      buf &= (1 << bits) - 1
    }
  }
  if (bits >= 6 || units.length === 0) throw new Error('Mailbox name has a truncated modified base64 section')
  if (buf !== 0) throw new Error('Mailbox name has non-zero padding bits in modified base64')
  for (let k = 0; k < units.length; k++) {
    const u = units[k] as number
    if (isPrintable(u)) throw new Error('Mailbox name encodes printable US-ASCII in modified base64')
    if (u >= 0xd800 && u <= 0xdbff) {
      const next = units[k + 1]
      if (next === undefined || next < 0xdc00 || next > 0xdfff) {
        throw new Error('Mailbox name has an unpaired surrogate in modified base64')
      }
      k++
    } else if (u >= 0xdc00 && u <= 0xdfff) {
      throw new Error('Mailbox name has an unpaired surrogate in modified base64')
    }
  }
  let out = ''
  for (let k = 0; k < units.length; k += 4096) out += String.fromCharCode(...units.slice(k, k + 4096))
  return out
}
