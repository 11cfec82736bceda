# marketplace-gateway: the gateway as a container. Build: docker build -t marketplace-gateway .
# Run:   docker run -p 8080:8080 marketplace-gateway
#        docker run -p 8080:8080 -e GATEWAY_MARKETPLACE_UPSTREAM=... marketplace-gateway
# Settings: GATEWAY_* variables, a config file (GATEWAY_CONFIG), or flags after `serve`.
# The build stage has a C compiler (the full python image), so the wheel carries the optional
# rewrite accelerator; without one (e.g. the slim image) it builds in pure Python. The final
# stage installs the wheel and has no compiler.
#
# Base images are pinned by version tag: the same Python patch release and Debian release in
# both stages, so a rebuild months later gets the same interpreter. To update, pick the newest
# tag of https://hub.docker.com/_/python of the form <3.11.N>-bookworm (it has a matching
# <3.11.N>-slim-bookworm), change PYTHON_VERSION below, rebuild, and run the test suite
# against the image; a new Debian release changes the -bookworm suffix in both FROM lines.
# tests/test_dockerfile.py checks that both stages use the one pinned version.
ARG PYTHON_VERSION=3.11.13

FROM python:${PYTHON_VERSION}-bookworm AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY gateway ./gateway
COPY rewrite_rules ./rewrite_rules
COPY specs ./specs
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[fast]'

FROM python:${PYTHON_VERSION}-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_LISTEN=0.0.0.0:8080
COPY --from=build /wheels /wheels
# /wheels holds exactly the wheels built above: this checkout and the dependencies pip chose.
RUN pip install --no-cache-dir --no-index /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin gateway
USER 10001:10001
EXPOSE 8080
# `gateway healthcheck` reads the configuration as `serve` does (the variables, the file) and
# the flags of the `gateway serve` running as PID 1, then asks /healthz on the listener they
# configure: another port, --tls-cert (HTTPS) or --tls-listen are followed. No curl needed.
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["gateway", "healthcheck", "--pid", "1"]
ENTRYPOINT ["gateway"]
CMD ["serve"]
