/** The DKEK backup suites, one per backup method; each runs only for drivers that declare its method. */
export { dkekAesWrapSuite } from './aes-wrap.js';
export { dkekSmartcardHsmSuite } from './smartcard-hsm-dkek.js';
export { dkekYubihsmWrapSuite } from './yubihsm-wrap.js';
