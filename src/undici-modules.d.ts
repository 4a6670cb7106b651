// undici's own files that src/undici.ts imports; their types are the index's (undici ships none per file).
declare module 'undici/lib/dispatcher/env-http-proxy-agent.js' { const value: unknown; export default value }
declare module 'undici/lib/dispatcher/dispatcher.js' { const value: unknown; export default value }
declare module 'undici/lib/api/index.js' { const value: object; export default value }
