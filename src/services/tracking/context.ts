// What tracking needs besides the outbound context: the token key (derived from the secrets
// file, so every node agrees), the base URL of the links, and the prefetch window.

export interface TrackingSettings {
  /** HMAC key of the tokens (tokens.ts). */
  secret: Buffer
  /** Base URL of /t/... links, without a trailing slash (tracking.base_url, else public_url). */
  baseUrl: () => string
  prefetchWindowMs: number
}
