/** Choosing a token: by label, serial or slot id, never by slot position. */
import { UsageError } from '../errors.js';
import { type Handle, type LoadedModule, trimPadded } from './module.js';

export interface TokenSelector {
  label?: string;
  serial?: string;
  slotId?: number;
  /** Substring of the token label (OpenSC names the SmartCard-HSM user-PIN slot "<label> (UserPIN)"). */
  labelIncludes?: string;
  /** Substring of the slot description (the reader name for smartcards). */
  slotDescriptionIncludes?: string;
}

/** Find the slot whose token matches the selector. Errors list what is there, so the user can fix the label. */
export function findSlot(mod: LoadedModule, sel: TokenSelector): Handle {
  const slots = mod.lib.C_GetSlotList(true);
  const seen: string[] = [];
  for (const slot of slots) {
    const info = mod.lib.C_GetTokenInfo(slot);
    const label = trimPadded(info.label);
    const serial = trimPadded(info.serialNumber);
    seen.push(label);
    if (sel.label !== undefined && label !== sel.label) continue;
    if (sel.serial !== undefined && serial !== sel.serial) continue;
    if (sel.slotId !== undefined && slot.readUIntLE(0, 6) !== sel.slotId) continue;
    if (sel.labelIncludes !== undefined && !label.includes(sel.labelIncludes)) continue;
    if (sel.slotDescriptionIncludes !== undefined && !trimPadded(mod.lib.C_GetSlotInfo(slot).slotDescription).includes(sel.slotDescriptionIncludes)) continue;
    return slot;
  }
  const want =
    sel.label !== undefined
      ? `label "${sel.label}"`
      : sel.serial !== undefined
        ? `serial "${sel.serial}"`
        : sel.slotId !== undefined
          ? `slot id ${sel.slotId}`
          : sel.labelIncludes !== undefined
            ? `a label containing "${sel.labelIncludes}"`
            : sel.slotDescriptionIncludes !== undefined
              ? `a reader named like "${sel.slotDescriptionIncludes}"`
              : 'any token';
  const have = seen.length ? seen.map((l) => JSON.stringify(l)).join(', ') : 'none';
  throw new UsageError(`no token with ${want} in ${mod.path} (tokens present: ${have}); set HSM_PKCS11_TOKEN or the URI's token= to one of them`);
}
