// What the partner portal's bundle page needs, bundled into one file (bcpctl/web/static/age-bundle.js).
export { Decrypter, identityToRecipient } from "age-encryption";
export { ed25519 } from "@noble/curves/ed25519.js";
export { sha256, sha512 } from "@noble/hashes/sha2.js";
