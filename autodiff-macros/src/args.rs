//! The attribute's arguments: `#[differentiate]`, `#[differentiate(wrt(w, b))]`,
//! `#[differentiate(wrt(w), name = loss_params)]`, `#[differentiate(vjp = gelu_backward)]`,
//! `#[differentiate(opt(fusion = false), name = loss_unfused)]`, `#[differentiate(save = "min")]`.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, Token};

/// Parsed attribute arguments.
#[derive(Default)]
pub struct Args {
    /// `wrt(a, b)`: the parameters to differentiate with respect to, in order.
    /// `None` means every float or array parameter.
    pub wrt: Option<Vec<Ident>>,
    /// `name = prefix`: the prefix of the generated items instead of the function's name,
    /// so that one function can be differentiated in several ways.
    pub name: Option<Ident>,
    /// `vjp = path`: a custom derivative rule. The body is then not differentiated (it may
    /// be any Rust); both engines call this function for the backward.
    pub vjp: Option<syn::Path>,
    /// `opt(analysis = false, ..)`: analyses of the static code turned off, for ablation studies.
    pub analyses: Analyses,
}

/// The analyses that make the static code lean, each on unless `opt(..)` turns it off. Off,
/// the gradients are the same (the tests check every switch); only time and memory change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Analyses {
    /// Elementwise backward steps fused into one pass (`fused::chainN`).
    pub fusion: bool,
    /// Values dropped after their last use, in forward and backward.
    pub liveness: bool,
    /// Adjoint buffers reused: moved into the kernel that consumes them last, out-of-place
    /// twins instead of copies, matrix products summed in place (GEMM with β = 1).
    pub reuse: bool,
    /// The adjoint of a full reduction kept as one float (a symbolic fill) while it can be.
    pub seed: bool,
    /// Adjoints that no requested gradient needs are not computed (dead-gradient elimination).
    pub dead_gradients: bool,
    /// `save = "auto" | "all" | "min"`: what the forward half keeps for the backward half.
    pub save: Save,
    /// `residuals = "bf16" | "f16" | "full"`: the precision array residuals are kept in.
    pub residuals: Residuals,
}

/// The precision of the array residuals the context keeps (`#[differentiate(residuals =
/// "bf16")]`): backward computes and accumulates in the function's float type either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Residuals {
    /// As forward computed them. The default.
    #[default]
    Full,
    /// Rounded to bfloat16 (`kernels::packed`): two bytes each.
    Bf16,
    /// Rounded to IEEE half precision: two bytes each.
    F16,
}

impl Residuals {
    /// The runtime's `kernels::packed::Half` variant, when packed.
    pub fn format(self) -> Option<&'static str> {
        match self {
            Residuals::Full => None,
            Residuals::Bf16 => Some("Bf16"),
            Residuals::F16 => Some("F16"),
        }
    }
}

/// The memory plan's policy: what the forward half keeps for the backward half
/// (`#[differentiate(save = "min")]`). Every policy computes the same gradients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Save {
    /// Each residual in its smallest exact form where that costs backward little: a value
    /// read only through its sign (relu's output) as a bit per element. The default.
    #[default]
    Auto,
    /// Every value backward reads, as forward computed it (the plan a tape makes without
    /// per-op savings): the baseline the other policies are measured against.
    All,
    /// Nothing but the borrowed parameters: backward computes the forward again from them
    /// (rematerialisation), trading a forward's time for holding no intermediate.
    Min,
}

impl Save {
    /// The policy's name as the attribute spells it.
    pub fn name(self) -> &'static str {
        match self {
            Save::Auto => "auto",
            Save::All => "all",
            Save::Min => "min",
        }
    }
}

impl Default for Analyses {
    fn default() -> Self {
        Analyses {
            fusion: true,
            liveness: true,
            reuse: true,
            seed: true,
            dead_gradients: true,
            save: Save::Auto,
            residuals: Residuals::Full,
        }
    }
}

const SAVE_USAGE: &str = "`save` takes the memory plan's policy: `save = \"auto\"` (the default: residuals in their smallest exact form), `save = \"all\"` (every residual as computed) or `save = \"min\"` (nothing kept: backward recomputes the forward)";

const RESIDUALS_USAGE: &str = "`residuals` takes the precision the context keeps array residuals in: `residuals = \"bf16\"` or `residuals = \"f16\"` (two bytes each; backward computes in the function's float type), or `residuals = \"full\"` (the default)";

const ANALYSES: &str = "`fusion`, `liveness`, `reuse`, `seed`, `dead_gradients`";

impl Analyses {
    /// Parses the inside of `opt(..)` into `analyses`: `name = true|false`, comma-separated.
    fn parse_list(mut analyses: Self, content: ParseStream) -> syn::Result<Self> {
        let mut seen: Vec<String> = Vec::new();
        while !content.is_empty() {
            let name: Ident = content.parse()?;
            let key = name.to_string();
            if seen.contains(&key) {
                return Err(syn::Error::new(name.span(), format!("`{key}` is given twice")));
            }
            let slot = match key.as_str() {
                "fusion" => &mut analyses.fusion,
                "liveness" => &mut analyses.liveness,
                "reuse" => &mut analyses.reuse,
                "seed" => &mut analyses.seed,
                "dead_gradients" => &mut analyses.dead_gradients,
                _ => {
                    return Err(syn::Error::new(
                        name.span(),
                        format!("unknown analysis `{key}`; `opt(..)` switches off {ANALYSES}: `opt(fusion = false)`"),
                    ))
                }
            };
            if !content.peek(Token![=]) || !content.peek2(syn::LitBool) {
                return Err(syn::Error::new(
                    name.span(),
                    format!("`{key}` takes `true` or `false`: `opt({key} = false)`"),
                ));
            }
            content.parse::<Token![=]>()?;
            *slot = content.parse::<syn::LitBool>()?.value;
            seen.push(key);
            if !content.is_empty() {
                content.parse::<Token![,]>()?;
            }
        }
        Ok(analyses)
    }
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::default();
        let (mut seen_opt, mut seen_save, mut seen_residuals) = (false, false, false);
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            if key == "wrt" {
                if args.wrt.is_some() {
                    return Err(syn::Error::new(key.span(), "`wrt` is given twice"));
                }
                if !input.peek(syn::token::Paren) {
                    return Err(syn::Error::new(
                        key.span(),
                        "`wrt` takes a list of parameters: `wrt(w, b)`",
                    ));
                }
                let content;
                syn::parenthesized!(content in input);
                let names = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                if names.is_empty() {
                    return Err(syn::Error::new(
                        key.span(),
                        "`wrt()` names no parameter; list at least one, e.g. `wrt(w, b)`, or leave `wrt` out to differentiate every float or array parameter",
                    ));
                }
                args.wrt = Some(names.into_iter().collect());
            } else if key == "name" {
                if args.name.is_some() {
                    return Err(syn::Error::new(key.span(), "`name` is given twice"));
                }
                // Errors at the end of the arguments would have no token to sit on: put them on `name`.
                if !input.peek(Token![=]) || !input.peek2(Ident) {
                    return Err(syn::Error::new(
                        key.span(),
                        "`name` takes an identifier, the prefix of the generated items: `name = loss_params`",
                    ));
                }
                input.parse::<Token![=]>()?;
                args.name = Some(input.parse()?);
            } else if key == "vjp" {
                if args.vjp.is_some() {
                    return Err(syn::Error::new(key.span(), "`vjp` is given twice"));
                }
                if !input.peek(Token![=]) || input.peek2(Token![,]) || input.is_empty() {
                    return Err(syn::Error::new(
                        key.span(),
                        "`vjp` takes the path of the function computing this one's vector-Jacobian product: `vjp = gelu_backward`",
                    ));
                }
                input.parse::<Token![=]>()?;
                let path: syn::Path = input.parse().map_err(|_| {
                    syn::Error::new(
                        key.span(),
                        "`vjp` takes the path of the function computing this one's vector-Jacobian product: `vjp = gelu_backward`",
                    )
                })?;
                args.vjp = Some(path);
            } else if key == "opt" {
                if !input.peek(syn::token::Paren) {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("`opt` takes a list of analyses to switch off ({ANALYSES}): `opt(fusion = false)`"),
                    ));
                }
                let content;
                syn::parenthesized!(content in input);
                if seen_opt {
                    return Err(syn::Error::new(key.span(), "`opt` is given twice"));
                }
                seen_opt = true;
                args.analyses = Analyses::parse_list(args.analyses, &content)?;
            } else if key == "residuals" {
                let choices = [
                    ("full", Residuals::Full),
                    ("bf16", Residuals::Bf16),
                    ("f16", Residuals::F16),
                ];
                args.analyses.residuals =
                    parse_choice(input, &key, &mut seen_residuals, "precision", &choices, RESIDUALS_USAGE)?;
            } else if key == "save" {
                let choices = [("auto", Save::Auto), ("all", Save::All), ("min", Save::Min)];
                args.analyses.save = parse_choice(input, &key, &mut seen_save, "policy", &choices, SAVE_USAGE)?;
            } else {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown argument `{key}`; supported: `wrt(param, ...)`, `name = prefix`, `vjp = backward_fn`, `save = \"auto\"|\"all\"|\"min\"`, `residuals = \"bf16\"|\"f16\"` and `opt(analysis = false, ..)`"),
                ));
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

/// `key = "name"`, one of `choices` (`what` names the kind of choice in the error), given
/// at most once (`seen`); `usage` says what `key` takes.
fn parse_choice<T: Copy>(
    input: ParseStream,
    key: &Ident,
    seen: &mut bool,
    what: &str,
    choices: &[(&str, T)],
    usage: &str,
) -> syn::Result<T> {
    if *seen {
        return Err(syn::Error::new(key.span(), format!("`{key}` is given twice")));
    }
    *seen = true;
    if !input.peek(Token![=]) || !input.peek2(syn::LitStr) {
        return Err(syn::Error::new(key.span(), usage));
    }
    input.parse::<Token![=]>()?;
    let value: syn::LitStr = input.parse()?;
    let name = value.value();
    choices
        .iter()
        .find(|(choice, _)| *choice == name)
        .map(|&(_, choice)| choice)
        .ok_or_else(|| syn::Error::new(value.span(), format!("unknown {what} \"{name}\"; {usage}")))
}

impl Args {
    /// The prefix of the generated items: `name = ..`, or the function's own name.
    pub fn prefix<'a>(&'a self, item: &'a syn::ItemFn) -> &'a Ident {
        self.name.as_ref().unwrap_or(&item.sig.ident)
    }
}

/// A second `#[differentiate]` still on the item (the outer attribute expands first and sees
/// the inner one) that would generate the same items: an error on that attribute, which
/// says to give it its own `name = ..`. Rustc would otherwise report `loss_grad` defined
/// twice, at the attribute, without saying what to do.
pub fn same_prefix_twice(args: &Args, item: &syn::ItemFn) -> Option<syn::Error> {
    let prefix = crate::codegen::unraw(args.prefix(item));
    item.attrs
        .iter()
        .filter(|attr| attr.path().segments.last().is_some_and(|s| s.ident == "differentiate"))
        .find_map(|attr| {
            let other = match &attr.meta {
                syn::Meta::Path(_) => Args::default(),
                syn::Meta::List(list) => list.parse_args::<Args>().ok()?,
                syn::Meta::NameValue(_) => return None,
            };
            (crate::codegen::unraw(other.prefix(item)) == prefix).then(|| {
                syn::Error::new_spanned(
                    attr,
                    format!(
                        "`{prefix}` already has a `#[differentiate]` that generates `{prefix}_grad`, `{prefix}_forward`, ...; \
                         give this one its own prefix: `#[differentiate(name = {prefix}_2, ..)]`"
                    ),
                )
            })
        })
}
