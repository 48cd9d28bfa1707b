# The worker and API image. Build: docker build -t handoff .   (docker-compose.yml builds it too)
# Node 24, the current LTS (Node 20 left support in April 2026). Run: node dist/api/main.js (the default),
# node dist/worker/main.js, node dist/db/migrate.js, or an operator's CLI such as node dist/scripts/token.js.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# Compiled JS, the workflow bundle made once here (the worker then starts without webpack), then only what runs.
RUN npm run build \
  && node dist/scripts/bundle-workflows.js dist/workflow-bundle.js \
  && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js \
    WORKER_HEALTH_FILE=/tmp/handoff-worker.alive
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/web ./web
COPY --from=build /app/package.json ./package.json
RUN mkdir -p /var/lib/handoff && chown node:node /var/lib/handoff
# The image's node user, by number so an orchestrator can verify it is not root; the code stays root's, read-only.
USER 1000:1000
EXPOSE 3000
# The API's: GET /health on its own port. The worker's container overrides it (docker-compose.yml).
HEALTHCHECK --interval=10s --timeout=6s --start-period=20s --retries=3 \
  CMD ["node", "dist/scripts/healthcheck.js", "api"]
CMD ["node", "dist/api/main.js"]
