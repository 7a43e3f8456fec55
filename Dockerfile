# syntax=docker/dockerfile:1
# foldstream as a container image (docs/container.md). Three stages: `build` compiles src/ to dist/ with the dev
# dependencies, `deps` installs the production dependencies alone, and the runtime image gets those two and nothing
# else: no sources, no tests, no TypeScript compiler. A topology is mounted (or baked into a derived image) at
# /topology; its own .ts modules load through tsx, a production dependency (src/processors/module-loader.ts).
#
#   docker build -t foldstream .
#   docker run -v "$PWD:/topology:ro" -v foldstream-state:/var/lib/foldstream foldstream            # run /topology/topology.yaml
#   docker run -v "$PWD:/topology:ro" foldstream validate /topology/topology.yaml
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied; the native modules (classic-level,
# msgpackr-extract, esbuild) ship prebuilt binaries for linux-x64 and linux-arm64 and need no install script.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# dist/ as it runs: the type declarations and source maps point at sources the image does not have
RUN npm run build && find dist \( -name '*.d.ts' -o -name '*.map' \) -delete

FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
# (npm leaves an empty folder for each scope that only dev dependencies use: removed)
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && find node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete \
 && npm cache clean --force

FROM ${NODE_IMAGE}
# tini as PID 1: it passes SIGTERM and SIGINT on to Node (which drains and exits 0) and reaps orphans. Node as PID 1
# would ignore a SIGTERM that comes before its handler is installed (the kernel drops signals to PID 1 that it has
# no handler for), so a container stopped while it starts would wait for the kill timeout.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
ENV NODE_ENV=production \
    STATE_DIR=/var/lib/foldstream \
    HTTP_PORT=9464
WORKDIR /app
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json topology.schema.json ./
COPY bin ./bin
# `foldstream` on the PATH; /node_modules/foldstream lets a topology's modules anywhere in the image (/topology)
# `import { DomainError } from 'foldstream'`, as they would with the package installed beside them.
RUN ln -s /app/bin/foldstream.js /usr/local/bin/foldstream \
 && mkdir -p /node_modules "$STATE_DIR" /topology \
 && ln -s /app /node_modules/foldstream \
 && chown node:node "$STATE_DIR"
USER node
VOLUME ["/var/lib/foldstream"]
EXPOSE 9464
# /healthz: 200 while the process runs (it needs no token); readiness is /readyz (see deploy/kubernetes/). Asked with
# bash alone: starting a second Node for it would take seconds on a busy machine.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${HTTP_PORT:-9464} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r status <&3 && [[ $status == *' 200 '* ]]"]
ENTRYPOINT ["tini", "--", "foldstream"]
CMD ["run", "/topology/topology.yaml"]

ARG VERSION=0.1.0
ARG SOURCE=""
LABEL org.opencontainers.image.title="foldstream" \
      org.opencontainers.image.description="Kafka Streams-style stream processor for event sourcing and CQRS, exactly once" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}"
