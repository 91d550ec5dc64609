FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY . .
RUN pip install --no-cache-dir -e .
ENV COMMS_VAR_DIR=/app/var PYTHONUNBUFFERED=1
EXPOSE 8000
