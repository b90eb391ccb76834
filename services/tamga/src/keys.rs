//! Opening the authority's signing key: a PKCS#8 PEM file, or a PKCS#11
//! token (the key never leaves it).

use std::path::Path;

use tamga_dsig::Signer;

/// Opens `--key`: `pkcs11:` URIs go to the token, anything else is a PEM path.
pub fn open_signer(key: &str) -> anyhow::Result<Box<dyn Signer>> {
    if key.starts_with("pkcs11:") {
        return open_pkcs11(key);
    }
    Ok(Box::new(crate::sign::load_key(Path::new(key))?))
}

fn open_pkcs11(uri: &str) -> anyhow::Result<Box<dyn Signer>> {
    Ok(Box::new(tamga_pkcs11::Pkcs11Signer::open_uri(uri)?))
}
