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
}
