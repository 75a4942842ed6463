"""The floor for P3: a hello-world function under functions-framework (its own CLI and gunicorn server)."""

import flask
import functions_framework


@functions_framework.http
def hello(request: flask.Request) -> str:
    return "hello"
