/** Every signer the suite knows, in the order it runs them (fast ones first; OpenDNSSEC is `slow`). */
import type { Signer } from './signer.js';
import { knot } from './knot.js';
import { ldns } from './ldns.js';
import { bind } from './bind.js';
import { powerdns } from './powerdns.js';
import { opendnssec } from './opendnssec.js';

export const signers: Signer[] = [knot, ldns, bind, powerdns, opendnssec];
