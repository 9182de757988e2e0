//! Domain types: parsed once at the edge, trusted everywhere inside.

mod email;
mod lang;
mod origin;
mod secret;

pub use email::{EmailAddress, InvalidEmail};
pub use lang::Lang;
pub use origin::{InvalidOrigin, Origin, ReturnTo};
pub use secret::{Code, Password, WeakPassword};

/// What a code is for. A code for one purpose never works for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Purpose {
    Register,
    ResetPassword,
    Login,
}

impl Purpose {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "register" => Some(Self::Register),
            "reset_password" => Some(Self::ResetPassword),
            "login" => Some(Self::Login),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::ResetPassword => "reset_password",
            Self::Login => "login",
        }
    }

    /// A code is only mailed where it can be used: registration for a new
    /// address, the other flows for an existing account.
    pub fn needs_account(self) -> bool {
        !matches!(self, Self::Register)
    }
}
