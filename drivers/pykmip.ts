/**
 * PyKMIP 0.10 (Debian's python3-pykmip) as a loopback KMIP server: a generated CA with server and client
 * certificates, the TLS1.2 auth suite, a private SQLite database and config, on a free 127.0.0.1 port.
 * /usr/bin/pykmip-server is run directly: its shebang is the system python, which has its dependencies
 * (another python3 on PATH usually does not). docs/kmip-profile.md §6.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Driver, KmipConnection } from '../src/driver.js';
import { DEFAULT_TRAITS } from '../src/driver.js';
import { makeTempDir } from '../src/fsutil.js';
import { makeTestPki } from '../src/kmip/pki.js';
import { freePort, launchServer } from '../src/kmip/launch.js';
import type { LaunchedServer } from '../src/kmip/launch.js';

export const PYKMIP_SERVER = '/usr/bin/pykmip-server';
const HOST = '127.0.0.1';

export const driver: Driver = {
  id: 'pykmip',
  title: 'PyKMIP 0.10 server (loopback, TLS 1.2)',
  order: 60,
  envVars: [],
  kind: 'kmip',
  traits: { ...DEFAULT_TRAITS, ephemeral: true, maxConcurrency: 4, caseTimeoutMs: 60_000 },
  async probe() {
    if (!existsSync(PYKMIP_SERVER))
      return { ok: false, reason: `${PYKMIP_SERVER} is missing; apt-get install python3-pykmip (or run npm start, which sets it up)` };
    return { ok: true, reason: `${PYKMIP_SERVER} started by the harness on a free 127.0.0.1 port` };
  },
  async start() {
    const tmp = await makeTempDir('pykmip');
    const dir = tmp.path;
    let server: LaunchedServer | undefined;
    try {
      const pki = await makeTestPki(dir);
      await mkdir(join(dir, 'policies'));
      const port = await freePort(HOST);
      const conf = join(dir, 'server.conf');
      await writeFile(
        conf,
        [
          '[server]',
          `hostname=${HOST}`,
          `port=${port}`,
          `certificate_path=${pki.serverCert}`,
          `key_path=${pki.serverKey}`,
          `ca_path=${pki.ca}`,
          'auth_suite=TLS1.2',
          `policy_path=${join(dir, 'policies')}`,
          'enable_tls_client_auth=True',
          'logging_level=INFO',
          `database_path=${join(dir, 'pykmip.db')}`,
          '',
        ].join('\n'),
      );
      // Python's multiprocessing makes pymp-* directories in TMPDIR and leaves them when the server is killed:
      // a TMPDIR inside the journalled directory goes with it.
      const serverTmp = join(dir, 'tmp');
      await mkdir(serverTmp);
      const launch = async () => {
        server = await launchServer({
          cmd: PYKMIP_SERVER,
          args: ['-f', conf, '-l', join(dir, 'server.log')],
          env: { ...process.env, TMPDIR: serverTmp },
          logFile: join(dir, 'stdout.log'),
          host: HOST,
          port,
          what: 'pykmip-server',
        });
      };
      await launch();
      const kmip: KmipConnection = {
        host: HOST,
        port,
        ca: pki.ca,
        clientCert: pki.clientCert,
        clientKey: pki.clientKey,
        profile: 'pykmip',
        launchedByHarness: true,
        async restart() {
          await server?.stop(1000);
          await launch();
        },
      };
      return {
        connections: { kmip },
        info: { server: 'PyKMIP', executable: PYKMIP_SERVER, address: `${HOST}:${port}`, authSuite: 'TLS1.2' },
        async stop() {
          await server?.stop();
          await tmp.remove();
        },
      };
    } catch (err) {
      await server?.stop(200);
      await tmp.remove();
      throw err;
    }
  },
};
