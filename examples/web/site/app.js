// The example site's one script, for both pages: which login button to
// show, and who the visitor is (from /api/me, which wxauth fills in).
'use strict'

// The path prefixes of the web_login blocks, from <body data-oa data-qr>.
const prefixes = { oa: document.body.dataset.oa, qr: document.body.dataset.qr }

function show(id, on) {
  const el = document.getElementById(id)
  if (el) el.hidden = !on
}

// WeChat's in-app browser says MicroMessenger in its user agent; the
// official account's login (oa) works only there. Elsewhere the QR login
// is the one: the visitor scans it with WeChat on the phone.
// ?surface=oa|qr|both forces the choice, for the demo.
function chooseLogin() {
  const forced = new URLSearchParams(location.search).get('surface')
  const inWeChat = /MicroMessenger/i.test(navigator.userAgent)
  let oa = inWeChat
  let qr = !inWeChat
  if (forced === 'oa' || forced === 'qr' || forced === 'both') {
    oa = forced !== 'qr'
    qr = forced !== 'oa'
  }
  show('login-oa', oa)
  show('login-qr', qr)
  show('hint-oa', !forced && oa)
  show('hint-qr', !forced && qr)
  show('hint-forced', !!forced)
}

// me fetches who the visitor is: {openid, unionid, headers}; openid is
// empty for a visitor who has not logged in.
async function me() {
  const r = await fetch('/api/me', { credentials: 'same-origin', cache: 'no-store' })
  if (!r.ok) throw new Error('/api/me: HTTP ' + r.status)
  return r.json()
}

function setText(id, text) {
  document.getElementById(id).textContent = text
}

async function indexPage() {
  chooseLogin()
  show('logged-out', new URLSearchParams(location.search).has('logged_out'))
  try {
    const who = await me()
    if (who.openid) {
      setText('who', who.unionid || who.openid)
      show('anonymous', false)
      show('logged-in', true)
    }
  } catch (e) {
    // The login buttons stay: they work without knowing who you are.
    console.warn(e)
  }
}

async function accountPage() {
  let who
  try {
    who = await me()
  } catch (e) {
    show('loading', false)
    setText('failed-reason', String(e.message || e))
    show('failed', true)
    return
  }
  show('loading', false)
  if (!who.openid) {
    show('anonymous', true)
    return
  }
  const h = who.headers || {}
  const none = '—（无 · none）'
  setText('openid', who.openid)
  setText('unionid', who.unionid || none)
  setText('surface', h['X-Wx-Surface'] || none)
  setText('appid', h['X-Wx-Appid'] || none)
  const rows = document.getElementById('headers')
  for (const name of Object.keys(h).sort()) {
    const tr = document.createElement('tr')
    for (const text of [name, h[name]]) {
      const td = document.createElement('td')
      td.textContent = text
      tr.appendChild(td)
    }
    rows.appendChild(tr)
  }
  // Log out where the session came from: each web_login has its own
  // cookie and its own logout.
  const prefix = prefixes[h['X-Wx-Surface']]
  if (prefix) document.getElementById('logout').action = prefix + '/logout'
  show('account', true)
}

if (document.getElementById('account')) accountPage()
else indexPage()
