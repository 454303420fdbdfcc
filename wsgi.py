"""gunicorn's entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``."""
from app import create_app
from config.pinned import pinned

# The configuration the gunicorn master validated (None outside gunicorn: the environment's).
app = create_app(pinned())
