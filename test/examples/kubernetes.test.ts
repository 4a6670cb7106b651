/**
 * examples/kubernetes/: every manifest is valid against the Kubernetes API schema (the official
 * OpenAPI, as compiled into kubernetes-models' validators, offline), and the pod follows our
 * container policy (anchors §6.15): non-root, read-only root filesystem, no capabilities, the key
 * read-only from a Secret, probes on /healthz and /readyz (strict for startup), resources set.
 *
 * That the probe commands work against the real image is checked by the container test
 * (scripts/container-test.ts, `npm run test:docker`), which runs them in a container.
 */
import { createPrivateKey } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1'
import { Secret, type ISecret, type IContainer, type IProbe } from 'kubernetes-models/v1'

const DIR = new URL('../../examples/kubernetes/', import.meta.url)

/** The kinds the examples use, each with the model that validates it. */
const MODELS: Record<string, { validate: (doc: unknown) => void }> = {
  'apps/v1 Deployment': { validate: (doc) => new Deployment(doc as IDeployment).validate() },
  'v1 Secret': { validate: (doc) => new Secret(doc as ISecret).validate() }
}

/**
 * Every YAML document of a file, parsed as Kubernetes parses it: YAML 1.1 (sigs.k8s.io/yaml), in
 * which `defaultMode: 0440` is octal 288, where YAML 1.2 would read decimal 440.
 */
function documents (file: string): unknown[] {
  const text = readFileSync(new URL(file, DIR), 'utf8')
  return parseAllDocuments(text, { version: '1.1', prettyErrors: true }).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((error) => error.message).join('; ')}`)
    return doc.toJS()
  })
}

const files = readdirSync(DIR).filter((name) => name.endsWith('.yaml')).sort()
const all = files.flatMap((file) => documents(file).map((doc) => ({ file, doc: doc as { apiVersion?: string, kind?: string, metadata?: { name?: string } } })))

t.same(files, ['deployment-socket.yaml', 'deployment.yaml', 'secret.yaml'], 'the example manifests')

t.test('every manifest is valid against the Kubernetes schema', async (t) => {
  for (const { file, doc } of all) {
    const model = MODELS[`${doc.apiVersion} ${doc.kind}`]
    if (model === undefined) {
      t.fail(`${file}: no schema here for ${doc.apiVersion} ${doc.kind}; add its model to MODELS`)
      continue
    }
    t.doesNotThrow(() => model.validate(doc), `${file}: ${doc.kind} ${doc.metadata?.name}`)
  }
})

const deployment = all.find(({ file, doc }) => file === 'deployment.yaml' && doc.kind === 'Deployment')?.doc as IDeployment
const secret = all.find(({ doc }) => doc.kind === 'Secret')?.doc as ISecret
const pod = deployment.spec?.template.spec
const sidecar = pod?.initContainers?.find((container) => container.name === 'coze-token-sidecar')
const app = pod?.containers[0]
const env = (container: IContainer | undefined, name: string): string | undefined => container?.env?.find((entry) => entry.name === name)?.value

t.test('the schema check catches a broken manifest', async (t) => {
  // Each a mistake a hand edit makes; if one passed, the check above would prove nothing.
  const breakages: Record<string, (doc: IDeployment) => void> = {
    'a port by name where a number is needed': (doc) => { doc.spec!.template.spec!.initContainers![0]!.ports![0]!.containerPort = 'http' as unknown as number },
    'a memory limit that is not a quantity': (doc) => { doc.spec!.template.spec!.initContainers![0]!.resources!.limits!.memory = '128 megs' },
    'a container without a name': (doc) => { delete (doc.spec!.template.spec!.containers[0] as Partial<IContainer>).name },
    'readOnlyRootFilesystem: "yes"': (doc) => { (doc.spec!.template.spec!.containers[0]!.securityContext as Record<string, unknown>).readOnlyRootFilesystem = 'yes' },
    'a file mode quoted, as YAML 1.2 tools write it': (doc) => { (doc.spec!.template.spec!.volumes![0]!.secret as Record<string, unknown>).defaultMode = '0440' },
    'no selector': (doc) => { delete (doc.spec as Partial<NonNullable<IDeployment['spec']>>).selector }
  }
  for (const [name, breakIt] of Object.entries(breakages)) {
    const broken = structuredClone(deployment)
    breakIt(broken)
    t.throws(() => new Deployment(broken).validate(), name)
  }
})

t.test('the sidecar is a native sidecar on loopback', async (t) => {
  t.ok(sidecar, 'an init container named coze-token-sidecar')
  t.equal(sidecar?.restartPolicy, 'Always', 'restartPolicy: Always (Kubernetes 1.28+ native sidecar)')
  t.equal(sidecar?.image, 'registry.example.com/coze-token-sidecar:0.1.0', 'the tag its README builds and pushes')
  const readme = readFileSync(new URL('../../examples/kubernetes/README.md', import.meta.url), 'utf8')
  t.match(readme, `docker build -t ${String(sidecar?.image)} .`, 'the README builds that tag')
  t.equal(env(sidecar, 'HOST'), '127.0.0.1', 'HOST=127.0.0.1: only the pod reaches it, so no caller secret is needed')
  t.equal(env(sidecar, 'PORT'), '8080')
  t.same(sidecar?.ports?.map((port) => port.containerPort), [8080])
  t.match(app?.command?.join(' '), /wget -qO- 'http:\/\/127\.0\.0\.1:8080\/token\?format=text'/, 'the app asks the sidecar on loopback')
  t.notMatch(app?.command?.join(' '), /echo "?\$TOKEN/, 'the app does not print the token')
  t.notOk(pod?.hostNetwork, 'no host network')
  t.equal(pod?.automountServiceAccountToken, false, 'no Kubernetes API token in the pod')
})

t.test('probes: liveness on /healthz, startup on a first token (/readyz?strict=true), readiness on /readyz', async (t) => {
  const path = (probe: IProbe | undefined): string | undefined => {
    const script = probe?.exec?.command?.join(' ') ?? ''
    return /GET (\/\S*) HTTP\/1\.1/.exec(script)?.[1]
  }
  t.equal(path(sidecar?.livenessProbe), '/healthz')
  t.equal(path(sidecar?.startupProbe), '/readyz?strict=true')
  t.equal(path(sidecar?.readinessProbe), '/readyz')
  for (const name of ['livenessProbe', 'startupProbe', 'readinessProbe'] as const) {
    const probe = sidecar?.[name]
    // httpGet would go to the pod IP, where a sidecar on 127.0.0.1 does not listen.
    t.equal(probe?.httpGet, undefined, `${name}: not httpGet`)
    t.match(probe?.exec?.command?.join(' '), /\/dev\/tcp\/127\.0\.0\.1\/\$\{PORT:-8080\}/, `${name}: asks loopback on PORT`)
    t.ok((probe?.timeoutSeconds ?? 1) >= 2, `${name}: timeoutSeconds is set`)
  }
  // /readyz?strict=true may wait up to SIDECAR_REQUEST_DEADLINE (5 s) for Coze.
  t.ok((sidecar?.startupProbe?.timeoutSeconds ?? 0) > 5, 'the startup probe outlasts the request deadline')
  t.match(sidecar?.startupProbe?.exec?.command?.join(' '), /read -r -t 6/, 'and so does its read')
})

t.test('resources are requested and limited', async (t) => {
  t.same(sidecar?.resources, { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } }, 'the sidecar')
  // The limit is sized for the cache it holds: 10,000 entries measured 131 MiB RSS (166-185 MiB
  // before issue 12; scripts/cache-memory.mjs), above the 128Mi the example used to allow.
  t.equal(sidecar?.env?.find((variable) => variable.name === 'SIDECAR_CACHE_MAX')?.value, '10000', 'the cache size the limit was measured for')
  for (const container of [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]) {
    for (const kind of ['requests', 'limits'] as const) {
      t.ok(container.resources?.[kind]?.cpu, `${container.name}: cpu ${kind}`)
      t.ok(container.resources?.[kind]?.memory, `${container.name}: memory ${kind}`)
    }
  }
})

t.test('every container is locked down', async (t) => {
  t.match(pod?.securityContext, { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } }, 'the pod')
  const containers = [...(pod?.initContainers ?? []), ...(pod?.containers ?? [])]
  t.equal(containers.length, 2)
  for (const container of containers) {
    t.same(container.securityContext, {
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' }
    }, `${container.name}: non-root, no privilege escalation, read-only root, no capabilities, RuntimeDefault seccomp`)
  }
})

t.test('the key comes read-only from a Secret that only uid 1000 can read', async (t) => {
  const mounts = sidecar?.volumeMounts ?? []
  t.equal(mounts.length, 1, 'one volume in the sidecar')
  const mount = mounts[0]
  t.equal(mount?.readOnly, true, 'mounted read-only')
  t.equal(env(sidecar, 'COZE_PRIVATE_KEY_FILE'), `${mount?.mountPath}/private_key.pem`, 'COZE_PRIVATE_KEY_FILE is in the mount')
  t.same(app?.volumeMounts ?? [], [], 'the app does not mount the key')
  const volume = pod?.volumes?.find((v) => v.name === mount?.name)
  t.equal(volume?.secret?.secretName, secret.metadata?.name, 'from the Secret in secret.yaml')
  t.same(volume?.secret?.items, [{ key: 'private_key.pem', path: 'private_key.pem' }], 'only the key file')
  // With fsGroup, the kubelet makes the files group 1000, so 0440 lets uid 1000 read; 0004 would let anyone.
  t.equal(volume?.secret?.defaultMode, 0o440, 'defaultMode 0440')
  t.equal(pod?.securityContext?.fsGroup, sidecar?.securityContext?.runAsGroup, 'fsGroup is the sidecar\'s group')
  for (const name of ['COZE_APP_ID', 'COZE_KEY_ID']) {
    const ref = sidecar?.env?.find((entry) => entry.name === name)?.valueFrom?.secretKeyRef
    t.equal(ref?.name, secret.metadata?.name, `${name} from the Secret`)
    t.ok(ref !== undefined && Object.hasOwn(secret.stringData ?? {}, ref.key), `${name}: the Secret template has ${ref?.key}`)
  }
})

t.test('the Secret is a template: placeholders, no key', async (t) => {
  t.same(Object.keys(secret.stringData ?? {}).sort(), ['app_id', 'key_id', 'private_key.pem'])
  t.equal(secret.data, undefined, 'nothing base64-encoded that could hide a key')
  for (const [key, value] of Object.entries(secret.stringData ?? {})) t.match(value, /^<.*>\s*$/, `${key} is a <placeholder>`)
  t.throws(() => createPrivateKey(secret.stringData?.['private_key.pem'] ?? ''), 'private_key.pem is not a key')
})

t.test('over a unix socket: an emptyDir shared by the two containers, no TCP listener', async (t) => {
  const socketDeployment = all.find(({ file }) => file === 'deployment-socket.yaml')?.doc as IDeployment
  const socketPod = socketDeployment.spec?.template.spec
  const socketSidecar = socketPod?.initContainers?.find((container) => container.name === 'coze-token-sidecar')
  const socketApp = socketPod?.containers[0]
  t.equal(socketSidecar?.restartPolicy, 'Always', 'a native sidecar too')
  t.equal(env(socketSidecar, 'SIDECAR_SOCKET'), '/run/coze-token/sidecar.sock')
  t.equal(env(socketSidecar, 'SIDECAR_SOCKET_MODE'), '0660')
  t.equal(env(socketSidecar, 'PORT'), undefined, 'no PORT: no TCP listener')
  t.equal(socketSidecar?.ports, undefined, 'no container port')
  const volume = socketPod?.volumes?.find((v) => v.name === 'coze-token-socket')
  t.same(volume?.emptyDir, { medium: 'Memory', sizeLimit: '1Mi' }, 'an in-memory emptyDir')
  for (const container of [socketSidecar, socketApp]) {
    t.ok(container?.volumeMounts?.some((mount) => mount.name === 'coze-token-socket' && mount.mountPath === '/run/coze-token'), `${container?.name} mounts the socket's folder`)
  }
  t.match(socketApp?.command?.join(' '), /curl -sf --unix-socket \/run\/coze-token\/sidecar\.sock 'http:\/\/localhost\/token\?format=text'/)
  const probePath = (probe: IProbe | undefined): string | undefined => /socketPath: '\/run\/coze-token\/sidecar\.sock', path: '(\/\w+)'/.exec(probe?.exec?.command?.join(' ') ?? '')?.[1]
  t.equal(probePath(socketSidecar?.startupProbe), '/healthz')
  t.equal(probePath(socketSidecar?.livenessProbe), '/healthz')
  t.equal(probePath(socketSidecar?.readinessProbe), '/readyz')
  t.same(socketPod?.securityContext, pod?.securityContext, 'the same pod security as deployment.yaml')
  t.same(socketSidecar?.securityContext, sidecar?.securityContext, 'and the same locked-down sidecar')
  t.same(socketApp?.securityContext, app?.securityContext)
  t.same(socketSidecar?.resources, sidecar?.resources)
})
