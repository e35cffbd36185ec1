// Rewriting the HTML of a tracked message at compose time (before DKIM signing): every
// http(s) link of an <a href> becomes a click-redirect URL made by the caller from the link's
// index, and an open pixel goes before </body>. Pure: no I/O, no tokens (services/tracking
// makes the URLs).
// Invariants:
// - Only <a href="http(s)://..."> values change; mailto:, tel:, anchors, cid: and relative
//   links stay as written, and so does everything else in the document.
// - links[i] is the URL the reader would have followed without tracking (HTML character
//   references decoded), the one a click on link i redirects to.
// - At most MAX_LINKS links are rewritten; later ones stay untracked.

export const MAX_LINKS = 200
const MAX_URL = 2048

export interface TrackedHtml {
  html: string
  /** The original URLs, by link index. */
  links: string[]
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

/** Decodes the character references an attribute value may hold (&amp;, &#38;, &#x26;). */
export function decodeAttribute(v: string): string {
  return v.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (all, ref: string) => {
    if (ref[0] === '#') {
      const n = ref[1] === 'x' || ref[1] === 'X' ? Number.parseInt(ref.slice(2), 16) : Number(ref.slice(1))
      return Number.isFinite(n) && n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : all
    }
    return NAMED[ref.toLowerCase()] ?? all
  })
}

const escapeAttribute = (v: string) =>
  v.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')

/** An <a ...> start tag's href value, quoted with " or ', or unquoted. */
const ANCHOR_HREF = /(<a\b[^>]*?\shref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/gi

export function trackHtml(
  html: string,
  o: { clickUrl: ((index: number) => string) | null; pixelUrl: string | null },
): TrackedHtml {
  const links: string[] = []
  let out = html
  if (o.clickUrl) {
    const clickUrl = o.clickUrl
    out = out.replace(ANCHOR_HREF, (all, head: string, dq?: string, sq?: string, bare?: string) => {
      const raw = dq ?? sq ?? bare ?? ''
      const url = decodeAttribute(raw).trim()
      if (!/^https?:\/\/[^\s]/i.test(url) || url.length > MAX_URL || links.length >= MAX_LINKS) return all
      links.push(url)
      return `${head}"${escapeAttribute(clickUrl(links.length - 1))}"`
    })
  }
  if (o.pixelUrl) {
    const img = `<img src="${escapeAttribute(o.pixelUrl)}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0" />`
    const at = out.toLowerCase().lastIndexOf('</body>')
    out = at >= 0 ? `${out.slice(0, at)}${img}${out.slice(at)}` : `${out}${img}`
  }
  return { html: out, links }
}
