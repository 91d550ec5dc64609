FROM python:3.11-slim
WORKDIR /app
# Debian's Chromium for template preview images (without it the admin says "previews unavailable").
RUN apt-get update && apt-get install -y --no-install-recommends chromium && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY . .
RUN pip install --no-cache-dir -e .
ENV COMMS_VAR_DIR=/app/var PYTHONUNBUFFERED=1
EXPOSE 8000
