# feedforward: the API server and its local training workers (SQLite in the /data volume by default).
#
#   docker build -t feedforward .
#   docker run -p 127.0.0.1:8000:8000 -v feedforward-data:/data \
#              -e FEEDFORWARD_API_KEYS="me:$(openssl rand -hex 32)" feedforward
#
# FEEDFORWARD_API_KEYS is required at run time: the server listens on 0.0.0.0 inside the container
# and `feedforward serve` refuses a non-loopback address without keys. Clients that reach it under
# another host name than localhost/127.0.0.1 need that name in FEEDFORWARD_ALLOWED_HOSTS.
# Installation follows README's set-up (a venv, pip install of this project with its extras).
FROM python:3.11-slim

ARG EXTRAS=dask
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv && pip install --upgrade pip
WORKDIR /app

# Dependencies in their own layer: rebuilt only when pyproject.toml changes, not with the source.
COPY pyproject.toml ./
RUN python - "$EXTRAS" > /tmp/requirements.txt <<'PY' && pip install -r /tmp/requirements.txt
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = [name for name in sys.argv[1].split(",") if name]
print("\n".join(project["dependencies"]))
for name in extras:
    print("\n".join(project["optional-dependencies"][name]))
PY

# The source.
COPY README.md alembic.ini ./
COPY engine ./engine
COPY service ./service
COPY migrations ./migrations
RUN pip install --no-deps .

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin feedforward \
    && mkdir -p /data && chown feedforward:feedforward /data
USER feedforward
ENV FEEDFORWARD_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# Migrations first (a no-op when at head), then uvicorn on all interfaces via `feedforward serve`.
CMD ["sh", "-c", "feedforward migrate && exec feedforward serve --host 0.0.0.0 --port 8000"]
