"""End to end: this app behind a real Caddy that runs ../Caddyfile (wxauth with
app_hook and app_api, wxmock standing in for WeChat). A user logs in (the
login event reaches the app's store), and the notify command sends a
subscribe message with wxauth's access_token, before and after WeChat
expired every token.

Caddy is $CADDY_BIN when set, else built from the repository's ./cmd/caddy.
Every port is picked at run time.

    python3 -m unittest -v e2e_test
"""

import base64
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import app

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.join(HERE, "..", "..", "..")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        raw = res.read()
        return res.status, json.loads(raw) if raw else None


def eventually(what, fn, seconds, proc):
    deadline = time.time() + seconds
    while True:
        try:
            v = fn()
            if v:
                return v
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"{what}: process exited ({proc.returncode})")
        if time.time() > deadline:
            raise AssertionError(f"{what}: not within {seconds}s")
        time.sleep(0.1)


class E2ETest(unittest.TestCase):
    def start(self, argv, env, cwd):
        log = tempfile.TemporaryFile(dir=self.tmp.name)
        p = subprocess.Popen(argv, env={**os.environ, **env}, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)

        def stop():
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()

        self.addCleanup(stop)
        p.log = log
        return p

    def output(self, p):
        p.log.seek(0)
        return p.log.read().decode(errors="replace")

    def test_login_and_notify(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        store = os.path.join(self.tmp.name, "users.db")
        env = {"WXAUTH_SECRET": secret, "STORE": store}
        py = self.start([sys.executable, "app.py"], {**env, "PORT": "0"}, HERE)
        port = eventually("the app prints its port", lambda: (
            self.output(py).split("listening on http://127.0.0.1:")[1].split("/")[0]
            if "listening on" in self.output(py) else None), 10, py)

        caddy_bin = os.environ.get("CADDY_BIN")
        if not caddy_bin:
            caddy_bin = os.path.join(self.tmp.name, "caddy")
            subprocess.run(["go", "build", "-o", caddy_bin, "./cmd/caddy"], cwd=REPO, check=True,
                           env={"GOTOOLCHAIN": "local", **os.environ})
        mock_port, site_port = free_port(), free_port()
        site, mock = f"http://127.0.0.1:{site_port}", f"http://127.0.0.1:{mock_port}"
        caddy = self.start([caddy_bin, "run", "--config", os.path.join(HERE, "..", "Caddyfile"), "--adapter", "caddyfile"], {
            **env, "ADMIN_PORT": str(free_port()), "MOCK_PORT": str(mock_port), "SITE_PORT": str(site_port),
            "APP_PORT": port, "XDG_DATA_HOME": os.path.join(self.tmp.name, "data"),
            "XDG_CONFIG_HOME": os.path.join(self.tmp.name, "config"),
        }, self.tmp.name)
        try:
            eventually("caddy answers /healthz", lambda: http("GET", site + "/healthz")[0] == 200, 60, caddy)
        except AssertionError as e:
            raise AssertionError(f"{e}:\n{self.output(caddy)[-8000:]}") from None

        # Log in: the login event registers the user in the app's store.
        _, got = http("GET", mock + "/wxmock/login?user=carol")
        status, login = http("POST", site + "/wx/login", {"code": got["code"]})
        self.assertEqual(status, 200, login)
        out = io.StringIO()
        self.assertEqual(app.main(["dump"], env, out=out), 0)
        self.assertEqual(json.loads(out.getvalue())["users"][login["openid"]]["logins"], 1)

        def notify(text):
            out = io.StringIO()
            code = app.main(["notify", login["openid"], "tmpl-welcome", text],
                            {**env, "WXAUTH_API": site + "/wx/app", "WECHAT_API": mock}, out=out, err=out)
            self.assertEqual(code, 0, out.getvalue())

        def sent():
            return http("GET", mock + "/wxmock/stats")[1]["subscribe_send"]

        # A subscribe message with wxauth's access_token; after WeChat expired
        # every token, the app reports its token stale and sends again.
        notify("welcome")
        notify("welcome")
        self.assertEqual(sent(), 2)
        self.assertEqual(http("POST", mock + "/wxmock/expire_tokens")[0], 204)
        notify("welcome again")
        self.assertEqual(sent(), 4, "refused once, then sent")


if __name__ == "__main__":
    unittest.main()
