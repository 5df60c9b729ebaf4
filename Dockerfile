# One image for the API and the worker (docker-compose.yml picks the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY custody ./custody
COPY api ./api
COPY workflows ./workflows
COPY activities ./activities
COPY storage ./storage
COPY reports ./reports
COPY cli ./cli
COPY devstack ./devstack
COPY worker.py ./
RUN pip install --no-cache-dir . && useradd --system --uid 10001 custody
USER custody
EXPOSE 8000
# api.serve, not bare uvicorn: forwarded headers only from CUSTODY_TRUSTED_PROXIES, header and body
# deadlines, tokens redacted from the logs (README, "Serving the API safely").
CMD ["custody", "serve", "--host", "0.0.0.0", "--port", "8000"]
