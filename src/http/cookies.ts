// Reading and writing the session cookie, in one place: HttpOnly, SameSite=Lax, Path=/,
// Secure when served over HTTPS (or as config says), Max-Age from the session lifetime.

import type { FastifyReply, FastifyRequest } from 'fastify'

export function readCookie(req: FastifyRequest, name: string): string | null {
  const header = req.headers.cookie
  if (!header) return null
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim())
      } catch {
        return null
      }
    }
  }
  return null
}

export interface CookieOptions {
  secure: 'auto' | 'always' | 'never'
}

function secureFlag(req: FastifyRequest, opts: CookieOptions): boolean {
  return opts.secure === 'always' || (opts.secure === 'auto' && req.protocol === 'https')
}

export function setSessionCookie(
  req: FastifyRequest,
  reply: FastifyReply,
  name: string,
  value: string,
  maxAgeMs: number,
  opts: CookieOptions,
): void {
  const attrs = [
    `${name}=${encodeURIComponent(value)}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Lax',
    `Max-Age=${Math.floor(maxAgeMs / 1000)}`,
  ]
  if (secureFlag(req, opts)) attrs.push('Secure')
  reply.header('set-cookie', attrs.join('; '))
}

export function clearSessionCookie(
  req: FastifyRequest,
  reply: FastifyReply,
  name: string,
  opts: CookieOptions,
): void {
  const attrs = [`${name}=`, 'Path=/', 'HttpOnly', 'SameSite=Lax', 'Max-Age=0']
  if (secureFlag(req, opts)) attrs.push('Secure')
  reply.header('set-cookie', attrs.join('; '))
}
