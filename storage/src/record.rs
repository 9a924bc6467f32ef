//! Record encoding: one version byte, then JSON. The version byte lets a later release read
//! records an older one wrote and migrate them on load.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StoreError;

const V1: u8 = 1;

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![V1];
    // unwrap: records are plain structs of strings, numbers and JSON values, which always serialize
    serde_json::to_writer(&mut out, value).expect("record serializes");
    out
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&V1, rest)) => {
            serde_json::from_slice(rest).map_err(|e| StoreError::Corrupt(e.to_string()))
        }
        Some((v, _)) => Err(StoreError::Corrupt(format!("unknown record version {v}"))),
        None => Err(StoreError::Corrupt("empty record".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown_versions() {
        let bytes = encode(&vec!["a".to_string()]);
        assert_eq!(bytes[0], V1);
        assert_eq!(decode::<Vec<String>>(&bytes).unwrap(), vec!["a".to_string()]);
        let mut future = bytes.clone();
        future[0] = 9;
        assert!(matches!(decode::<Vec<String>>(&future), Err(StoreError::Corrupt(_))));
        assert!(decode::<Vec<String>>(&[]).is_err());
    }

    /// Issue 8: records written before the disable fields existed still load, as never
    /// disabled.
    #[test]
    fn issue_8_records_without_disable_fields_still_load() {
        let old_app = br#"{"id":"a","clientId":"c","name":"n","scopes":[],"grantTypes":["client_credentials"],"isActive":true,"secretHash":"00","createdAt":1,"updatedAt":1}"#;
        let app: crate::AppRecord = decode(&[&[1u8][..], old_app].concat()).unwrap();
        assert_eq!(app.disabled_at, None);
        let old_user = br#"{"authId":"u","username":null,"email":"u@example.com","roles":[],"isActive":false,"passwordHash":null,"invitationHash":null,"invitationExpiresAt":null,"createdAt":1,"updatedAt":1}"#;
        let user: crate::UserRecord = decode(&[&[1u8][..], old_user].concat()).unwrap();
        assert_eq!((user.disabled_at, user.disabled_by), (None, None));
        let mut user = user;
        user.disabled_by = Some(crate::DisabledBy::Operator);
        let json = String::from_utf8(encode(&user)[1..].to_vec()).unwrap();
        assert!(json.contains(r#""disabledBy":"operator""#), "{json}");
    }

    /// Apps written before workload identity federation still load, with no federated
    /// identity and no token exchange, and an app that uses neither is written as before; an
    /// issuer needs only its id, `iss`, algorithms and times.
    #[test]
    fn records_without_federation_fields_still_load() {
        let old_app = br#"{"id":"a","clientId":"c","name":"n","scopes":[],"grantTypes":["client_credentials"],"isActive":true,"secretHash":"00","createdAt":1,"updatedAt":1}"#;
        let app: crate::AppRecord = decode(&[&[1u8][..], old_app].concat()).unwrap();
        assert!(app.federated_identities.is_empty());
        assert!(!app.can_exchange);
        let json = String::from_utf8(encode(&app)[1..].to_vec()).unwrap();
        assert!(!json.contains("federatedIdentities") && !json.contains("canExchange"), "{json}");
        let mut app = app;
        app.federated_identities.push(crate::FederatedIdentity {
            issuer: "https://issuer.example.com".into(),
            subject: "ci:*".into(),
            audience: None,
            claims: Default::default(),
        });
        app.can_exchange = true;
        let json = String::from_utf8(encode(&app)[1..].to_vec()).unwrap();
        assert!(
            json.contains(
                r#""federatedIdentities":[{"issuer":"https://issuer.example.com","subject":"ci:*""#
            ),
            "{json}"
        );
        assert!(json.contains(r#""canExchange":true"#), "{json}");
        let minimal = br#"{"id":"i","issuer":"https://issuer.example.com","algorithms":["ES256"],"createdAt":1,"updatedAt":1}"#;
        let issuer: crate::IssuerRecord = decode(&[&[1u8][..], minimal].concat()).unwrap();
        assert_eq!((issuer.jwks_uri, issuer.jwks, issuer.max_token_age_secs), (None, None, None));
    }

    /// Issue 14: apps written before token reuse and quotas load as following the server
    /// with no quota, are written as before, and keep both once set.
    #[test]
    fn issue_14_records_without_reuse_or_quota_still_load() {
        let old_app = br#"{"id":"a","clientId":"c","name":"n","scopes":[],"grantTypes":["client_credentials"],"isActive":true,"secretHash":"00","createdAt":1,"updatedAt":1}"#;
        let mut app: crate::AppRecord = decode(&[&[1u8][..], old_app].concat()).unwrap();
        assert_eq!((app.token_reuse, app.token_quota), (None, None));
        let json = String::from_utf8(encode(&app)[1..].to_vec()).unwrap();
        assert!(!json.contains("tokenReuse") && !json.contains("tokenQuota"), "{json}");
        app.token_reuse = Some(false);
        app.token_quota = Some(crate::TokenQuota { per_minute: 7 });
        let bytes = encode(&app);
        let json = String::from_utf8(bytes[1..].to_vec()).unwrap();
        assert!(json.contains(r#""tokenReuse":false,"tokenQuota":{"perMinute":7}"#), "{json}");
        assert_eq!(decode::<crate::AppRecord>(&bytes).unwrap(), app);
    }
}
