/**
 * Nesting depth of JSON text, measured before parsing: a body nested 10,000 levels deep
 * parses fine but overflows the stack of any recursive walk after it. One pass over the
 * characters, no recursion; strings (and escapes in them) are skipped.
 */
export const maxJsonDepth = 64;

/** Whether `text` opens more than `max` arrays/objects inside each other. */
export function jsonDepthExceeds(text: string, max = maxJsonDepth): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}
