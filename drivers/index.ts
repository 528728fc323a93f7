/**
 * The driver registry, in report order. Adding a driver = one file here plus its .expect.json.
 */
import type { Driver } from '../src/driver.js';
import { driver as softhsm } from './softhsm.js';
import { driver as softhsmP11kit } from './softhsm-p11kit.js';
import { driver as pkcs11 } from './pkcs11.js';
import { driver as smartcardHsm } from './smartcard-hsm.js';
import { driver as yubihsm } from './yubihsm.js';
import { driver as pykmip } from './pykmip.js';
import { driver as cascadeHsmBridge } from './cascade-hsm-bridge.js';
import { driver as softhsmContainer } from './softhsm-container.js';
import { driver as bridgeContainer } from './bridge-container.js';
import { driver as nethsm } from './nethsm.js';

export const drivers: Driver[] = [softhsm, softhsmP11kit, pkcs11, smartcardHsm, yubihsm, pykmip, cascadeHsmBridge, softhsmContainer, bridgeContainer, nethsm];

export function driverById(id: string): Driver | undefined {
  return drivers.find((d) => d.id === id);
}
