# coze-token-sidecar as a container image. The README's "Docker" section says how to run it.
#
#   docker build -t coze-token-sidecar .
#
# The private key and coze_oauth_config.json are never part of the image: mount them read-only at
# run time (.dockerignore keeps them, and everything else but the sources, out of the context).

# Build: every dependency, dev ones included, to compile src/ into dist/ and bundle the service
# into dist/server.js (scripts/bundle.mjs: esbuild, whose binary comes in its npm package).
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency needs an install script; skipping them keeps a compromised package from running
# code at build time.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/bundle.mjs ./scripts/
RUN npm run build

# Production dependencies only, in a stage of their own so that npm's cache stays out of the image.
FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# Run: the production dependencies and dist/, owned by root so that the service cannot change its
# own code; package.json for "type": "module".
FROM node:22-bookworm-slim
ENV HOST=0.0.0.0 PORT=8080 NODE_ENV=production
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The image's `node` user, by number so that Kubernetes' runAsNonRoot can check it without a
# runAsUser of its own.
USER 1000:1000
EXPOSE 8080
# The probe is bash's /dev/tcp: the slim image has no curl or wget, and a second node process
# per check would cost ~40 MiB. It asks loopback on the configured PORT,
# which answers for HOST=0.0.0.0 (the default here) and HOST=127.0.0.1 alike. Every 3 s, so that
# `docker ps` shows healthy within a few seconds of a working start (--start-interval would do
# it with a longer interval after, but needs Docker 25; Debian's engine is 20.10).
HEALTHCHECK --interval=3s --timeout=2s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-8080} && printf 'GET /healthz HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r -t 2 status <&3 && [[ $status == 'HTTP/1.1 200 '* ]]"]
# Exec form: node is PID 1 and gets SIGTERM itself (src/server.ts drains and exits 0). `docker run
# --init` is still recommended, so that a zombie child process is always reaped.
CMD ["node", "dist/server.js"]
