"""Unit tests: events signed with a known secret go over real HTTP to the app,
with a fake clock; the admin commands talk to a stand-in for wxauth's app_api.

    python3 -m unittest -v
"""

import base64
import hashlib
import hmac
import io
import json
import os
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import app
import webhooks

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
NOW = 1767225600


def serve(t, server):
    """Serves server in a thread until the test ends; returns its base URL."""
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    t.addCleanup(server.server_close)
    t.addCleanup(server.shutdown)
    return f"http://127.0.0.1:{server.server_port}"


class Base(unittest.TestCase):
    """Runs the app with a fresh store and a fake clock."""

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.store = os.path.join(tmp.name, "users.db")
        self.clock = NOW
        self.app = app.App(SECRET, self.store, now=lambda: self.clock)
        self.url = serve(self, app.make_server(self.app, 0)) + "/wxauth"
        self.n = 0

    def event(self, kind, **extra):
        self.n += 1
        ev = {
            "id": f"evt_{self.n}", "event": kind, "time": NOW + self.n, "app_id": "wxtest0123456789",
            "openid": "o-alice", "unionid": "u-alice", "sid": "s-1", "claims": {},
        }
        ev.update(extra)
        return {k: v for k, v in ev.items() if v is not None}

    def send(self, ev, body=None, msg_id=None, ts=None, secret=SECRET, signature=None,
             sent_body=None, omit=(), method="POST", url=None):
        """Posts ev signed as wxauth signs it; returns (status, parsed body or None)."""
        body = json.dumps(ev).encode() if body is None else body
        msg_id = msg_id or ev["id"]
        ts = str(self.clock if ts is None else ts)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": ts,
            "webhook-signature": signature or webhooks.sign(secret, msg_id, ts, body),
        }
        for h in omit:
            del headers[h]
        req = urllib.request.Request(url or self.url, data=sent_body or body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req) as res:
                status, data, allow = res.status, res.read(), None
        except urllib.error.HTTPError as e:
            status, data, allow = e.code, e.read(), e.headers.get("Allow")
        self.last_allow = allow
        return status, json.loads(data) if data else None

    def users(self):
        with closing(app.connect(self.store)) as db:
            return app.dump(db)["users"]


class AppTest(Base):
    def test_login_registers_the_user_and_is_answered_with_claims(self):
        login = self.event("login", first_login=True)
        self.assertEqual(self.send(login), (200, {"uid": "1", "role": "member"}))
        bob = self.event("login", openid="o-bob", unionid=None, sid="s-2")
        self.assertEqual(self.send(bob), (200, {"uid": "2", "role": "member"}))
        users = self.users()
        self.assertEqual(users["o-alice"], {
            "uid": "1", "openid": "o-alice", "unionid": "u-alice", "role": "member", "banned": False,
            "logins": 1, "last_login": login["time"], "sessions": {"s-1": {"login": login["time"]}},
        })
        self.assertNotIn("unionid", users["o-bob"])

    def test_phone_decrypt_logout_are_stored_and_set_no_claims(self):
        login = self.event("login")
        self.send(login)
        phone = self.event("phone", phone={"phoneNumber": "+86 139", "purePhoneNumber": "139", "countryCode": 86})
        self.assertEqual(self.send(phone), (204, None))
        data = {"openId": "o-alice", "nickName": "alice", "city": "Guangzhou"}
        decrypt = self.event("decrypt", data=data)
        self.assertEqual(self.send(decrypt), (204, None))
        logout = self.event("logout")
        self.assertEqual(self.send(logout), (204, None))
        u = self.users()["o-alice"]
        self.assertEqual(u["phone"], {"phoneNumber": "+86 139", "purePhoneNumber": "139", "countryCode": "86",
                                      "sid": "s-1", "time": phone["time"]})
        self.assertEqual(u["profile"], {"data": data, "sid": "s-1", "time": decrypt["time"]})
        self.assertEqual(u["sessions"], {"s-1": {"login": login["time"], "logout": logout["time"]}})
        self.assertEqual(u["logins"], 1)
        self.assertEqual(self.send(self.event("login", openid="o-bob")), (200, {"uid": "2", "role": "member"}))

    def test_a_replayed_webhook_id_is_applied_once(self):
        login = self.event("login")
        first = self.send(login)
        self.assertEqual(first[0], 200)
        # The same delivery again, and a retry signed later with the same id.
        self.assertEqual(self.send(login), first)
        self.clock += 60
        self.assertEqual(self.send(login), first)
        self.assertEqual(self.users()["o-alice"]["logins"], 1)

        phone = self.event("phone", phone={"phoneNumber": "1", "purePhoneNumber": "1", "countryCode": "86"})
        self.send(phone)
        other = dict(phone, phone={"phoneNumber": "2", "purePhoneNumber": "2", "countryCode": "86"})
        self.assertEqual(self.send(other), (204, None))
        self.assertEqual(self.users()["o-alice"]["phone"]["phoneNumber"], "1")

    def test_seen_ids_are_forgotten_after_a_day(self):
        login = self.event("login")
        self.send(login)
        self.clock += app.SEEN_FOR + 1
        self.send(self.event("logout"))
        with closing(app.connect(self.store)) as db:
            ids = [r[0] for r in db.execute("SELECT id FROM seen")]
        self.assertEqual(ids, [f"evt_{self.n}"])

    def test_the_signature_is_hmac_sha256_of_id_timestamp_body(self):
        login = self.event("login")
        body = json.dumps(login).encode()
        signed = f"{login['id']}.{self.clock}.".encode() + body
        mac = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
        # Several signatures may be sent (key rotation); one that matches is enough.
        self.assertEqual(self.send(login, body=body, signature="v1,c29tZXRoaW5nIGVsc2U= v1," + mac)[0], 200)

    def test_timestamps_up_to_5_minutes_off_are_accepted(self):
        self.assertEqual(self.send(self.event("login"), ts=NOW - 300)[0], 200)
        self.assertEqual(self.send(self.event("login"), ts=NOW + 300)[0], 200)

    def test_refused_without_a_valid_signature(self):
        login = self.event("login")
        other = "whsec_" + base64.b64encode(b"another secret, another app....").decode()
        mallory = json.dumps(dict(login, openid="o-mallory")).encode()
        cases = [
            ("signed with another secret", {"secret": other}, 401),
            ("body changed after signing", {"sent_body": mallory}, 401),
            ("timestamp 301 s old", {"ts": NOW - 301}, 401),
            ("timestamp 301 s ahead", {"ts": NOW + 301}, 401),
            ("timestamp not a number", {"ts": "yesterday"}, 401),
            ("signature of another version", {"signature": "v2," + "A" * 44}, 401),
            ("no webhook-id", {"omit": ["webhook-id"]}, 400),
            ("no webhook-timestamp", {"omit": ["webhook-timestamp"]}, 400),
            ("no webhook-signature", {"omit": ["webhook-signature"]}, 400),
        ]
        for name, opts, status in cases:
            with self.subTest(name):
                got, body = self.send(login, **opts)
                self.assertEqual(got, status)
                self.assertIsInstance(body["error"], str)
        self.assertEqual(self.users(), {})
        # The refusals did not use up the id: the genuine event still applies.
        self.assertEqual(self.send(login)[0], 200)

    def test_malformed_events(self):
        self.assertEqual(self.send(None, body=b"not json", msg_id="evt_x1")[0], 400)
        self.assertEqual(self.send(None, body=b"[1,2]", msg_id="evt_x2")[0], 400)
        self.assertEqual(self.send(self.event("login", openid=""))[0], 400)
        self.assertEqual(self.send(self.event("phone", phone="x"))[0], 400)
        self.assertEqual(self.send(self.event("decrypt"))[0], 400)
        self.assertEqual(self.send(self.event("login", sid=7))[0], 400)
        self.assertEqual(self.send(self.event("login", time="soon"))[0], 400)
        self.assertEqual(self.send(self.event("future_event")), (204, None))
        self.assertEqual(self.users(), {})

    def test_path_method_size(self):
        ev = self.event("login")
        self.assertEqual(self.send(ev, url=self.url.replace("/wxauth", "/other"))[0], 404)
        self.assertEqual(self.send(ev, method="GET", sent_body=b"")[0], 405)
        self.assertEqual(self.last_allow, "POST")
        big = self.event("decrypt", data={"blob": "x" * 70_000})
        self.assertEqual(self.send(big)[0], 413)

    def test_a_banned_user_is_refused_at_login(self):
        self.send(self.event("login"))
        with closing(app.connect(self.store)) as conn, app.Transaction(conn) as db:
            db.execute("UPDATE users SET banned = 1")
        self.assertEqual(self.send(self.event("login", sid="s-2")), (403, {"error": "banned"}))
        u = self.users()["o-alice"]
        self.assertEqual(u["logins"], 1)
        self.assertEqual(list(u["sessions"]), ["s-1"])


class WxauthStandIn:
    """Verifies app_api calls the way wxauth does and records them."""

    def __init__(self, t, status=204):
        self.calls = []
        seen = set()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                msg_id = self.headers.get("webhook-id")
                try:
                    webhooks.verify(SECRET, self.headers, body, time.time())
                    assert msg_id not in seen and self.path == "/wx/app"
                except (webhooks.MissingHeaders, webhooks.BadSignature, AssertionError) as e:
                    stand_in.calls.append({"refused": repr(e)})
                    self.send_response(401)
                    self.end_headers()
                    return
                seen.add(msg_id)
                call = json.loads(body)
                stand_in.calls.append(call)
                answer = b"" if status == 204 else b'{"error":"invalid_signature"}'
                code = status
                if call.get("action") == "access_token" and status == 204:
                    # tok-1 until the app reports it stale, then tok-2.
                    token = "tok-2" if call.get("stale") else "tok-1"
                    answer = json.dumps({"access_token": token, "expires_at": int(time.time()) + 7200}).encode()
                    code = 200
                self.send_response(code)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.url = serve(t, ThreadingHTTPServer(("127.0.0.1", 0), Handler)) + "/wx/app"


class AdminTest(Base):
    def admin(self, env, *argv):
        out = io.StringIO()
        code = app.main(list(argv), env, out=out, err=out)
        return code, out.getvalue()

    def test_role_and_ban_change_the_store_and_call_app_api_signed(self):
        api = WxauthStandIn(self)
        env = {"WXAUTH_SECRET": SECRET, "WXAUTH_API": api.url, "STORE": self.store}
        self.send(self.event("login"))

        self.assertEqual(self.admin(env, "role", "o-alice", "editor")[0], 0)
        self.assertEqual(api.calls, [{"action": "set_claims", "openid": "o-alice", "claims": {"role": "editor"}}])
        self.assertEqual(self.send(self.event("login"))[1], {"uid": "1", "role": "editor"})

        self.assertEqual(self.admin(env, "ban", "o-alice")[0], 0)
        self.assertEqual(api.calls[1:], [{"action": "end_sessions", "openid": "o-alice"}])
        self.assertEqual(self.send(self.event("login"))[0], 403)

        self.assertEqual(self.admin(env, "unban", "o-alice")[0], 0)
        self.assertEqual(len(api.calls), 2, "unban only changes the store")
        self.assertEqual(self.send(self.event("login"))[0], 200)

    def test_an_unknown_user_or_a_refused_call_fails_loudly(self):
        api = WxauthStandIn(self, status=401)
        env = {"WXAUTH_SECRET": SECRET, "WXAUTH_API": api.url, "STORE": self.store}
        code, out = self.admin(env, "ban", "o-nobody")
        self.assertEqual((code, "no user o-nobody" in out), (1, True), out)
        self.assertEqual(api.calls, [])
        self.send(self.event("login"))
        code, out = self.admin(env, "ban", "o-alice")
        self.assertEqual((code, "end_sessions: 401" in out), (1, True), out)
        code, out = self.admin(env, "role", "o-alice")
        self.assertEqual((code, "usage" in out), (2, True), out)
        code, out = self.admin({"STORE": self.store}, "ban", "o-alice")
        self.assertEqual((code, "WXAUTH_SECRET" in out), (2, True), out)

    def test_notify_sends_a_subscribe_message_with_wxauths_access_token(self):
        """When WeChat refuses the token, the app reports it stale once and
        sends with the next one."""
        api = WxauthStandIn(self)
        sent = []

        class WeChat(BaseHTTPRequestHandler):
            def do_POST(self):
                msg = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                url = urllib.parse.urlsplit(self.path)
                token = urllib.parse.parse_qs(url.query)["access_token"][0]
                sent.append(token)
                errcode = 0
                if url.path != "/cgi-bin/message/subscribe/send" or msg["touser"] != "o-alice" or msg["template_id"] != "tmpl":
                    errcode = 47001
                elif token != "tok-2":
                    errcode = 40001
                answer = json.dumps({"errcode": errcode}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        wechat = serve(self, ThreadingHTTPServer(("127.0.0.1", 0), WeChat))
        env = {"WXAUTH_SECRET": SECRET, "WXAUTH_API": api.url, "WECHAT_API": wechat}
        code, out = self.admin(env, "notify", "o-alice", "tmpl", "shipped")
        self.assertEqual(code, 0, out)
        self.assertEqual(api.calls, [{"action": "access_token"}, {"action": "access_token", "stale": "tok-1"}])
        self.assertEqual(sent, ["tok-1", "tok-2"])
        # Any other errcode is an error.
        code, out = self.admin(env, "notify", "o-bob", "tmpl", "x")
        self.assertEqual((code, "47001" in out), (1, True), out)

    def test_dump_prints_the_store(self):
        self.send(self.event("login"))
        code, out = self.admin({"STORE": self.store}, "dump")
        self.assertEqual(code, 0)
        self.assertEqual(json.loads(out)["users"]["o-alice"]["uid"], "1")


if __name__ == "__main__":
    unittest.main()
