// xml-crypto (npm) as a producer and a verifier for Tamga's interoperability
// matrix.
//
// Usage: node xmlcrypto_tool.js SIGN_MANIFEST VERIFY_MANIFEST ROOTS_PEM
//
// SIGN_MANIFEST lines (tab-separated): out  in  key.pem  certs.pem  signatureMethodURI  c14nURI
// The reference covers the document element (`#Id`, its existing Id), with
// the enveloped-signature transform and the given canonicalisation.
// VERIFY_MANIFEST: one file per line. Every ds:Signature in the document is
// checked with the first certificate of its own KeyInfo, after that
// certificate's path (the KeyInfo certificates) is checked up to a root of ROOTS_PEM
// with node's crypto.X509Certificate (xml-crypto itself checks no path). A
// declarant signature must also cover the document element: xml-crypto
// reports what it checked (getSignedReferences), and by default a valid
// signature over anything at all passes.
// Output: "sign<TAB>out<TAB>OK|ERROR: ..." / "verify<TAB>file<TAB>OK|ERROR: ...".

"use strict";
const fs = require("fs");
const crypto = require("crypto");
const { SignedXml } = require("xml-crypto");
const { DOMParser } = require("@xmldom/xmldom");

const DS = "http://www.w3.org/2000/09/xmldsig#";
const ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256";

function oneLine(e) {
  return `${e && e.name ? e.name : "Error"}: ${e && e.message ? e.message : e}`.replace(/[\t\n]/g, " ");
}

function sign(f) {
  const [out, input, key, certs, sigAlg, c14n] = f;
  const xml = fs.readFileSync(input, "utf8");
  const sig = new SignedXml({
    privateKey: fs.readFileSync(key),
    publicCert: fs.readFileSync(certs, "latin1"),
    signatureAlgorithm: sigAlg,
    canonicalizationAlgorithm: c14n,
  });
  sig.addReference({ xpath: "/*", digestAlgorithm: SHA256, transforms: [ENVELOPED, c14n] });
  sig.computeSignature(xml, { prefix: "ds", location: { reference: "/*", action: "append" } });
  fs.writeFileSync(out, sig.getSignedXml());
}

function pem(b64) {
  const body = b64.replace(/\s+/g, "").match(/.{1,64}/g).join("\n");
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}

function checkPath(certs, roots) {
  // From the signer up: each certificate must be issued by another KeyInfo
  // certificate or by one of the roots.
  const chain = certs.map((c) => new crypto.X509Certificate(c));
  let c = chain[0];
  for (let steps = 0; steps <= chain.length; steps++) {
    if (roots.some((r) => c.checkIssued(r) && c.verify(r.publicKey))) return null;
    const issuer = chain.find((o) => o !== c && c.checkIssued(o) && c.verify(o.publicKey));
    if (!issuer) return `certificate ${c.subject.replace(/\n/g, ", ")} is not issued by a KeyInfo certificate or a root`;
    c = issuer;
  }
  return "no path to a root";
}

function verify(path, roots) {
  const xml = fs.readFileSync(path, "utf8");
  const doc = new DOMParser().parseFromString(xml, "text/xml");
  const sigs = Array.from(doc.getElementsByTagNameNS(DS, "Signature"));
  if (sigs.length === 0) return "ERROR: no ds:Signature";
  for (const [i, node] of sigs.entries()) {
    const certs = Array.from(node.getElementsByTagNameNS(DS, "X509Certificate"))
      .filter((c) => {
        // This signature's own KeyInfo, not a nested counter-signature's.
        let p = c.parentNode;
        while (p && !(p.localName === "Signature" && p.namespaceURI === DS)) p = p.parentNode;
        return p === node;
      })
      .map((c) => pem(c.textContent));
    if (certs.length === 0) return `ERROR: signature ${i + 1}: no X509Certificate`;
    const pathError = checkPath(certs, roots);
    if (pathError) return `ERROR: signature ${i + 1}: ${pathError}`;
    const sig = new SignedXml({ publicCert: certs[0] });
    sig.loadSignature(node);
    let ok;
    try {
      ok = sig.checkSignature(xml);
    } catch (e) {
      return `ERROR: signature ${i + 1}: ${oneLine(e)}`;
    }
    if (!ok) return `ERROR: signature ${i + 1}: checkSignature returned false`;
  }
  return `OK (${sigs.length} signatures)`;
}

function lines(file) {
  return fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "");
}

function main() {
  const [signManifest, verifyManifest, rootCa] = process.argv.slice(2);
  if (signManifest !== "-") {
    for (const line of lines(signManifest)) {
      const f = line.split("\t");
      let result = "OK";
      try {
        sign(f);
      } catch (e) {
        result = "ERROR: " + oneLine(e);
      }
      console.log(`sign\t${f[0]}\t${result}`);
    }
  }
  if (verifyManifest !== "-") {
    const roots = fs
      .readFileSync(rootCa, "latin1")
      .match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)
      .map((pem) => new crypto.X509Certificate(pem));
    for (const line of lines(verifyManifest)) {
      let result;
      try {
        result = verify(line.trim(), roots);
      } catch (e) {
        result = "ERROR: " + oneLine(e);
      }
      console.log(`verify\t${line.trim()}\t${result}`);
    }
  }
}

main();
