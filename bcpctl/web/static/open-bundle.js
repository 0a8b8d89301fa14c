// Opening a bundle in the browser: the same checks as `bcpctl export open` (victim_support/bundle.py),
// in the same order, with the partner's age identity read from a local file into this page only.
// The page's Content-Security-Policy has connect-src 'none' and form-action 'none': nothing read
// here can be sent anywhere. age decryption, Ed25519, SHA-256 and SHA-512 come from the vendored
// age-encryption.js (typage and the noble libraries); nothing cryptographic is written here.
"use strict";

(() => {
  const ENVELOPE = "envelope.json";
  const SIGNATURE = "envelope.json.sig";
  const PAYLOAD = "payload.tar.age";
  const MANIFEST = "manifest.json";
  const MANIFEST_SIG = "manifest.json.sig";
  const DATA_FILES = ["persons.csv", "persons-excel.csv", "persons.xlsx", "persons-cp932.csv", "pfif.xml"];
  const FORMAT = "bcpctl-export-bundle/1";
  const NAMESPACE = "bcpctl-export";
  const MAX_STANZAS = 16;
  const MAX_HEADER_BYTES = 16 * 1024;
  const MAX_PAYLOAD_BYTES = 1024 * 1024 * 1024; // a browser tab holds the payload and its plaintext in memory
  const AGE_MAGIC = "age-encryption.org/v1\n";
  const BEGIN = "-----BEGIN SSH SIGNATURE-----";
  const END = "-----END SSH SIGNATURE-----";
  const TYPES = {
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xml": "application/xml",
    ".json": "application/json",
    ".sig": "text/plain",
  };

  class Refused extends Error {}

  const enc = new TextEncoder();
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const sha256hex = (bytes) => hex(BcpAge.sha256(bytes));
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let pos = 0;
    for (const p of parts) {
      out.set(p, pos);
      pos += p.length;
    }
    return out;
  };
  const sshString = (bytes) => {
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, bytes.length);
    return concat(len, bytes);
  };
  const readString = (buf, pos) => {
    if (pos + 4 > buf.length) throw new Refused("truncated");
    const len = new DataView(buf.buffer, buf.byteOffset + pos, 4).getUint32(0);
    const end = pos + 4 + len;
    if (end > buf.length) throw new Refused("truncated");
    return [buf.subarray(pos + 4, end), end];
  };
  const equal = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
  const b64 = (text) => {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new Refused("not base64");
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  };

  // ---- the sender's key and its SSHSIG signatures (PROTOCOL.sshsig; as victim_support/signing.py) ----

  function parseVerifyKey(text) {
    const parts = text.trim().split(/\s+/);
    if (parts.length < 2 || parts[0] !== "ssh-ed25519") {
      throw new Refused("提供元の検証鍵は 'ssh-ed25519 AAAA…' の形で入力してください / the verify key must be 'ssh-ed25519 AAAA…'");
    }
    let blob;
    try {
      blob = b64(parts[1]);
      const [kind, pos] = readString(blob, 0);
      const [raw, end] = readString(blob, pos);
      if (new TextDecoder().decode(kind) !== "ssh-ed25519" || raw.length !== 32 || end !== blob.length) throw new Refused("");
      return { blob, raw };
    } catch (e) {
      throw new Refused("提供元の検証鍵が壊れています / the verify key is malformed");
    }
  }

  function verifySshsig(key, message, armored, what) {
    let keyBlob, ns, hashAlg, kind, rawSig;
    try {
      const body = armored.trim();
      if (!body.startsWith(BEGIN) || !body.endsWith(END) || body.length > 4096) throw new Refused("armor");
      const blob = b64(body.slice(BEGIN.length, body.length - END.length).replace(/\s+/g, ""));
      if (new TextDecoder().decode(blob.subarray(0, 6)) !== "SSHSIG" || !equal(blob.subarray(6, 10), [0, 0, 0, 1])) {
        throw new Refused("magic");
      }
      let pos;
      [keyBlob, pos] = readString(blob, 10);
      [ns, pos] = readString(blob, pos);
      [, pos] = readString(blob, pos);
      [hashAlg, pos] = readString(blob, pos);
      const [sigBlob] = readString(blob, pos);
      let spos;
      [kind, spos] = readString(sigBlob, 0);
      [rawSig] = readString(sigBlob, spos);
    } catch (e) {
      throw new Refused(`${what}の署名の形式が正しくありません / the ${what} signature is malformed`);
    }
    if (!equal(keyBlob, key.blob)) {
      throw new Refused(`${what}は入力した検証鍵とは別の鍵で署名されています / signed by a different key than the verify key`);
    }
    const dec = new TextDecoder();
    if (dec.decode(ns) !== NAMESPACE || dec.decode(hashAlg) !== "sha512" || dec.decode(kind) !== "ssh-ed25519") {
      throw new Refused(`${what}の署名の名前空間または方式が違います / wrong signature namespace or algorithm`);
    }
    const signed = concat(
      enc.encode("SSHSIG"),
      sshString(enc.encode(NAMESPACE)),
      sshString(new Uint8Array(0)),
      sshString(enc.encode("sha512")),
      sshString(BcpAge.sha512(message)),
    );
    let ok = false;
    try {
      ok = BcpAge.ed25519.verify(rawSig, signed, key.raw);
    } catch (e) {
      ok = false;
    }
    if (!ok) throw new Refused(`${what}の署名が検証できません: 改ざんされています / the ${what} signature does not verify`);
  }

  // ---- tar (POSIX ustar and pax, as Python's tarfile writes it) ----

  function untar(bytes, limitNames) {
    const dec = new TextDecoder();
    const field = (block, start, len) => {
      const raw = block.subarray(start, start + len);
      const nul = raw.indexOf(0);
      return dec.decode(nul >= 0 ? raw.subarray(0, nul) : raw);
    };
    const found = new Map();
    let pos = 0;
    let paxPath = null;
    let paxSize = null;
    while (pos + 512 <= bytes.length) {
      const block = bytes.subarray(pos, pos + 512);
      if (block.every((b) => b === 0)) break;
      let name = field(block, 0, 100);
      const prefix = field(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
      let size = parseInt(field(block, 124, 12).trim() || "0", 8);
      const type = String.fromCharCode(block[156] || 48);
      if (paxSize !== null) size = paxSize;
      if (!Number.isSafeInteger(size) || size < 0 || pos + 512 + size > bytes.length) {
        throw new Refused("tar の形式が正しくありません / not a valid tar archive");
      }
      const data = bytes.subarray(pos + 512, pos + 512 + size);
      pos += 512 + Math.ceil(size / 512) * 512;
      if (type === "x") {
        for (const line of dec.decode(data).split("\n")) {
          const m = /^\d+ ([^=]+)=(.*)$/.exec(line);
          if (m && m[1] === "path") paxPath = m[2];
          if (m && m[1] === "size") paxSize = parseInt(m[2], 10);
        }
        continue;
      }
      if (type === "g") continue;
      if (paxPath !== null) name = paxPath;
      paxPath = null;
      paxSize = null;
      if (type === "5") continue; // a directory of the outer download
      if (type !== "0" && type !== "\0") throw new Refused(`tar に想定外の項目があります / unexpected entry ${name}`);
      const base = limitNames ? name : name.split("/").pop();
      if (limitNames && (!limitNames.includes(name) || found.has(name))) {
        throw new Refused(`中身に想定外のファイルがあります / the payload holds an unexpected entry ${JSON.stringify(name)}`);
      }
      found.set(base, data);
    }
    return found;
  }

  function countStanzas(head) {
    const text = new TextDecoder("latin1").decode(head.subarray(0, MAX_HEADER_BYTES));
    if (!text.startsWith(AGE_MAGIC)) throw new Refused("暗号化ファイルが age 形式ではありません / the payload is not an age file");
    let stanzas = 0;
    let pos = AGE_MAGIC.length;
    for (;;) {
      const end = text.indexOf("\n", pos);
      if (end < 0) throw new Refused("age ヘッダが大きすぎるか途切れています / the age header is too large or truncated");
      const line = text.slice(pos, end);
      pos = end + 1;
      if (line.startsWith("--- ")) return stanzas;
      if (line.startsWith("-> ")) {
        stanzas += 1;
        if (stanzas > MAX_STANZAS) throw new Refused("age ヘッダの宛先が多すぎます / too many recipient stanzas");
      } else if (line.length > 64) {
        throw new Refused("age ヘッダの形式が正しくありません / the age header is malformed");
      }
    }
  }

  function identitiesOf(text) {
    const found = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    if (!found.length || !found.every((l) => l.startsWith("AGE-SECRET-KEY-1"))) {
      throw new Refused("秘密鍵ファイルが age の X25519 鍵 (AGE-SECRET-KEY-1…) ではありません / not an age identity file");
    }
    return found;
  }

  // ---- the checks of bundle.open_bundle, in its order ----

  async function openBundle(bundleFiles, identityText, verifyKeyText, now) {
    const key = parseVerifyKey(verifyKeyText);
    const identities = identitiesOf(identityText);
    let parts = new Map();
    for (const file of bundleFiles) {
      const bytes = new Uint8Array(await file.arrayBuffer());
      if (file.name.endsWith(".tar")) {
        for (const [name, data] of untar(bytes, null)) parts.set(name, data);
      } else {
        parts.set(file.name, bytes);
      }
    }
    for (const name of [ENVELOPE, SIGNATURE, PAYLOAD]) {
      if (!parts.has(name)) throw new Refused(`バンドルに ${name} がありません / the bundle has no ${name}`);
    }
    const envelopeBytes = parts.get(ENVELOPE);
    if (envelopeBytes.length > 64 * 1024) throw new Refused("envelope.json が大きすぎます / the envelope is too large");
    verifySshsig(key, envelopeBytes, new TextDecoder().decode(parts.get(SIGNATURE).subarray(0, 8192)), "封筒 (envelope.json)");
    let envelope;
    try {
      envelope = JSON.parse(new TextDecoder().decode(envelopeBytes));
    } catch (e) {
      throw new Refused("envelope.json が JSON ではありません / the envelope is not JSON");
    }
    if (!envelope || envelope.format !== FORMAT) throw new Refused(`対応していない形式です / unsupported bundle format ${envelope && envelope.format}`);
    const expires = new Date(envelope.expires_at);
    if (Number.isNaN(expires.getTime()) || !envelope.payload || !Array.isArray(envelope.recipients)) {
      throw new Refused("封筒に有効期限・中身・宛先がありません / the envelope is missing expires_at, payload or recipients");
    }
    if (now >= expires) {
      throw new Refused(`保有期限 ${jst(expires)} を過ぎています。開かずに消去してください / the bundle expired at ${jst(expires)}; delete it`);
    }
    const mine = identities.map((i) => BcpAge.identityToRecipient(i));
    const recipients = await Promise.all(mine);
    if (!recipients.some((r) => envelope.recipients.includes(r))) {
      throw new Refused(`このバンドルは別の宛先 (${envelope.recipients.join(", ")}) 向けです / not encrypted to this identity`);
    }
    const payload = parts.get(PAYLOAD);
    if (payload.length !== Number(envelope.payload.bytes) || payload.length > MAX_PAYLOAD_BYTES) {
      throw new Refused(`暗号化ファイルの大きさ ${payload.length} が署名された値 ${envelope.payload.bytes} と違います / payload size differs`);
    }
    countStanzas(payload);
    if (sha256hex(payload) !== envelope.payload.sha256) {
      throw new Refused("暗号化ファイルが署名されたものと違います (SHA-256) / the payload is not the one the envelope signs");
    }
    const decrypter = new BcpAge.Decrypter();
    for (const identity of identities) decrypter.addIdentity(identity);
    let plain;
    try {
      plain = await decrypter.decrypt(payload);
    } catch (e) {
      throw new Refused(`復号できません / the payload does not decrypt: ${e.message}`);
    }
    const members = untar(plain, [MANIFEST, MANIFEST_SIG, ...DATA_FILES]);
    const manifestBytes = members.get(MANIFEST);
    const manifestSig = members.get(MANIFEST_SIG);
    members.delete(MANIFEST);
    members.delete(MANIFEST_SIG);
    if (!manifestBytes || !manifestSig || sha256hex(manifestBytes) !== envelope.manifest_sha256) {
      throw new Refused("manifest.json がないか、封筒が示すものと違います / the manifest is missing or differs");
    }
    verifySshsig(key, manifestBytes, new TextDecoder().decode(manifestSig), "目録 (manifest.json)");
    const manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
    const listed = manifest.files || {};
    const names = [...members.keys()].sort();
    if (JSON.stringify(Object.keys(listed).sort()) !== JSON.stringify(names)) {
      throw new Refused(`中身 ${names} と目録 ${Object.keys(listed).sort()} が一致しません / payload and manifest differ`);
    }
    for (const [name, data] of members) {
      if (sha256hex(data) !== listed[name].sha256) {
        throw new Refused(`${name} が目録の SHA-256 と違います / ${name} differs from its SHA-256 in the manifest`);
      }
    }
    return { envelope, manifest, files: new Map([[MANIFEST, manifestBytes], [MANIFEST_SIG, manifestSig], ...members]) };
  }

  // ---- the page ----

  function jst(date) {
    const t = new Date(date.getTime() + 9 * 3600 * 1000).toISOString();
    return `${t.slice(0, 10)} ${t.slice(11, 16)} JST`;
  }

  function row(list, label, value) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  }

  function show(result) {
    const { envelope, manifest, files } = result;
    const summary = document.getElementById("summary");
    summary.replaceChildren();
    row(summary, "提供元 / From", `${envelope.from.name} (${envelope.from.lg_code})`);
    row(summary, "提供先 / To", `${envelope.to.name} (${envelope.to.lg_code})`);
    row(summary, "依頼番号 / Request", envelope.request_id);
    row(summary, "根拠 / Legal basis", `${manifest.basis.law} — ${manifest.basis.title}`);
    row(summary, "利用目的 / Purposes", manifest.purposes.map((p) => `${p.title} (${p.code})`).join("、"));
    row(summary, "データの時点 / As of", jst(new Date(manifest.as_of)));
    row(summary, "保有期限 / Delete by", `${jst(new Date(envelope.expires_at))} — 期限後は全ての複製を消去`);
    row(summary, "人数 / Rows", String(manifest.counts.rows));
    const list = document.getElementById("files");
    list.replaceChildren();
    for (const [name, data] of files) {
      const ext = name.slice(name.lastIndexOf("."));
      const url = URL.createObjectURL(new Blob([data], { type: TYPES[ext] || "application/octet-stream" }));
      const link = document.createElement("a");
      link.href = url;
      link.download = name;
      link.textContent = `${name} を保存 / save (${data.length.toLocaleString("ja-JP")} bytes)`;
      link.dataset.file = name;
      link.dataset.sha256 = sha256hex(data);
      const li = document.createElement("li");
      li.append(link);
      list.append(li);
    }
    document.getElementById("result").hidden = false;
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("open-form");
    const status = document.getElementById("status");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      document.getElementById("result").hidden = true;
      status.className = "notice";
      status.textContent = "確認・復号しています… / verifying and decrypting…";
      try {
        const bundleFiles = [...document.getElementById("bundle").files];
        const identityFile = document.getElementById("identity").files[0];
        if (!bundleFiles.length || !identityFile) {
          throw new Refused("バンドルと秘密鍵ファイルを選んでください / choose the bundle and the identity file");
        }
        const result = await openBundle(
          bundleFiles,
          await identityFile.text(),
          document.getElementById("verify_key").value,
          new Date(),
        );
        show(result);
        status.className = "notice ok";
        status.textContent = "✔ 署名を確認し、復号しました / signature verified, decrypted";
        status.dataset.state = "opened";
      } catch (e) {
        status.className = "notice error";
        status.textContent = `✖ ${e instanceof Refused ? e.message : `開けません / cannot open: ${e}`}`;
        status.dataset.state = "refused";
      }
    });
  });
})();
