//! Serde for the types whose serialised form is their text ([`crate::Digest`],
//! [`crate::ImageRef`]): written with `Display`, read back with `FromStr`, whose error becomes
//! the deserializer's.

/// Implements `Serialize` and `Deserialize` for `$ty` through its `Display` and `FromStr`.
macro_rules! serde_as_text {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
