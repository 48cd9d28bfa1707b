# The worker and API image. Build: docker build -t handoff .   (docker-compose.yml builds it too)
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/web ./web
COPY --from=build /app/package.json ./package.json
RUN mkdir -p /var/lib/handoff && chown node:node /var/lib/handoff
USER node
EXPOSE 3000
CMD ["node", "dist/api/main.js"]
