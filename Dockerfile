# tidings as a container image: docs/deploy.md, "Containers". Thin on purpose: the install is
# the Makefile's (`make serve`), line for line — tests/test_container.py checks that it stays so.
#
#   docker build -t tidings .
#   docker run --rm -p 8000:8000 tidings          # embedded: SQLite in /var/lib/tidings
#
# Settings are TIDINGS_* environment variables (README, "Settings"); deploy/compose.yaml runs
# two instances behind nginx with PostgreSQL and Redis.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

# The server runs as this unprivileged user; the code below stays root's (read-only to it).
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/tidings tidings

WORKDIR /app
# The hashed lock first, so the dependency layer is rebuilt only when the lock changes.
COPY requirements/lock.txt requirements/lock.txt
RUN python3 -m venv .venv
RUN .venv/bin/python -m pip --disable-pip-version-check -q install --require-hashes -r requirements/lock.txt
COPY pyproject.toml README.md ./
COPY src ./src
RUN .venv/bin/python -m pip --disable-pip-version-check -q install --no-deps -e .
ENV PATH=/app/.venv/bin:$PATH

USER tidings
# The working directory is the embedded store's home (TIDINGS_DATABASE_URL's default
# sqlite+aiosqlite:///./tidings.db); mount a volume here to keep it.
WORKDIR /var/lib/tidings
ENV TIDINGS_ENV=production
EXPOSE 8000

# Ready: the store answers and the instance is not shutting down (GET /readyz is 200).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]

# SIGTERM (docker stop): every stream gets `bye` with a short retry hint, then exit 0.
STOPSIGNAL SIGTERM
CMD ["tidings", "serve", "--host", "0.0.0.0", "--port", "8000"]
