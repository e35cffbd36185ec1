// The values an IMAP response is built from, independent of how they are written on the wire.
// Commands and the message-structure builders (ENVELOPE, BODYSTRUCTURE) produce these; only
// protocol/encoder.ts turns them into bytes, so quoting and literal rules live in one place.
// Invariants:
// - An `atom` is written as is: the producer guarantees it is a valid atom (or a flag such as
//   `\Seen`, or a keyword); encoder.ts never quotes it.
// - A `string` is written as a quoted string when it can be one (RFC 9051 4.3: 7-bit, no CR/LF,
//   no NUL, short enough), otherwise as a literal; `Buffer` values are always literals
//   (literal8 `~{n}` when `binary` is set, for BINARY[] responses, RFC 3516).
// - `null` is NIL. Numbers are written in decimal (they must be non-negative integers).
// - `ImapList` is a parenthesised list; `section`/raw pieces are `atom`s the producer built.

export type ImapValue =
  | null
  | number
  | string
  | { atom: string }
  | { literal: Buffer; binary?: boolean }
  | ImapValue[]

export const atom = (a: string): { atom: string } => ({ atom: a })
export const literal = (b: Buffer, binary = false): { literal: Buffer; binary?: boolean } =>
  binary ? { literal: b, binary } : { literal: b }
