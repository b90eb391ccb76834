//! SoftHSM2 test tokens (feature `softhsm-test`).
//!
//! SoftHSM2 reads its configuration (`$SOFTHSM2_CONF`) once, at
//! `C_Initialize`, and this crate initialises each module once per process.
//! So a test process gets ONE token directory: [`SoftHsm::shared_in`] makes
//! it the first time it is called, points `SOFTHSM2_CONF` at it, and
//! returns the same value to every later caller, from any thread. It must
//! run before anything else in the process loads SoftHSM2 (it refuses
//! otherwise). Tests then add tokens and generate keys in them; keys are
//! generated inside the token (sensitive, not extractable), so the private
//! half never exists outside it.
//!
//! Under `cargo nextest` every test is its own process and gets its own
//! directory; under `cargo test` the tests of one binary share it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use tamga_dsig::PublicKey;

use crate::error::Pkcs11Error;
use crate::module::{self as registry, is_loaded};
use crate::signer::read_key;
use crate::uri::{percent_encode, Pin, Pkcs11Uri, SOFTHSM2_DEFAULT_MODULE};

/// Prefix of the per-process directories made under the base directory.
const DIR_PREFIX: &str = "tamga-softhsm-";
/// Directories of earlier runs older than this are removed.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What to generate in the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySpec {
    EcP256,
    EcP384,
    Rsa2048,
}

/// A SoftHSM2 token directory for this process.
#[derive(Debug)]
pub struct SoftHsm {
    dir: PathBuf,
    module: PathBuf,
}

fn setup_error(what: &Path) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", what.display())
}

impl SoftHsm {
    /// The process's SoftHSM2 directory, made under `base` on the first
    /// call (later calls return the first one, whatever their `base`).
    /// Fails, saying to `apt-get install softhsm2`, if SoftHSM2 is missing.
    pub fn shared_in(base: impl AsRef<Path>) -> Result<&'static SoftHsm, Pkcs11Error> {
        static SHARED: OnceLock<Result<SoftHsm, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| Self::setup(base.as_ref()))
            .as_ref()
            .map_err(|e| Pkcs11Error::Setup(e.clone()))
    }

    fn setup(base: &Path) -> Result<SoftHsm, String> {
        let module = PathBuf::from(SOFTHSM2_DEFAULT_MODULE);
        if !module.is_file() {
            return Err(format!(
                "the SoftHSM2 PKCS#11 module {SOFTHSM2_DEFAULT_MODULE} is missing: \
                 SoftHSM2 is not installed (apt-get install softhsm2)"
            ));
        }
        if is_loaded(&module) {
            return Err(
                "SoftHSM2 was loaded in this process before its test directory was set up; \
                 call SoftHsm::shared_in first"
                    .into(),
            );
        }
        std::fs::create_dir_all(base).map_err(setup_error(base))?;
        remove_stale(base);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!("{DIR_PREFIX}{}-{nanos:08x}", std::process::id()));
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).map_err(setup_error(&tokens))?;
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
                 slots.removable = false\n",
                tokens.display()
            ),
        )
        .map_err(setup_error(&conf))?;
        // Process-global, and read by SoftHSM2 at C_Initialize: this is why
        // there is one directory per process, set up before any load.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        registry::module(&module).map_err(|e| e.to_string())?;
        Ok(SoftHsm { dir, module })
    }

    /// The SoftHSM2 module path (for `module-path=`).
    pub fn module_path(&self) -> &Path {
        &self.module
    }

    /// This process's SoftHSM2 directory (config and `tokens/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Initialises a new token in SoftHSM2's free slot and sets its user
    /// PIN.
    pub fn init_token(&self, label: &str, so_pin: &str, user_pin: &str) -> Result<(), Pkcs11Error> {
        let m = registry::module(&self.module)?;
        let ctx = &m.ctx;
        let slots = ctx
            .get_slots_with_token()
            .map_err(Pkcs11Error::op("C_GetSlotList"))?;
        let mut free = None;
        for slot in slots {
            let info = ctx
                .get_token_info(slot)
                .map_err(Pkcs11Error::op("C_GetTokenInfo"))?;
            if !info.token_initialized() {
                free = Some(slot);
                break;
            }
        }
        let slot = free.ok_or_else(|| Pkcs11Error::Setup("SoftHSM2 has no free slot".into()))?;
        let so_pin = AuthPin::from(so_pin.to_string());
        ctx.init_token(slot, &so_pin, label)
            .map_err(Pkcs11Error::op("C_InitToken"))?;
        let session = ctx
            .open_rw_session(slot)
            .map_err(Pkcs11Error::op("C_OpenSession"))?;
        session
            .login(UserType::So, Some(&so_pin))
            .map_err(Pkcs11Error::op("C_Login (SO)"))?;
        session
            .init_pin(&AuthPin::from(user_pin.to_string()))
            .map_err(Pkcs11Error::op("C_InitPIN"))?;
        session.logout().map_err(Pkcs11Error::op("C_Logout (SO)"))?;
        Ok(())
    }

    /// Generates a key pair inside token `token` (CKA_TOKEN, private key
    /// CKA_SENSITIVE and not CKA_EXTRACTABLE), labelled `label` with CKA_ID
    /// `id` on both halves, and returns its public key.
    pub fn generate_key_pair(
        &self,
        token: &str,
        user_pin: &str,
        spec: KeySpec,
        label: &str,
        id: &[u8],
    ) -> Result<PublicKey, Pkcs11Error> {
        let m = registry::module(&self.module)?;
        let uri = Pkcs11Uri::parse(&format!(
            "pkcs11:token={}",
            percent_encode(token.as_bytes())
        ))?;
        let (slot, info) = m.find_token(&uri)?;
        let session = m
            .ctx
            .open_rw_session(slot)
            .map_err(Pkcs11Error::op("C_OpenSession"))?;
        m.login(slot, &info, &session, Some(&Pin::new(user_pin)))?;

        let common_pub = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        let (mechanism, mut public) = match spec {
            KeySpec::EcP256 | KeySpec::EcP384 => {
                let oid: &[u8] = if spec == KeySpec::EcP256 {
                    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
                } else {
                    &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]
                };
                (
                    Mechanism::EccKeyPairGen,
                    vec![
                        Attribute::KeyType(KeyType::EC),
                        Attribute::EcParams(oid.to_vec()),
                    ],
                )
            }
            KeySpec::Rsa2048 => (
                Mechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::KeyType(KeyType::RSA),
                    Attribute::ModulusBits(2048u64.into()),
                    Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                ],
            ),
        };
        public.extend(common_pub);
        let (_pub_handle, priv_handle) = session
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(Pkcs11Error::op("C_GenerateKeyPair"))?;
        Ok(read_key(&session, priv_handle)?.public_key)
    }

    /// A `pkcs11:` URI for key `object` on `token`, with this module and
    /// the PIN in `pin-value`.
    pub fn uri(&self, token: &str, object: &str, pin: &str) -> String {
        format!(
            "pkcs11:token={};object={};type=private?module-path={}&pin-value={}",
            percent_encode(token.as_bytes()),
            percent_encode(object.as_bytes()),
            percent_encode(self.module.to_string_lossy().as_bytes()),
            percent_encode(pin.as_bytes()),
        )
    }
}

/// Removes this helper's directories of earlier runs, once they are a day
/// old (never a running process's: those are younger).
fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(DIR_PREFIX) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
