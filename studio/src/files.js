// What a Datanet of each data type takes: checked in the page before anything is stored or sent.
import { UserError } from "./wallet.js";

const MAX_BLOB = 2 * 1024 * 1024; // ol_putBlob's limit

const MAGIC = {
  1: [["PNG", [0x89, 0x50, 0x4e, 0x47]], ["JPEG", [0xff, 0xd8, 0xff]], ["GIF", [0x47, 0x49, 0x46, 0x38]],
      ["WebP", [0x52, 0x49, 0x46, 0x46], 8, [0x57, 0x45, 0x42, 0x50]]],
  2: [["WAV", [0x52, 0x49, 0x46, 0x46], 8, [0x57, 0x41, 0x56, 0x45]], ["MP3", [0x49, 0x44, 0x33]], ["MP3", [0xff, 0xfb]],
      ["OGG", [0x4f, 0x67, 0x67, 0x53]], ["FLAC", [0x66, 0x4c, 0x61, 0x43]]],
};

const starts = (bytes, sig, at = 0) => sig.every((b, i) => bytes[at + i] === b);

/** Refuse a file a Datanet of `dataType` cannot take, naming the file and why. */
export function checkFile(name, bytes, dataType, dailyLimit) {
  if (bytes.length === 0) throw new UserError(`${name} is empty. Nothing was sent.`);
  if (bytes.length > MAX_BLOB) {
    throw new UserError(`${name} is ${bytes.length} bytes; a contribution is at most ${MAX_BLOB} bytes (2 MiB). Nothing was sent.`);
  }
  if (BigInt(bytes.length) > BigInt(dailyLimit)) {
    throw new UserError(`${name} is ${bytes.length} bytes, above this Datanet's daily limit of ${dailyLimit} bytes per contributor. Nothing was sent.`);
  }
  if (dataType === 0) {
    let ok = !bytes.includes(0);
    if (ok) {
      try { new TextDecoder("utf-8", { fatal: true }).decode(bytes); } catch { ok = false; }
    }
    if (!ok) throw new UserError(`${name} is not a text file (it is not UTF-8 text), and this Datanet takes text. Nothing was sent.`);
    return "text";
  }
  const kinds = MAGIC[dataType];
  const found = kinds.find(([, sig, at, sig2]) => starts(bytes, sig) && (!sig2 || starts(bytes, sig2, at)));
  if (!found) {
    const want = [...new Set(kinds.map((k) => k[0]))].join(", ");
    throw new UserError(`${name} is not ${dataType === 1 ? "an image" : "audio"} (${want}), and this Datanet takes ${dataType === 1 ? "images" : "audio"}. Nothing was sent.`);
  }
  return found[0];
}
