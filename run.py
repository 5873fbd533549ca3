"""The development server: `python run.py` (honours HOST and PORT).

Production: `gunicorn -c gunicorn.conf.py "blog_api:create_app()"`.
"""

import os

from blog_api import create_app

if __name__ == "__main__":
    os.environ.setdefault("APP_ENV", "development")
    app = create_app()
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")))
