"""The development server: `python run.py` (honours HOST and PORT).

Production: `gunicorn -c gunicorn.conf.py "blog_api:create_app()"`.

Werkzeug's own request line is left out: the app writes one line a request with its trace id
(ACCESS_LOG), as it does under gunicorn.
"""

import os

from werkzeug.serving import WSGIRequestHandler

from blog_api import create_app
from telemetry.logs import log_uncaught_exceptions


class RequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without its request line (errors are still logged)."""

    def log_request(self, code="-", size="-") -> None:
        return


if __name__ == "__main__":
    os.environ.setdefault("APP_ENV", "development")
    log_uncaught_exceptions()
    app = create_app()
    app.run(
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "5000")),
        request_handler=RequestHandler,
    )
