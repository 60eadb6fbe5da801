# One image for every process type (web, worker, beat, flower); docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 chathooks \
 && useradd --system --uid 10001 --gid chathooks --create-home --home-dir /home/chathooks --shell /usr/sbin/nologin chathooks

WORKDIR /srv

COPY pyproject.toml README.md ./
COPY chathooks ./chathooks
COPY app ./app
COPY workers ./workers
COPY cli ./cli
RUN pip install . && rm -rf build *.egg-info

# gunicorn reads gunicorn.conf.py from the working directory.
COPY Procfile gunicorn.conf.py ./

USER 10001:10001

EXPOSE 8000 5555

# The Procfile's web line; `exec` so gunicorn is PID 1 and receives SIGTERM from `docker stop`.
CMD ["sh", "-c", "exec gunicorn --bind ${HOST:-0.0.0.0}:${PORT:-8000} --workers ${WEB_CONCURRENCY:-2} --access-logfile - 'app:create_app()'"]
