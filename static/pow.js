// authmail's proof of work, run in a Web Worker by app.js so the page never
// stalls. Given {salt, bits}, it counts nonces 0, 1, 2, … until SHA-256 of the
// UTF-8 bytes `salt + nonce` starts with `bits` zero bits, and answers
// {nonce, tries, ms}. SHA-256 is written out here: crypto.subtle is async per
// hash (far too slow for ~2^18 of them) and missing on plain-http pages.
"use strict";

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const INITIAL = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);
const w = new Int32Array(64);
const state = new Int32Array(8);

/// One 64-byte block at `offset` of `bytes` into `state`.
function compress(bytes, offset) {
  for (let i = 0; i < 16; i++) {
    const j = offset + i * 4;
    w[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
  }
  for (let i = 16; i < 64; i++) {
    const a = w[i - 15];
    const b = w[i - 2];
    const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
    const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
  }
  let a = state[0];
  let b = state[1];
  let c = state[2];
  let d = state[3];
  let e = state[4];
  let f = state[5];
  let g = state[6];
  let h = state[7];
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + s1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

/// The first 32 bits of SHA-256 of `bytes[0..length]`; `bytes` has room for
/// the padding (it is overwritten past `length`).
function firstWord(bytes, length) {
  bytes.fill(0, length);
  bytes[length] = 0x80;
  const blocks = Math.ceil((length + 9) / 64);
  const bitLength = length * 8;
  const end = blocks * 64;
  bytes[end - 4] = bitLength >>> 24;
  bytes[end - 3] = bitLength >>> 16;
  bytes[end - 2] = bitLength >>> 8;
  bytes[end - 1] = bitLength;
  state.set(INITIAL);
  for (let i = 0; i < blocks; i++) compress(bytes, i * 64);
  return state[0];
}

function solve(salt, bits) {
  const prefix = new TextEncoder().encode(salt);
  // The salt, up to 20 digits of nonce, and room for two blocks of padding.
  const bytes = new Uint8Array(Math.ceil((prefix.length + 20 + 9) / 64) * 64 + 64);
  bytes.set(prefix);
  for (let n = 0; ; n++) {
    const digits = String(n);
    let length = prefix.length;
    for (let i = 0; i < digits.length; i++) bytes[length++] = digits.charCodeAt(i);
    if (Math.clz32(firstWord(bytes, length)) >= bits) return { nonce: digits, tries: n + 1 };
  }
}

self.onmessage = (event) => {
  const { salt, bits } = event.data;
  const started = performance.now();
  const { nonce, tries } = solve(String(salt), Math.min(Number(bits), 32));
  self.postMessage({ nonce, tries, ms: performance.now() - started });
};
