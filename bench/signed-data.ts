/**
 * Stand-in for what a DNSSEC signer hashes per RRSIG (RRSIG RDATA + a small canonical RRset). Its content
 * does not change the cost of a private-key operation; its size keeps the software hashing realistic.
 */
export const SIGNED_DATA = Buffer.from('hsm-harness benchmark: RRSIG rdata + canonical RRset of regress.example. '.repeat(2));
