"""Flask routes in front of the demo authorization server (`/demo/oauth/*`)."""

from __future__ import annotations

import re

import flask
from markupsafe import escape
from werkzeug.wrappers import Response as WerkzeugResponse

from shared.local.demo_oauth import DemoAuthServer, DemoOAuthError

AUTHORIZE_PARAMS = ("client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge",
                    "code_challenge_method")  # fmt: skip

LOGIN_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")  # fullmatch; the page's `pattern` says the same (below)
# HTML `pattern` is compiled with the `v` flag, where a `-` in a class must be escaped ([._-] is an invalid regex:
# the browser then drops the check): the same rule written for it.
LOGIN_PATTERN = r"[A-Za-z0-9._\-]{1,64}"

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Demo provider: sign in</title>
<link rel="stylesheet" href="/connect/assets/connect.css"></head>
<body><main><div class="card">
<h1>Demo provider</h1><p>An application asks for access to your demo account{scope}.</p>
<form method="post" action="/demo/oauth/authorize" class="credentials">{hidden}
<label>Sign in as <input name="login" value="demo-user" pattern="{pattern}" required
  aria-describedby="login-hint" autocomplete="username">
<span class="hint" id="login-hint">1-64 letters, digits, dots, dashes or underscores.</span></label>
<div class="actions"><button class="primary" name="decision" value="approve">Approve</button>
<button name="decision" value="deny" formnovalidate>Deny</button></div>
</form></div></main></body></html>"""


def _bad_request(description: str) -> flask.Response:
    page = f"<!doctype html><title>Bad request</title><h1>Bad authorization request</h1><p>{escape(description)}</p>"
    return flask.Response(page, 400, mimetype="text/html")


def _oauth_error(error: DemoOAuthError) -> flask.Response:
    response = flask.jsonify(error.body())
    response.status_code = error.status
    response.headers["Cache-Control"] = "no-store"
    return response


def demo_blueprint(server: DemoAuthServer) -> flask.Blueprint:
    bp = flask.Blueprint("demo_oauth", __name__, url_prefix="/demo/oauth")

    @bp.get("/authorize")
    def authorize() -> flask.Response | str:
        params = {k: flask.request.args[k] for k in AUTHORIZE_PARAMS if k in flask.request.args}
        try:
            server.check_authorization(params)
        except DemoOAuthError as error:
            return _bad_request(error.description)
        hidden = "".join(f'<input type="hidden" name="{k}" value="{escape(v)}">' for k, v in params.items())
        scope = f" (scopes: {escape(params['scope'])})" if params.get("scope") else ""
        return PAGE.format(hidden=hidden, scope=scope, pattern=escape(LOGIN_PATTERN))

    @bp.post("/authorize")
    def decide() -> WerkzeugResponse:
        params = {k: flask.request.form[k] for k in AUTHORIZE_PARAMS if k in flask.request.form}
        login = flask.request.form.get("login", "demo-user")
        try:
            if flask.request.form.get("decision") == "approve":
                if not LOGIN_RE.fullmatch(login):
                    return _bad_request("the login must be 1-64 letters, digits, dots, dashes or underscores")
                return flask.redirect(server.approve(params, login))
            return flask.redirect(server.deny(params))
        except DemoOAuthError as error:
            return _bad_request(error.description)

    @bp.post("/token")
    def token() -> flask.Response:
        auth = flask.request.authorization
        basic = (auth.username or "", auth.password or "") if auth and auth.type == "basic" else None
        try:
            response = flask.jsonify(server.token(flask.request.form.to_dict(), basic))
        except DemoOAuthError as error:
            return _oauth_error(error)
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.get("/userinfo")
    def userinfo() -> flask.Response:
        header = flask.request.headers.get("Authorization", "")
        bearer = header[7:] if header.lower().startswith("bearer ") else None
        try:
            return flask.jsonify(server.userinfo(bearer))
        except DemoOAuthError as error:
            return _oauth_error(error)

    @bp.post("/revoke")
    def revoke() -> flask.Response:
        server.revoke(flask.request.form.get("token", ""))
        return flask.Response(status=200)

    return bp
