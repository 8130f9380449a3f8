//! Bearer tokens from a registry's token realm (the `realm` of a `Bearer` challenge), as
//! docker/distribution's token specification describes them:
//!
//! - anonymously, or with a user name and password: `GET realm?service=..&scope=..` (basic
//!   authorization when there are credentials), answered with `{"token": ..}` (or
//!   `access_token`);
//! - with an identity token: OAuth2's refresh-token grant, `POST realm` with the form
//!   `grant_type=refresh_token&refresh_token=..&service=..&scope=..&client_id=rbuild`,
//!   answered with `{"access_token": ..}`.

use reqwest::blocking::Client as Http;
use reqwest::header::AUTHORIZATION;
use serde::Deserialize;

use super::Credential;
use crate::registry::error::RegistryError;
use crate::registry::error_body::ErrorBody;

/// The `client_id` rbuild names itself with in OAuth2 requests.
pub const CLIENT_ID: &str = "rbuild";

/// What to ask a token realm for.
pub(crate) struct TokenRequest<'a> {
    /// The registry host, for errors.
    pub registry: &'a str,
    pub realm: &'a str,
    pub service: Option<&'a str>,
    /// Scopes such as `repository:library/busybox:pull`; none for a login check.
    pub scopes: Vec<&'a str>,
}

/// The JSON a token endpoint answers with (Docker uses `token`, OAuth2 `access_token`).
#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

impl TokenResponse {
    fn into_token(self) -> Option<String> {
        self.token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))
    }
}

impl TokenRequest<'_> {
    /// Fetches a token, authenticated by `credential` when there is one.
    pub(crate) fn fetch(
        &self,
        http: &Http,
        credential: Option<&Credential>,
    ) -> Result<String, RegistryError> {
        let transport = |source| RegistryError::TokenTransport {
            registry: self.registry.to_string(),
            realm: self.realm.to_string(),
            source,
        };
        let req = match credential {
            Some(Credential::IdentityToken(refresh)) => {
                http.post(self.realm).form(&self.refresh_form(refresh))
            }
            other => {
                let mut query: Vec<(&str, &str)> = Vec::new();
                if let Some(s) = self.service {
                    query.push(("service", s));
                }
                query.extend(self.scopes.iter().map(|s| ("scope", *s)));
                let req = http.get(self.realm).query(&query);
                match other.and_then(Credential::password) {
                    Some(c) => req.header(AUTHORIZATION, c.basic_header()),
                    None => req,
                }
            }
        };
        let resp = req.send().map_err(transport)?;
        if !resp.status().is_success() {
            return Err(RegistryError::TokenStatus {
                registry: self.registry.to_string(),
                realm: self.realm.to_string(),
                status: resp.status(),
                body: ErrorBody::read(resp),
            });
        }
        let token: TokenResponse = resp.json().map_err(transport)?;
        token
            .into_token()
            .ok_or_else(|| RegistryError::TokenMissing {
                registry: self.registry.to_string(),
                realm: self.realm.to_string(),
            })
    }

    /// The form of the refresh-token grant; scopes are space-separated (RFC 6749).
    fn refresh_form(&self, refresh_token: &str) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", refresh_token.to_string()),
            ("client_id", CLIENT_ID.to_string()),
        ];
        if let Some(s) = self.service {
            pairs.push(("service", s.to_string()));
        }
        if !self.scopes.is_empty() {
            pairs.push(("scope", self.scopes.join(" ")));
        }
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_form_has_the_grant_and_space_separated_scopes() {
        let req = TokenRequest {
            registry: "r.example",
            realm: "https://auth.example/token",
            service: Some("r.example"),
            scopes: vec!["repository:a/b:pull,push", "repository:c:pull"],
        };
        let form = req.refresh_form("t0k");
        let get = |k: &str| form.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("grant_type"), Some("refresh_token"));
        assert_eq!(get("refresh_token"), Some("t0k"));
        assert_eq!(get("client_id"), Some("rbuild"));
        assert_eq!(get("service"), Some("r.example"));
        assert_eq!(
            get("scope"),
            Some("repository:a/b:pull,push repository:c:pull")
        );
    }
}
