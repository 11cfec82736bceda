# marketplace-gateway: the gateway as a container. Build: docker build -t marketplace-gateway .
# Run:   docker run -p 8080:8080 marketplace-gateway serve --listen 0.0.0.0:8080
# The build stage has a C compiler (the full python image), so the wheel carries the optional
# rewrite accelerator; without one (e.g. python:3.11-slim here) it builds in pure Python. The
# final stage installs the wheel and has no compiler.
FROM python:3.11 AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY gateway ./gateway
COPY rewrite_rules ./rewrite_rules
COPY specs ./specs
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[fast]'

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
# /wheels holds exactly the wheels built above: this checkout and the dependencies pip chose.
RUN pip install --no-cache-dir --no-index /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin gateway
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["gateway"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
