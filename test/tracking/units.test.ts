// The pure parts of tracking, table-driven: HTML rewriting (which links change, what is
// stored, where the pixel goes), tokens (kind-bound, tamper-evident) and bot classification.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { loadConfig } from '../../src/config/load.ts'
import { decodeAttribute, MAX_LINKS, trackHtml } from '../../src/mail/tracking-html.ts'
import { botReason, type HitFacts } from '../../src/services/tracking/bots.ts'
import { makeToken, readToken } from '../../src/services/tracking/tokens.ts'
import { newId } from '../../src/store/ids.ts'

const click = (i: number) => `https://t.example/c/${i}`

describe('trackHtml', () => {
  const cases: { name: string; html: string; links: string[]; out: string }[] = [
    {
      name: 'double, single and unquoted hrefs; entities decoded in the stored URL',
      html: `<a href="https://a.example/x?y=1&amp;z=2">A</a><a class=b href='http://b.example/'>B</a><a href=https://c.example>C</a>`,
      links: ['https://a.example/x?y=1&z=2', 'http://b.example/', 'https://c.example'],
      out: `<a href="${click(0)}">A</a><a class=b href="${click(1)}">B</a><a href="${click(2)}">C</a>`,
    },
    {
      name: 'mailto, tel, anchors, cid and relative links stay',
      html: `<a href="mailto:x@y.example">m</a><a href="tel:+1">t</a><a href="#top">#</a><a href="/rel">r</a><img src="cid:logo">`,
      links: [],
      out: `<a href="mailto:x@y.example">m</a><a href="tel:+1">t</a><a href="#top">#</a><a href="/rel">r</a><img src="cid:logo">`,
    },
    {
      name: 'only <a> tags: link and area hrefs, and text URLs, stay',
      html: `<link href="https://css.example/s.css"><p>https://text.example</p><abbr href="https://no.example">x</abbr>`,
      links: [],
      out: `<link href="https://css.example/s.css"><p>https://text.example</p><abbr href="https://no.example">x</abbr>`,
    },
    {
      name: 'a javascript: URL is not tracked (and not made followable)',
      html: `<a href="javascript:alert(1)">x</a>`,
      links: [],
      out: `<a href="javascript:alert(1)">x</a>`,
    },
  ]
  for (const c of cases)
    it(c.name, () => {
      const r = trackHtml(c.html, { clickUrl: click, pixelUrl: null })
      assert.deepEqual(r.links, c.links)
      assert.equal(r.html, c.out)
    })

  it('puts the pixel before </body>, or at the end without one', () => {
    const a = trackHtml('<html><body><p>x</p></body></html>', {
      clickUrl: null,
      pixelUrl: 'https://t.example/o?a&b',
    })
    assert.match(
      a.html,
      /<p>x<\/p><img src="https:\/\/t\.example\/o\?a&amp;b" width="1" height="1"[^>]*><\/body><\/html>$/,
    )
    const b = trackHtml('<p>x</p>', { clickUrl: null, pixelUrl: 'https://t.example/o' })
    assert.match(b.html, /^<p>x<\/p><img src="https:\/\/t\.example\/o"/)
  })

  it(`tracks at most ${MAX_LINKS} links`, () => {
    const html = Array.from(
      { length: MAX_LINKS + 5 },
      (_, i) => `<a href="https://x.example/${i}">${i}</a>`,
    ).join('')
    const r = trackHtml(html, { clickUrl: click, pixelUrl: null })
    assert.equal(r.links.length, MAX_LINKS)
    assert.match(r.html, new RegExp(`href="https://x\\.example/${MAX_LINKS}"`))
  })

  it('decodes character references', () => {
    assert.equal(decodeAttribute('a&amp;b&#38;c&#x26;d&unknown;'), 'a&b&c&d&unknown;')
  })
})

describe('tracking tokens', () => {
  const secret = randomBytes(32)
  const key = newId('msg').slice(4)

  it('round-trips each kind and refuses it for another kind', () => {
    const open = makeToken(secret, 'open', key)
    const c3 = makeToken(secret, 'click', key, 3)
    assert.deepEqual(readToken(secret, 'open', open), { key, index: null })
    assert.deepEqual(readToken(secret, 'click', c3), { key, index: 3 })
    assert.equal(readToken(secret, 'unsubscribe', open), null, 'an open token is not an unsubscribe token')
    assert.equal(readToken(secret, 'click', open), null)
  })

  it('refuses tampered tokens: another index, another key, another secret, bad shapes', () => {
    const c0 = makeToken(secret, 'click', key, 0)
    const [k, , sig] = c0.split('.')
    const other = newId('msg').slice(4)
    for (const bad of [
      `${k}.1.${sig}`,
      `${other}.0.${sig}`,
      makeToken(randomBytes(32), 'click', key, 0),
      `${k}.0.${sig?.slice(0, -2)}`,
      `${k}.00.${sig}`,
      `${k}.-1.${sig}`,
      `${k}.0`,
      '',
      `${k?.toUpperCase()}.0.${sig}`,
    ])
      assert.equal(readToken(secret, 'click', bad), null, bad)
  })
})

describe('botReason', () => {
  const human =
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15'
  const base: HitFacts = {
    kind: 'open',
    method: 'GET',
    userAgent: human,
    ip: '198.51.100.7',
    sinceDeliveryMs: 60_000,
    prefetchWindowMs: 2000,
  }
  const cases: [string, Partial<HitFacts>, string | null][] = [
    ['a person', {}, null],
    ['Apple MPP by address', { ip: '17.58.1.2' }, 'apple_mpp'],
    ['Apple MPP by its bare user agent', { userAgent: 'Mozilla/5.0' }, 'apple_mpp'],
    ['a click from Apple space is not MPP', { kind: 'click', ip: '17.58.1.2' }, null],
    ['a link scanner', { kind: 'click', userAgent: 'Barracuda Sentinel (EE)' }, 'link_scanner'],
    ['a script', { userAgent: 'python-requests/2.31' }, 'link_scanner'],
    ['no user agent', { userAgent: null }, 'no_user_agent'],
    ['a HEAD request', { method: 'HEAD' }, 'head_request'],
    ['within the prefetch window', { sinceDeliveryMs: 800 }, 'prefetch'],
    ['just after the window', { sinceDeliveryMs: 2000 }, null],
  ]
  for (const [name, facts, want] of cases)
    it(name, () => assert.equal(botReason({ ...base, ...facts }), want))
})

describe('tracking.base_url', () => {
  const load = (v: string) => loadConfig({ env: { POSTERN_TRACKING_BASE_URL: v }, args: [], cwd: '/tmp' })
  it('takes an http(s) base URL', () => {
    assert.equal(load('https://t.example.com/mail').config.tracking.base_url, 'https://t.example.com/mail')
  })
  for (const bad of [
    't.example.com',
    'ftp://t.example.com',
    'https://t.example.com/?a=1',
    'https://t.example.com/#x',
  ])
    it(`refuses ${bad}`, () => assert.throws(() => load(bad), /tracking\.base_url/))
})
