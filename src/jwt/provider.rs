//! The cryptography under jsonwebtoken: its RustCrypto provider, except that
//! an Ed25519 signing key is parsed once per thread and key instead of once
//! per token. The stock signer decodes the PKCS#8 document and derives the
//! public key, a scalar multiplication as costly as the signature itself, for
//! every JWT. The signature is ed25519-dalek's, as in the stock signer (and
//! Ed25519 is deterministic: the tokens are byte for byte the same).

use std::cell::RefCell;
use std::sync::OnceLock;

use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::SigningKey;
use jsonwebtoken::crypto::{rust_crypto, CryptoProvider, JwtSigner};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::{signature, Algorithm, EncodingKey};

/// Makes this provider jsonwebtoken's for the process, once, before its
/// first use. Should jsonwebtoken have settled on one already, that one
/// signs: the same tokens, only slower.
pub fn install() {
    static PROVIDER: OnceLock<CryptoProvider> = OnceLock::new();
    let provider = PROVIDER.get_or_init(|| CryptoProvider {
        signer_factory: signer,
        ..rust_crypto::DEFAULT_PROVIDER.clone()
    });
    let _ = provider.install_default();
}

fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    if *alg != Algorithm::EdDSA {
        return (rust_crypto::DEFAULT_PROVIDER.signer_factory)(alg, key);
    }
    thread_local! {
        /// The last key this thread signed with, by its PKCS#8 document.
        static LAST: RefCell<Option<(Vec<u8>, SigningKey)>> = const { RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| {
        let der = key.as_bytes();
        let parsed = match last.as_ref().filter(|(known, _)| known == der) {
            Some((_, parsed)) => parsed.clone(),
            None => {
                let parsed =
                    SigningKey::from_pkcs8_der(der).map_err(|_| ErrorKind::InvalidEddsaKey)?;
                *last = Some((der.to_vec(), parsed.clone()));
                parsed
            }
        };
        Ok(Box::new(EdDsa(parsed)) as Box<dyn JwtSigner>)
    })
}

struct EdDsa(SigningKey);

impl signature::Signer<Vec<u8>> for EdDsa {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.0.sign(msg).to_bytes().to_vec())
    }
}

impl JwtSigner for EdDsa {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};

    /// What a `CryptoProvider` makes signers with.
    type SignerFactory = fn(&Algorithm, &EncodingKey) -> Result<Box<dyn JwtSigner>, Error>;

    fn key(seed: u8) -> EncodingKey {
        let der = KeypairBytes {
            secret_key: [seed; 32],
            public_key: None,
        }
        .to_pkcs8_der()
        .unwrap();
        EncodingKey::from_ed_der(der.as_bytes())
    }

    fn sign(factory: SignerFactory, key: &EncodingKey) -> Vec<u8> {
        factory(&Algorithm::EdDSA, key)
            .unwrap()
            .try_sign(b"header.claims")
            .unwrap()
    }

    #[test]
    fn signs_as_the_stock_signer_does_whichever_key_came_last() {
        let stock = rust_crypto::DEFAULT_PROVIDER.signer_factory;
        let (one, two) = (key(1), key(2));
        for key in [&one, &one, &two, &one] {
            assert_eq!(sign(signer, key), sign(stock, key));
        }
        assert_ne!(sign(signer, &one), sign(signer, &two));
    }

    #[test]
    fn other_algorithms_and_bad_keys_go_as_before() {
        let hmac = EncodingKey::from_secret(b"k").unwrap();
        let signed = signer(&Algorithm::HS256, &hmac).unwrap();
        assert_eq!(signed.algorithm(), Algorithm::HS256);
        assert!(signer(&Algorithm::EdDSA, &EncodingKey::from_ed_der(b"not a key")).is_err());
    }
}
