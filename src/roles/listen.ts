// Binding and closing listeners, shared by the listener components: the standard-port fallback
// for mail ports and the deadline-bounded close of HTTP servers.

import type { Server as HttpServer } from 'node:http'
import type { MailPort } from '../config/ports.ts'

/** Where a mail port chosen automatically goes when its standard port cannot be bound. */
const FALLBACK_PORTS: Record<string, number> = {
  'smtp-mx': 2025,
  'smtp-submission': 2587,
  'smtp-submissions': 2465,
  imap: 2143,
  imaps: 2993,
}

/**
 * Binds a mail listener. A port chosen automatically (the standard one) that is taken or
 * refused falls back to the documented unprivileged port, and a note says so; a configured
 * port that cannot be bound stops the start with a clear error.
 */
export async function listenMailPort(
  p: MailPort,
  auto: boolean,
  listen: (port: number) => Promise<number>,
  notes: string[],
): Promise<number> {
  try {
    return await listen(p.port)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const fallback = FALLBACK_PORTS[p.name]
    if (auto && !p.fellBack && (code === 'EADDRINUSE' || code === 'EACCES') && fallback) {
      notes.push(
        `${p.name}: port ${p.port} is ${code === 'EADDRINUSE' ? 'in use by another program' : 'not allowed'}; using ${fallback}`,
      )
      return listen(fallback)
    }
    throw new Error(
      `cannot listen for ${p.name} on ${p.host}:${p.port} (${code}); set another port in the config`,
      { cause: err },
    )
  }
}

/** Stops accepting, lets in-flight requests finish, and cuts the rest at the deadline. */
export async function closeHttpWithin(
  server: HttpServer,
  close: () => Promise<void>,
  graceMs: number,
  onDeadline?: () => void,
): Promise<void> {
  const timer = setTimeout(() => {
    onDeadline?.()
    server.closeAllConnections()
  }, graceMs)
  // Connections busy when close() began become idle once their response is sent; close them
  // then, instead of waiting for their keep-alive to run out.
  const sweep = setInterval(() => server.closeIdleConnections(), 100)
  try {
    await close()
  } finally {
    clearTimeout(timer)
    clearInterval(sweep)
  }
}

export const hostForUrl = (host: string) =>
  host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host
