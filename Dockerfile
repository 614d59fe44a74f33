# valence job runner: the image AWS Batch runs for BatchExecutor nodes.
# Built by `cdk deploy` (a Docker image asset; `cdk synth` only stages the context) from the
# project that holds the workflows module. The job definition's command runs
#   node --import tsx sdk/runtime/job-runner.ts
# (path relative to /app) with the workflows module's path in VALENCE_WORKFLOWS.
FROM public.ecr.aws/docker/library/node:22-bookworm-slim

ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false

WORKDIR /app

# Dependencies first: this layer is reused until the lockfile changes.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

COPY . .

USER node
CMD ["node", "--import", "tsx", "sdk/runtime/job-runner.ts"]
