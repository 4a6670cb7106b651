#!/usr/bin/env node
/**
 * The peer of `npm run bench`: a bare Fastify app with one JSON route, `GET /token`, answering
 * the body given in BARE_BODY (the sidecar's own answer, so both send the same bytes). Started as
 * `node scripts/bench-bare.mjs`, as the sidecar is started as `node dist/server.js`.
 */
import Fastify from 'fastify'

const body = JSON.parse(process.env.BARE_BODY ?? '{}')
const app = Fastify()
app.get('/token', async () => body)
const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
console.log(`listening on ${address}`)
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
