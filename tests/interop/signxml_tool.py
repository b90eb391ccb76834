"""signxml (PyPI) as a producer and a verifier for Tamga's interoperability matrix.

Usage: python signxml_tool.py SIGN_MANIFEST VERIFY_MANIFEST ROOTS_PEM

SIGN_MANIFEST lines (tab-separated):
    out  in  key.pem  certs.pem  mode  signatureMethodURI  c14nURI
where mode is "enveloped" (XMLSigner) or "xades" (XAdESSigner, which also
signs the certificate in its own KeyInfo). VERIFY_MANIFEST: one file per
line; each is verified with XMLVerifier, or XAdESVerifier when it carries
XAdES SignedProperties, against the roots in ROOTS_PEM (signxml builds the path from
the KeyInfo certificates). Output: one line per entry,
"sign<TAB>out<TAB>OK|ERROR: ..." or "verify<TAB>file<TAB>OK|ERROR: ...".
"""

import sys
import traceback

from lxml import etree
from signxml import SignatureConfiguration, XMLSigner, XMLVerifier, methods
from signxml.algorithms import CanonicalizationMethod, SignatureMethod
from signxml.xades import XAdESSignatureConfiguration, XAdESSigner, XAdESVerifier

PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"


def one_line(e):
    return f"{type(e).__name__}: {e}".replace("\t", " ").replace("\n", " ")


def pem_certs(path):
    text = open(path).read()
    parts = text.split("-----END CERTIFICATE-----")
    return [p.strip() + "\n-----END CERTIFICATE-----\n" for p in parts if "BEGIN CERTIFICATE" in p]


def sign(f):
    out, src, key, certs, mode, sig_alg, c14n = f[:7]
    root = etree.parse(src, PARSER).getroot()
    args = dict(
        method=methods.enveloped,
        signature_algorithm=SignatureMethod(sig_alg),
        digest_algorithm="sha256",
        c14n_algorithm=CanonicalizationMethod(c14n),
    )
    signer = XAdESSigner(**args) if mode == "xades" else XMLSigner(**args)
    signed = signer.sign(root, key=open(key, "rb").read(), cert=pem_certs(certs))
    with open(out, "wb") as o:
        o.write(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))


def verify(path, root_ca):
    data = open(path, "rb").read()
    doc = etree.fromstring(data, PARSER)
    top = [s for s in doc.iter(f"{{{DS}}}Signature") if s.getparent() is doc]
    # XAdES when the declarant's own signature is (a counter-signature
    # inside it may be XAdES on a plain XML-DSig signature).
    xades = bool(top) and top[0].find(f"{{{DS}}}Object/{{{XADES}}}QualifyingProperties/{{{XADES}}}SignedProperties") is not None
    refs = len(top[0].findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")) if top else 1
    if xades:
        results = XAdESVerifier().verify(
            data, ca_pem_file=root_ca, expect_config=XAdESSignatureConfiguration(expect_references=refs)
        )
    else:
        results = XMLVerifier().verify(
            data, ca_pem_file=root_ca, expect_config=SignatureConfiguration(expect_references=refs)
        )
    n = len(results) if isinstance(results, list) else 1
    return f"OK ({n} references)"


def main():
    sign_manifest, verify_manifest, root_ca = sys.argv[1:4]
    if sign_manifest != "-":
        for line in open(sign_manifest):
            if not line.strip():
                continue
            f = line.rstrip("\n").split("\t")
            try:
                sign(f)
                result = "OK"
            except Exception as e:  # the matrix records the producer's own error
                result = "ERROR: " + one_line(e)
                traceback.print_exc(file=sys.stderr)
            print(f"sign\t{f[0]}\t{result}", flush=True)
    if verify_manifest != "-":
        for line in open(verify_manifest):
            path = line.strip()
            if not path:
                continue
            try:
                result = verify(path, root_ca)
            except Exception as e:
                result = "ERROR: " + one_line(e)
            print(f"verify\t{path}\t{result}", flush=True)


if __name__ == "__main__":
    main()
