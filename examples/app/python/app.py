"""Example app for caddy-wxauth, standard library only.

Verifies the signed events of app_hook, stores users in SQLite and answers
claims; its admin commands call wxauth's app_api.

    WXAUTH_SECRET=whsec_... python3 app.py       serve /wxauth
    python3 app.py ban <openid>                  refuse its logins, end its sessions
    python3 app.py unban <openid>                allow its logins again
    python3 app.py role <openid> <role>          new role, in the store and at once in every session
    python3 app.py notify <openid> <template_id> <text>
                                                 a subscribe message, with wxauth's access_token
    python3 app.py dump                          print the store as JSON

Environment: WXAUTH_SECRET (the secret of app_hook), PORT (default 3000; 0
picks a free one), STORE (default users.db), WXAUTH_API (the URL of app_api,
e.g. http://127.0.0.1:8080/wx/app, for the admin commands), WECHAT_API
(default https://api.weixin.qq.com; wxmock's URL in the demo).
"""

import json
import os
import secrets
import signal
import sqlite3
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import webhooks

# wxauth's events are small; anything larger is not one.
MAX_BODY = 64 << 10
# How long a webhook-id is remembered. wxauth sends a retried event with the
# same id within minutes; signatures older than 5 minutes are refused anyway.
SEEN_FOR = 24 * 3600

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    uid INTEGER PRIMARY KEY AUTOINCREMENT,
    openid TEXT NOT NULL UNIQUE,
    unionid TEXT,
    role TEXT NOT NULL DEFAULT 'member',
    banned INTEGER NOT NULL DEFAULT 0,
    logins INTEGER NOT NULL DEFAULT 0,
    last_login INTEGER,
    phone TEXT,    -- JSON: phoneNumber, purePhoneNumber, countryCode, sid, time
    profile TEXT   -- JSON: data (the decrypted object), sid, time
);
CREATE TABLE IF NOT EXISTS sessions (
    sid TEXT PRIMARY KEY,
    openid TEXT NOT NULL,
    login INTEGER,
    logout INTEGER
);
CREATE TABLE IF NOT EXISTS seen (
    id TEXT PRIMARY KEY,    -- webhook-id
    time INTEGER NOT NULL,
    status INTEGER NOT NULL,
    body TEXT               -- NULL: no body
);
"""

EVENTS = ("login", "phone", "decrypt", "logout")


def connect(path, create=True):
    """Opens the store; each request and command uses its own connection."""
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    db.row_factory = sqlite3.Row
    if create:
        db.executescript(SCHEMA)
    return db


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT: one writer at a time, across processes too."""

    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, value, tb):
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def invalid_event(ev):
    """Why ev is not an event this app can apply, or "" when it is."""
    if not isinstance(ev, dict) or not isinstance(ev.get("event"), str):
        return "not an event object"
    if ev["event"] not in EVENTS:
        return ""
    for name in ("openid", "sid"):
        if not isinstance(ev.get(name), str) or not ev[name]:
            return name + " missing"
    if not isinstance(ev.get("time"), int) or isinstance(ev.get("time"), bool):
        return "time missing"
    if ev["event"] == "phone" and not isinstance(ev.get("phone"), dict):
        return "phone missing"
    if ev["event"] == "decrypt" and not isinstance(ev.get("data"), dict):
        return "data missing"
    return ""


def _user(db, ev):
    """The row of ev's openid; created when an event comes before any login
    the store knows of (a store restored from an old backup, say)."""
    # Look first: an INSERT that a UNIQUE conflict ignores still uses up a uid.
    if not db.execute("SELECT 1 FROM users WHERE openid = ?", (ev["openid"],)).fetchone():
        db.execute("INSERT INTO users (openid) VALUES (?)", (ev["openid"],))
    if ev.get("unionid"):
        db.execute("UPDATE users SET unionid = ? WHERE openid = ?", (ev["unionid"], ev["openid"]))
    return db.execute("SELECT * FROM users WHERE openid = ?", (ev["openid"],)).fetchone()


def apply_event(db, ev):
    """Applies a verified event inside a transaction; returns (status, body)
    for wxauth, body None for no body."""
    kind, openid, sid, when = ev["event"], ev.get("openid"), ev.get("sid"), ev.get("time")
    if kind == "login":
        row = db.execute("SELECT banned FROM users WHERE openid = ?", (openid,)).fetchone()
        if row and row["banned"]:
            # Refusing a login: wxauth answers the client 502 hook_failed.
            return 403, {"error": "banned"}
        _user(db, ev)
        db.execute("UPDATE users SET logins = logins + 1, last_login = ? WHERE openid = ?", (when, openid))
        db.execute("INSERT OR REPLACE INTO sessions (sid, openid, login) VALUES (?, ?, ?)", (sid, openid, when))
        u = db.execute("SELECT uid, role FROM users WHERE openid = ?", (openid,)).fetchone()
        # These claims reach the upstream as headers and placeholders.
        return 200, {"uid": str(u["uid"]), "role": u["role"]}
    if kind == "phone":
        # WeChat answered this number for a phone code this session presented.
        p = ev["phone"]
        phone = {
            "phoneNumber": str(p.get("phoneNumber", "")),
            "purePhoneNumber": str(p.get("purePhoneNumber", "")),
            "countryCode": str(p.get("countryCode", "")),  # WeChat sends "86" or 86
            "sid": sid,
            "time": when,
        }
        _user(db, ev)
        db.execute("UPDATE users SET phone = ? WHERE openid = ?", (json.dumps(phone), openid))
    elif kind == "decrypt":
        _user(db, ev)
        profile = {"data": ev["data"], "sid": sid, "time": when}
        db.execute("UPDATE users SET profile = ? WHERE openid = ?", (json.dumps(profile), openid))
    elif kind == "logout":
        _user(db, ev)
        db.execute("INSERT OR IGNORE INTO sessions (sid, openid) VALUES (?, ?)", (sid, openid))
        db.execute("UPDATE sessions SET logout = ? WHERE sid = ?", (when, sid))
    return 204, None  # wxauth ignores the answer to a logout


def dump(db):
    """The store as JSON-ready data, in the shape the Node and Go apps use."""
    users = {}
    for u in db.execute("SELECT * FROM users ORDER BY uid"):
        user = {
            "uid": str(u["uid"]),
            "openid": u["openid"],
            "role": u["role"],
            "banned": bool(u["banned"]),
            "logins": u["logins"],
            "sessions": {},
        }
        if u["unionid"]:
            user["unionid"] = u["unionid"]
        if u["last_login"] is not None:
            user["last_login"] = u["last_login"]
        if u["phone"]:
            user["phone"] = json.loads(u["phone"])
        if u["profile"]:
            user["profile"] = json.loads(u["profile"])
        users[u["openid"]] = user
    for s in db.execute("SELECT * FROM sessions ORDER BY rowid"):
        users[s["openid"]]["sessions"][s["sid"]] = {
            k: s[k] for k in ("login", "logout") if s[k] is not None
        }
    return {"users": users}


class App:
    """Receives wxauth's events on /wxauth."""

    def __init__(self, secret, store, now=time.time, log=None):
        self.secret = secret
        self.store = store
        self.now = now
        self.log = log or (lambda line: None)
        connect(store).close()  # create the tables once

    def handle(self, path, headers, body):
        """Returns (status, body) for a POST; body None for no body."""
        if path != "/wxauth":
            return 404, {"error": "not found"}
        try:
            # Checks the HMAC and that the timestamp is within 5 minutes of now.
            webhooks.verify(self.secret, headers, body, self.now())
        except webhooks.MissingHeaders as e:
            return 400, {"error": str(e)}
        except webhooks.BadSignature:
            return 401, {"error": "invalid signature"}
        try:
            ev = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return 400, {"error": "body is not JSON"}
        bad = invalid_event(ev)
        if bad:
            return 400, {"error": bad}

        msg_id = headers.get("webhook-id")
        now = int(self.now())
        with closing(connect(self.store, create=False)) as conn, Transaction(conn) as db:
            db.execute("DELETE FROM seen WHERE time < ?", (now - SEEN_FOR,))
            seen = db.execute("SELECT status, body FROM seen WHERE id = ?", (msg_id,)).fetchone()
            if seen:
                # A retry: answer as before, change nothing.
                self.log(f"{ev['event']} {msg_id} -> {seen['status']} (seen before)")
                return seen["status"], None if seen["body"] is None else json.loads(seen["body"])
            status, answer = apply_event(db, ev)
            db.execute(
                "INSERT INTO seen (id, time, status, body) VALUES (?, ?, ?, ?)",
                (msg_id, now, status, None if answer is None else json.dumps(answer)),
            )
        self.log(f"{ev['event']} {msg_id} -> {status}")
        return status, answer


def make_server(app, port):
    """An HTTP server for app on 127.0.0.1:port (0: a free port)."""

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status, body, extra=None):
            self.send_response(status)
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            if body is None:
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = self.headers.get("Content-Length", "")
            if not length.isascii() or not length.isdigit():
                self.close_connection = True
                return self.reply(411, {"error": "Content-Length required"})
            if int(length) > MAX_BODY:
                self.close_connection = True
                return self.reply(413, {"error": "body too large"})
            body = self.rfile.read(int(length))
            try:
                status, answer = app.handle(self.path.split("?")[0], self.headers, body)
            except Exception as e:  # the store failed: wxauth may retry
                app.log(f"error: {e}")
                status, answer = 500, {"error": "internal error"}
            self.reply(status, answer)

        def not_allowed(self):
            if self.path.split("?")[0] != "/wxauth":
                return self.reply(404, {"error": "not found"})
            self.reply(405, {"error": "method not allowed"}, {"Allow": "POST"})

        do_GET = do_PUT = do_DELETE = do_PATCH = not_allowed

        def log_message(self, format, *args):
            pass  # one line per event comes from App.log

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def call_wxauth(api_url, secret, body):
    """POSTs body to wxauth's app_api, signed with secret; returns the JSON
    answer (200), or None (204)."""
    payload = json.dumps(body).encode()
    # A fresh id per call: wxauth refuses an id it has seen (a replay).
    msg_id = "msg_" + secrets.token_hex(16)
    ts = str(int(time.time()))
    req = urllib.request.Request(api_url, data=payload, method="POST", headers={
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": webhooks.sign(secret, msg_id, ts, payload),
    })
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            answer = res.read(4096)
            return json.loads(answer) if answer else None
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"wxauth {body.get('action')}: {e.code} {e.read(4096).decode(errors='replace')}") from None


def set_claims(api_url, secret, openid, claims):
    """Sets claims on every session of openid; a None value removes that claim."""
    call_wxauth(api_url, secret, {"action": "set_claims", "openid": openid, "claims": claims})


def end_sessions(api_url, secret, openid):
    """Ends every session of openid: its tokens are refused from then on."""
    call_wxauth(api_url, secret, {"action": "end_sessions", "openid": openid})


def access_token(api_url, secret, stale=None):
    """Returns wxauth's WeChat access_token: the app shares the one token (and
    quota) of the cluster instead of fetching its own, which could invalidate
    wxauth's. With stale, the token WeChat just refused (40001, 42001), wxauth
    replaces it once for the whole cluster."""
    body = {"action": "access_token"}
    if stale:
        body["stale"] = stale
    answer = call_wxauth(api_url, secret, body) or {}
    if not answer.get("access_token"):
        raise RuntimeError("wxauth access_token: no token in the answer")
    return answer["access_token"]


def send_subscribe_message(api_url, secret, wechat_api, openid, template_id, data):
    """Sends a subscribe message to openid through WeChat's API at wechat_api
    (https://api.weixin.qq.com, or wxmock), with wxauth's access_token. When
    WeChat refuses the token, asks wxauth for the next one and sends once more."""
    payload = json.dumps({"touser": openid, "template_id": template_id, "data": data}).encode()
    stale = None
    for attempt in range(2):
        token = access_token(api_url, secret, stale)
        url = wechat_api + "/cgi-bin/message/subscribe/send?access_token=" + urllib.parse.quote(token, safe="")
        req = urllib.request.Request(url, data=payload, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as res:
            errcode = json.loads(res.read(4096)).get("errcode", 0)
        if errcode == 0:
            return
        if errcode not in (40001, 42001) or attempt:
            break
        stale = token  # refused: wxauth replaces it, once for the cluster
    raise RuntimeError(f"WeChat subscribe/send: errcode {errcode}")


USAGE = ("usage: app.py [serve] | ban <openid> | unban <openid> | role <openid> <role>"
         " | notify <openid> <template_id> <text> | dump")


def main(argv, env, out=sys.stdout, err=sys.stderr):
    secret = env.get("WXAUTH_SECRET", "")
    store = env.get("STORE") or "users.db"
    cmd = argv[0] if argv else "serve"
    if cmd == "serve" and len(argv) <= 1:
        if not secret.startswith("whsec_"):
            print("set WXAUTH_SECRET to the whsec_... secret of the app_hook block", file=err)
            return 2
        app = App(secret, store, log=lambda line: print(line, file=out, flush=True))
        server = make_server(app, int(env.get("PORT") or 3000))
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        print(f"listening on http://127.0.0.1:{server.server_port}/wxauth, store {store}", file=out, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        return 0
    if cmd == "dump" and len(argv) == 1:
        with closing(connect(store)) as db:
            print(json.dumps(dump(db), indent=2), file=out)
        return 0
    if not ((cmd in ("ban", "unban") and len(argv) == 2) or (cmd == "role" and len(argv) == 3)
            or (cmd == "notify" and len(argv) == 4)):
        print(USAGE, file=err)
        return 2
    api = env.get("WXAUTH_API", "")
    if cmd != "unban" and (not secret.startswith("whsec_") or not api):
        print("set WXAUTH_SECRET (whsec_...) and WXAUTH_API (the app_api URL)", file=err)
        return 2
    openid = argv[1]
    if cmd == "notify":
        try:
            # thing1 is the template's first field; a real template names its own.
            send_subscribe_message(api, secret, env.get("WECHAT_API") or "https://api.weixin.qq.com",
                                   openid, argv[2], {"thing1": {"value": argv[3]}})
        except (RuntimeError, OSError, ValueError) as e:
            print(e, file=err)
            return 1
        print(f"notify {openid}: done", file=out)
        return 0
    try:
        # The store first: a login that races the ban is refused by the hook,
        # and the sessions that exist are ended next.
        with closing(connect(store)) as conn, Transaction(conn) as db:
            if not db.execute("SELECT 1 FROM users WHERE openid = ?", (openid,)).fetchone():
                raise RuntimeError(f"no user {openid} in {store}")
            if cmd == "role":
                db.execute("UPDATE users SET role = ? WHERE openid = ?", (argv[2], openid))
            else:
                db.execute("UPDATE users SET banned = ? WHERE openid = ?", (cmd == "ban", openid))
        if cmd == "ban":
            end_sessions(api, secret, openid)
        elif cmd == "role":
            set_claims(api, secret, openid, {"role": argv[2]})
    except (RuntimeError, OSError, sqlite3.Error) as e:
        print(e, file=err)
        return 1
    print(f"{cmd} {openid}: done", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))
