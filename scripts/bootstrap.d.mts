/** Types of scripts/bootstrap.mjs, for the tests (the script itself runs before any build). */
export declare const SUPPORTED: string
export declare function nodeSupported (version: string): boolean
export declare function nodeWarning (version: string): string | undefined
export declare function bootstrapMode (env: Record<string, string | undefined>, hasConfigFile: boolean): 'demo' | 'real'
export declare function urlFor (host: string, port: string): string
export declare function fingerprint (root: string, paths: string[]): string
export declare function plan (root: string): { install: { needed: boolean, print: string }, build: { needed: boolean, print: string } }
export interface BootstrapIo {
  root: string
  env: Record<string, string | undefined>
  version: string
  platform: string
  out: (text: string) => void
  err: (text: string) => void
  run: (command: string, args: string[]) => number
  start: (env: Record<string, string | undefined>) => Promise<boolean>
}
export declare function main (io: BootstrapIo): Promise<number | undefined>
