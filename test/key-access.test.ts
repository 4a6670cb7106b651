import t from 'tap'
import { unreadableHint } from '../src/key-access.js'

t.test('a permission error names the user and the three ways out', async (t) => {
  for (const code of ['EACCES', 'EPERM']) {
    const hint = unreadableHint('/keys/private_key.pem', code, { uid: 1000, gid: 1000 })
    t.match(hint, /^the sidecar runs as uid 1000 \(gid 1000\), which may not read \/keys\/private_key\.pem: /, code)
    t.match(hint, '`chown 1000 /keys/private_key.pem`')
    t.match(hint, '`chgrp 1000` and `chmod 640`')
    t.match(hint, '`--user "$(id -u):$(id -g)"`')
  }
  t.match(unreadableHint('/k', 'EACCES', { uid: 4242 }), 'uid 4242 (gid 4242)', 'no group id: the user\'s')
  t.equal(unreadableHint('/k', 'EACCES', {}), 'the user the sidecar runs as may not read /k; give it read access', 'no user ids (Windows)')
  t.equal(unreadableHint('/k', 'ENOENT', { uid: 1 }), undefined, 'other errors: no hint')
  t.match(unreadableHint('/k', 'EACCES'), /^the sidecar runs as uid \d+/, 'this process\'s ids by default')
})
