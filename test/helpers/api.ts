// A small API client for tests over real HTTP (fetch): remembers the session cookie like a
// browser, sends X-Requested-With on writes (unless told not to), or an API key.

export interface ApiResponse<T = any> {
  status: number
  headers: Headers
  body: T
  text: string
}

export interface ApiOptions {
  key?: string
  /** Send X-Requested-With on state-changing requests (default true for cookie clients). */
  csrfHeader?: boolean
  /** Extra headers for every request. */
  headers?: Record<string, string>
}

export class Api {
  readonly base: string
  cookie: string | null = null
  opts: ApiOptions
  constructor(base: string, opts: ApiOptions = {}) {
    this.base = base
    this.opts = opts
  }

  withKey(key: string): Api {
    return new Api(this.base, { ...this.opts, key })
  }

  async req<T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiResponse<T>> {
    const h: Record<string, string> = { ...this.opts.headers, ...headers }
    if (body !== undefined && !h['content-type']) h['content-type'] = 'application/json'
    if (this.opts.key) h.authorization = `Bearer ${this.opts.key}`
    if (this.cookie) h.cookie = this.cookie
    if (method !== 'GET' && (this.opts.csrfHeader ?? true)) h['x-requested-with'] ??= 'test'
    const res = await fetch(this.base + path, {
      method,
      headers: h,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    })
    const set = res.headers.get('set-cookie')
    if (set) {
      const pair = set.split(';')[0] as string
      this.cookie = pair.endsWith('=') ? null : pair
    }
    const text = await res.text()
    let parsed: unknown = text
    try {
      parsed = text ? JSON.parse(text) : null
    } catch {}
    return { status: res.status, headers: res.headers, body: parsed as T, text }
  }

  get<T = any>(path: string) {
    return this.req<T>('GET', path)
  }
  post<T = any>(path: string, body?: unknown) {
    return this.req<T>('POST', path, body ?? {})
  }
  patch<T = any>(path: string, body?: unknown) {
    return this.req<T>('PATCH', path, body ?? {})
  }
  delete<T = any>(path: string, body?: unknown) {
    return this.req<T>('DELETE', path, body)
  }
}
