/**
 * The token page: `GET /` and its two assets. Registered in the guarded scope of `app.ts`, so the
 * forwarded, required-header, Host and cross-site rules apply; the caller secret does not (a
 * browser's navigation cannot send it), which is why these routes carry no token when a secret is
 * set: the page's script then asks for the secret and gets tokens from `/token`, which checks it.
 *
 * Assets are read once, at start, from `../views/assets/` next to this file (in `src/` and, after
 * `npm run build` copies them, in `dist/`), and served from memory.
 */
import { readFile } from 'node:fs/promises'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { toSidecarError } from '../errors.js'
import { PAGE_ASSETS } from '../package-files.js'
import { renderPage, type ErrorView, type PageModel } from '../views/page.js'
import { errorResponses, selectorQuerySchema } from './schemas.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Serves no token: the guard in `app.ts` skips the caller-secret check (every other access
     * rule still applies). Only the page's HTML shell and its assets.
     */
    public?: boolean
  }
}

export interface PageRoutesOptions {
  /** Shown in the page's header. */
  version: string
}

/**
 * Everything a browser may do with the page: its own script, style and fetches, nothing inline,
 * nothing from elsewhere, never in a frame.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'"
].join('; ')

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // The page may hold a token; the assets are small and change with every build.
  'cache-control': 'no-store'
} as const

const ASSETS = {
  'page.css': 'text/css; charset=utf-8',
  'page.js': 'text/javascript; charset=utf-8'
} as const

const textResponse = (type: string, description: string) =>
  ({ 200: { description, content: { [type]: { schema: { type: 'string' } } } }, ...errorResponses })

/** An error from the token cache as the JSON API would answer it. */
export function errorView (caught: unknown): ErrorView {
  const error = toSidecarError(caught)
  if (error !== undefined) {
    return {
      statusCode: error.statusCode,
      code: error.code,
      message: error.message,
      ...(error.coze === undefined ? {} : { coze: error.coze })
    }
  }
  return { statusCode: 500, code: 'INTERNAL_ERROR', message: 'internal error' }
}

export async function pageRoutes (app: FastifyInstance, options: PageRoutesOptions): Promise<void> {
  const assets = new Map<string, string>()
  for (const name of Object.keys(ASSETS)) assets.set(name, await readFile(new URL(name, PAGE_ASSETS), 'utf8'))

  // onSend, so that errors from these routes (a refused Host, say) carry the headers too.
  app.addHook('onSend', async (_request, reply: FastifyReply, payload) => {
    reply.headers(SECURITY_HEADERS)
    return payload
  })

  app.get('/', {
    config: { public: true },
    schema: {
      summary: 'The token page',
      description: 'HTML: the app, the default token (masked) and its expiry; without a token when a caller secret is set.',
      querystring: { type: 'object', additionalProperties: false, properties: { app: selectorQuerySchema.properties.app } },
      response: textResponse('text/html', 'The page.')
    }
  }, async (request, reply) => {
    const config = app.config
    const registry = app.credentials
    const apps = registry.names()
    // The credential asked for, else the default, else the first: a picker shows the others.
    const credential = registry.select((request.query as { app?: string }).app ?? registry.defaultName ?? apps[0])
    const authRequired = app.callers !== undefined
    let current: PageModel['current']
    if (!authRequired) {
      try {
        const token = await credential.tokens.get(credential.defaultRequest, config.requestDeadlineMs)
        current = { token: { accessToken: token.accessToken, ...(token.expiresIn === undefined ? {} : { expiresIn: token.expiresIn }), stale: token.stale } }
      } catch (error) {
        const view = errorView(error)
        if (view.code === 'INTERNAL_ERROR') request.log.error({ reqId: request.id, err: error }, 'unexpected error')
        current = { error: view }
      }
    }
    const spec = credential.spec
    const page = renderPage({
      app: credential.name,
      apps,
      ...(spec.kind === 'jwt' ? { appId: spec.appId } : {}),
      apiBase: spec.apiBase,
      defaultRequest: credential.defaultRequest,
      demo: config.demo,
      gateway: config.settings.SIDECAR_GATEWAY === 'on',
      authRequired,
      ...(current === undefined ? {} : { current }),
      host: request.headers.host as string, // the guard refuses requests without one
      version: options.version
    })
    return reply.type('text/html; charset=utf-8').send(page.value)
  })

  for (const [name, type] of Object.entries(ASSETS)) {
    const body = assets.get(name) as string
    app.get(`/assets/${name}`, {
      config: { public: true },
      // Static files, not API: kept out of /openapi.json.
      schema: { hide: true, summary: `The token page's ${name}`, response: textResponse(type.split(';')[0] as string, name) }
    }, async (_request, reply) => reply.type(type).send(body))
  }
}
