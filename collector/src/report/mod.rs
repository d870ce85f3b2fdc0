//! What a finding becomes for a person (text) or a program (JSON lines).

pub mod html;
pub mod json;
pub mod printable;
pub mod text;
