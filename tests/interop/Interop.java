// The JDK's javax.xml.crypto (XML-DSig, JSR 105) as a producer and as a
// verifier for Tamga's interoperability matrix. A single-file program, run
// as `java Interop.java SIGN_MANIFEST VERIFY_MANIFEST ROOT_CA_PEM...`: one
// JVM signs and verifies everything (JVM start-up dominates otherwise).
//
// SIGN_MANIFEST lines (tab-separated):
//   out  in  key.pem  certs.pem  signatureMethodURI  c14nURI  digestURI  prefix  referenceURI
// `prefix` is "ds" or "-" (default namespace); `referenceURI` is "-" for
// URI="" or "#id" (the document element's Id attribute).
// VERIFY_MANIFEST lines: one file per line.
// Output, one line per entry: "sign<TAB>out<TAB>OK" or "...<TAB>ERROR: ...",
// "verify<TAB>file<TAB>OK (n signatures)" or "...<TAB>ERROR: ...".
//
// Verification runs with secure validation on, registers `Id` attributes as
// IDs, validates every ds:Signature in the document (the declarant's and
// counter-signatures), takes the key from the first X509Certificate of each
// signature's KeyInfo and checks that certificate's path (the KeyInfo
// certificates as intermediates) to one of the given roots with PKIX
// (revocation not checked: the JDK would need a CRL store).

import java.io.ByteArrayInputStream;
import java.io.FileOutputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Key;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import javax.xml.crypto.AlgorithmMethod;
import javax.xml.crypto.KeySelector;
import javax.xml.crypto.KeySelectorException;
import javax.xml.crypto.KeySelectorResult;
import javax.xml.crypto.XMLCryptoContext;
import javax.xml.crypto.dsig.CanonicalizationMethod;
import javax.xml.crypto.dsig.Reference;
import javax.xml.crypto.dsig.SignatureMethod;
import javax.xml.crypto.dsig.SignedInfo;
import javax.xml.crypto.dsig.Transform;
import javax.xml.crypto.dsig.XMLSignature;
import javax.xml.crypto.dsig.XMLSignatureFactory;
import javax.xml.crypto.dsig.dom.DOMSignContext;
import javax.xml.crypto.dsig.dom.DOMValidateContext;
import javax.xml.crypto.dsig.keyinfo.KeyInfo;
import javax.xml.crypto.dsig.keyinfo.KeyInfoFactory;
import javax.xml.crypto.dsig.keyinfo.X509Data;
import javax.xml.crypto.dsig.spec.C14NMethodParameterSpec;
import javax.xml.crypto.dsig.spec.TransformParameterSpec;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.OutputKeys;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

public class Interop {
    static final XMLSignatureFactory FAC = XMLSignatureFactory.getInstance("DOM");

    public static void main(String[] args) throws Exception {
        List<X509Certificate> roots = new ArrayList<>();
        for (int i = 2; i < args.length; i++) roots.addAll(certificates(Path.of(args[i])));
        if (!args[0].equals("-")) {
            for (String line : Files.readAllLines(Path.of(args[0]))) {
                if (line.isBlank()) continue;
                String[] f = line.split("\t");
                String result;
                try {
                    sign(f);
                    result = "OK";
                } catch (Throwable e) {
                    result = "ERROR: " + describe(e);
                }
                System.out.println("sign\t" + f[0] + "\t" + result);
            }
        }
        if (!args[1].equals("-")) {
            for (String line : Files.readAllLines(Path.of(args[1]))) {
                if (line.isBlank()) continue;
                String result;
                try {
                    result = verify(Path.of(line.trim()), roots);
                } catch (Throwable e) {
                    result = "ERROR: " + describe(e);
                }
                System.out.println("verify\t" + line.trim() + "\t" + result);
            }
        }
    }

    static String describe(Throwable e) {
        StringBuilder s = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (s.length() > 0) s.append(" / ");
            s.append(t.getClass().getSimpleName()).append(": ").append(t.getMessage());
        }
        return s.toString().replace('\t', ' ').replace('\n', ' ');
    }

    static Document parse(Path p) throws Exception {
        DocumentBuilderFactory dbf = DocumentBuilderFactory.newInstance();
        dbf.setNamespaceAware(true);
        dbf.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        return dbf.newDocumentBuilder().parse(new ByteArrayInputStream(Files.readAllBytes(p)));
    }

    static List<X509Certificate> certificates(Path pem) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        List<X509Certificate> out = new ArrayList<>();
        for (var c : cf.generateCertificates(new ByteArrayInputStream(Files.readAllBytes(pem)))) {
            out.add((X509Certificate) c);
        }
        return out;
    }

    static PrivateKey privateKey(Path pem) throws Exception {
        String text = Files.readString(pem)
                .replaceAll("-----[A-Z ]+-----", "")
                .replaceAll("\\s", "");
        PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(Base64.getDecoder().decode(text));
        Exception last = null;
        for (String alg : new String[] {"RSA", "EC", "Ed25519", "RSASSA-PSS"}) {
            try {
                return KeyFactory.getInstance(alg).generatePrivate(spec);
            } catch (Exception e) {
                last = e;
            }
        }
        throw last;
    }

    static void sign(String[] f) throws Exception {
        Path out = Path.of(f[0]);
        Document doc = parse(Path.of(f[1]));
        PrivateKey key = privateKey(Path.of(f[2]));
        List<X509Certificate> certs = certificates(Path.of(f[3]));
        String sigAlg = f[4], c14n = f[5], digest = f[6], prefix = f[7], uri = f[8];
        Element root = doc.getDocumentElement();
        if (uri.equals("-")) {
            uri = "";
        } else {
            root.setIdAttributeNS(null, "Id", true);
        }
        List<Transform> transforms = List.of(
                FAC.newTransform(Transform.ENVELOPED, (TransformParameterSpec) null),
                FAC.newTransform(c14n, (TransformParameterSpec) null));
        Reference ref = FAC.newReference(uri, FAC.newDigestMethod(digest, null), transforms, null, null);
        SignedInfo si = FAC.newSignedInfo(
                FAC.newCanonicalizationMethod(c14n, (C14NMethodParameterSpec) null),
                FAC.newSignatureMethod(sigAlg, null),
                List.of(ref));
        KeyInfoFactory kif = FAC.getKeyInfoFactory();
        KeyInfo ki = kif.newKeyInfo(List.of(kif.newX509Data(new ArrayList<Object>(certs))));
        DOMSignContext ctx = new DOMSignContext(key, root);
        if (!prefix.equals("-")) ctx.setDefaultNamespacePrefix(prefix);
        FAC.newXMLSignature(si, ki).sign(ctx);
        var t = TransformerFactory.newInstance().newTransformer();
        t.setOutputProperty(OutputKeys.ENCODING, "UTF-8");
        try (OutputStream o = new FileOutputStream(out.toFile())) {
            t.transform(new DOMSource(doc), new StreamResult(o));
        }
    }

    /** The first certificate of the signature's KeyInfo, remembered with the others. */
    static final class FirstCertificate extends KeySelector {
        List<X509Certificate> certs = new ArrayList<>();

        @Override
        public KeySelectorResult select(KeyInfo keyInfo, Purpose purpose, AlgorithmMethod method,
                XMLCryptoContext context) throws KeySelectorException {
            if (keyInfo == null) throw new KeySelectorException("no KeyInfo");
            for (Object o : keyInfo.getContent()) {
                if (o instanceof X509Data) {
                    for (Object c : ((X509Data) o).getContent()) {
                        if (c instanceof X509Certificate) certs.add((X509Certificate) c);
                    }
                }
            }
            if (certs.isEmpty()) throw new KeySelectorException("no X509Certificate in KeyInfo");
            Key k = certs.get(0).getPublicKey();
            return () -> k;
        }
    }

    static String verify(Path file, List<X509Certificate> roots) throws Exception {
        Document doc = parse(file);
        NodeList all = doc.getElementsByTagNameNS("*", "*");
        for (int i = 0; i < all.getLength(); i++) {
            Element e = (Element) all.item(i);
            if (e.hasAttributeNS(null, "Id")) e.setIdAttributeNS(null, "Id", true);
        }
        NodeList sigs = doc.getElementsByTagNameNS(XMLSignature.XMLNS, "Signature");
        if (sigs.getLength() == 0) return "ERROR: no ds:Signature";
        for (int i = 0; i < sigs.getLength(); i++) {
            FirstCertificate selector = new FirstCertificate();
            DOMValidateContext vc = new DOMValidateContext(selector, sigs.item(i));
            vc.setProperty("org.jcp.xml.dsig.secureValidation", Boolean.TRUE);
            XMLSignature sig = FAC.unmarshalXMLSignature(vc);
            if (!sig.validate(vc)) {
                StringBuilder why = new StringBuilder("ERROR: signature " + (i + 1) + " invalid:");
                why.append(" SignatureValue ").append(sig.getSignatureValue().validate(vc) ? "ok" : "bad");
                for (Object r : sig.getSignedInfo().getReferences()) {
                    Reference ref = (Reference) r;
                    why.append("; reference ").append(ref.getURI()).append(ref.validate(vc) ? " ok" : " bad digest");
                }
                return why.toString();
            }
            String path = checkPath(selector.certs, roots);
            if (path != null) return "ERROR: signature " + (i + 1) + ": " + path;
        }
        return "OK (" + sigs.getLength() + " signatures)";
    }

    static String checkPath(List<X509Certificate> certs, List<X509Certificate> roots) {
        try {
            Set<TrustAnchor> anchors = new HashSet<>();
            for (X509Certificate r : roots) anchors.add(new TrustAnchor(r, null));
            List<X509Certificate> path = new ArrayList<>();
            path.add(certs.get(0));
            for (X509Certificate c : certs.subList(1, certs.size())) {
                if (!roots.contains(c)) path.add(c);
            }
            CertPath cp = CertificateFactory.getInstance("X.509").generateCertPath(path);
            PKIXParameters params = new PKIXParameters(anchors);
            params.setRevocationEnabled(false);
            CertPathValidator.getInstance("PKIX").validate(cp, params);
            return null;
        } catch (Exception e) {
            return "certificate path: " + describe(e);
        }
    }
}
