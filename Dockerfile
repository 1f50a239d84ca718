# Tenure's API, worker and scheduler image: one image, three commands (see docker-compose.yml).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY tenure tenure
# The exact versions the test suite passed on, not whatever is newest at build time.
# otel: traces when OTEL_* names an exporter (core/tracing.py); idle otherwise.
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt ".[postgres,redis,otel]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TENURE_LOG_FORMAT=json
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin tenure
USER tenure
WORKDIR /home/tenure
EXPOSE 8000
# The API answers /healthz without touching the database; worker and scheduler containers
# override this check in docker-compose.yml.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TENURE_PORT', '8000') + '/healthz', timeout=2)"
CMD ["tenure", "serve", "--host", "0.0.0.0"]
