//! Runtime backward kernels by identity: the typed `Kernel` that derivative rules name and
//! codegen emits, expanded from the catalog (`autodiff_primitives::for_each_kernel!`) and
//! the elementwise tables' rows. What codegen does with a kernel beyond calling it (run it
//! on one float inside a fused loop, sum into an accumulator, keep a fill symbolic) is a
//! property here, asked of the kernel, never read from its name.

use crate::ir::{PairwiseFn, UnaryFn};

macro_rules! kernel_enum {
    ($($module:ident { $($kernel:ident),* $(,)? })*) => {
        /// A runtime backward kernel: a function of `autodiff_runtime::kernels`.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Kernel {
            /// `unary::<row>_grad(g, &saved)`, in place in `g`.
            UnaryGrad(UnaryFn),
            /// `unary::<row>_grad_scalar(g, saved)`.
            UnaryGradScalar(UnaryFn),
            /// `pairwise::<row>_grad_lhs(g, &a, &b)`.
            PairwiseGradLhs(PairwiseFn),
            /// `pairwise::<row>_grad_rhs(g, &a, &b)`.
            PairwiseGradRhs(PairwiseFn),
            $($(
                #[doc = concat!("`", stringify!($module), "::", stringify!($kernel), "`.")]
                $kernel,
            )*)*
        }

        impl Kernel {
            /// The kernel's module and function in `autodiff_runtime::kernels`.
            pub fn path(self) -> (&'static str, &'static str) {
                match self {
                    Kernel::UnaryGrad(f) => ("unary", f.grad_kernel()),
                    Kernel::UnaryGradScalar(f) => ("unary", f.grad_scalar_kernel()),
                    Kernel::PairwiseGradLhs(f) => ("pairwise", f.grad_kernels()[0]),
                    Kernel::PairwiseGradRhs(f) => ("pairwise", f.grad_kernels()[1]),
                    $($(Kernel::$kernel => (stringify!($module), stringify!($kernel)),)*)*
                }
            }
        }
    };
}

autodiff_primitives::for_each_kernel!(kernel_enum);

/// What a kernel's result stands for when the adjoint it reads is a symbolic fill (one float).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillForm {
    /// The fill passes through unchanged (`sum`'s backward spreads `g` over the input).
    Identity,
    /// This kernel, with the same arguments, returns the fill of the result.
    Kernel(Kernel),
}

impl Kernel {
    /// The form that sums its result into an accumulator (`acc += k(..)`, as GEMM with β = 1),
    /// taking `&mut acc` first.
    pub fn accumulating(self) -> Option<Kernel> {
        match self {
            Kernel::matmul_grad_lhs => Some(Kernel::matmul_grad_lhs_acc),
            Kernel::matmul_grad_rhs => Some(Kernel::matmul_grad_rhs_acc),
            _ => None,
        }
    }

    /// The kernel's rule on one float (`g, saved[, constant] ↦ g·f'`), for fusing chains of
    /// elementwise backward steps into one loop: the same derivative, applied per element.
    pub fn scalar_form(self) -> Option<Kernel> {
        match self {
            Kernel::UnaryGrad(f) => Some(Kernel::UnaryGradScalar(f)),
            Kernel::powi_grad => Some(Kernel::powi_grad_scalar),
            Kernel::powf_grad => Some(Kernel::powf_grad_scalar),
            Kernel::map_grad => Some(Kernel::map_grad_scalar),
            _ => None,
        }
    }

    /// The kernel's result as a fill, when its result is an array filled with one value
    /// (the backward of a full reduction): codegen keeps it symbolic.
    pub fn fill_form(self) -> Option<FillForm> {
        match self {
            Kernel::sum_grad => Some(FillForm::Identity),
            Kernel::mean_grad => Some(FillForm::Kernel(Kernel::mean_grad_fill)),
            _ => None,
        }
    }

    /// `fused::chainN`: the fused kernel running `n` (2 to 4) elementwise rules in one pass.
    pub fn chain(n: usize) -> Option<Kernel> {
        match n {
            2 => Some(Kernel::chain2),
            3 => Some(Kernel::chain3),
            4 => Some(Kernel::chain4),
            _ => None,
        }
    }

    /// `fused::fill_chainN`: [`Kernel::chain`] starting from a fill (one float) instead of an
    /// adjoint array, for `n` from 1 to 4.
    pub fn fill_chain(n: usize) -> Option<Kernel> {
        match n {
            1 => Some(Kernel::fill_chain1),
            2 => Some(Kernel::fill_chain2),
            3 => Some(Kernel::fill_chain3),
            4 => Some(Kernel::fill_chain4),
            _ => None,
        }
    }

    /// `fused::outer_chainN`: [`Kernel::chain`] starting from an outer product `u·vᵀ`
    /// (borrowed) instead of an adjoint array, for `n` from 1 to 4.
    pub fn outer_chain(n: usize) -> Option<Kernel> {
        match n {
            1 => Some(Kernel::outer_chain1),
            2 => Some(Kernel::outer_chain2),
            3 => Some(Kernel::outer_chain3),
            4 => Some(Kernel::outer_chain4),
            _ => None,
        }
    }
}
