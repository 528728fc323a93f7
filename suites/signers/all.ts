/** Every signer the suite knows, in the order it runs them (fast ones first). */
import type { Signer } from './signer.js';
import { knot } from './knot.js';
import { ldns } from './ldns.js';

export const signers: Signer[] = [knot, ldns];
