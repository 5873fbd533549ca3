"""Extensions created unbound here and bound to an app in the factory."""

from flask_bcrypt import Bcrypt
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base for every model."""


# A request's session ends with the request: objects stay readable after a commit (the response
# is built from them) without a second SELECT to refresh what the write just sent.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
bcrypt = Bcrypt()
