/**
 * Bring a fresh (Unprovisioned) NetHSM into a known state for a run (Nitrokey/nethsm docs/nethsm-api.yaml; docs/drivers.md, NetHSM sequence): provision with
 * unlock and admin passphrases and the current time, add an operator and a backup user, set the backup
 * passphrase. Every passphrase is generated here, per run, and registered as a secret before use.
 */
import { randomBytes } from 'node:crypto';
import { registerSecret } from '../secrets.js';
import { NethsmClient, systemTime } from './client.js';
import type { Credentials, NethsmTls } from './client.js';

export interface NethsmPassphrases {
  unlockPassphrase: string;
  adminPassphrase: string;
  operatorPassphrase: string;
  /**
   * Both the backup encryption passphrase and the Backup user's login: NethsmConnection (src/driver.ts)
   * carries one backup passphrase, so one value serves both.
   */
  backupPassphrase: string;
}

export const NETHSM_USERS = { admin: 'admin', operator: 'operator', backup: 'backup' } as const;

/** 24 random bytes, base64url: well above the NetHSM's 10-character minimum. */
export function newPassphrase(): string {
  const p = randomBytes(24).toString('base64url');
  registerSecret(p);
  return p;
}

export function newPassphrases(): NethsmPassphrases {
  return {
    unlockPassphrase: newPassphrase(),
    adminPassphrase: newPassphrase(),
    operatorPassphrase: newPassphrase(),
    backupPassphrase: newPassphrase(),
  };
}

export function credentials(p: Omit<NethsmPassphrases, 'unlockPassphrase'>): { admin: Credentials; operator: Credentials; backup: Credentials } {
  return {
    admin: { user: NETHSM_USERS.admin, passphrase: p.adminPassphrase },
    operator: { user: NETHSM_USERS.operator, passphrase: p.operatorPassphrase },
    backup: { user: NETHSM_USERS.backup, passphrase: p.backupPassphrase },
  };
}

/** Returns the NetHSM's /info answer (vendor, product) for the report. */
export async function provisionNethsm(client: NethsmClient, p: NethsmPassphrases, waitMs = 120_000): Promise<{ vendor: string; product: string }> {
  const state = await client.waitForState(['Unprovisioned', 'Locked', 'Operational'], waitMs);
  if (state !== 'Unprovisioned') throw new Error(`NetHSM at ${client.baseUrl} is ${state}, not Unprovisioned: the harness provisions only fresh instances`);
  await client.provision({ unlockPassphrase: p.unlockPassphrase, adminPassphrase: p.adminPassphrase, systemTime: systemTime() });
  await client.waitForState(['Operational'], 30_000);
  const c = credentials(p);
  await client.addUser(c.admin, NETHSM_USERS.operator, { realName: 'hsm-harness operator', role: 'Operator', passphrase: p.operatorPassphrase });
  await client.addUser(c.admin, NETHSM_USERS.backup, { realName: 'hsm-harness backup', role: 'Backup', passphrase: p.backupPassphrase });
  await client.setBackupPassphrase(c.admin, p.backupPassphrase);
  return client.info();
}

/** Origins of NetHSM containers this process started (their self-signed certificate is not verified). */
const launched = new Set<string>();

/**
 * Mark a NetHSM the harness started itself. Inside a CI job container testcontainers reaches mapped ports
 * through the Docker gateway, not loopback, so the driver says which origin is its own container.
 */
export function markLaunchedContainer(baseUrl: string): void {
  launched.add(new URL(baseUrl).origin);
}

/**
 * The client for a NetHSM connection. TLS verification is off only for containers the harness started (the
 * NetHSM serves its own self-signed certificate, replaced again by a restore) and for loopback.
 */
export function clientFor(baseUrl: string): NethsmClient {
  const url = new URL(baseUrl);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!launched.has(url.origin) && !['127.0.0.1', '::1', 'localhost'].includes(host)) {
    throw new Error(`NetHSM at ${baseUrl}: only containers the harness started, or loopback, are supported (TLS verification is off for them)`);
  }
  const tls: NethsmTls = { insecure: true };
  return new NethsmClient(baseUrl, tls);
}
