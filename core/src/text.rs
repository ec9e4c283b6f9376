//! Deserializing values written as JSON strings (timestamps, symbols, hashes, stream ids)
//! without allocating: the visitor parses the borrowed `&str` in place.

use serde::de::{Deserializer, Error, Visitor};
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

struct ParseVisitor<T>(PhantomData<T>, &'static str);

impl<T: FromStr> Visitor<'_> for ParseVisitor<T>
where
    T::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }

    fn visit_str<E: Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(E::custom)
    }
}

/// Deserializes a string and parses it with `T::from_str`; `expecting` names it in errors.
pub fn parse_str<'de, D: Deserializer<'de>, T: FromStr>(deserializer: D, expecting: &'static str) -> Result<T, D::Error>
where
    T::Err: fmt::Display,
{
    deserializer.deserialize_str(ParseVisitor(PhantomData, expecting))
}
